"""Realized PnL recomputed from ledger fills: hand-computed cases, and NautilusTrader's own books."""

from __future__ import annotations

import dataclasses
import random
from decimal import Decimal
from fractions import Fraction

import pytest
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.enums import LiquiditySide, OrderSide, OrderType
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import (
    AccountId,
    ClientOrderId,
    PositionId,
    StrategyId,
    TradeId,
    TraderId,
    VenueOrderId,
)
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.model.position import Position
from nautilus_trader.test_kit.providers import TestInstrumentProvider

from strategy_runtime import pnl
from strategy_runtime.ledger import FillRecord, Side, from_order_filled
from strategy_runtime.pnl import ContractTerms, PnlBook, recompute_pnl
from tests.support.ledger import KEY, trade

D = Decimal


def fills(*trades: tuple[str, str, str], instrument: str = "EURUSD.SIM", fee: str = "0") -> list[FillRecord]:
    """Fills from (side, quantity, price) triples, in that order."""
    return [
        trade(n, side, qty, px, instrument=instrument, quote="USD", ts=n, fee=fee)
        for n, (side, qty, px) in enumerate(trades)
    ]


def realized(trades: list[FillRecord], instrument: str = "EURUSD.SIM") -> tuple[Decimal, Decimal]:
    book = recompute_pnl(trades).instruments[instrument]
    return book.realized_pnl, book.position


def test_a_long_position_built_at_two_prices_closes_against_its_average_cost():
    # buy 10 @ 100 and 10 @ 110: average 105; sell 5 @ 120 -> +75; sell 15 @ 100 -> -75
    trades = fills(("BUY", "10", "100"), ("BUY", "10", "110"), ("SELL", "5", "120"), ("SELL", "15", "100"))
    assert realized(trades[:3]) == (D(75), D(15))
    assert realized(trades) == (D(0), D(0))


def test_a_short_position_gains_when_bought_back_lower():
    # sell 10 @ 50; buy 4 @ 45 -> +20; buy 6 @ 55 -> -30
    trades = fills(("SELL", "10", "50"), ("BUY", "4", "45"), ("BUY", "6", "55"))
    assert realized(trades[:2]) == (D(20), D(-6))
    assert realized(trades) == (D(-10), D(0))


def test_a_fill_through_zero_closes_the_position_and_opens_the_rest_at_its_price():
    # long 10 @ 100; sell 15 @ 110 -> +100 on 10, short 5 @ 110; buy 5 @ 100 -> +50
    trades = fills(("BUY", "10", "100"), ("SELL", "15", "110"), ("BUY", "5", "100"))
    summary = recompute_pnl(trades[:2]).instruments["EURUSD.SIM"]
    assert (summary.realized_pnl, summary.position, summary.average_price) == (D(100), D(-5), D(110))
    assert realized(trades) == (D(150), D(0))


def test_partial_closes_at_an_uneven_average_are_exact():
    # buy 3 @ 10 and 1 @ 14: average 11; sell 2 @ 12 -> +2; sell 1 @ 10 -> -1; still long 1 @ 11
    trades = fills(("BUY", "3", "10"), ("BUY", "1", "14"), ("SELL", "2", "12"), ("SELL", "1", "10"))
    book = recompute_pnl(trades).instruments["EURUSD.SIM"]
    assert (book.realized_pnl, book.position, book.average_price) == (D(1), D(1), D(11))
    # an average that no decimal holds exactly: 1/3 of the way; the realized PnL still comes out exact
    thirds = fills(("BUY", "1", "1"), ("BUY", "2", "2"), ("SELL", "3", "3"))
    assert realized(thirds) == (D(4), D(0))


def test_commissions_are_reported_apart_and_instruments_are_booked_separately():
    euro = fills(("BUY", "2", "1.1"), ("SELL", "2", "1.2"), fee="0.01")
    gbp = fills(("SELL", "1", "1.30"), ("BUY", "1", "1.25"), instrument="GBPUSD.SIM", fee="0.02")
    summary = recompute_pnl(euro + gbp)
    assert summary.instruments["EURUSD.SIM"].realized_pnl == D("0.2")
    assert summary.instruments["GBPUSD.SIM"].realized_pnl == D("0.05")
    assert summary.instruments["EURUSD.SIM"].net_realized_pnl == D("0.18")
    assert summary.commissions == {"USD": D("0.06")}
    assert summary.realized_pnl("USD") == D("0.25")
    assert recompute_pnl([]).instruments == {}


BTCUSDT = TestInstrumentProvider.btcusdt_binance()


def nautilus_fill(
    n: int, side: OrderSide, qty: str, px: str, fee: str, instrument: Instrument = BTCUSDT
) -> OrderFilled:
    """A NautilusTrader fill of ``instrument``, commission in the currency its PnL settles in."""
    return OrderFilled(
        trader_id=TraderId("TRADER-001"),
        strategy_id=StrategyId("EMACross-001"),
        instrument_id=instrument.id,
        client_order_id=ClientOrderId(f"O-{n}"),
        venue_order_id=VenueOrderId(f"V-{n}"),
        account_id=AccountId(f"{instrument.id.venue}-001"),
        trade_id=TradeId(f"T-{n}"),
        position_id=PositionId(f"{instrument.id}-EMACross-001"),
        order_side=side,
        order_type=OrderType.MARKET,
        last_qty=Quantity.from_str(qty),
        last_px=Price.from_str(px),
        currency=instrument.quote_currency,
        commission=Money.from_str(f"{fee} {instrument.get_settlement_currency()}"),
        liquidity_side=LiquiditySide.TAKER,
        event_id=UUID4(),
        ts_event=1_700_000_000_000_000_000 + n,
        ts_init=1_700_000_000_000_000_100 + n,
    )


def test_an_order_filled_event_becomes_a_plain_exact_record():
    event = nautilus_fill(7, OrderSide.SELL, "0.012500", "64123.45", "0.80")
    assert from_order_filled(event, KEY) == FillRecord(
        strategy_key=KEY,
        trade_id="T-7",
        client_order_id="O-7",
        venue_order_id="V-7",
        instrument_id="BTCUSDT.BINANCE",
        side=Side.SELL,
        quantity=D("0.012500"),
        price=D("64123.45"),
        commission=D("0.80"),
        commission_currency="USDT",
        ts_event=1_700_000_000_000_000_007,
        ts_init=1_700_000_000_000_000_107,
        position_id="BTCUSDT.BINANCE-EMACross-001",
        account_id="BINANCE-001",
        quote_currency="USDT",
    )


def test_the_recomputation_agrees_with_nautilus_traders_position():
    events = [
        nautilus_fill(0, OrderSide.BUY, "0.500000", "64000.00", "3.20"),
        nautilus_fill(1, OrderSide.BUY, "0.250000", "64600.50", "1.61"),
        nautilus_fill(2, OrderSide.SELL, "0.300000", "65010.25", "1.95"),
        nautilus_fill(3, OrderSide.SELL, "0.450000", "63900.75", "2.88"),
    ]
    position = Position(BTCUSDT, events[0])
    for event in events[1:]:
        position.apply(event)
    assert position.is_closed

    book = recompute_pnl(from_order_filled(e, KEY) for e in events).instruments["BTCUSDT.BINANCE"]
    # NautilusTrader books in floats rounded to the currency's precision (8 for USDT); it also
    # nets the commissions paid in the quote currency into realized PnL
    precision = D(1).scaleb(-position.realized_pnl.currency.precision)
    assert book.net_realized_pnl.quantize(precision) == position.realized_pnl.as_decimal() == D("98.6475")
    assert book.commissions == {"USDT": D("9.64")}
    assert book.position == 0


XBTUSD = TestInstrumentProvider.xbtusd_bitmex()  # inverse: quoted in USD, PnL settled in BTC


def inverse_fill(n: int, side: OrderSide, qty: str, px: str, fee: str) -> OrderFilled:
    return nautilus_fill(n, side, qty, px, fee, instrument=XBTUSD)


def test_an_inverse_contract_is_booked_in_its_settlement_currency_as_nautilus_trader_does():
    events = [
        inverse_fill(0, OrderSide.BUY, "1000", "10000.0", "0.00000750"),
        inverse_fill(1, OrderSide.BUY, "500", "12500.0", "0.00000300"),
        inverse_fill(2, OrderSide.SELL, "1500", "11000.0", "0.00001023"),
    ]
    position = Position(XBTUSD, events[0])
    for event in events[1:]:
        position.apply(event)
    assert position.is_closed

    terms = ContractTerms(multiplier=D(1), inverse=True, settlement_currency="BTC")
    book = recompute_pnl((from_order_filled(e, KEY) for e in events), {"BTC/USD.BITMEX": terms})
    summary = book.instruments["BTC/USD.BITMEX"]
    assert summary.currency == "BTC"
    precision = D(1).scaleb(-position.realized_pnl.currency.precision)
    assert summary.net_realized_pnl.quantize(precision) == position.realized_pnl.as_decimal()
    # booked as if linear, the same fills would be a USD amount: the terms are what make it right
    assert recompute_pnl(from_order_filled(e, KEY) for e in events).instruments["BTC/USD.BITMEX"].currency == "USD"


def test_a_commission_paid_in_the_base_comes_off_the_position_and_is_priced_in_the_pnl():
    # Binance spot: a buy pays its commission in the base. Buy 0.001 BTC @ 40000 paying 0.000001 BTC:
    # the account holds 0.000999; sell that @ 41000 paying 0.04095 USDT. What the account gained in
    # USDT: 0.000999 * 41000 - 0.001 * 40000 - 0.04095 = 0.91805.
    buy = dataclasses.replace(
        trade(0, "BUY", "0.001", "40000", instrument="BTCUSDT.BINANCE", quote="USDT", ts=0, fee="0.000001"),
        commission_currency="BTC",
    )
    sell = trade(1, "SELL", "0.000999", "41000", instrument="BTCUSDT.BINANCE", quote="USDT", ts=1, fee="0.04095")
    terms = {"BTCUSDT.BINANCE": ContractTerms(base_currency="BTC")}
    opened = recompute_pnl([buy], terms).instruments["BTCUSDT.BINANCE"]
    assert opened.position == D("0.000999") and opened.average_price == D(40000)
    assert opened.net_realized_pnl == D("-0.04"), "the commission's value at its fill: 0.000001 BTC @ 40000"
    closed = recompute_pnl([buy, sell], terms).instruments["BTCUSDT.BINANCE"]
    assert closed.position == 0
    assert closed.net_realized_pnl == D("0.91805")
    assert closed.commissions == {"BTC": D("0.000001"), "USDT": D("0.04095")}


class _ReferenceBook:
    """The average-cost rules as first written (every figure recomputed, nothing kept): what ``PnlBook``,
    which keeps its net realized PnL between fills and takes shortcuts on the hot path, must agree with."""

    def __init__(self, terms: ContractTerms) -> None:
        self.terms = terms
        self.position = self.average = self.realized = self.commission_value = Fraction(0)
        self.commissions: dict[str, Fraction] = {}

    def net_realized(self, currency: str) -> Fraction:
        return self.realized - self.commissions.get(currency, Fraction(0)) - self.commission_value

    def apply(self, fill: FillRecord) -> None:
        self.commissions[fill.commission_currency] = self.commissions.get(
            fill.commission_currency, Fraction(0)
        ) + Fraction(fill.commission)
        qty, price = Fraction(fill.signed_quantity), Fraction(fill.price)
        if self.position == 0 or (self.position > 0) == (qty > 0):
            size = abs(self.position) + abs(qty)
            self.average = (self.average * abs(self.position) + price * abs(qty)) / size
            self.position += qty
        else:
            closed = min(abs(qty), abs(self.position))
            direction = 1 if self.position > 0 else -1
            if self.terms.inverse:
                points = (1 / self.average - 1 / price) if self.average and price else Fraction(0)
            else:
                points = price - self.average
            self.realized += points * closed * direction * Fraction(self.terms.multiplier)
            self.position += qty
            if self.position == 0:
                self.average = Fraction(0)
            elif (self.position > 0) != (direction > 0):
                self.average = price
        if self.terms.base_currency is not None and fill.commission_currency == self.terms.base_currency:
            commission = Fraction(fill.commission)
            self.position -= commission
            self.commission_value += commission * price
            if self.position == 0:
                self.average = Fraction(0)


@pytest.mark.parametrize(
    ("terms", "currency", "fee_currencies"),
    [
        (ContractTerms(), "USDT", ("USDT",)),
        (ContractTerms(multiplier=D("0.01")), "USDT", ("USDT", "BNB")),
        (ContractTerms(multiplier=D(100), inverse=True, settlement_currency="BTC"), "BTC", ("BTC",)),
        (ContractTerms(base_currency="BTC"), "USDT", ("USDT", "BTC")),
    ],
)
@pytest.mark.parametrize("seed", range(20))
def test_the_running_book_agrees_with_the_rules_recomputed_fill_by_fill(
    terms: ContractTerms, currency: str, fee_currencies: tuple[str, ...], seed: int
) -> None:
    rng = random.Random(seed)
    book, reference = PnlBook(terms), _ReferenceBook(terms)
    for n in range(150):
        side = rng.choice(("BUY", "SELL"))
        quantity = str(D(rng.randint(1, 3000)) / 1000)
        price = str(D(rng.randint(1, 10_000_000)) / 100)
        fee = str(D(rng.randint(0, 500)) / 10_000) if rng.random() < 0.8 else "0"
        fill = trade(n, side, quantity, price, instrument="BTCUSDT.BINANCE", quote="USDT", ts=n, fee=fee)
        fill = dataclasses.replace(fill, commission_currency=rng.choice(fee_currencies))
        before = book.net_realized
        change = book.apply(fill)
        reference.apply(fill)
        assert (book.position, book.average, book.realized) == (
            reference.position,
            reference.average,
            reference.realized,
        )
        assert book.commissions == reference.commissions and book.commission_value == reference.commission_value
        assert book.net_realized == reference.net_realized(currency)
        assert change == book.net_realized - before
        mark = Fraction(D(rng.randint(1, 10_000_000)) / 100)
        if reference.position == 0:
            expected = Fraction(0)
        elif terms.inverse:
            expected = (1 / reference.average - 1 / mark) * reference.position * Fraction(terms.multiplier)
        else:
            expected = (mark - reference.average) * reference.position * Fraction(terms.multiplier)
        assert book.unrealized(mark) == expected


def test_decimals_become_the_same_fractions_as_the_constructor_makes() -> None:
    """The book's shortcut into fractions (no gcd: the decimal's ratio is already in lowest terms) against
    ``Fraction(decimal)``, over random prices, quantities and commissions of every sign and exponent."""
    rng = random.Random(15)
    values = [D(0), D("-0"), D("0E-8"), D("1E+3"), D("-0.00000001"), D("123.4500")]
    for _ in range(2000):
        digits = str(rng.randint(0, 10 ** rng.randint(1, 18)))
        values.append(D(f"{rng.choice(('', '-'))}{digits}E{rng.randint(-12, 6)}"))
    for value in values:
        made = pnl._fraction(value)
        expected = Fraction(value)
        assert (made.numerator, made.denominator) == (expected.numerator, expected.denominator), value
        assert made == expected and hash(made) == hash(expected)
