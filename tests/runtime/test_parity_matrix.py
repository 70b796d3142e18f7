"""The parity matrix: NautilusTrader's own example strategies, paper against the backtest oracle.

Each case runs one of NautilusTrader's example strategies (as a user would name it: import paths and
a config) on a spot instrument and on a perpetual, through the whole runtime as ``livestrat run`` does,
and through ``livestrat backtest`` over the same catalog. Paper fills must equal the backtest's one to
one (``test_parity.assert_same_fills``), and every PnL figure shown must equal the recomputation from
the ledger's fills. The cases that need more of the runtime (emulated brackets, execution algorithms,
binding limits) live beside the features they test.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from strategy_runtime.local.backtest import run_backtest
from strategy_runtime.paper.catalog import prepare_catalog
from strategy_runtime.pnl import recompute_pnl
from strategy_runtime.portfolio_view import money_text
from tests.runtime.test_parity import assert_same_fills
from tests.support.runtime import BRACKET, EMA_CROSS_TWAP, local_run, paper_manifest, runtime_config

EXAMPLES = "nautilus_trader.examples.strategies"
INSTRUMENTS = {"spot": "BTCUSDT.BINANCE", "perpetual": "BTCUSDT-PERP.BINANCE"}
TICKS = ["bars", "quotes", "trades"]


def example(module: str, strategy: str, config_class: str, **config: Any) -> dict[str, Any]:
    return {
        "strategyPath": f"{EXAMPLES}.{module}:{strategy}",
        "configPath": f"{EXAMPLES}.{module}:{config_class}",
        "config": config,
    }


def cases(instrument: str) -> list[tuple[str, dict[str, Any], list[str], dict[str, Any]]]:
    bars = f"{instrument}-1-MINUTE-LAST-EXTERNAL"
    common = {"instrument_id": instrument, "bar_type": bars, "trade_size": "0.010"}
    fast = {"fast_ema_period": 10, "slow_ema_period": 20}
    trailing = {
        "atr_period": 20,
        "trailing_atr_multiple": 3.0,
        "trailing_offset_type": "PRICE",
        "trigger_type": "LAST_PRICE",
    }
    return [
        (
            "ema-cross",
            example(
                "ema_cross",
                "EMACross",
                "EMACrossConfig",
                **common,
                **fast,
                request_bars=False,
                subscribe_trade_ticks=False,
            ),
            ["bars"],
            {},
        ),
        (
            "long-only",
            example(
                "ema_cross_long_only",
                "EMACrossLongOnly",
                "EMACrossLongOnlyConfig",
                **common,
                **fast,
                request_historical_bars=False,
            ),
            ["bars"],
            {},
        ),
        (
            "trailing-stop",
            example(
                "ema_cross_trailing_stop",
                "EMACrossTrailingStop",
                "EMACrossTrailingStopConfig",
                **common,
                **fast,
                **trailing,
            ),
            TICKS,
            {},
        ),
        (
            "stop-entry",
            example(
                "ema_cross_stop_entry",
                "EMACrossStopEntry",
                "EMACrossStopEntryConfig",
                **common,
                **fast,
                **trailing,
                trailing_offset="20",
            ),
            TICKS,
            # Its market-if-touched entries trigger beyond the bar (a buy above the high): a venue that rejects
            # orders which would trigger at once refuses every one of them.
            {"reject_stop_orders": "false"},
        ),
        (
            "reversal",
            {
                "strategyPath": "tests.support.strategies:ReversalOnCross",
                "configPath": "tests.support.strategies:ReversalOnCrossConfig",
                "config": {**common, **fast},
            },
            ["bars"],
            {},
        ),
        (
            "aggregated-5min",
            example(
                "ema_cross",
                "EMACross",
                "EMACrossConfig",
                **{**common, "bar_type": f"{instrument}-5-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL"},
                fast_ema_period=5,
                slow_ema_period=10,
                request_bars=False,
                subscribe_trade_ticks=False,
            ),
            ["bars"],
            {},
        ),
        (
            # NautilusTrader's ema_cross_bracket sets a GTD expiry from its clock (wall time in paper): the project's
            # BracketOnCross, its brackets held by the OrderEmulator and released on quotes.
            "bracket-emulated",
            {**BRACKET, "config": {**common, "trade_size": "0.020", "emulation_trigger": "BID_ASK"}},
            TICKS,
            {},
        ),
        (
            # NautilusTrader's ema_cross_twap without its history request at start (it asks for the clock's last
            # day): every order through the TWAP execution algorithm.
            "twap",
            {**EMA_CROSS_TWAP, "config": {**EMA_CROSS_TWAP["config"], "instrument_id": instrument, "bar_type": bars}},
            ["bars"],
            {},
        ),
        (
            "hedge-mode",
            example(
                "ema_cross_hedge_mode", "EMACross", "EMACrossConfig", **common, **fast, subscribe_trade_ticks=False
            ),
            ["bars"],
            {"oms_type": "HEDGING"},
        ),
    ]


MATRIX = [
    pytest.param(kind, instrument, name, strategy, data_types, options, id=f"{name}-{kind}")
    for kind, instrument in INSTRUMENTS.items()
    for name, strategy, data_types, options in cases(instrument)
]


def matrix_manifest(
    instrument: str, name: str, strategy: dict[str, Any], data_types: list[str], options: dict[str, Any]
) -> dict[str, Any]:
    """A case's paper LiveStrategy: a margin account on the simulated BINANCE, 1,000 sample bars."""
    venue = {"adapter": "sandbox", "name": "BINANCE", "accountType": "margin", "startingBalances": ["1000000 USDT"]}
    if options:
        venue["options"] = options
    manifest = paper_manifest(
        name=name,
        strategy=strategy,
        bars=1000,
        venue=venue,
        instruments=[instrument],
        replay={"speed": 0, "dataTypes": data_types},
    )
    # The backtest ends with the strategies' on_stop closing their positions; the runtime halts first (a
    # halted node denies a strategy's own orders), so the halt closes them instead.
    manifest["spec"]["haltPolicy"] = "flatten"
    return manifest


@pytest.mark.parametrize(("kind", "instrument", "name", "strategy", "data_types", "options"), MATRIX)
async def test_an_example_strategy_gives_the_backtests_fills_and_the_ledgers_pnl(
    tmp_path, kind, instrument, name, strategy, data_types, options
):
    manifest = matrix_manifest(instrument, name, strategy, data_types, options)
    config = runtime_config(manifest, tmp_path / "catalog")
    catalog = prepare_catalog(config)

    paper = await local_run(config, catalog=catalog)
    backtest = run_backtest(config, catalog=catalog).summary

    assert len(backtest.fills) >= 2, "the oracle itself trades"
    assert_same_fills(paper.ledger_fills, backtest.fills)
    assert paper.summary.realized_pnl == backtest.realized_pnl

    # Every PnL figure shown = the recomputation from the ledger's fills.
    book = recompute_pnl(paper.ledger_fills).instruments
    realized: dict[str, Decimal] = {}
    for each in book.values():
        realized[each.currency or ""] = realized.get(each.currency or "", Decimal(0)) + each.net_realized_pnl
    trading = paper.outcome.snapshot.trading
    assert trading.realized_pnl == money_text(realized)
    assert paper.outcome.pnl is not None and paper.outcome.pnl.realized == {c: v for c, v in realized.items()}
    assert {p.instrument for p in trading.positions} == {i for i, b in book.items() if b.position}


@pytest.mark.parametrize(("kind", "instrument", "name", "strategy", "data_types", "options"), MATRIX)
async def test_an_example_strategy_with_a_binding_limit_halts_where_the_backtest_halts(
    tmp_path, kind, instrument, name, strategy, data_types, options
):
    # maxNotionalPerOrder at the median notional the strategy trades: an order above it comes, is denied,
    # and the risk halt (HaltInPlace, flatten) follows, in paper and in the backtest at the same order.
    manifest = matrix_manifest(instrument, name, strategy, data_types, options)
    unlimited = runtime_config(manifest, tmp_path / "catalog")
    catalog = prepare_catalog(unlimited)
    notionals = sorted(f.quantity * f.price for f in run_backtest(unlimited, catalog=catalog).summary.fills)
    limit = notionals[len(notionals) // 2]
    assert notionals[-1] > limit, "a limit that binds on this price path"
    manifest["spec"]["risk"] = {"maxNotionalPerOrder": float(limit), "onBreach": "HaltInPlace"}
    config = runtime_config(manifest, tmp_path / "catalog")

    paper = await local_run(config, catalog=catalog)
    backtest = run_backtest(config, catalog=catalog).summary

    assert paper.runtime.guard.breach is not None and paper.runtime.guard.breach.limit == "maxNotionalPerOrder"
    assert_same_fills(paper.ledger_fills, backtest.fills)
    assert paper.summary.realized_pnl == backtest.realized_pnl
    assert paper.summary.positions == backtest.positions
    assert (paper.summary.orders, paper.summary.orders_denied) == (backtest.orders, backtest.orders_denied)
