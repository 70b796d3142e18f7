"""Realized PnL recomputed from fills alone: the independent check on what the node reports.

NETTING account, average cost per instrument, the way NautilusTrader's ``Position`` books
it: a fill on the side of the position raises it at a new average price; a fill against it
realizes ``(price - average) * closed quantity`` (sign flipped for a short); a fill larger
than the position closes it and opens the remainder at the fill price. Linear instruments
with multiplier 1 (spot, FX, linear perpetuals quoted per unit): the PnL is in the quote
currency. Commissions are totalled separately, per currency; ``net_realized_pnl`` subtracts
those paid in the quote currency, as NautilusTrader's ``Position.realized_pnl`` does.

Arithmetic is exact (fractions) until the result is turned into a Decimal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from fractions import Fraction

from strategy_runtime.ledger.fills import FillRecord


def _decimal(value: Fraction) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 40
        return +(Decimal(value.numerator) / Decimal(value.denominator))


@dataclass(frozen=True)
class InstrumentPnl:
    instrument_id: str
    quote_currency: str | None
    realized_pnl: Decimal
    position: Decimal  # signed: positive long, negative short
    average_price: Decimal | None  # of the open position; None when flat
    commissions: Mapping[str, Decimal]
    fills: int

    @property
    def net_realized_pnl(self) -> Decimal:
        """Realized PnL less the commissions paid in the quote currency."""
        if self.quote_currency is None:
            return self.realized_pnl
        return self.realized_pnl - self.commissions.get(self.quote_currency, Decimal(0))


@dataclass(frozen=True)
class PnlSummary:
    instruments: Mapping[str, InstrumentPnl]
    commissions: Mapping[str, Decimal] = field(default_factory=dict)

    def realized_pnl(self, quote_currency: str) -> Decimal:
        """Total realized PnL of the instruments quoted in ``quote_currency``."""
        return sum(
            (i.realized_pnl for i in self.instruments.values() if i.quote_currency == quote_currency), Decimal(0)
        )


class _Book:
    """Running average-cost position of one instrument."""

    def __init__(self) -> None:
        self.position = Fraction(0)  # signed
        self.average = Fraction(0)
        self.realized = Fraction(0)
        self.commissions: dict[str, Fraction] = {}
        self.quote_currency: str | None = None
        self.fills = 0

    def apply(self, fill: FillRecord) -> None:
        self.fills += 1
        self.quote_currency = self.quote_currency or fill.quote_currency
        self.commissions[fill.commission_currency] = self.commissions.get(fill.commission_currency, Fraction(0)) + (
            Fraction(fill.commission)
        )
        qty = Fraction(fill.signed_quantity)
        price = Fraction(fill.price)
        if self.position == 0 or (self.position > 0) == (qty > 0):
            self.average = (self.average * abs(self.position) + price * abs(qty)) / (abs(self.position) + abs(qty))
            self.position += qty
            return
        closed = min(abs(qty), abs(self.position))
        direction = 1 if self.position > 0 else -1
        self.realized += (price - self.average) * closed * direction
        self.position += qty
        if self.position == 0:
            self.average = Fraction(0)
        elif (self.position > 0) != (direction > 0):
            self.average = price  # flipped through zero: the remainder opened at this fill's price

    def summary(self, instrument_id: str) -> InstrumentPnl:
        return InstrumentPnl(
            instrument_id=instrument_id,
            quote_currency=self.quote_currency,
            realized_pnl=_decimal(self.realized),
            position=_decimal(self.position),
            average_price=_decimal(self.average) if self.position else None,
            commissions={c: _decimal(v) for c, v in sorted(self.commissions.items())},
            fills=self.fills,
        )


def recompute_pnl(fills: Iterable[FillRecord]) -> PnlSummary:
    """Realized PnL per instrument from ``fills`` in the order they happened (as ``Ledger.fills`` returns them)."""
    books: dict[str, _Book] = {}
    for fill in fills:
        books.setdefault(fill.instrument_id, _Book()).apply(fill)
    commissions: dict[str, Fraction] = {}
    for book in books.values():
        for currency, amount in book.commissions.items():
            commissions[currency] = commissions.get(currency, Fraction(0)) + amount
    return PnlSummary(
        instruments={iid: book.summary(iid) for iid, book in sorted(books.items())},
        commissions={c: _decimal(v) for c, v in sorted(commissions.items())},
    )
