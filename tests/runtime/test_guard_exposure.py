"""``status.risk.exposure`` with a position open and no price yet (a live restart's first seconds, a strategy on
minute bars): NautilusTrader 1.231's ``Portfolio.net_exposure`` raises ``TypeError`` then (its
``_calculate_non_betting_exposure`` stores a None price into a C double). The figure is the one book's: the sum of
the positions' notionals ``status.trading.positions`` shows, and nothing for a position without a price."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import MessageBus, TestClock
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.enums import OmsType, OrderSide
from nautilus_trader.model.identifiers import AccountId, PositionId, TradeId, TraderId, VenueOrderId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.model.position import Position
from nautilus_trader.portfolio.portfolio import Portfolio
from nautilus_trader.test_kit.providers import TestInstrumentProvider
from nautilus_trader.test_kit.stubs.events import TestEventStubs
from nautilus_trader.test_kit.stubs.execution import TestExecStubs

from strategy_runtime.ledger.records import from_order_filled
from strategy_runtime.risk.guard import RiskGuard, RiskGuardConfig
from strategy_runtime.risk.limits import PnlHistory

BTC = TestInstrumentProvider.btcusdt_binance()


def test_exposure_with_a_position_open_and_no_price_is_what_the_book_can_price_and_never_an_error():
    clock = TestClock()
    msgbus = MessageBus(TraderId("TESTER-001"), clock)
    cache = Cache()
    cache.add_instrument(BTC)
    cache.add_account(TestExecStubs.cash_account(AccountId("BINANCE-001")))  # the venue's account
    portfolio = Portfolio(msgbus, cache, clock)
    guard = RiskGuard(
        RiskGuardConfig(instrument_ids=(BTC.id.value,), max_daily_loss=500.0),
        on_breach=lambda breach: None,
        history=PnlHistory(fills=[]),
        now=lambda: datetime(1970, 1, 1, 12, tzinfo=UTC),
    )
    guard.register_base(portfolio, msgbus, cache, clock)
    engine = SimpleNamespace(execute=lambda command: None)
    msgbus.register("ExecEngine.execute", engine.execute)  # the gate stands in front of it
    guard.attach(engine)
    guard.start()

    order = TestExecStubs.market_order(instrument=BTC, order_side=OrderSide.BUY, quantity=Quantity.from_str("1.000000"))
    fill = TestEventStubs.order_filled(
        order,
        BTC,
        venue_order_id=VenueOrderId("1"),
        trade_id=TradeId("T-1"),
        position_id=PositionId("P-1"),
        last_px=Price.from_str("40000.00"),
    )
    cache.add_position(Position(BTC, fill), OmsType.NETTING)  # the node's (the restart's reconciliation)
    guard.on_fill(from_order_filled(fill, "desk/s"))  # the book's, from the ledger

    state = guard.risk_state()  # no price of BTCUSDT yet
    assert state.exposure is None

    cache.add_quote_tick(
        QuoteTick(
            instrument_id=BTC.id,
            bid_price=Price.from_str("40100.00"),
            ask_price=Price.from_str("40101.00"),
            bid_size=Quantity.from_str("1.000000"),
            ask_size=Quantity.from_str("1.000000"),
            ts_event=0,
            ts_init=0,
        )
    )
    [position] = guard.book_positions()
    assert position.notional == "40100.00 USDT"  # at the bid: where a long's close would trade
    assert guard.risk_state().exposure == position.notional
    assert Decimal(position.notional.split()[0]) == Decimal("40100.00")
