"""The OKX venue's signing and refusals, as OKX documents them (API v5, "REST Authentication",
"WebSocket Login", "Error Code"), asked over plain HTTP and WebSocket."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from livestrat.venue_emulator.events import Candle
from livestrat.venue_emulator.okx.auth import OkxKey, rest_timestamp
from livestrat.venue_emulator.okx.venue import OkxVenue
from tests.venue_emulator.test_nautilus_okx import KEY, RULES, book_top

D = Decimal


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def signed_headers(key: OkxKey, method: str, path: str, body: str = "", *, ms: int | None = None) -> dict[str, str]:
    stamp = rest_timestamp(now_ms() if ms is None else ms)
    sign = base64.b64encode(hmac.new(key.secret.encode(), f"{stamp}{method}{path}{body}".encode(), "sha256").digest())
    return {
        "OK-ACCESS-KEY": key.api_key,
        "OK-ACCESS-SIGN": sign.decode(),
        "OK-ACCESS-TIMESTAMP": stamp,
        "OK-ACCESS-PASSPHRASE": key.passphrase,
    }


def login_arg(key: OkxKey, *, seconds: int | None = None) -> dict[str, str]:
    stamp = str(now_ms() // 1000 if seconds is None else seconds)
    sign = hmac.new(key.secret.encode(), f"{stamp}GET/users/self/verify".encode(), hashlib.sha256).digest()
    return {
        "apiKey": key.api_key,
        "passphrase": key.passphrase,
        "timestamp": stamp,
        "sign": base64.b64encode(sign).decode(),
    }


@asynccontextmanager
async def served(balances: dict[str, Decimal] | None = None) -> AsyncIterator[tuple[OkxVenue, str]]:
    venue = OkxVenue([RULES], [KEY], balances if balances is not None else {"USDT": D("1000"), "BTC": D("1")})
    server = TestServer(venue.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield venue, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def get(http: str, path: str, headers: dict[str, str]) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as s, s.get(http + path, headers=headers) as r:
        return r.status, await r.json()


WRONG = OkxKey(KEY.api_key, "not-the-secret", KEY.passphrase)


BALANCE = "/api/v5/account/balance"


# the headers are made when the test runs (a timestamp taken at collection may be stale by then)
@pytest.mark.parametrize(
    ("headers", "code", "msg"),
    [
        (lambda: signed_headers(KEY, "GET", BALANCE), "0", ""),
        (lambda: signed_headers(OkxKey("unknown", KEY.secret, KEY.passphrase), "GET", BALANCE),
         "50111", "Invalid OK-ACCESS-KEY."),
        (lambda: signed_headers(WRONG, "GET", BALANCE), "50113", "Invalid signature."),
        # the signature covers the path with its query: one signed for ?ccy=BTC is wrong for the bare path
        (lambda: signed_headers(KEY, "GET", BALANCE + "?ccy=BTC"), "50113", "Invalid signature."),
        (lambda: signed_headers(OkxKey(KEY.api_key, KEY.secret, "wrong"), "GET", BALANCE),
         "50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect.'),
        (lambda: signed_headers(KEY, "GET", BALANCE, ms=now_ms() - 31_000), "50102", "Timestamp request expired."),
        (lambda: signed_headers(KEY, "GET", BALANCE, ms=now_ms() + 31_000), "50102", "Timestamp request expired."),
        (dict, "50103", 'Request header "OK-ACCESS-KEY" cannot be empty.'),
    ],
)  # fmt: skip
async def test_signed_rest_takes_only_a_correct_key_signature_passphrase_and_fresh_timestamp(headers, code, msg):
    async with served() as (venue, http):
        status, body = await get(http, BALANCE, headers())
        assert (body["code"], body["msg"]) == (code, msg)
        assert status == (200 if code == "0" else 401)
        if code == "0":
            details = {d["ccy"]: (d["cashBal"], d["availBal"], d["frozenBal"]) for d in body["data"][0]["details"]}
            assert details == {"BTC": ("1", "1", "0"), "USDT": ("1000", "1000", "0")}
        else:
            assert venue.refusals == [("/api/v5/account/balance", code)]


async def test_a_query_string_is_signed_with_the_path():
    async with served() as (_, http):
        path = "/api/v5/account/balance?ccy=BTC"
        status, body = await get(http, path, signed_headers(KEY, "GET", path))
        assert status == 200 and [d["ccy"] for d in body["data"][0]["details"]] == ["BTC"]


@pytest.mark.parametrize(
    ("arg", "code"),
    [
        (lambda: login_arg(OkxKey("unknown", KEY.secret, KEY.passphrase)), "60005"),
        (lambda: login_arg(WRONG), "60007"),
        (lambda: login_arg(OkxKey(KEY.api_key, KEY.secret, "wrong")), "60024"),
        (lambda: login_arg(KEY, seconds=now_ms() // 1000 - 60), "60006"),
    ],
)
async def test_a_websocket_login_with_a_wrong_key_signature_passphrase_or_timestamp_is_refused(arg, code):
    async with served() as (venue, http), aiohttp.ClientSession() as s:
        async with s.ws_connect(http + "/ws/v5/private") as ws:
            await ws.send_json({"op": "login", "args": [arg()]})
            answer = await ws.receive_json(timeout=10)
            assert (answer["event"], answer["code"]) == ("error", code)
            # and without a login the private channels stay closed: 60011 "Please log in"
            await ws.send_json({"op": "subscribe", "args": [{"channel": "orders", "instType": "SPOT"}]})
            answer = await ws.receive_json(timeout=10)
            assert (answer["event"], answer["code"], answer["msg"]) == ("error", "60011", "Please log in")
        assert venue.refusals == [("login", code)]


async def test_orders_over_the_private_websocket_answer_then_push_and_refusals_carry_okx_codes():
    async with served() as (venue, http), aiohttp.ClientSession() as s:
        venue.exchange.on_market(book_top("100.0", "100.5"))
        async with s.ws_connect(http + "/ws/v5/private") as ws:
            await ws.send_json({"op": "login", "args": [login_arg(KEY)]})
            assert (await ws.receive_json(timeout=10))["event"] == "login"
            await ws.send_json({"op": "subscribe", "args": [{"channel": "orders", "instType": "SPOT"}]})
            assert (await ws.receive_json(timeout=10))["event"] == "subscribe"

            order = {"instIdCode": venue.codes["BTC-USDT"], "tdMode": "cash", "side": "buy", "ordType": "limit"}
            too_big = order | {"clOrdId": "big", "sz": "100", "px": "99"}  # 9900 USDT > 1000
            await ws.send_json({"id": "1", "op": "order", "args": [too_big]})
            answer = await ws.receive_json(timeout=10)
            assert (answer["id"], answer["code"]) == ("1", "1")
            assert (answer["data"][0]["sCode"], answer["data"][0]["sMsg"]) == (
                "51008",
                "Order failed. Insufficient USDT balance in account",
            )

            await ws.send_json({"id": "2", "op": "order", "args": [order | {"clOrdId": "ok", "sz": "1", "px": "99"}]})
            answer = await ws.receive_json(timeout=10)
            assert (answer["code"], answer["data"][0]["sCode"], answer["data"][0]["clOrdId"]) == ("0", "0", "ok")
            push = await ws.receive_json(timeout=10)  # after the answer: the order, live
            assert push["arg"]["channel"] == "orders"
            assert (push["data"][0]["clOrdId"], push["data"][0]["state"]) == ("ok", "live")

            cancel = {"instIdCode": venue.codes["BTC-USDT"], "ordId": "999"}
            await ws.send_json({"id": "3", "op": "cancel-order", "args": [cancel]})
            answer = await ws.receive_json(timeout=10)
            assert (answer["code"], answer["data"][0]["sCode"]) == ("1", "51400")

            await ws.send_json({"id": "4", "op": "cancel-order", "args": [cancel | {"ordId": answer_id(venue)}]})
            answer = await ws.receive_json(timeout=10)
            assert (answer["code"], answer["data"][0]["sCode"]) == ("0", "0")
            push = await ws.receive_json(timeout=10)
            assert (push["data"][0]["clOrdId"], push["data"][0]["state"]) == ("ok", "canceled")

        status, body = await get(
            http, "/api/v5/trade/order?instId=BTC-USDT&ordId=12345",
            signed_headers(KEY, "GET", "/api/v5/trade/order?instId=BTC-USDT&ordId=12345"),
        )  # fmt: skip
        assert (status, body["code"], body["msg"]) == (200, "51603", "Order does not exist.")
        assert venue.refusals == [("order", "51008"), ("cancel-order", "51400"), ("/api/v5/trade/order", "51603")]


def answer_id(venue: OkxVenue) -> str:
    [order] = venue.exchange.open_orders()
    return str(order.order_id)


def test_a_key_never_shows_its_secret_or_passphrase():
    assert KEY.secret not in repr(KEY) and KEY.passphrase not in repr(KEY)


async def test_fills_and_order_history_page_newest_first_with_the_after_cursor_as_okx_documents():
    """OKX "Get transaction details (last 3 days)" / "Get order history (last 7 days)": newest first, at most
    ``limit`` (default and max 100) rows, ``after`` = rows older than that billId / ordId, begin/end (ms)."""
    async with served({"USDT": D("1000000"), "BTC": D("0")}) as (venue, http):
        venue.exchange.on_market(book_top("100.0", "100.5"))
        for _ in range(150):
            venue.exchange.new_order("BTC-USDT", "BUY", "MARKET", D("0.01"))

        async def rows(path: str) -> list[dict]:
            status, body = await get(http, path, signed_headers(KEY, "GET", path))
            assert (status, body["code"]) == (200, "0"), body
            return body["data"]

        first = await rows("/api/v5/trade/fills?instType=SPOT")
        rest = await rows(f"/api/v5/trade/fills?instType=SPOT&after={first[-1]['billId']}")
        ids = [int(r["tradeId"]) for r in first + rest]
        assert (len(first), len(rest)) == (100, 50)
        assert ids == sorted((t.trade_id for t in venue.exchange.trades()), reverse=True)
        assert len(await rows("/api/v5/trade/fills?instType=SPOT&limit=500")) == 100  # OKX: at most 100
        newest = int(first[0]["ts"])
        assert [r["tradeId"] for r in await rows(f"/api/v5/trade/fills?instType=SPOT&begin={newest + 1}")] == []

        orders = await rows("/api/v5/trade/orders-history?instType=SPOT&limit=40")
        older = await rows(f"/api/v5/trade/orders-history?instType=SPOT&after={orders[-1]['ordId']}")
        assert (len(orders), len(older)) == (40, 100)
        assert [int(o["ordId"]) for o in orders + older] == list(range(150, 10, -1))


async def test_a_partly_filled_orders_pushes_carry_each_fills_fee_and_the_cumulative_fee():
    """OKX "Order channel": ``fillFee``/``fillSz`` are this fill's, ``fee``/``accFillSz`` the order's so far
    (fees negative); NautilusTrader takes each fill's commission as the difference of ``fee``."""
    async with served() as (venue, http), aiohttp.ClientSession() as s:
        venue.exchange.on_market(book_top("100.0", "100.5"))
        async with s.ws_connect(http + "/ws/v5/private") as ws:
            await ws.send_json({"op": "login", "args": [login_arg(KEY)]})
            await ws.receive_json(timeout=10)
            await ws.send_json({"op": "subscribe", "args": [{"channel": "orders", "instType": "SPOT"}]})
            await ws.receive_json(timeout=10)
            venue.exchange.fill_next_partially(D("0.5"))
            order = {"instIdCode": venue.codes["BTC-USDT"], "tdMode": "cash", "side": "buy", "ordType": "limit"}
            await ws.send_json({"id": "1", "op": "order", "args": [order | {"clOrdId": "p", "sz": "1", "px": "99"}]})
            assert (await ws.receive_json(timeout=10))["code"] == "0"
            assert (await ws.receive_json(timeout=10))["data"][0]["state"] == "live"
            venue.exchange.on_market(book_top("98.0", "98.5"))  # half fills (the fault)
            venue.exchange.on_market(book_top("98.0", "98.5"))  # the rest
            pushes = [(await ws.receive_json(timeout=10))["data"][0] for _ in range(2)]
        first, second = venue.exchange.trades()
        assert [(p["state"], p["fillSz"], p["accFillSz"], p["fillFee"], p["fee"], p["execType"]) for p in pushes] == [
            ("partially_filled", "0.5", "0.5", f"-{first.commission.normalize()}",
             f"-{first.commission.normalize()}", "M"),
            ("filled", "0.5", "1", f"-{second.commission.normalize()}",
             f"-{(first.commission + second.commission).normalize()}", "M"),
        ]  # fmt: skip


class _Feed:
    """A market that has had three closed 1-minute candles (the feed's ``history``, as MarketFeed answers it)."""

    def __init__(self, opens: list[int]) -> None:
        self.candles = [
            Candle(
                "BTC-USDT",
                "1m",
                t,
                t + 59_999,
                D("100"),
                D("102"),
                D("99"),
                D(100) + D("0.5") * i,
                D("3"),
                True,
                "spot",
            )
            for i, t in enumerate(opens)
        ]

    def history(self, product, symbol, interval, *, start_ms, end_ms, limit):
        assert (product, symbol, interval) == ("spot", "BTC-USDT", "1m")
        rows = [c for c in self.candles if (start_ms is None or c.open_ms >= start_ms)
                and (end_ms is None or c.open_ms <= end_ms)]  # fmt: skip
        return rows[:limit] if start_ms is not None else rows[-limit:]


async def test_candles_answer_newest_first_with_okxs_after_and_before_bounds():
    """OKX "Get candlesticks" / "Get candlesticks history": rows [ts, o, h, l, c, vol, volCcy, volCcyQuote,
    confirm], newest first; ``after`` = older than that ts, ``before`` = newer than it; bar 1m/1H/1D."""
    opens = [1_700_000_000_000 + i * 60_000 for i in range(3)]
    venue = OkxVenue([RULES], [KEY], {}, feed=_Feed(opens))
    server = TestServer(venue.app(), host="127.0.0.1")
    await server.start_server()
    http = str(server.make_url("")).rstrip("/")
    try:
        for endpoint in ("candles", "history-candles"):
            path = f"/api/v5/market/{endpoint}?instId=BTC-USDT&bar=1m"
            status, body = await get(http, path, {})
            assert (status, body["code"]) == (200, "0")
            assert [r[0] for r in body["data"]] == [str(t) for t in reversed(opens)]
            assert body["data"][0] == [str(opens[2]), "100", "102", "99", "101", "3", "0", "0", "1"]
            _, body = await get(http, f"{path}&after={opens[2]}&before={opens[0]}", {})
            assert [r[0] for r in body["data"]] == [str(opens[1])]
            _, body = await get(http, f"{path}&limit=2", {})
            assert [r[0] for r in body["data"]] == [str(opens[2]), str(opens[1])]
        _, body = await get(http, "/api/v5/market/candles?instId=ETH-USDT&bar=1m", {})
        assert (body["code"], body["data"]) == ("51001", [])
    finally:
        await server.close()


async def test_the_admin_api_arms_the_faults_okx_can_play_and_refuses_the_others():
    from livestrat.venue_emulator.okx.server import admin_routes

    venue = OkxVenue([RULES], [KEY], {"USDT": D("1000"), "BTC": D("1")})
    venue.exchange.on_market(book_top("100.0", "100.5"))
    app = venue.app()
    app.add_routes(admin_routes(venue))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    http = str(server.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(http + "/ws/v5/private") as ws:
                await ws.send_json({"op": "login", "args": [login_arg(KEY)]})
                await ws.receive_json(timeout=10)

                async def fault(body: dict) -> tuple[int, dict]:
                    async with s.post(http + "/_emulator/faults", json=body) as r:
                        return r.status, await r.json()

                assert await fault({"kind": "reject_next_order"}) == (200, {"armed": "reject_next_order"})
                order = {"instIdCode": venue.codes["BTC-USDT"], "tdMode": "cash", "side": "buy", "ordType": "limit",
                         "sz": "0.1", "px": "90"}  # fmt: skip
                await ws.send_json({"id": "1", "op": "order", "args": [order]})
                assert (await ws.receive_json(timeout=10))["data"][0]["sCode"] == "51008"
                status, answer = await fault({"kind": "rate_limit", "path": "/api/v5/trade/fills"})
                assert status == 400 and "not emulated for OKX" in answer["error"]
                assert await fault({"kind": "drop_user_stream"}) == (200, {"dropped": 1})
                closed = await ws.receive(timeout=10)
                assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            async with s.get(http + "/_emulator/state") as r:
                assert await r.json() == {"trades": 0, "open_orders": 0, "private_sessions": 0}
    finally:
        await server.close()
