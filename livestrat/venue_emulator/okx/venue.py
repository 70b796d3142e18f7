"""The OKX venue: REST under ``/api/v5``, the WebSocket endpoints ``/ws/v5/{public,private,business}``.

The books are one :class:`~livestrat.venue_emulator.exchange.Exchange` with a spot account: its matching
rules, balances, ids and trade history are the Binance emulator's (docs/runtime.md "Venue emulator").
What OKX adds here:

- public REST (time, instruments with their ``instIdCode``, candles from the feed) and signed REST
  (``auth.OkxAuthenticator.check_rest``: fee rate, balance, orders, fills, paged as OKX pages them),
  answered ``{"code": "0", "msg": "", "data": [...]}``; a refused signature answers HTTP 401 with
  OKX's code, as OKX does.
- the private WebSocket: ``login``, then ``subscribe`` to ``orders`` (instType SPOT or ANY) and
  ``account``; the operations ``order``, ``cancel-order`` and ``batch-cancel-orders`` (by ``instIdCode``,
  as NautilusTrader sends them). Each operation answers first, then the ``orders`` pushes of what it did
  (the new order, its fill) and an ``account`` push of the balances it touched. A resting order that
  fills on a market event is pushed the same way.
- the public WebSocket: ``bbo-tbt`` and ``trades`` fed by the market feed's events; the business one
  carries ``candle*`` (and takes ``login``). Any other channel is acknowledged and stays silent.
- OKX's spot buyer pays the fee in the base currency; the shared contract charges every fee in the
  quote currency, so ``feeCcy`` is the quote currency here too.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from livestrat.venue_emulator import errors
from livestrat.venue_emulator.accounts import BalanceChange, SpotAccount
from livestrat.venue_emulator.events import BookTop, Candle, MarketEvent, Print, Product, SymbolRules
from livestrat.venue_emulator.exchange import Exchange, Execution, Order, Trade
from livestrat.venue_emulator.okx import shapes
from livestrat.venue_emulator.okx.auth import OkxAuthenticator, OkxError, OkxKey

WS_PREFIX = "/ws/v5"
# OKX order types -> the exchange's (type, time in force)
ORDER_TYPES = {
    "market": ("MARKET", None),
    "limit": ("LIMIT", "GTC"),
    "post_only": ("LIMIT_MAKER", None),
    "ioc": ("LIMIT", "IOC"),
    "fok": ("LIMIT", "FOK"),
}
PAGE_LIMIT = 100  # OKX's default and maximum page size for its history lists
ORDER_NOT_FOUND = OkxError("51603", "Order does not exist.")
CANCEL_FAILED = OkxError("51400", "Order cancellation failed as the order has been filled, canceled or does not exist.")


class CandleHistory(Protocol):
    """What the venue asks the market feed for its candle endpoints (``MarketFeed.history``)."""

    def history(
        self, product: Product, symbol: str, interval: str, *, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[Candle]: ...


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class _Session:
    """One WebSocket connection: what it subscribed to, and its outbox (sent in order by one writer)."""

    def __init__(self, ws: web.WebSocketResponse, kind: str, conn_id: str) -> None:
        self.ws = ws
        self.kind = kind
        self.conn_id = conn_id
        self.logged_in = False
        self.channels: set[tuple[str, str]] = set()  # (channel, instId or instType or "")
        self.outbox: asyncio.Queue[str] = asyncio.Queue()

    def send(self, message: dict[str, Any]) -> None:
        self.outbox.put_nowait(json.dumps(message))

    def wants(self, channel: str, key: str) -> bool:
        return (channel, key) in self.channels or (channel, "ANY") in self.channels or (channel, "") in self.channels


class OkxVenue:
    """One spot account on ``rules``' symbols, keyed by ``keys``, holding ``balances`` at start."""

    def __init__(
        self,
        rules: list[SymbolRules],
        keys: list[OkxKey],
        balances: dict[str, Decimal],
        now_ms: Callable[[], int] = wall_clock_ms,
        feed: CandleHistory | None = None,
    ) -> None:
        self.rules = {r.symbol: r for r in rules}
        self._feed = feed
        self.codes = {r.symbol: shapes.INST_ID_CODE_BASE + i for i, r in enumerate(rules)}
        self.exchange = Exchange(rules, SpotAccount(dict(balances)), now_ms)
        self.auth = OkxAuthenticator(keys, now_ms)
        self._now_ms = now_ms
        self._sessions: list[_Session] = []
        self._conn_ids = itertools.count(1)
        self._held: list[dict[str, Any]] | None = None  # pushes held back until an operation has answered
        self.refusals: list[tuple[str, str]] = []  # (what, code): the auth and order refusals, for tests
        self.operations: list[str] = []  # the order operations asked for, in order (order, cancel-order, ...)
        self.exchange.listen(self._on_user_event)

    # -- the application ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes(self.routes())
        return app

    def routes(self) -> list[web.RouteDef]:
        signed = {
            "/api/v5/account/trade-fee": self._trade_fee,
            "/api/v5/account/balance": self._balance,
            "/api/v5/account/positions": self._empty,
            "/api/v5/trade/order": self._order,
            "/api/v5/trade/orders-pending": self._orders_pending,
            "/api/v5/trade/orders-history": self._orders_history,
            "/api/v5/trade/orders-algo-pending": self._empty,
            "/api/v5/trade/orders-algo-history": self._empty,
            "/api/v5/trade/fills": self._fills,
        }
        return [
            web.get("/api/v5/public/time", self._time),
            web.get("/api/v5/public/instruments", self._instruments),
            web.get("/api/v5/market/candles", self._candles),
            web.get("/api/v5/market/history-candles", self._candles),
            *[web.get(path, self._signed(handler)) for path, handler in signed.items()],
            web.get(WS_PREFIX + "/{kind:public|private|business}", self._websocket),
        ]

    # -- REST --------------------------------------------------------------------------------------

    @staticmethod
    def _ok(data: list[Any]) -> web.Response:
        return web.json_response({"code": "0", "msg": "", "data": data})

    @staticmethod
    def _refused(exc: OkxError) -> web.Response:
        return web.json_response({"code": exc.code, "msg": exc.msg, "data": []}, status=exc.http_status)

    def _signed(self, handler: Callable[[web.Request], list[Any]]) -> Callable[[web.Request], Any]:
        async def check(request: web.Request) -> web.Response:
            body = await request.text()
            try:
                self.auth.check_rest(request.headers, request.method, request.path_qs, body)
                return self._ok(handler(request))
            except OkxError as exc:
                self.refusals.append((request.path, exc.code))
                return self._refused(exc)
            except ValueError:  # a number that is not one (after=, limit=, ordId=)
                return self._refused(OkxError("51000", "Parameter error", 400))

        return check

    async def _time(self, request: web.Request) -> web.Response:
        return self._ok([{"ts": str(self._now_ms())}])

    async def _instruments(self, request: web.Request) -> web.Response:
        if request.query.get("instType") != "SPOT":
            return self._ok([])  # the venue lists spot pairs only
        inst_id = request.query.get("instId")
        rows = [shapes.instrument(r, self.codes[s]) for s, r in self.rules.items() if inst_id in (None, s)]
        return self._ok(rows)

    async def _candles(self, request: web.Request) -> web.Response:
        """OKX "Get candlesticks" (and "... history", the same here): the feed's closed klines, newest first;
        ``after`` = opened before that ms, ``before`` = after it; ``limit`` up to 300 (history: 100)."""
        q = request.query
        symbol = q.get("instId", "")
        if symbol not in self.rules:
            return self._ok_or(OkxError("51001", "Instrument ID, Instrument ID code or Spread ID doesn't exist."))
        bar = q.get("bar", "1m")
        interval = bar[:-1] + bar[-1].lower() if bar[-1] in "HDW" else bar
        cap = 100 if request.path.endswith("history-candles") else 300
        try:
            after, before = int(q.get("after") or 0) or None, int(q.get("before") or 0) or None
            limit = min(int(q.get("limit") or 100), cap)
        except ValueError:
            return self._ok_or(OkxError("51000", "Parameter error"))
        candles = self._feed.history(
            "spot", symbol, interval,
            start_ms=before + 1 if before else None, end_ms=after - 1 if after else None, limit=1_000_000,
        ) if self._feed is not None else []  # fmt: skip
        rows = [
            [str(c.open_ms), *(shapes.text(v) for v in (c.open, c.high, c.low, c.close, c.volume)), "0", "0", "1"]
            for c in reversed(candles[-limit:])
        ]
        return self._ok(rows)

    def _ok_or(self, exc: OkxError) -> web.Response:
        return web.json_response({"code": exc.code, "msg": exc.msg, "data": []}, status=exc.http_status)

    def _empty(self, request: web.Request) -> list[Any]:
        return []

    def _trade_fee(self, request: web.Request) -> list[Any]:
        first = next(iter(self.rules.values()), None)
        return [shapes.fee_rate(first, self._now_ms())] if first is not None else []

    def _balance(self, request: web.Request) -> list[Any]:
        wanted = set(filter(None, request.query.get("ccy", "").split(",")))
        balances = {c: b for c, b in self.exchange.balances().items() if not wanted or c in wanted}
        return [shapes.account(balances, self.exchange.update_ms)]

    def _fills_of(self, order: Order) -> list[Trade]:
        """The trades behind ``order`` as it stood (a snapshot: the fills that make its executed quantity),
        from the exchange's history: OKX's cumulative ``fee`` is their commissions' sum, so nothing but the
        exchange has to remember it (a snapshot taken before a fill of the same call must not count it)."""
        fills, done = [], Decimal(0)
        for trade in self.exchange.trades(order.symbol, order_id=order.order_id):
            if done >= order.executed_qty:
                break
            fills.append(trade)
            done += trade.qty
        return fills

    def _history_row(self, order: Order) -> dict[str, Any]:
        trades = self._fills_of(order)
        fee = sum((t.commission for t in trades), Decimal(0))
        return shapes.order_history(order, self.rules[order.symbol], fee, trades[-1] if trades else None)

    def _orders_of(self, request: web.Request, is_open: bool) -> list[Any]:
        inst_id = request.query.get("instId")
        rows = [o for o in self.exchange.every_order() if o.is_open == is_open and inst_id in (None, o.symbol)]
        return [self._history_row(o) for o in _page(request, rows, lambda o: o.order_id, lambda o: o.time_ms)]

    def _orders_pending(self, request: web.Request) -> list[Any]:
        return self._orders_of(request, True)

    def _orders_history(self, request: web.Request) -> list[Any]:
        return self._orders_of(request, False)

    def _order(self, request: web.Request) -> list[Any]:
        """OKX "Get order details": by ordId, else clOrdId; 51603 "Order does not exist." otherwise."""
        order = self._find(request.query.get("instId", ""), request.query.get("ordId"), request.query.get("clOrdId"))
        if order is None:
            raise ORDER_NOT_FOUND
        return [self._history_row(order)]

    def _fills(self, request: web.Request) -> list[Any]:
        inst_id, ord_id = request.query.get("instId"), request.query.get("ordId")
        orders = {o.order_id: o for o in self.exchange.every_order()}
        rows = [t for t in self.exchange.trades() if inst_id in (None, t.symbol) and ord_id in (None, str(t.order_id))]
        return [
            shapes.fill(t, orders[t.order_id]) for t in _page(request, rows, lambda t: t.trade_id, lambda t: t.time_ms)
        ]

    def _find(self, inst_id: str, ord_id: str | None, cl_ord_id: str | None) -> Order | None:
        if inst_id not in self.rules:
            return None
        try:
            return self.exchange.order(inst_id, int(ord_id) if ord_id else None, cl_ord_id or None)
        except (errors.BinanceError, ValueError):
            return None

    # -- WebSocket ---------------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = _Session(ws, request.match_info["kind"], f"{next(self._conn_ids):08x}")
        self._sessions.append(session)
        writer = asyncio.create_task(self._write(session))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                if msg.data == "ping":
                    session.outbox.put_nowait("pong")  # OKX's keep-alive: text "ping" -> "pong"
                    continue
                try:
                    self._on_request(session, json.loads(msg.data))
                except (ValueError, TypeError, KeyError, AttributeError):
                    session.send(
                        {"event": "error", "code": "60012", "msg": "Invalid request", "connId": session.conn_id}
                    )
        finally:
            self._sessions.remove(session)
            writer.cancel()
        return ws

    @staticmethod
    async def _write(session: _Session) -> None:
        while True:
            text = await session.outbox.get()
            if session.ws.closed:
                return
            await session.ws.send_str(text)

    def _on_request(self, session: _Session, request: dict[str, Any]) -> None:
        op = request["op"]
        if op == "login":
            try:
                self.auth.check_login(request["args"][0])
            except OkxError as exc:
                self.refusals.append(("login", exc.code))
                session.send({"event": "error", "code": exc.code, "msg": exc.msg, "connId": session.conn_id})
                return
            session.logged_in = True
            session.send({"event": "login", "code": "0", "msg": "", "connId": session.conn_id})
        elif op in ("subscribe", "unsubscribe"):
            for arg in request["args"]:
                self._subscribe(session, op, arg)
        elif op in ("order", "cancel-order", "batch-cancel-orders"):
            self._operate(session, request)
        else:
            session.send({"event": "error", "code": "60019", "msg": f"Invalid op: {op}", "connId": session.conn_id})

    def _subscribe(self, session: _Session, op: str, arg: dict[str, Any]) -> None:
        channel = arg["channel"]
        private = channel in ("orders", "account", "fills", "orders-algo", "algo-advance", "balance_and_position")
        if private and not session.logged_in:
            session.send({"event": "error", "code": "60011", "msg": "Please log in", "connId": session.conn_id})
            return
        key = arg.get("instId") or arg.get("instType") or ""
        if op == "subscribe":
            session.channels.add((channel, key))
        else:
            session.channels.discard((channel, key))
        session.send({"event": op, "arg": arg, "connId": session.conn_id})
        if op == "subscribe" and channel == "account":
            # OKX pushes the account once on subscription, then on every change
            self._push_account(session, self.exchange.balances())

    # -- order operations --------------------------------------------------------------------------

    def _operate(self, session: _Session, request: dict[str, Any]) -> None:
        op, req_id = request["op"], request.get("id", "")
        self.operations.append(op)
        if not session.logged_in:
            session.send({"id": req_id, "op": op, "code": "60011", "msg": "Please log in", "data": []})
            return
        self._held = []
        results = []
        try:
            for arg in request.get("args", []):
                results.append(self._place(arg) if op == "order" else self._cancel(arg))
        finally:
            held, self._held = self._held, None
        failed = [r for r in results if r["sCode"] != "0"]
        # OKX: code "0" when every item succeeded, "1" when all failed, "2" when some did
        code = "0" if not failed else ("1" if len(failed) == len(results) else "2")
        now = str(self._now_ms())
        session.send({"id": req_id, "op": op, "code": code, "msg": "", "data": results, "inTime": now, "outTime": now})
        for push in held:
            self._broadcast(push)

    def _symbol_of(self, arg: dict[str, Any]) -> str:
        code = arg.get("instIdCode")
        if code is not None:
            for symbol, c in self.codes.items():
                if c == int(code):
                    return symbol
            raise OkxError("51001", "Instrument ID, Instrument ID code or Spread ID doesn't exist.")
        symbol = str(arg.get("instId", ""))
        if symbol not in self.rules:
            raise OkxError("51001", "Instrument ID, Instrument ID code or Spread ID doesn't exist.")
        return symbol

    def _place(self, arg: dict[str, Any]) -> dict[str, Any]:
        cl_ord_id = str(arg.get("clOrdId", ""))
        result = {"clOrdId": cl_ord_id, "ordId": "", "tag": "", "ts": str(self._now_ms())}
        try:
            symbol = self._symbol_of(arg)
            if arg.get("tdMode") != "cash":
                raise OkxError("51010", "Request unsupported under current account mode")
            if arg.get("ordType") not in ORDER_TYPES:
                raise OkxError("51000", "Parameter ordType error")
            order_type, tif = ORDER_TYPES[arg["ordType"]]
            side = str(arg.get("side", "")).upper()
            try:
                qty = Decimal(str(arg["sz"]))
                price = Decimal(str(arg["px"])) if order_type != "MARKET" else None
            except (KeyError, InvalidOperation):
                raise OkxError("51000", "Parameter sz error") from None
            if order_type == "MARKET" and side == "BUY" and arg.get("tgtCcy", "quote_ccy") == "quote_ccy":
                qty = self._base_qty(symbol, qty)  # OKX: a spot market buy's sz is quote currency by default
            try:
                order, _ = self.exchange.new_order(symbol, side, order_type, qty, price, tif, cl_ord_id or None)
            except errors.BinanceError as exc:
                raise _okx_refusal(exc, self.rules[symbol], side) from None
        except OkxError as exc:
            self.refusals.append(("order", exc.code))
            return result | {"sCode": exc.code, "sMsg": exc.msg}
        return result | {
            "clOrdId": order.client_order_id,
            "ordId": str(order.order_id),
            "sCode": "0",
            "sMsg": "Order placed",
        }

    def _base_qty(self, symbol: str, quote_amount: Decimal) -> Decimal:
        _, top = self.exchange.best_prices(symbol)  # the price a market buy takes
        if top is None or top <= 0:
            raise OkxError("51000", "Parameter sz error")
        step = self.rules[symbol].step_size
        return (quote_amount / top // step) * step

    def _cancel(self, arg: dict[str, Any]) -> dict[str, Any]:
        ord_id, cl_ord_id = arg.get("ordId"), arg.get("clOrdId")
        result = {"clOrdId": cl_ord_id or "", "ordId": ord_id or "", "ts": str(self._now_ms())}
        try:
            symbol = self._symbol_of(arg)
            if not ord_id and not cl_ord_id:
                raise OkxError("51003", "Either client order ID or order ID is required.")
            try:
                order = self.exchange.cancel_order(symbol, int(ord_id) if ord_id else None, cl_ord_id or None)
            except (errors.BinanceError, ValueError):
                raise CANCEL_FAILED from None
        except OkxError as exc:
            self.refusals.append(("cancel-order", exc.code))
            return result | {"sCode": exc.code, "sMsg": exc.msg}
        return result | {"clOrdId": order.client_order_id, "ordId": str(order.order_id), "sCode": "0", "sMsg": ""}

    # -- pushes ------------------------------------------------------------------------------------

    def _on_user_event(self, event: Execution | Any) -> None:
        if isinstance(event, Execution):
            order = event.order
            if event.execution_type == "CANCELED":  # the exchange reports a cancel with the cancel's id
                order = replace(order, client_order_id=event.cancel_client_order_id)
            trade: Trade | None = event.trade
            fee = sum((t.commission for t in self._fills_of(order)), Decimal(0))
            message = shapes.order_message(order, self.rules[order.symbol], fee, trade)
            push = {"arg": {"channel": "orders", "instType": "SPOT"}, "data": [message]}
        elif isinstance(event, BalanceChange):
            balances = self.exchange.balances()
            push = {"arg": {"channel": "account"}, "data": [shapes.account(
                {c: balances[c] for c in event.balances}, event.time_ms
            )]}  # fmt: skip
        else:
            return
        if self._held is not None:
            self._held.append(push)
        else:
            self._broadcast(push)

    def _broadcast(self, push: dict[str, Any]) -> None:
        channel = push["arg"]["channel"]
        for session in self._sessions:
            if session.kind == "private" and session.wants(channel, "SPOT"):
                session.send(push)

    def _push_account(self, session: _Session, balances: dict[str, Any]) -> None:
        session.send({"arg": {"channel": "account"}, "data": [shapes.account(balances, self.exchange.update_ms)]})

    # -- the market --------------------------------------------------------------------------------

    async def drop_all(self, kind: str = "private") -> int:
        """Close every ``kind`` WebSocket connection (a fault: the client must reconnect); how many."""
        dropped = [s for s in self._sessions if s.kind == kind]
        for session in dropped:
            await session.ws.close()
        return len(dropped)

    @property
    def private_sessions(self) -> int:
        """Private connections logged in (the admin state's user-stream count)."""
        return sum(1 for s in self._sessions if s.kind == "private" and s.logged_in)

    def subscribed(self, channel: str, inst_id: str) -> bool:
        """Whether some connection is subscribed to ``channel`` for ``inst_id`` (tests wait on it)."""
        return any((channel, inst_id) in s.channels for s in self._sessions)

    def on_market(self, event: MarketEvent) -> None:
        """The feed's listener, after the exchange: the public channels' pushes."""
        if event.symbol not in self.rules or event.product != "spot":
            return
        if isinstance(event, BookTop):
            level = lambda px, sz: [shapes.text(px), shapes.text(sz), "0", "1"]  # noqa: E731
            data = {
                "asks": [level(event.ask, event.ask_qty)],
                "bids": [level(event.bid, event.bid_qty)],
                "ts": str(event.ts_ms),
                "seqId": event.ts_ms,
            }
            self._publish("public", "bbo-tbt", event.symbol, data)
        elif isinstance(event, Print):
            data = {
                "instId": event.symbol,
                "tradeId": str(event.trade_id),
                "px": shapes.text(event.price),
                "sz": shapes.text(event.qty),
                "side": "sell" if event.buyer_is_maker else "buy",
                "count": "1",
                "ts": str(event.ts_ms),
            }
            self._publish("public", "trades", event.symbol, data)
        elif isinstance(event, Candle):
            prices = (event.open, event.high, event.low, event.close, event.volume)
            # OKX "Candlesticks channel": [ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]; 1 = closed
            row = [str(event.open_ms), *(shapes.text(v) for v in prices), "0", "0", "1" if event.closed else "0"]
            self._publish("business", candle_channel(event.interval), event.symbol, row)

    def _publish(self, kind: str, channel: str, symbol: str, data: Any) -> None:
        push = {"arg": {"channel": channel, "instId": symbol}, "data": [data]}
        for session in self._sessions:
            if session.kind == kind and (channel, symbol) in session.channels:
                session.send(push)


def _page(request: web.Request, rows: list[Any], key: Callable[[Any], int], time_ms: Callable[[Any], int]) -> list[Any]:
    """OKX's paging of its history lists ("Get order history", "Get transaction details"): newest first;
    ``after`` = older than that id (ordId / billId), ``before`` = newer than it; ``begin``/``end`` (ms)
    bound the time; ``limit`` defaults to and is capped at 100."""
    q = request.query
    after, before = q.get("after"), q.get("before")
    begin, end = q.get("begin"), q.get("end")
    picked = [
        r
        for r in rows
        if (not after or key(r) < int(after))
        and (not before or key(r) > int(before))
        and (not begin or time_ms(r) >= int(begin))
        and (not end or time_ms(r) <= int(end))
    ]
    picked.sort(key=key, reverse=True)
    return picked[: min(int(q.get("limit") or PAGE_LIMIT), PAGE_LIMIT)]


def candle_channel(interval: str) -> str:
    """Binance's interval name (the feed's) as OKX's candle channel: 1m -> candle1m, 1h -> candle1H,
    1d -> candle1D (OKX writes hours, days and weeks upper-case; 1M is a month in both)."""
    return "candle" + (interval[:-1] + interval[-1].upper() if interval[-1] in "hdw" else interval)


def _okx_refusal(exc: errors.BinanceError, rules: SymbolRules, side: str) -> OkxError:
    """The exchange's refusal (Binance's code) as OKX answers it (OKX "Error Code", trade class)."""
    if exc.msg == errors.INSUFFICIENT_BALANCE:
        ccy = rules.quote_asset if side == "BUY" else rules.base_asset
        return OkxError("51008", f"Order failed. Insufficient {ccy} balance in account")
    if exc.msg == errors.DUPLICATE_ORDER:
        return OkxError("51016", "Client order ID already exists.")
    if exc.msg == errors.WOULD_TAKE:
        return OkxError("51000", "Parameter ordType error")
    if exc.code == -1013 and "PRICE" in exc.msg:
        return OkxError("51000", "Parameter px error")
    if exc.code in (-1013, -1111):
        return OkxError("51000", "Parameter sz error")
    if exc.code == -1100 or exc.code == -1102:
        return OkxError("51000", "Parameter side error")
    return OkxError("51000", f"Parameter error ({exc.msg})")
