"""Paper on a live feed against the backtest of the window it traded: a promotion's evidence.

The runtime records the bars its node receives (and the instruments it loaded) into a catalog of the window under
its state directory; at a clean stop (and every ``window_check_seconds`` of market time) it backtests that window
with the same spec in a child process and reports ``status.trading.backtest``, matched by instrument and trade id,
as a finished replay does. The market is the venue emulator's, fed by a gate.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from nautilus_trader.model.data import Bar
from nautilus_trader.model.objects import Price
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from livestrat.api.runtime_config import RuntimeConfig
from strategy_runtime import backtest_agreement
from strategy_runtime.live.endpoints import ENV_VENUE_ENDPOINTS
from strategy_runtime.paper import window_recording
from strategy_runtime.runtime import RunOutcome, RuntimeOptions, StrategyRuntime
from tests.support.ledger import read_sqlite_fills
from tests.support.runtime import runtime_config
from tests.venue_emulator.conftest import PERP, SPOT
from tests.venue_emulator.gated import served_market, wait_until
from tests.venue_emulator.test_paper_live_feed import live_feed_manifest

CASES = [(SPOT, "spot", "", "0.010"), (PERP, "usdtFutures", "/fstream", "0.010")]


async def trade_the_whole_feed(sample_catalog, serve, config: RuntimeConfig, instrument_id: str, prefix: str):
    """Run the paper runtime on the emulator's feed until it has a fill for every bar, then stop it (a clean stop)."""
    market = await served_market(serve, sample_catalog, [instrument_id])
    gate, feed, streams, bars = market.gate, market.feed, market.streams, market.bars
    endpoints = market.endpoints(prefix)
    options = RuntimeOptions(
        serve_http=False,
        push_status=False,
        fence_wait_seconds=0.0,
        environ={ENV_VENUE_ENDPOINTS: json.dumps(endpoints)},
        keep_fills=True,
    )
    runtime = StrategyRuntime(config, options)
    run = asyncio.create_task(runtime.run())

    def bars_subscribed() -> bool:
        if run.done():
            raise AssertionError(f"the runtime ended: {run.result().reason}")
        return any(s.endswith("@kline_1m") for _, names in streams.subscriptions() for s in names)

    try:
        await wait_until(bars_subscribed, what="the data client's bar subscription")
        gate.open.set()
        await asyncio.wait_for(feed.run(), 60)
        key = lambda: runtime.reporter.config.strategy_key  # noqa: E731 (this run's key)
        ledger = config.ledger.sqlite_path
        await wait_until(lambda: len(read_sqlite_fills(ledger, key())) == bars, what="a fill for every bar")
        runtime.request_stop("the test has seen every bar")
        outcome: RunOutcome = await asyncio.wait_for(run, 120)
    finally:
        if not run.done():
            runtime.request_stop("the test failed")
            await asyncio.wait_for(run, 120)
    return runtime, outcome, bars


@pytest.mark.slow  # a whole runtime, a backtest in a child process
@pytest.mark.parametrize(("instrument_id", "account_type", "prefix", "size"), CASES)
async def test_paper_on_a_live_feed_reports_its_fills_agreeing_with_the_backtest_of_the_recorded_window(
    sample_catalog, serve, tmp_path, instrument_id, account_type, prefix, size
):
    config = runtime_config(live_feed_manifest(instrument_id, account_type, size), tmp_path / "catalog")
    _, outcome, bars = await trade_the_whole_feed(sample_catalog, serve, config, instrument_id, prefix)

    recorded = ParquetDataCatalog(str(window_recording.window_catalog_path(config)))
    assert len(recorded.bars(instrument_ids=[instrument_id])) == bars  # every bar the node received
    assert [i.id.value for i in recorded.instruments()] == [instrument_id]
    agreement = outcome.snapshot.trading.backtest
    assert agreement is not None, "no backtest of the window was reported"
    # The last bar's fill is at (paper: after) the window's last event: evidence of neither side.
    assert (agreement.paper_fills, agreement.backtest_fills) == (bars - 1, bars - 1), agreement.message
    assert (agreement.matched, agreement.mismatches) == (bars - 1, 0), agreement.message
    assert "the window's last recorded event" in agreement.message


@pytest.mark.slow  # a whole runtime, backtests in child processes
async def test_a_backtest_of_a_different_window_is_reported_as_mismatching(sample_catalog, serve, tmp_path):
    config = runtime_config(live_feed_manifest(SPOT, "spot", "0.010"), tmp_path / "catalog")
    _, outcome, bars = await trade_the_whole_feed(sample_catalog, serve, config, SPOT, "")
    assert outcome.snapshot.trading.backtest.mismatches == 0

    # The recorded window edited: every bar a tenth higher. The backtest's fills are at other prices.
    path = window_recording.window_catalog_path(config)
    catalog = ParquetDataCatalog(str(path))
    edited = [
        Bar(
            b.bar_type,
            *(Price(p.as_double() * 1.1, p.precision) for p in (b.open, b.high, b.low, b.close)),
            b.volume,
            b.ts_event,
            b.ts_init,
        )
        for b in catalog.bars(instrument_ids=[SPOT])
    ]
    instruments = catalog.instruments()
    for directory in path.iterdir():
        if directory.is_dir():
            for file in directory.rglob("*.parquet"):
                file.unlink()
    catalog.write_data(instruments)
    catalog.write_data(edited)
    window = window_recording.window_backtest_config(config, venue="BINANCE", account_type="CASH")
    theirs = await backtest_agreement.backtest_fills(window, tmp_path / "edited-backtest")
    agreement = backtest_agreement.compare(outcome.ledger_fills, theirs, edited[-1].ts_init)
    assert (agreement.matched, agreement.mismatches) == (bars - 1, bars - 1), agreement.message
    assert "matched fills differ in side, quantity or price" in agreement.message


@pytest.mark.slow  # a whole runtime, backtests in child processes
async def test_the_window_is_backtested_while_the_strategy_trades(sample_catalog, serve, tmp_path):
    config = runtime_config(live_feed_manifest(SPOT, "spot", "0.010"), tmp_path / "catalog")
    config = config.model_copy(update={"window_check_seconds": 0.5})
    market = await served_market(serve, sample_catalog, [SPOT])
    gate, feed, streams, bars = market.gate, market.feed, market.streams, market.bars
    half = bars // 2
    gate.pause_at = half * 9  # the market pauses after the 15th minute (four quotes, four trades and a bar a minute)
    environ = {ENV_VENUE_ENDPOINTS: json.dumps(market.endpoints())}
    options = RuntimeOptions(serve_http=False, push_status=False, fence_wait_seconds=0.0, environ=environ)
    runtime = StrategyRuntime(config, options)
    run = asyncio.create_task(runtime.run())
    try:
        await wait_until(
            lambda: "btcusdt@kline_1m" in {s for _, names in streams.subscriptions() for s in names},
            what="the data client's bar subscription",
        )
        feed_task = asyncio.create_task(feed.run())
        gate.open.set()
        # Half the market, still trading: the check of the window so far covers every fill but the last bar's.
        await wait_until(
            lambda: runtime.backtest is not None and runtime.backtest.matched == half - 1,
            timeout=60,
            what="a backtest of the first half of the window",
        )
        assert runtime.backtest.mismatches == 0, runtime.backtest.message
        assert runtime.node_state == "Running"
        gate.open.set()
        await asyncio.wait_for(feed_task, 60)
    finally:
        runtime.request_stop("the test is over")
        await asyncio.wait_for(run, 120)
