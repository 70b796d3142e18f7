"""``livestrat venue-emulator`` as a user starts it: a process, one JSON line, a market from a catalog, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import aiohttp
import pytest

from tests.venue_emulator.spot_venue import HMAC_KEY
from tests.venue_emulator.test_spot_api import signed_query

pytestmark = pytest.mark.slow


async def test_the_command_prints_its_endpoints_trades_on_the_catalogs_market_and_stops_on_sigterm(
    sample_catalog, tmp_path
):
    scenario = tmp_path / "scenario.json"
    scenario.write_text(
        json.dumps(
            {
                "keys": [{"api_key": HMAC_KEY.api_key, "secret": HMAC_KEY.secret}],
                "balances": {"USDT": "1000000", "BTC": "10"},
                "usdm_wallet": "1000000",
                "open_orders": [{"symbol": "BTCUSDT", "side": "SELL", "quantity": "0.5", "price": "900000"}],
            }
        )
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "livestrat.cli",
        "venue-emulator",
        "--catalog",
        str(sample_catalog),
        "--instrument",
        "BTCUSDT.BINANCE",
        "--instrument",
        "BTCUSDT-PERP.BINANCE",
        "--scenario",
        str(scenario),
        "--speed",
        "60",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        urls = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        assert set(urls) == {"http", "ws_api", "ws_api_usdm", "ws_stream", "ws_stream_usdm", "ws_private", "admin"}
        assert urls["http"].startswith("http://127.0.0.1:") and urls["ws_api"].endswith("/ws-api/v3")
        async with aiohttp.ClientSession() as session:
            for _ in range(600):  # the feed has sent a first price
                async with session.get(urls["admin"] + "/state") as resp:
                    state = await resp.json()
                async with session.post(
                    f"{urls['http']}/api/v3/order?"
                    + signed_query({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}),
                    headers={"X-MBX-APIKEY": HMAC_KEY.api_key},
                ) as resp:
                    placed = await resp.json()
                if placed.get("status") == "FILLED":
                    break
                await asyncio.sleep(0.1)
            async with session.get(urls["admin"] + "/trades") as resp:
                trades = await resp.json()
            async with session.post(
                f"{urls['http']}/fapi/v1/order?"
                + signed_query({"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.01"}),
                headers={"X-MBX-APIKEY": HMAC_KEY.api_key},
            ) as resp:
                futures_order = await resp.json()
            async with session.get(urls["admin"] + "/positions") as resp:
                positions = await resp.json()
            async with session.post(urls["admin"] + "/faults", json={"kind": "drop_market_stream"}) as resp:
                dropped = await resp.json()
        assert placed["status"] == "FILLED", placed
        assert state["open_orders"] == 1  # the scenario's resting sell
        assert [t["orderId"] for t in trades] == [placed["orderId"]]
        assert futures_order["status"] == "FILLED", futures_order
        assert positions["positions"]["BTCUSDT"]["amount"] == "-0.01"
        assert dropped == {"dropped": 0}  # the market streams are wired to the fault (nobody subscribed)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0, (await proc.stderr.read()).decode()[-2000:]
