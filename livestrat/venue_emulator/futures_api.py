"""Binance USD-M futures trading: the authenticated ``/fapi`` REST, listen keys, and the private user-data stream.

What NautilusTrader 1.231's USD-M execution client calls with an HMAC key (its WebSocket API logon
takes only Ed25519 keys, so with HMAC it manages a listen key over REST and reads the private stream):

- connect: ``GET /fapi/v2/account``, ``POST /fapi/v1/leverage`` and ``POST /fapi/v1/marginType`` (when
  configured), ``GET /fapi/v1/symbolConfig``, ``GET /fapi/v1/positionSide/dual``; the instrument
  provider's ``GET /fapi/v1/commissionRate``.
- orders: ``POST/GET/DELETE /fapi/v1/order``, ``GET /fapi/v1/openOrders``, ``DELETE
  /fapi/v1/allOpenOrders``, ``GET /fapi/v1/allOrders``, ``GET /fapi/v1/userTrades``, ``GET
  /fapi/v3/positionRisk``; conditional (algo) orders are not emulated: ``openAlgoOrders`` and
  ``allAlgoOrders`` answer empty lists and ``algoOrder`` -2013.
- user data: ``POST/PUT/DELETE /fapi/v1/listenKey`` (USER_STREAM: the API key header, no signature;
  one key per account, a POST while one is alive returns it and extends it), and the stream at
  ``/private/ws?listenKey=KEY`` (NautilusTrader builds ``{base_url_ws_stream}/ws?listenKey=``; give it
  ``ws://host:port/private``) carrying ``ORDER_TRADE_UPDATE`` and ``ACCOUNT_UPDATE`` (reason ORDER)
  and, when the key expires, ``listenKeyExpired``.

One-way mode only (``dualSidePosition`` false, positionSide BOTH), cross margin; positions, margin
and realized profit as :mod:`accounts` describes. Prices and quantities are written at the symbol's
precision (as USD-M does), money with 8 decimals.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from aiohttp import WSMsgType, web

from livestrat.venue_emulator import errors
from livestrat.venue_emulator.accounts import MarginChange, UsdmAccount
from livestrat.venue_emulator.auth import Authenticator
from livestrat.venue_emulator.exchange import Exchange, Execution, Order, Trade, UserEvent, generated_client_id
from livestrat.venue_emulator.instruments import price_text, qty_text
from livestrat.venue_emulator.spot_api import (
    Params,
    decimal_param,
    error_response,
    int_param,
    signed,
    wire,
)

PRIVATE_STREAM_PATH = "/private/ws"
LISTEN_KEY_VALIDITY_MS = 60 * 60 * 1000  # "a listenKey ... will be valid for 60 minutes"


def _avg(order: Order) -> str:
    return f"{(order.cum_quote / order.executed_qty) if order.executed_qty else Decimal(0):f}"


def futures_order_json(exchange: Exchange, order: Order, client_order_id: str | None = None) -> dict[str, object]:
    """An order as USD-M's "Query Order" / "New Order" (RESULT) answers it. A liquidation order of the venue's
    (``autoclose-…``, ``adl_autoclose``) is listed there as a LIMIT order: its type LIQUIDATION is the user-data
    stream's (a real account's liquidation orders come back from the order queries as LIMIT ones; JKorf/Binance.Net
    issue 1456)."""
    rules = exchange.rules[order.symbol]
    listed_type = "LIMIT" if order.type == "LIQUIDATION" else order.type
    return {
        "orderId": order.order_id,
        "symbol": order.symbol,
        "status": order.status,
        "clientOrderId": client_order_id or order.client_order_id,
        "price": price_text(rules, order.price),
        "avgPrice": _avg(order),
        "origQty": qty_text(rules, order.orig_qty),
        "executedQty": qty_text(rules, order.executed_qty),
        "cumQuote": wire(order.cum_quote),
        "timeInForce": order.time_in_force,
        "type": listed_type,
        "reduceOnly": order.reduce_only,
        "closePosition": False,
        "side": order.side,
        "positionSide": "BOTH",
        "stopPrice": "0",
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "origType": listed_type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "NONE",
        "goodTillDate": 0,
        "time": order.time_ms,
        "updateTime": order.update_ms,
    }


def futures_trade_json(exchange: Exchange, trade: Trade) -> dict[str, object]:
    """A row of USD-M's "Account Trade List" (``GET /fapi/v1/userTrades``)."""
    rules = exchange.rules[trade.symbol]
    return {
        "buyer": trade.side == "BUY",
        "commission": wire(trade.commission),
        "commissionAsset": trade.commission_asset,
        "id": trade.trade_id,
        "maker": trade.is_maker,
        "orderId": trade.order_id,
        "price": price_text(rules, trade.price),
        "qty": qty_text(rules, trade.qty),
        "quoteQty": wire(trade.quote_qty),
        "realizedPnl": wire(trade.realized_pnl),
        "side": trade.side,
        "positionSide": "BOTH",
        "symbol": trade.symbol,
        "time": trade.time_ms,
    }


def order_trade_update(exchange: Exchange, execution: Execution) -> dict[str, object]:
    """USD-M "Event: Order Update" (``ORDER_TRADE_UPDATE``), the fields ``BinanceFuturesOrderData`` decodes.
    Unlike spot, ``c`` stays the order's own client id on a cancel. A position the venue closes itself
    (``Exchange.close_position_by_venue``) comes as its own order: ``c`` ``autoclose-…`` or ``adl_autoclose``,
    ``o`` and ``ot`` LIQUIDATION, ``x`` NEW then CALCULATED ("Liquidation Execution") once per execution. ``er`` is
    the "Expiry Reason" of an EXPIRED update (5 for the open orders such a close expires first), "0" otherwise."""
    order, trade = execution.order, execution.trade
    rules = exchange.rules[order.symbol]
    body: dict[str, object] = {
        "s": order.symbol,
        "c": execution.cancel_client_order_id or order.client_order_id,
        "S": order.side,
        "o": order.type,
        "f": order.time_in_force,
        "q": qty_text(rules, order.orig_qty),
        "p": price_text(rules, order.price),
        "ap": _avg(order),
        "sp": "0",
        "x": execution.execution_type,
        "X": order.status,
        "i": order.order_id,
        "l": qty_text(rules, trade.qty if trade else Decimal(0)),
        "z": qty_text(rules, order.executed_qty),
        "L": price_text(rules, trade.price if trade else Decimal(0)),
        "T": execution.time_ms,
        "t": trade.trade_id if trade else 0,
        "b": "0",
        "a": "0",
        "m": trade.is_maker if trade else False,
        "R": order.reduce_only,
        "wt": "CONTRACT_PRICE",
        "ot": order.type,
        "ps": "BOTH",
        "cp": False,
        "pP": False,
        "si": 0,
        "ss": 0,
        "rp": wire(trade.realized_pnl if trade else Decimal(0)),
        "V": "NONE",
        "pm": "NONE",
        "gtd": 0,
        "er": str(execution.expiry_reason),
    }
    if trade is not None:
        body["N"] = trade.commission_asset
        body["n"] = wire(trade.commission)
    return {"e": "ORDER_TRADE_UPDATE", "E": execution.time_ms, "T": execution.time_ms, "o": body}


def account_update(exchange: Exchange, change: MarginChange) -> dict[str, object]:
    """USD-M "Event: Balance and Position Update" (``ACCOUNT_UPDATE``), reason ORDER."""
    p = change.position
    mark = exchange.mark_price(p.symbol)
    unrealized = (mark - p.entry_price) * p.amount if mark is not None and p.amount else Decimal(0)
    rules = exchange.rules[p.symbol]
    return {
        "e": "ACCOUNT_UPDATE",
        "E": change.time_ms,
        "T": change.time_ms,
        "a": {
            "m": "ORDER",
            "B": [{"a": change.asset, "wb": wire(change.wallet), "cw": wire(change.wallet), "bc": "0"}],
            "P": [
                {
                    "s": p.symbol,
                    "pa": qty_text(rules, p.amount),
                    "ep": f"{p.entry_price:f}",
                    "bep": f"{p.entry_price:f}",
                    "cr": wire(p.realized),
                    "up": wire(unrealized),
                    "mt": "cross",
                    "iw": "0",
                    "ps": "BOTH",
                }
            ],
        },
    }


@dataclass(eq=False)
class _ListenKey:
    key: str
    expires_ms: int
    streams: set[web.WebSocketResponse] = field(default_factory=set)
    transports: dict[web.WebSocketResponse, asyncio.BaseTransport | None] = field(default_factory=dict)
    outboxes: dict[web.WebSocketResponse, asyncio.Queue[str]] = field(default_factory=dict)


class FuturesUserStreams:
    """The account's listen key and the private streams reading it."""

    def __init__(self, exchange: Exchange, now_ms: Callable[[], int]) -> None:
        self._exchange = exchange
        self._now_ms = now_ms
        self.listen_key: _ListenKey | None = None
        self.issued: list[str] = []  # every key this account was issued, oldest first (the admin API's)
        exchange.listen(self._on_user_event)

    def _alive(self) -> _ListenKey | None:
        if self.listen_key is not None and self.listen_key.expires_ms <= self._now_ms():
            self.expire()
        return self.listen_key

    def create(self) -> str:
        alive = self._alive()
        if alive is None:
            alive = self.listen_key = _ListenKey(secrets.token_hex(32), 0)
            self.issued.append(alive.key)
        alive.expires_ms = self._now_ms() + LISTEN_KEY_VALIDITY_MS
        return alive.key

    def keepalive(self, key: str | None) -> None:
        alive = self._alive()
        if alive is None or (key and key != alive.key):
            raise errors.BinanceError(400, -1125, "This listenKey does not exist.")
        alive.expires_ms = self._now_ms() + LISTEN_KEY_VALIDITY_MS

    def close(self, key: str | None) -> None:
        alive = self._alive()
        if alive is None or (key and key != alive.key):
            raise errors.BinanceError(400, -1125, "This listenKey does not exist.")
        self._end(alive, None)

    def expire(self) -> int:
        """The listen key expires now: its streams get ``listenKeyExpired`` and are closed; returns how many."""
        alive = self.listen_key
        if alive is None:
            return 0
        event = {"e": "listenKeyExpired", "E": self._now_ms(), "listenKey": alive.key}
        return self._end(alive, json.dumps(event))

    def _end(self, key: _ListenKey, last: str | None) -> int:
        self.listen_key = None
        for outbox in key.outboxes.values():
            if last is not None:
                outbox.put_nowait(last)
            outbox.put_nowait("")  # the sender closes the stream after what it already holds
        return len(key.outboxes)

    async def drop_all(self) -> int:
        """Cut every private stream without a close handshake."""
        alive = self.listen_key
        if alive is None:
            return 0
        for transport in alive.transports.values():
            if isinstance(transport, asyncio.Transport):
                transport.abort()
        return len(alive.transports)

    @property
    def connected(self) -> int:
        return len(self.listen_key.outboxes) if self.listen_key is not None else 0

    def _on_user_event(self, event: UserEvent) -> None:
        if self.listen_key is None:
            return
        if isinstance(event, Execution):
            payload = order_trade_update(self._exchange, event)
        elif isinstance(event, MarginChange):
            payload = account_update(self._exchange, event)
        else:
            return
        text = json.dumps(payload)
        for outbox in self.listen_key.outboxes.values():
            outbox.put_nowait(text)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        alive = self._alive()
        key = request.query.get("listenKey", "")
        if alive is None or key != alive.key:
            return error_response(errors.BinanceError(400, -1125, "This listenKey does not exist."))
        ws = web.WebSocketResponse(heartbeat=180.0)  # USD-M pings every 3 minutes
        transport = request.transport
        await ws.prepare(request)
        outbox: asyncio.Queue[str] = asyncio.Queue()
        alive.outboxes[ws] = outbox
        alive.transports[ws] = transport
        sender = asyncio.create_task(self._send_loop(ws, outbox))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            alive.outboxes.pop(ws, None)
            alive.transports.pop(ws, None)
            sender.cancel()
        return ws

    @staticmethod
    async def _send_loop(ws: web.WebSocketResponse, outbox: asyncio.Queue[str]) -> None:
        while True:
            text = await outbox.get()
            if text == "":
                await ws.close()
                return
            try:
                await ws.send_str(text)
            except ConnectionError:
                return


def futures_routes(exchange: Exchange, auth: Authenticator, streams: FuturesUserStreams) -> list[web.RouteDef]:
    """The USD-M trading routes and the private stream, answering from ``exchange`` (a USD-M account)."""
    account = exchange.account
    assert isinstance(account, UsdmAccount)

    def balance_json() -> dict[str, object]:
        position_margin, order_margin = account.position_margin(), account.open_order_margin
        unrealized = sum((_unrealized(s) for s in account.positions), Decimal(0))
        return {
            "asset": account.asset,
            "walletBalance": wire(account.wallet),
            "unrealizedProfit": wire(unrealized),
            "marginBalance": wire(account.wallet + unrealized),
            "maintMargin": wire(Decimal(0)),
            "initialMargin": wire(position_margin + order_margin),
            "positionInitialMargin": wire(position_margin),
            "openOrderInitialMargin": wire(order_margin),
            "crossWalletBalance": wire(account.wallet),
            "crossUnPnl": wire(unrealized),
            "availableBalance": wire(account.available()),
            "maxWithdrawAmount": wire(account.available()),
            "marginAvailable": True,
            "updateTime": exchange.update_ms,
        }

    def _unrealized(symbol: str) -> Decimal:
        p = account.positions[symbol]
        mark = exchange.mark_price(symbol)
        return (mark - p.entry_price) * p.amount if mark is not None and p.amount else Decimal(0)

    async def account_info(_request: web.Request, _p: Params) -> object:
        asset = balance_json()
        return {
            "feeTier": 0,
            "canTrade": True,
            "canDeposit": True,
            "canWithdraw": True,
            "updateTime": exchange.update_ms,
            "multiAssetsMargin": False,
            "totalInitialMargin": asset["initialMargin"],
            "totalMaintMargin": asset["maintMargin"],
            "totalWalletBalance": asset["walletBalance"],
            "totalUnrealizedProfit": asset["unrealizedProfit"],
            "totalMarginBalance": asset["marginBalance"],
            "totalPositionInitialMargin": asset["positionInitialMargin"],
            "totalOpenOrderInitialMargin": asset["openOrderInitialMargin"],
            "totalCrossWalletBalance": asset["crossWalletBalance"],
            "totalCrossUnPnl": asset["crossUnPnl"],
            "availableBalance": asset["availableBalance"],
            "maxWithdrawAmount": asset["maxWithdrawAmount"],
            "assets": [asset],
            "positions": [],
        }

    async def dual_side(_request: web.Request, _p: Params) -> object:
        return {"dualSidePosition": False}

    async def symbol_config(_request: web.Request, p: Params) -> object:
        symbol = p.get("symbol")
        symbols = [exchange.symbol_rules(symbol).symbol] if symbol else list(exchange.rules)
        return [
            {
                "symbol": s,
                "marginType": "CROSSED",
                "isAutoAddMargin": False,
                "leverage": account.leverage_of(s),
                "maxNotionalValue": "1000000",
            }
            for s in symbols
        ]

    async def leverage(_request: web.Request, p: Params) -> object:
        symbol = exchange.symbol_rules(p.get("symbol")).symbol
        value = int_param(p, "leverage")
        if value is None:
            raise errors.mandatory_param("leverage")
        account.set_leverage(symbol, value)
        return {"leverage": value, "maxNotionalValue": "1000000", "symbol": symbol}

    async def margin_type(_request: web.Request, p: Params) -> object:
        exchange.symbol_rules(p.get("symbol"))
        if p.get("marginType") == "CROSSED":
            raise errors.BinanceError(400, -4046, "No need to change margin type.")
        raise errors.BinanceError(400, -1130, "Data sent for parameter 'marginType' is not valid.")

    async def position_risk(_request: web.Request, p: Params) -> object:
        symbol = p.get("symbol")
        symbols = [exchange.symbol_rules(symbol).symbol] if symbol else list(exchange.rules)
        rows = []
        for s in symbols:
            position = account.position(s)
            rules, mark = exchange.rules[s], exchange.mark_price(s)
            rows.append(
                {
                    "symbol": s,
                    "positionSide": "BOTH",
                    "positionAmt": qty_text(rules, position.amount),
                    "entryPrice": f"{position.entry_price:f}",
                    "breakEvenPrice": f"{position.entry_price:f}",
                    "markPrice": f"{mark or Decimal(0):f}",
                    "unRealizedProfit": wire(_unrealized(s)),
                    "liquidationPrice": "0",
                    "isolatedMargin": "0",
                    "notional": wire(position.amount * (mark or position.entry_price)),
                    "marginAsset": account.asset,
                    "isolatedWallet": "0",
                    "initialMargin": wire(abs(position.amount) * position.entry_price / account.leverage_of(s)),
                    "maintMargin": "0",
                    "positionInitialMargin": wire(abs(position.amount) * position.entry_price / account.leverage_of(s)),
                    "openOrderInitialMargin": "0",
                    "adl": 0,
                    "bidNotional": "0",
                    "askNotional": "0",
                    "updateTime": position.update_ms,
                }
            )
        return rows

    async def commission_rate(_request: web.Request, p: Params) -> object:
        rules = exchange.symbol_rules(p.get("symbol"))
        return {
            "symbol": rules.symbol,
            "makerCommissionRate": str(rules.maker_fee),
            "takerCommissionRate": str(rules.taker_fee),
        }

    async def new_order(_request: web.Request, p: Params) -> object:
        if p.get("positionSide") not in (None, "", "BOTH"):
            raise errors.BinanceError(400, -4061, "Order's position side does not match user's setting.")
        reduce_only = (p.get("reduceOnly") or "false").lower() == "true"
        order, _ = exchange.new_order(
            symbol=p.get("symbol") or "",
            side=p.get("side") or "",
            order_type=p.get("type") or "",
            quantity=decimal_param(p, "quantity"),
            price=decimal_param(p, "price"),
            time_in_force=p.get("timeInForce") or None,
            client_order_id=p.get("newClientOrderId") or None,
            reduce_only=reduce_only,
        )
        body = futures_order_json(exchange, order)
        body.pop("time")
        return body

    async def query_order(_request: web.Request, p: Params) -> object:
        order_id, client_id = int_param(p, "orderId"), p.get("origClientOrderId") or None
        if order_id is None and client_id is None:
            raise errors.one_of_params("orderId", "origClientOrderId")
        return futures_order_json(exchange, exchange.order(p.get("symbol") or "", order_id, client_id))

    async def cancel_order(_request: web.Request, p: Params) -> object:
        order = exchange.cancel_order(
            p.get("symbol") or "", int_param(p, "orderId"), p.get("origClientOrderId") or None, generated_client_id()
        )
        return futures_order_json(exchange, order)

    async def open_orders(_request: web.Request, p: Params) -> object:
        return [futures_order_json(exchange, o) for o in exchange.open_orders(p.get("symbol") or None)]

    async def cancel_all(_request: web.Request, p: Params) -> object:
        exchange.cancel_open_orders(p.get("symbol") or "", none_is_error=False)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    async def all_orders(_request: web.Request, p: Params) -> object:
        limit = min(int_param(p, "limit") or 500, 1000)
        # USD-M limits the window too (7 days); its error is not emulated: any window is answered
        start, end = int_param(p, "startTime"), int_param(p, "endTime")
        rows = exchange.all_orders(p.get("symbol") or "", int_param(p, "orderId"), start, end, limit)
        return [futures_order_json(exchange, o) for o in rows]

    async def user_trades(_request: web.Request, p: Params) -> object:
        symbol = exchange.symbol_rules(p.get("symbol")).symbol
        start, end = int_param(p, "startTime"), int_param(p, "endTime")  # (the 7-day window: not emulated)
        rows = exchange.trades(
            symbol,
            order_id=int_param(p, "orderId"),
            start_ms=start,
            end_ms=end,
            from_id=int_param(p, "fromId"),
            limit=min(int_param(p, "limit") or 500, 1000),
        )
        return [futures_trade_json(exchange, t) for t in rows]

    async def no_algo_orders(_request: web.Request, _p: Params) -> object:
        return []

    async def no_algo_order(_request: web.Request, _p: Params) -> object:
        raise errors.no_such_order()

    def user_stream(action: Callable[[str | None], object]) -> Callable[[web.Request], object]:
        async def endpoint(request: web.Request) -> web.Response:
            try:
                auth.key(request.headers.get("X-MBX-APIKEY"))  # USER_STREAM: the key, no signature
                return web.json_response(action(request.query.get("listenKey")))
            except errors.BinanceError as exc:
                return error_response(exc)

        return endpoint

    return [
        web.get("/fapi/v2/account", signed(auth, account_info)),
        web.get("/fapi/v1/positionSide/dual", signed(auth, dual_side)),
        web.get("/fapi/v1/symbolConfig", signed(auth, symbol_config)),
        web.post("/fapi/v1/leverage", signed(auth, leverage)),
        web.post("/fapi/v1/marginType", signed(auth, margin_type)),
        web.get("/fapi/v3/positionRisk", signed(auth, position_risk)),
        web.get("/fapi/v1/commissionRate", signed(auth, commission_rate)),
        web.post("/fapi/v1/order", signed(auth, new_order)),
        web.get("/fapi/v1/order", signed(auth, query_order)),
        web.delete("/fapi/v1/order", signed(auth, cancel_order)),
        web.get("/fapi/v1/openOrders", signed(auth, open_orders)),
        web.delete("/fapi/v1/allOpenOrders", signed(auth, cancel_all)),
        web.get("/fapi/v1/allOrders", signed(auth, all_orders)),
        web.get("/fapi/v1/userTrades", signed(auth, user_trades)),
        web.get("/fapi/v1/openAlgoOrders", signed(auth, no_algo_orders)),
        web.get("/fapi/v1/allAlgoOrders", signed(auth, no_algo_orders)),
        web.get("/fapi/v1/algoOrder", signed(auth, no_algo_order)),
        web.post("/fapi/v1/listenKey", user_stream(lambda _key: {"listenKey": streams.create()})),
        web.put("/fapi/v1/listenKey", user_stream(lambda key: streams.keepalive(key) or {})),
        web.delete("/fapi/v1/listenKey", user_stream(lambda key: streams.close(key) or {})),
        web.get(PRIVATE_STREAM_PATH, streams.handle),
    ]
