"""What the node's portfolio says, in the API's words, and money as text.

The PnL and positions every surface shows come from the one book of the fills
(``strategy_runtime.book_view``), not from here. The portfolio is read for what the book does not
keep (the instruments traded) and as a cross-check:
``livestrat run``'s summary says when the node's own figures differ from the fills' (a fill the
node failed to apply).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from livestrat.api.status import Position

if TYPE_CHECKING:
    from nautilus_trader.cache.cache import Cache
    from nautilus_trader.model.identifiers import InstrumentId
    from nautilus_trader.model.objects import Money
    from nautilus_trader.portfolio.portfolio import Portfolio

Amounts = dict[str, Decimal]  # currency code -> amount


@dataclass(frozen=True)
class PnlView:
    """Realized and unrealized PnL summed per currency over the strategy's instruments."""

    realized: Amounts = field(default_factory=dict)
    unrealized: Amounts = field(default_factory=dict)

    @property
    def total(self) -> Amounts:
        return add(self.realized, self.unrealized)


def add(a: Mapping[str, Decimal], b: Mapping[str, Decimal]) -> Amounts:
    return {c: a.get(c, Decimal(0)) + b.get(c, Decimal(0)) for c in sorted({*a, *b})}


def money_text(amounts: Mapping[str, Decimal], places: int = 2) -> str | None:
    """``{"USDT": Decimal("-12.5")}`` -> ``"-12.50 USDT"``; several currencies are joined with ", "."""
    if not amounts:
        return None
    quantum = Decimal(1).scaleb(-places)
    return ", ".join(f"{amount.quantize(quantum) + 0:f} {currency}" for currency, amount in sorted(amounts.items()))


def _accumulate(into: Amounts, money: Money | None) -> None:
    if money is not None:
        code = money.currency.code
        into[code] = into.get(code, Decimal(0)) + money.as_decimal()


def traded_instruments(cache: Cache, configured: Iterable[InstrumentId]) -> list[InstrumentId]:
    """The configured instruments plus any other the cache holds a position in (reconciled, for example)."""
    found = {*configured, *(p.instrument_id for p in cache.positions())}
    return sorted(found, key=str)


def pnl(portfolio: Portfolio, cache: Cache, instrument_ids: Iterable[InstrumentId]) -> PnlView:
    """PnL as the portfolio computes it (commissions included in realized, as NautilusTrader books it)."""
    realized: Amounts = {}
    unrealized: Amounts = {}
    for instrument_id in instrument_ids:
        # Without an account for the venue the portfolio logs an error per call: ask only once it exists.
        if cache.account_for_venue(instrument_id.venue) is None:
            continue
        _accumulate(realized, portfolio.realized_pnl(instrument_id))
        if cache.positions_open_count(instrument_id=instrument_id):
            _accumulate(unrealized, portfolio.unrealized_pnl(instrument_id))
    return PnlView(realized, unrealized)


def positions(portfolio: Portfolio, cache: Cache, instrument_ids: Iterable[InstrumentId]) -> list[Position]:
    """Net open position per instrument (flat instruments are left out)."""
    result: list[Position] = []
    for instrument_id in instrument_ids:
        net = Decimal(portfolio.net_position(instrument_id))
        if net == 0:
            continue
        open_positions = cache.positions_open(instrument_id=instrument_id)
        quantity = sum((Decimal(p.quantity.as_decimal()) for p in open_positions), Decimal(0))
        average = (
            sum((p.quantity.as_decimal() * Decimal(str(p.avg_px_open)) for p in open_positions), Decimal(0)) / quantity
            if quantity
            else None
        )
        upnl: Amounts = {}
        if cache.account_for_venue(instrument_id.venue) is not None:
            _accumulate(upnl, portfolio.unrealized_pnl(instrument_id))
        instrument = cache.instrument(instrument_id)
        places = instrument.price_precision if instrument is not None else 8
        result.append(
            Position(
                instrument=str(instrument_id),
                side="LONG" if net > 0 else "SHORT",
                quantity=f"{abs(net):f}",
                avg_price=f"{average.quantize(Decimal(1).scaleb(-places)):f}" if average is not None else None,
                unrealized_pnl=money_text(upnl),
            )
        )
    return result


def net_positions(portfolio: Portfolio, instrument_ids: Iterable[InstrumentId]) -> dict[str, Decimal]:
    return {str(i): Decimal(portfolio.net_position(i)) for i in instrument_ids}
