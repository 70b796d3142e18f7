"""Reading a ledger from outside the runtime (``livestrat fills``): never a write, never the fence.

A runtime that opens a ledger takes its strategy's fence and raises the epoch, which would stop the
strategy that trades on it; a reader must do neither. So this reads with a connection of its own:
SQLite opened read-only (``mode=ro``: no migration, no lock file, no WAL checkpoint), PostgreSQL with
plain SELECTs. Its errors say where (host:port/database or the file), never the password.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from strategy_runtime.ledger.dsn import DsnParts
from strategy_runtime.ledger.errors import LedgerUnavailable
from strategy_runtime.ledger.records import COLUMNS, RUN_MARK, FillRecord, strategy_of
from strategy_runtime.ledger.sqlite import _from_sqlite

COUNT_SQL = "SELECT strategy_key, count(*) FROM fills GROUP BY strategy_key ORDER BY strategy_key"
# Every strategy that ever took its fence, and how often (a paper strategy's runs are ``KEY@run-1`` to ``@run-EPOCH``):
# a strategy can have run, and be worth a report, without a single fill.
FENCES_SQL = "SELECT strategy_key, epoch, acquired_at FROM fences ORDER BY acquired_at, strategy_key"
CONNECT_TIMEOUT_SECONDS = 10.0
# The fills table's columns (in the search path's schema, as the ledger's own queries find it).
PG_COLUMNS_SQL = (
    "SELECT column_name FROM information_schema.columns WHERE table_name = 'fills' AND table_schema = current_schema()"
)


def select_fills_sql(present: set[str], placeholder: str) -> str:
    """The ledger's SELECT of one key's fills, a column the table lacks (not migrated yet) as NULL."""
    columns = ", ".join(c if c in present else f"NULL AS {c}" for c in COLUMNS)
    return f"SELECT {columns} FROM fills WHERE strategy_key = {placeholder} ORDER BY ts_event, trade_id"


@dataclass(frozen=True)
class LedgerSource:
    """One ledger to read: an SQLite file or a PostgreSQL database."""

    sqlite: Path | None = None
    postgres: DsnParts | None = None

    def describe(self) -> str:
        return f"SQLite {self.sqlite}" if self.sqlite is not None else f"PostgreSQL {self.postgres}"

    async def strategies(self) -> dict[str, int]:
        """Every strategy key the ledger holds fills of, with their number."""
        rows = await self._fetch(COUNT_SQL, ())
        return {str(key): int(count) for key, count in rows}

    async def fences(self) -> list[tuple[str, int, str]]:
        """(strategy key, epoch, when its fence was last taken as ISO text) of every strategy that ran, oldest first."""
        return [(str(key), int(epoch), str(at)) for key, epoch, at in await self._fetch(FENCES_SQL, ())]

    async def ran(self, ledger_key: str) -> bool:
        """Whether ``ledger_key`` (a strategy, or a run ``KEY@run-N``) ever took its fence in this ledger."""
        strategy = strategy_of(ledger_key)
        run = ledger_key[len(strategy) + len(RUN_MARK) :] if ledger_key != strategy else None
        for key, epoch, _ in await self.fences():
            if key == strategy:
                return run is None or (run.isdigit() and 1 <= int(run) <= epoch)
        return False

    async def fills(self, strategy_key: str) -> list[FillRecord]:
        """The strategy's fills in the ledger's order (venue time, then trade id).

        A ledger no runtime of this version has migrated yet (the reader never migrates) lacks the columns later
        migrations add: they read as NULL, as they would right after the migration."""
        if self.sqlite is not None:
            present = {name for _, name, *_ in await self._fetch("PRAGMA table_info(fills)", ())}
            rows = await self._fetch(select_fills_sql(present, "?"), (strategy_key,))
            return [_from_sqlite(row) for row in rows]
        present = {name for (name,) in await self._fetch(PG_COLUMNS_SQL, ())}
        return [FillRecord(*row) for row in await self._fetch(select_fills_sql(present, "$1"), (strategy_key,))]

    async def _fetch(self, sql: str, arguments: tuple) -> list[tuple]:
        if self.sqlite is not None:
            return self._sqlite(sql, arguments)
        assert self.postgres is not None
        where = self.postgres
        try:
            conn = await asyncpg.connect(**where.connect_arguments(), timeout=CONNECT_TIMEOUT_SECONDS)
        except Exception as exc:
            raise LedgerUnavailable(
                f"cannot connect to the ledger database {where}: {where.redact(str(exc))}"
            ) from None
        try:
            return [tuple(row) for row in await conn.fetch(sql, *arguments)]
        except asyncpg.UndefinedTableError:
            raise LedgerUnavailable(f"the database {where} holds no livestrat ledger (no fills table)") from None
        except Exception as exc:
            raise LedgerUnavailable(f"cannot read the ledger database {where}: {where.redact(str(exc))}") from None
        finally:
            await conn.close()

    def _sqlite(self, sql: str, arguments: tuple) -> list[tuple]:
        assert self.sqlite is not None
        if not self.sqlite.is_file():
            raise LedgerUnavailable(f"no ledger file at {self.sqlite}")
        try:
            conn = sqlite3.connect(f"{self.sqlite.absolute().as_uri()}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise LedgerUnavailable(f"cannot open the ledger {self.describe()}: {exc}") from None
        try:
            return list(conn.execute(sql, arguments))
        except sqlite3.OperationalError as exc:
            raise LedgerUnavailable(f"cannot read the ledger {self.describe()}: {exc}") from None
        finally:
            conn.close()


def pick_strategy(keys: dict[str, int], asked: str) -> str:
    """The ledger key ``asked`` means: itself, or the one key of the strategy ``namespace/name`` or the name
    (after the slash) it is. LookupError naming the candidates when it means none or several (``livestrat
    run`` keeps one key per run; a paper pod one per start, ``namespace/name@run-N``)."""
    if asked in keys:
        return asked
    named = [key for key in keys if asked in (strategy_of(key), strategy_of(key).rsplit("/", 1)[-1])]
    if len(named) == 1:
        return named[0]
    if named:
        raise LookupError(f"{asked!r} names {len(named)} strategy keys: {', '.join(named)}; pass one of them")
    held = ", ".join(keys) or "none"
    raise LookupError(f"the ledger holds no fills of {asked!r} (strategy keys: {held})")
