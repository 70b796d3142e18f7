"""Catalogs and servers for the venue emulator's tests: the sample generator's BTCUSDT spot and perpetual."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from strategy_runtime.paper.sample_data import generate_sample

SPOT = "BTCUSDT.BINANCE"
PERP = "BTCUSDT-PERP.BINANCE"
START = "2024-01-01T00:00:00Z"


@pytest.fixture(scope="session")
def sample_catalog(tmp_path_factory) -> Path:
    """Thirty one-minute bars, with four quotes and four trades inside each, for the spot pair and the perpetual."""
    path = tmp_path_factory.mktemp("venue") / "catalog"
    catalog = ParquetDataCatalog(str(path))
    for series in generate_sample([SPOT, PERP], bars=30, seed=11, start=START, with_ticks=True):
        for data in (series.bars, series.quotes, series.trades, [series.instrument]):
            catalog.write_data(data)
    return path


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[web.Application], object]]:
    """Serve an aiohttp application on 127.0.0.1 (a free port); the base URL comes back."""
    servers: list[TestServer] = []

    async def start(app: web.Application) -> str:
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield start
    for server in servers:
        await server.close()
