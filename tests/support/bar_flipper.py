"""A strategy that trades on every bar: BUY on one, SELL on the next, at market (each bar, one fill)."""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy


class BarFlipperConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId
    bar_type: BarType
    trade_size: Decimal


class BarFlipper(Strategy):
    """Flat, long, flat, long...: a market BUY on odd bars and a market SELL of the same size on even ones."""

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.config.instrument_id)
        self.bars = 0
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        self.bars += 1
        side = OrderSide.BUY if self.bars % 2 else OrderSide.SELL
        quantity = self.instrument.make_qty(self.config.trade_size)
        self.submit_order(self.order_factory.market(self.config.instrument_id, side, quantity))
