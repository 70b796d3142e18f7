"""The runtime's cost over the bare node in instructions executed, which other work on the machine cannot move.

    .venv/bin/python bench/instructions_bench.py [--bars 2000 6000] [--cache-sim] [--ledgers sqlite]

``bench/runtime_bench.py`` measures replay throughput on the wall clock, and on a shared virtual machine
the same run moves by ±30 % from one repeat to the next. This benchmark runs the same two workers (the
bare node, and the runtime with its reporter, risk guard and ledger; ``runtime_bench.py
--throughput-worker``) under valgrind's callgrind, which counts every instruction each thread executes:
the count does not depend on the machine's load. Each is run over two catalogs (``--bars``, 2,000 and
6,000 one-minute bars by default) and the difference of the counts is taken, so that start-up (the
interpreter, imports, the node's build) and shutdown cancel out and what is left is the replay of the
extra bars. It prints, per kind, the instructions of the event loop's thread (the main thread: the node,
the strategy, the reporter and the guard's handlers) and of all threads together (the ledger's writer
included), and the ratios bare ÷ runtime.

``--cache-sim`` also simulates the caches and the branch predictor (callgrind's ``--cache-sim=yes
--branch-sim=yes``; about twice as slow) and prints callgrind's cycle estimate, Ir + 10 × (branch
mispredictions + L1 misses) + 100 × last-level misses (valgrind's documentation, "Cycle estimation"):
code that runs once in a while and finds itself out of the caches costs more than its instructions say.
Neither figure includes waiting: for the interpreter's lock held by another thread, for the disk.

Needs ``valgrind`` on the PATH (Debian's package). A run takes 15–30 minutes on two cores.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine_header  # noqa: E402


def counts(out_prefix: Path) -> tuple[dict[str, int], dict[str, int]]:
    """The event counts of the main thread and of all threads, from callgrind's per-thread files."""
    main: dict[str, int] = {}
    total: dict[str, int] = {}
    files = sorted(out_prefix.parent.glob(out_prefix.name + "*"))
    if not files:
        raise SystemExit(f"callgrind wrote nothing for {out_prefix}")
    for path in files:
        names: list[str] = []
        values: list[int] = []
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("events:"):
                names = line.split()[1:]
            elif line.startswith("summary:"):
                values = [int(v) for v in line.split()[1:]]
        row = dict(zip(names, values, strict=False))
        for name, value in row.items():
            total[name] = total.get(name, 0) + value
        if path.name.endswith("-01"):  # callgrind numbers threads from 1, the main thread first
            main = row
    return main, total


def cycles(row: dict[str, int]) -> int:
    branch = row.get("Bcm", 0) + row.get("Bim", 0)
    l1 = row.get("I1mr", 0) + row.get("D1mr", 0) + row.get("D1mw", 0)
    last_level = row.get("ILmr", 0) + row.get("DLmr", 0) + row.get("DLmw", 0)
    return row["Ir"] + 10 * (branch + l1) + 100 * last_level


def run(kind: str, catalog: str, bars: int, ledger: str, outdir: Path, cache_sim: bool) -> tuple[dict, dict]:
    workdir = tempfile.mkdtemp(prefix="instructions-bench-")
    prefix = outdir / f"{kind}-{bars}.out"
    command = [
        "valgrind",
        "--tool=callgrind",
        "--separate-threads=yes",
        f"--callgrind-out-file={prefix}",
        *(["--cache-sim=yes", "--branch-sim=yes"] if cache_sim else []),
        sys.executable,
        str(ROOT / "bench" / "runtime_bench.py"),
        "--throughput-worker",
        "--workdir",
        workdir,
        "--catalog",
        catalog,
        *(["--runtime", "--ledger", ledger] if kind == "runtime" else []),
    ]
    try:
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if result.returncode != 0:
        raise SystemExit(f"{kind} over {bars} bars failed under valgrind:\n{result.stderr[-3000:]}")
    print(f"  {kind} over {bars} bars: done", file=sys.stderr, flush=True)
    return counts(prefix)


def main(args: argparse.Namespace) -> None:
    from livestrat.api.spec import SampleData
    from strategy_runtime.paper.catalog import write_sample_catalog

    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not on the PATH: install it (Debian: apt-get install valgrind)")
    low, high = sorted(args.bars)
    lines = machine_header("livestrat runtime cost in instructions (callgrind)")
    outdir = Path(tempfile.mkdtemp(prefix="instructions-bench-out-"))
    catalogs = {n: tempfile.mkdtemp(prefix=f"instructions-bench-catalog-{n}-") for n in (low, high)}
    try:
        for n, catalog in catalogs.items():
            write_sample_catalog(catalog, ["BTCUSDT.BINANCE"], SampleData(bars=n))
        measured: dict[str, dict[str, dict[str, int]]] = {}
        for kind in ("bare", "runtime"):
            (main_low, all_low), (main_high, all_high) = (
                run(kind, catalogs[n], n, args.ledger, outdir, args.cache_sim) for n in (low, high)
            )
            measured[kind] = {
                "main": {k: main_high[k] - main_low.get(k, 0) for k in main_high},
                "all": {k: all_high[k] - all_low.get(k, 0) for k in all_high},
            }
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
        for catalog in catalogs.values():
            shutil.rmtree(catalog, ignore_errors=True)
    bars = high - low
    lines.append(f"EMACross, the replay of {bars:,} bars ({high:,} less {low:,}; start-up and shutdown cancel out):")
    for scope, label in (("main", "event loop's thread"), ("all", "all threads")):
        bare, runtime = measured["bare"][scope], measured["runtime"][scope]
        lines.append(
            f"  {label:20} instructions: bare node {bare['Ir'] / bars:,.0f} a bar, runtime "
            f"{runtime['Ir'] / bars:,.0f} a bar; bare / runtime {bare['Ir'] / runtime['Ir']:.3f}"
        )
        if args.cache_sim:
            lines.append(
                f"  {label:20} estimated cycles: bare node {cycles(bare) / bars:,.0f} a bar, runtime "
                f"{cycles(runtime) / bars:,.0f} a bar; bare / runtime {cycles(bare) / cycles(runtime):.3f}"
            )
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bars", type=int, nargs=2, default=[2000, 6000], help="the two catalogs' sizes")
    parser.add_argument("--cache-sim", action="store_true", help="simulate caches and branches: cycle estimate")
    parser.add_argument("--ledger", default="sqlite", help="the runtime's ledger (sqlite; postgresql needs a DSN)")
    main(parser.parse_args())
