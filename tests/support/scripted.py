"""Small NautilusTrader strategies that do one thing on a given bar, for the runtime's tests.

``ScriptedStrategy`` follows a script of steps, each on a bar number (1 = the first bar):

- ``{"bar": 2, "do": "market", "side": "BUY", "quantity": "0.1"}``: a market order;
- ``{"bar": 2, "do": "limit", "side": "BUY", "quantity": "0.01", "offset": -0.2, "count": 3}``:
  ``count`` limit orders at ``close * (1 + offset)`` (far from the market: they rest);
- ``{"bar": 1, "do": "bracket", "side": "BUY", "quantity": "0.01", "offset": -0.2, "emulated": true}``:
  a bracket (LIMIT entry at ``close * (1 + offset)``, STOP_MARKET stop-loss and LIMIT take-profit 5 %
  either side of it), emulated by the node's OrderEmulator with ``"emulated": true`` (the entry waits
  there as EMULATED, its stop-loss and take-profit as INITIALIZED until the entry fills);
- ``"keep_trying_from": N``: from bar N on, a small market BUY on every bar (``"keep_trying_with":
  "emulated-bracket"``: an emulated bracket resting 20 % below), the orders a halted strategy must never
  get through;
- ``"resubmit_on_cancel": true``: a small market BUY whenever one of its orders is canceled
  (a strategy re-quoting), so it tries to trade again the moment a halt cancels its orders.

A step on bar 0 runs when the strategy starts, before any bar (a market order then has no
price to be checked against).

Every order it submits and every event of its orders is appended to ``events_path`` as a
JSON line, so a test can tell, after the process is gone, what was accepted and what denied.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import OrderSide, OrderType, TriggerType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price
from nautilus_trader.trading.strategy import Strategy

PATH = "tests.support.scripted"


class ScriptedConfig(StrategyConfig, frozen=True):
    instrument_id: str
    bar_type: str
    steps: list[dict[str, Any]] = []  # noqa: RUF012  (msgspec copies defaults)
    keep_trying_from: int | None = None
    keep_trying_quantity: str = "0.001"
    keep_trying_with: str = "market"  # or "emulated-bracket"
    resubmit_on_cancel: bool = False
    events_path: str | None = None


class ScriptedStrategy(Strategy):
    def __init__(self, config: ScriptedConfig) -> None:
        super().__init__(config)
        self.bars = 0
        self._file: Any = None

    def on_start(self) -> None:
        self.instrument_id = InstrumentId.from_str(self.config.instrument_id)
        self.instrument = self.cache.instrument(self.instrument_id)
        if self.config.events_path:
            self._file = open(self.config.events_path, "a", buffering=1)  # noqa: SIM115  (closed on dispose)
        self.subscribe_bars(BarType.from_str(self.config.bar_type))
        for step in self.config.steps:
            if step["bar"] == 0:
                self._do(step, None)

    def on_dispose(self) -> None:
        if self._file is not None:
            self._file.close()

    def _write(self, **row: Any) -> None:
        if self._file is not None:
            self._file.write(json.dumps({"wall": time.time(), "bar": self.bars, **row}) + "\n")

    def on_bar(self, bar: Bar) -> None:
        self.bars += 1
        for step in self.config.steps:
            if step["bar"] == self.bars:
                self._do(step, bar)
        start = self.config.keep_trying_from
        if start is not None and self.bars >= start:
            if self.config.keep_trying_with == "emulated-bracket":
                self._submit_bracket(OrderSide.BUY, self.config.keep_trying_quantity, -0.2, True, "keep-trying", bar)
            else:
                self._submit_market(OrderSide.BUY, self.config.keep_trying_quantity, "keep-trying")

    def _do(self, step: dict[str, Any], bar: Bar | None) -> None:
        side = OrderSide.BUY if step.get("side", "BUY") == "BUY" else OrderSide.SELL
        if step["do"] == "market":
            self._submit_market(side, step["quantity"], step.get("tag", "scripted"))
        elif step["do"] == "bracket":
            self._submit_bracket(
                side,
                step["quantity"],
                float(step.get("offset", -0.2)),
                bool(step.get("emulated", False)),
                step.get("tag", "scripted"),
                bar,
            )
        elif step["do"] == "limit":
            assert bar is not None, "a limit step needs a bar to price it"
            price = self._on_tick(float(bar.close) * (1 + float(step.get("offset", -0.2))))
            for _ in range(int(step.get("count", 1))):
                order = self.order_factory.limit(
                    self.instrument_id,
                    side,
                    self.instrument.make_qty(Decimal(step["quantity"])),
                    price,
                    tags=[step.get("tag", "scripted")],
                )
                self._write(submit=order.client_order_id.value, tag=step.get("tag", "scripted"))
                self.submit_order(order)

    def _submit_bracket(
        self, side: OrderSide, quantity: str, offset: float, emulated: bool, tag: str, bar: Bar | None
    ) -> None:
        assert bar is not None, "a bracket step needs a bar to price it"
        entry = float(bar.close) * (1 + offset)
        sign = 1 if side == OrderSide.BUY else -1
        orders = self.order_factory.bracket(
            instrument_id=self.instrument_id,
            order_side=side,
            quantity=self.instrument.make_qty(Decimal(quantity)),
            entry_order_type=OrderType.LIMIT,
            entry_price=self._on_tick(entry),
            sl_trigger_price=self._on_tick(entry * (1 - sign * 0.05)),
            tp_price=self._on_tick(entry * (1 + sign * 0.05)),
            emulation_trigger=TriggerType.DEFAULT if emulated else TriggerType.NO_TRIGGER,
            entry_tags=[tag],
            sl_tags=[tag],
            tp_tags=[tag],
        )
        for order in orders.orders:
            self._write(submit=order.client_order_id.value, tag=tag)
        self.submit_order_list(orders)

    def _on_tick(self, value: float) -> Price:
        """``value`` on the instrument's tick: a venue's instrument may carry more decimals than its tick
        (Binance spot prices come with 8), and a price off the tick is refused (PRICE_FILTER)."""
        tick = self.instrument.price_increment.as_decimal()
        return self.instrument.make_price((Decimal(repr(value)) / tick).to_integral_value() * tick)

    def _submit_market(self, side: OrderSide, quantity: str, tag: str) -> None:
        order = self.order_factory.market(
            self.instrument_id, side, self.instrument.make_qty(Decimal(quantity)), tags=[tag]
        )
        self._write(submit=order.client_order_id.value, tag=tag)
        self.submit_order(order)

    def on_order_event(self, event: Any) -> None:
        order = self.cache.order(event.client_order_id)
        self._write(
            event=type(event).__name__,
            order=event.client_order_id.value,
            tags=list(order.tags or []) if order is not None else [],
            reason=getattr(event, "reason", None),
        )
        if self.config.resubmit_on_cancel and type(event).__name__ == "OrderCanceled":
            self._submit_market(OrderSide.BUY, self.config.keep_trying_quantity, "after-cancel")


def read_events(path: str) -> list[dict[str, Any]]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def scripted_strategy(events_path: str, instrument_id: str = "BTCUSDT.BINANCE", **config: Any) -> dict[str, Any]:
    """The ``spec.strategy`` of a scripted strategy."""
    return {
        "strategyPath": f"{PATH}:ScriptedStrategy",
        "configPath": f"{PATH}:ScriptedConfig",
        "config": {
            "instrument_id": instrument_id,
            "bar_type": f"{instrument_id}-1-MINUTE-LAST-EXTERNAL",
            "events_path": events_path,
            **config,
        },
    }
