"""The live path's numbers, through NautilusTrader's real Binance adapter against the venue emulator.

    .venv/bin/python bench/live_bench.py [--seconds 60] [--speed 240] [--halts 5] [--orders 10 100]

A throwaway PostgreSQL server is started with durability on (fsync, synchronous commits), as for
bench/ledger_bench.py; the venue is ``livestrat venue-emulator`` (a process, on 127.0.0.1), Binance spot,
an Ed25519 key. Every time below is the wall clock of this one machine: the emulator stamps a trade and a
cancel with it (its server time), the runtime commits and pushes on it.

1. **Fill at the venue → ledger commit, and → status push.** ``StrategyRuntime`` in this process (the
   reporter, the risk guard, the PostgreSQL ledger: what a pod runs), pointed at the emulator with
   ``LIVESTRAT_VENUE_ENDPOINTS``, trades ``QuoteLadder`` (a resting BUY and SELL each bar, which the
   random walk fills) for ``--seconds``. Per fill: from the venue's trade time to the ledger commit that
   holds it (``on_ledger_commit``), and to the first status push that counts it (a recording status API
   in place of the Kubernetes API; pushes are coalesced, at most one per report interval: 1 s here, the
   operator's default).
2. **SIGTERM → last cancel acknowledged by the venue**, with 10 and 100 resting orders: a ``livestrat
   runtime`` process places them (far below the market), gets SIGTERM, cancels them (a stop that is no
   halt: orders cancelled, position kept), and the time runs from the signal to the venue's stamp on the
   last of its cancels (the order's ``updateTime``). ``--halts`` runs each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine_header  # noqa: E402

INSTRUMENT = "BTCUSDT.BINANCE"
BALANCES = {"USDT": "10000000", "BTC": "1000"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def line(name: str, values_ms: list[float]) -> str:
    if not values_ms:
        return f"  {name:<42} no samples"
    return (
        f"  {name:<42} n={len(values_ms):<5} p50 {percentile(values_ms, 0.5):8.1f} ms   "
        f"p99 {percentile(values_ms, 0.99):8.1f} ms   max {max(values_ms):8.1f} ms"
    )


class RecordingStatusApi:
    """The Kubernetes status API's place: every push, with the wall time it was made and the fills it counted."""

    def __init__(self) -> None:
        self.pushes: list[tuple[float, int]] = []

    async def patch_status(self, patch: Any) -> None:
        fills = (patch.get("status", {}).get("trading") or {}).get("fills")
        if fills is not None:
            self.pushes.append((time.time(), int(fills)))

    async def read_own(self) -> Any:
        return {}

    async def close(self) -> None:
        return None


async def fill_latencies(directory: Path, dsn: str, seconds: float, speed: float) -> tuple[list[float], list[float]]:
    from livestrat.api.runtime_config import ENV_LEDGER_DSN
    from strategy_runtime.runtime import RuntimeOptions, StrategyRuntime
    from tests.support.live_runtime import ladder, live_catalog, story_spec
    from tests.support.runtime_process import strategy_config
    from tests.support.venue_emulator_process import runtime_environ, scenario, venue_emulator

    catalog = live_catalog(directory / "catalog", bars=20_000)
    committed: dict[str, float] = {}

    def on_commit(batch: Any) -> None:
        now = time.time()
        for fill in batch.fills:
            committed.setdefault(fill.trade_id, now)

    api = RecordingStatusApi()
    async with venue_emulator(
        directory / "venue", catalog=catalog, instruments=[INSTRUMENT], scenario=scenario(BALANCES), speed=speed
    ) as venue:
        spec = story_spec(ladder(distance="0.0003", max_open=10))
        config, _ = strategy_config(
            directory, spec, name="bench", ledger_kind="postgresql", report_status=True, report_interval_seconds=1.0
        )
        options = RuntimeOptions(
            serve_http=False,
            fence_wait_seconds=0,
            environ=runtime_environ(venue) | {ENV_LEDGER_DSN: dsn},
            status_api=api,
            on_ledger_commit=on_commit,
        )
        runtime = StrategyRuntime(config, options)
        run = asyncio.get_running_loop().create_task(runtime.run())
        await asyncio.sleep(seconds)
        runtime.request_stop("the benchmark is over")
        await run
        trades = await venue.admin.trades()
    to_ledger, to_status = [], []
    for index, trade in enumerate(sorted(trades, key=lambda t: t["id"])):
        at_venue = trade["time"] / 1000
        if str(trade["id"]) in committed:
            to_ledger.append((committed[str(trade["id"])] - at_venue) * 1000)
        pushed = next((t for t, fills in api.pushes if fills >= index + 1), None)
        if pushed is not None:
            to_status.append((pushed - at_venue) * 1000)
    return to_ledger, to_status


async def halt_latency(directory: Path, dsn: str, orders: int, speed: float) -> float:
    from tests.support.live_runtime import LiveStory, live_catalog, story_spec
    from tests.support.scripted import scripted_strategy
    from tests.support.venue_emulator_process import scenario, venue_emulator

    catalog = live_catalog(directory / "catalog", bars=3000)
    # At most 50 a bar: the venue counts 100 orders per 10 s (the emulator enforces Binance's limits).
    steps = [
        {"bar": 1 + batch * 20, "do": "limit", "side": "BUY", "quantity": "0.001", "offset": -0.2, "count": count}
        for batch, count in enumerate([min(50, orders - done) for done in range(0, orders, 50)])
    ]
    strategy = scripted_strategy(str(directory / "events.jsonl"), steps=steps)
    risk = {"maxDailyLoss": 1_000_000, "maxPosition": 1_000, "maxNotionalPerOrder": 10_000_000}
    risk["maxOrderSubmitRate"] = "1000/00:00:01"
    async with venue_emulator(
        directory / "venue", catalog=catalog, instruments=[INSTRUMENT], scenario=scenario(BALANCES), speed=speed
    ) as venue:
        story = LiveStory.of(directory, venue, dsn, story_spec(strategy, risk=risk), name=f"halt{orders}")
        try:
            runtime = story.start()
            await runtime.wait_ready(timeout=120)
            await runtime.wait_until(lambda s: s["trading"]["openOrders"] == orders, timeout=120, what="resting")
            signalled = time.time()
            runtime.process.send_signal(signal.SIGTERM)
            code, _ = await runtime.wait_exit(timeout=60)
            canceled = [o for o in await venue.admin.orders() if o["status"] == "CANCELED"]
            left = await venue.admin.open_orders()
        finally:
            story.kill_all()
    if code != 0 or left or len(canceled) != orders:
        raise RuntimeError(f"halt of {orders}: exit {code}, {len(left)} left open, {len(canceled)} canceled")
    return (max(o["updateTime"] for o in canceled) / 1000 - signalled) * 1000


async def main(args: argparse.Namespace) -> None:
    from tests.support.postgres import fresh_database, start_postgres, stop_postgres

    print("\n".join(machine_header("livestrat live path: the real Binance adapter against the venue emulator")))
    server, process, pg_tmp = start_postgres(durable=True)
    print(f"PostgreSQL: local server, fsync on ({server.dsn.rsplit('@', 1)[-1]})", flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="live-bench-") as tmp:
            root = Path(tmp)
            async with fresh_database(server.dsn) as dsn:
                to_ledger, to_status = await fill_latencies(root / "fills", dsn, args.seconds, args.speed)
            print(f"\n1. fill at the venue -> ledger commit / status push ({args.seconds:g} s at speed {args.speed:g})")
            print(line("fill at the venue -> ledger commit", to_ledger))
            print(line("fill at the venue -> status push (1 s coalescing)", to_status))
            print("\n2. SIGTERM -> last cancel acknowledged by the venue")
            for orders in args.orders:
                runs = []
                for attempt in range(args.halts):
                    async with fresh_database(server.dsn) as dsn:
                        runs.append(await halt_latency(root / f"halt-{orders}-{attempt}", dsn, orders, args.speed))
                print(line(f"{orders} open orders ({args.halts} halts)", runs), flush=True)
    finally:
        stop_postgres(process, pg_tmp)
    print(json.dumps({"seconds": args.seconds, "speed": args.speed, "orders": args.orders, "halts": args.halts}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--speed", type=float, default=240.0)
    parser.add_argument("--halts", type=int, default=5)
    parser.add_argument("--orders", type=int, nargs="+", default=[10, 100])
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    asyncio.run(main(parser.parse_args()))
