"""The runtime's numbers: fill → ledger commit latency through the node, start-up to ready, replay cost.

    .venv/bin/python bench/runtime_bench.py [--fill-bars 1000] [--speed 6000] [--startups 5]
        [--throughput-bars 20000] [--repeat 3] [--only latency,startup,throughput[,handlers]]

Every measurement runs in a fresh process (NautilusTrader initialises logging once per
process). A throwaway PostgreSQL server is started with durability on (fsync, synchronous
commits), as for bench/ledger_bench.py; SQLite runs WAL with synchronous=FULL.

1. **Fill → ledger commit, through the node.** ``StrategyRuntime`` (the reporter, the risk
   guard, the ledger: what a pod runs) replays one-minute bars at ``--speed`` (6000: 100 bars
   a second) under ``bench.flip_strategy.FlipEveryBar``, which fills on every bar: about 100
   fills a second. Two latencies per fill: from the reporter receiving the ``OrderFilled``
   to the ledger commit that holds it, and from the strategy's ``submit_order`` to that commit
   (the whole path: RiskEngine, gate, execution engine, simulated venue, reporter, ledger).
2. **Start-up to ready.** ``livestrat runtime --config`` spawned, until ``/readyz`` answers 200
   (interpreter, imports, ledger and fence, catalog, node build and start).
3. **Replay throughput**, ``examples/paper-ema-cross.yaml`` over ``--throughput-bars`` bars: the
   bare node (``build_node`` without actors) against the whole runtime (reporter, risk guard
   and SQLite ledger attached): events per second of replay. Each repeat runs the bare node, then
   the runtime, one after the other on the same catalog, so both meet the same load on the machine;
   the ratio is reported as the ratio of the medians and as the median of each repeat's own ratio
   (with its range), the figure least moved by other work on the machine. Beside them, the event
   loop thread's CPU time and how many times it waited (its voluntary context switches: for the
   interpreter's lock another thread held, or for I/O), which the machine's load hardly moves.
4. **The runtime's handlers** (``--only handlers``, not in the default set): ``--repeat`` runtime
   replays with each of its handlers timed (``bench/handler_times.py``): what its own Python costs
   the replay, handler by handler.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.example import EXAMPLE, example_over  # noqa: E402
from bench.machine import machine_header  # noqa: E402

LIVESTRAT = str(Path(sys.executable).with_name("livestrat"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ---------------------------------------------------------------------------------------- workers
def flip_config(workdir: Path, bars: int, speed: float, ledger: str) -> Any:
    from livestrat.api.runtime_config import LedgerKind, LedgerTarget
    from strategy_runtime.local.config import local_runtime_config

    config = local_runtime_config(EXAMPLE, workdir=workdir)
    spec = config.spec
    strategy = spec.strategy.model_copy(
        update={
            "strategy_path": "bench.flip_strategy:FlipEveryBar",
            "config_path": "bench.flip_strategy:FlipEveryBarConfig",
            "config": {"instrument_id": "BTCUSDT.BINANCE", "bar_type": "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"},
        }
    )
    data = spec.data.model_copy(
        update={
            "sample": spec.data.sample.model_copy(update={"bars": bars}),
            "replay": spec.data.replay.model_copy(update={"speed": speed}),
        }
    )
    risk = spec.risk.model_copy(update={"max_position": None, "max_order_submit_rate": "1000/00:00:01"})
    spec = spec.model_copy(update={"strategy": strategy, "data": data, "risk": risk})
    update: dict[str, Any] = {"spec": spec}
    if ledger == "postgresql":
        update["ledger"] = LedgerTarget(kind=LedgerKind.POSTGRESQL)
    return config.model_copy(update=update)


def latency_worker(args: argparse.Namespace) -> None:
    from bench import flip_strategy
    from strategy_runtime.ledger import CommittedBatch
    from strategy_runtime.runtime import RuntimeOptions, StrategyRuntime  # before the loop: uvloop, as the CLI

    config = flip_config(Path(args.workdir), args.fill_bars, args.speed, args.ledger)
    handled: list[float] = []
    submitted: list[float] = []

    def committed(batch: CommittedBatch) -> None:
        for fill, enqueued in zip(batch.fills, batch.enqueued_at, strict=True):
            handled.append(batch.committed_at - enqueued)
            sent = flip_strategy.SUBMITTED.get(fill.client_order_id)
            if sent is not None:
                submitted.append(batch.committed_at - sent)

    options = RuntimeOptions(
        serve_http=False,
        push_status=False,
        stop_when_replay_finishes=True,
        fence_wait_seconds=0,
        on_ledger_commit=committed,
        environ=dict(os.environ),
    )
    outcome = asyncio.run(StrategyRuntime(config, options).run())
    assert outcome.exit_code == 0, outcome.reason
    print(json.dumps({"handled": handled, "submitted": submitted}))


def waits() -> int:
    """The calling thread's voluntary context switches so far: each time it waited (the interpreter's lock, I/O)."""
    with open("/proc/thread-self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("voluntary_ctxt_switches"))


def throughput_worker(args: argparse.Namespace) -> None:
    # Imported before the loop starts, as the CLI does: importing NautilusTrader's kernel makes
    # uvloop the event loop policy, and a loop already running would stay a plain asyncio one.
    from livestrat.api.runtime_config import LedgerKind, LedgerTarget
    from strategy_runtime.node import build_node
    from strategy_runtime.runtime import RuntimeOptions, StrategyRuntime

    config = example_over(args.catalog, args.workdir)
    handlers = None
    if args.handler_times:
        from bench import handler_times

        handlers = handler_times.install()  # before the runtime builds its actors, which bind the handlers
    if args.ledger == "postgresql":
        # The ledger every live strategy runs: asyncpg on the event loop, the server a process of its own.
        # A strategy name of its own per run: the database is shared by the repeats.
        config = config.model_copy(
            update={
                "ledger": LedgerTarget(kind=LedgerKind.POSTGRESQL),
                "strategy": config.strategy.model_copy(update={"name": f"throughput-{os.getpid()}"}),
            }
        )

    async def bare() -> tuple[int, float, float, int]:
        node = build_node(config)
        await node.start()
        started, cpu, waited = time.monotonic(), time.thread_time(), waits()
        await node.replay.finished.wait()
        seconds, cpu, waited = time.monotonic() - started, time.thread_time() - cpu, waits() - waited
        events = node.replay.progress.events
        await node.stop()
        node.dispose()
        return events, seconds, cpu, waited

    async def full() -> tuple[int, float, float, int]:
        runtime = StrategyRuntime(
            config, RuntimeOptions(serve_http=False, push_status=False, fence_wait_seconds=0, environ=dict(os.environ))
        )
        task = asyncio.get_running_loop().create_task(runtime.run())
        while runtime.ready_at is None:
            await asyncio.sleep(0.0005)
        started, cpu, waited = time.monotonic(), time.thread_time(), waits()
        assert runtime.node is not None and runtime.node.replay is not None
        await runtime.node.replay.finished.wait()
        seconds, cpu, waited = time.monotonic() - started, time.thread_time() - cpu, waits() - waited
        events = runtime.node.replay.progress.events
        runtime.request_stop("benchmark over")
        await task
        return events, seconds, cpu, waited

    # The event loop's thread's CPU time over the replay (``thread_time`` in the loop's own thread): what the
    # node and the runtime's handlers cost it, less moved by other work on the machine than the wall clock.
    events, seconds, cpu, waited = asyncio.run(full() if args.runtime else bare())
    row: dict[str, Any] = {"events": events, "seconds": seconds, "cpu": cpu, "waits": waited}
    if handlers is not None:
        row["handlers"] = handlers
    print(json.dumps(row))


# ---------------------------------------------------------------------------------------- parent
def run_worker(*extra: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    command = [sys.executable, __file__, *extra]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"worker {extra} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def fill_latency(args: argparse.Namespace, dsn: str) -> list[str]:
    lines = [f"fill -> ledger commit through the node, ~{args.speed / 60:.0f} fills/s, {args.fill_bars} bars:"]
    for ledger in ("sqlite", "postgresql"):
        workdir = tempfile.mkdtemp(prefix="runtime-bench-")
        env = {**os.environ, "LIVESTRAT_LEDGER_DSN": dsn}
        try:
            row = run_worker(
                "--latency-worker",
                "--workdir",
                workdir,
                "--ledger",
                ledger,
                "--fill-bars",
                str(args.fill_bars),
                "--speed",
                str(args.speed),
                env=env,
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        for label, samples in (("reporter -> commit", row["handled"]), ("submit_order -> commit", row["submitted"])):
            ms = [s * 1000 for s in samples]
            lines.append(
                f"  {ledger:10} {label:22} p50 {percentile(ms, 0.5):6.2f} ms  p99 {percentile(ms, 0.99):6.2f} ms"
                f"  max {max(ms):6.2f} ms  ({len(ms)} fills)"
            )
    return lines


def startup(args: argparse.Namespace, dsn: str) -> list[str]:
    from livestrat.api.runtime_config import LedgerKind, LedgerTarget
    from strategy_runtime.local.config import local_runtime_config
    from strategy_runtime.paper.catalog import prepare_catalog
    from tests.support.runtime_process import free_port

    lines = [f"start-up, process spawned -> /readyz 200, {args.startups} runs:"]
    catalog = Path(tempfile.mkdtemp(prefix="runtime-bench-catalog-"))
    prepare_catalog(local_runtime_config(EXAMPLE, workdir=catalog, catalog=catalog))  # the sample, once, untimed
    for ledger in ("sqlite", "postgresql"):
        times = []
        for run in range(args.startups):
            workdir = Path(tempfile.mkdtemp(prefix="runtime-bench-"))
            try:
                config = local_runtime_config(EXAMPLE, workdir=workdir, catalog=catalog)
                update: dict[str, Any] = {"http_port": free_port(), "report_status": False}
                if ledger == "postgresql":
                    update["ledger"] = LedgerTarget(kind=LedgerKind.POSTGRESQL)
                    update["strategy"] = config.strategy.model_copy(update={"name": f"startup-{run}"})
                config = config.model_copy(update=update)
                path = workdir / "runtime.json"
                path.write_text(config.dumps())
                env = {**os.environ, "LIVESTRAT_LEDGER_DSN": dsn}
                spawned = time.monotonic()
                process = subprocess.Popen(
                    [LIVESTRAT, "runtime", "--config", str(path)],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                try:
                    while True:
                        try:
                            with urllib.request.urlopen(f"http://127.0.0.1:{config.http_port}/readyz", timeout=1) as r:
                                if r.status == 200:
                                    break
                        except OSError:
                            pass
                        if process.poll() is not None:
                            raise SystemExit(f"runtime exited with {process.returncode} before ready")
                        time.sleep(0.005)
                    times.append(time.monotonic() - spawned)
                finally:
                    process.terminate()
                    process.wait(timeout=60)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        lines.append(
            f"  {ledger:10} median {statistics.median(times):.2f} s  (min {min(times):.2f}, max {max(times):.2f})"
        )
    return lines


def runs(rates: list[float]) -> str:
    return ", ".join(f"{r:,.0f}" for r in rates)


@contextlib.contextmanager
def sample_catalog(bars: int) -> Iterator[str]:
    """A catalog of ``bars`` sample bars for the replays of one part, removed after it."""
    from livestrat.api.spec import SampleData
    from strategy_runtime.paper.catalog import write_sample_catalog

    catalog = tempfile.mkdtemp(prefix="runtime-bench-catalog-")
    try:
        write_sample_catalog(catalog, ["BTCUSDT.BINANCE"], SampleData(bars=bars))
        yield catalog
    finally:
        shutil.rmtree(catalog, ignore_errors=True)


def replay(catalog: str, *flags: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """One replay of ``catalog`` in a fresh worker (``--throughput-worker``) and a work directory of its own."""
    workdir = tempfile.mkdtemp(prefix="runtime-bench-")
    try:
        return run_worker("--throughput-worker", "--workdir", workdir, "--catalog", catalog, *flags, env=env)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def throughput(args: argparse.Namespace, dsn: str | None) -> list[str]:
    ledgers = args.throughput_ledgers.split(",")
    rates: dict[str, list[float]] = {"bare": [], **{ledger: [] for ledger in ledgers}}
    cpus: dict[str, list[float]] = {kind: [] for kind in rates}
    waits: dict[str, list[int]] = {kind: [] for kind in rates}
    env = {**os.environ, "LIVESTRAT_LEDGER_DSN": dsn} if dsn else None
    with sample_catalog(args.throughput_bars) as catalog:
        for _ in range(args.repeat):
            for kind in rates:
                row = replay(catalog, *([] if kind == "bare" else ["--runtime", "--ledger", kind]), env=env)
                rates[kind].append(row["events"] / row["seconds"])
                cpus[kind].append(row["cpu"])
                waits[kind].append(row["waits"])
    bare, bare_cpu = statistics.median(rates["bare"]), statistics.median(cpus["bare"])
    lines = [
        f"replay throughput, EMACross over {args.throughput_bars} bars, median of {args.repeat} (interleaved):",
        f"  bare node                               {bare:8,.0f} events/s  (runs: {runs(rates['bare'])})"
        f"; event loop CPU {bare_cpu:.3f} s; the loop's thread waited {statistics.median(waits['bare']):.0f} times",
    ]
    for ledger in ledgers:
        full, cpu = statistics.median(rates[ledger]), statistics.median(cpus[ledger])
        paired = sorted(r / b for r, b in zip(rates[ledger], rates["bare"], strict=True))
        paired_cpu = sorted(b / c for c, b in zip(cpus[ledger], cpus["bare"], strict=True))
        lines += [
            f"  runtime (reporter, guard, {ledger:10} ledger) {full:8,.0f} events/s  (runs: {runs(rates[ledger])})"
            f"; event loop CPU {cpu:.3f} s; the loop's thread waited {statistics.median(waits[ledger]):.0f} times",
            f"    ratio runtime / bare: {full / bare:.2f} (medians); {statistics.median(paired):.2f} median of each "
            f"repeat's ratio (range {paired[0]:.2f} to {paired[-1]:.2f})",
            f"    in the event loop's CPU, bare / runtime: {bare_cpu / cpu:.2f} (medians); "
            f"{statistics.median(paired_cpu):.2f} median of each repeat's (range {paired_cpu[0]:.2f} to "
            f"{paired_cpu[-1]:.2f})",
        ]
    return lines


def handlers(args: argparse.Namespace) -> list[str]:
    """The runtime's own handlers' time in the replay (``bench/handler_times.py``): ``--repeat`` runtime workers."""
    from bench import handler_times

    with sample_catalog(args.throughput_bars) as catalog:
        replays = [replay(catalog, "--runtime", "--ledger", "sqlite", "--handler-times") for _ in range(args.repeat)]
    rows, seconds = [r["handlers"] for r in replays], [r["seconds"] for r in replays]
    bars, repeat = args.throughput_bars, args.repeat
    head = f"the runtime's handlers in a replay of {bars} bars (SQLite ledger), median of {repeat}:"
    return [head, *handler_times.table(rows, seconds)]


def main(args: argparse.Namespace) -> None:
    from tests.support.postgres import start_postgres, stop_postgres

    parts = set(args.only.split(","))
    unknown = parts - {"latency", "startup", "throughput", "handlers"}
    if unknown:
        raise SystemExit(f"--only takes latency, startup, throughput and handlers; not {', '.join(sorted(unknown))}")
    unknown = set(args.throughput_ledgers.split(",")) - {"sqlite", "postgresql"}
    if unknown:
        raise SystemExit(f"--throughput-ledgers takes sqlite and postgresql; not {', '.join(sorted(unknown))}")
    lines = machine_header("livestrat runtime benchmark")
    needs_server = parts & {"latency", "startup"} or (
        "throughput" in parts and "postgresql" in args.throughput_ledgers.split(",")
    )
    server = process = tmp = None
    if needs_server:
        server, process, tmp = start_postgres(durable=True)
        lines.append(f"PostgreSQL: local server, fsync on ({server.dsn.rsplit('@', 1)[-1]})")
    try:
        if "latency" in parts:
            lines += fill_latency(args, server.dsn)
        if "startup" in parts:
            lines += startup(args, server.dsn)
        if "throughput" in parts:
            lines += throughput(args, server.dsn if server else None)
        if "handlers" in parts:
            lines += handlers(args)
    finally:
        if process is not None:
            stop_postgres(process, tmp)
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fill-bars", type=int, default=1000)
    parser.add_argument("--speed", type=float, default=6000)
    parser.add_argument("--startups", type=int, default=5)
    parser.add_argument("--throughput-bars", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--throughput-ledgers", default="sqlite", help="the runtime's ledgers to measure: sqlite, postgresql or both"
    )
    parser.add_argument("--only", default="latency,startup,throughput", help="comma-separated parts to run")
    parser.add_argument("--latency-worker", action="store_true")
    parser.add_argument("--throughput-worker", action="store_true")
    parser.add_argument("--runtime", action="store_true")
    parser.add_argument("--handler-times", action="store_true", help="worker: time the runtime's handlers")
    parser.add_argument("--workdir")
    parser.add_argument("--catalog")
    parser.add_argument("--ledger", default="sqlite")
    arguments = parser.parse_args()
    if arguments.latency_worker:
        latency_worker(arguments)
    elif arguments.throughput_worker:
        throughput_worker(arguments)
    else:
        main(arguments)
