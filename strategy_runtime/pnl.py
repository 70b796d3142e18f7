"""Realized PnL recomputed from fills alone: the independent check on what the node reports.

NETTING account, average cost per instrument, the way NautilusTrader's ``Position`` books
it: a fill on the side of the position raises it at a new average price; a fill against it
realizes ``(price - average) * closed quantity * multiplier`` (sign flipped for a short); a
fill larger than the position closes it and opens the remainder at the fill price.

By default an instrument is linear with multiplier 1 (spot, FX, linear perpetuals quoted per
unit) and its PnL is in the fill's quote currency. ``ContractTerms`` describe the others as
NautilusTrader does: a multiplier, and inverse contracts, whose PnL is
``(1/average - 1/price) * closed quantity * multiplier`` in the settlement (base) currency.
Commissions are totalled separately, per currency; ``net_realized_pnl`` subtracts those paid
in the PnL's currency, as NautilusTrader's ``Position.realized_pnl`` does.

A spot pair's commission paid in its base currency (Binance spot takes a buy's commission out of
the base it buys) is what the account no longer holds: it comes off the position (as
NautilusTrader's ``Position`` adjusts its quantity), and its value at the fill's price is a cost
in the PnL's currency (``commission_value``; NautilusTrader leaves it out of ``realized_pnl``, so
the book's realized PnL is lower than the node's by that much and equals what the account gained).
``ContractTerms.base_currency`` names that currency; a commission in any other currency (BNB) is
listed, not priced.

``PnlBook`` is one instrument's running book, fill by fill (the risk guard keeps one per
instrument, seeded from the ledger); ``recompute_pnl`` runs a whole list of fills.

Arithmetic is exact (fractions) until the result is turned into a Decimal.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from fractions import Fraction

from strategy_runtime.ledger.records import FillRecord, Side

_ZERO = Fraction(0)


# ``Decimal.as_integer_ratio`` gives the ratio in lowest terms with a positive denominator, which is what
# ``Fraction._from_coprime_ints`` (Python 3.12+) takes as it is: no gcd, no normalising. Not public API, so
# the constructor stands in should a later Python drop it (tests/runtime/test_pnl.py holds the two equal).
_from_coprime_ints = getattr(Fraction, "_from_coprime_ints", Fraction)


def _fraction(value: Decimal) -> Fraction:
    """``value`` exactly, as ``Fraction(value)`` (about twice as fast: no type dispatch, no gcd; a fill books
    three of them)."""
    return _from_coprime_ints(*value.as_integer_ratio())


def to_decimal(value: Fraction) -> Decimal:
    """``value`` as a Decimal of 40 significant digits (exact for the prices and quantities of fills)."""
    with localcontext() as ctx:
        ctx.prec = 40
        return +(Decimal(value.numerator) / Decimal(value.denominator))


@dataclass(frozen=True)
class ContractTerms:
    """How an instrument's PnL is computed (NautilusTrader's ``Instrument.multiplier``/``is_inverse``)."""

    multiplier: Decimal = Decimal(1)
    inverse: bool = False
    settlement_currency: str | None = None  # the PnL's currency; None: the fills' quote currency
    base_currency: str | None = None  # a spot pair's base: a commission in it comes off the position, priced


LINEAR = ContractTerms()


@dataclass(frozen=True)
class InstrumentPnl:
    instrument_id: str
    quote_currency: str | None
    realized_pnl: Decimal
    position: Decimal  # signed: positive long, negative short
    average_price: Decimal | None  # of the open position; None when flat
    commissions: Mapping[str, Decimal]
    fills: int
    pnl_currency: str | None = None  # the currency of realized_pnl when not the quote currency (inverse)
    commission_value: Decimal = Decimal(0)  # commissions paid in the base, valued at their fills' prices

    @property
    def currency(self) -> str | None:
        """The currency the PnL is in."""
        return self.pnl_currency or self.quote_currency

    @property
    def net_realized_pnl(self) -> Decimal:
        """Realized PnL less the commissions paid in its own currency and the value of those paid in the base."""
        if self.currency is None:
            return self.realized_pnl - self.commission_value
        return self.realized_pnl - self.commissions.get(self.currency, Decimal(0)) - self.commission_value


@dataclass(frozen=True)
class PnlSummary:
    instruments: Mapping[str, InstrumentPnl]
    commissions: Mapping[str, Decimal] = field(default_factory=dict)

    def realized_pnl(self, quote_currency: str) -> Decimal:
        """Total realized PnL of the instruments whose PnL is in ``quote_currency``."""
        return sum((i.realized_pnl for i in self.instruments.values() if i.currency == quote_currency), Decimal(0))


class PnlBook:
    """Running average-cost position of one instrument, fill by fill."""

    def __init__(self, terms: ContractTerms = LINEAR) -> None:
        self.terms = terms
        self.position = Fraction(0)  # signed
        self.average = Fraction(0)
        self.realized = Fraction(0)
        self.commissions: dict[str, Fraction] = {}
        self.commission_value = Fraction(0)  # base-currency commissions at their fills' prices
        self.quote_currency: str | None = None
        self.fills = 0
        # Booked on every fill and read on every fill (the guard's realized PnL): kept, not recomputed.
        # Only ``apply`` changes what it is made of.
        self._net_realized = _ZERO
        self._multiplier = Fraction(terms.multiplier)
        self._scaled = self._multiplier != 1

    def copy(self) -> PnlBook:
        """The book as it stands, apart: booking more into either leaves the other as it was."""
        other = copy.copy(self)
        other.commissions = dict(self.commissions)
        return other

    @property
    def currency(self) -> str | None:
        """The currency of the PnL: the settlement currency of an inverse contract, else the quote's."""
        return self.terms.settlement_currency or self.quote_currency

    @property
    def net_realized(self) -> Fraction:
        """Realized PnL less the commissions paid in the PnL's currency (NautilusTrader's ``realized_pnl``) and the
        value of those paid in the base (which NautilusTrader's leaves out)."""
        return self._net_realized

    def apply(self, fill: FillRecord) -> Fraction:
        """Book ``fill``; returns what it changed the net realized PnL by (commission included)."""
        currency = self.currency
        self.fills += 1
        if not self.quote_currency:
            self.quote_currency = fill.quote_currency
        commission = _fraction(fill.commission)
        code = fill.commission_currency
        commissions = self.commissions
        commissions[code] = commissions[code] + commission if code in commissions else commission
        quantity = _fraction(fill.quantity)
        price = _fraction(fill.price)
        change = self._trade(quantity if fill.side is Side.BUY else -quantity, price)
        if self.terms.base_currency is not None and code == self.terms.base_currency:
            # the base the commission took is not held any more: off the position, its value a cost
            self.position -= commission
            value = commission * price
            self.commission_value += value
            change -= value
            if self.position == 0:
                self.average = _ZERO
        if self.currency != currency:
            # The PnL's currency became known with this fill: commissions booked in it before count now.
            before = self._net_realized
            self._net_realized = self.realized - commissions.get(self.currency or "", _ZERO) - self.commission_value
            return self._net_realized - before
        # Exact, so kept by adding up what each fill changed rather than recomputed from its parts.
        if code == (currency or ""):
            change = change - commission if change else -commission  # an opening fill realizes nothing
        if change:
            self._net_realized += change
        return change

    def _trade(self, qty: Fraction, price: Fraction) -> Fraction:
        """Book a trade of ``qty`` (signed) at ``price``; returns the PnL it realized (0 when it opens or adds)."""
        position = self.position
        if position == 0:
            self.average = price  # (0 × average + price × |qty|) / |qty|
            self.position = qty
            return _ZERO
        # Signs from the numerators: a Fraction's denominator is positive (an int comparison, not a Fraction's).
        long = position.numerator > 0
        if long == (qty.numerator > 0):
            size, added = abs(position), abs(qty)
            self.average = (self.average * size + price * added) / (size + added)
            self.position = position + qty
            return _ZERO
        # min(|qty|, |position|), compared in integers: qty is of the other sign (a Fraction's abs and min cost more)
        if long:
            size, held = -qty, position
        else:
            size, held = qty, -position
        closed = size if size.numerator * held.denominator <= held.numerator * size.denominator else held
        if self.terms.inverse:
            if not (self.average and price):
                points = _ZERO
            else:
                points = (1 / self.average - 1 / price) if long else (1 / price - 1 / self.average)
        else:
            points = price - self.average if long else self.average - price
        realized = points * closed
        if self._scaled:
            realized *= self._multiplier
        self.realized += realized
        self.position = position = position + qty
        if position == 0:
            self.average = _ZERO
        elif (position.numerator > 0) != long:
            self.average = price  # flipped through zero: the remainder opened at this fill's price
        return realized

    def unrealized(self, price: Fraction) -> Fraction:
        """What closing the open position at ``price`` would realize, before commission (0 when flat)."""
        if self.position == 0:
            return Fraction(0)
        if self.terms.inverse:
            points = (1 / self.average - 1 / price) if self.average and price else Fraction(0)
        else:
            points = price - self.average
        return points * self.position * self._multiplier

    def summary(self, instrument_id: str) -> InstrumentPnl:
        return InstrumentPnl(
            instrument_id=instrument_id,
            quote_currency=self.quote_currency,
            realized_pnl=to_decimal(self.realized),
            position=to_decimal(self.position),
            average_price=to_decimal(self.average) if self.position else None,
            commissions={c: to_decimal(v) for c, v in sorted(self.commissions.items())},
            fills=self.fills,
            pnl_currency=self.terms.settlement_currency,
            commission_value=to_decimal(self.commission_value),
        )


def recompute_pnl(fills: Iterable[FillRecord], terms: Mapping[str, ContractTerms] | None = None) -> PnlSummary:
    """Realized PnL per instrument from ``fills`` in the order they happened (as ``Ledger.fills`` returns them).

    ``terms``: contract terms by instrument id, for instruments that are not linear with multiplier 1.
    """
    terms = terms or {}
    books: dict[str, PnlBook] = {}
    for fill in fills:
        book = books.get(fill.instrument_id)
        if book is None:
            book = books[fill.instrument_id] = PnlBook(terms.get(fill.instrument_id, LINEAR))
        book.apply(fill)
    commissions: dict[str, Fraction] = {}
    for book in books.values():
        for currency, amount in book.commissions.items():
            commissions[currency] = commissions.get(currency, Fraction(0)) + amount
    return PnlSummary(
        instruments={iid: book.summary(iid) for iid, book in sorted(books.items())},
        commissions={c: to_decimal(v) for c, v in sorted(commissions.items())},
    )
