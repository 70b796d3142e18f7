"""Ledger test support: deterministic fills, the two backends, and a second runtime process.

As a program (``python -m tests.support.ledger``) it is the other runtime a fencing or
crash test needs: a separate process that holds a strategy's fence, or records fills
until it is killed (``acked``: a few at a time, as a busy replay does, printing ``DURABLE n``
each time the ledger acknowledges the first ``n`` as durable).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from strategy_runtime.ledger import CommittedBatch, FencedOut, FillRecord, Ledger, PostgresLedger, Side, SqliteLedger
from strategy_runtime.ledger.postgres import advisory_key
from strategy_runtime.ledger.records import COLUMNS, fill_from_columns

ROOT = Path(__file__).resolve().parents[2]
KEY = "desk/ema-cross"
T0 = 1_700_000_000_000_000_000
FENCED_OUT_EXIT = 3


def make_fill(i: int, key: str = KEY, **overrides: Any) -> FillRecord:
    """The i-th fill of a deterministic stream: alternating sides, exact prices with many digits."""
    values: dict[str, Any] = {
        "strategy_key": key,
        "trade_id": f"T-{i:07d}",
        "client_order_id": f"O-{i // 3:07d}",
        "venue_order_id": f"V-{i // 3:07d}",
        "instrument_id": "BTCUSDT-PERP.BINANCE",
        "side": Side.BUY if i % 2 == 0 else Side.SELL,
        "quantity": Decimal("0.001") * (1 + i % 7),
        "price": Decimal("64123.45") + Decimal(i % 101) / 100,
        "commission": Decimal("0.01282469") * (1 + i % 3),
        "commission_currency": "USDT",
        "ts_event": T0 + i * 1_000_000,
        "ts_init": T0 + i * 1_000_000 + 1_500,
        "position_id": "BTCUSDT-PERP.BINANCE-EMACross-000",
        "account_id": "BINANCE-001",
        "quote_currency": "USDT",
    }
    return FillRecord(**values | overrides)


def trade(
    n: int, side: str, quantity: str, price: str, *, instrument: str, quote: str, ts: int, fee: str = "0"
) -> FillRecord:
    """The ``n``-th fill of a test's hand-written trades: ``quantity`` at ``price``, exact, at ``ts``."""
    return FillRecord(
        strategy_key=KEY,
        trade_id=f"{instrument}-{n}",
        client_order_id=f"O-{n}",
        venue_order_id=f"V-{n}",
        instrument_id=instrument,
        side=Side(side),
        quantity=Decimal(quantity),
        price=Decimal(price),
        commission=Decimal(fee),
        commission_currency=quote,
        ts_event=ts,
        ts_init=ts,
        quote_currency=quote,
    )


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a test's ledger lives: ``kind`` sqlite (a file path) or postgresql (a DSN)."""

    kind: str
    location: str

    def ledger(self, key: str = KEY, **options: Any) -> Ledger:
        if self.kind == "sqlite":
            return SqliteLedger(self.location, key, **options)
        return PostgresLedger(self.location, key, **options)

    async def stored(self, key: str = KEY) -> int:
        """Fills committed for ``key``, read straight from the database, around any ledger."""
        if self.kind == "sqlite":
            return await asyncio.to_thread(self._stored_sqlite, key)
        conn = await asyncpg.connect(self.location)
        try:
            return await conn.fetchval("SELECT count(*) FROM fills WHERE strategy_key = $1", key)
        finally:
            await conn.close()

    def _stored_sqlite(self, key: str) -> int:
        with sqlite3.connect(self.location, timeout=10) as conn:
            return conn.execute("SELECT count(*) FROM fills WHERE strategy_key = ?", (key,)).fetchone()[0]

    async def schema_versions(self) -> list[int]:
        if self.kind == "sqlite":
            with sqlite3.connect(self.location) as conn:
                return [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY version")]
        conn = await asyncpg.connect(self.location)
        try:
            return [r["version"] for r in await conn.fetch("SELECT version FROM schema_version ORDER BY version")]
        finally:
            await conn.close()

    async def query_plan(self, sql: str) -> str:
        """How the database would run ``sql`` (PostgreSQL: with sequential scans off, so that a usable index shows
        whatever the table's size)."""
        if self.kind == "sqlite":
            with sqlite3.connect(self.location) as conn:
                return "\n".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
        conn = await asyncpg.connect(self.location)
        try:
            await conn.execute("SET enable_seqscan = off")
            return "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}"))
        finally:
            await conn.close()

    def spawn(self, mode: str, *, key: str = KEY, owner: str, count: int = 0) -> subprocess.Popen[str]:
        """Start ``python -m tests.support.ledger`` as another runtime process."""
        argv = [sys.executable, "-m", "tests.support.ledger", mode, self.kind, self.location, key, owner, str(count)]
        return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@contextlib.contextmanager
def sqlite_write_lock(path: str) -> Iterator[None]:
    """Hold an SQLite ledger's write lock (another process's long transaction): its writes wait, then fail."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def read_sqlite_fills(path: str, key: str) -> list[FillRecord]:
    """A strategy's fills straight from an SQLite ledger file (readable while a runtime holds it)."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            f"SELECT {', '.join(COLUMNS)} FROM fills WHERE strategy_key = ? ORDER BY ts_event, trade_id", (key,)
        ).fetchall()
    return [fill_from_columns(dict(zip(COLUMNS, row, strict=True))) for row in rows]


async def take_over_fence(dsn: str, key: str, owner: str = "another runtime (the test)") -> asyncpg.Connection:
    """Another runtime takes ``key``'s fence in the PostgreSQL ledger ``dsn`` from the runtime holding it.

    The server ends the holder's fencing session; this connection then asks for the lock, queued
    behind the dying session and so ahead of the holder's attempt to take it again (which first has
    to notice, and reconnect), and raises the epoch, as a runtime taking the fence does. It holds the
    fence until it is closed.
    """
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name LIKE 'livestrat-fence%' AND datname = current_database()"
    )
    await conn.execute("SELECT pg_advisory_lock($1)", advisory_key(f"fence:{key}"))
    await conn.execute(
        "UPDATE fences SET epoch = epoch + 1, owner = $2, acquired_at = now(), released_at = NULL"
        " WHERE strategy_key = $1",
        key,
        owner,
    )
    return conn


def wait_for_line(process: subprocess.Popen[str], expected: str, timeout: float = 30.0) -> str:
    """Read the process's stdout until a line starts with ``expected``; fail with its stderr if it exits
    first, and kill it and fail if no such line comes within ``timeout`` seconds."""
    assert process.stdout is not None
    stdout = process.stdout
    found: list[str] = []

    def read() -> None:
        for line in stdout:
            if line.startswith(expected):
                found.append(line)
                return

    reader = threading.Thread(target=read, name=f"wait-for-{expected}", daemon=True)
    reader.start()
    reader.join(timeout)
    if found:
        return found[0]
    if reader.is_alive():
        process.kill()
        process.wait(timeout=10)
        raise AssertionError(f"no line starting with {expected!r} within {timeout}s; the process was killed")
    process.wait(timeout=10)
    stderr = process.stderr.read() if process.stderr else ""
    raise AssertionError(f"process exited with {process.returncode} before printing {expected!r}:\n{stderr}")


def durable_acknowledged(stdout: str) -> int:
    """How many fills an ``acked`` process was told were durable (its last ``DURABLE n`` line)."""
    counts = [int(line.split()[1]) for line in stdout.splitlines() if line.startswith("DURABLE ")]
    return max(counts, default=0)


class Acknowledgements:
    """Prints ``DURABLE n`` each time the first ``n`` fills are acknowledged durable (a commit, a flush)."""

    def __init__(self) -> None:
        self.committed = 0

    def on_commit(self, batch: CommittedBatch) -> None:
        self.committed += len(batch.fills)
        print(f"DURABLE {self.committed}", flush=True)

    async def record(self, ledger: Ledger, key: str, count: int) -> None:
        """Fills a few at a time, every millisecond or two, and now and then a flush that waits for them."""
        recorded = 0

        async def flushes() -> None:  # a waiter, as a halt's flush is: it takes the commit's turn at once
            while True:
                target = recorded
                await ledger.flush_durable()
                print(f"DURABLE {target}", flush=True)
                await asyncio.sleep(0.013)

        flusher = asyncio.create_task(flushes())
        for i in range(count):
            ledger.record(make_fill(i, key))
            recorded = i + 1
            if i % 3 == 2:
                await asyncio.sleep(0.001 * (1 + i % 2))
        flusher.cancel()


async def _run(mode: str, target: Target, key: str, owner: str, count: int) -> int:
    acked = Acknowledgements() if mode == "acked" else None
    ledger = target.ledger(key, owner=owner, on_commit=acked.on_commit if acked is not None else None)
    try:
        await ledger.open()
    except FencedOut as exc:
        print(f"FENCED_OUT {exc}", flush=True)
        return FENCED_OUT_EXIT
    print("HOLDING", flush=True)
    if mode == "hold":
        await asyncio.Event().wait()
    if acked is not None:
        await acked.record(ledger, key, count)
    for i in range(count if mode == "record" else 0):
        ledger.record(make_fill(i, key))
        if i % 50 == 49:  # a steady trickle, like a busy strategy, so a kill lands mid-run
            await asyncio.sleep(0.005)
    await ledger.close()
    print("DONE", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="a second ledger-holding runtime, for tests")
    parser.add_argument("mode", choices=["hold", "record", "acked"])
    parser.add_argument("kind", choices=["sqlite", "postgresql"])
    parser.add_argument("location")
    parser.add_argument("key")
    parser.add_argument("owner")
    parser.add_argument("count", type=int)
    args = parser.parse_args()
    return asyncio.run(_run(args.mode, Target(args.kind, args.location), args.key, args.owner, args.count))


if __name__ == "__main__":
    sys.exit(main())
