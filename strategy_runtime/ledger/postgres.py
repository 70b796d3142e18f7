"""The cluster ledger: PostgreSQL through asyncpg.

Fence: a session-level advisory lock on a 64-bit hash of the strategy key, taken on a
connection of its own that lives as long as the runtime, and the strategy's epoch in
``fences`` raised in the same step (the fencing token). The server frees the lock when that
session ends: at once when the process dies (the kernel closes its socket), after the TCP
settings below (about 25 s) when the runtime's node vanishes. The runtime confirms lock and
epoch on that session every third of the lease, each query bounded by a third of the lease.
When the session is gone or does not answer, it opens a new one and takes the lock again,
but only if the epoch is still its own (nobody else held the fence meanwhile); the lock held
by another session, or a newer epoch, is a loss. Every write checks the epoch in its own
transaction: one ``INSERT … SELECT`` whose CTE takes a share lock on the strategy's ``fences``
row, so a write and a takeover are ordered and a stale runtime's insert stores nothing.

The DSN holds a password: it is parsed once (``strategy_runtime.ledger.dsn``), kept in one
attribute, handed to asyncpg in parts (nothing parses it again), never logged, and every error
text that leaves this module is scrubbed of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import asyncpg

from livestrat.api.runtime_config import ENV_LEDGER_DSN
from strategy_runtime.ledger.base import Ledger, Migration, pending_migrations
from strategy_runtime.ledger.dsn import DsnParts
from strategy_runtime.ledger.errors import LedgerError, LedgerUnavailable
from strategy_runtime.ledger.fencing import FENCE_LEASE_SECONDS, FenceCheck, FenceGrant, FenceHolder, FenceTaken
from strategy_runtime.ledger.records import (
    COLUMNS,
    DECIMAL_COLUMNS,
    INFERRED_TRADE_PREFIX,
    INTEGER_COLUMNS,
    FillRecord,
    HaltRecord,
    RiskBaseline,
)
from strategy_runtime.ledger.supersede import Change, OrderKey, Supersession, is_inferred, plan
from strategy_runtime.ledger.writer import Written

# TCP settings of the fencing session: the server drops a silent peer's session, and with
# it the lock, after idle + interval * count = 25 s, or 25 s of unacknowledged data
# (tcp_user_timeout, PostgreSQL 12+; without it retransmissions could hold the lock for
# a quarter of an hour). The runtime itself stops ordering when its lease runs out (6 s).
FENCE_TCP_SETTINGS = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "25000",
}
CONNECT_TIMEOUT_SECONDS = 10.0
COMMAND_TIMEOUT_SECONDS = 30.0
# How long closing waits for the server to say goodbye before it just drops the connections.
DISCONNECT_TIMEOUT_SECONDS = 2.0

logger = logging.getLogger("livestrat.ledger")
# The rows of inferred fills (and of position alignments: ``supersede`` tells them apart), as the partial index of
# migration 7 has it (written out there: the two must stay the same text for the planner to use the index).
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
                strategy_key        text COLLATE "C" NOT NULL,
                trade_id            text COLLATE "C" NOT NULL,
                client_order_id     text NOT NULL,
                venue_order_id      text NOT NULL,
                instrument_id       text COLLATE "C" NOT NULL,
                side                text NOT NULL CHECK (side IN ('BUY', 'SELL')),
                quantity            numeric NOT NULL CHECK (quantity > 0),
                price               numeric NOT NULL,
                commission          numeric NOT NULL,
                commission_currency text NOT NULL,
                ts_event            bigint NOT NULL,
                ts_init             bigint NOT NULL,
                position_id         text,
                account_id          text,
                quote_currency      text,
                recorded_at         timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (strategy_key, instrument_id, trade_id)
            )
            """,
            "CREATE INDEX fills_by_time ON fills (strategy_key, ts_event, trade_id)",
            """
            CREATE TABLE fences (
                strategy_key text PRIMARY KEY,
                owner        text NOT NULL,
                acquired_at  timestamptz NOT NULL,
                released_at  timestamptz
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
                strategy_key    text NOT NULL,
                breached_at     timestamptz NOT NULL,
                breached_limit  text NOT NULL,
                reason          text NOT NULL,
                owner           text NOT NULL,
                acknowledgement text,
                cleared_at      timestamptz,
                cleared_by      text,
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
                strategy_key text PRIMARY KEY,
                day          date NOT NULL,
                day_open     jsonb NOT NULL,
                peak         jsonb NOT NULL,
                updated_at   timestamptz NOT NULL DEFAULT now()
            )
            """,
        ),
    ),
    Migration(
        4,
        "fencing tokens",
        (
            # The token: raised by every runtime that takes the fence, checked by every write.
            "ALTER TABLE fences ADD COLUMN epoch bigint NOT NULL DEFAULT 0",
            # The holder's lease: a successor taking the fence from a holder that did not release it waits this long.
            "ALTER TABLE fences ADD COLUMN lease_seconds double precision",
            # Which holder wrote each fill (NULL: written before tokens existed).
            "ALTER TABLE fills ADD COLUMN fence_epoch bigint",
        ),
    ),
    # The market time of the event that broke the limit, beside breached_at (the wall clock's).
    Migration(5, "risk halts in market time", ("ALTER TABLE risk_halts ADD COLUMN breached_at_market timestamptz",)),
    # The market price each fill's order met when it was sent (NULL: not known, or stored before).
    Migration(6, "arrival prices", ("ALTER TABLE fills ADD COLUMN arrival_price numeric",)),
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
                strategy_key        text COLLATE "C",
                trade_id            text COLLATE "C",
                client_order_id     text,
                venue_order_id      text,
                instrument_id       text COLLATE "C",
                side                text,
                quantity            numeric,
                price               numeric,
                commission          numeric,
                commission_currency text,
                ts_event            bigint,
                ts_init             bigint,
                position_id         text,
                account_id          text,
                quote_currency      text,
                arrival_price       numeric,
                counted_quantity numeric NOT NULL,
                superseded_by    jsonb NOT NULL,
                superseded_at    timestamptz NOT NULL DEFAULT now(),
                fence_epoch      bigint,
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


def advisory_key(name: str) -> int:
    """A signed 64-bit advisory lock key for ``name`` (the lock space is shared by the whole database)."""
    return int.from_bytes(hashlib.sha256(f"livestrat.ledger:{name}".encode()).digest()[:8], "big", signed=True)


MIGRATION_LOCK = advisory_key("migrate")

_ARRAYS = ", ".join(f"${i}::{'bigint' if c in INTEGER_COLUMNS else 'text'}[]" for i, c in enumerate(COLUMNS, 1))
_VALUES = ", ".join(f"{c}::numeric" if c in DECIMAL_COLUMNS else c for c in COLUMNS)
# One statement for the whole batch: column arrays unnested into rows. Atomic on its own,
# and its status ("INSERT 0 n") counts the new rows, which executemany cannot. Decimals
# travel as text and are cast on the server: exact, and far cheaper to encode than numeric.
# The fencing token is checked in the same statement: the share lock on the fences row orders
# this insert and a takeover's UPDATE of the epoch (whichever waits for the other sees its result).
_TOKEN = len(COLUMNS) + 1
INSERT_SQL = (
    f"WITH fence AS (SELECT epoch FROM fences WHERE strategy_key = ${_TOKEN + 1} FOR SHARE), "
    f"inserted AS (INSERT INTO fills ({', '.join(COLUMNS)}, fence_epoch) "
    f"SELECT {_VALUES}, ${_TOKEN}::bigint FROM unnest({_ARRAYS}) AS batch ({', '.join(COLUMNS)}) "
    f"WHERE (SELECT epoch FROM fence) = ${_TOKEN}::bigint "
    "ON CONFLICT (strategy_key, instrument_id, trade_id) DO NOTHING RETURNING 1) "
    "SELECT (SELECT epoch FROM fence) AS epoch, (SELECT count(*) FROM inserted) AS new"
)
SELECT_SQL = f"SELECT {', '.join(COLUMNS)} FROM fills WHERE strategy_key = $1 ORDER BY ts_event, trade_id"
_ORDER = "strategy_key = $1 AND instrument_id = $2 AND venue_order_id = $3"
_SUPERSEDED = f"{', '.join(COLUMNS)}, counted_quantity, superseded_by::text"
SUPERSEDED_SQL = f"SELECT {_SUPERSEDED} FROM superseded_fills WHERE strategy_key = $1 ORDER BY ts_event, trade_id"
_KEY = "strategy_key = $1 AND instrument_id = $2 AND trade_id = $3"
_N = len(COLUMNS)
SUPERSEDE_SQL = (
    f"INSERT INTO superseded_fills ({', '.join(COLUMNS)}, counted_quantity, superseded_by, fence_epoch) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, _N + 1))}, ${_N + 1}::numeric, ${_N + 2}::jsonb, ${_N + 3}) "
    "ON CONFLICT (strategy_key, instrument_id, trade_id) DO UPDATE SET counted_quantity = excluded.counted_quantity, "
    "superseded_by = excluded.superseded_by, superseded_at = now(), fence_epoch = excluded.fence_epoch"
)


def _supersession(row: Sequence[Any]) -> Supersession:
    *fill, counted, by = row
    return Supersession(FillRecord(*fill), counted, tuple(json.loads(by)))


def _typed_row(fill: FillRecord) -> tuple[Any, ...]:
    """``fill``'s values as asyncpg binds them to typed columns: decimals as Decimals."""
    return tuple(getattr(fill, c) if c in DECIMAL_COLUMNS else v for c, v in zip(COLUMNS, fill.as_row(), strict=True))


# A bigint advisory lock shows in pg_locks as classid = high 32 bits, objid = low 32 bits, objsubid = 1.
CONFIRM_SQL = """
    SELECT EXISTS (
        SELECT 1 FROM pg_locks
        WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
          AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1
    ) AS locked, (SELECT epoch FROM fences WHERE strategy_key = $3) AS epoch
"""
TAKE_SQL = (
    "INSERT INTO fences (strategy_key, owner, acquired_at, epoch, lease_seconds) VALUES ($1, $2, now(), 1, $3) "
    "ON CONFLICT (strategy_key) DO UPDATE SET owner = excluded.owner, acquired_at = excluded.acquired_at, "
    "released_at = NULL, epoch = fences.epoch + 1, lease_seconds = excluded.lease_seconds RETURNING epoch"
)


class PostgresLedger(Ledger):
    MIGRATIONS = MIGRATIONS

    def __init__(
        self,
        dsn: DsnParts | str,
        strategy_key: str,
        *,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        command_timeout: float = COMMAND_TIMEOUT_SECONDS,
        **options: Any,
    ) -> None:
        super().__init__(strategy_key, **options)
        # A DSN given as text is parsed here (InvalidDsn when it cannot be read whole).
        self._where = dsn if isinstance(dsn, DsnParts) else DsnParts.parse(dsn)
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._fence_key = advisory_key(f"fence:{strategy_key}")
        self._pool: asyncpg.Pool | None = None
        self._fence_conn: asyncpg.Connection | None = None
        self._fence_app = f"livestrat-fence {self.owner}"[:63]  # names this process's fencing session
        self._fence_pid: int | None = None  # its server process, to end it if it outlives its connection

    def describe(self) -> str:
        return f"PostgreSQL {self._where}"

    def redact(self, text: str) -> str:
        return self._where.redact(text)

    def _unavailable(self, doing: str, exc: BaseException) -> LedgerUnavailable:
        return LedgerUnavailable(f"cannot {doing} the ledger database {self._where}: {self._error_text(exc)}")

    @contextlib.contextmanager
    def _database(self, doing: str) -> Iterator[asyncpg.Pool]:
        """The connection pool, to ``doing`` the ledger database: whatever fails in the block is raised as
        ``LedgerUnavailable`` saying what was being done and where (never the DSN's password)."""
        assert self._pool is not None, "the ledger is not connected"
        try:
            yield self._pool
        except FenceTaken:
            raise
        except Exception as exc:
            raise self._unavailable(doing, exc) from None

    async def _connect(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                **self._where.connect_arguments(),
                min_size=1,
                max_size=2,  # the writer and a reader
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
                server_settings={"application_name": "livestrat-ledger"},
            )
            await self._migrate()
            self._fence_conn = await self._fence_connection(self._connect_timeout)
        except LedgerError:
            raise
        except asyncpg.InvalidAuthorizationSpecificationError as exc:  # the login itself was refused
            raise LedgerUnavailable(
                f"cannot connect to the ledger database {self._where}: {self._error_text(exc)}; check the user and "
                f"password of the ledger DSN ({ENV_LEDGER_DSN}, which the operator fills from spec.ledger.dsnSecret)"
            ) from None
        except Exception as exc:
            raise self._unavailable("connect to", exc) from None

    async def _migrate(self) -> None:
        """Apply the pending migrations in one transaction, under the migration lock, on a connection of its own
        without a command timeout, and with ``statement_timeout`` off for that transaction: an index built on a
        large shared ``fills`` table (migrations 7 and 8) can take minutes, and one that timed out would be rolled
        back at every start (docs/ledger.md, "Schema"). The quick statements keep the pool's timeout."""
        conn = await asyncpg.connect(
            **self._where.connect_arguments(),
            timeout=self._connect_timeout,
            command_timeout=None,
            server_settings={"application_name": "livestrat-ledger-migrate"},
        )
        quick = self._command_timeout
        try:
            async with conn.transaction():
                await conn.execute("SET LOCAL statement_timeout = 0", timeout=quick)
                # Two runtimes starting together would race on CREATE TABLE: migrate one at a time (a runtime that
                # finds another migrating waits for it, however long its migration takes).
                await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version ("
                    " version integer PRIMARY KEY, description text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())",
                    timeout=quick,
                )
                current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version", timeout=quick)
                pending = pending_migrations(self.MIGRATIONS, current)
                if pending:
                    logger.info(
                        "ledger: migrating %s from schema version %d to %d (an index on a large fills table takes a "
                        "while, and holds other writers to it until it is built)",
                        self.describe(),
                        current,
                        pending[-1].version,
                    )
                for migration in pending:
                    for statement in migration.statements:
                        await conn.execute(statement)
                    await conn.execute(
                        "INSERT INTO schema_version (version, description) VALUES ($1, $2)",
                        migration.version,
                        migration.description,
                        timeout=quick,
                    )
        finally:
            await conn.close(timeout=quick)

    async def _fence_connection(self, timeout: float) -> asyncpg.Connection:
        return await asyncpg.connect(
            **self._where.connect_arguments(),
            timeout=timeout,
            server_settings={"application_name": self._fence_app, **FENCE_TCP_SETTINGS},
        )

    def _watch_fence_connection(self, conn: asyncpg.Connection) -> None:
        self._fence_conn, self._fence_pid = conn, conn.get_server_pid()
        conn.add_termination_listener(self._fence_connection_closed)

    def _drop_fence_connection(self) -> None:
        """Forget the fencing connection without a word to the server (it may not be listening)."""
        conn, self._fence_conn = self._fence_conn, None
        if conn is not None:
            conn.remove_termination_listener(self._fence_connection_closed)
            conn.terminate()

    async def _try_fence(self) -> FenceGrant | None:
        assert self._fence_conn is not None
        with self._database("take the fence in"):
            conn = self._fence_conn
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._fence_key):
                return None
            async with conn.transaction():
                previous = await conn.fetchrow(
                    "SELECT released_at, lease_seconds FROM fences WHERE strategy_key = $1 FOR UPDATE",
                    self.strategy_key,
                )
                epoch = await conn.fetchval(TAKE_SQL, self.strategy_key, self.owner, self._lease.seconds)
        self._watch_fence_connection(conn)
        unreleased = previous is not None and previous["released_at"] is None
        wait = (previous["lease_seconds"] or FENCE_LEASE_SECONDS) if unreleased else 0.0
        return FenceGrant(epoch, wait)

    def _fence_connection_closed(self, _connection: asyncpg.Connection) -> None:
        # The session and its lock are gone; the fence is not lost for sure: taken again at once if the
        # epoch shows that nobody else held it meanwhile.
        self._fence_suspect(f"the fencing connection to {self._where} closed")

    async def _fence_holder(self) -> FenceHolder | None:
        assert self._pool is not None
        try:
            row = await self._pool.fetchrow(
                "SELECT owner, acquired_at FROM fences WHERE strategy_key = $1", self.strategy_key
            )
        except Exception:
            return None  # the refusal matters more than naming the holder
        return FenceHolder(row["owner"], row["acquired_at"]) if row else None

    async def _confirm_fence(self) -> FenceCheck:
        conn = self._fence_conn
        why = f"the fencing connection to {self._where} is gone"
        if conn is not None and not conn.is_closed():
            high, low = (self._fence_key >> 32) & 0xFFFFFFFF, self._fence_key & 0xFFFFFFFF
            try:
                row = await conn.fetchrow(
                    CONFIRM_SQL, high, low, self.strategy_key, timeout=self._fence_confirm_timeout
                )
            except Exception as exc:
                why = f"the fencing session at {self._where} did not answer: {self._error_text(exc)}"
            else:
                if not row["locked"]:
                    return FenceCheck.lost("the advisory lock is no longer held by the fencing session")
                if row["epoch"] != self._epoch:
                    return self._epoch_moved(row["epoch"])
                return FenceCheck.confirmed()
        return await self._take_again(why)

    def _epoch_moved(self, epoch: int | None) -> FenceCheck:
        return FenceCheck.lost(
            f"another runtime took the fence (epoch {epoch}, this runtime's {self._epoch}) while this one "
            "could not reach the database"
        )

    async def _take_again(self, why: str) -> FenceCheck:
        """A new fencing session: the lock again, if the epoch is still ours; else lost (or unknown: unreachable)."""
        old_pid = self._fence_pid
        self._drop_fence_connection()
        timeout = self._fence_confirm_timeout
        try:
            conn = await self._fence_connection(timeout)
        except Exception as exc:
            return FenceCheck.unknown(f"{why}; reconnecting failed: {self._error_text(exc)}")
        try:
            check = await asyncio.wait_for(self._retake(conn, old_pid), timeout)
        except Exception as exc:
            conn.terminate()
            return FenceCheck.unknown(f"{why}; taking the fence again failed: {self._error_text(exc)}")
        if check.held:
            self._watch_fence_connection(conn)
            logger.warning("ledger: fence for %s taken again on a new session (%s)", self.strategy_key, why)
        else:
            conn.terminate()
        return check

    async def _retake(self, conn: asyncpg.Connection, old_pid: int | None) -> FenceCheck:
        locked = await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._fence_key)
        if not locked and old_pid is not None:
            # Our own old session may still hold it (the server has not noticed its client is gone): end it.
            ended = await conn.fetchval(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1 AND application_name = $2",
                old_pid,
                self._fence_app,
            )
            while ended and not locked:
                await asyncio.sleep(0.05)
                locked = await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._fence_key)
        if not locked:
            holder = await conn.fetchval("SELECT owner FROM fences WHERE strategy_key = $1", self.strategy_key)
            return FenceCheck.lost(f"the fence's lock is held by another session (the fences table names {holder})")
        epoch = await conn.fetchval("SELECT epoch FROM fences WHERE strategy_key = $1", self.strategy_key)
        if epoch != self._epoch:
            await conn.fetchval("SELECT pg_advisory_unlock($1)", self._fence_key)
            return self._epoch_moved(epoch)
        return FenceCheck.confirmed()

    async def _release_fence(self) -> None:
        conn = self._fence_conn
        if conn is None or conn.is_closed():
            return
        conn.remove_termination_listener(self._fence_connection_closed)
        await conn.execute(
            "UPDATE fences SET released_at = now() WHERE strategy_key = $1 AND epoch = $2",
            self.strategy_key,
            self._epoch,
        )
        await conn.fetchval("SELECT pg_advisory_unlock($1)", self._fence_key)

    async def _disconnect(self) -> None:
        # Bounded: a server that does not answer (a partition) must not hold the halt up.
        conn, self._fence_conn = self._fence_conn, None
        if conn is not None:
            conn.remove_termination_listener(self._fence_connection_closed)
            try:
                await conn.close(timeout=DISCONNECT_TIMEOUT_SECONDS)
            except Exception:
                conn.terminate()
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), DISCONNECT_TIMEOUT_SECONDS)
            except Exception:
                pool.terminate()

    async def _insert(self, fills: Sequence[FillRecord]) -> int:
        assert self._pool is not None
        columns = list(zip(*(fill.as_row() for fill in fills), strict=True))
        async with self._pool.acquire(timeout=self._connect_timeout) as conn:
            row = await conn.fetchrow(INSERT_SQL, *columns, self._epoch, self.strategy_key)
        if row["epoch"] != self._epoch:
            raise FenceTaken(self.strategy_key, self._epoch, row["epoch"], str(self._where))
        return row["new"]

    @contextlib.asynccontextmanager
    async def _fenced(self, doing: str) -> AsyncIterator[asyncpg.Connection]:
        """A transaction that writes only while the fencing token is this runtime's (``FenceTaken``), errors
        raised as ``LedgerUnavailable`` saying what was being done (see ``_database``)."""
        with self._database(doing) as pool:
            async with pool.acquire(timeout=self._connect_timeout) as conn, conn.transaction():
                epoch = await conn.fetchval(
                    "SELECT epoch FROM fences WHERE strategy_key = $1 FOR SHARE", self.strategy_key
                )
                if epoch != self._epoch:
                    raise FenceTaken(self.strategy_key, self._epoch, epoch, str(self._where))
                yield conn

    async def _insert_superseding(self, fills: Sequence[FillRecord], orders: set[OrderKey]) -> Written:
        async with self._fenced("write fills to") as conn:
            inferred = [f for f in fills if is_inferred(f)]
            superseded: set[tuple[str, str, str]] = set()
            if inferred:
                rows = await conn.fetch(
                    "SELECT strategy_key, instrument_id, trade_id FROM superseded_fills "
                    "WHERE strategy_key = ANY($1::text[]) AND trade_id = ANY($2::text[])",
                    sorted({f.strategy_key for f in inferred}),
                    sorted({f.trade_id for f in inferred}),
                )
                superseded = {(r[0], r[1], r[2]) for r in rows}
            fresh = [
                f for f in fills if not (is_inferred(f) and (f.strategy_key, f.instrument_id, f.trade_id) in superseded)
            ]
            new = 0
            if fresh:
                columns = list(zip(*(fill.as_row() for fill in fresh), strict=True))
                new = (await conn.fetchrow(INSERT_SQL, *columns, self._epoch, self.strategy_key))["new"]
            changes: list[Change] = []
            for order in sorted(orders):
                rows = await conn.fetch(f"SELECT {', '.join(COLUMNS)} FROM fills WHERE {_ORDER}", *order)
                stored = await conn.fetch(f"SELECT {_SUPERSEDED} FROM superseded_fills WHERE {_ORDER}", *order)
                changes += plan([FillRecord(*r) for r in rows], [_supersession(r) for r in stored])
            for change in changes:
                await self._apply(conn, change)
        return Written(new, changes)

    async def _apply(self, conn: asyncpg.Connection, change: Change) -> None:
        s = change.supersession
        key = (s.fill.strategy_key, s.fill.instrument_id, s.fill.trade_id)
        counted = s.counted_fill
        if counted is None:
            await conn.execute(f"DELETE FROM fills WHERE {_KEY}", *key)
        elif change.before > 0:
            await conn.execute(
                f"UPDATE fills SET quantity = $4, commission = $5 WHERE {_KEY}",
                *key,
                counted.quantity,
                counted.commission,
            )
        else:
            columns = [[v] for v in counted.as_row()]
            await conn.fetchrow(INSERT_SQL, *columns, self._epoch, self.strategy_key)
        if s.whole:
            await conn.execute(f"DELETE FROM superseded_fills WHERE {_KEY}", *key)
        else:
            await conn.execute(SUPERSEDE_SQL, *_typed_row(s.fill), s.counted, json.dumps(list(s.by)), self._epoch)

    async def _inferred_order_keys(self) -> set[OrderKey]:
        with self._database("read from") as pool:
            rows = await pool.fetch(
                "SELECT DISTINCT strategy_key, instrument_id, venue_order_id FROM fills "
                f"WHERE strategy_key = ANY($1::text[]) AND {INFERRED_ROWS} "
                f"UNION {LATER_TRADES_SQL.format(keys='SELECT unnest($1::text[])')}",
                sorted({self.strategy_key, self.fills_key}),
            )
        return {(r[0], r[1], r[2]) for r in rows}

    async def _select_superseded(self, strategy_key: str) -> list[Supersession]:
        with self._database("read from") as pool:
            rows = await pool.fetch(SUPERSEDED_SQL, strategy_key)
        return [_supersession(row) for row in rows]

    async def _select(self, strategy_key: str) -> list[FillRecord]:
        with self._database("read from") as pool:
            rows = await pool.fetch(SELECT_SQL, strategy_key)
        return [FillRecord(*row) for row in rows]

    async def _count(self, strategy_key: str) -> int:
        with self._database("read from") as pool:
            return await pool.fetchval("SELECT count(*) FROM fills WHERE strategy_key = $1", strategy_key)

    async def _save_halt(self, halt: HaltRecord) -> None:
        async with self._fenced("write a risk halt to") as conn:
            await conn.execute(
                "INSERT INTO risk_halts (strategy_key, breached_at, breached_limit, reason, owner, acknowledgement, "
                "breached_at_market) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                self.strategy_key,
                halt.breached_at,
                halt.breached_limit,
                halt.reason,
                halt.owner,
                halt.acknowledgement,
                halt.breached_at_market,
            )

    async def _load_halt(self) -> HaltRecord | None:
        with self._database("read risk halts from") as pool:
            row = await pool.fetchrow(
                "SELECT breached_limit, reason, breached_at, owner, acknowledgement, breached_at_market"
                " FROM risk_halts WHERE strategy_key = $1 AND cleared_at IS NULL",
                self.strategy_key,
            )
        return HaltRecord(*row) if row is not None else None

    async def _clear_halt(self, acknowledgement: str) -> None:
        async with self._fenced("clear a risk halt in") as conn:
            await conn.execute(
                "UPDATE risk_halts SET cleared_at = now(), cleared_by = $2"
                " WHERE strategy_key = $1 AND cleared_at IS NULL",
                self.strategy_key,
                acknowledgement,
            )

    async def _save_baseline(self, baseline: RiskBaseline) -> None:
        async with self._fenced("write the risk baseline to") as conn:
            await conn.execute(
                "INSERT INTO risk_baselines (strategy_key, day, day_open, peak, updated_at)"
                " VALUES ($1, $2, $3::jsonb, $4::jsonb, now()) ON CONFLICT (strategy_key) DO UPDATE"
                " SET day = excluded.day, day_open = excluded.day_open, peak = excluded.peak, updated_at = now()",
                self.strategy_key,
                baseline.day,
                json.dumps(dict(baseline.day_open), sort_keys=True),
                json.dumps(dict(baseline.peak), sort_keys=True),
            )

    async def _load_baseline(self) -> RiskBaseline | None:
        with self._database("read the risk baseline from") as pool:
            row = await pool.fetchrow(
                "SELECT day, day_open::text, peak::text FROM risk_baselines WHERE strategy_key = $1",
                self.strategy_key,
            )
        if row is None:
            return None
        return RiskBaseline(row["day"], json.loads(row["day_open"]), json.loads(row["peak"]))
