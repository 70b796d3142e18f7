"""The order gate holds the strategy within its share of a RiskBudget (``status.budget``), on NautilusTrader's own
message bus, cache, positions and order factory; the execution engine behind the gate records what reaches it.

A trader's story: the operator hands this strategy a share of the desk's budget (gross and net exposure, an
instrument's exposure, open orders, reduce-only after a breach). An order that would take the strategy beyond
it is denied at the gate with an ``OrderDenied`` that says which share and by how much; an order that only
reduces a position always passes, so a share that shrinks below what the strategy holds flattens nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import MessageBus, TestClock
from nautilus_trader.common.factories import OrderFactory
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import ModifyOrder, SubmitOrder
from nautilus_trader.model.enums import OmsType, OrderSide
from nautilus_trader.model.events import OrderDenied, OrderModifyRejected
from nautilus_trader.model.identifiers import PositionId, StrategyId, TraderId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.model.position import Position
from nautilus_trader.test_kit.providers import TestInstrumentProvider
from nautilus_trader.test_kit.stubs.data import TestDataStubs
from nautilus_trader.test_kit.stubs.events import TestEventStubs

from strategy_runtime.risk.breach import GATE_REASON_PREFIX, Breach
from strategy_runtime.risk.gate import EXEC_ENDPOINT, EXEC_EVENTS_ENDPOINT, OrderGate
from strategy_runtime.risk.limits import LimitsTracker, PnlShare
from strategy_runtime.risk.share import read_share

TRADER = TraderId("TESTER-001")
STRATEGY = StrategyId("S-001")
BTC = TestInstrumentProvider.btcusdt_binance()
ETH = TestInstrumentProvider.ethusdt_binance()


class Desk:
    """A gate on a message bus with a cache holding BTC and ETH quotes; the engine behind it records orders."""

    def __init__(self, *, max_notional=None) -> None:
        self.clock = TestClock()
        self.msgbus = MessageBus(TRADER, self.clock)
        self.cache = Cache()
        for instrument, bid, ask in ((BTC, 39999.0, 40001.0), (ETH, 1999.0, 2001.0)):
            self.cache.add_instrument(instrument)
            self.cache.add_quote_tick(TestDataStubs.quote_tick(instrument, bid_price=bid, ask_price=ask))
        self.reached: list[object] = []
        self.denials: list[OrderDenied] = []
        self.modify_rejections: list[OrderModifyRejected] = []
        self.breaches: list[Breach] = []
        self._clients: dict = {}  # the execution engine's clients: none here
        self.msgbus.register(EXEC_ENDPOINT, self.execute)
        self.msgbus.register(EXEC_EVENTS_ENDPOINT, self._event)
        self.gate = OrderGate(max_notional=max_notional, on_breach=self.breaches.append, now=lambda: datetime.now(UTC))
        self.gate.install(self.msgbus, self.cache, self.clock, self)
        self.factory = OrderFactory(trader_id=TRADER, strategy_id=STRATEGY, clock=self.clock)
        self._positions = 0

    def execute(self, command: object) -> None:
        self.reached.append(command)

    def _event(self, event: object) -> None:
        if isinstance(event, OrderDenied):
            self.denials.append(event)
        elif isinstance(event, OrderModifyRejected):
            self.modify_rejections.append(event)

    def share(self, **fields) -> None:
        """The operator's ``status.budget`` for this strategy, as the status push's answer carries it."""
        self.gate.set_share(read_share({"budget": "desk-usdt", "weight": 0.5, **fields}))

    def holding(self, instrument, side: OrderSide, quantity: str, price: str) -> None:
        """A filled position the strategy holds now."""
        order = self.factory.market(instrument.id, side, Quantity.from_str(quantity))
        self._positions += 1
        fill = TestEventStubs.order_filled(
            order,
            instrument,
            position_id=PositionId(f"P-{self._positions}"),
            last_px=Price.from_str(price),
        )
        self.cache.add_position(Position(instrument, fill), OmsType.NETTING)

    def working(self, instrument, side: OrderSide, quantity: str, price: str):
        """A limit order accepted by the venue, not filled yet."""
        order = self.factory.limit(instrument.id, side, Quantity.from_str(quantity), Price.from_str(price))
        self.cache.add_order(order)
        order.apply(TestEventStubs.order_submitted(order))
        self.cache.update_order(order)
        order.apply(TestEventStubs.order_accepted(order))
        self.cache.update_order(order)
        return order

    def modify(self, order, quantity: str) -> bool:
        """The strategy raises or lowers a working order's quantity; True if the modification passed the gate."""
        before = len(self.reached)
        command = ModifyOrder(
            trader_id=TRADER,
            strategy_id=STRATEGY,
            instrument_id=order.instrument_id,
            client_order_id=order.client_order_id,
            venue_order_id=order.venue_order_id,
            quantity=Quantity.from_str(quantity),
            price=None,
            trigger_price=None,
            command_id=UUID4(),
            ts_init=0,
        )
        self.msgbus.send(EXEC_ENDPOINT, command)
        return len(self.reached) > before

    def send(self, instrument, side: OrderSide, quantity: str, price: str | None = None, *, reduce_only=False):
        """The strategy submits an order (a limit order at ``price``, else a market order); True if it passed."""
        qty = Quantity.from_str(quantity)
        if price is None:
            order = self.factory.market(instrument.id, side, qty, reduce_only=reduce_only)
        else:
            order = self.factory.limit(instrument.id, side, qty, Price.from_str(price), reduce_only=reduce_only)
        before = len(self.reached)
        self.msgbus.send(
            EXEC_ENDPOINT,
            SubmitOrder(trader_id=TRADER, strategy_id=STRATEGY, order=order, command_id=UUID4(), ts_init=0),
        )
        return len(self.reached) > before

    def last_denial(self) -> str:
        return self.denials[-1].reason


def test_an_order_that_would_take_gross_exposure_beyond_the_share_is_denied_and_one_within_it_passes():
    desk = Desk()
    desk.holding(BTC, OrderSide.BUY, "0.100000", "40000.00")  # 4000 USDT held
    desk.share(maxGrossExposure="5000 USDT")

    assert desk.send(BTC, OrderSide.BUY, "0.020000", "40000.00")  # 4800 after: within
    assert not desk.send(BTC, OrderSide.BUY, "0.030000", "40000.00")  # 5200 after: beyond

    reason = desk.last_denial()
    assert reason.startswith(GATE_REASON_PREFIX)
    assert "gross exposure to 5200.00 USDT" in reason and "RiskBudget desk-usdt maxGrossExposure 5000 USDT" in reason
    assert desk.gate.denied == 1 and desk.gate.share_denied == 1
    assert desk.breaches == []  # held within the share before a trade: nothing broke


def test_a_market_order_is_valued_at_the_price_the_gate_uses_for_max_notional():
    desk = Desk()
    desk.share(maxGrossExposure="4000 USDT")

    assert not desk.send(BTC, OrderSide.BUY, "0.100000")  # at the ask 40001: 4000.10 > 4000
    assert "4000.10 USDT" in desk.last_denial()
    assert desk.send(BTC, OrderSide.SELL, "0.099990")  # at the bid 39999: 3999.50, a short within the share


def test_working_orders_on_the_same_side_count_as_if_they_filled():
    desk = Desk()
    desk.working(BTC, OrderSide.BUY, "0.100000", "40000.00")
    desk.share(maxGrossExposure="5000 USDT")

    assert not desk.send(BTC, OrderSide.BUY, "0.030000", "40000.00")  # 0.13 BTC if both fill: 5200
    assert desk.send(BTC, OrderSide.SELL, "0.030000", "40000.00")  # the other side: a short of 1200 at most


def test_a_working_order_raised_beyond_the_share_is_rejected_and_one_lowered_passes():
    desk = Desk()
    resting = desk.working(BTC, OrderSide.BUY, "0.100000", "40000.00")  # 4000 USDT if it fills
    desk.share(maxGrossExposure="5000 USDT", maxOpenOrders=1)

    assert desk.modify(resting, "0.120000")  # 4800: within (and no new working order)
    assert not desk.modify(resting, "0.150000")  # 6000: beyond
    reason = desk.modify_rejections[-1].reason
    assert reason.startswith(GATE_REASON_PREFIX)
    assert f"modification of {resting.client_order_id} to 0.150000" in reason and "maxGrossExposure 5000 USDT" in reason
    assert desk.modify(resting, "0.050000")


def test_net_exposure_lets_a_hedge_through_and_denies_what_adds_to_the_net():
    desk = Desk()
    desk.holding(BTC, OrderSide.BUY, "0.100000", "40000.00")  # +4000 USDT
    desk.share(maxNetExposure="5000 USDT")

    assert not desk.send(ETH, OrderSide.BUY, "1.00000", "2000.00")  # net +6000
    assert "net exposure to 6000.00 USDT" in desk.last_denial()
    assert desk.send(ETH, OrderSide.SELL, "3.00000", "2000.00")  # net -2000 + 4000: a hedge, within


def test_an_instrument_share_binds_that_instrument_only():
    desk = Desk()
    desk.share(instruments=[{"instrument": "BTCUSDT.BINANCE", "maxGrossExposure": "3000 USDT"}])

    assert not desk.send(BTC, OrderSide.BUY, "0.100000", "40000.00")
    assert "instruments[BTCUSDT.BINANCE].maxGrossExposure 3000 USDT" in desk.last_denial()
    assert desk.send(ETH, OrderSide.BUY, "2.00000", "2000.00")  # 4000 USDT of ETH: no share binds it


def test_open_orders_beyond_the_share_are_denied_and_a_reducing_order_still_passes():
    desk = Desk()
    desk.holding(BTC, OrderSide.BUY, "0.100000", "40000.00")
    desk.working(ETH, OrderSide.BUY, "1.00000", "1900.00")
    desk.working(ETH, OrderSide.BUY, "1.00000", "1800.00")
    desk.share(maxOpenOrders=2)

    assert not desk.send(ETH, OrderSide.BUY, "1.00000", "1700.00")
    assert "3 working orders, over this strategy's share of RiskBudget desk-usdt maxOpenOrders 2" in desk.last_denial()
    assert desk.send(BTC, OrderSide.SELL, "0.050000", "40100.00")  # takes profit on what it holds


def test_reduce_only_lets_only_orders_that_shrink_a_position_through():
    desk = Desk()
    desk.holding(BTC, OrderSide.BUY, "0.100000", "40000.00")
    desk.share(maxGrossExposure="1000000 USDT", reduceOnly=True)

    assert not desk.send(BTC, OrderSide.BUY, "0.001000", "40000.00")
    assert "onBreach ReduceOnly" in desk.last_denial()
    assert not desk.send(ETH, OrderSide.SELL, "0.10000", "2000.00")  # a new short is a new position
    assert not desk.send(BTC, OrderSide.SELL, "0.200000", "40000.00")  # through zero: a short of 0.1 opens
    assert desk.send(BTC, OrderSide.SELL, "0.060000", "40000.00")
    assert desk.send(BTC, OrderSide.SELL, "0.100000", "40000.00", reduce_only=True)


def test_a_share_shrunk_below_what_is_held_flattens_nothing_and_only_stops_it_growing():
    desk = Desk()
    desk.holding(BTC, OrderSide.BUY, "0.100000", "40000.00")  # 4000 USDT
    desk.share(maxGrossExposure="8000 USDT")
    assert desk.send(BTC, OrderSide.BUY, "0.010000", "40000.00")

    desk.share(maxGrossExposure="1000 USDT", observedGeneration=2)  # the budget's weights changed mid-run

    assert len(desk.reached) == 1  # the gate sent nothing of its own: no flattening nobody asked for
    assert not desk.send(BTC, OrderSide.BUY, "0.001000", "40000.00")
    assert desk.send(BTC, OrderSide.SELL, "0.050000", "40000.00")  # still 2000 USDT, above the share: it shrinks

    desk.gate.set_share(None)  # the strategy left the budget
    assert desk.send(BTC, OrderSide.BUY, "0.100000", "40000.00")


def test_a_share_in_another_currency_does_not_count_notional_in_this_one():
    desk = Desk()
    desk.share(maxGrossExposure="10 USD")  # the instruments here are quoted in USDT

    assert desk.send(BTC, OrderSide.BUY, "0.100000", "40000.00")


def test_an_order_beyond_the_share_is_denied_with_max_notional_set_as_well():
    desk = Desk(max_notional=100000)
    desk.share(maxGrossExposure="1000 USDT")

    assert not desk.send(BTC, OrderSide.BUY, "0.100000", "40000.00")
    assert desk.breaches == []
    assert "maxGrossExposure 1000 USDT" in desk.last_denial()


# --------------------------------------------------------------------------- daily loss and drawdown: the guard's checks


def paper_limits(**limits: float) -> LimitsTracker:
    started = LimitsTracker(now=lambda: BREACH_AT, **limits)
    started.start(clock_ns=0)
    return started


BREACH_AT = datetime(2024, 1, 2, tzinfo=UTC)


def test_the_tighter_of_the_own_daily_loss_and_the_share_breaks_and_the_reason_names_which():
    limits = paper_limits(max_daily_loss=1000)
    limits.mark("BTCUSDT.BINANCE", ("USDT", -300.0))
    assert limits.check_pnl() is None

    limits.share(PnlShare(budget="desk-usdt", currency="USDT", daily=Decimal(250), drawdown=None))
    assert limits.watches_pnl

    breach = limits.check_pnl()
    assert breach is not None and breach.limit == "maxDailyLoss"
    assert "below -250 (this strategy's share of RiskBudget desk-usdt maxDailyLoss" in breach.reason

    limits.share(PnlShare(budget="desk-usdt", currency="USDT", daily=Decimal(5000), drawdown=None))
    limits.mark("BTCUSDT.BINANCE", ("USDT", -1200.0))  # the own limit is the tighter one now
    breach = limits.check_pnl()
    assert breach is not None and "below -1000 (maxDailyLoss" in breach.reason


def test_a_drawdown_share_binds_a_strategy_without_limits_of_its_own_in_the_budgets_currency_only():
    limits = paper_limits()
    assert not limits.watches_pnl
    limits.share(PnlShare(budget="desk-usdt", currency="USDT", daily=None, drawdown=Decimal(100)))
    limits.mark("ETHBTC.BINANCE", ("BTC", -5.0))  # another currency: not the budget's
    limits.mark("BTCUSDT.BINANCE", ("USDT", -99.0))
    assert limits.check_pnl() is None
    # the price watch's band stays inside the share (its low edge is the largest drawdown seen, 99, the nearer)
    assert limits.pnl_room("USDT")[0] == -99.0

    limits.mark("BTCUSDT.BINANCE", ("USDT", -100.0))
    breach = limits.check_pnl()
    assert breach is not None and breach.limit == "maxDrawdown"
    assert "(this strategy's share of RiskBudget desk-usdt maxDrawdown 100)" in breach.reason

    limits.share(None)
    assert not limits.watches_pnl and limits.check_pnl() is None
