"""The local ledger: one SQLite file, so driven that the event loop never waits on the disk.

The fills' commits go to the ledger's I/O process (``io_process``: no thread of this process takes the
interpreter's lock for them); everything else (the schema, the fence, reads, halt records, baselines, the rare
transaction of several statements) runs on a thread of its own, on the ledger's own connection.

Fence: ``fcntl.flock`` on a lock file per strategy next to the database
(``<db>.fences/<strategy>.lock``), held open for the life of the ledger, and the strategy's
epoch in ``fences`` raised when it is taken (the token every write checks, in the same
transaction, as in PostgreSQL). The kernel drops the lock when the process dies, however it
dies, and never while it lives, frozen or not: a successor never has a live holder's lease to
wait out. Per strategy, not per file, so several strategies may share one ledger file.

Decimals are stored as TEXT (their exact string form), never as SQLite REAL.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from livestrat.backoff import Backoff
from strategy_runtime.ledger.base import Ledger, Migration, pending_migrations
from strategy_runtime.ledger.errors import LedgerUnavailable
from strategy_runtime.ledger.fencing import FenceCheck, FenceGrant, FenceHolder, FenceTaken
from strategy_runtime.ledger.io_child import EPOCH_SQL, configure
from strategy_runtime.ledger.io_process import IoProcess, IoProcessError
from strategy_runtime.ledger.records import (
    COLUMNS,
    INFERRED_TRADE_PREFIX,
    FillRecord,
    HaltRecord,
    RiskBaseline,
    fill_from_columns,
    strategy_file_stem,
)
from strategy_runtime.ledger.supersede import Change, OrderKey, Supersession, is_inferred, plan
from strategy_runtime.ledger.writer import Written

T = TypeVar("T")
# The rows of inferred fills (and of position alignments: ``supersede`` tells them apart), as the partial index has it.
INFERRED_ROWS = f"trade_id LIKE '{INFERRED_TRADE_PREFIX}%'"
# The orders with an inferred fill superseded (whole or in part) and a trade of the order after it: a runtime before
# the rule took trades after the status into account may have let such a trade supersede it (``_supersede_stored``).
LATER_TRADES_SQL = (
    "SELECT DISTINCT s.strategy_key, s.instrument_id, s.venue_order_id FROM superseded_fills s JOIN fills f "
    "ON f.strategy_key = s.strategy_key AND f.instrument_id = s.instrument_id AND f.venue_order_id = s.venue_order_id "
    f"WHERE s.strategy_key IN ({{keys}}) AND f.ts_event > s.ts_event AND f.trade_id NOT LIKE '{INFERRED_TRADE_PREFIX}%'"
)

MIGRATIONS = (
    Migration(
        1,
        "fills and fences",
        (
            """
            CREATE TABLE fills (
                strategy_key        TEXT NOT NULL,
                trade_id            TEXT NOT NULL,
                client_order_id     TEXT NOT NULL,
                venue_order_id      TEXT NOT NULL,
                instrument_id       TEXT NOT NULL,
                side                TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
                quantity            TEXT NOT NULL,
                price               TEXT NOT NULL,
                commission          TEXT NOT NULL,
                commission_currency TEXT NOT NULL,
                ts_event            INTEGER NOT NULL,
                ts_init             INTEGER NOT NULL,
                position_id         TEXT,
                account_id          TEXT,
                quote_currency      TEXT,
                recorded_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
                PRIMARY KEY (strategy_key, instrument_id, trade_id)
            )
            """,
            "CREATE INDEX fills_by_time ON fills (strategy_key, ts_event, trade_id)",
            """
            CREATE TABLE fences (
                strategy_key TEXT PRIMARY KEY,
                owner        TEXT NOT NULL,
                acquired_at  TEXT NOT NULL,
                released_at  TEXT
            )
            """,
        ),
    ),
    Migration(
        2,
        "risk halts",
        (
            """
            CREATE TABLE risk_halts (
                strategy_key    TEXT NOT NULL,
                breached_at     TEXT NOT NULL,
                breached_limit  TEXT NOT NULL,
                reason          TEXT NOT NULL,
                owner           TEXT NOT NULL,
                acknowledgement TEXT,
                cleared_at      TEXT,
                cleared_by      TEXT,
                PRIMARY KEY (strategy_key, breached_at)
            )
            """,
            # At most one active halt per strategy: the first breach's reason is the one kept.
            "CREATE UNIQUE INDEX risk_halts_active ON risk_halts (strategy_key) WHERE cleared_at IS NULL",
        ),
    ),
    Migration(
        3,
        "risk baselines",
        (
            """
            CREATE TABLE risk_baselines (
                strategy_key TEXT PRIMARY KEY,
                day          TEXT NOT NULL,
                day_open     TEXT NOT NULL,
                peak         TEXT NOT NULL,
                updated_at   TEXT NOT NULL
            )
            """,
        ),
    ),
    Migration(
        4,
        "fencing tokens",
        (
            "ALTER TABLE fences ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE fences ADD COLUMN lease_seconds REAL",
            "ALTER TABLE fills ADD COLUMN fence_epoch INTEGER",
        ),
    ),
    Migration(5, "risk halts in market time", ("ALTER TABLE risk_halts ADD COLUMN breached_at_market TEXT",)),
    # The market price each fill's order met when it was sent (NULL: not known, or stored before).
    Migration(6, "arrival prices", ("ALTER TABLE fills ADD COLUMN arrival_price TEXT",)),
    # Inferred fills the venue's own trades superseded (``supersede``): each as first recorded, what of it still
    # counts in fills, and the trades that superseded the rest; and the inferred fills of an order, found fast.
    Migration(
        7,
        "superseded inferred fills",
        (
            # The fills columns as they stood at version 7, written out: a later fills column needs a migration of
            # its own here too (a fresh and an upgraded database stay alike).
            """
            CREATE TABLE superseded_fills (
                strategy_key        TEXT,
                trade_id            TEXT,
                client_order_id     TEXT,
                venue_order_id      TEXT,
                instrument_id       TEXT,
                side                TEXT,
                quantity            TEXT,
                price               TEXT,
                commission          TEXT,
                commission_currency TEXT,
                ts_event            INTEGER,
                ts_init             INTEGER,
                position_id         TEXT,
                account_id          TEXT,
                quote_currency      TEXT,
                arrival_price       TEXT,
                counted_quantity TEXT NOT NULL,
                superseded_by    TEXT NOT NULL,
                superseded_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
                fence_epoch      INTEGER,
                PRIMARY KEY (strategy_key, instrument_id, trade_id)
            )
            """,
            "CREATE INDEX superseded_by_order ON superseded_fills (strategy_key, instrument_id, venue_order_id)",
            "CREATE INDEX fills_inferred ON fills (strategy_key, instrument_id, venue_order_id) "
            "WHERE trade_id LIKE 'INFERRED-%'",
        ),
    ),
    # The fills of one venue order (what a batch touching an order with an inferred fill, and every open, reads),
    # found without reading the instrument's fills.
    Migration(
        8,
        "fills by venue order",
        ("CREATE INDEX fills_by_order ON fills (strategy_key, instrument_id, venue_order_id)",),
    ),
)

_ROW = f"({', '.join('?' for _ in COLUMNS)}, ?)"
_ROW_VALUES = len(COLUMNS) + 1


@functools.cache
def insert_sql(rows: int) -> str:
    """One INSERT of ``rows`` fills. One statement, not ``executemany``: the sqlite3 module gives up and
    takes back the interpreter's lock around every statement it steps, and each taking back waits for
    the replay's thread to let go of it."""
    return (
        f"INSERT INTO fills ({', '.join(COLUMNS)}, fence_epoch) VALUES {', '.join([_ROW] * rows)} "
        "ON CONFLICT (strategy_key, instrument_id, trade_id) DO NOTHING"
    )


@functools.cache
def fenced_insert_sql(rows: int) -> str:
    """``insert_sql`` that stores nothing unless the strategy's epoch is the writer's (its two last parameters: the
    strategy key, the epoch): the fence's check and the insert in one statement, one implicit transaction. Each
    statement stepped is a hand-off of the interpreter's lock and back (``insert_sql``): a commit as ``BEGIN``,
    ``SELECT``, ``INSERT``, ``COMMIT`` was four. The ``WHERE`` also keeps SQLite's parser from reading the
    ``ON CONFLICT`` as part of a join (its documentation on upserts after ``INSERT … SELECT``)."""
    return (
        f"INSERT INTO fills ({', '.join(COLUMNS)}, fence_epoch) SELECT * FROM (VALUES {', '.join([_ROW] * rows)}) "
        "WHERE EXISTS (SELECT 1 FROM fences WHERE strategy_key = ? AND epoch = ?) "
        "ON CONFLICT (strategy_key, instrument_id, trade_id) DO NOTHING"
    )


TAKE_SQL = (
    "INSERT INTO fences (strategy_key, owner, acquired_at, epoch, lease_seconds) VALUES (?, ?, ?, 1, ?) "
    "ON CONFLICT (strategy_key) DO UPDATE SET owner = excluded.owner, acquired_at = excluded.acquired_at, "
    "released_at = NULL, epoch = fences.epoch + 1, lease_seconds = excluded.lease_seconds RETURNING epoch"
)
SELECT_SQL = f"SELECT {', '.join(COLUMNS)} FROM fills WHERE strategy_key = ? ORDER BY ts_event, trade_id"
_ORDER = "strategy_key = ? AND instrument_id = ? AND venue_order_id = ?"
_SUPERSEDED = f"{', '.join(COLUMNS)}, counted_quantity, superseded_by"
SUPERSEDED_SQL = f"SELECT {_SUPERSEDED} FROM superseded_fills WHERE strategy_key = ? ORDER BY ts_event, trade_id"


def _from_sqlite(row: tuple[Any, ...]) -> FillRecord:
    return fill_from_columns(dict(zip(COLUMNS, row, strict=True)))


def _supersession(row: tuple[Any, ...]) -> Supersession:
    *fill, counted, by = row
    return Supersession(_from_sqlite(tuple(fill)), Decimal(counted), tuple(json.loads(by)))


def fence_lock_path(database: Path, strategy_key: str) -> Path:
    """The lock file of one strategy's fence: readable name, hash for uniqueness."""
    return database.with_name(f"{database.name}.fences") / f"{strategy_file_stem(strategy_key)}.lock"


class SqliteLedger(Ledger):
    MIGRATIONS = MIGRATIONS

    def __init__(self, path: str | os.PathLike[str], strategy_key: str, **options: Any) -> None:
        super().__init__(strategy_key, **options)
        self.path = Path(path)
        self._lock_path = fence_lock_path(self.path, strategy_key)
        # One thread owns the connection: calls run one after another, off the event loop.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._lock_inode: int | None = None
        # The fills' INSERTs: a child process with its own connection (``io_process``); the rest on the thread.
        self._inserts = IoProcess(["sqlite", str(self.path)])
        self._max_rows = 1

    def describe(self) -> str:
        return f"SQLite {self.path}"

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
        except FenceTaken:
            raise
        except (OSError, sqlite3.Error) as exc:
            # As every backend reports it (the file is locked, gone, full): the callers retry LedgerErrors.
            raise LedgerUnavailable(f"the ledger {self.describe()} failed: {self._error_text(exc)}") from exc

    async def _connect(self) -> None:
        try:
            await self._run(self._connect_sync)
            await self._inserts.start()
        except IoProcessError as exc:
            raise LedgerUnavailable(f"cannot open the ledger {self.describe()}: {exc}") from exc
        except LedgerUnavailable as exc:
            cause = exc.__cause__ or exc
            raise LedgerUnavailable(f"cannot open the ledger {self.describe()}: {cause}") from cause

    def _connect_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            configure(conn)
            _enable_wal(conn)
            # IMMEDIATE takes the write lock first: runtimes sharing the file migrate one at a time.
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
                    " description TEXT NOT NULL,"
                    " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
                )
                (current,) = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
                for migration in pending_migrations(self.MIGRATIONS, current):
                    for statement in migration.statements:
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_version (version, description) VALUES (?, ?)",
                        (migration.version, migration.description),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except BaseException:
            conn.close()
            raise
        self._max_rows = self._rows_per_statement(conn, extra=2)  # the fence's strategy key and epoch
        self._conn = conn

    async def _try_fence(self) -> FenceGrant | None:
        return await self._run(self._try_fence_sync)

    def _try_fence_sync(self) -> FenceGrant | None:
        assert self._conn is not None
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        self._lock_fd, self._lock_inode = fd, os.fstat(fd).st_ino
        with self._transaction() as conn:
            (epoch,) = conn.execute(
                TAKE_SQL, (self.strategy_key, self.owner, datetime.now(UTC).isoformat(), self._lease.seconds)
            ).fetchone()
        # The previous holder's flock ended with its process: it cannot be trading, no lease to wait out.
        return FenceGrant(epoch)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (rolled back on any error) on the ledger's thread."""
        assert self._conn is not None
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _fenced(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that goes ahead only while the fencing token is this runtime's (``FenceTaken``)."""
        with self._transaction() as conn:
            row = conn.execute(EPOCH_SQL, (self.strategy_key,)).fetchone()
            if row is None or row[0] != self._epoch:
                raise FenceTaken(self.strategy_key, self._epoch, row[0] if row else None, self.describe())
            yield conn

    async def _fence_holder(self) -> FenceHolder | None:
        return await self._run(self._fence_holder_sync)

    def _fence_holder_sync(self) -> FenceHolder | None:
        assert self._conn is not None
        row = self._conn.execute(
            "SELECT owner, acquired_at FROM fences WHERE strategy_key = ?", (self.strategy_key,)
        ).fetchone()
        return FenceHolder(row[0], datetime.fromisoformat(row[1])) if row else None

    async def _confirm_fence(self) -> FenceCheck:
        # A deleted or replaced lock file would let another process lock a new file: that is a loss.
        try:
            inode = os.stat(self._lock_path).st_ino
        except FileNotFoundError:
            return FenceCheck.lost(f"the fence lock file {self._lock_path} was removed")
        if inode != self._lock_inode:
            return FenceCheck.lost(f"the fence lock file {self._lock_path} was replaced")
        return FenceCheck.confirmed()

    async def _release_fence(self) -> None:
        await self._inserts.stop()  # nothing of this runtime's is written once the fence is let go
        await self._run(self._release_fence_sync)

    def _release_fence_sync(self) -> None:
        if self._conn is not None:
            self._conn.execute(
                "UPDATE fences SET released_at = ? WHERE strategy_key = ? AND epoch = ?",
                (datetime.now(UTC).isoformat(), self.strategy_key, self._epoch),
            )
        self._unlock()

    def _unlock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor drops the flock

    async def _disconnect(self) -> None:
        await self._inserts.stop()
        await self._run(self._disconnect_sync)
        self._executor.shutdown(wait=False)

    def _disconnect_sync(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        self._unlock()

    async def _insert(self, fills: Sequence[FillRecord]) -> int:
        if len(fills) > self._max_rows:  # SQLite before 3.32 takes 999 parameters a statement: several, on the thread
            return await self._run(self._insert_large_sync, fills)
        params = [*(value for fill in fills for value in (*fill.as_row(), self._epoch)), self.strategy_key, self._epoch]
        request = ("insert", fenced_insert_sql(len(fills)), params, self.strategy_key, self._epoch)
        try:
            outcome, value = await self._inserts.request(request)
        except IoProcessError as exc:
            # As every backend reports it: the callers retry LedgerErrors (a new I/O process, if this one died).
            raise LedgerUnavailable(f"the ledger {self.describe()} failed: {exc}") from exc
        if outcome == "fenced":
            raise FenceTaken(self.strategy_key, self._epoch, value, self.describe())
        return int(value)

    def _insert_large_sync(self, fills: Sequence[FillRecord]) -> int:
        with self._fenced() as conn:
            return self._insert_rows(conn, fills)

    @staticmethod
    def _rows_per_statement(conn: sqlite3.Connection, extra: int = 0) -> int:
        """As many rows per statement as SQLite takes parameters (32,766 since 3.32; 999 before)."""
        return max(1, (conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - extra) // _ROW_VALUES)

    def _insert_rows(self, conn: sqlite3.Connection, fills: Sequence[FillRecord]) -> int:
        before = conn.total_changes
        per_statement = self._rows_per_statement(conn)
        for start in range(0, len(fills), per_statement):
            chunk = fills[start : start + per_statement]
            conn.execute(insert_sql(len(chunk)), [value for fill in chunk for value in (*fill.as_row(), self._epoch)])
        return conn.total_changes - before

    async def _insert_superseding(self, fills: Sequence[FillRecord], orders: set[OrderKey]) -> Written:
        return await self._run(self._insert_superseding_sync, fills, orders)

    def _insert_superseding_sync(self, fills: Sequence[FillRecord], orders: set[OrderKey]) -> Written:
        with self._fenced() as conn:
            superseded = {
                (f.strategy_key, f.instrument_id, f.trade_id)
                for f in fills
                if is_inferred(f)
                and conn.execute(
                    "SELECT 1 FROM superseded_fills WHERE strategy_key = ? AND instrument_id = ? AND trade_id = ?",
                    (f.strategy_key, f.instrument_id, f.trade_id),
                ).fetchone()
            }
            # Binance's order ids (and so the inferred trade ids) are unique per instrument only.
            fresh = [f for f in fills if (f.strategy_key, f.instrument_id, f.trade_id) not in superseded]
            new = self._insert_rows(conn, fresh)
            changes: list[Change] = []
            for order in sorted(orders):
                rows = [
                    _from_sqlite(r)
                    for r in conn.execute(f"SELECT {', '.join(COLUMNS)} FROM fills WHERE {_ORDER}", order)
                ]
                stored = [
                    _supersession(r)
                    for r in conn.execute(f"SELECT {_SUPERSEDED} FROM superseded_fills WHERE {_ORDER}", order)
                ]
                changes += plan(rows, stored)
            for change in changes:
                self._apply_sync(conn, change)
            return Written(new, changes)

    def _apply_sync(self, conn: sqlite3.Connection, change: Change) -> None:
        s = change.supersession
        key = (s.fill.strategy_key, s.fill.instrument_id, s.fill.trade_id)
        where = "strategy_key = ? AND instrument_id = ? AND trade_id = ?"
        counted = s.counted_fill
        if counted is None:
            conn.execute(f"DELETE FROM fills WHERE {where}", key)
        elif change.before > 0:
            conn.execute(
                f"UPDATE fills SET quantity = ?, commission = ? WHERE {where}",
                (str(counted.quantity), str(counted.commission), *key),
            )
        else:
            conn.execute(insert_sql(1), (*counted.as_row(), self._epoch))
        if s.whole:
            conn.execute(f"DELETE FROM superseded_fills WHERE {where}", key)
            return
        conn.execute(
            f"INSERT INTO superseded_fills ({', '.join(COLUMNS)}, counted_quantity, superseded_by, superseded_at, "
            f"fence_epoch) VALUES ({', '.join('?' for _ in COLUMNS)}, ?, ?, ?, ?) "
            "ON CONFLICT (strategy_key, instrument_id, trade_id) DO UPDATE SET "
            "counted_quantity = excluded.counted_quantity, superseded_by = excluded.superseded_by, "
            "superseded_at = excluded.superseded_at, fence_epoch = excluded.fence_epoch",
            (*s.fill.as_row(), str(s.counted), json.dumps(list(s.by)), datetime.now(UTC).isoformat(), self._epoch),
        )

    async def _inferred_order_keys(self) -> set[OrderKey]:
        return await self._run(self._inferred_order_keys_sync)

    def _inferred_order_keys_sync(self) -> set[OrderKey]:
        assert self._conn is not None
        keys = (self.strategy_key, self.fills_key)
        rows = self._conn.execute(
            f"SELECT DISTINCT strategy_key, instrument_id, venue_order_id FROM fills WHERE strategy_key IN (?, ?) "
            f"AND {INFERRED_ROWS} UNION {LATER_TRADES_SQL.format(keys='?, ?')}",
            (*keys, *keys),
        )
        return {(k, i, v) for k, i, v in rows}

    async def _select_superseded(self, strategy_key: str) -> list[Supersession]:
        return await self._run(self._select_superseded_sync, strategy_key)

    def _select_superseded_sync(self, strategy_key: str) -> list[Supersession]:
        assert self._conn is not None
        return [_supersession(row) for row in self._conn.execute(SUPERSEDED_SQL, (strategy_key,))]

    async def _select(self, strategy_key: str) -> list[FillRecord]:
        return await self._run(self._select_sync, strategy_key)

    def _select_sync(self, strategy_key: str) -> list[FillRecord]:
        assert self._conn is not None
        return [_from_sqlite(row) for row in self._conn.execute(SELECT_SQL, (strategy_key,))]

    async def _count(self, strategy_key: str) -> int:
        return await self._run(self._count_sync, strategy_key)

    def _count_sync(self, strategy_key: str) -> int:
        assert self._conn is not None
        (count,) = self._conn.execute("SELECT count(*) FROM fills WHERE strategy_key = ?", (strategy_key,)).fetchone()
        return count

    async def _save_halt(self, halt: HaltRecord) -> None:
        await self._run(self._save_halt_sync, halt)

    def _save_halt_sync(self, halt: HaltRecord) -> None:
        with self._fenced() as conn:
            conn.execute(
                "INSERT INTO risk_halts (strategy_key, breached_at, breached_limit, reason, owner, acknowledgement, "
                "breached_at_market) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    self.strategy_key,
                    halt.breached_at.isoformat(),
                    halt.breached_limit,
                    halt.reason,
                    halt.owner,
                    halt.acknowledgement,
                    halt.breached_at_market.isoformat() if halt.breached_at_market is not None else None,
                ),
            )

    async def _load_halt(self) -> HaltRecord | None:
        return await self._run(self._load_halt_sync)

    def _load_halt_sync(self) -> HaltRecord | None:
        assert self._conn is not None
        row = self._conn.execute(
            "SELECT breached_limit, reason, breached_at, owner, acknowledgement, breached_at_market FROM risk_halts "
            "WHERE strategy_key = ? AND cleared_at IS NULL",
            (self.strategy_key,),
        ).fetchone()
        if row is None:
            return None
        market = datetime.fromisoformat(row[5]) if row[5] is not None else None
        return HaltRecord(row[0], row[1], datetime.fromisoformat(row[2]), row[3], row[4], market)

    async def _clear_halt(self, acknowledgement: str) -> None:
        await self._run(self._clear_halt_sync, acknowledgement)

    def _clear_halt_sync(self, acknowledgement: str) -> None:
        with self._fenced() as conn:
            conn.execute(
                "UPDATE risk_halts SET cleared_at = ?, cleared_by = ? WHERE strategy_key = ? AND cleared_at IS NULL",
                (datetime.now(UTC).isoformat(), acknowledgement, self.strategy_key),
            )

    async def _save_baseline(self, baseline: RiskBaseline) -> None:
        await self._run(self._save_baseline_sync, baseline)

    def _save_baseline_sync(self, baseline: RiskBaseline) -> None:
        with self._fenced() as conn:
            conn.execute(
                "INSERT INTO risk_baselines (strategy_key, day, day_open, peak, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (strategy_key) DO UPDATE SET day = excluded.day, day_open = excluded.day_open, "
                "peak = excluded.peak, updated_at = excluded.updated_at",
                (
                    self.strategy_key,
                    baseline.day.isoformat(),
                    json.dumps(dict(baseline.day_open), sort_keys=True),
                    json.dumps(dict(baseline.peak), sort_keys=True),
                    datetime.now(UTC).isoformat(),
                ),
            )

    async def _load_baseline(self) -> RiskBaseline | None:
        return await self._run(self._load_baseline_sync)

    def _load_baseline_sync(self) -> RiskBaseline | None:
        assert self._conn is not None
        row = self._conn.execute(
            "SELECT day, day_open, peak FROM risk_baselines WHERE strategy_key = ?", (self.strategy_key,)
        ).fetchone()
        if row is None:
            return None
        return RiskBaseline(date.fromisoformat(row[0]), json.loads(row[1]), json.loads(row[2]))


def _enable_wal(conn: sqlite3.Connection, timeout: float = 10.0) -> None:
    """Switch a database to WAL, waiting for other connections doing the same.

    Changing the journal mode of a fresh database takes an exclusive lock, and SQLite
    answers "database is locked" at once instead of honouring busy_timeout when two
    runtimes open the same new file together; so wait here, bounded like busy_timeout.
    """
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            attempt += 1
            time.sleep(Backoff(0.005, 0.2).delay(attempt))
