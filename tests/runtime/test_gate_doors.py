"""The order gate's doors before the RiskEngine (the OrderEmulator's, an execution algorithm's) and the
contingent orders of a denied parent, on NautilusTrader's own message bus, cache and order factory.

The endpoints behind the gate record what reaches them; nothing else stands in for NautilusTrader. The
whole path (a strategy, the real OrderEmulator, a halt) runs in
``tests/runtime/test_risk_guard.py::test_a_strategy_with_emulated_brackets_halted_by_a_breach_leaves_no_order_of_any_kind``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import MessageBus, TestClock
from nautilus_trader.common.factories import OrderFactory
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import CancelOrder, SubmitOrder, SubmitOrderList
from nautilus_trader.model.enums import OrderSide, OrderType, TriggerType
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.identifiers import StrategyId, TraderId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.test_kit.providers import TestInstrumentProvider

from strategy_runtime.risk.gate import EMULATOR_ENDPOINT, EXEC_ENDPOINT, EXEC_EVENTS_ENDPOINT, OrderGate

TRADER = TraderId("TESTER-001")
STRATEGY = StrategyId("S-001")


class Recorder:
    """An endpoint's handler that keeps what it receives (the execution engine's ``execute`` has this shape)."""

    def __init__(self) -> None:
        self.received: list[object] = []
        self._clients: dict = {}  # the execution engine's clients: none here

    def execute(self, message: object) -> None:
        self.received.append(message)


def setup() -> tuple[OrderGate, MessageBus, Cache, Recorder, Recorder, list[OrderDenied], OrderFactory]:
    clock = TestClock()
    msgbus = MessageBus(TRADER, clock)
    cache = Cache()
    cache.add_instrument(TestInstrumentProvider.btcusdt_binance())
    engine, emulator, events = Recorder(), Recorder(), []
    msgbus.register(EXEC_ENDPOINT, engine.execute)
    msgbus.register(EMULATOR_ENDPOINT, emulator.execute)
    msgbus.register(EXEC_EVENTS_ENDPOINT, events.append)
    gate = OrderGate(max_notional=None, on_breach=lambda b: None, now=lambda: datetime.now(UTC))
    gate.install(msgbus, cache, clock, engine, {EMULATOR_ENDPOINT: emulator.execute})
    factory = OrderFactory(trader_id=TRADER, strategy_id=STRATEGY, clock=clock)
    return gate, msgbus, cache, engine, emulator, events, factory


def emulated_bracket(factory: OrderFactory):
    instrument = TestInstrumentProvider.btcusdt_binance()
    return factory.bracket(
        instrument_id=instrument.id,
        order_side=OrderSide.BUY,
        quantity=Quantity.from_str("0.010000"),
        entry_order_type=OrderType.LIMIT,
        entry_price=Price.from_str("40000.00"),
        sl_trigger_price=Price.from_str("39000.00"),
        tp_price=Price.from_str("41000.00"),
        emulation_trigger=TriggerType.BID_ASK,
    )


def test_an_emulated_bracket_sent_to_a_shut_gate_is_denied_whole_before_the_emulator_holds_it():
    gate, msgbus, cache, _, emulator, events, factory = setup()
    bracket = emulated_bracket(factory)
    for order in bracket.orders:
        cache.add_order(order)
    submit = SubmitOrderList(TRADER, STRATEGY, bracket, UUID4(), 0)

    msgbus.send(EMULATOR_ENDPOINT, submit)  # open: the emulator has it
    assert emulator.received == [submit]

    gate.shut("maxPosition: test")
    again = emulated_bracket(factory)
    for order in again.orders:
        cache.add_order(order)
    msgbus.send(EMULATOR_ENDPOINT, SubmitOrderList(TRADER, STRATEGY, again, UUID4(), 0))
    assert emulator.received == [submit], "nothing more reaches the emulator"
    assert [e.client_order_id for e in events] == [o.client_order_id for o in again.orders]
    assert all(isinstance(e, OrderDenied) and "trading is halted" in e.reason for e in events)

    cancel = CancelOrder(TRADER, STRATEGY, bracket.first.instrument_id, bracket.first.client_order_id, None, UUID4(), 0)
    msgbus.send(EMULATOR_ENDPOINT, cancel)
    assert emulator.received[-1] is cancel, "cancels pass"


def test_a_released_entry_denied_at_the_execution_engine_takes_its_waiting_stop_loss_and_take_profit_with_it():
    gate, msgbus, cache, engine, _, events, factory = setup()
    bracket = emulated_bracket(factory)
    for order in bracket.orders:
        cache.add_order(order)
    gate.hold("the ledger fence is not confirmed (test)")
    entry, stop_loss, take_profit = bracket.orders

    # what the OrderEmulator sends when a price releases the entry: SubmitOrder, straight to ExecEngine.execute
    msgbus.send(EXEC_ENDPOINT, SubmitOrder(TRADER, STRATEGY, entry, UUID4(), 0))

    assert engine.received == []
    assert [e.client_order_id for e in events] == [
        entry.client_order_id,
        stop_loss.client_order_id,
        take_profit.client_order_id,
    ]
    assert "its parent order" in events[1].reason
    assert gate.denied == 3
