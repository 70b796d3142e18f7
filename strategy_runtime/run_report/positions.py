"""The ledger's fills as NautilusTrader's own ``Position`` objects, for its ``PortfolioAnalyzer``.

A NETTING book, as the runtime's venues keep it: one position per instrument at a time. A fill from
flat opens a ``Position``, the fills after it are applied to it until it closes, and a fill larger
than the position is split as NautilusTrader's execution engine flips a netting position: the part
that closes it, with its share of the commission, and the rest opening the next position. Each
position is one trade of the analyzer's statistics (win rate, winners, losers, expectancy).

The instrument decides how a fill is booked (multiplier, inverse, a spot pair's commission in its
base): the catalog's instrument when the report knows it (a local run, a backtest). A ledger alone
does not say, so its instruments are stood in for as linear, multiplier 1, in the fills' quote
currency at the fills' own precision: what the ledger's own PnL check assumes too (``strategy_runtime.pnl``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.enums import AssetClass, InstrumentClass, LiquiditySide, OrderSide, OrderType
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import (
    AccountId,
    ClientOrderId,
    InstrumentId,
    PositionId,
    StrategyId,
    TradeId,
    TraderId,
    VenueOrderId,
)
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import FIXED_PRECISION, Currency, Money, Price, Quantity
from nautilus_trader.model.position import Position

from strategy_runtime.ledger.records import FillRecord, Side

# The ledger keeps no trader or strategy id of NautilusTrader's: the positions are the report's own.
REPORT_TRADER = TraderId("REPORT-001")
REPORT_STRATEGY = StrategyId("REPORT-001")
REPORT_ACCOUNT = AccountId("REPORT-001")


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _increment(precision: int) -> str:
    return f"{Decimal(1).scaleb(-precision):f}"


def stand_in_instrument(instrument_id: str, fills: Sequence[FillRecord]) -> Instrument:
    """A linear instrument, multiplier 1, quoted in the fills' quote currency at their precision."""
    own = [f for f in fills if f.instrument_id == instrument_id]
    quote = own[0].quote_currency or own[0].commission_currency
    price_precision = min(max(_decimals(f.price) for f in own), FIXED_PRECISION)
    size_precision = min(max(_decimals(f.quantity) for f in own), FIXED_PRECISION)
    iid = InstrumentId.from_str(instrument_id)
    return Instrument(
        instrument_id=iid,
        raw_symbol=iid.symbol,
        asset_class=AssetClass.CRYPTOCURRENCY,
        instrument_class=InstrumentClass.SPOT,
        quote_currency=Currency.from_str(quote),
        is_inverse=False,
        price_precision=price_precision,
        size_precision=size_precision,
        size_increment=Quantity.from_str(_increment(size_precision)),
        multiplier=Quantity.from_int(1),
        margin_init=Decimal(0),
        margin_maint=Decimal(0),
        maker_fee=Decimal(0),
        taker_fee=Decimal(0),
        ts_event=0,
        ts_init=0,
        price_increment=Price.from_str(_increment(price_precision)),
    )


def instruments_for(fills: Sequence[FillRecord], known: Mapping[str, Instrument]) -> dict[str, Instrument]:
    """The instrument of every instrument id the fills trade: ``known``'s, else a stand-in."""
    ids = sorted({f.instrument_id for f in fills})
    return {i: known[i] if i in known else stand_in_instrument(i, fills) for i in ids}


def order_filled(
    fill: FillRecord,
    instrument: Instrument,
    position_id: PositionId,
    quantity: Decimal | None = None,
    commission: Decimal | None = None,
) -> OrderFilled:
    """NautilusTrader's ``OrderFilled`` of a ledger fill (or of a part of it: ``quantity`` and its ``commission``)."""
    return OrderFilled(
        trader_id=REPORT_TRADER,
        strategy_id=REPORT_STRATEGY,
        instrument_id=instrument.id,
        client_order_id=ClientOrderId(fill.client_order_id),
        venue_order_id=VenueOrderId(fill.venue_order_id),
        account_id=REPORT_ACCOUNT,
        trade_id=TradeId(fill.trade_id),
        position_id=position_id,
        order_side=OrderSide.BUY if fill.side is Side.BUY else OrderSide.SELL,
        order_type=OrderType.MARKET,  # the ledger does not keep it; a position does not use it
        last_qty=instrument.make_qty(fill.quantity if quantity is None else quantity),
        last_px=instrument.make_price(fill.price),
        currency=instrument.quote_currency,
        commission=Money(
            fill.commission if commission is None else commission, Currency.from_str(fill.commission_currency)
        ),
        liquidity_side=LiquiditySide.NO_LIQUIDITY_SIDE,
        event_id=UUID4(),
        ts_event=fill.ts_event,
        ts_init=fill.ts_init,
    )


class PositionBook:
    """The positions of a run, fill by fill (``apply`` returns the positions the fill touched)."""

    def __init__(self, instruments: Mapping[str, Instrument]) -> None:
        self._instruments = instruments
        self._open: dict[str, Position] = {}
        self._count: dict[str, int] = {}
        self.positions: list[Position] = []

    def apply(self, fill: FillRecord) -> list[Position]:
        instrument = self._instruments[fill.instrument_id]
        position = self._open.get(fill.instrument_id)
        if position is None or position.is_closed:
            return [self._open_position(instrument, order_filled(fill, instrument, self._next_id(fill.instrument_id)))]
        held = position.quantity.as_decimal()
        against = (fill.side is Side.BUY) == position.is_short
        if not against or fill.quantity <= held:
            position.apply(order_filled(fill, instrument, position.id))
            return [position]
        # A flip: close what is held with its share of the commission, open the rest.
        precision = Currency.from_str(fill.commission_currency).precision  # what a Money of it keeps
        closing_commission = (fill.commission * held / fill.quantity).quantize(Decimal(1).scaleb(-precision))
        position.apply(order_filled(fill, instrument, position.id, held, closing_commission))
        rest = order_filled(
            fill,
            instrument,
            self._next_id(fill.instrument_id),
            fill.quantity - held,
            fill.commission - closing_commission,
        )
        return [position, self._open_position(instrument, rest)]

    def _next_id(self, instrument_id: str) -> PositionId:
        self._count[instrument_id] = self._count.get(instrument_id, 0) + 1
        return PositionId(f"{instrument_id}-{self._count[instrument_id]}")

    def _open_position(self, instrument: Instrument, event: OrderFilled) -> Position:
        position = Position(instrument, event)
        self._open[instrument.id.value] = position
        self.positions.append(position)
        return position
