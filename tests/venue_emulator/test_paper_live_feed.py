"""Paper trading on a live feed: market data from the venue's real data client, fills from the sandbox.

A ``mode: paper`` spec on ``venue.adapter: binance`` without ``data.replay``: the runtime takes the
market from NautilusTrader's Binance data client (public streams, no keys), pointed at the venue
emulator's market by the endpoints override, and executes in the sandbox. The ledger holds exactly
the fills the sandbox made, also across a market connection cut half-way (the client reconnects and
the strategy trades on).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
from pathlib import Path

import pytest
import yaml
from nautilus_trader.model.events import OrderFilled

from livestrat.api.runtime_config import RuntimeConfig
from strategy_runtime.live.endpoints import ENV_VENUE_ENDPOINTS
from strategy_runtime.runtime import RuntimeOptions, StrategyRuntime
from tests.support.ledger import read_sqlite_fills
from tests.support.runtime import ROOT, runtime_config
from tests.support.runtime_process import LIVESTRAT
from tests.venue_emulator.conftest import PERP, SPOT
from tests.venue_emulator.gated import served_market, wait_until

CASES = [(SPOT, "spot", "", "0.010"), (PERP, "usdtFutures", "/fstream", "0.010")]


def live_feed_manifest(instrument_id: str, account_type: str, trade_size: str) -> dict:
    return {
        "apiVersion": "livestrat.io/v1alpha1",
        "kind": "LiveStrategy",
        "metadata": {"name": "paper-live-feed"},
        "spec": {
            "mode": "paper",
            "strategy": {
                "strategyPath": "tests.support.bar_flipper:BarFlipper",
                "configPath": "tests.support.bar_flipper:BarFlipperConfig",
                "config": {
                    "instrument_id": instrument_id,
                    "bar_type": f"{instrument_id}-1-MINUTE-LAST-EXTERNAL",
                    "trade_size": trade_size,
                },
            },
            "venue": {"adapter": "binance", "accountType": account_type, "startingBalances": ["100000 USDT"]},
            "instruments": [instrument_id],
            "data": {"catalog": {"emptyDir": {}}},
        },
    }


@pytest.mark.slow  # a whole runtime, started and halted, and a market cut and restored
@pytest.mark.parametrize(("instrument_id", "account_type", "prefix", "size"), CASES)
async def test_paper_on_the_emulators_feed_records_the_sandboxs_fills_and_trades_on_after_a_drop(
    sample_catalog, serve, tmp_path, instrument_id, account_type, prefix, size
):
    market = await served_market(serve, sample_catalog, [instrument_id])
    gate, feed, streams, bars = market.gate, market.feed, market.streams, market.bars
    gate.pause_at = (bars // 2) * 9  # after the 15th minute (four quotes, four trades and a bar a minute)
    endpoints = market.endpoints(prefix)

    config: RuntimeConfig = runtime_config(live_feed_manifest(instrument_id, account_type, size), tmp_path / "catalog")
    options = RuntimeOptions(
        serve_http=False,
        push_status=False,
        fence_wait_seconds=0.0,
        environ={ENV_VENUE_ENDPOINTS: json.dumps(endpoints)},
        keep_fills=True,
        dispose_node=False,
    )
    runtime = StrategyRuntime(config, options)
    run = asyncio.create_task(runtime.run())

    def bars_subscribed() -> bool:
        if run.done():  # the runtime gave up: say why instead of waiting
            raise AssertionError(f"the runtime ended: {run.result().reason}")
        return "btcusdt@kline_1m" in {s for _, names in streams.subscriptions() for s in names}

    try:
        await wait_until(bars_subscribed, what="the data client's bar subscription")
        feed_task = asyncio.create_task(feed.run())
        gate.open.set()
        ledger = config.ledger.sqlite_path
        key = lambda: runtime.reporter.config.strategy_key  # noqa: E731 (this run's key)
        await wait_until(lambda: len(gate.events) == gate.pause_at, what="half of the market")
        await wait_until(lambda: len(read_sqlite_fills(ledger, key())) == bars // 2, what="a fill per bar so far")

        connections, opened = streams.connections, streams.opened
        assert await streams.drop_all() == connections
        await wait_until(
            lambda: streams.opened >= opened + connections and bars_subscribed(),
            timeout=60,
            what="the data client to reconnect and subscribe again",
        )
        gate.open.set()
        await asyncio.wait_for(feed_task, 60)
        await wait_until(lambda: len(read_sqlite_fills(ledger, key())) == bars, what="a fill for every bar")
        runtime.request_stop("the test has seen every bar")
        outcome = await asyncio.wait_for(run, 60)
    finally:
        if not run.done():
            runtime.request_stop("the test failed")
            await asyncio.wait_for(run, 60)

    kernel = runtime.node.kernel
    try:
        matched = [e for o in kernel.cache.orders() for e in o.events if isinstance(e, OrderFilled)]
    finally:
        runtime.node.dispose()
    recorded = outcome.ledger_fills
    assert len(matched) >= bars  # every bar's order, and the halt's close of the last BUY if any
    assert sorted((f.trade_id, f.side, f.quantity, f.price) for f in recorded) == sorted(
        (e.trade_id.value, e.order_side.name, e.last_qty.as_decimal(), e.last_px.as_decimal()) for e in matched
    )
    print(f"paper live feed {instrument_id}: {bars} bars, {len(matched)} sandbox fills, {len(recorded)} in the ledger")


@pytest.mark.slow  # a livestrat process
async def test_livestrat_run_trades_a_paper_spec_on_the_live_feed_until_ctrl_c(sample_catalog, serve, tmp_path):
    market = await served_market(serve, sample_catalog, [SPOT])
    gate, feed, streams, bars = market.gate, market.feed, market.streams, market.bars
    manifest = tmp_path / "dry-run.yaml"
    manifest.write_text(yaml.safe_dump(live_feed_manifest(SPOT, "spot", "0.010")))
    endpoints = json.dumps(market.endpoints())
    # PYTHONPATH: the strategy is the tests' own
    environ = os.environ | {"PYTHONPATH": str(ROOT), ENV_VENUE_ENDPOINTS: endpoints}
    process = await asyncio.create_subprocess_exec(
        LIVESTRAT, "run", "--quiet", "--workdir", str(tmp_path / "work"), str(manifest),
        cwd=ROOT, env=environ, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        first = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert "in paper mode on binance's live market data" in first, first
        try:
            await wait_until(
                lambda: "btcusdt@kline_1m" in {s for _, names in streams.subscriptions() for s in names},
                what="the run's bar subscription",
            )
        except AssertionError:
            if process.returncode is None:
                process.kill()
            raise AssertionError((await process.stdout.read()).decode()[-3000:]) from None
        gate.open.set()
        await asyncio.wait_for(feed.run(), 60)
        ledgers = list((tmp_path / "work").rglob("ledger.sqlite"))
        await wait_until(lambda: ledgers and fills_in(ledgers[0]) == bars, what="a fill for every bar")
        process.send_signal(signal.SIGINT)  # Ctrl-C: a halt
        output = (await asyncio.wait_for(process.stdout.read(), 60)).decode()
        assert await asyncio.wait_for(process.wait(), 60) == 0, output
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert f"fills:          {bars}" in output
    assert "positions:      flat" in output


def fills_in(ledger: Path) -> int:
    with sqlite3.connect(ledger) as conn:
        return conn.execute("SELECT count(*) FROM fills").fetchone()[0]
