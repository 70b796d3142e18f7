"""The exchange's books and matching, against the rules the contract and Binance's docs give."""

from __future__ import annotations

from decimal import Decimal

import pytest

from livestrat.venue_emulator import errors
from livestrat.venue_emulator.accounts import BalanceChange, SpotAccount
from livestrat.venue_emulator.events import BookTop, Print, SymbolRules
from livestrat.venue_emulator.exchange import Exchange, Execution

D = Decimal

BTCUSDT = SymbolRules(
    symbol="BTCUSDT",
    product="spot",
    instrument_id="BTCUSDT.BINANCE",
    base_asset="BTC",
    quote_asset="USDT",
    price_precision=2,
    qty_precision=5,
    tick_size=D("0.01"),
    step_size=D("0.00001"),
    min_qty=D("0.00001"),
    max_qty=D("9000"),
    min_notional=D("5"),
    maker_fee=D("0.001"),
    taker_fee=D("0.002"),
)


class Clock:
    def __init__(self) -> None:
        self.ms = 1_700_000_000_000

    def __call__(self) -> int:
        return self.ms


def exchange(usdt: str = "10000", btc: str = "1") -> tuple[Exchange, list]:
    ex = Exchange([BTCUSDT], SpotAccount({"USDT": D(usdt), "BTC": D(btc)}), Clock())
    seen: list = []
    ex.listen(seen.append)
    return ex, seen


def top(bid: str, ask: str, ts: int = 1_700_000_000_500) -> BookTop:
    return BookTop("BTCUSDT", D(bid), D("1"), D(ask), D("1"), ts, "spot")


def refusal(call) -> errors.BinanceError:
    with pytest.raises(errors.BinanceError) as caught:
        call()
    return caught.value


def test_a_market_buy_fills_whole_at_the_ask_as_taker_and_pays_commission_in_the_base_it_receives():
    # Binance's commission_faq.md: the commission is a share of the received amount, "for orders on the
    # BUY side, the received amount would be quantity": a BTCUSDT buyer pays in BTC
    ex, seen = exchange()
    ex.on_market(top("100.00", "100.50"))
    order, trades = ex.new_order("BTCUSDT", "BUY", "MARKET", D("0.1"))
    assert order.status == "FILLED" and order.executed_qty == D("0.1")
    [trade] = trades
    assert (trade.price, trade.qty, trade.is_maker) == (D("100.50"), D("0.1"), False)
    assert trade.commission == D("0.1") * D("0.002") and trade.commission_asset == "BTC"
    balances = ex.balances()
    assert balances["BTC"].free == D("1.1") - trade.commission and balances["BTC"].locked == 0
    assert balances["USDT"].free == D("10000") - D("10.05") and balances["USDT"].locked == 0
    assert [e.execution_type for e in seen if isinstance(e, Execution)] == ["NEW", "TRADE"]
    assert isinstance(seen[-1], BalanceChange)
    assert seen[-1].balances["BTC"] == (D("1.1") - trade.commission, D(0))
    assert ex.trades("BTCUSDT") == trades


def test_a_market_sell_fills_at_the_bid_and_pays_commission_in_the_quote_it_receives():
    ex, _ = exchange()
    ex.on_market(top("100.00", "100.50"))
    _, [trade] = ex.new_order("BTCUSDT", "SELL", "MARKET", D("0.5"))
    assert trade.price == D("100.00")
    assert (trade.commission, trade.commission_asset) == (D("50") * D("0.002"), "USDT")
    assert ex.balances()["USDT"].free == D("10000") + D("50") - D("50") * D("0.002")
    assert ex.balances()["BTC"].free == D("0.5")


def test_a_buy_leaves_less_base_than_it_bought_so_selling_all_of_it_is_refused():
    ex, _ = exchange(btc="0")
    ex.on_market(top("10000.00", "10000.50"))
    ex.new_order("BTCUSDT", "BUY", "MARKET", D("0.001"))
    assert ex.balances()["BTC"].free == D("0.000998")
    assert refusal(lambda: ex.new_order("BTCUSDT", "SELL", "MARKET", D("0.001"))).code == -2010
    _, [sold] = ex.new_order("BTCUSDT", "SELL", "MARKET", D("0.00099"))
    assert sold.qty == D("0.00099") and ex.balances()["BTC"].free == D("0.000008")


def test_a_limit_that_does_not_cross_rests_locks_its_funds_and_fills_at_its_own_price_as_maker():
    ex, seen = exchange()
    ex.on_market(top("100.00", "100.50"))
    order, trades = ex.new_order("BTCUSDT", "BUY", "LIMIT", D("0.2"), D("99.00"), "GTC", "my-1")
    assert order.status == "NEW" and trades == []
    assert ex.balances()["USDT"].locked == D("99.00") * D("0.2")  # price * qty: the fee comes out of the BTC
    ex.on_market(top("99.10", "99.20"))  # ask still above the limit
    assert ex.open_orders("BTCUSDT")[0].status == "NEW"
    ex.on_market(top("98.50", "98.90", ts=1_700_000_009_000))
    [trade] = ex.trades("BTCUSDT")
    assert (trade.price, trade.qty, trade.is_maker, trade.time_ms) == (D("99.00"), D("0.2"), True, 1_700_000_009_000)
    assert ex.open_orders() == []
    balances = ex.balances()
    assert balances["USDT"].locked == 0
    assert balances["USDT"].free == D("10000") - D("19.8")
    assert balances["BTC"].free == D("1.2") - D("0.2") * D("0.001") and trade.commission_asset == "BTC"
    assert ex.order("BTCUSDT", orig_client_order_id="my-1").status == "FILLED"
    trade_events = [e for e in seen if isinstance(e, Execution) and e.execution_type == "TRADE"]
    assert trade_events[0].trade == trade


def test_a_limit_that_crosses_on_arrival_takes_the_best_opposite_price():
    ex, _ = exchange()
    ex.on_market(top("100.00", "100.50"))
    _, [trade] = ex.new_order("BTCUSDT", "BUY", "LIMIT", D("0.1"), D("101.00"), "GTC")
    assert trade.price == D("100.50") and not trade.is_maker


def test_a_print_is_both_bid_and_ask_when_the_catalog_has_no_quotes():
    ex, _ = exchange()
    ex.new_order("BTCUSDT", "SELL", "LIMIT", D("0.1"), D("101.00"), "GTC")
    ex.on_market(Print("BTCUSDT", D("101.00"), D("1"), False, 7, 1_700_000_001_000, "spot"))
    assert [t.price for t in ex.trades()] == [D("101.00")]


def test_a_usdm_event_of_the_same_name_does_not_move_the_spot_book():
    ex, _ = exchange()
    ex.new_order("BTCUSDT", "SELL", "LIMIT", D("0.1"), D("101.00"), "GTC")
    ex.on_market(BookTop("BTCUSDT", D("102.00"), D("1"), D("102.10"), D("1"), 1_700_000_001_000, "usdm"))
    assert ex.trades() == [] and len(ex.open_orders()) == 1


def test_limit_maker_that_would_take_is_rejected_as_binance_does():
    ex, _ = exchange()
    ex.on_market(top("100.00", "100.50"))
    err = refusal(lambda: ex.new_order("BTCUSDT", "BUY", "LIMIT_MAKER", D("0.1"), D("100.50")))
    assert (err.code, err.msg) == (-2010, "Order would immediately match and take.")


def test_filters_answer_minus_1013_with_binances_messages():
    ex, _ = exchange()
    ex.on_market(top("100.00", "100.50"))
    price = refusal(lambda: ex.new_order("BTCUSDT", "BUY", "LIMIT", D("0.1"), D("99.005"), "GTC"))
    lot = refusal(lambda: ex.new_order("BTCUSDT", "BUY", "LIMIT", D("0.000015"), D("99.00"), "GTC"))
    notional = refusal(lambda: ex.new_order("BTCUSDT", "BUY", "LIMIT", D("0.01"), D("99.00"), "GTC"))
    market_notional = refusal(lambda: ex.new_order("BTCUSDT", "SELL", "MARKET", D("0.04")))
    assert [(e.http_status, e.code, e.msg) for e in (price, lot, notional, market_notional)] == [
        (400, -1013, "Filter failure: PRICE_FILTER"),
        (400, -1013, "Filter failure: LOT_SIZE"),
        (400, -1013, "Filter failure: NOTIONAL"),
        (400, -1013, "Filter failure: NOTIONAL"),
    ]
    assert ex.open_orders() == [] and ex.all_orders("BTCUSDT") == []


def test_insufficient_balance_is_minus_2010_and_changes_nothing():
    ex, seen = exchange(usdt="10", btc="0.01")
    ex.on_market(top("100.00", "100.50"))
    buy = refusal(lambda: ex.new_order("BTCUSDT", "BUY", "LIMIT", D("0.2"), D("99.00"), "GTC"))
    sell = refusal(lambda: ex.new_order("BTCUSDT", "SELL", "MARKET", D("0.2")))
    for err in (buy, sell):
        assert (err.http_status, err.code, err.msg) == (
            400,
            -2010,
            "Account has insufficient balance for requested action.",
        )
    assert ex.balances()["USDT"].free == D("10") and seen == []


def test_locked_funds_count_against_the_next_order():
    ex, _ = exchange(usdt="30")
    ex.new_order("BTCUSDT", "BUY", "LIMIT", D("0.2"), D("99.00"), "GTC")
    err = refusal(lambda: ex.new_order("BTCUSDT", "BUY", "LIMIT", D("0.2"), D("60.00"), "GTC"))
    assert err.code == -2010


def test_unknown_orders_are_minus_2011_on_cancel_and_minus_2013_on_query():
    ex, _ = exchange()
    ex.on_market(top("100.00", "100.50"))
    filled, _ = ex.new_order("BTCUSDT", "BUY", "MARKET", D("0.1"))
    for call in (
        lambda: ex.cancel_order("BTCUSDT", order_id=999),
        lambda: ex.cancel_order("BTCUSDT", orig_client_order_id="nope"),
        lambda: ex.cancel_order("BTCUSDT", order_id=filled.order_id),  # not open any more
        lambda: ex.cancel_open_orders("BTCUSDT"),
    ):
        assert (refusal(call).code, refusal(call).msg) == (-2011, "Unknown order sent.")
    query = refusal(lambda: ex.order("BTCUSDT", order_id=999))
    assert (query.code, query.msg) == (-2013, "Order does not exist.")
    assert refusal(lambda: ex.order("ETHUSDT", order_id=1)).code == -1121


def test_cancel_releases_the_lock_and_reports_the_cancels_own_client_id():
    ex, seen = exchange()
    ex.new_order("BTCUSDT", "SELL", "LIMIT", D("0.3"), D("120.00"), "GTC", "sell-1")
    assert ex.balances()["BTC"].locked == D("0.3")
    cancelled = ex.cancel_order("BTCUSDT", orig_client_order_id="sell-1", new_client_order_id="cxl-1")
    assert cancelled.status == "CANCELED"
    assert ex.balances()["BTC"].locked == 0 and ex.balances()["BTC"].free == D("1")
    report = [e for e in seen if isinstance(e, Execution)][-1]
    assert (report.execution_type, report.order.client_order_id, report.cancel_client_order_id) == (
        "CANCELED",
        "cxl-1",
        "sell-1",
    )


def test_cancel_all_cancels_every_open_order_of_the_symbol():
    ex, _ = exchange()
    ex.new_order("BTCUSDT", "SELL", "LIMIT", D("0.1"), D("120.00"), "GTC")
    ex.new_order("BTCUSDT", "BUY", "LIMIT", D("0.1"), D("80.00"), "GTC")
    assert [o.status for o, _ in ex.cancel_open_orders("BTCUSDT")] == ["CANCELED", "CANCELED"]
    assert ex.open_orders() == [] and ex.balances()["USDT"].locked == 0


def test_a_client_id_in_use_by_an_open_order_is_a_duplicate():
    ex, _ = exchange()
    ex.new_order("BTCUSDT", "SELL", "LIMIT", D("0.1"), D("120.00"), "GTC", "same")
    err = refusal(lambda: ex.new_order("BTCUSDT", "SELL", "LIMIT", D("0.1"), D("121.00"), "GTC", "same"))
    assert (err.code, err.msg) == (-2010, "Duplicate order sent.")


def test_ids_increase_and_never_repeat_and_history_is_kept():
    ex, _ = exchange(usdt="100000", btc="10")
    ex.on_market(top("100.00", "100.50"))
    for _ in range(3):
        ex.new_order("BTCUSDT", "BUY", "MARKET", D("0.1"))
        ex.new_order("BTCUSDT", "SELL", "MARKET", D("0.1"))
    trade_ids = [t.trade_id for t in ex.trades()]
    order_ids = [o.order_id for o in ex.all_orders("BTCUSDT")]
    assert trade_ids == sorted(set(trade_ids)) and len(trade_ids) == 6
    assert order_ids == sorted(set(order_ids)) and len(order_ids) == 6
    assert [t.trade_id for t in ex.trades("BTCUSDT", from_id=trade_ids[3])] == trade_ids[3:]
    assert [t.trade_id for t in ex.trades("BTCUSDT", limit=2)] == trade_ids[-2:]


def test_a_market_order_without_any_price_expires():
    ex, _ = exchange()
    order, trades = ex.new_order("BTCUSDT", "BUY", "MARKET", D("0.1"))
    assert order.status == "EXPIRED" and trades == [] and ex.balances()["USDT"].locked == 0


def test_an_ioc_limit_that_does_not_cross_expires():
    ex, _ = exchange()
    ex.on_market(top("100.00", "100.50"))
    order, _ = ex.new_order("BTCUSDT", "BUY", "LIMIT", D("0.1"), D("99.00"), "IOC")
    assert order.status == "EXPIRED" and ex.open_orders() == []


def test_faults_reject_the_next_order_and_fill_the_next_one_partially():
    ex, _ = exchange()
    ex.on_market(top("100.00", "100.50"))
    ex.reject_next_order()
    assert refusal(lambda: ex.new_order("BTCUSDT", "BUY", "MARKET", D("0.1"))).code == -2010
    ex.fill_next_partially(D("0.5"))
    order, [trade] = ex.new_order("BTCUSDT", "BUY", "LIMIT", D("0.3"), D("101.00"), "GTC")
    assert order.status == "PARTIALLY_FILLED" and trade.qty == D("0.15")
    ex.on_market(top("100.00", "100.80"))  # the rest rests at its own price, 101.00
    assert [(t.qty, t.price, t.is_maker) for t in ex.trades()][1:] == [(D("0.15"), D("101.00"), True)]
    assert ex.balances()["USDT"].locked == 0


def test_order_types_the_symbol_does_not_list_are_refused_with_binances_messages():
    ex, _ = exchange()
    ex.on_market(top("100.00", "100.50"))
    stop = refusal(lambda: ex.new_order("BTCUSDT", "SELL", "STOP_LOSS", D("0.1")))
    unknown = refusal(lambda: ex.new_order("BTCUSDT", "SELL", "TRAILING", D("0.1")))
    priced = refusal(lambda: ex.new_order("BTCUSDT", "SELL", "MARKET", D("0.1"), D("100.00")))
    assert (stop.code, stop.msg) == (-2010, "Stop loss orders are not supported for this symbol.")
    assert (unknown.code, unknown.msg) == (-1116, "Invalid orderType.")
    assert (priced.code, priced.msg) == (-1106, "Parameter 'price' sent when not required.")


@pytest.mark.parametrize(
    ("side", "order_type", "price", "tif", "partial"),
    [
        ("BUY", "LIMIT", "99.00", "IOC", None),
        ("BUY", "LIMIT", "99.00", "FOK", None),
        ("BUY", "LIMIT", "101.00", "FOK", "0.5"),
        ("SELL", "LIMIT", "101.00", "IOC", None),
        ("SELL", "MARKET", None, None, None),
    ],
    ids=["ioc-no-cross", "fok-no-cross", "fok-in-part", "ioc-sell-no-cross", "market-sell-no-price"],
)
def test_an_order_the_balance_cannot_cover_is_refused_minus_2010_even_when_it_would_expire(
    side, order_type, price, tif, partial
):
    """The balance is checked before the order meets the book: whether it would fill, fill in part or expire, an
    order the account cannot cover is refused -2010 (errors.md: "Account has insufficient balance for requested
    action."; faqs/market_orders_faq.md: "If you do not have sufficient balance for the order to be completely
    filled, the order will be rejected.") and not recorded. A sell needs its base whatever the price, so a MARKET
    sell with no price yet is checked too."""
    ex, seen = exchange(usdt="5", btc="0.01")
    if price is not None or order_type == "LIMIT":
        ex.on_market(top("100.00", "100.50"))
    if partial:
        ex.fill_next_partially(D(partial))
    err = refusal(lambda: ex.new_order("BTCUSDT", side, order_type, D("0.2"), D(price) if price else None, tif))
    assert (err.code, err.msg) == (-2010, "Account has insufficient balance for requested action.")
    assert ex.all_orders("BTCUSDT") == [] and seen == []
    assert (ex.balances()["USDT"].free, ex.balances()["BTC"].free) == (D("5"), D("0.01"))


def test_an_affordable_ioc_that_expires_leaves_nothing_locked():
    ex, _ = exchange(usdt="20")
    ex.on_market(top("100.00", "100.50"))
    order, _ = ex.new_order("BTCUSDT", "BUY", "LIMIT", D("0.2"), D("99.00"), "IOC")
    assert order.status == "EXPIRED"
    assert (ex.balances()["USDT"].free, ex.balances()["USDT"].locked) == (D("20"), D(0))


@pytest.mark.parametrize(
    ("order_type", "price", "tif"),
    [("LIMIT", "99.00", "IOC"), ("LIMIT", "99.00", "FOK"), ("MARKET", None, None)],
    ids=["ioc-no-cross", "fok-no-cross", "market-no-price"],
)
def test_an_order_that_expires_on_arrival_is_reported_new_then_expired(order_type, price, tif):
    """enums.md: execution type NEW, "The order has been accepted into the engine."; an order that expires
    unfilled (status EXPIRED, "e.g. LIMIT FOK orders with no fill") was accepted, where REJECTED is "not accepted
    by the engine"; and faqs/market_orders_faq.md's stream of a MARKET order that expires on arrival begins with
    NEW. So such an order is reported NEW, then EXPIRED, in one go, with nothing locked afterwards."""
    ex, seen = exchange()
    if price is not None:
        ex.on_market(top("100.00", "100.50"))
    order, _ = ex.new_order("BTCUSDT", "BUY", order_type, D("0.1"), D(price) if price else None, tif)
    reports = [(e.execution_type, e.order.status, e.order.order_id) for e in seen if isinstance(e, Execution)]
    assert reports == [("NEW", "NEW", order.order_id), ("EXPIRED", "EXPIRED", order.order_id)]
    assert isinstance(seen[-1], BalanceChange) and ex.balances()["USDT"].locked == 0
