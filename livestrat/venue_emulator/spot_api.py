"""Binance's authenticated spot REST endpoints, the ones NautilusTrader 1.231's spot execution client calls.

``GET /api/v3/account`` (connect, and after each ``balanceUpdate``), ``POST/GET/DELETE
/api/v3/order`` (submit, status query, cancel), ``GET/DELETE /api/v3/openOrders`` (reconciliation,
cancel-all), ``GET /api/v3/allOrders`` and ``GET /api/v3/myTrades`` (reconciliation), and ``GET
/sapi/v1/asset/tradeFee`` (the instrument provider's fee tier). Shapes follow rest-api.md ("New
order" FULL response, "Cancel order", "Account information", "Query order", "Account trade list"),
which is what the adapter's msgspec schemas (``BinanceOrder``, ``BinanceUserTrade``,
``BinanceSpotAccountInfo``, ``BinanceSpotTradeFee``) decode. Parameters are read from the query
string and, for POST/DELETE, a form-encoded body (the query string wins, as rest-api.md "General
Information on Endpoints" says). Decimals go out with 8 decimals, as Binance's spot API renders them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl

from aiohttp import web

from livestrat.venue_emulator import errors
from livestrat.venue_emulator.auth import Authenticator
from livestrat.venue_emulator.exchange import Exchange, Order, Trade, generated_client_id

Params = dict[str, str]
SignedHandler = Callable[[web.Request, Params], Awaitable[object]]

_DECIMAL_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"


def wire(value: Decimal) -> str:
    """A decimal as Binance's spot API writes it: fixed, 8 decimals."""
    return f"{value:.8f}"


def order_json(order: Order) -> dict[str, object]:
    """An order as "Query order" / "All orders" / "Current open orders" answer it."""
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "price": wire(order.price),
        "origQty": wire(order.orig_qty),
        "executedQty": wire(order.executed_qty),
        "cummulativeQuoteQty": wire(order.cum_quote),
        "status": order.status,
        "timeInForce": order.time_in_force,
        "type": order.type,
        "side": order.side,
        "stopPrice": wire(Decimal(0)),
        "icebergQty": wire(Decimal(0)),
        "time": order.time_ms,
        "updateTime": order.update_ms,
        "isWorking": order.working_ms is not None,
        "workingTime": order.working_ms if order.working_ms is not None else -1,
        "origQuoteOrderQty": wire(Decimal(0)),
        "selfTradePreventionMode": "NONE",
    }


def _result_json(order: Order, transact_ms: int) -> dict[str, object]:
    """The RESULT part of a new-order / cancel answer (no time/updateTime/isWorking, a transactTime)."""
    body = order_json(order)
    for absent in ("stopPrice", "icebergQty", "time", "updateTime", "isWorking"):
        body.pop(absent)
    body["transactTime"] = transact_ms
    if order.working_ms is None:
        body.pop("workingTime")
    return body


def trade_json(trade: Trade) -> dict[str, object]:
    """A row of "Account trade list" (``GET /api/v3/myTrades``)."""
    return {
        "symbol": trade.symbol,
        "id": trade.trade_id,
        "orderId": trade.order_id,
        "orderListId": -1,
        "price": wire(trade.price),
        "qty": wire(trade.qty),
        "quoteQty": wire(trade.quote_qty),
        "commission": wire(trade.commission),
        "commissionAsset": trade.commission_asset,
        "time": trade.time_ms,
        "isBuyer": trade.side == "BUY",
        "isMaker": trade.is_maker,
        "isBestMatch": True,
    }


def account_json(exchange: Exchange) -> dict[str, object]:
    """ "Account information": commissions in basis points of the first symbol's fees, every balance."""
    fees = next(iter(exchange.rules.values()), None)
    maker = fees.maker_fee if fees else Decimal(0)
    taker = fees.taker_fee if fees else Decimal(0)
    return {
        "makerCommission": int(maker * 10000),
        "takerCommission": int(taker * 10000),
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": wire(maker),
            "taker": wire(taker),
            "buyer": wire(Decimal(0)),
            "seller": wire(Decimal(0)),
        },
        "canTrade": True,
        "canWithdraw": True,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": exchange.update_ms,
        "accountType": "SPOT",
        "balances": [
            {"asset": asset, "free": wire(b.free), "locked": wire(b.locked)} for asset, b in exchange.balances().items()
        ],
        "permissions": ["SPOT"],
        "uid": 1,
    }


def decimal_param(params: Params, name: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise errors.BinanceError(
            400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '{_DECIMAL_RANGE}'."
        ) from None
    if not value.is_finite() or value < 0:
        raise errors.BinanceError(
            400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '{_DECIMAL_RANGE}'."
        )
    return value


def int_param(params: Params, name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not raw.lstrip("-").isdigit():
        raise errors.BinanceError(
            400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
        )
    return int(raw)


def time_window(params: Params) -> tuple[int | None, int | None]:
    """``startTime``/``endTime``; rest-api.md ("All orders", "Account trade list"): "The time between startTime
    and endTime can't be longer than 24 hours" (-1127)."""
    start, end = int_param(params, "startTime"), int_param(params, "endTime")
    if start is not None and end is not None and end - start > 24 * 60 * 60 * 1000:
        raise errors.more_than_24_hours()
    return start, end


def error_response(exc: errors.BinanceError, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(exc.body(), status=exc.http_status, headers=headers)


def signed(auth: Authenticator, handler: SignedHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A SIGNED endpoint: parameters from query and body, checked by ``auth``, errors as Binance's JSON."""

    async def endpoint(request: web.Request) -> web.Response:
        raw_query = request.rel_url.raw_query_string
        body = ""
        params: Params = {}
        if request.method in ("POST", "PUT", "DELETE") and request.can_read_body:
            body = (await request.read()).decode()
            if request.content_type == "application/x-www-form-urlencoded":
                params.update(parse_qsl(body, keep_blank_values=True))
            else:
                body = ""  # JSON bodies are not Binance's; the adapter sends none
        params.update(parse_qsl(raw_query, keep_blank_values=True))
        try:
            auth.check_rest(request.headers.get("X-MBX-APIKEY"), raw_query, body, params)
            result = await handler(request, params)
        except errors.BinanceError as exc:
            return error_response(exc)
        return web.json_response(result)

    return endpoint


def spot_routes(exchange: Exchange, auth: Authenticator) -> list[web.RouteDef]:
    """The authenticated spot REST routes, answering from ``exchange``."""

    async def account(_request: web.Request, _params: Params) -> object:
        return account_json(exchange)

    async def new_order(_request: web.Request, p: Params) -> object:
        resp_type = p.get("newOrderRespType") or ("FULL" if p.get("type") in ("MARKET", "LIMIT") else "ACK")
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise errors.invalid_parameter("newOrderRespType")
        if p.get("icebergQty"):
            raise errors.new_order_rejected("Iceberg orders are not supported for this symbol.")
        if p.get("quoteOrderQty"):
            raise errors.BinanceError(400, -2010, "Quote order qty market orders are not support for this symbol.")
        order, trades = exchange.new_order(
            symbol=p.get("symbol") or "",
            side=p.get("side") or "",
            order_type=p.get("type") or "",
            quantity=decimal_param(p, "quantity"),
            price=decimal_param(p, "price"),
            time_in_force=p.get("timeInForce") or None,
            client_order_id=p.get("newClientOrderId") or None,
        )
        if resp_type == "ACK":
            return {
                "symbol": order.symbol,
                "orderId": order.order_id,
                "orderListId": -1,
                "clientOrderId": order.client_order_id,
                "transactTime": order.time_ms,
            }
        body = _result_json(order, order.time_ms)
        if resp_type == "FULL":
            body["fills"] = [
                {
                    "price": wire(t.price),
                    "qty": wire(t.qty),
                    "commission": wire(t.commission),
                    "commissionAsset": t.commission_asset,
                    "tradeId": t.trade_id,
                }
                for t in trades
            ]
        return body

    async def query_order(_request: web.Request, p: Params) -> object:
        order_id, client_id = int_param(p, "orderId"), p.get("origClientOrderId") or None
        if order_id is None and client_id is None:
            raise errors.one_of_params("orderId", "origClientOrderId")
        return order_json(exchange.order(p.get("symbol") or "", order_id, client_id))

    async def cancel_order(_request: web.Request, p: Params) -> object:
        cancel_id = p.get("newClientOrderId") or generated_client_id()
        order = exchange.cancel_order(
            p.get("symbol") or "", int_param(p, "orderId"), p.get("origClientOrderId") or None, cancel_id
        )
        return _cancel_json(order, cancel_id)

    async def open_orders(_request: web.Request, p: Params) -> object:
        return [order_json(o) for o in exchange.open_orders(p.get("symbol") or None)]

    async def cancel_open_orders(_request: web.Request, p: Params) -> object:
        return [
            _cancel_json(order, cancel_id) for order, cancel_id in exchange.cancel_open_orders(p.get("symbol") or "")
        ]

    async def all_orders(_request: web.Request, p: Params) -> object:
        limit = int_param(p, "limit") or 500
        if limit > 1000:
            raise errors.param_too_large("limit", 1000)
        start, end = time_window(p)
        rows = exchange.all_orders(p.get("symbol") or "", int_param(p, "orderId"), start, end, limit)
        return [order_json(o) for o in rows]

    async def my_trades(_request: web.Request, p: Params) -> object:
        limit = int_param(p, "limit") or 500
        if limit > 1000:
            raise errors.param_too_large("limit", 1000)
        symbol = p.get("symbol") or ""
        exchange.symbol_rules(symbol)
        start, end = time_window(p)
        rows = exchange.trades(
            symbol,
            order_id=int_param(p, "orderId"),
            start_ms=start,
            end_ms=end,
            from_id=int_param(p, "fromId"),
            limit=limit,
        )
        return [trade_json(t) for t in rows]

    async def trade_fees(_request: web.Request, p: Params) -> object:
        # Binance's wallet API, "Trade Fee (USER_DATA)": the instrument provider asks it for the fee tier
        symbol = p.get("symbol")
        rules = [exchange.symbol_rules(symbol)] if symbol else list(exchange.rules.values())
        return [
            {"symbol": r.symbol, "makerCommission": str(r.maker_fee), "takerCommission": str(r.taker_fee)}
            for r in rules
        ]

    def _cancel_json(order: Order, cancel_id: str) -> dict[str, object]:
        body = _result_json(order, order.update_ms)
        body.pop("workingTime", None)
        return {"symbol": order.symbol, "origClientOrderId": order.client_order_id, **body, "clientOrderId": cancel_id}

    return [
        web.get("/api/v3/account", signed(auth, account)),
        web.post("/api/v3/order", signed(auth, new_order)),
        web.get("/api/v3/order", signed(auth, query_order)),
        web.delete("/api/v3/order", signed(auth, cancel_order)),
        web.get("/api/v3/openOrders", signed(auth, open_orders)),
        web.delete("/api/v3/openOrders", signed(auth, cancel_open_orders)),
        web.get("/api/v3/allOrders", signed(auth, all_orders)),
        web.get("/api/v3/myTrades", signed(auth, my_trades)),
        web.get("/sapi/v1/asset/tradeFee", signed(auth, trade_fees)),
    ]
