"""Fixtures shared by the runtime's ledger tests."""

from __future__ import annotations

import pytest

from tests.support.ledger import Target
from tests.support.postgres import fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def target(request, tmp_path, pg_dsn):
    """A ledger of each backend: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield Target("sqlite", str(tmp_path / "ledger.sqlite"))
        return
    async with fresh_database(pg_dsn) as dsn:
        yield Target("postgresql", dsn)
