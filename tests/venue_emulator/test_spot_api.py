"""The authenticated spot REST endpoints and the WebSocket API, over HTTP, against Binance's documented answers.

Requests are signed with NautilusTrader's own ``hmac_signature``/``ed25519_signature``, not the emulator's
signer, so a signature check that agreed only with itself would fail here.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from decimal import Decimal

import aiohttp
import msgspec
import pytest
from nautilus_trader.adapters.binance.common.credentials import extract_ed25519_private_key
from nautilus_trader.adapters.binance.spot.schemas.user import BinanceSpotOrderUpdateData
from nautilus_trader.core.nautilus_pyo3 import ed25519_signature, hmac_signature

from livestrat.venue_emulator.accounts import SpotAccount
from livestrat.venue_emulator.exchange import Exchange, Execution
from livestrat.venue_emulator.ws_api import execution_report
from tests.venue_emulator.spot_venue import BTCUSDT, ED25519_KEY, HMAC_KEY, book_top, served_venue

D = Decimal


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def signed_query(params: dict[str, object], secret: str = HMAC_KEY.secret, timestamp: int | None = None) -> str:
    payload = dict(params) | {"timestamp": timestamp if timestamp is not None else now_ms()}
    query = urllib.parse.urlencode(payload)
    return f"{query}&signature={hmac_signature(secret, query)}"


async def call(http: str, method: str, path: str, query: str, api_key: str | None = HMAC_KEY.api_key):
    headers = {"X-MBX-APIKEY": api_key} if api_key else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{http}{path}?{query}", headers=headers) as resp,
    ):
        return resp.status, await resp.json()


async def test_signature_timestamp_and_key_errors_are_binances():
    async with served_venue() as v:
        good = signed_query({})
        assert (await call(v.http, "GET", "/api/v3/account", good))[0] == 200
        answers = [
            await call(v.http, "GET", "/api/v3/account", signed_query({}, secret="wrong")),
            await call(v.http, "GET", "/api/v3/account", signed_query({}, timestamp=now_ms() - 60_000)),
            await call(v.http, "GET", "/api/v3/account", signed_query({}, timestamp=now_ms() + 5_000)),
            await call(v.http, "GET", "/api/v3/account", good, api_key=None),
            await call(v.http, "GET", "/api/v3/account", good, api_key="Z" * 64),
        ]
    assert answers == [
        (400, {"code": -1022, "msg": "Signature for this request is not valid."}),
        (400, {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}),
        (400, {"code": -1021, "msg": "Timestamp for this request was 1000ms ahead of the server's time."}),
        (401, {"code": -2014, "msg": "API-key format invalid."}),
        (401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}),
    ]


async def test_an_ed25519_key_signs_rest_requests_base64_percent_encoded():
    async with served_venue() as v:
        query = urllib.parse.urlencode({"timestamp": now_ms()})
        signature = ed25519_signature(extract_ed25519_private_key(ED25519_KEY.secret), query)
        full = query + "&" + urllib.parse.urlencode({"signature": signature})
        status, body = await call(v.http, "GET", "/api/v3/account", full, api_key=ED25519_KEY.api_key)
        bad = query + "&" + urllib.parse.urlencode({"signature": signature.swapcase()})
        bad_status, bad_body = await call(v.http, "GET", "/api/v3/account", bad, api_key=ED25519_KEY.api_key)
    assert status == 200 and {b["asset"] for b in body["balances"]} == {"BTC", "USDT"}
    assert (bad_status, bad_body["code"]) == (400, -1022)


async def test_orders_filters_balance_and_unknown_orders_over_rest():
    async with served_venue() as v:
        v.venue.exchange.on_market(book_top("100.00", "100.50"))
        order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
        placed = await call(
            v.http, "POST", "/api/v3/order", signed_query(order | {"quantity": "0.1", "price": "99.00"})
        )
        tick = await call(v.http, "POST", "/api/v3/order", signed_query(order | {"quantity": "0.1", "price": "99.001"}))
        lot = await call(v.http, "POST", "/api/v3/order", signed_query(order | {"quantity": "0.000011", "price": "99"}))
        small = await call(
            v.http, "POST", "/api/v3/order", signed_query(order | {"quantity": "0.01", "price": "99.00"})
        )
        broke = await call(v.http, "POST", "/api/v3/order", signed_query(order | {"quantity": "2000", "price": "99"}))
        unknown_cancel = await call(
            v.http, "DELETE", "/api/v3/order", signed_query({"symbol": "BTCUSDT", "orderId": 77})
        )
        unknown_query = await call(v.http, "GET", "/api/v3/order", signed_query({"symbol": "BTCUSDT", "orderId": 77}))
        open_orders = await call(v.http, "GET", "/api/v3/openOrders", signed_query({"symbol": "BTCUSDT"}))
        order_id = placed[1]["orderId"]
        cancelled = await call(
            v.http, "DELETE", "/api/v3/order", signed_query({"symbol": "BTCUSDT", "orderId": order_id})
        )
    assert placed[0] == 200 and placed[1]["status"] == "NEW" and placed[1]["fills"] == []
    assert [a[1] for a in (tick, lot, small)] == [
        {"code": -1013, "msg": "Filter failure: PRICE_FILTER"},
        {"code": -1013, "msg": "Filter failure: LOT_SIZE"},
        {"code": -1013, "msg": "Filter failure: NOTIONAL"},
    ]
    assert broke == (400, {"code": -2010, "msg": "Account has insufficient balance for requested action."})
    assert unknown_cancel == (400, {"code": -2011, "msg": "Unknown order sent."})
    assert unknown_query == (400, {"code": -2013, "msg": "Order does not exist."})
    assert [o["orderId"] for o in open_orders[1]] == [order_id]
    assert cancelled[1]["status"] == "CANCELED" and cancelled[1]["origClientOrderId"] == placed[1]["clientOrderId"]


async def test_a_market_order_answers_full_and_shows_in_my_trades_and_all_orders():
    async with served_venue() as v:
        v.venue.exchange.on_market(book_top("100.00", "100.50"))
        query = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.2", "newClientOrderId": "m-1"}
        status, placed = await call(v.http, "POST", "/api/v3/order", signed_query(query))
        _, trades = await call(v.http, "GET", "/api/v3/myTrades", signed_query({"symbol": "BTCUSDT"}))
        _, orders = await call(v.http, "GET", "/api/v3/allOrders", signed_query({"symbol": "BTCUSDT"}))
    assert status == 200 and placed["status"] == "FILLED" and placed["clientOrderId"] == "m-1"
    assert placed["fills"] == [
        {"price": "100.50000000", "qty": "0.20000000", "commission": "0.00020000", "commissionAsset": "BTC",
         "tradeId": trades[0]["id"]}
    ]  # fmt: skip
    assert [(t["orderId"], t["price"], t["qty"], t["isBuyer"], t["isMaker"]) for t in trades] == [
        (placed["orderId"], "100.50000000", "0.20000000", True, False)
    ]
    assert [(o["orderId"], o["status"], o["executedQty"]) for o in orders] == [
        (placed["orderId"], "FILLED", "0.20000000")
    ]


async def ws_request(ws: aiohttp.ClientWebSocketResponse, request_id: str, method: str, params=None) -> dict:
    await ws.send_str(json.dumps({"id": request_id, "method": method, "params": params or {}}))
    while True:
        msg = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
        if msg.get("id") == request_id:
            return msg


def logon_params(key, sign) -> dict[str, object]:
    timestamp = now_ms()
    return {
        "apiKey": key.api_key,
        "timestamp": timestamp,
        "signature": sign(f"apiKey={key.api_key}&timestamp={timestamp}"),
    }


async def test_ws_api_logon_needs_an_ed25519_key_and_the_stream_carries_execution_reports():
    ed_seed = extract_ed25519_private_key(ED25519_KEY.secret)
    async with served_venue() as v, aiohttp.ClientSession() as session, session.ws_connect(v.ws_api) as ws:
        early = await ws_request(ws, "0", "userDataStream.subscribe")
        hmac_logon = await ws_request(
            ws, "1", "session.logon", logon_params(HMAC_KEY, lambda p: hmac_signature(HMAC_KEY.secret, p))
        )
        logon = await ws_request(
            ws, "2", "session.logon", logon_params(ED25519_KEY, lambda p: ed25519_signature(ed_seed, p))
        )
        subscribed = await ws_request(ws, "3", "userDataStream.subscribe")
        again = await ws_request(ws, "4", "userDataStream.subscribe")
        v.venue.exchange.on_market(book_top("100.00", "100.50"))
        v.venue.exchange.new_order("BTCUSDT", "SELL", "MARKET", D("0.1"), client_order_id="s-1")
        events = [json.loads((await asyncio.wait_for(ws.receive(), 10)).data) for _ in range(3)]
    assert early["status"] == 401 and early["error"]["code"] == -1002
    assert hmac_logon["error"] == {"code": -1022, "msg": "Signature for this request is not valid."}
    assert logon["status"] == 200 and logon["result"]["apiKey"] == ED25519_KEY.api_key
    assert subscribed["result"] == {"subscriptionId": 0}
    assert again["error"] == {"code": -2035, "msg": "User Data Stream subscription already active."}
    assert [e["subscriptionId"] for e in events] == [0, 0, 0]
    new, trade, account = (e["event"] for e in events)
    assert (new["e"], new["x"], new["X"], new["c"]) == ("executionReport", "NEW", "NEW", "s-1")
    assert (trade["x"], trade["X"], trade["L"], trade["l"], trade["m"]) == (
        "TRADE",
        "FILLED",
        "100.00000000",
        "0.10000000",
        False,
    )
    assert account["e"] == "outboundAccountPosition" and {b["a"] for b in account["B"]} == {"BTC", "USDT"}
    assert (trade["n"], trade["N"]) == ("0.01000000", "USDT")  # a sell pays in the quote it receives


async def test_a_buys_execution_report_and_account_position_carry_the_commission_in_the_base():
    # user-data-stream.md "Order Update": ``n`` commission amount, ``N`` commission asset; the asset is
    # the one the trade receives (commission_faq.md), BTC for a BTCUSDT buy
    ed_seed = extract_ed25519_private_key(ED25519_KEY.secret)
    async with served_venue() as v, aiohttp.ClientSession() as session, session.ws_connect(v.ws_api) as ws:
        await ws_request(ws, "1", "session.logon", logon_params(ED25519_KEY, lambda p: ed25519_signature(ed_seed, p)))
        await ws_request(ws, "2", "userDataStream.subscribe")
        v.venue.exchange.on_market(book_top("100.00", "100.50"))
        v.venue.exchange.new_order("BTCUSDT", "BUY", "MARKET", D("0.1"), client_order_id="b-1")
        events = [json.loads((await asyncio.wait_for(ws.receive(), 10)).data)["event"] for _ in range(3)]
    _, trade, account = events
    assert (trade["x"], trade["n"], trade["N"]) == ("TRADE", "0.00010000", "BTC")
    balances = {b["a"]: (b["f"], b["l"]) for b in account["B"]}
    assert balances == {"BTC": ("2.09990000", "0.00000000"), "USDT": ("99989.95000000", "0.00000000")}


async def test_history_windows_longer_than_24_hours_are_refused():
    async with served_venue() as v:
        day, end = 24 * 60 * 60 * 1000, now_ms()
        wide = {"symbol": "BTCUSDT", "startTime": end - day - 1, "endTime": end}
        day_wide = {"symbol": "BTCUSDT", "startTime": end - day, "endTime": end}
        answers = [
            await call(v.http, "GET", path, signed_query(wide)) for path in ("/api/v3/allOrders", "/api/v3/myTrades")
        ]
        ok = await call(v.http, "GET", "/api/v3/myTrades", signed_query(day_wide))
    assert answers == [(400, {"code": -1127, "msg": "More than 24 hours between startTime and endTime."})] * 2
    assert ok == (200, [])


@pytest.mark.parametrize(
    ("order_type", "price", "tif", "partial", "reason"),
    [
        ("LIMIT", "99.00", "IOC", None, "UNFILLED_IOC_QUANTITY_EXPIRED"),
        ("LIMIT", "101.00", "IOC", "0.5", "UNFILLED_IOC_QUANTITY_EXPIRED"),
        ("LIMIT", "99.00", "FOK", None, "UNFILLED_FOK_ORDER_EXPIRED"),
        ("LIMIT", "101.00", "FOK", "0.5", "UNFILLED_FOK_ORDER_EXPIRED"),
        ("MARKET", None, None, "0.5", "INSUFFICIENT_LIQUIDITY"),
        ("MARKET", "no-price", None, None, "INSUFFICIENT_LIQUIDITY"),
    ],
    ids=["ioc-no-cross", "ioc-in-part", "fok-no-cross", "fok-in-part", "market-in-part", "market-no-price"],
)
def test_an_expired_orders_execution_report_names_its_expiry_reason_as_the_docs_list_them(
    order_type, price, tif, partial, reason
):
    """user-data-stream.md "Conditional Fields in Execution Report": ``eR`` "Expiry Reason", "Appears when the order
    has expired." (``"eR": "INSUFFICIENT_LIQUIDITY"``), its values in "Order Expiry Reason" (CHANGELOG 2026-03-09:
    in executionReport events since 2026-03-26). An IOC's unfilled rest: UNFILLED_IOC_QUANTITY_EXPIRED; a FOK:
    UNFILLED_FOK_ORDER_EXPIRED; a MARKET order with too little to match (faqs/market_orders_faq.md: "expires due to
    insufficient liquidity"): INSUFFICIENT_LIQUIDITY. No other report carries it, and NautilusTrader 1.231's spot
    struct still decodes every one."""

    ex = Exchange([BTCUSDT], SpotAccount({"USDT": D("1000"), "BTC": D("1")}), now_ms)
    seen: list = []
    ex.listen(seen.append)
    if price != "no-price":
        ex.on_market(book_top("100.00", "100.50"))
    if partial:
        ex.fill_next_partially(D(partial))
    limit = D(price) if order_type == "LIMIT" else None
    ex.new_order("BTCUSDT", "BUY", order_type, D("0.2"), limit, tif)
    reports = [execution_report(e, i) for i, e in enumerate(seen) if isinstance(e, Execution)]
    assert reports[-1]["x"] == reports[-1]["X"] == "EXPIRED" and reports[-1]["eR"] == reason
    assert all("eR" not in r for r in reports[:-1])
    decoder = msgspec.json.Decoder(BinanceSpotOrderUpdateData)
    assert [decoder.decode(json.dumps(r)).x.value for r in reports] == [r["x"] for r in reports]
