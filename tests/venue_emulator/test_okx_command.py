"""``livestrat venue-emulator --venue okx``: a process, one JSON line, an OKX spot market from a catalog, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import aiohttp
import pytest
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from strategy_runtime.paper.sample_data import generate_sample
from tests.venue_emulator.test_nautilus_okx import KEY
from tests.venue_emulator.test_okx_api import login_arg, signed_headers

pytestmark = pytest.mark.slow

OKX_SPOT = "BTC-USDT.OKX"


@pytest.fixture(scope="module")
def okx_catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("okx") / "catalog"
    catalog = ParquetDataCatalog(str(path))
    for series in generate_sample([OKX_SPOT], bars=30, seed=5, start="2024-01-01T00:00:00Z", with_ticks=True):
        for data in (series.bars, series.quotes, series.trades, [series.instrument]):
            catalog.write_data(data)
    return path


async def test_the_okx_command_serves_the_catalogs_pair_fills_a_market_order_and_stops_on_sigterm(
    okx_catalog, tmp_path
):
    scenario = tmp_path / "okx.yaml"
    scenario.write_text(
        json.dumps(
            {
                "keys": [{"api_key": KEY.api_key, "secret": KEY.secret, "passphrase": KEY.passphrase}],
                "balances": {"USDT": "1000000", "BTC": "10"},
                "open_orders": [{"symbol": "BTC-USDT", "side": "SELL", "quantity": "0.5", "price": "900000"}],
            }
        )
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "livestrat.cli", "venue-emulator", "--venue", "okx",
        "--catalog", str(okx_catalog), "--instrument", OKX_SPOT, "--scenario", str(scenario), "--speed", "60",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        urls = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        assert set(urls) == {"http", "ws_public", "ws_private", "ws_business", "admin"}
        assert urls["ws_public"].endswith("/ws/v5/public") and urls["ws_private"].endswith("/ws/v5/private")
        async with aiohttp.ClientSession() as session:
            async with session.get(urls["http"] + "/api/v5/public/instruments?instType=SPOT") as resp:
                [instrument] = (await resp.json())["data"]
            async with session.ws_connect(urls["ws_private"]) as ws:
                await ws.send_json({"op": "login", "args": [login_arg(KEY)]})
                assert (await ws.receive_json(timeout=10))["event"] == "login"
                order = {"instIdCode": instrument["instIdCode"], "tdMode": "cash", "side": "buy", "ordType": "market",
                         "sz": "0.01", "tgtCcy": "base_ccy"}  # fmt: skip
                for attempt in range(600):  # until the feed has sent a first price
                    await ws.send_json({"id": str(attempt), "op": "order", "args": [order]})
                    answer = await ws.receive_json(timeout=10)
                    if answer["code"] == "0":
                        break
                    await asyncio.sleep(0.1)
            async with session.get(urls["admin"] + "/trades") as resp:
                trades = await resp.json()
            path = "/api/v5/trade/orders-pending?instType=SPOT"
            async with session.get(urls["http"] + path, headers=signed_headers(KEY, "GET", path)) as resp:
                pending = (await resp.json())["data"]
        assert (instrument["instId"], instrument["baseCcy"], instrument["quoteCcy"]) == ("BTC-USDT", "BTC", "USDT")
        assert (instrument["tickSz"], instrument["lotSz"]) == ("0.1", "0.00000001")
        assert answer["code"] == "0", answer
        [trade] = trades
        assert (trade["symbol"], trade["qty"], trade["isMaker"]) == ("BTC-USDT", "0.01000000", False)
        assert [(o["instId"], o["side"], o["px"], o["state"]) for o in pending] == [
            ("BTC-USDT", "sell", "900000", "live")
        ]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0


async def test_the_okx_command_keeps_its_books_in_a_state_file_across_a_restart(okx_catalog, tmp_path):
    scenario = tmp_path / "okx.json"
    scenario.write_text(
        json.dumps(
            {
                "keys": [{"api_key": KEY.api_key, "secret": KEY.secret, "passphrase": KEY.passphrase}],
                "balances": {"USDT": "1000000", "BTC": "10"},
                "open_orders": [{"symbol": "BTC-USDT", "side": "SELL", "quantity": "0.5", "price": "900000"}],
            }
        )
    )
    state = tmp_path / "okx-state.json"

    async def run_once() -> tuple[list[dict], list[dict]]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "livestrat.cli", "venue-emulator", "--venue", "okx", "--catalog", str(okx_catalog),
            "--instrument", OKX_SPOT, "--scenario", str(scenario), "--state", str(state),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            urls = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
            async with aiohttp.ClientSession() as session:
                async with session.get(urls["admin"] + "/orders") as resp:
                    orders = await resp.json()
                async with session.get(urls["admin"] + "/balances") as resp:
                    balances = await resp.json()
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 30) == 0
        return orders, balances

    first_orders, first_balances = await run_once()
    assert state.exists()
    second_orders, second_balances = await run_once()
    # the scenario's resting order is placed once: the restart takes the books from the file
    assert [o["orderId"] for o in first_orders] == [o["orderId"] for o in second_orders] == [1]
    assert first_balances == second_balances and first_balances["BTC"]["locked"] == "0.50000000"
