"""USD-M futures: one-way positions, margin, reduce-only, USD-M's own filter errors, listen keys and the private stream."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import aiohttp
import pytest

from livestrat.venue_emulator import errors
from livestrat.venue_emulator.accounts import Position, UsdmAccount
from livestrat.venue_emulator.exchange import Exchange
from tests.venue_emulator.spot_venue import HMAC_KEY
from tests.venue_emulator.test_nautilus_usdm import PERP_RULES, served_usdm, top
from tests.venue_emulator.test_spot_api import signed_query

D = Decimal


def usdm(wallet: str = "1000", leverage: int = 10) -> Exchange:
    account = UsdmAccount(wallet=D(wallet))
    account.set_leverage("BTCUSDT", leverage)
    ex = Exchange([PERP_RULES], account, lambda: 1_700_000_000_000)
    ex.on_market(top("100.0", "100.5"))
    return ex


def refusal(call) -> errors.BinanceError:
    with pytest.raises(errors.BinanceError) as caught:
        call()
    return caught.value


def test_a_fill_past_zero_realizes_the_closed_part_and_opens_the_rest_at_the_fill_price():
    ex = usdm()
    ex.new_order("BTCUSDT", "BUY", "MARKET", D("1.000"))  # long 1 at 100.5
    ex.on_market(top("110.0", "110.5"))
    _, [trade] = ex.new_order("BTCUSDT", "SELL", "MARKET", D("3.000"))  # sells 3 at 110.0
    position = ex.account.position("BTCUSDT")
    assert trade.realized_pnl == D("9.5")  # 1 * (110.0 - 100.5)
    assert (position.amount, position.entry_price) == (D("-2.000"), D("110.0"))
    fees = D("100.5") * D("0.0005") + D("330.0") * D("0.0005")
    assert ex.account.wallet == D("1000") + D("9.5") - fees


def test_margin_is_checked_against_leverage_and_refused_minus_2019():
    ex = usdm(wallet="100", leverage=10)
    ex.new_order("BTCUSDT", "BUY", "LIMIT", D("5.000"), D("99.0"), "GTC")  # 49.5 of margin reserved
    err = refusal(lambda: ex.new_order("BTCUSDT", "BUY", "LIMIT", D("6.000"), D("99.0"), "GTC"))
    assert (err.code, err.msg) == (-2019, "Margin is insufficient.")
    ex.cancel_open_orders("BTCUSDT")
    assert ex.account.available() == D("100")


def test_reduce_only_must_reduce_and_is_exempt_from_the_notional_minimum():
    ex = usdm()
    err = refusal(lambda: ex.new_order("BTCUSDT", "SELL", "MARKET", D("0.010"), reduce_only=True))
    assert (err.code, err.msg) == (-2022, "ReduceOnly Order is rejected.")
    ex.account.positions["BTCUSDT"] = Position("BTCUSDT", D("0.010"), D("100.0"))
    small = refusal(lambda: ex.new_order("BTCUSDT", "SELL", "MARKET", D("0.010")))
    assert (small.code, small.msg) == (
        -4164,
        "Order's notional must be no smaller than 5 (unless you choose reduce only).",
    )
    order, _ = ex.new_order("BTCUSDT", "SELL", "MARKET", D("0.010"), reduce_only=True)
    assert order.status == "FILLED" and ex.account.position("BTCUSDT").amount == 0


def test_usdm_filters_answer_usdm_codes():
    ex = usdm()
    cases = {
        (-4014, "Price not increased by tick size."): lambda: ex.new_order("BTCUSDT", "BUY", "LIMIT", D("1"), D("99.05"), "GTC"),
        (-4004, "Quantity less than min quantity."): lambda: ex.new_order("BTCUSDT", "BUY", "LIMIT", D("0.0001"), D("99"), "GTC"),
        (-4005, "Quantity greater than max quantity."): lambda: ex.new_order("BTCUSDT", "BUY", "LIMIT", D("1001"), D("99"), "GTC"),
        (-4023, "Quantity not increased by step size."): lambda: ex.new_order("BTCUSDT", "BUY", "LIMIT", D("1.0005"), D("99"), "GTC"),
    }  # fmt: skip
    assert {(e.code, e.msg) for e in (refusal(call) for call in cases.values())} == set(cases)


def test_a_post_only_gtx_that_would_take_is_minus_5022():
    ex = usdm()
    err = refusal(lambda: ex.new_order("BTCUSDT", "BUY", "LIMIT", D("1"), D("101.0"), "GTX"))
    assert err.code == -5022


async def rest(http: str, method: str, path: str, query: str = "", signed: bool = True):
    q = signed_query(dict(p.split("=") for p in query.split("&") if p)) if signed else query
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{http}{path}?{q}", headers={"X-MBX-APIKEY": HMAC_KEY.api_key}) as resp,
    ):
        return resp.status, await resp.json()


async def test_listen_keys_and_the_private_stream_as_usdm_documents_them():
    async with served_usdm(usdm_wallet="1000") as v, aiohttp.ClientSession() as session:
        http = v.urls["http"]
        v.venue.futures.on_market(top("100.0", "100.5"))
        _, first = await rest(http, "POST", "/fapi/v1/listenKey", signed=False)
        _, again = await rest(http, "POST", "/fapi/v1/listenKey", signed=False)
        bad = await rest(http, "PUT", "/fapi/v1/listenKey", "listenKey=nope", signed=False)
        assert first == again  # one key per account, extended when asked again
        assert bad == (400, {"code": -1125, "msg": "This listenKey does not exist."})

        ws = await session.ws_connect(f"{v.urls['ws_private']}/ws?listenKey={first['listenKey']}")
        while v.venue.futures_streams.connected == 0:  # the server registers the stream after the handshake
            await asyncio.sleep(0.01)
        await rest(http, "POST", "/fapi/v1/order", "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.100")
        kinds = [json.loads((await asyncio.wait_for(ws.receive(), 10)).data)["e"] for _ in range(3)]
        update = v.venue.futures_streams.expire()
        expired = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
        closed = await asyncio.wait_for(ws.receive(), 10)
        after = await rest(http, "PUT", "/fapi/v1/listenKey", f"listenKey={first['listenKey']}", signed=False)
        _, risk = await rest(http, "GET", "/fapi/v3/positionRisk", "symbol=BTCUSDT")
        _, account = await rest(http, "GET", "/fapi/v2/account")
    assert kinds == ["ORDER_TRADE_UPDATE", "ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"]
    assert update == 1 and expired["e"] == "listenKeyExpired"
    assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert after[1]["code"] == -1125
    assert [(r["positionAmt"], r["entryPrice"], r["positionSide"]) for r in risk] == [("0.100", "100.5", "BOTH")]
    assert account["assets"][0]["walletBalance"] == f"{D('1000') - D('10.05') * D('0.0005'):.8f}"
