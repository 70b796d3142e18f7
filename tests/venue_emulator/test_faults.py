"""Faults on demand through the admin API, and the scenario file, against what Binance documents for each."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import aiohttp
import pytest
from nautilus_trader.adapters.binance.common.credentials import extract_ed25519_private_key
from nautilus_trader.core.nautilus_pyo3 import ed25519_signature
from pydantic import ValidationError

from livestrat.venue_emulator.scenario import Scenario
from tests.venue_emulator.spot_venue import ED25519_KEY, book_top, scenario, served_venue
from tests.venue_emulator.test_spot_api import call, logon_params, signed_query, ws_request

D = Decimal
LIMIT_BUY = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.1"}


async def admin(base: str, method: str, path: str, body: dict | None = None):
    async with aiohttp.ClientSession() as session, session.request(method, base + path, json=body) as resp:
        return resp.status, await resp.json()


async def place(http: str, price: str = "99.00") -> tuple[int, dict, dict[str, str]]:
    url = f"{http}/api/v3/order?{signed_query(LIMIT_BUY | {'price': price})}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, headers={"X-MBX-APIKEY": "h" * 32 + "K" * 32}) as resp,
    ):
        return resp.status, await resp.json(), dict(resp.headers)


async def subscribed(session: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(url)
    seed = extract_ed25519_private_key(ED25519_KEY.secret)
    assert (
        await ws_request(ws, "l", "session.logon", logon_params(ED25519_KEY, lambda p: ed25519_signature(seed, p)))
    )["status"] == 200
    assert (await ws_request(ws, "s", "userDataStream.subscribe"))["result"] == {"subscriptionId": 0}
    return ws


async def test_a_5xx_answers_the_next_requests_of_a_path_and_may_have_executed():
    async with served_venue() as v:
        assert (await admin(v.admin, "POST", "/faults", {"kind": "http_error", "path": "/api/v3/order", "count": 1}))[
            0
        ] == 200
        lost = await place(v.http)
        placed = await place(v.http)
        await admin(
            v.admin, "POST", "/faults", {"kind": "http_error", "path": "/api/v3/order", "status": 502, "executed": True}
        )
        unknown = await place(v.http, "98.00")
        _, open_orders = await admin(v.admin, "GET", "/orders?open=true")
    assert (lost[0], lost[1]["code"]) == (503, -1001)
    assert placed[0] == 200
    assert (unknown[0], unknown[1]["code"]) == (502, -1001)
    # the first 5xx was not carried out, the "executed" one was: its order rests although the client saw 502
    assert [o["price"] for o in open_orders] == ["99.00000000", "98.00000000"]


async def test_429_carries_retry_after_and_not_backing_off_earns_a_418_ban():
    async with served_venue() as v:
        fault = {"kind": "rate_limit", "path": "/api/v3/order", "retry_after_s": 30, "ban_after": 2, "ban_s": 300}
        await admin(v.admin, "POST", "/faults", fault)
        limited = await place(v.http)
        again = await place(v.http)  # inside the Retry-After window: one
        banned = await place(v.http)  # and two: banned
        elsewhere = await call(v.http, "GET", "/api/v3/account", signed_query({}))  # a ban is the IP's, every path
        _, state = await admin(v.admin, "GET", "/state")
    assert (limited[0], limited[1]["code"], limited[2]["Retry-After"]) == (429, -1003, "30")
    assert again[0] == 200
    assert (banned[0], banned[1]["code"], banned[2]["Retry-After"]) == (418, -1003, "300")
    assert "IP banned until" in banned[1]["msg"]
    assert elsewhere[0] == 418
    assert state["open_orders"] == 1


async def test_a_delayed_ack_lets_the_user_stream_overtake_the_rest_answer():
    async with served_venue() as v, aiohttp.ClientSession() as session:
        ws = await subscribed(session, v.ws_api)
        await admin(v.admin, "POST", "/faults", {"kind": "delay_ack", "path": "/api/v3/order", "seconds": 1.0})
        answer = asyncio.create_task(place(v.http))
        event = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)["event"]
        assert not answer.done()  # the venue has the order; its REST answer has not come back yet
        status, body, _ = await answer
        await ws.close()
    assert (event["x"], event["i"]) == ("NEW", body["orderId"]) and status == 200


async def test_a_fill_between_two_queries_reaches_the_held_one_and_not_the_one_answered_before():
    async with served_venue() as v:
        v.venue.exchange.on_market(book_top("100.00", "100.50"))
        status, placed, _ = await place(v.http, "99.00")  # rests below the market
        assert status == 200 and placed["status"] == "NEW"
        fault = {"kind": "fill_between", "held": "/api/v3/allOrders", "answered": "/api/v3/myTrades"}
        await admin(v.admin, "POST", "/faults", fault)
        orders = asyncio.create_task(call(v.http, "GET", "/api/v3/allOrders", signed_query({"symbol": "BTCUSDT"})))
        await asyncio.sleep(0.2)
        assert not orders.done()  # held until the trade list has been answered
        _, trades_before = await call(v.http, "GET", "/api/v3/myTrades", signed_query({"symbol": "BTCUSDT"}))
        _, statuses = await asyncio.wait_for(orders, 10)
        _, trades_after = await call(v.http, "GET", "/api/v3/myTrades", signed_query({"symbol": "BTCUSDT"}))
    assert trades_before == []  # answered before the fill
    assert [(o["orderId"], o["status"]) for o in statuses] == [(placed["orderId"], "FILLED")]
    assert [(t["orderId"], t["price"], t["isMaker"]) for t in trades_after] == [
        (placed["orderId"], "99.00000000", True)
    ]


async def test_a_fill_between_that_waits_for_no_one_lets_the_held_path_s_earlier_requests_by():
    # only_after: a request of the held path made before the other path was answered passes untouched (a client
    # asks that path at connect as well, and holding it would land the fill before the queries it is meant for)
    async with served_venue() as v:
        v.venue.exchange.on_market(book_top("100.00", "100.50"))
        status, placed, _ = await place(v.http, "99.00")
        assert status == 200 and placed["status"] == "NEW"
        fault = {
            "kind": "fill_between",
            "held": "/api/v3/allOrders",
            "answered": "/api/v3/myTrades",
            "only_after": True,
        }
        await admin(v.admin, "POST", "/faults", fault)
        query = signed_query({"symbol": "BTCUSDT"})
        _, early = await asyncio.wait_for(call(v.http, "GET", "/api/v3/allOrders", query), 2)
        _, trades_before = await call(v.http, "GET", "/api/v3/myTrades", signed_query({"symbol": "BTCUSDT"}))
        _, statuses = await call(v.http, "GET", "/api/v3/allOrders", signed_query({"symbol": "BTCUSDT"}))
    assert [o["status"] for o in early] == ["NEW"] and trades_before == []
    assert [(o["orderId"], o["status"]) for o in statuses] == [(placed["orderId"], "FILLED")]


async def test_reject_and_partial_fill_on_demand():
    async with served_venue() as v:
        v.venue.exchange.on_market(book_top("100.00", "100.50"))
        await admin(v.admin, "POST", "/faults", {"kind": "reject_next_order", "msg": "Market is closed."})
        rejected = await place(v.http, "101.00")
        await admin(v.admin, "POST", "/faults", {"kind": "partial_fill", "fraction": "0.25"})
        partial = await place(v.http, "101.00")
        _, trades = await admin(v.admin, "GET", "/trades")
        _, balances = await admin(v.admin, "GET", "/balances")
    assert rejected[1] == {"code": -2010, "msg": "Market is closed."}
    assert partial[1]["status"] == "PARTIALLY_FILLED" and partial[1]["executedQty"] == "0.02500000"
    assert [t["qty"] for t in trades] == ["0.02500000"]
    assert balances["BTC"] == {"free": "2.02497500", "locked": "0.00000000"}  # 0.025 bought less its 0.1 % in BTC


@pytest.mark.parametrize(("time_in_force", "filled"), [("IOC", "0.02500000"), ("FOK", "0.00000000")])
async def test_an_ioc_or_fok_order_the_venue_can_fill_only_in_part_never_rests(time_in_force, filled):
    # Binance's timeInForce (spot "Enums", "Time in force"): IOC "will try to fill the order as much as it can
    # before the order expires"; FOK "will expire if the full order cannot be filled upon execution". Neither rests.
    async with served_venue() as v:
        v.venue.exchange.on_market(book_top("100.00", "100.50"))
        await admin(v.admin, "POST", "/faults", {"kind": "partial_fill", "fraction": "0.25"})
        url = f"{v.http}/api/v3/order?{signed_query(LIMIT_BUY | {'price': '101.00', 'timeInForce': time_in_force})}"
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, headers={"X-MBX-APIKEY": "h" * 32 + "K" * 32}) as resp,
        ):
            placed = await resp.json()
        _, open_orders = await admin(v.admin, "GET", "/orders?open=true")
    assert (placed["status"], placed["executedQty"]) == ("EXPIRED", filled)
    assert open_orders == []


async def test_a_dropped_user_stream_loses_no_fill_at_the_venue():
    async with served_venue() as v, aiohttp.ClientSession() as session:
        ws = await subscribed(session, v.ws_api)
        await place(v.http)
        for _ in range(2):  # NEW and the account position: drained
            await asyncio.wait_for(ws.receive(), 10)
        assert (await admin(v.admin, "POST", "/faults", {"kind": "drop_user_stream"}))[1] == {"dropped": 1}
        closed = await asyncio.wait_for(ws.receive(), 10)
        v.venue.exchange.on_market(book_top("98.00", "98.50"))  # fills while nobody listens
        _, trades = await call(v.http, "GET", "/api/v3/myTrades", signed_query({"symbol": "BTCUSDT"}))
        _, orders = await call(v.http, "GET", "/api/v3/allOrders", signed_query({"symbol": "BTCUSDT"}))
    assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    assert [(t["price"], t["isMaker"]) for t in trades] == [("99.00000000", True)]
    assert [o["status"] for o in orders] == ["FILLED"]


async def test_a_silenced_user_stream_loses_what_it_sends_while_orders_still_go_by_rest_then_is_cut():
    async with served_venue() as v, aiohttp.ClientSession() as session:
        ws = await subscribed(session, v.ws_api)
        silenced = await admin(v.admin, "POST", "/faults", {"kind": "silence_user_stream", "seconds": 0.5})
        status, body, _ = await place(v.http)  # placed: its NEW and the account position are sent into the void
        asked = await ws.send_json({"id": "q", "method": "session.status"})  # carried out, its answer lost
        closed = await asyncio.wait_for(ws.receive(), 10)  # the next thing the client sees: the cut
        _, open_orders = await admin(v.admin, "GET", "/orders?open=true")
    assert silenced[1] == {"silenced": 1} and asked is None
    assert status == 200 and [o["orderId"] for o in open_orders] == [body["orderId"]]
    assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)


async def test_an_expired_subscription_says_event_stream_terminated_and_can_be_renewed():
    async with served_venue() as v, aiohttp.ClientSession() as session:
        ws = await subscribed(session, v.ws_api)
        assert (await admin(v.admin, "POST", "/faults", {"kind": "expire_user_stream"}))[1] == {"terminated": 1}
        terminated = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
        renewed = await ws_request(ws, "r", "userDataStream.subscribe")
        await ws.close()
    assert terminated["subscriptionId"] == 0 and terminated["event"]["e"] == "eventStreamTerminated"
    assert renewed["result"] == {"subscriptionId": 1}


async def test_a_scenario_starts_with_its_open_orders_and_plays_its_faults(tmp_path):
    from livestrat.venue_emulator.server import play_scenario_faults

    start = scenario(
        open_orders=[
            {"symbol": "BTCUSDT", "side": "SELL", "quantity": "0.5", "price": "150", "client_order_id": "held"}
        ],
        faults=[{"kind": "reject_next_order"}],
    )
    async with served_venue(start) as v:
        await asyncio.gather(*play_scenario_faults(v.venue))
        _, open_orders = await admin(v.admin, "GET", "/orders?open=true")
        rejected = await place(v.http)
    assert [(o["clientOrderId"], o["side"]) for o in open_orders] == [("held", "SELL")]
    assert rejected[1]["code"] == -2010


def test_a_scenario_file_is_validated_and_never_shows_a_secret(tmp_path):
    path = tmp_path / "scenario.yaml"
    path.write_text(
        "keys:\n  - api_key: " + "k" * 64 + "\n    secret: very-secret-value\n"
        "balances: {USDT: '1000'}\nfaults:\n  - {kind: rate_limit, path: /api/v3/order, after_s: 2}\n"
    )
    loaded = Scenario.load(path)
    assert loaded.balances == {"USDT": D("1000")} and loaded.faults[0].kind == "rate_limit"
    assert "very-secret-value" not in repr(loaded) and "very-secret-value" not in str(loaded.api_keys())
    with pytest.raises(ValidationError, match="api_key"):
        Scenario.model_validate({"keys": [{"api_key": "short", "secret": "s"}]})
    with pytest.raises(ValidationError, match="kind"):
        Scenario.model_validate({"keys": [{"api_key": "k" * 64, "secret": "s"}], "faults": [{"kind": "meteor"}]})
