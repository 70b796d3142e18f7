"""The one book, in the API's words: the PnL and positions every surface shows.

The status (``trading.realizedPnl``, ``unrealizedPnl``, ``totalPnl``, ``positions``), ``/state``, the
metrics and ``livestrat run``'s summary all read the books the risk guard keeps
(``risk.limits.LimitsTracker.books``): one ``pnl.PnlBook`` per instrument, fed with the very records
the ledger stores (the reporter hands each to the guard as it records it), the ledger's history
first in a live runtime. Recomputing the ledger's fills (``pnl.recompute_pnl``) therefore gives the
same figures, whatever the node's portfolio says: it can miss a fill it failed to apply, and its
figures cover this process only.

- **Realized** PnL per currency: each book's net realized PnL (commissions paid in the PnL's currency
  taken off, as NautilusTrader's ``Position.realized_pnl``, and those a spot pair paid in its base
  valued at their fills' prices, which NautilusTrader's leaves out; commissions in any other
  currency are not PnL), exact.
- **Unrealized**: each open position closed at the price a close would trade at, as NautilusTrader's
  portfolio picks it: the bid for a long and the ask for a short when quotes come in, else the last
  trade, else the last bar's close.
- **Positions**: each book's net position (a spot pair's less the commissions paid in its base, as the
  account holds it) and average open price; the price it is marked at and its notional there
  (NautilusTrader's ``Instrument.notional_value``), which RiskBudgets add up across strategies.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

from nautilus_trader.model.enums import PriceType
from nautilus_trader.model.identifiers import InstrumentId

from livestrat.api.status import Position
from strategy_runtime.pnl import PnlBook, to_decimal
from strategy_runtime.portfolio_view import Amounts, PnlView, money_text

if TYPE_CHECKING:
    from nautilus_trader.cache.cache import Cache
    from nautilus_trader.model.instruments import Instrument
    from nautilus_trader.model.objects import Money, Price

    from strategy_runtime.risk.prices import LatestPrices


def close_price(prices: Cache | LatestPrices, instrument_id: InstrumentId, long: bool) -> Price | None:
    """Where closing a position would trade now, as the portfolio prices it: the bid for a long, the ask for a short,
    else the last trade, else the last bar's close (``prices``: the cache, or the guard's cheaper ``LatestPrices``)."""
    return prices.price(instrument_id, PriceType.BID if long else PriceType.ASK) or prices.price(
        instrument_id, PriceType.LAST
    )


def _mark(cache: Cache, instrument_id: str, position: Fraction) -> Price | None:
    return close_price(cache, InstrumentId.from_str(instrument_id), position > 0)


def mark_price(cache: Cache, instrument_id: str, position: Fraction) -> Fraction | None:
    """The price closing ``position`` would trade at now, as the portfolio prices it; None without one."""
    price = _mark(cache, instrument_id, position)
    return Fraction(price.as_decimal()) if price is not None else None


def notional(instrument: Instrument | None, position: Fraction, price: Price | None) -> Money | None:
    """The position's absolute notional at ``price``, as NautilusTrader values it (quantity × price × multiplier;
    an inverse contract's in its base currency): what a RiskBudget adds up across strategies."""
    if instrument is None or price is None:
        return None
    return instrument.notional_value(instrument.make_qty(to_decimal(abs(position))), price)


def _unrealized(book: PnlBook, cache: Cache, instrument_id: str) -> Fraction | None:
    if book.position == 0:
        return None
    price = mark_price(cache, instrument_id, book.position)
    return book.unrealized(price) if price is not None else None


def pnl(books: Mapping[str, PnlBook], cache: Cache) -> PnlView:
    """Realized and unrealized PnL per currency over every instrument booked."""
    realized: dict[str, Fraction] = {}
    unrealized: dict[str, Fraction] = {}
    for instrument_id, book in books.items():
        code = book.currency or ""
        realized[code] = realized.get(code, Fraction(0)) + book.net_realized
        open_pnl = _unrealized(book, cache, instrument_id)
        if open_pnl is not None:
            unrealized[code] = unrealized.get(code, Fraction(0)) + open_pnl
    return PnlView(_amounts(realized), _amounts(unrealized))


def positions(books: Mapping[str, PnlBook], cache: Cache) -> list[Position]:
    """The open net position of each instrument booked (flat ones left out), at its average open price."""
    result: list[Position] = []
    for instrument_id, book in sorted(books.items()):
        if book.position == 0:
            continue
        instrument = cache.instrument(InstrumentId.from_str(instrument_id))
        places = instrument.price_precision if instrument is not None else 8
        size_places = instrument.size_precision if instrument is not None else 8
        open_pnl = _unrealized(book, cache, instrument_id)
        price = _mark(cache, instrument_id, book.position)
        value = notional(instrument, book.position, price)
        result.append(
            Position(
                instrument=instrument_id,
                side="LONG" if book.position > 0 else "SHORT",
                quantity=f"{to_decimal(abs(book.position)).quantize(Decimal(1).scaleb(-size_places)):f}",
                avg_price=f"{to_decimal(book.average).quantize(Decimal(1).scaleb(-places)):f}",
                unrealized_pnl=money_text({book.currency or "": to_decimal(open_pnl)})
                if open_pnl is not None
                else None,
                mark_price=str(price) if price is not None else None,
                notional=money_text({value.currency.code: value.as_decimal()}) if value is not None else None,
            )
        )
    return result


def gross_exposure(books: Mapping[str, PnlBook], cache: Cache) -> Amounts:
    """Σ of the open positions' notionals per currency (``status.risk.exposure``: what ``positions`` shows beside
    each, added up); a position without a price yet counts nothing. Not ``Portfolio.net_exposure``: the node's
    positions, and NautilusTrader 1.231's raises ``TypeError`` on an open position it has no price for."""
    exposure: Amounts = {}
    for instrument_id, book in books.items():
        if book.position == 0:
            continue
        instrument = cache.instrument(InstrumentId.from_str(instrument_id))
        value = notional(instrument, book.position, _mark(cache, instrument_id, book.position))
        if value is not None:
            code = value.currency.code
            exposure[code] = exposure.get(code, Decimal(0)) + value.as_decimal()
    return exposure


def net_positions(books: Mapping[str, PnlBook]) -> dict[str, Decimal]:
    """Each instrument's signed net position (the metrics' ``livestrat_position``)."""
    return {instrument_id: to_decimal(book.position) for instrument_id, book in sorted(books.items())}


def _amounts(values: Mapping[str, Fraction]) -> Amounts:
    return {code: to_decimal(value) for code, value in sorted(values.items())}
