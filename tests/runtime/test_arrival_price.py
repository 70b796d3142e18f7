"""Every fill carries the market price its order met when it was sent (``arrival_price``), in both ledgers.

A ledger written by an earlier runtime (schema version 5) is migrated in place at the next start: its fills
keep every value they had and read back with no arrival price (NULL), new fills store theirs exactly. The
spool, the exports and the read-only reader carry the column as the ledger does; the reader (``livestrat
fills``, ``livestrat report``), which never migrates, reads a ledger not migrated yet as NULL too.
"""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path

from strategy_runtime.ledger import PostgresLedger, SqliteLedger
from strategy_runtime.ledger.dsn import DsnParts
from strategy_runtime.ledger.export import fills_csv, fills_json
from strategy_runtime.ledger.reader import LedgerSource
from strategy_runtime.ledger.records import COLUMNS
from strategy_runtime.ledger.spool import decode, encode
from tests.support.ledger import KEY, make_fill
from tests.support.postgres import connected, fresh_database

V5 = 5
BEFORE = [c for c in COLUMNS if c != "arrival_price"]  # the fills table's columns at schema version 5


def v5_ledger(kind: type, location: str):
    """The ledger as the runtime that knew five migrations created it (and so no inferred fills superseded, which
    came with migration 7: its open looked for none)."""

    async def no_inferred_orders(_self) -> set:
        return set()

    attributes = {"MIGRATIONS": kind.MIGRATIONS[:V5], "_inferred_order_keys": no_inferred_orders}
    return type(f"V5{kind.__name__}", (kind,), attributes)(location, KEY)


async def migrated_reads_back(kind: type, location: str, insert_v5_row, versions, source: LedgerSource) -> None:
    async with v5_ledger(kind, location):
        pass
    earlier = make_fill(0)  # a fill the v5 runtime stored: no arrival column yet
    await insert_v5_row(earlier)
    assert await versions() == list(range(1, V5 + 1))
    # ``livestrat fills`` / ``livestrat report`` read it before any new runtime migrated it (they never migrate)
    assert await source.fills(KEY) == [earlier]

    later = make_fill(1, arrival_price=Decimal("64123.455000"))
    async with kind(location, KEY) as ledger:
        ledger.record(later)
        await ledger.flush()
        stored = await ledger.fills()

    assert await versions() == [m.version for m in kind.MIGRATIONS]
    assert len(kind.MIGRATIONS) > V5
    assert stored == [earlier, later]
    assert stored[0].arrival_price is None
    assert str(stored[1].arrival_price) == "64123.455000"  # exact, scale included
    assert await source.fills(KEY) == stored


async def test_a_v5_sqlite_ledger_migrates_and_its_earlier_fills_have_no_arrival_price(tmp_path):
    path = str(tmp_path / "ledger.sqlite")

    async def insert_v5_row(fill) -> None:
        row = dict(zip(COLUMNS, fill.as_row(), strict=True))
        with sqlite3.connect(path) as conn:
            conn.execute(
                f"INSERT INTO fills ({', '.join(BEFORE)}) VALUES ({', '.join('?' for _ in BEFORE)})",
                [row[c] for c in BEFORE],
            )

    async def versions() -> list[int]:
        with sqlite3.connect(path) as conn:
            return [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY version")]

    await migrated_reads_back(SqliteLedger, path, insert_v5_row, versions, LedgerSource(sqlite=Path(path)))


async def test_a_v5_postgresql_ledger_migrates_and_its_earlier_fills_have_no_arrival_price(pg_dsn):
    async with fresh_database(pg_dsn) as dsn:

        async def insert_v5_row(fill) -> None:
            values = [getattr(fill, c) for c in BEFORE]
            values[BEFORE.index("side")] = fill.side.value
            async with connected(dsn) as conn:
                await conn.execute(
                    f"INSERT INTO fills ({', '.join(BEFORE)}) VALUES ({', '.join(f'${i}' for i in range(1, len(BEFORE) + 1))})",
                    *values,
                )

        async def versions() -> list[int]:
            async with connected(dsn) as conn:
                return [r["version"] for r in await conn.fetch("SELECT version FROM schema_version ORDER BY version")]

        source = LedgerSource(postgres=DsnParts.parse(dsn))
        await migrated_reads_back(PostgresLedger, dsn, insert_v5_row, versions, source)


def test_the_spool_keeps_the_arrival_price_and_reads_a_line_written_before_it_as_none():
    priced = make_fill(3, arrival_price=Decimal("64000.10"))
    assert decode(encode(priced)) == priced
    line = json.loads(encode(make_fill(4)))
    del line["fill"]["arrival_price"]  # a line a runtime without the column left in the spool
    assert decode(json.dumps(line).encode()).arrival_price is None


def test_exports_write_the_arrival_price_exactly_and_nothing_for_none():
    fills = [make_fill(0, arrival_price=Decimal("64123.4500")), make_fill(1)]
    exported = json.loads(fills_json(fills))
    assert [f["arrival_price"] for f in exported] == ["64123.4500", None]
    header, first, second = fills_csv(fills).splitlines()
    column = header.split(",").index("arrival_price")
    assert first.split(",")[column] == "64123.4500"
    assert second.split(",")[column] == ""
