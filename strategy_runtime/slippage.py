"""Slippage against the arrival price: what fills cost beyond the market their orders met when they were sent.

One definition for every place that shows it (the status's ``slippageBps``, ``livestrat report``): over the
fills that have an arrival price (``FillRecord.arrival_price``; the others are left out, and so are the fills
NautilusTrader inferred, ``ledger.supersede``: the order's average price, not an execution; the venue's trade
of the order measures it, once), the notional-weighted mean of the signed slippage in basis points,

    sum(side * (price - arrival) * quantity) / sum(arrival * quantity) * 10 000,  side +1 BUY, -1 SELL,

so positive is worse than arrival (a BUY filled above it, a SELL below it). The sums are exact (decimals, no
float); the quotient is taken exactly too (fractions) and then rounded half to even to 2 decimals.

The runtime keeps a ``SlippageTally`` fed each fill as it records it (two exact sums: cheap per fill, nothing
kept per fill); a recomputation from the ledger runs the same tally over the ledger's fills (``slippage_bps``).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, Inexact
from fractions import Fraction

from strategy_runtime.ledger.records import FillRecord, Side
from strategy_runtime.ledger.supersede import is_inferred

BPS = 10_000
DECIMALS = 2
# Additions and products of finite decimals are exact at this precision; a rounded one would raise (Inexact).
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Inexact])


class SlippageTally:
    """The two sums slippage is the quotient of, over the fills ``add``-ed so far."""

    __slots__ = ("cost", "fills", "notional")

    def __init__(self) -> None:
        self.cost = Decimal(0)  # sum of side * (price - arrival) * quantity
        self.notional = Decimal(0)  # sum of arrival * quantity
        self.fills = 0  # fills counted (those with an arrival price)

    def add(self, fill: FillRecord) -> None:
        arrival = fill.arrival_price
        if arrival is None or is_inferred(fill):
            return  # an inferred fill: the order's average price, not an execution (its trade measures it)
        exact = _EXACT
        moved = exact.multiply(exact.subtract(fill.price, arrival), fill.quantity)
        self.cost = exact.subtract(self.cost, moved) if fill.side is Side.SELL else exact.add(self.cost, moved)
        self.notional = exact.add(self.notional, exact.multiply(arrival, fill.quantity))
        self.fills += 1

    def bps(self) -> Decimal | None:
        """Slippage in basis points, 2 decimals; None without a fill that has an arrival price (or no notional)."""
        if not self.notional:
            return None
        hundredths = round(Fraction(self.cost) * BPS * 10**DECIMALS / Fraction(self.notional))  # half to even
        return Decimal(hundredths).scaleb(-DECIMALS)

    def text(self) -> str | None:
        """As the status writes it: ``"1.25"``, ``"-0.40"``, ``"0.00"``; None when there is nothing to measure."""
        bps = self.bps()
        return None if bps is None else f"{bps:f}"


def slippage_bps(fills: Iterable[FillRecord]) -> Decimal | None:
    """Slippage of ``fills`` against their arrival prices, in basis points (see the module docstring)."""
    tally = SlippageTally()
    for fill in fills:
        tally.add(fill)
    return tally.bps()
