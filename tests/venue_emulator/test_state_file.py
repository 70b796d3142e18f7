"""``--state FILE``: the emulator restarted on its own books: trades, orders, balances, positions, ids go on."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import aiohttp

from livestrat.venue_emulator.scenario import Scenario
from livestrat.venue_emulator.server import ServeOptions, serve
from tests.venue_emulator.spot_venue import HMAC_KEY
from tests.venue_emulator.test_spot_api import signed_query

D = Decimal


async def run_once(sample_catalog, state, actions) -> dict:
    """Serve once (spot and USD-M), do ``actions(urls, session)``, stop; what the actions returned."""
    scenario = Scenario.model_validate(
        {
            "keys": [{"api_key": HMAC_KEY.api_key, "secret": HMAC_KEY.secret}],
            "balances": {"USDT": "1000000", "BTC": "10"},
            "usdm_wallet": "100000",
        }
    )
    options = ServeOptions(
        catalog=str(sample_catalog),
        instruments=["BTCUSDT.BINANCE", "BTCUSDT-PERP.BINANCE"],
        scenario=scenario,
        speed=1000.0,
        state=state,
    )
    ready: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    stop = asyncio.Event()
    server = asyncio.create_task(serve(options, ready.put_nowait, stop))
    urls = await asyncio.wait_for(ready.get(), 60)
    try:
        async with aiohttp.ClientSession() as session:
            return await actions(urls, session)
    finally:
        stop.set()
        await asyncio.wait_for(server, 30)


async def order(session, urls, path: str, **params) -> dict:
    url = f"{urls['http']}{path}?{signed_query(params)}"
    async with session.post(url, headers={"X-MBX-APIKEY": HMAC_KEY.api_key}) as resp:
        return await resp.json()


async def admin(session, urls, path: str):
    async with session.get(urls["admin"] + path) as resp:
        return await resp.json()


async def test_a_restarted_emulator_keeps_its_books_and_never_repeats_an_id(sample_catalog, tmp_path):
    state = tmp_path / "venue-state.json"

    async def first(urls, session):
        for _ in range(300):  # the feed's first price
            market = await order(
                session, urls, "/api/v3/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01"
            )
            if market.get("status") == "FILLED":
                break
            await asyncio.sleep(0.05)
        far = int(D(market["fills"][0]["price"]) * 2)  # a sell the replay will not reach
        resting = await order(session, urls, "/api/v3/order", symbol="BTCUSDT", side="SELL", type="LIMIT",
                              timeInForce="GTC", quantity="0.5", price=str(far))  # fmt: skip
        await order(session, urls, "/fapi/v1/order", symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.01")
        return {
            "market": market,
            "resting": resting,
            "trades": await admin(session, urls, "/trades"),
            "balances": await admin(session, urls, "/balances"),
            "positions": await admin(session, urls, "/positions"),
        }

    async def second(urls, session):
        before = {
            "trades": await admin(session, urls, "/trades"),
            "open": await admin(session, urls, "/orders?open=true"),
            "balances": await admin(session, urls, "/balances"),
            "positions": await admin(session, urls, "/positions"),
        }
        after = await order(
            session, urls, "/api/v3/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01"
        )
        return before | {"after": after, "all": await admin(session, urls, "/trades")}

    one = await run_once(sample_catalog, state, first)
    assert one["market"]["status"] == "FILLED", one["market"]
    two = await run_once(sample_catalog, state, second)
    assert two["trades"] == one["trades"]
    assert [o["orderId"] for o in two["open"]] == [one["resting"]["orderId"]]
    assert two["positions"] == one["positions"] and two["positions"]["positions"]["BTCUSDT"]["amount"] == "-0.01"
    assert two["balances"] == one["balances"]
    assert two["after"]["orderId"] > one["resting"]["orderId"]
    trade_ids = [t["id"] for t in two["all"]]
    assert trade_ids == sorted(set(trade_ids)) and len(trade_ids) == 2
