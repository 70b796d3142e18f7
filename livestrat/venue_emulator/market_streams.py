"""The market-data WebSocket streams of the emulated venue, as Binance serves them to NautilusTrader's data client.

Binance's "WebSocket Streams" (web-socket-streams.md): raw streams at ``/ws/<streamName>`` (payloads as
they are) and combined streams at ``/stream?streams=<a>/<b>`` (each payload wrapped as
``{"stream": "<name>", "data": <payload>}``); on either, the JSON methods ``SUBSCRIBE``,
``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS``, ``SET_PROPERTY``/``GET_PROPERTY`` (``combined``) answered
``{"result": ..., "id": ...}``, and the documented errors (code 0-3) for a bad request. Spot is served at
the root (``ws://host:port``), USD-M futures under ``/fstream`` (``ws://host:port/fstream``): Binance has
two hosts, the emulator one, and a symbol such as BTCUSDT exists in both.

Streams: ``<symbol>@bookTicker`` (a ``BookTop``), ``<symbol>@depth...`` (the one-level book of a ``BookTop``,
see ``_depth_payloads``), ``<symbol>@trade`` (spot) and ``<symbol>@aggTrade`` (a ``Print``: one trade per
aggregate, ``a = f = l``), ``<symbol>@kline_<interval>`` (a closed ``Candle``),
with the payloads of web-socket-streams.md (spot) and the USD-M "Websocket Market Streams" pages; spot's
bookTicker has no event time (NautilusTrader then stamps the quote on arrival), USD-M's has ``E`` and ``T``.
A kline's trade count is 0 and its quote and taker volumes "0": a catalog's bar does not hold them.

``MarketStreams`` is a ``MarketListener``: the feed calls ``on_market`` and each connection subscribed
to the event's stream gets it, in the feed's order (one queue and one writer per connection). The
server pings every 20 s as Binance does (aiohttp's heartbeat; a client that does not answer is
dropped). ``drop_all()`` is the fault "the market connection is lost": every connection is cut at the
TCP level, without a close frame, and a client must reconnect and subscribe again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from livestrat.venue_emulator.events import BookTop, Candle, MarketEvent, Print, Product, SymbolRules
from livestrat.venue_emulator.feed import MarketFeed
from livestrat.venue_emulator.instruments import price_text, qty_text

logger = logging.getLogger("livestrat.venue_emulator.market_streams")

STREAM_PREFIX: dict[Product, str] = {"spot": "", "usdm": "/fstream"}
_DEPTH = re.compile(r"(?P<symbol>[a-z0-9]+)@depth(?P<levels>5|10|20)?(@\d+ms)?")
HEARTBEAT_SECONDS = 20.0  # web-socket-streams.md: "The WebSocket server will send a ping frame every 20 seconds."
METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")


@dataclass(eq=False)
class _Connection:
    product: Product
    ws: web.WebSocketResponse
    request: web.Request
    combined: bool
    streams: list[str] = field(default_factory=list)  # in subscription order, each once
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)

    def subscribe(self, names: Sequence[str]) -> None:
        self.streams += [n for n in names if n not in self.streams]


class MarketStreams:
    """The market WebSocket server for the given symbols; see the module docstring."""

    def __init__(self, feed: MarketFeed) -> None:
        self._feed = feed
        self._rules = {(r.product, r.symbol): r for r in feed.rules}
        self._connections: set[_Connection] = set()
        self.opened = 0  # connections accepted since the start (a reconnection is a new one)
        self._sent_tops: dict[tuple[Product, str], BookTop] = {}  # the book a depth diff changes

    @property
    def connections(self) -> int:
        """How many market connections are open now."""
        return len(self._connections)

    def subscriptions(self) -> list[tuple[Product, list[str]]]:
        """Every open connection's product and streams (for tests and the admin view)."""
        return [(c.product, list(c.streams)) for c in self._connections]

    def routes(self) -> list[web.RouteDef]:
        routes: list[web.RouteDef] = []
        for product, prefix in STREAM_PREFIX.items():
            routes += [
                web.get(f"{prefix}/stream", self._handler(product, combined=True)),
                web.get(prefix + "/ws/{stream}", self._handler(product, combined=False)),
            ]
        return routes

    # -- the feed's side ------------------------------------------------------------------------

    def on_market(self, event: MarketEvent) -> None:
        rules = self._rules.get((event.product, event.symbol))
        if rules is None:
            return
        payloads = dict(self._payloads(rules, event))
        depth = self._depth_payloads(rules, event) if isinstance(event, BookTop) else None
        texts: dict[tuple[str, bool], str] = {}
        for connection in self._connections:
            if connection.product != event.product:
                continue
            for name in connection.streams:
                payload = payloads.get(name)
                if payload is None and depth is not None:
                    payload = depth(name)
                if payload is None:
                    continue
                key = (name, connection.combined)
                if key not in texts:
                    texts[key] = json.dumps({"stream": name, "data": payload} if connection.combined else payload)
                connection.queue.put_nowait(texts[key])
        if isinstance(event, BookTop):
            self._sent_tops[(event.product, event.symbol)] = event

    def _payloads(self, r: SymbolRules, event: MarketEvent) -> list[tuple[str, dict[str, Any]]]:
        symbol = r.symbol.lower()
        if isinstance(event, BookTop):
            update_id = self._feed.book_update_id(r.product, r.symbol)
            top = {
                "u": update_id,
                "s": r.symbol,
                "b": price_text(r, event.bid),
                "B": qty_text(r, event.bid_qty),
                "a": price_text(r, event.ask),
                "A": qty_text(r, event.ask_qty),
            }
            if r.product == "usdm":
                top = {"e": "bookTicker", "u": update_id, "E": event.ts_ms, "T": event.ts_ms} | top
            return [(f"{symbol}@bookTicker", top)]
        if isinstance(event, Print):
            common = {"E": event.ts_ms, "s": r.symbol}
            price, qty = price_text(r, event.price), qty_text(r, event.qty)
            agg = {"e": "aggTrade", **common, "a": event.trade_id, "p": price, "q": qty}
            agg |= {"f": event.trade_id, "l": event.trade_id, "T": event.ts_ms, "m": event.buyer_is_maker}
            if r.product == "usdm":
                return [(f"{symbol}@aggTrade", agg)]
            trade = {"e": "trade", **common, "t": event.trade_id, "p": price, "q": qty}
            trade |= {"T": event.ts_ms, "m": event.buyer_is_maker, "M": True}
            return [(f"{symbol}@trade", trade), (f"{symbol}@aggTrade", agg | {"M": True})]
        if isinstance(event, Candle):
            kline = {"e": "kline", "E": event.ts_ms, "s": r.symbol, "k": kline_object(r, event)}
            return [(f"{symbol}@kline_{event.interval}", kline)]
        return []

    def _depth_payloads(self, r: SymbolRules, top: BookTop) -> Callable[[str], dict[str, Any] | None]:
        """The depth streams' payloads for a new book top, by stream name (None: not a depth stream of it).

        The emulated book has one level a side, the book top: a diff stream (``<symbol>@depth``,
        ``@depth@100ms``...) sends the new level and, when the price moved, the old one at quantity 0
        (web-socket-streams.md "Diff. Depth Stream"); a partial stream (``@depth5``, ``@depth10``,
        ``@depth20``) sends the whole book ("Partial Book Depth Streams"). One update id per book top.
        """
        update_id = self._feed.book_update_id(r.product, r.symbol)
        previous = self._sent_tops.get((r.product, r.symbol))
        bids = [[price_text(r, top.bid), qty_text(r, top.bid_qty)]]
        asks = [[price_text(r, top.ask), qty_text(r, top.ask_qty)]]
        diff_bids, diff_asks = list(bids), list(asks)
        if previous is not None and previous.bid != top.bid:
            diff_bids.insert(0, [price_text(r, previous.bid), qty_text(r, Decimal(0))])
        if previous is not None and previous.ask != top.ask:
            diff_asks.insert(0, [price_text(r, previous.ask), qty_text(r, Decimal(0))])
        symbol = r.symbol.lower()

        def update(b: list[list[str]], a: list[list[str]]) -> dict[str, Any]:
            event = {"e": "depthUpdate", "E": top.ts_ms}
            if r.product == "usdm":
                event |= {"T": top.ts_ms}
            event |= {"s": r.symbol, "U": update_id, "u": update_id}
            if r.product == "usdm":
                event |= {"pu": update_id - 1}
            return event | {"b": b, "a": a}

        def payload(name: str) -> dict[str, Any] | None:
            match = _DEPTH.fullmatch(name)
            if match is None or match["symbol"] != symbol:
                return None
            if match["levels"] is None:
                return update(diff_bids, diff_asks)
            if r.product == "spot":
                return {"lastUpdateId": update_id, "bids": bids, "asks": asks}
            return update(bids, asks)

        return payload

    # -- faults ---------------------------------------------------------------------------------

    async def drop_all(self) -> int:
        """Cut every market connection (no close frame, as a lost connection); returns how many were cut."""
        dropped = list(self._connections)
        self._connections.clear()  # nothing more is queued to them
        for connection in dropped:
            transport = connection.request.transport
            if transport is not None:
                transport.abort()
        logger.info("market streams: dropped %d connection(s)", len(dropped))
        return len(dropped)

    async def close_all(self) -> None:
        """Close every connection with a normal close frame (the server shutting down)."""
        for connection in list(self._connections):
            with contextlib.suppress(Exception):
                await connection.ws.close()

    # -- the connection's side ------------------------------------------------------------------

    def _handler(
        self, product: Product, *, combined: bool
    ) -> Callable[[web.Request], Awaitable[web.WebSocketResponse]]:
        async def handle(request: web.Request) -> web.WebSocketResponse:
            if combined:
                initial = [s for s in request.query.get("streams", "").split("/") if s]
            else:
                initial = [request.match_info["stream"]]
            ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS)
            await ws.prepare(request)
            connection = _Connection(product, ws, request, combined)
            connection.subscribe(initial)
            self._connections.add(connection)
            self.opened += 1
            writer = asyncio.create_task(self._write(connection))
            try:
                async for message in ws:
                    if message.type != WSMsgType.TEXT:
                        continue
                    answer = self._answer(connection, message.data)
                    if answer is not None:
                        connection.queue.put_nowait(json.dumps(answer))
            finally:
                self._connections.discard(connection)
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
            return ws

        return handle

    @staticmethod
    async def _write(connection: _Connection) -> None:
        while True:
            text = await connection.queue.get()
            try:
                await connection.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return  # the connection is gone; its handler cleans up

    @staticmethod
    def _answer(connection: _Connection, text: str) -> dict[str, Any] | None:
        """The reply to one JSON method (web-socket-streams.md, "Live Subscribing/Unsubscribing to streams")."""
        try:
            request = json.loads(text)
        except ValueError as exc:
            return {"code": 3, "msg": f"Invalid JSON: {exc}"}
        if not isinstance(request, dict) or "method" not in request:
            return {"code": 2, "msg": "Invalid request: missing field `method`"}
        method, params, request_id = request["method"], request.get("params", []), request.get("id")
        valid_id = request_id is None or (
            (isinstance(request_id, int) and not isinstance(request_id, bool))
            or (isinstance(request_id, str) and request_id.isalnum() and len(request_id) <= 36)
        )
        if not valid_id:
            return {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}
        if method not in METHODS:
            expected = ", ".join(f"`{m}`" for m in METHODS)
            return {"code": 2, "msg": f"Invalid request: unknown variant `{method}`, expected one of {expected}"}
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                return {"code": 2, "msg": "Invalid request: invalid params", "id": request_id}
            if method == "SUBSCRIBE":
                connection.subscribe(params)
            else:
                connection.streams = [s for s in connection.streams if s not in params]
            return {"result": None, "id": request_id}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": list(connection.streams), "id": request_id}
        if not isinstance(params, list) or not params or params[0] != "combined":
            return {"code": 0, "msg": "Unknown property", "id": request_id}
        if method == "GET_PROPERTY":
            return {"result": connection.combined, "id": request_id}
        if len(params) != 2 or not isinstance(params[1], bool):
            return {"code": 1, "msg": "Invalid value type: expected Boolean"}
        connection.combined = params[1]
        return {"result": None, "id": request_id}


def kline_object(r: SymbolRules, c: Candle) -> dict[str, Any]:
    """The ``k`` object of a kline event."""
    zero = "0"
    return {
        "t": c.open_ms,
        "T": c.close_ms,
        "s": r.symbol,
        "i": c.interval,
        "f": -1,  # first and last trade id: none known (a catalog's bar does not hold them)
        "L": -1,
        "o": price_text(r, c.open),
        "c": price_text(r, c.close),
        "h": price_text(r, c.high),
        "l": price_text(r, c.low),
        "v": qty_text(r, c.volume),
        "n": 0,
        "x": c.closed,
        "q": zero,
        "V": zero,
        "Q": zero,
        "B": zero,
    }


def kline_row(r: SymbolRules, c: Candle) -> list[Any]:
    """One kline as the REST ``klines`` endpoint lists it (rest-api.md "Kline/Candlestick data")."""
    zero = format(Decimal(0), "f")
    return [
        c.open_ms,
        price_text(r, c.open),
        price_text(r, c.high),
        price_text(r, c.low),
        price_text(r, c.close),
        qty_text(r, c.volume),
        c.close_ms,
        zero,
        0,
        zero,
        zero,
        "0",
    ]
