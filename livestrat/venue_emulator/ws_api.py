"""Binance's spot WebSocket API, as far as the user-data stream goes (``/ws-api/v3``).

NautilusTrader 1.231's spot execution client connects here, sends ``session.logon`` (apiKey,
timestamp, signature over ``apiKey=..&timestamp=..``), then ``userDataStream.subscribe``, and reads
events wrapped as ``{"subscriptionId": N, "event": {...}}`` on the same connection; on
``eventStreamTerminated`` it subscribes again, and after a reconnect it logs on and subscribes again.
Follows web-socket-api.md ("Request format", "Response format", "Event format", "Session
Authentication", "User Data Stream requests") and user-data-stream.md ("Account Update" =
``outboundAccountPosition``, "Order Update" = ``executionReport``).

Where it is strict as Binance is: ``session.logon`` and ``userDataStream.subscribe`` work only with
Ed25519 keys (web-socket-api.md: "Only Ed25519 keys are supported for this feature"). An HMAC key's
logon is answered -1022 "Signature for this request is not valid.", the answer users report from
Binance. An HMAC key can still subscribe with ``userDataStream.subscribe.signature``.

The same class serves USD-M's WebSocket API at ``/ws-fapi/v1`` (what NautilusTrader uses with an
Ed25519 futures key): ``session.logon``, then ``userDataStream.start`` / ``.ping`` / ``.stop`` manage
the account's listen key, whose events go out on the private stream (:mod:`futures_api`).

Where it differs: a ``userDataStream.subscribe`` on a session that is not logged on answers -1002
"You are not authorized to execute this request." (Binance does not document this answer), and
methods other than the session and user-data ones answer -1020 "This operation is not supported."
(trading goes through REST here, as the adapter does).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from aiohttp import WSMsgType, web

from livestrat.venue_emulator import errors
from livestrat.venue_emulator.accounts import BalanceChange
from livestrat.venue_emulator.auth import ApiKey, Authenticator
from livestrat.venue_emulator.exchange import (
    EXPIRY_FOK_UNFILLED,
    EXPIRY_IOC_UNFILLED,
    EXPIRY_MARKET_UNFILLED,
    Exchange,
    Execution,
    UserEvent,
)
from livestrat.venue_emulator.futures_api import FuturesUserStreams
from livestrat.venue_emulator.spot_api import wire

WS_API_PATH = "/ws-api/v3"
FUTURES_WS_API_PATH = "/ws-fapi/v1"
HEARTBEAT_S = 20.0  # web-socket-api.md: "The WebSocket server will send a ping frame every 20 seconds."


# user-data-stream.md "Order Expiry Reason" (``eR``), for the reasons a spot order of the emulator expires.
SPOT_EXPIRY_REASONS = {
    EXPIRY_IOC_UNFILLED: "UNFILLED_IOC_QUANTITY_EXPIRED",  # "The IOC order was not fully filled and thus expired."
    EXPIRY_FOK_UNFILLED: "UNFILLED_FOK_ORDER_EXPIRED",  # "The FOK order was not fully filled and thus expired."
    # "There were not enough orders in the order book to match with this order." (a MARKET order)
    EXPIRY_MARKET_UNFILLED: "INSUFFICIENT_LIQUIDITY",
}


def execution_report(execution: Execution, execution_id: int) -> dict[str, object]:
    """user-data-stream.md "Order Update": the fields ``BinanceSpotOrderUpdateData`` decodes, and of its
    "Conditional Fields in Execution Report" ``W`` (an order put on the book) and ``eR``, the "Expiry Reason",
    which "Appears when the order has expired" (in executionReport events since 2026-03-26, CHANGELOG 2026-03-09):
    an EXPIRED report names one of "Order Expiry Reason"'s values (``SPOT_EXPIRY_REASONS``; ``NONE``, enums.md's
    "Expiry Reasons" default, for none of them)."""
    order, trade = execution.order, execution.trade
    on_book = order.working_ms is not None and order.status in ("NEW", "PARTIALLY_FILLED")
    report: dict[str, object] = {
        "e": "executionReport",
        "E": execution.time_ms,
        "s": order.symbol,
        "c": order.client_order_id,
        "S": order.side,
        "o": order.type,
        "f": order.time_in_force,
        "q": wire(order.orig_qty),
        "p": wire(order.price),
        "P": wire(Decimal(0)),
        "F": wire(Decimal(0)),
        "g": -1,
        "C": execution.cancel_client_order_id,
        "x": execution.execution_type,
        "X": order.status,
        "r": "NONE",
        "i": order.order_id,
        "l": wire(trade.qty if trade else Decimal(0)),
        "z": wire(order.executed_qty),
        "L": wire(trade.price if trade else Decimal(0)),
        "n": wire(trade.commission) if trade else "0",
        "N": trade.commission_asset if trade else None,
        "T": execution.time_ms,
        "t": trade.trade_id if trade else -1,
        "I": execution_id,
        "w": on_book,
        "m": trade.is_maker if trade else False,
        "M": False,
        "O": order.time_ms,
        "Z": wire(order.cum_quote),
        "Y": wire(trade.quote_qty if trade else Decimal(0)),
        "Q": wire(Decimal(0)),
        "V": "NONE",
    }
    if order.working_ms is not None:
        report["W"] = order.working_ms
    if execution.execution_type == "EXPIRED":
        report["eR"] = SPOT_EXPIRY_REASONS.get(execution.expiry_reason, "NONE")
    return report


def account_position(change: BalanceChange) -> dict[str, object]:
    """user-data-stream.md "Account Update": the assets that changed, free and locked."""
    return {
        "e": "outboundAccountPosition",
        "E": change.time_ms,
        "u": change.time_ms,
        "B": [{"a": a, "f": wire(free), "l": wire(locked)} for a, (free, locked) in change.balances.items()],
    }


@dataclass(eq=False)
class _Session:
    ws: web.WebSocketResponse
    connected_ms: int
    transport: asyncio.BaseTransport | None
    outbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    key: ApiKey | None = None
    authorized_ms: int | None = None
    subscriptions: dict[int, ApiKey] = field(default_factory=dict)
    subscription_ids: itertools.count = field(default_factory=itertools.count)
    silenced: bool = False  # cut off from the client: what the venue sends it is lost (``WsApi.silence``)

    def status(self, now_ms: int) -> dict[str, object]:
        return {
            "apiKey": self.key.api_key if self.key else None,
            "authorizedSince": self.authorized_ms,
            "connectedSince": self.connected_ms,
            "returnRateLimits": False,
            "serverTime": now_ms,
            "userDataStream": bool(self.subscriptions),
        }


class WsApi:
    """The WebSocket API server side: sessions, their user-data subscriptions, and the events sent."""

    def __init__(
        self,
        exchange: Exchange | None,
        auth: Authenticator,
        now_ms: Callable[[], int],
        path: str = WS_API_PATH,
        listen_keys: FuturesUserStreams | None = None,
    ) -> None:
        """The spot WebSocket API (``exchange``'s events to subscribers), or with ``listen_keys`` USD-M's
        (``/ws-fapi/v1``: listen keys started, pinged and stopped here, events on the private stream)."""
        self._auth = auth
        self._now_ms = now_ms
        self._path = path
        self._listen_keys = listen_keys
        self._sessions: set[_Session] = set()
        self._execution_ids = itertools.count(1)
        self.refusals: list[tuple[str, int]] = []  # (method, code) of every refused request, for tests
        self._cuts: set[asyncio.Task[None]] = set()
        if exchange is not None:
            exchange.listen(self._on_user_event)

    def routes(self) -> list[web.RouteDef]:
        return [web.get(self._path, self.handle)]

    @property
    def logged_on_sessions(self) -> int:
        return sum(1 for s in self._sessions if s.key is not None)

    @property
    def subscribed_sessions(self) -> int:
        return sum(1 for s in self._sessions if s.subscriptions)

    async def drop_all(self) -> int:
        """Close every connection at once, without a close handshake (a network drop); returns how many."""
        sessions = list(self._sessions)
        for session in sessions:
            if isinstance(session.transport, asyncio.Transport):
                session.transport.abort()
        return len(sessions)

    def silence(self, seconds: float) -> int:
        """Cut every connection off from its client, one way and silently (a network partition: no close, no
        reset): requests still arrive and are carried out, but nothing the venue sends (answers, user-data
        events) reaches the client, and it is lost. After ``seconds`` the connections are cut (web-socket-api.md:
        a connection that does not answer the server's ping "within a minute" is disconnected). Returns how many.
        """
        sessions = [s for s in self._sessions if not s.silenced]
        for session in sessions:
            session.silenced = True

        async def cut_later() -> None:
            await asyncio.sleep(seconds)
            for session in sessions:
                if isinstance(session.transport, asyncio.Transport):
                    session.transport.abort()

        if sessions:
            self._cuts.add(task := asyncio.get_running_loop().create_task(cut_later()))
            task.add_done_callback(self._cuts.discard)
        return len(sessions)

    def terminate_subscriptions(self) -> int:
        """End every user-data subscription with ``eventStreamTerminated`` (user-data-stream.md "Event Stream
        Terminated"); returns how many ended. Binance sends it when a listen-token subscription expires, after
        ``session.logout`` and after ``userDataStream.unsubscribe``; a logon subscription ended here stands for
        those (Binance documents no expiry of its own for it)."""
        ended = 0
        for session in self._sessions:
            for sub_id in list(session.subscriptions):
                event = {"e": "eventStreamTerminated", "E": self._now_ms()}
                session.outbox.put_nowait(json.dumps({"subscriptionId": sub_id, "event": event}))
                del session.subscriptions[sub_id]
                ended += 1
        return ended

    def _on_user_event(self, event: UserEvent) -> None:
        if isinstance(event, Execution):
            payload = execution_report(event, next(self._execution_ids))
        elif isinstance(event, BalanceChange):
            payload = account_position(event)
        else:
            return  # MarginChange: a USD-M account's, not the spot stream's
        for session in self._sessions:
            for sub_id in session.subscriptions:
                session.outbox.put_nowait(json.dumps({"subscriptionId": sub_id, "event": payload}))

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S)
        transport = request.transport
        await ws.prepare(request)
        session = _Session(ws, self._now_ms(), transport)
        self._sessions.add(session)
        sender = asyncio.create_task(self._send_loop(session))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    session.outbox.put_nowait(json.dumps(self._answer(session, msg.data)))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._sessions.discard(session)
            sender.cancel()
        return ws

    @staticmethod
    async def _send_loop(session: _Session) -> None:
        while True:
            text = await session.outbox.get()
            if session.ws.closed:
                return
            if session.silenced:
                continue  # lost in the partition
            try:
                await session.ws.send_str(text)
            except ConnectionError:
                return

    def _answer(self, session: _Session, text: str) -> dict[str, object]:
        try:
            request = json.loads(text)
            request_id = request.get("id")
            method = str(request.get("method", "")).removeprefix("v3/")
            params = request.get("params") or {}
            if not isinstance(params, dict):
                raise ValueError("params is not an object")
        except (ValueError, AttributeError):
            return {"id": None, "status": 400, "error": {"code": -1000, "msg": "Malformed request."}}
        try:
            result = self._call(session, method, params)
        except errors.BinanceError as exc:
            self.refusals.append((method, exc.code))
            return {"id": request_id, "status": exc.http_status, "error": exc.body()}
        return {"id": request_id, "status": 200, "result": result}

    def _call(self, session: _Session, method: str, params: dict[str, object]) -> object:
        now = self._now_ms()
        if method == "session.logon":
            key = self._auth.check_ws(params)
            if key.key_type != "ed25519":
                raise errors.invalid_signature()  # "Only Ed25519 keys are supported for this feature."
            session.key, session.authorized_ms = key, now
            return session.status(now)
        if method == "session.status":
            return session.status(now)
        if method == "session.logout":
            session.key, session.authorized_ms = None, None
            session.subscriptions.clear()
            return session.status(now)
        if self._listen_keys is not None:
            return self._listen_key_call(session, method, params)
        if method == "userDataStream.subscribe":
            if session.key is None:
                raise errors.BinanceError(401, -1002, "You are not authorized to execute this request.")
            return self._subscribe(session, session.key)
        if method == "userDataStream.subscribe.signature":
            return self._subscribe(session, self._auth.check_ws(params))
        if method == "userDataStream.unsubscribe":
            sub_id = params.get("subscriptionId")
            if sub_id is None:
                session.subscriptions.clear()
            elif not str(sub_id).isdigit():
                raise errors.invalid_parameter("subscriptionId")
            elif session.subscriptions.pop(int(str(sub_id)), None) is None:
                raise errors.subscription_inactive()
            return {}
        if method == "session.subscriptions":
            return [{"subscriptionId": s} for s in session.subscriptions]
        raise errors.unsupported_operation()

    def _listen_key_call(self, session: _Session, method: str, params: dict[str, object]) -> object:
        """USD-M WebSocket API "User Data Streams": userDataStream.start / .ping / .stop, on a logged-on
        session or with an ``apiKey`` parameter."""
        assert self._listen_keys is not None
        if method not in ("userDataStream.start", "userDataStream.ping", "userDataStream.stop"):
            raise errors.unsupported_operation()
        if session.key is None:
            self._auth.key(str(params.get("apiKey") or ""))
        if method == "userDataStream.start":
            return {"listenKey": self._listen_keys.create()}
        key = str(params.get("listenKey") or "") or None
        if method == "userDataStream.ping":
            self._listen_keys.keepalive(key)
            return {"listenKey": self._listen_keys.listen_key.key if self._listen_keys.listen_key else key}
        self._listen_keys.close(key)
        return {}

    @staticmethod
    def _subscribe(session: _Session, key: ApiKey) -> dict[str, object]:
        # web-socket-api.md: "You can have only one active subscription for a given account on a given connection."
        if key in session.subscriptions.values():
            raise errors.subscription_active()
        sub_id = next(session.subscription_ids)
        session.subscriptions[sub_id] = key
        return {"subscriptionId": sub_id}
