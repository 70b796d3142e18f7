"""The market WebSocket streams, as Binance's documentation describes them and NautilusTrader's data client uses them."""

from __future__ import annotations

import asyncio
import json

from aiohttp import ClientSession, WSMsgType, web

from livestrat.venue_emulator.events import BookTop
from livestrat.venue_emulator.feed import MarketFeed
from livestrat.venue_emulator.market_api import add_market
from tests.venue_emulator.conftest import PERP, SPOT
from tests.venue_emulator.gated import Gate, gated_feed, wait_until


async def receive_json(ws, timeout: float = 10.0):
    message = await asyncio.wait_for(ws.receive(), timeout)
    assert message.type == WSMsgType.TEXT, message
    return json.loads(message.data)


async def market_server(serve, feed: MarketFeed):
    app = web.Application()
    streams = add_market(app, feed)
    return streams, (await serve(app)).replace("http://", "ws://")


async def test_subscribe_list_and_errors_as_binance_documents_them(sample_catalog, serve):
    gate = Gate(open_=False)
    feed = gated_feed(sample_catalog, [SPOT, PERP], gate)
    streams, base = await market_server(serve, feed)
    async with ClientSession() as http, http.ws_connect(f"{base}/stream?streams=btcusdt@bookTicker") as ws:
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade", "btcusdt@kline_1m"], "id": 1}))
        assert await receive_json(ws) == {"result": None, "id": 1}
        await ws.send_str(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@kline_1m"], "id": "a2"}))
        assert await receive_json(ws) == {"result": None, "id": "a2"}
        await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
        assert await receive_json(ws) == {"result": ["btcusdt@bookTicker", "btcusdt@trade"], "id": 3}
        await ws.send_str(json.dumps({"method": "GET_PROPERTY", "params": ["combined"], "id": 4}))
        assert await receive_json(ws) == {"result": True, "id": 4}
        await ws.send_str("{not json")
        assert (await receive_json(ws))["code"] == 3
        await ws.send_str(json.dumps({"method": "SUBSCRIBEX", "params": [], "id": 5}))
        assert (await receive_json(ws))["code"] == 2

        gate.open.set()
        await asyncio.wait_for(feed.run(), 30)
        first, second = await receive_json(ws), await receive_json(ws)
        # The combined stream's envelope; spot's bookTicker has no event type and no event time
        assert first["stream"] == "btcusdt@bookTicker"
        assert set(first["data"]) == {"u", "s", "b", "B", "a", "A"}
        top = next(e for e in gate.events if isinstance(e, BookTop) and e.product == "spot")
        assert (first["data"]["s"], first["data"]["b"], first["data"]["u"]) == ("BTCUSDT", f"{top.bid:.8f}", 1)
        assert second["stream"] == "btcusdt@trade"
        assert set(second["data"]) == {"e", "E", "s", "t", "p", "q", "T", "m", "M"}
    await wait_until(lambda: streams.connections == 0, what="the closed connection to be forgotten")


async def test_raw_streams_and_the_futures_streams_under_fstream(sample_catalog, serve):
    gate = Gate(open_=False)
    feed = gated_feed(sample_catalog, [SPOT, PERP], gate)
    _, base = await market_server(serve, feed)
    async with (
        ClientSession() as http,
        http.ws_connect(f"{base}/fstream/ws/btcusdt@bookTicker") as futures_raw,
        http.ws_connect(f"{base}/fstream/stream?streams=btcusdt@kline_1m/btcusdt@aggTrade") as futures,
    ):
        gate.open.set()
        await asyncio.wait_for(feed.run(), 30)
        top = await receive_json(futures_raw)  # raw: the payload alone
        usdm_top = next(e for e in gate.events if isinstance(e, BookTop) and e.product == "usdm")
        assert top["e"] == "bookTicker"
        assert (top["T"], top["E"], top["b"]) == (usdm_top.ts_ms, usdm_top.ts_ms, f"{usdm_top.bid:.1f}")
        names = [(await receive_json(futures))["stream"] for _ in range(5)]
        assert names == ["btcusdt@aggTrade"] * 4 + ["btcusdt@kline_1m"]  # four trades inside each minute


async def test_drop_all_cuts_every_market_connection(sample_catalog, serve):
    gate = Gate(open_=False)
    feed = gated_feed(sample_catalog, [SPOT], gate)
    streams, base = await market_server(serve, feed)
    async with ClientSession() as http:
        sockets = [await http.ws_connect(f"{base}/stream?streams=btcusdt@trade") for _ in range(3)]
        await wait_until(lambda: streams.connections == 3, what="three connections")
        assert await streams.drop_all() == 3
        for ws in sockets:
            message = await asyncio.wait_for(ws.receive(), 10)
            assert message.type in (WSMsgType.CLOSED, WSMsgType.ERROR, WSMsgType.CLOSE)
            await ws.close()
        await wait_until(lambda: streams.connections == 0, what="the cut connections to be forgotten")


async def test_depth_streams_carry_the_one_level_book_of_the_book_top(sample_catalog, serve):
    gate = Gate(open_=False)
    feed = gated_feed(sample_catalog, [SPOT, PERP], gate)
    _, base = await market_server(serve, feed)
    async with (
        ClientSession() as http,
        http.ws_connect(f"{base}/stream?streams=btcusdt@depth5@100ms/btcusdt@depth@100ms") as spot,
        http.ws_connect(f"{base}/fstream/ws/btcusdt@depth@0ms") as futures,
    ):
        gate.open.set()
        await asyncio.wait_for(feed.run(), 30)
        tops = [e for e in gate.events if isinstance(e, BookTop) and e.product == "spot"]
        partial, diff = await receive_json(spot), await receive_json(spot)
        assert partial == {
            "stream": "btcusdt@depth5@100ms",
            "data": {"lastUpdateId": 1, "bids": [[f"{tops[0].bid:.8f}", f"{tops[0].bid_qty:.8f}"]],
                     "asks": [[f"{tops[0].ask:.8f}", f"{tops[0].ask_qty:.8f}"]]},
        }  # fmt: skip
        assert diff["data"]["e"] == "depthUpdate" and diff["data"]["U"] == diff["data"]["u"] == 1
        await receive_json(spot)  # the second top's partial
        second = (await receive_json(spot))["data"]
        # The top moved: the old levels leave the book (quantity 0) as the new ones come in
        assert second["b"][0] == [f"{tops[0].bid:.8f}", "0.00000000"] and second["u"] == 2
        first_futures, second_futures = await receive_json(futures), await receive_json(futures)
        assert {"e", "E", "T", "s", "U", "u", "pu", "b", "a"} == set(first_futures)
        assert second_futures["pu"] == first_futures["u"] == 1
