"""Paper replay throughput through the node, bare and with actors attached, and start-up time.

    .venv/bin/python bench/replay_bench.py [--bars 20000] [--repeat 3]
        [--actor module:Class ...]   # the actors to attach (default: two EventCounter stand-ins)

Runs ``examples/paper-ema-cross.yaml`` (EMACross on one-minute bars, lockstep replay at full
speed, the parity configuration) over a sample catalog of ``--bars`` bars. Every measurement
runs in a fresh process (NautilusTrader initialises logging once per process):

- **throughput**: events replayed per second of replay wall time, as the replay client
  reports it, for the bare node and for the node with the actors attached; the ratio is the
  cost of the actors;
- **start-up**: from the moment the process is spawned to the node running (trader
  started, clients connected): interpreter, imports, catalog, build and start;
- for reference, the same spec as a ``BacktestNode`` (events per second of its run).

``bench.event_counter.EventCounter`` stands in for the runtime's reporting actor and risk guard until they exist:
it subscribes to every order and position event and to account and risk events. Pass
``--actor package.module:Class`` (repeatable; the class is instantiated without arguments,
or with an ``ActorConfig(component_id=…)`` when it takes a config) to measure the real ones.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.example import EXAMPLE, example_over  # noqa: E402
from bench.machine import machine_header  # noqa: E402

STAND_IN = "bench.event_counter:EventCounter"


def make_actors(paths: list[str]) -> list[Any]:
    from nautilus_trader.common.config import ActorConfig

    actors = []
    for index, path in enumerate(paths):
        module, _, name = path.partition(":")
        cls = getattr(importlib.import_module(module), name)
        try:
            actors.append(cls(ActorConfig(component_id=f"{name}-{index}")))
        except TypeError:
            actors.append(cls())
    return actors


def worker(args: argparse.Namespace) -> None:
    """One measured run: prints a JSON line with its timings."""
    imported = time.time()
    from strategy_runtime.node import build_node

    config = example_over(args.catalog, args.workdir)
    imported = time.time() - imported
    if args.backtest:
        from strategy_runtime.local.backtest import run_backtest

        result = run_backtest(config)
        row = {"events": result.events, "replay_seconds": result.wall_seconds, "fills": len(result.fills)}
        print(json.dumps(row | {"running_at": time.time(), "build_seconds": 0.0, "import_seconds": imported}))
        return

    async def run() -> dict[str, Any]:
        built = time.time()
        node = build_node(config, actors=make_actors(args.actor))
        built = time.time() - built
        await node.start()
        running_at = time.time()
        await node.replay.finished.wait()
        replay_seconds = time.time() - running_at
        await node.stop()
        progress = node.replay.progress
        fills = sum(1 for o in node.kernel.cache.orders() if o.filled_qty > 0)
        node.dispose()
        return {
            "running_at": running_at,
            "build_seconds": built,
            "replay_seconds": replay_seconds,
            "events": progress.events,
            "fills": fills,
        }

    result = asyncio.run(run())
    result["import_seconds"] = imported
    print(json.dumps(result), flush=True)


def measure(args: argparse.Namespace, actors: list[str], backtest: bool = False) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", "--workdir", args.workdir, "--catalog", args.catalog]
    if backtest:
        command.append("--backtest")
    for actor in actors:
        command += ["--actor", actor]
    spawned = time.time()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"worker failed:\n{result.stderr[-3000:]}")
    row = json.loads(result.stdout.strip().splitlines()[-1])
    row["startup_seconds"] = row["running_at"] - spawned
    row["events_per_second"] = row["events"] / row["replay_seconds"]
    return row


def main(args: argparse.Namespace) -> None:
    from livestrat.api.spec import SampleData
    from strategy_runtime.paper.catalog import write_sample_catalog

    for line in machine_header("replay benchmark"):
        print(line)
    workdir = tempfile.mkdtemp(prefix="replay-bench-")
    args.workdir, args.catalog = workdir, str(Path(workdir) / "catalog")
    write_sample_catalog(args.catalog, ["BTCUSDT.BINANCE"], SampleData(bars=args.bars, seed=42))
    actors = args.actor or [STAND_IN, STAND_IN]
    print(f"{EXAMPLE.name}: EMACross, {args.bars:,} one-minute bars, lockstep, full speed; {args.repeat} runs each")
    cases = {"bare node": [], f"with {len(actors)} actor(s): {', '.join(actors)}": actors}
    medians: dict[str, dict[str, float]] = {}
    for name, case_actors in cases.items():
        rows = [measure(args, case_actors) for _ in range(args.repeat)]
        medians[name] = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k != "running_at"}
        m = medians[name]
        print(
            f"  {name}: {m['events_per_second']:,.0f} events/s (replay {m['replay_seconds']:.2f} s, "
            f"{m['fills']:.0f} fills); start-up {m['startup_seconds']:.2f} s "
            f"(imports {m['import_seconds']:.2f} s, build {m['build_seconds']:.3f} s)"
        )
    bare, attached = medians.values()
    print(f"  with actors / bare: {attached['events_per_second'] / bare['events_per_second']:.2f}")
    backtest = statistics.median(measure(args, [], backtest=True)["events_per_second"] for _ in range(args.repeat))
    print(f"  for reference, the same spec as a BacktestNode: {backtest:,.0f} events/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bars", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--actor", action="append", default=[], metavar="MODULE:CLASS")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backtest", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--catalog", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.worker:
        worker(parsed)
    else:
        main(parsed)
