"""The cluster ledger: PostgreSQL through asyncpg.

Fence: a session-level advisory lock on a 64-bit hash of the strategy key, taken on a
connection of its own that lives as long as the runtime. The server frees it when that
session ends: at once when the process dies (the kernel closes its socket), after the TCP
TCP settings below (about 25 s) when the runtime's node vanishes. The runtime checks the
session every ``fence_check_interval`` seconds and reacts at once to the connection
closing, so it learns of a loss well before the server would let another runtime in.

The DSN holds a password: it is parsed once (``strategy_runtime.ledger.dsn``), kept in one
attribute, handed to asyncpg in parts (nothing parses it again), never logged, and every error
text that leaves this module is scrubbed of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from livestrat.api.runtime_config import ENV_LEDGER_DSN
from strategy_runtime.ledger.base import Ledger, Migration, pending_migrations
from strategy_runtime.ledger.dsn import DsnParts
from strategy_runtime.ledger.errors import LedgerError, LedgerUnavailable
from strategy_runtime.ledger.fencing import FenceHolder
from strategy_runtime.ledger.records import (
    COLUMNS,
    DECIMAL_COLUMNS,
    INTEGER_COLUMNS,
    FillRecord,
    HaltRecord,
    RiskBaseline,
)

# TCP settings of the fencing session: the server drops a silent peer's session, and with
# it the lock, after idle + interval * count = 25 s, or 25 s of unacknowledged data
# (tcp_user_timeout, PostgreSQL 12+; without it retransmissions could hold the lock for
# a quarter of an hour). The runtime itself notices within about 5 s (FENCE_CHECK_TIMEOUT).
FENCE_TCP_SETTINGS = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "25000",
}
FENCE_CHECK_TIMEOUT = 3.0

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
INSERT_SQL = (
    f"INSERT INTO fills ({', '.join(COLUMNS)}) "
    f"SELECT {_VALUES} FROM unnest({_ARRAYS}) AS batch ({', '.join(COLUMNS)}) "
    "ON CONFLICT (strategy_key, instrument_id, trade_id) DO NOTHING"
)
SELECT_SQL = f"SELECT {', '.join(COLUMNS)} FROM fills WHERE strategy_key = $1 ORDER BY ts_event, trade_id"
# A bigint advisory lock shows in pg_locks as classid = high 32 bits, objid = low 32 bits, objsubid = 1.
LOCK_HELD_SQL = """
    SELECT EXISTS (
        SELECT 1 FROM pg_locks
        WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
          AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1
    )
"""


class PostgresLedger(Ledger):
    MIGRATIONS = MIGRATIONS

    def __init__(
        self,
        dsn: DsnParts | str,
        strategy_key: str,
        *,
        connect_timeout: float = 10.0,
        command_timeout: float = 30.0,
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
            self._fence_conn = await asyncpg.connect(
                **self._where.connect_arguments(),
                timeout=self._connect_timeout,
                server_settings={"application_name": f"livestrat-fence {self.owner}"[:63], **FENCE_TCP_SETTINGS},
            )
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
        assert self._pool is not None
        async with self._pool.acquire() as conn, conn.transaction():
            # Two runtimes starting together would race on CREATE TABLE: migrate one at a time.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version integer PRIMARY KEY, description text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
            for migration in pending_migrations(self.MIGRATIONS, current):
                for statement in migration.statements:
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_version (version, description) VALUES ($1, $2)",
                    migration.version,
                    migration.description,
                )

    async def _try_fence(self) -> bool:
        assert self._fence_conn is not None
        with self._database("take the fence in"):
            if not await self._fence_conn.fetchval("SELECT pg_try_advisory_lock($1)", self._fence_key):
                return False
            await self._fence_conn.execute(
                "INSERT INTO fences (strategy_key, owner, acquired_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (strategy_key) DO UPDATE "
                "SET owner = excluded.owner, acquired_at = excluded.acquired_at, released_at = NULL",
                self.strategy_key,
                self.owner,
                datetime.now(UTC),
            )
        self._fence_conn.add_termination_listener(self._fence_connection_closed)
        return True

    def _fence_connection_closed(self, _connection: asyncpg.Connection) -> None:
        self._fence_lost(f"the fencing connection to {self._where} closed")

    async def _fence_holder(self) -> FenceHolder | None:
        assert self._pool is not None
        try:
            row = await self._pool.fetchrow(
                "SELECT owner, acquired_at FROM fences WHERE strategy_key = $1", self.strategy_key
            )
        except Exception:
            return None  # the refusal matters more than naming the holder
        return FenceHolder(row["owner"], row["acquired_at"]) if row else None

    async def _check_fence(self) -> str | None:
        assert self._fence_conn is not None
        high, low = (self._fence_key >> 32) & 0xFFFFFFFF, self._fence_key & 0xFFFFFFFF
        try:
            held = await self._fence_conn.fetchval(LOCK_HELD_SQL, high, low, timeout=FENCE_CHECK_TIMEOUT)
        except Exception as exc:
            return f"the fencing connection to {self._where} failed: {self._error_text(exc)}"
        return None if held else "the advisory lock is no longer held by the fencing session"

    async def _release_fence(self) -> None:
        conn = self._fence_conn
        if conn is None or conn.is_closed():
            return
        conn.remove_termination_listener(self._fence_connection_closed)
        await conn.execute(
            "UPDATE fences SET released_at = now() WHERE strategy_key = $1 AND owner = $2",
            self.strategy_key,
            self.owner,
        )
        await conn.fetchval("SELECT pg_advisory_unlock($1)", self._fence_key)

    async def _disconnect(self) -> None:
        conn, self._fence_conn = self._fence_conn, None
        if conn is not None:
            conn.remove_termination_listener(self._fence_connection_closed)
            try:
                await conn.close(timeout=5)
            except Exception:
                conn.terminate()
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 5)
            except Exception:
                pool.terminate()

    async def _insert(self, fills: Sequence[FillRecord]) -> int:
        assert self._pool is not None
        columns = list(zip(*(fill.as_row() for fill in fills), strict=True))
        async with self._pool.acquire(timeout=self._connect_timeout) as conn:
            status = await conn.execute(INSERT_SQL, *columns)
        return int(status.rsplit(" ", 1)[1])

    async def _select(self, strategy_key: str) -> list[FillRecord]:
        with self._database("read from") as pool:
            rows = await pool.fetch(SELECT_SQL, strategy_key)
        return [FillRecord(*row) for row in rows]

    async def _count(self, strategy_key: str) -> int:
        with self._database("read from") as pool:
            return await pool.fetchval("SELECT count(*) FROM fills WHERE strategy_key = $1", strategy_key)

    async def _save_halt(self, halt: HaltRecord) -> None:
        with self._database("write a risk halt to") as pool:
            await pool.execute(
                "INSERT INTO risk_halts (strategy_key, breached_at, breached_limit, reason, owner, acknowledgement) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                self.strategy_key,
                halt.breached_at,
                halt.breached_limit,
                halt.reason,
                halt.owner,
                halt.acknowledgement,
            )

    async def _load_halt(self) -> HaltRecord | None:
        with self._database("read risk halts from") as pool:
            row = await pool.fetchrow(
                "SELECT breached_limit, reason, breached_at, owner, acknowledgement FROM risk_halts "
                "WHERE strategy_key = $1 AND cleared_at IS NULL",
                self.strategy_key,
            )
        return HaltRecord(*row) if row is not None else None

    async def _clear_halt(self, acknowledgement: str) -> None:
        with self._database("clear a risk halt in") as pool:
            await pool.execute(
                "UPDATE risk_halts SET cleared_at = now(), cleared_by = $2"
                " WHERE strategy_key = $1 AND cleared_at IS NULL",
                self.strategy_key,
                acknowledgement,
            )

    async def _save_baseline(self, baseline: RiskBaseline) -> None:
        with self._database("write the risk baseline to") as pool:
            await pool.execute(
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
