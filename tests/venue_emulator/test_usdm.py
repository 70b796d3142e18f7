"""USD-M futures: one-way positions, margin, reduce-only, USD-M's own filter errors, listen keys and the private stream."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import aiohttp
import msgspec
import pytest
from nautilus_trader.adapters.binance.common.enums import BinanceExecutionType, BinanceOrderType
from nautilus_trader.adapters.binance.futures.schemas.user import (
    BinanceFuturesAccountUpdateMsg,
    BinanceFuturesOrderUpdateMsg,
)

from livestrat.venue_emulator import errors
from livestrat.venue_emulator.accounts import Position, UsdmAccount
from livestrat.venue_emulator.exchange import Exchange, Execution
from tests.venue_emulator.spot_venue import HMAC_KEY, served_venue
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


@pytest.mark.parametrize(("price", "partial"), [("99.0", None), ("101.0", "0.25")], ids=["no-cross", "in-part"])
def test_a_fok_that_cannot_fill_whole_is_minus_5021_and_not_recorded(price, partial):
    # USD-M error codes: -5021 FOK_ORDER_REJECT "Due to the order could not be filled immediately, the FOK order has
    # been rejected. The order will not be recorded in the order history." (Spot expires it instead.)
    ex = usdm()
    if partial:
        ex.fill_next_partially(D(partial))
    err = refusal(lambda: ex.new_order("BTCUSDT", "BUY", "LIMIT", D("1"), D(price), "FOK"))
    assert err.code == -5021 and "FOK order has been rejected" in err.msg
    assert ex.every_order() == [] and ex.trades() == []


@pytest.mark.parametrize(
    ("price", "tif", "partial"),
    [("99.0", "IOC", None), ("99.0", "FOK", None), ("101.0", "FOK", "0.25")],
    ids=["ioc-no-cross", "fok-no-cross", "fok-in-part"],
)
def test_an_order_the_margin_cannot_cover_is_minus_2019_even_when_it_would_expire_or_be_refused_unfilled(
    price, tif, partial
):
    """The margin is checked on placement, before the order meets the book (USD-M error codes: -2019
    MARGIN_NOT_SUFFICIEN "Margin is insufficient."): an IOC that would expire, a FOK that would be refused -5021,
    is refused -2019 when the account cannot margin it, and not recorded."""
    ex = usdm(wallet="100", leverage=10)
    if partial:
        ex.fill_next_partially(D(partial))
    err = refusal(lambda: ex.new_order("BTCUSDT", "BUY", "LIMIT", D("11.000"), D(price), tif))
    assert (err.code, err.msg) == (-2019, "Margin is insufficient.")
    assert ex.every_order() == [] and ex.account.available() == D("100")


def test_a_reduce_only_ioc_that_would_not_reduce_is_minus_2022_even_when_it_would_expire():
    ex = usdm()
    err = refusal(lambda: ex.new_order("BTCUSDT", "SELL", "LIMIT", D("0.010"), D("101.0"), "IOC", reduce_only=True))
    assert (err.code, err.msg) == (-2022, "ReduceOnly Order is rejected.")
    assert ex.every_order() == []


def test_a_fok_the_venue_fills_whole_fills():
    ex = usdm()
    ex.fill_next_partially(D("0.0001"))  # rounds below one step: the whole of it fills (the fault's rule)
    order, trades = ex.new_order("BTCUSDT", "BUY", "LIMIT", D("1"), D("101.0"), "FOK")
    assert order.status == "FILLED" and [t.qty for t in trades] == [D("1")]


async def rest(http: str, method: str, path: str, query: str = "", signed: bool = True):
    q = signed_query(dict(p.split("=") for p in query.split("&") if p)) if signed else query
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{http}{path}?{q}", headers={"X-MBX-APIKEY": HMAC_KEY.api_key}) as resp,
    ):
        return resp.status, await resp.json()


async def private_stream(session: aiohttp.ClientSession, v) -> aiohttp.ClientWebSocketResponse:
    """The USD-M private stream of a new listen key, once the venue counts it connected."""
    _, key = await rest(v.urls["http"], "POST", "/fapi/v1/listenKey", signed=False)
    ws = await session.ws_connect(f"{v.urls['ws_private']}/ws?listenKey={key['listenKey']}")
    while v.venue.futures_streams.connected == 0:
        await asyncio.sleep(0.01)
    return ws


async def fault_and_messages(session: aiohttp.ClientSession, v, ws, fault: dict, count: int) -> tuple[dict, list]:
    """The emulator's answer to ``fault``, and the next ``count`` messages of the private stream ``ws``."""
    async with session.post(f"{v.urls['http']}/_emulator/faults", json=fault) as answer:
        applied = await answer.json()
    return applied, [(await asyncio.wait_for(ws.receive(), 10)).data for _ in range(count)]


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


async def test_the_admin_api_lists_every_listen_key_the_account_was_issued_oldest_first():
    """``GET /_emulator/listen_keys``: what a leak test searches a client's logs for (a listen key is a bearer
    token: whoever holds it reads the account's stream). A POST while a key is alive returns that key, so it is
    listed once; after an expiry the next POST issues a new one."""
    async with served_usdm(usdm_wallet="1000") as v, aiohttp.ClientSession() as session:
        http, admin = v.urls["http"], v.urls["admin"]

        async def listed() -> tuple[int, object]:
            async with session.get(f"{admin}/listen_keys") as answer:
                return answer.status, await answer.json()

        before = await listed()
        _, first = await rest(http, "POST", "/fapi/v1/listenKey", signed=False)
        _, again = await rest(http, "POST", "/fapi/v1/listenKey", signed=False)
        v.venue.futures_streams.expire()
        _, second = await rest(http, "POST", "/fapi/v1/listenKey", signed=False)
        after = await listed()
    async with (
        served_venue() as spot_only,
        aiohttp.ClientSession() as session,
        session.get(f"{spot_only.admin}/listen_keys") as answer,
    ):
        no_usdm = answer.status, await answer.json()
    assert before == (200, {"listen_keys": []})
    assert first == again and second != first
    assert after == (200, {"listen_keys": [first["listenKey"], second["listenKey"]]})
    assert no_usdm == (400, {"error": "this emulator lists no USD-M symbols"})


@pytest.mark.parametrize(("adl", "client_id"), [(False, "autoclose-"), (True, "adl_autoclose")])
async def test_the_venue_closes_a_position_itself_as_usdm_documents_a_liquidation_and_an_adl(adl, client_id):
    """USD-M "Event: Order Update": a liquidation's client order id starts with ``autoclose-``, an ADL's is
    ``adl_autoclose``; order type LIQUIDATION, "X shows as NEW" first, execution type CALCULATED ("Liquidation
    Execution"); then "Event: Balance and Position Update" with the position closed (reason ORDER: the documented
    reasons name no liquidation). Every message decodes with NautilusTrader 1.231's own USD-M structs."""
    async with served_usdm(usdm_wallet="1000") as v, aiohttp.ClientSession() as session:
        http = v.urls["http"]
        v.venue.futures.on_market(top("100.0", "100.5"))
        await rest(http, "POST", "/fapi/v1/order", "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1.000")
        ws = await private_stream(session, v)
        fault = {"kind": "liquidation", "symbol": "BTCUSDT", "price": "90.0", "adl": adl}
        applied, raws = await fault_and_messages(session, v, ws, fault, 3)
        _, risk = await rest(http, "GET", "/fapi/v3/positionRisk", "symbol=BTCUSDT")
        _, trades = await rest(http, "GET", "/fapi/v1/userTrades", "symbol=BTCUSDT")
        _, orders = await rest(http, "GET", "/fapi/v1/allOrders", "symbol=BTCUSDT")
        nobody = await session.post(f"{http}/_emulator/faults", json=fault | {"adl": False})
    new, calculated, account = (json.loads(r) for r in raws)
    assert [m["e"] for m in (new, calculated, account)] == [
        "ORDER_TRADE_UPDATE",
        "ORDER_TRADE_UPDATE",
        "ACCOUNT_UPDATE",
    ]
    for update in (new["o"], calculated["o"]):
        assert update["c"].startswith(client_id) and (update["c"] == "adl_autoclose") == adl
        assert (update["o"], update["ot"], update["S"], update["q"], update["f"]) == (
            "LIQUIDATION",
            "LIQUIDATION",
            "SELL",
            "1.000",
            "IOC",
        )
    assert (new["o"]["x"], new["o"]["X"], new["o"]["l"], new["o"]["t"]) == ("NEW", "NEW", "0.000", 0)
    fill = calculated["o"]
    assert (fill["x"], fill["X"], fill["l"], fill["z"], fill["L"], fill["m"]) == (
        "CALCULATED",
        "FILLED",
        "1.000",
        "1.000",
        "90.0",
        False,
    )
    assert [fill["t"]] == applied["trade_ids"] and fill["i"] == applied["order_id"]
    assert D(fill["rp"]) == D("-10.5")  # 1 * (90.0 - 100.5)
    # a liquidation at the taker fee; an ADL "no trading fee will be charged" (Binance's ADL page)
    assert (fill["N"], D(fill["n"])) == ("USDT", 0 if adl else D("90.0") * D("0.0005"))
    assert account["a"]["m"] == "ORDER"
    assert [(p["s"], p["pa"], p["ps"]) for p in account["a"]["P"]] == [("BTCUSDT", "0.000", "BOTH")]
    assert [r["positionAmt"] for r in risk] == ["0.000"]
    assert trades[-1]["id"] == fill["t"] and D(trades[-1]["realizedPnl"]) == D("-10.5")
    assert (orders[-1]["clientOrderId"], orders[-1]["status"], orders[-1]["type"]) == (fill["c"], "FILLED", "LIMIT")
    assert nobody.status == 400, "no position left to close"

    decoded = msgspec.json.Decoder(BinanceFuturesOrderUpdateMsg).decode(raws[1])
    assert (decoded.o.x, decoded.o.o) == (BinanceExecutionType.CALCULATED, BinanceOrderType.LIQUIDATION)
    msgspec.json.Decoder(BinanceFuturesOrderUpdateMsg).decode(raws[0])
    assert msgspec.json.Decoder(BinanceFuturesAccountUpdateMsg).decode(raws[2]).a.P[0].pa == "0.000"


async def test_a_liquidation_in_several_executions_and_two_adls_are_as_usdm_documents_them():
    """USD-M "Event: Order Update", field by field between the executions of one order: ``x`` CALCULATED each time,
    ``X`` PARTIALLY_FILLED until the last leaves it FILLED, ``l`` ("Order Last Filled Quantity") and ``L`` ("Last
    Filled Price") the execution's own, ``z`` ("Order Filled Accumulated Quantity") adding up, ``ap`` the average
    price so far, ``t`` a trade id of its own, ``n`` and ``rp`` the trade's commission and realized profit; ``c``,
    ``i``, ``q``, ``p`` the order's, unchanged. Each execution is followed by an ``ACCOUNT_UPDATE`` with the
    position it leaves. Then two ADLs of part of a position each: two orders, both ``adl_autoclose``. Every message
    decodes with NautilusTrader 1.231's own USD-M structs."""
    async with served_usdm(usdm_wallet="1000") as v, aiohttp.ClientSession() as session:
        http = v.urls["http"]
        v.venue.futures.on_market(top("100.0", "100.5"))
        await rest(http, "POST", "/fapi/v1/order", "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1.000")
        _, key = await rest(http, "POST", "/fapi/v1/listenKey", signed=False)
        ws = await session.ws_connect(f"{v.urls['ws_private']}/ws?listenKey={key['listenKey']}")
        while v.venue.futures_streams.connected == 0:
            await asyncio.sleep(0.01)

        async def fault(**fields) -> tuple[dict, list[str]]:
            body = {"kind": "liquidation", "symbol": "BTCUSDT"} | fields
            async with session.post(f"{http}/_emulator/faults", json=body) as answer:
                applied = await answer.json()
            count = 1 + 2 * len(applied["trade_ids"])  # NEW, then each execution and its ACCOUNT_UPDATE
            return applied, [(await asyncio.wait_for(ws.receive(), 10)).data for _ in range(count)]

        split, raws = await fault(prices=["95.0", "94.0", "93.0"])
        _, trades = await rest(http, "GET", "/fapi/v1/userTrades", "symbol=BTCUSDT")
        await rest(http, "POST", "/fapi/v1/order", "symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.400")
        while json.loads((await asyncio.wait_for(ws.receive(), 10)).data)["e"] != "ACCOUNT_UPDATE":
            pass  # the SHORT 0.400 the ADLs close
        adls = [await fault(price="110.0", adl=True, quantity="0.100"), await fault(price="111.0", adl=True)]
        _, risk = await rest(http, "GET", "/fapi/v3/positionRisk", "symbol=BTCUSDT")
        _, orders = await rest(http, "GET", "/fapi/v1/allOrders", "symbol=BTCUSDT")
        too_much = await session.post(
            f"{http}/_emulator/faults", json={"kind": "liquidation", "symbol": "BTCUSDT", "quantity": "1.000"}
        )
    messages = [json.loads(r) for r in raws]
    assert [m["e"] for m in messages] == ["ORDER_TRADE_UPDATE"] + ["ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"] * 3
    new, executions, accounts = messages[0]["o"], [m["o"] for m in messages[1::2]], [m["a"] for m in messages[2::2]]
    assert (new["x"], new["X"], new["z"]) == ("NEW", "NEW", "0.000")
    columns = [(u["x"], u["X"], u["l"], u["z"], u["L"], D(u["ap"]), u["t"]) for u in executions]
    third = D("0.333") * D("189.0") + D("0.334") * D("93.0")  # the order's quote so far, over its 1.000
    assert columns == [
        ("CALCULATED", "PARTIALLY_FILLED", "0.333", "0.333", "95.0", D("95.0"), split["trade_ids"][0]),
        ("CALCULATED", "PARTIALLY_FILLED", "0.333", "0.666", "94.0", D("94.5"), split["trade_ids"][1]),
        ("CALCULATED", "FILLED", "0.334", "1.000", "93.0", third, split["trade_ids"][2]),
    ]
    assert len(set(split["trade_ids"])) == 3
    legs = [(D("95.0"), D("0.333")), (D("94.0"), D("0.333")), (D("93.0"), D("0.334"))]
    for u, (price, qty) in zip(executions, legs, strict=True):
        assert (u["c"], u["i"], u["q"], u["p"], u["o"], u["S"]) == (
            new["c"], split["order_id"], "1.000", "93.0", "LIQUIDATION", "SELL"
        )  # fmt: skip
        assert D(u["n"]) == price * qty * D("0.0005") and D(u["rp"]) == qty * (price - D("100.5"))
    assert [p["pa"] for a in accounts for p in a["P"]] == ["0.667", "0.334", "0.000"]
    assert [(t["id"], t["qty"], t["price"]) for t in trades[-3:]] == [
        (i, e["l"], e["L"]) for i, e in zip(split["trade_ids"], executions, strict=True)
    ]

    (first, first_raws), (second, second_raws) = adls
    first_fill, second_fill = json.loads(first_raws[1])["o"], json.loads(second_raws[1])["o"]
    assert (first_fill["c"], first_fill["S"], first_fill["q"], first_fill["X"]) == (
        "adl_autoclose",
        "BUY",
        "0.100",
        "FILLED",
    )
    assert (second_fill["c"], second_fill["q"], second_fill["X"]) == ("adl_autoclose", "0.300", "FILLED")
    assert first["order_id"] != second["order_id"]
    assert [(o["orderId"], o["clientOrderId"], o["status"]) for o in orders[-2:]] == [
        (first["order_id"], "adl_autoclose", "FILLED"),
        (second["order_id"], "adl_autoclose", "FILLED"),
    ]
    assert [r["positionAmt"] for r in risk] == ["0.000"]
    assert too_much.status == 400, "no position left to close"

    for raw in raws + first_raws + second_raws:
        decoder = BinanceFuturesAccountUpdateMsg if '"ACCOUNT_UPDATE"' in raw else BinanceFuturesOrderUpdateMsg
        msgspec.json.Decoder(decoder).decode(raw)


@pytest.mark.parametrize("adl", [False, True], ids=["liquidation", "adl"])
async def test_the_venue_expires_every_open_order_of_the_account_before_it_closes_a_position_itself(adl):
    """Binance's "Liquidation Protocols": "During liquidation, a user's all open orders are immediately canceled";
    its ADL page: "Any open orders will be canceled." USD-M "Event: Order Update" names how: execution type and
    status EXPIRED, expiry reason ``er`` 5, "Order has expired when the account was liquidated". So before the
    venue's own order (NEW, then CALCULATED), each open order of the account comes as an ``ORDER_TRADE_UPDATE``
    EXPIRED under its own client order id and order id, nothing filled; none is open afterwards, their margin is
    released, and the order queries list them EXPIRED. Every message decodes with NautilusTrader 1.231's USD-M
    structs, the EXPIRED ones as execution type EXPIRED."""
    async with served_usdm(usdm_wallet="1000") as v, aiohttp.ClientSession() as session:
        http = v.urls["http"]
        v.venue.futures.on_market(top("100.0", "100.5"))
        await rest(http, "POST", "/fapi/v1/order", "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1.000")
        resting = []
        for price, client_id in (("80.0", "grid-1"), ("81.0", "grid-2")):
            _, placed = await rest(
                http,
                "POST",
                "/fapi/v1/order",
                f"symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.100&price={price}"
                f"&newClientOrderId={client_id}",
            )
            resting.append(placed)
        _, before = await rest(http, "GET", "/fapi/v2/account")
        ws = await private_stream(session, v)
        fault = {"kind": "liquidation", "symbol": "BTCUSDT", "price": "90.0", "adl": adl}
        applied, raws = await fault_and_messages(session, v, ws, fault, 5)
        _, still_open = await rest(http, "GET", "/fapi/v1/openOrders", "symbol=BTCUSDT")
        _, orders = await rest(http, "GET", "/fapi/v1/allOrders", "symbol=BTCUSDT")
        _, after = await rest(http, "GET", "/fapi/v2/account")
    messages = [json.loads(r) for r in raws]
    assert [m["e"] for m in messages] == ["ORDER_TRADE_UPDATE"] * 4 + ["ACCOUNT_UPDATE"]
    expired, (new, calculated) = [m["o"] for m in messages[:2]], [m["o"] for m in messages[2:4]]
    assert [(u["x"], u["X"], u["er"], u["c"], u["i"]) for u in expired] == [
        ("EXPIRED", "EXPIRED", "5", o["clientOrderId"], o["orderId"]) for o in resting
    ], "each open order expired, expiry reason 5, under its own ids, before the venue's order"
    for u, price in zip(expired, ("80.0", "81.0"), strict=True):
        assert (u["s"], u["S"], u["o"], u["ot"], u["f"], u["q"], u["p"]) == (
            "BTCUSDT", "BUY", "LIMIT", "LIMIT", "GTC", "0.100", price
        )  # fmt: skip
        assert (u["l"], u["z"], u["L"], u["t"], D(u["rp"])) == ("0.000", "0.000", "0.0", 0, 0)
        assert "n" not in u and "N" not in u, "no commission: nothing traded"
    assert expired[0]["T"] <= new["T"]
    assert (new["x"], new["c"].startswith("adl_autoclose" if adl else "autoclose-")) == ("NEW", True)
    assert (new["er"], calculated["er"]) == ("0", "0")
    assert (calculated["x"], calculated["X"], calculated["i"]) == ("CALCULATED", "FILLED", applied["order_id"])
    assert still_open == []
    assert [(o["clientOrderId"], o["status"]) for o in orders if o["orderId"] in {r["orderId"] for r in resting}] == [
        ("grid-1", "EXPIRED"),
        ("grid-2", "EXPIRED"),
    ]
    assert D(before["totalOpenOrderInitialMargin"]) > 0
    assert D(after["totalOpenOrderInitialMargin"]) == 0, "their margin released"

    for raw in raws[:2]:
        assert msgspec.json.Decoder(BinanceFuturesOrderUpdateMsg).decode(raw).o.x == BinanceExecutionType.EXPIRED


def test_an_expired_order_names_its_expiry_reason_as_usdm_lists_them():
    """USD-M "Event: Order Update", "Expiry Reason": 2 "IOC order could not be filled completely", 9 "Market order
    could not be filled completely" (here: no price yet to fill at). Each is reported NEW first: the event is pushed
    "When new order created, order status changed", and this order was created, then expired."""
    seen: list = []
    priced = usdm()
    priced.listen(seen.append)
    priced.new_order("BTCUSDT", "BUY", "LIMIT", D("0.100"), D("90.0"), time_in_force="IOC")
    unpriced = Exchange([PERP_RULES], UsdmAccount(wallet=D("1000")), lambda: 1_700_000_000_000)
    unpriced.listen(seen.append)
    unpriced.new_order("BTCUSDT", "BUY", "MARKET", D("0.100"))
    reasons = [(e.order.type, e.execution_type, e.expiry_reason) for e in seen if isinstance(e, Execution)]
    assert reasons == [("LIMIT", "NEW", 0), ("LIMIT", "EXPIRED", 2), ("MARKET", "NEW", 0), ("MARKET", "EXPIRED", 9)]
