"""Same strategy, same data, same fills: a paper run as ``livestrat run`` does it, against the backtest oracle.

The paper side is the whole runtime (``StrategyRuntime``: the live node with its sandbox
venue, the reporter, the risk guard, the halt when the replay is over) and its fills are read
back from the LEDGER it recorded them in, in the ledger's order (venue time, then trade id):
what a user finds there, not what the node's cache says. The backtest's fills are put in the
same order and compared fill for fill: instrument, side, quantity and price, the order each
belongs to (so the orders come in the same sequence), and every other field (venue trade and
order ids, commission, venue time, ``ts_init``, position, account) as well.

The one pinned difference is the client order id: NautilusTrader builds it from the
strategy's clock (``O-<date>-<time>-<trader tag>-<strategy tag>-<count>``), which is wall
time in a live node and market time in a backtest; everything after the timestamp is equal.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path

import pytest

from strategy_runtime.ledger.records import FillRecord, strategy_of
from strategy_runtime.local.backtest import run_backtest
from strategy_runtime.local.config import local_runtime_config
from strategy_runtime.paper.catalog import prepare_catalog
from tests.support.runtime import (
    BRACKET,
    BTC,
    EMA_CROSS,
    EMA_CROSS_TWAP,
    ROOT,
    local_run,
    paper_manifest,
    runtime_config,
)

CLIENT_ORDER_ID = re.compile(r"^O-\d{8}-\d{6}-(?P<rest>.+)$")


def in_ledger_order(fills: list[FillRecord]) -> list[FillRecord]:
    """The order the ledger keeps fills in (``ORDER BY ts_event, trade_id``)."""
    return sorted(fills, key=lambda f: (f.ts_event, f.trade_id))


def trade(fill: FillRecord) -> tuple:
    return fill.instrument_id, fill.side, fill.quantity, fill.price


def assert_same_fills(ledger: list[FillRecord], backtest: list[FillRecord]) -> None:
    backtest = in_ledger_order(backtest)
    assert [trade(f) for f in ledger] == [trade(f) for f in backtest], "instrument, side, quantity, price"
    assert [f.venue_order_id for f in ledger] == [f.venue_order_id for f in backtest], "orders in the same order"
    for i, (p, b) in enumerate(zip(ledger, backtest, strict=True)):
        paper_row, backtest_row = dataclasses.asdict(p), dataclasses.asdict(b)
        paper_client, backtest_client = paper_row.pop("client_order_id"), backtest_row.pop("client_order_id")
        # The paper runtime records its fills as a run of the strategy (docs/ledger.md, "Runs").
        assert strategy_of(paper_row.pop("strategy_key")) == backtest_row.pop("strategy_key")
        # Not the fill's own: the price the runtime's order gate saw when it sent the order on (execution quality,
        # docs/runtime.md). A backtest has no gate; the paper runtime records one for every order it priced.
        paper_row.pop("arrival_price")
        assert backtest_row.pop("arrival_price") is None
        assert paper_row == backtest_row, f"fill #{i} differs"
        # Pinned difference: the clock's timestamp inside the client order id (see the module docstring).
        assert CLIENT_ORDER_ID.match(paper_client)["rest"] == CLIENT_ORDER_ID.match(backtest_client)["rest"]


async def test_the_ema_cross_example_run_locally_records_the_backtests_fills_in_its_ledger(tmp_path):
    config = local_runtime_config(ROOT / "examples" / "paper-ema-cross.yaml", workdir=tmp_path)
    catalog = prepare_catalog(config)

    paper = await local_run(config, catalog=catalog)
    backtest = run_backtest(config, catalog=catalog).summary

    assert len(paper.ledger_fills) > 100
    assert paper.ledger_fills == in_ledger_order(paper.ledger_fills)  # as read back from the ledger
    assert_same_fills(paper.ledger_fills, backtest.fills)
    assert paper.summary.realized_pnl == backtest.realized_pnl
    assert paper.summary.positions == backtest.positions
    assert (paper.summary.orders, paper.summary.orders_denied, paper.summary.orders_rejected) == (backtest.orders, 0, 0)
    # the client order ids really come from different clocks: the paper node's is today's date
    assert paper.ledger_fills[0].client_order_id[:10] != backtest.fills[0].client_order_id[:10]


@pytest.mark.parametrize(
    ("data_types", "options", "emulation"),
    [
        pytest.param(["bars"], None, "NO_TRIGGER", id="bars"),
        # Quotes and trades move the simulated book too, and a seeded fill model slips half the
        # market fills by a tick: options reach the sandbox and the backtest venue alike.
        pytest.param(
            ["bars", "quotes", "trades"],
            {"prob_slippage": "0.5", "random_seed": "7"},
            "NO_TRIGGER",
            id="ticks-seeded-slippage",
        ),
        # The whole bracket held by the node's OrderEmulator and released on quotes (ema_cross_bracket's way).
        pytest.param(["bars", "quotes", "trades"], None, "BID_ASK", id="emulated-on-quotes"),
    ],
)
async def test_resting_limit_and_bracket_orders_run_locally_record_the_backtests_fills(
    tmp_path, data_types, options, emulation
):
    venue = {"adapter": "sandbox", "name": "BINANCE", "accountType": "margin", "startingBalances": ["100000 USDT"]}
    if options:
        venue["options"] = options
    strategy = copy.deepcopy(BRACKET)
    strategy["config"]["emulation_trigger"] = emulation
    manifest = paper_manifest(
        name="bracket", strategy=strategy, bars=1500, venue=venue, replay={"speed": 0, "dataTypes": data_types}
    )
    # The backtest ends with BracketOnCross's on_stop closing its position. The runtime halts first,
    # and a halted node denies a strategy's own orders: the halt itself closes the position instead.
    manifest["spec"]["haltPolicy"] = "flatten"
    config = runtime_config(manifest, tmp_path / "catalog")
    catalog = prepare_catalog(config)

    paper = await local_run(config, catalog=catalog)
    backtest = run_backtest(config, catalog=catalog).summary

    orders = paper.orders
    kinds = {o.order_type.name for o in orders if o.is_closed and o.filled_qty > 0}
    if emulation == "NO_TRIGGER":
        assert {"LIMIT", "STOP_MARKET"} <= kinds, "entries and take-profits (LIMIT) and stop-losses filled"
    else:  # the emulator releases a triggered LIMIT or STOP_MARKET order as a MARKET order
        assert kinds == {"MARKET"}
        released = [o for o in orders if any(type(e).__name__ == "OrderReleased" for e in o.events)]
        assert {o.client_order_id for o in orders if o.filled_qty > 0} <= {o.client_order_id for o in released}
    assert any(o.status.name == "CANCELED" for o in orders), "resting orders were cancelled (OUO, timeouts)"
    assert len(paper.ledger_fills) > 30
    assert_same_fills(paper.ledger_fills, backtest.fills)
    assert paper.summary.realized_pnl == backtest.realized_pnl
    assert (paper.summary.orders, paper.summary.orders_denied, paper.summary.orders_rejected) == (
        backtest.orders,
        backtest.orders_denied,
        backtest.orders_rejected,
    )


def test_fills_compare_in_execution_order_even_past_a_thousand_trades():
    from strategy_runtime.local.summary import _natural

    ids = ["BINANCE-1-999", "BINANCE-1-1000", "BINANCE-1-001"]
    assert sorted(ids, key=_natural) == ["BINANCE-1-001", "BINANCE-1-999", "BINANCE-1-1000"]
    assert Path(ROOT / "examples" / "paper-ema-cross.yaml").exists()


@pytest.mark.parametrize(
    ("bar_type", "data_types", "speed"),
    [
        # 5-minute bars the node builds from the catalog's 1-minute bars: everyday practice.
        pytest.param(f"{BTC}-5-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL", ["bars"], 0, id="5min-from-1min"),
        # The same, paced (1,000 market minutes in about one second): the bars close on market time, not wall time.
        pytest.param(f"{BTC}-5-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL", ["bars"], 60_000, id="5min-from-1min-paced"),
        # Time bars built from trades.
        pytest.param(f"{BTC}-2-MINUTE-LAST-INTERNAL", ["trades"], 0, id="2min-from-trades"),
    ],
)
async def test_time_bars_the_node_aggregates_give_the_backtests_fills(tmp_path, bar_type, data_types, speed):
    strategy = copy.deepcopy(EMA_CROSS)
    strategy["config"].update(bar_type=bar_type, fast_ema_period=5, slow_ema_period=10)
    manifest = paper_manifest(
        name="aggregated", strategy=strategy, bars=1000, replay={"speed": speed, "dataTypes": data_types}
    )
    manifest["spec"]["haltPolicy"] = "flatten"  # the backtest's on_stop closes the position: the halt does here
    config = runtime_config(manifest, tmp_path / "catalog")
    catalog = prepare_catalog(config)

    paper = await local_run(config, catalog=catalog)
    backtest = run_backtest(config, catalog=catalog).summary

    assert len(backtest.fills) >= 10, "the oracle itself trades on these bars"
    assert_same_fills(paper.ledger_fills, backtest.fills)
    assert paper.summary.realized_pnl == backtest.realized_pnl


@pytest.mark.parametrize(
    ("instrument", "speed"),
    [
        pytest.param(BTC, 0, id="spot-full-speed"),
        pytest.param(BTC, 6_000, id="spot-paced"),
        pytest.param("BTCUSDT-PERP.BINANCE", 0, id="perpetual"),
    ],
)
async def test_orders_through_the_twap_execution_algorithm_give_the_backtests_fills(tmp_path, instrument, speed):
    # NautilusTrader's ema_cross_twap: every entry and reversal is a primary order the TWAP algorithm
    # (spec.strategy.execAlgorithms) splits into slices a market minute apart, on its clock's timers.
    strategy = copy.deepcopy(EMA_CROSS_TWAP)
    strategy["config"].update(instrument_id=instrument, bar_type=f"{instrument}-1-MINUTE-LAST-EXTERNAL")
    manifest = paper_manifest(
        name="twap", strategy=strategy, bars=600, replay={"speed": speed}, instruments=[instrument]
    )
    manifest["spec"]["haltPolicy"] = "flatten"  # the backtest's on_stop closes the position: the halt does here
    config = runtime_config(manifest, tmp_path / "catalog")
    catalog = prepare_catalog(config)

    paper = await local_run(config, catalog=catalog)
    backtest = run_backtest(config, catalog=catalog).summary

    spawned = [o for o in paper.orders if o.exec_spawn_id is not None and o.client_order_id != o.exec_spawn_id]
    assert len(spawned) >= 10, "the algorithm spawned slices"
    assert len(backtest.fills) >= 20, "the oracle itself trades through the algorithm"
    assert_same_fills(paper.ledger_fills, backtest.fills)
    assert paper.summary.realized_pnl == backtest.realized_pnl
    assert (paper.summary.orders, paper.summary.orders_denied, paper.summary.orders_rejected) == (
        backtest.orders,
        backtest.orders_denied,
        backtest.orders_rejected,
    )


async def test_a_halt_cancels_the_primary_orders_an_execution_algorithm_still_holds(tmp_path):
    # A TWAP over 100 market minutes: when the replay ends and the run halts, the algorithm still holds
    # the primary order (INITIALIZED, sent to no venue yet). It is an open order until the halt cancels it.
    strategy = copy.deepcopy(EMA_CROSS_TWAP)
    strategy["config"].update(twap_horizon_secs=6000.0, twap_interval_secs=60.0)
    manifest = paper_manifest(name="twap-held", strategy=strategy, bars=300, replay={"speed": 0})
    config = runtime_config(manifest, tmp_path / "catalog")

    paper = await local_run(config, catalog=prepare_catalog(config))

    primaries = [o for o in paper.orders if o.exec_algorithm_id is not None and o.exec_spawn_id == o.client_order_id]
    assert primaries and primaries[-1].status.name == "CANCELED", "the held primary was cancelled by the halt"
    assert [o for o in paper.orders if not o.is_closed] == [], "no order of any kind is left"
    assert paper.outcome.snapshot.trading.open_orders == 0


async def test_a_binding_max_notional_on_a_margin_account_stops_the_backtest_where_it_stops_paper(tmp_path):
    # NautilusTrader's RiskEngine skips maxNotionalPerOrder on a MARGIN account; the runtime's order gate
    # enforces it, and a breach halts (cancel, flatten per policy, HALTED). The backtest must do the same.
    manifest = paper_manifest(name="ema-cross-btc", bars=1000)
    manifest["spec"]["haltPolicy"] = "flatten"
    unlimited = runtime_config(manifest, tmp_path / "catalog")
    catalog = prepare_catalog(unlimited)
    free = run_backtest(unlimited, catalog=catalog).summary.fills
    notionals = [f.quantity * f.price for f in free]
    limit = max(notionals[:10]) + 1  # the first ten fills pass; an order later in the replay does not
    assert any(n > limit + 1 for n in notionals[10:]), "a price path on which the limit binds"

    manifest["spec"]["risk"] = {"maxNotionalPerOrder": float(limit), "onBreach": "HaltInPlace"}
    config = runtime_config(manifest, tmp_path / "catalog")
    paper = await local_run(config, catalog=catalog)
    backtest = run_backtest(config, catalog=catalog).summary

    assert paper.runtime.guard.breach is not None and paper.runtime.guard.breach.limit == "maxNotionalPerOrder"
    assert 10 <= len(paper.ledger_fills) < len(free)
    assert_same_fills(paper.ledger_fills, backtest.fills)
    assert paper.summary.realized_pnl == backtest.realized_pnl
    assert paper.summary.positions == backtest.positions
    assert {p.side for p in backtest.positions} == {"FLAT"}  # the halt flattened, in both
    assert (paper.summary.orders, paper.summary.orders_denied) == (backtest.orders, backtest.orders_denied)


@pytest.mark.parametrize("speed", [pytest.param(0, id="full-speed"), pytest.param(100_000, id="paced")])
async def test_a_binding_submit_rate_counts_market_time_in_paper_as_in_the_backtest(tmp_path, speed):
    # EMACross sends two orders at the same bar when it reverses (close, then the new entry): one order
    # per second of market time lets the close through and denies the entry, a breach (haltPolicy
    # cancelOrders: the position stays, in both). The paper node must count market time at any replay speed.
    manifest = paper_manifest(name="ema-cross-btc", bars=600, replay={"speed": speed})
    manifest["spec"]["haltPolicy"] = "cancelOrders"
    manifest["spec"]["risk"] = {"maxOrderSubmitRate": "1/00:00:01", "onBreach": "HaltInPlace"}
    config = runtime_config(manifest, tmp_path / "catalog")
    catalog = prepare_catalog(config)

    paper = await local_run(config, catalog=catalog)
    backtest = run_backtest(config, catalog=catalog).summary

    assert paper.runtime.guard.breach is not None and paper.runtime.guard.breach.limit == "maxOrderSubmitRate"
    assert backtest.orders_denied >= 1 and len(backtest.fills) >= 2
    assert_same_fills(paper.ledger_fills, backtest.fills)
    assert paper.summary.realized_pnl == backtest.realized_pnl
    assert paper.summary.positions == backtest.positions
    assert (paper.summary.orders, paper.summary.orders_denied) == (backtest.orders, backtest.orders_denied)
