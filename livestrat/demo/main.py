"""``livestrat demo``: start the cluster, apply the examples, print what to try, run until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from livestrat.demo import examples, script
from livestrat.demo.chart import ChartError
from livestrat.demo.cluster import DemoCluster, DemoError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
POLL_SECONDS = 0.5


async def _demo(args: argparse.Namespace, stop: asyncio.Event) -> int:
    directory: Path = args.examples or EXAMPLES
    if not directory.exists():
        print(f"livestrat demo: --examples {directory}: no such file or directory", file=sys.stderr)
        return 2
    chosen = examples.choose(directory, args.speed)
    if not chosen:
        print(f"livestrat demo: --examples {directory}: no LiveStrategy manifest (*.yaml) there", file=sys.stderr)
        return 2
    if not any(e.document for e in chosen):
        print(f"livestrat demo: no example in {directory} runs without a venue or a cluster:", file=sys.stderr)
        print("\n".join(f"  {e.path.name}: {e.skipped}" for e in chosen), file=sys.stderr)
        return 2
    workdir: Path = args.workdir
    kubeconfig: Path = args.kubeconfig or workdir / "kubeconfig.yaml"
    print("livestrat demo: starting the API emulator, the operator and the stand-in kubelet...", flush=True)
    async with DemoCluster(workdir, kubeconfig, port=args.port) as cluster:
        refused = {}
        for example in chosen:
            if example.document is None:
                continue
            for document in [*example.companions, example.document]:
                if why := await cluster.apply(document):
                    refused[example.name] = why
                    break
        print(script.started(cluster.url, chosen, refused, args.speed), flush=True)
        print(script.what_to_try(kubeconfig, chosen, refused, workdir), flush=True)
        while not stop.is_set():
            if (code := cluster.operator_exited()) is not None:
                print(f"livestrat demo: the operator exited ({code}):\n{cluster.operator_log_tail()}", file=sys.stderr)
                return 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_SECONDS)
        print("\nlivestrat demo: stopping the operator, the strategies and the emulator...", flush=True)
    print(f"livestrat demo: stopped {', '.join(cluster.stopped)} and the API emulator.", flush=True)
    return 0


async def _main(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C while stopping changes nothing
        loop.add_signal_handler(number, stop.set)
    return await _demo(args, stop)


def run_demo(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_main(args))
    except (ChartError, DemoError) as exc:
        print(f"livestrat demo: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the --port taken, the workdir not writable
        print(f"livestrat demo: {exc.strerror or exc} ({exc.filename or f'port {args.port}'})", file=sys.stderr)
        return 1
