"""A strategy that fills on every bar (buy, then sell, then buy ...): a steady stream of fills for benchmarks."""

from __future__ import annotations

import time
from decimal import Decimal

from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy

# client order id -> time.monotonic() at submit_order: where the benchmark's end-to-end latency starts.
SUBMITTED: dict[str, float] = {}


class FlipEveryBarConfig(StrategyConfig, frozen=True):
    instrument_id: str
    bar_type: str
    quantity: str = "0.01"


class FlipEveryBar(Strategy):
    def __init__(self, config: FlipEveryBarConfig) -> None:
        super().__init__(config)
        self.side = OrderSide.BUY

    def on_start(self) -> None:
        self.instrument_id = InstrumentId.from_str(self.config.instrument_id)
        self.quantity = self.cache.instrument(self.instrument_id).make_qty(Decimal(self.config.quantity))
        self.subscribe_bars(BarType.from_str(self.config.bar_type))

    def on_bar(self, bar: Bar) -> None:
        order = self.order_factory.market(self.instrument_id, self.side, self.quantity)
        SUBMITTED[order.client_order_id.value] = time.monotonic()
        self.submit_order(order)
        self.side = OrderSide.SELL if self.side == OrderSide.BUY else OrderSide.BUY
