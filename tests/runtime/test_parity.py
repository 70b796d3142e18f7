"""Same strategy, same data, same fills: a paper replay through the live node against the backtest oracle.

Compared per fill: venue trade id, venue order id, instrument, side, quantity, price,
commission and its currency, venue time (ts_event), ts_init, position id and account.
The one pinned difference is the client order id: NautilusTrader builds it from the
strategy's clock (``O-<date>-<time>-<trader tag>-<strategy tag>-<count>``), which is wall
time in a live node and market time in a backtest; everything after the timestamp is equal.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from strategy_runtime.backtest import run_backtest
from strategy_runtime.catalog import prepare_catalog
from strategy_runtime.ledger.fills import FillRecord
from strategy_runtime.local_config import local_runtime_config
from tests.support.runtime import BRACKET, ROOT, paper_manifest, paper_run, runtime_config

CLIENT_ORDER_ID = re.compile(r"^O-\d{8}-\d{6}-(?P<rest>.+)$")


def without_client_order_id(fill: FillRecord) -> dict:
    row = dataclasses.asdict(fill)
    row.pop("client_order_id")
    return row


def assert_same_fills(paper: list[FillRecord], backtest: list[FillRecord]) -> None:
    assert len(paper) == len(backtest)
    for i, (p, b) in enumerate(zip(paper, backtest, strict=True)):
        assert without_client_order_id(p) == without_client_order_id(b), f"fill #{i} differs"
        # Pinned difference: the clock's timestamp inside the client order id (see the module docstring).
        assert CLIENT_ORDER_ID.match(p.client_order_id)["rest"] == CLIENT_ORDER_ID.match(b.client_order_id)["rest"]


async def test_the_ema_cross_example_fills_the_same_in_paper_and_backtest(tmp_path):
    config = local_runtime_config(ROOT / "examples" / "paper-ema-cross.yaml", workdir=tmp_path)
    catalog = prepare_catalog(config)

    _, paper = await paper_run(config, catalog=catalog)
    backtest = run_backtest(config, catalog=catalog).summary

    assert len(paper.fills) > 100
    assert_same_fills(paper.fills, backtest.fills)
    assert paper.realized_pnl == backtest.realized_pnl
    assert paper.positions == backtest.positions
    assert (paper.orders, paper.orders_denied, paper.orders_rejected) == (backtest.orders, 0, 0)
    # the client order ids really come from different clocks: the paper node's is today's date
    assert paper.fills[0].client_order_id[:10] != backtest.fills[0].client_order_id[:10]


@pytest.mark.parametrize(
    ("data_types", "options"),
    [
        pytest.param(["bars"], None, id="bars"),
        # Quotes and trades move the simulated book too, and a seeded fill model slips half the
        # market fills by a tick: options reach the sandbox and the backtest venue alike.
        pytest.param(
            ["bars", "quotes", "trades"], {"prob_slippage": "0.5", "random_seed": "7"}, id="ticks-seeded-slippage"
        ),
    ],
)
async def test_resting_limit_and_bracket_orders_fill_the_same_in_paper_and_backtest(tmp_path, data_types, options):
    venue = {"adapter": "sandbox", "name": "BINANCE", "accountType": "margin", "startingBalances": ["100000 USDT"]}
    if options:
        venue["options"] = options
    manifest = paper_manifest(
        name="bracket", strategy=BRACKET, bars=1500, venue=venue, replay={"speed": 0, "dataTypes": data_types}
    )
    config = runtime_config(manifest, tmp_path / "catalog")
    catalog = prepare_catalog(config)

    node, paper = await paper_run(config, catalog=catalog)
    backtest = run_backtest(config, catalog=catalog).summary

    orders = node.kernel.cache.orders()
    kinds = {o.order_type.name for o in orders if o.is_closed and o.filled_qty > 0}
    assert {"LIMIT", "STOP_MARKET"} <= kinds, "entries and take-profits (LIMIT) and stop-losses filled"
    assert any(o.status.name == "CANCELED" for o in orders), "resting orders were cancelled (OUO, timeouts)"
    assert len(paper.fills) > 30
    assert_same_fills(paper.fills, backtest.fills)
    assert paper.realized_pnl == backtest.realized_pnl
    assert (paper.orders, paper.orders_denied, paper.orders_rejected) == (
        backtest.orders,
        backtest.orders_denied,
        backtest.orders_rejected,
    )


def test_fills_compare_in_execution_order_even_past_a_thousand_trades():
    from strategy_runtime.trading_summary import _natural

    ids = ["BINANCE-1-999", "BINANCE-1-1000", "BINANCE-1-001"]
    assert sorted(ids, key=_natural) == ["BINANCE-1-001", "BINANCE-1-999", "BINANCE-1-1000"]
    assert Path(ROOT / "examples" / "paper-ema-cross.yaml").exists()
