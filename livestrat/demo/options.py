"""The command line of ``livestrat demo`` and its entry point (kept apart so ``livestrat --help`` imports nothing
heavy: the demo's own modules load kmock and aiohttp, a second's work a Ctrl-C may interrupt)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SUMMARY = "Watch the operator work on this machine: no cluster, real strategies trading on replayed data"
DETAILS = (
    "Starts a Kubernetes API emulator, the real operator, and a stand-in kubelet that runs each strategy pod as "
    "a real runtime process; applies the examples that need no venue or cluster, replayed at --speed; writes a "
    "kubeconfig for kubectl in another terminal, prints what to try, and runs until Ctrl-C, which stops all of it."
)
# A paced replay: one market minute per second, so the paper example's 3000 bars last 50 minutes.
DEFAULT_SPEED = 60.0


def _pace(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive: 1 is real time, 60 a market minute per second")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(".livestrat/demo"),
        help="where the kubeconfig, the operator's log and the pods' files go (default .livestrat/demo)",
    )
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        metavar="PATH",
        help="write the kubeconfig for kubectl here (default WORKDIR/kubeconfig.yaml)",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="the API emulator's port on 127.0.0.1 (default 0: a free one)"
    )
    parser.add_argument(
        "--examples",
        type=Path,
        metavar="PATH",
        help="the LiveStrategy manifests to apply: a file, or a directory's *.yaml (default the project's "
        "examples/); those needing a venue or a cluster are skipped, saying why",
    )
    parser.add_argument(
        "--speed",
        type=_pace,
        default=DEFAULT_SPEED,
        help=f"replay pace of the examples: market seconds per second (default {DEFAULT_SPEED:g}: a bar a second)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        from livestrat.demo.main import run_demo

        return run_demo(args)
    except KeyboardInterrupt:  # before the demo's own signal handlers exist, so before it started anything
        print("livestrat demo: interrupted before it started; nothing was left running", file=sys.stderr)
        return 130
