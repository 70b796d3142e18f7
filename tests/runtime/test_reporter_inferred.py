"""A venue's trade of an order NautilusTrader filled by inference reaches the ledger and the books at once.

During a run the open-order check (``open_check_interval_secs``) can meet an order's status ahead of a trade the
user-data stream delivers late: NautilusTrader infers a fill for the difference, then rejects the late trade as an
overfill (``ExecutionEngine._check_overfill``: logged, never published on the order topic). The reporter sees the
trade where every execution event enters the engine (the ``ExecEngine.process`` endpoint), and records it there when
its order has an inferred fill: the ledger's rule lets it supersede the inferred fill (docs/ledger.md, "Inferred
fills superseded"), rather than at the halt (``record_undelivered``). Real NautilusTrader message bus, cache, events;
the engine behind the endpoint drops the event as the overfill check does; the ledger is a recorder of what it was
given (the ledger itself is tested in test_ledger_superseded.py).
"""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import MessageBus, TestClock
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import PositionId, TradeId, TraderId, VenueOrderId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.portfolio.portfolio import Portfolio
from nautilus_trader.test_kit.providers import TestInstrumentProvider
from nautilus_trader.test_kit.stubs.events import TestEventStubs
from nautilus_trader.test_kit.stubs.execution import TestExecStubs

from strategy_runtime.ledger import FillRecord
from strategy_runtime.report.reporter import INFERRED_FILL_METHOD, Reporter, ReporterConfig
from strategy_runtime.risk.gate import EXEC_EVENTS_ENDPOINT

BTC = TestInstrumentProvider.btcusdt_binance()


class Recorded:
    """What the reporter handed the ledger, in order."""

    def __init__(self) -> None:
        self.fills: list[FillRecord] = []

    def record(self, fill: FillRecord) -> None:
        self.fills.append(fill)


def test_a_late_trade_of_an_order_filled_by_inference_is_recorded_though_the_engine_rejects_it_as_an_overfill():
    clock = TestClock()
    msgbus = MessageBus(TraderId("TESTER-001"), clock)
    cache = Cache()
    cache.add_instrument(BTC)
    ledger = Recorded()
    reporter = Reporter(ReporterConfig(strategy_key="desk/late", instrument_ids=(BTC.id.value,)), ledger=ledger)
    reporter.register_base(Portfolio(msgbus, cache, clock), msgbus, cache, clock)
    booked: list[str] = []
    reporter.on_fill(lambda record: booked.append(record.trade_id))

    order = TestExecStubs.limit_order(instrument=BTC, order_side=OrderSide.SELL, quantity=Quantity.from_str("1.000000"))
    venue_order_id = VenueOrderId("5001")
    engine_saw: list[object] = []

    def engine(event: object) -> None:  # the overfill check: the event is dropped, never published
        engine_saw.append(event)

    def infer(order, report, instrument):
        return TestEventStubs.order_filled(
            order,
            BTC,
            venue_order_id=venue_order_id,
            trade_id=TradeId("random-uuid"),
            last_px=Price.from_str("40000.00"),
        )

    msgbus.register(EXEC_EVENTS_ENDPOINT, engine)
    exec_engine = SimpleNamespace(**{INFERRED_FILL_METHOD: infer})
    reporter.attach(exec_engine, events_handler=engine)
    # the open-order check: the venue says the order is filled, its trade has not come
    report = SimpleNamespace(venue_order_id=venue_order_id, filled_qty=Quantity.from_str("1.000000"))
    filled = getattr(exec_engine, INFERRED_FILL_METHOD)(order, report, BTC)
    reporter._on_order_event(filled)  # the inferred fill is published: recorded under its marked id
    assert [f.trade_id for f in ledger.fills] == ["INFERRED-5001-1"]

    late = TestEventStubs.order_filled(
        order, BTC, venue_order_id=venue_order_id, trade_id=TradeId("T-77"), last_px=Price.from_str("40010.00")
    )
    # the engine gave the order its position with the inferred fill; the rejected trade never gets one of its own
    position_id = PositionId("BTCUSDT.BINANCE-S-001")
    cache.add_position_id(position_id, BTC.id.venue, order.client_order_id, order.strategy_id)
    msgbus.send(EXEC_EVENTS_ENDPOINT, late)
    assert engine_saw == [late]
    assert late.position_id is None and ledger.fills[-1].position_id == position_id.value
    assert [f.trade_id for f in ledger.fills] == ["INFERRED-5001-1", "T-77"]  # at once, not at the halt
    assert booked == ["INFERRED-5001-1", "T-77"]
    assert ledger.fills[1].quantity == Decimal(1)

    reporter._on_order_event(late)  # had the engine published it after all: recorded once
    assert [f.trade_id for f in ledger.fills] == ["INFERRED-5001-1", "T-77"]
    assert reporter.record_undelivered() == 0

    other = TestExecStubs.limit_order(instrument=BTC, order_side=OrderSide.BUY, quantity=Quantity.from_str("1.000000"))
    unrelated = TestEventStubs.order_filled(other, BTC, venue_order_id=VenueOrderId("5002"), trade_id=TradeId("T-78"))
    msgbus.send(EXEC_EVENTS_ENDPOINT, unrelated)  # no inferred fill of its order: the bus's delivery records it
    assert [f.trade_id for f in ledger.fills] == ["INFERRED-5001-1", "T-77"]


def test_the_trades_start_up_reconciliation_listed_are_let_go_once_the_node_runs():
    # Kept to record the trades of an order NautilusTrader infers a fill of while it reconciles; a long run would
    # otherwise hold every trade the venue listed at start for its whole life.
    from strategy_runtime.live.reconciliation import LISTED_TRADES_TOPIC
    from tests.runtime.test_binance_reconciliation import fill_report

    clock = TestClock()
    msgbus = MessageBus(TraderId("TESTER-001"), clock)
    cache = Cache()
    cache.add_instrument(BTC)
    reporter = Reporter(ReporterConfig(strategy_key="desk/late", instrument_ids=(BTC.id.value,)), ledger=Recorded())
    reporter.register_base(Portfolio(msgbus, cache, clock), msgbus, cache, clock)
    reporter.attach()
    msgbus.publish(f"{LISTED_TRADES_TOPIC}.BINANCE", [fill_report("V-1", "T-1", 1), fill_report("V-2", "T-2", 2)])
    assert len(reporter._listed) == 2
    reporter.record_cached_fills()  # the node runs: start-up reconciliation is over
    assert (reporter._listed, reporter._recorded_listed) == ({}, set())

    # During the run the position check lists the trades it finds missing, one report at a time, and the engine
    # reconciles them itself: none is kept (only an order this run inferred a fill of has its trades recorded).
    from strategy_runtime.report.reporter import REPORTS_TOPIC

    for n in range(3, 6):
        msgbus.publish(REPORTS_TOPIC.replace("*", "BINANCE.BTCUSDT"), fill_report(f"V-{n}", f"T-{n}", n))
    msgbus.publish(f"{LISTED_TRADES_TOPIC}.BINANCE", [fill_report("V-6", "T-6", 6)])
    assert reporter._listed == {}


@pytest.mark.parametrize("next_day", [False, True])
def test_the_risk_guard_checks_at_once_the_loss_a_late_venue_trade_books_over_an_inferred_fill(next_day):
    """The venue's late trade, recorded over an inferred fill, moves the guard's realized PnL (at its own price and
    commission) but the node applies no such trade: no position event follows to check it. The guard checks it as it
    books it: the status shows it, and a limit it breaks halts now, not at the next price (which may be long). A trade
    after midnight opens the new day first: its loss is the new day's (``dailyPnlDay``), not the day before's."""
    from datetime import UTC, datetime

    from strategy_runtime.risk.guard import RiskGuard, RiskGuardConfig
    from strategy_runtime.risk.limits import PnlHistory

    clock = TestClock()
    msgbus = MessageBus(TraderId("TESTER-001"), clock)
    cache = Cache()
    cache.add_instrument(BTC)
    portfolio = Portfolio(msgbus, cache, clock)
    ledger = Recorded()
    reporter = Reporter(ReporterConfig(strategy_key="desk/late", instrument_ids=(BTC.id.value,)), ledger=ledger)
    reporter.register_base(portfolio, msgbus, cache, clock)
    breaches = []
    guard = RiskGuard(
        RiskGuardConfig(instrument_ids=(BTC.id.value,), max_daily_loss=500.0),
        on_breach=breaches.append,
        history=PnlHistory(fills=[]),
        now=lambda: datetime(1970, 1, 1, 12, tzinfo=UTC),
    )
    guard.register_base(portfolio, msgbus, cache, clock)
    reporter.on_fill(guard.on_fill)
    venue_order_id = VenueOrderId("5001")

    def engine(event: object) -> None:  # the overfill check: the event is dropped, never published
        pass

    def infer(order, report, instrument):
        return TestEventStubs.order_filled(
            order, BTC, venue_order_id=venue_order_id, trade_id=TradeId("random-uuid"), last_px=Price.from_str("40000")
        )

    msgbus.register(EXEC_EVENTS_ENDPOINT, engine)
    msgbus.register("ExecEngine.execute", engine)  # the gate stands in front of it
    exec_engine = SimpleNamespace(**{INFERRED_FILL_METHOD: infer}, execute=engine)
    reporter.attach(exec_engine, events_handler=engine)
    guard.attach(exec_engine)
    guard.start()

    bought = TestExecStubs.limit_order(instrument=BTC, order_side=OrderSide.BUY, quantity=Quantity.from_str("1.000000"))
    entry = TestEventStubs.order_filled(
        bought, BTC, venue_order_id=VenueOrderId("5000"), trade_id=TradeId("T-1"), last_px=Price.from_str("40000")
    )
    reporter._on_order_event(entry)  # an ordinary fill (its position event is the node's)
    sold = TestExecStubs.limit_order(instrument=BTC, order_side=OrderSide.SELL, quantity=Quantity.from_str("1.000000"))
    report = SimpleNamespace(venue_order_id=venue_order_id, filled_qty=Quantity.from_str("1.000000"))
    reporter._on_order_event(getattr(exec_engine, INFERRED_FILL_METHOD)(sold, report, BTC))  # inferred at 40000
    guard._on_position_event(SimpleNamespace(instrument_id=BTC.id, ts_event=0))  # the node's, for the inferred fill
    assert breaches == [] and guard.risk_state().daily_pnl is not None
    inferred_day = guard.risk_state().daily_pnl

    late = TestEventStubs.order_filled(
        sold,
        BTC,
        venue_order_id=venue_order_id,
        trade_id=TradeId("T-77"),
        last_px=Price.from_str("39000"),
        ts_event=(86_400 + 3_600) * 1_000_000_000 if next_day else 0,
    )
    cache.add_position_id(PositionId("BTCUSDT.BINANCE-S-001"), BTC.id.venue, sold.client_order_id, sold.strategy_id)
    msgbus.send(EXEC_EVENTS_ENDPOINT, late)  # the venue sold at 39000: 1000 lost, the node never applies it
    assert [f.trade_id for f in ledger.fills][-1] == "T-77"
    risk = guard.risk_state()
    assert risk.daily_pnl != inferred_day, "the status shows what the venue's trade booked"
    if not next_day:  # the trade the status came from, at 39000: it supersedes the inferred fill, 1000 lost
        assert [b.limit for b in breaches] == ["maxDailyLoss"], "the loss breaks the limit now"
        assert (risk.daily_pnl_day, Decimal(risk.daily_pnl.split()[0]) < -1000) == ("1970-01-01", True)
    else:  # a trade of the order after its status, the next day: booked beside it, its commission the new day's
        assert (breaches, risk.daily_pnl_day, risk.daily_pnl) == ([], "1970-01-02", "-39.00 USDT")
