"""Strategies and actors the runtime tests run by import path (``tests.support.strategies:…``).

Every strategy here takes its notion of time from the bars it receives, never from its
clock: a paper node's clock is wall time, a backtest's is market time, and a strategy that
reads the clock cannot behave the same in both (docs/runtime.md, "Backtest oracle").
"""

from __future__ import annotations

import json
import os
from decimal import Decimal

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.config import StrategyConfig
from nautilus_trader.examples.strategies.ema_cross import EMACrossConfig
from nautilus_trader.examples.strategies.ema_cross_twap import EMACrossTWAP
from nautilus_trader.indicators import AverageTrueRange, ExponentialMovingAverage
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import OrderSide, OrderType, TimeInForce, TriggerType
from nautilus_trader.model.events import OrderCanceled, OrderExpired, OrderFilled
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy


class BracketOnCrossConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId
    bar_type: BarType
    trade_size: Decimal
    fast_ema_period: int = 10
    slow_ema_period: int = 20
    atr_period: int = 20
    entry_offset_atr: float = 0.3
    bracket_distance_atr: float = 1.5
    entry_timeout_bars: int = 5
    emulation_trigger: str = "NO_TRIGGER"  # a TriggerType name: the whole bracket held by the OrderEmulator


class BracketOnCross(Strategy):
    """On an EMA cross, when flat: a bracket whose entry is a resting LIMIT order a fraction of an
    ATR away from the close, with a STOP_MARKET stop-loss and a LIMIT take-profit (OTO, then OUO),
    all GTC. An entry still unfilled after ``entry_timeout_bars`` bars is cancelled. With an
    ``emulation_trigger`` (as NautilusTrader's ema_cross_bracket example) the node's OrderEmulator
    holds the orders and releases each when the quotes or trades reach its price."""

    def __init__(self, config: BracketOnCrossConfig) -> None:
        super().__init__(config)
        self.atr = AverageTrueRange(config.atr_period)
        self.fast = ExponentialMovingAverage(config.fast_ema_period)
        self.slow = ExponentialMovingAverage(config.slow_ema_period)
        self.bars_since_entry = 0

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.config.instrument_id)
        for indicator in (self.atr, self.fast, self.slow):
            self.register_indicator_for_bars(self.config.bar_type, indicator)
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        if not self.indicators_initialized():
            return
        iid = self.config.instrument_id
        open_orders = self.cache.orders_open(instrument_id=iid, strategy_id=self.id) + self.cache.orders_emulated(
            instrument_id=iid, strategy_id=self.id
        )
        if self.portfolio.is_flat(iid) and open_orders:
            self.bars_since_entry += 1
            if self.bars_since_entry > self.config.entry_timeout_bars:
                self.cancel_all_orders(iid)
            return
        if not self.portfolio.is_flat(iid) or open_orders:
            return
        side = OrderSide.BUY if self.fast.value >= self.slow.value else OrderSide.SELL
        sign = 1 if side == OrderSide.BUY else -1
        close = bar.close.as_double()
        entry = close - sign * self.config.entry_offset_atr * self.atr.value
        distance = self.config.bracket_distance_atr * self.atr.value
        orders = self.order_factory.bracket(
            instrument_id=iid,
            order_side=side,
            quantity=self.instrument.make_qty(self.config.trade_size),
            time_in_force=TimeInForce.GTC,
            entry_order_type=OrderType.LIMIT,
            entry_price=self.instrument.make_price(entry),
            sl_trigger_price=self.instrument.make_price(entry - sign * distance),
            tp_price=self.instrument.make_price(entry + sign * distance),
            emulation_trigger=TriggerType[self.config.emulation_trigger],
        )
        self.bars_since_entry = 0
        self.submit_order_list(orders)

    def on_stop(self) -> None:
        self.cancel_all_orders(self.config.instrument_id)
        self.close_all_positions(self.config.instrument_id)


class LimitProbeConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId
    bar_type: BarType
    trade_size: Decimal


class LimitProbe(Strategy):
    """On the first bar: one BUY LIMIT of ``trade_size`` at half the close (it rests: nothing fills)."""

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.config.instrument_id)
        self.subscribe_bars(self.config.bar_type)
        self.sent = False

    def on_bar(self, bar: Bar) -> None:
        if self.sent:
            return
        self.sent = True
        order = self.order_factory.limit(
            instrument_id=self.config.instrument_id,
            order_side=OrderSide.BUY,
            quantity=self.instrument.make_qty(self.config.trade_size),
            price=self.instrument.make_price(bar.close.as_double() / 2),
        )
        self.submit_order(order)


class QuoteLadderConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId
    bar_type: BarType
    trade_size: Decimal
    distance: Decimal = Decimal("0.0005")  # of the close, each side
    max_open: int = 6


class QuoteLadder(Strategy):
    """On every bar: a BUY LIMIT below the close and a SELL LIMIT above it, ``distance`` away (GTC, on the tick),
    so a random walk fills some of them bars later, whether or not the runtime is there to see it; beyond
    ``max_open`` of its orders open it cancels the oldest. Live tests only (it trades on every bar)."""

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.config.instrument_id)
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        close = bar.close.as_decimal()
        tick = self.instrument.price_increment.as_decimal()
        for side, sign in ((OrderSide.BUY, -1), (OrderSide.SELL, 1)):
            price = (close * (1 + sign * self.config.distance) / tick).to_integral_value() * tick
            order = self.order_factory.limit(
                instrument_id=self.config.instrument_id,
                order_side=side,
                quantity=self.instrument.make_qty(self.config.trade_size),
                price=self.instrument.make_price(price),
                time_in_force=TimeInForce.GTC,
            )
            self.submit_order(order)
        mine = sorted(self.cache.orders_open(strategy_id=self.id), key=lambda o: o.ts_init)
        for order in mine[: max(0, len(mine) - self.config.max_open)]:
            if not order.is_pending_cancel:
                self.cancel_order(order)


class RestingGridConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId
    bar_type: BarType
    trade_size: Decimal
    levels: int = 3
    below: Decimal = Decimal("0.2")  # the first level's distance under the close; each next one 1 % further
    events_path: str | None = None


class RestingGrid(Strategy):
    """A grid that minds its own: it buys ``trade_size`` at market once when it holds no position of its own,
    and keeps ``levels`` BUY LIMITs of its own resting far below the market, placing on each bar the levels its
    own open (or in-flight) orders lack. What it sees as its own (``cache.orders_open(strategy_id=self.id)``,
    ``cache.positions_open(strategy_id=self.id)``) is appended to ``events_path`` on start and on every bar, one
    JSON line each, with the process id: a restart that does not give it back its orders and its position makes it
    place them again. It records too every fill it is told of (``filled``) and every order of its own that ends unfilled
    (``ended``, canceled or expired), with what it holds at that moment. Live tests only."""

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.config.instrument_id)
        self.bought = False
        self._record("start")
        self.subscribe_bars(self.config.bar_type)

    def _own_working(self) -> list:
        iid, sid = self.config.instrument_id, self.id
        working = self.cache.orders_open(instrument_id=iid, strategy_id=sid) + self.cache.orders_inflight(
            instrument_id=iid, strategy_id=sid
        )
        return [o for o in working if o.order_type == OrderType.LIMIT]

    def _record(self, what: str, **more: object) -> None:
        if not self.config.events_path:
            return
        positions = self.cache.positions_open(instrument_id=self.config.instrument_id, strategy_id=self.id)
        row = {
            "what": what,
            "pid": os.getpid(),
            "own_open": sorted(o.client_order_id.value for o in self._own_working()),
            "own_position": str(sum((p.signed_decimal_qty() for p in positions), Decimal(0))),
            "own_positions": len(positions),
            "all_open": len(self.cache.orders_open(instrument_id=self.config.instrument_id)),
            **more,
        }
        with open(self.config.events_path, "a") as f:
            f.write(json.dumps(row) + "\n")

    def on_order_filled(self, event: OrderFilled) -> None:
        # Every fill the strategy is told of: one it was told twice is one it could trade on twice.
        self._record("filled", order=event.client_order_id.value, trade=event.trade_id.value)

    def on_order_canceled(self, event: OrderCanceled) -> None:
        # What it holds as its own the moment an order of its own ends without filling (the venue's own cancels too).
        self._record("ended", order=event.client_order_id.value, how="canceled")

    def on_order_expired(self, event: OrderExpired) -> None:
        self._record("ended", order=event.client_order_id.value, how="expired")

    def on_bar(self, bar: Bar) -> None:
        self._record("bar")
        iid = self.config.instrument_id
        if not self.bought and not self.cache.positions_open(instrument_id=iid, strategy_id=self.id):
            self.bought = True
            order = self.order_factory.market(iid, OrderSide.BUY, self.instrument.make_qty(self.config.trade_size))
            self._record("buy", submitted=order.client_order_id.value)
            self.submit_order(order)
        missing = self.config.levels - len(self._own_working())
        close, tick = bar.close.as_decimal(), self.instrument.price_increment.as_decimal()
        for level in range(missing):
            price = close * (1 - self.config.below - Decimal("0.01") * level)
            order = self.order_factory.limit(
                instrument_id=iid,
                order_side=OrderSide.BUY,
                quantity=self.instrument.make_qty(self.config.trade_size),
                price=self.instrument.make_price((price / tick).to_integral_value() * tick),
                time_in_force=TimeInForce.GTC,
            )
            self._record("limit", submitted=order.client_order_id.value)
            self.submit_order(order)


class ShutdownRequesterConfig(StrategyConfig, frozen=True):
    bar_type: BarType
    after_bars: int = 3


class ShutdownRequester(Strategy):
    """Asks the system to shut down (as an engine does after an unexpected error) on bar ``after_bars``."""

    def on_start(self) -> None:
        self.seen = 0
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        self.seen += 1
        if self.seen == self.config.after_bars:
            self.shutdown_system("test: the strategy asks for a shutdown")


class EventRecorderConfig(ActorConfig, frozen=True):
    pass


class EventRecorder(Actor):
    """Records every order and position event and the replay progress seen at each bar."""

    def __init__(self, config: EventRecorderConfig | None = None) -> None:
        super().__init__(config or EventRecorderConfig())
        self.order_events: list[object] = []
        self.position_events: list[object] = []

    def on_start(self) -> None:
        # Raw message bus subscriptions keep firing after the actor stops, so the fills of the
        # strategies' on_stop (which come after the actors stopped) are recorded too.
        self.msgbus.subscribe("events.order.*", self.order_events.append)
        self.msgbus.subscribe("events.position.*", self.position_events.append)

    def on_dispose(self) -> None:
        self.msgbus.unsubscribe("events.order.*", self.order_events.append)
        self.msgbus.unsubscribe("events.position.*", self.position_events.append)


class EMACrossConfigWithNote(EMACrossConfig, frozen=True):
    """NautilusTrader's EMACrossConfig extended, as a user's own config class for the stock strategy would be."""

    note: str = ""


class ReversalOnCrossConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId
    bar_type: BarType
    trade_size: Decimal
    fast_ema_period: int = 10
    slow_ema_period: int = 20


class ReversalOnCross(Strategy):
    """Always in the market: on each EMA cross it goes from long to short (or back) in ONE market order of
    twice its size, the flip NautilusTrader 1.221 booked wrongly (no history of the closed side)."""

    def __init__(self, config: ReversalOnCrossConfig) -> None:
        super().__init__(config)
        self.fast = ExponentialMovingAverage(config.fast_ema_period)
        self.slow = ExponentialMovingAverage(config.slow_ema_period)

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.config.instrument_id)
        self.register_indicator_for_bars(self.config.bar_type, self.fast)
        self.register_indicator_for_bars(self.config.bar_type, self.slow)
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        if not self.indicators_initialized():
            return
        iid = self.config.instrument_id
        want = OrderSide.BUY if self.fast.value >= self.slow.value else OrderSide.SELL
        if want == OrderSide.BUY and self.portfolio.is_net_long(iid):
            return
        if want == OrderSide.SELL and self.portfolio.is_net_short(iid):
            return
        size = self.config.trade_size * (1 if self.portfolio.is_flat(iid) else 2)
        self.submit_order(self.order_factory.market(iid, want, self.instrument.make_qty(size)))

    def on_stop(self) -> None:
        self.close_all_positions(self.config.instrument_id)


class EMACrossTWAPFromBars(EMACrossTWAP):
    """NautilusTrader's ``ema_cross_twap`` example (orders through the TWAP execution algorithm), without its
    history request at start: it asks for the last day of the *clock's* time, wall time in a paper node and
    market time in a backtest, which cannot be compared (docs/runtime.md, "Backtest oracle")."""

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.config.instrument_id)
        self.register_indicator_for_bars(self.config.bar_type, self.fast_ema)
        self.register_indicator_for_bars(self.config.bar_type, self.slow_ema)
        self.subscribe_bars(self.config.bar_type)
