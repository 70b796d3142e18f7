"""Fill → ledger commit latency and burst throughput, SQLite and PostgreSQL.

    .venv/bin/python bench/ledger_bench.py [--burst 100000] [--seconds 5]

Starts its own throwaway PostgreSQL server (tests/support/postgres.py) and turns its
durability on (fsync, full_page_writes, synchronous_commit), so that a commit means
what it means in production; SQLite runs in WAL mode with synchronous=FULL, as the ledger
configures it. Latency is the time from ``record()`` to the moment the writer knows the
batch holding that fill has committed. PostgreSQL runs twice: without and with the fill spool
(the runtime's configuration: every fill not committed yet is synced to disk beside the
commit), and the spool's own cost is measured alone: one group appended and ``fdatasync``ed,
which is how long a fill takes to become durable while the database is away.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_model  # noqa: E402
from strategy_runtime.ledger import CommittedBatch, FillSpool, Ledger, PostgresLedger, SqliteLedger  # noqa: E402
from tests.support.event_loop import StallMeter  # noqa: E402
from tests.support.ledger import make_fill  # noqa: E402
from tests.support.postgres import start_postgres, stop_postgres  # noqa: E402


def filesystem(path: str) -> str:
    result = subprocess.run(["df", "--output=fstype", path], capture_output=True, text=True)
    lines = result.stdout.split()
    return lines[-1] if result.returncode == 0 and len(lines) > 1 else "unknown"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Latencies:
    def __init__(self) -> None:
        self.samples: list[float] = []
        self.batches = 0

    def __call__(self, batch: CommittedBatch) -> None:
        self.batches += 1
        self.samples.extend(batch.committed_at - t for t in batch.enqueued_at)

    def summary(self) -> str:
        ms = [s * 1000 for s in self.samples]
        return (
            f"p50 {percentile(ms, 0.50):7.2f} ms  p99 {percentile(ms, 0.99):7.2f} ms  max {max(ms):7.2f} ms  "
            f"({len(ms)} fills in {self.batches} batches)"
        )


async def paced(make_ledger, rate: int, seconds: float, key: str) -> str:
    """Fills at a steady rate, as a busy strategy makes them."""
    latencies = Latencies()
    async with make_ledger(key, latencies) as ledger:
        total = int(rate * seconds)
        started = time.monotonic()
        sent = 0
        while sent < total:
            due = min(total, int((time.monotonic() - started) * rate) + 1)
            while sent < due:
                ledger.record(make_fill(sent, key))
                sent += 1
            await asyncio.sleep(0.001)
        await ledger.flush()
    return latencies.summary()


async def burst(make_ledger, count: int, key: str) -> list[str]:
    """``count`` fills recorded back to back, then flushed."""
    fills = [make_fill(i, key) for i in range(count)]
    latencies = Latencies()
    async with make_ledger(key, latencies) as ledger:
        started = time.perf_counter()
        for fill in fills:
            ledger.record(fill)
        enqueued = time.perf_counter() - started
        async with StallMeter() as stalls:
            await ledger.flush()
        elapsed = time.perf_counter() - started
        assert await ledger.count(key) == count
    return [
        f"{count:,} fills committed in {elapsed:.2f} s = {count / elapsed:,.0f} fills/s",
        f"record() {enqueued / count * 1e6:.2f} µs per call ({enqueued * 1000:.0f} ms for all)",
        f"latency {latencies.summary()}",
        f"longest event-loop stall while the writer drained: {stalls.longest * 1000:.1f} ms",
    ]


def spool_sync(directory: Path, group: int, samples: int = 300) -> str:
    """One group of ``group`` fills appended to a spool and synced, ``samples`` times: fill → durable on disk."""
    spool = FillSpool(directory)
    spool.open()
    times: list[float] = []
    try:
        for n in range(samples):
            fills = [make_fill(n * group + i, "bench/spool") for i in range(group)]
            started = time.perf_counter()
            spool.append(fills, n * group)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        spool.close()
    return f"p50 {percentile(times, 0.50):6.2f} ms  p99 {percentile(times, 0.99):6.2f} ms  max {max(times):6.2f} ms"


async def run_backend(name: str, make_ledger, args: argparse.Namespace) -> None:
    print(f"\n{name}")
    for rate in (100, 1_000):
        result = await paced(make_ledger, rate, args.seconds, f"bench/paced-{rate}")
        print(f"  paced {rate:>5,} fills/s for {args.seconds:.0f} s: {result}")
    print(f"  burst of {args.burst:,}:")
    for line in await burst(make_ledger, args.burst, "bench/burst"):
        print(f"    {line}")


async def main(args: argparse.Namespace) -> None:
    print(f"ledger benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}")
    print(f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, asyncpg {asyncpg.__version__}")

    workdir = tempfile.mkdtemp(prefix="ledger-bench-")
    database = Path(workdir) / "ledger.sqlite"
    print(f"SQLite file on {filesystem(workdir)} (WAL, synchronous=FULL)")

    def sqlite_ledger(key: str, on_commit) -> Ledger:
        return SqliteLedger(database, key, on_commit=on_commit)

    server, process, tmp = start_postgres(durable=True)
    try:
        admin = await asyncpg.connect(server.dsn)
        version = await admin.fetchval("SHOW server_version")
        durability = {s: await admin.fetchval(f"SHOW {s}") for s in ("fsync", "synchronous_commit")}
        await admin.close()
        print(
            f"PostgreSQL {version} on localhost TCP, data on {filesystem(server.datadir)} "
            f"(fsync={durability['fsync']}, synchronous_commit={durability['synchronous_commit']})"
        )

        def postgres_ledger(key: str, on_commit) -> Ledger:
            return PostgresLedger(server.dsn, key, on_commit=on_commit)

        spools = Path(workdir) / "spools"

        def postgres_spooled_ledger(key: str, on_commit) -> Ledger:
            spool = FillSpool(spools / key.replace("/", "-") / str(time.monotonic_ns()))
            return PostgresLedger(server.dsn, key, on_commit=on_commit, spool=spool)

        await run_backend("SQLite", sqlite_ledger, args)
        await run_backend("PostgreSQL", postgres_ledger, args)
        await run_backend("PostgreSQL with the fill spool", postgres_spooled_ledger, args)
        print(f"\nfill spool alone, on {filesystem(workdir)}: one group appended and fdatasync'ed (fill → durable)")
        for group in (1, 100):
            print(f"  {group:>3} fill(s) a group: {spool_sync(spools / f'alone-{group}', group)}")
    finally:
        stop_postgres(process, tmp)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=100_000, help="fills in the burst (default 100,000)")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each paced run (default 5)")
    asyncio.run(main(parser.parse_args()))
