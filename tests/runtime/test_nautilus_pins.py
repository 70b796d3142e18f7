"""NautilusTrader internals and behaviours the runtime depends on, pinned: an upgrade that moves one fails here.

Two kinds of pin:

- private attributes the runtime reaches into where the public API of NautilusTrader 1.231.0
  has no way to do what is needed (each use carries a comment naming the version);
- upstream behaviours the runtime works around (the stock sandbox client that cannot trade on
  bars, MARGIN accounts skipping the notional check, a HALTED RiskEngine denying reduce-only
  closes) or, since an upgrade fixed them, relies on (late wildcard subscriptions, realized PnL
  kept across a reversal). A pin that fails after an upgrade says which workaround can go, or
  which fix went away.

The audit of every 1.221 workaround against 1.231 is in docs/runtime.md ("NautilusTrader
behaviours the runtime depends on").
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
from collections.abc import Callable
from decimal import Decimal

import nautilus_trader
from nautilus_trader.adapters.binance.futures.schemas.user import BinanceFuturesOrderData
from nautilus_trader.adapters.sandbox.execution import SandboxExecutionClient as StockSandbox
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.common.component import MessageBus, TestClock, is_matching_py
from nautilus_trader.config import LoggingConfig, StrategyConfig
from nautilus_trader.live import reconciliation as nautilus_reconciliation
from nautilus_trader.live.execution_engine import LiveExecutionEngine
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import AccountType, AggressorSide, OmsType, OrderSide, TradingState
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.identifiers import ClientId, TradeId, TraderId, Venue
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.test_kit.providers import TestInstrumentProvider
from nautilus_trader.trading.strategy import Strategy

from strategy_runtime.live import binance_venue_closes, reconciliation
from strategy_runtime.node import SHUTDOWN_TOPIC, build_node
from strategy_runtime.paper.catalog import prepare_catalog
from strategy_runtime.paper.replay import REPLAY_CLIENT_ID
from strategy_runtime.report import reporter
from tests.support.runtime import paper_manifest, runtime_config

PINNED_VERSION = "1.231.0"

# sha256 of inspect.getsource(LiveExecutionClient.generate_mass_status), NautilusTrader 1.231.0.
GENERATE_MASS_STATUS_1231 = "6624ee4446805fbb7b633ceab2e5beb180c686a761f911e186cc08bbd006603b"
# sha256 of inspect.getsource(BinanceUserDataWebSocketClient._reauth_and_resubscribe), NautilusTrader 1.231.0.
REAUTH_AND_RESUBSCRIBE_1231 = "c811ba9daa7434d4cdf571ed9e158bed2dd5020b18d6dc7a3951ba50aeadfab9"


def test_the_nautilus_trader_version_is_the_one_these_pins_were_checked_against():
    assert nautilus_trader.__version__ == PINNED_VERSION, (
        f"NautilusTrader {nautilus_trader.__version__} is not {PINNED_VERSION}: re-check every private "
        "attribute this file pins (and the behaviour notes in docs/runtime.md), then update PINNED_VERSION"
    )


async def test_the_engines_private_attributes_the_runtime_uses_exist(tmp_path):
    config = runtime_config(paper_manifest(bars=100), tmp_path / "catalog")
    node = build_node(config, catalog=prepare_catalog(config))
    try:
        kernel = node.kernel
        # node.py: the built clients (StrategyNode.sandbox, the replay client after build)
        assert isinstance(kernel.exec_engine._clients, dict)
        assert isinstance(kernel.data_engine._clients[ClientId(REPLAY_CLIENT_ID)], object)
        assert node.sandbox is not None
        # node.py: the kernel's ShutdownSystem handler, replaced by the runtime's
        assert callable(kernel._on_shutdown_system)
        assert SHUTDOWN_TOPIC == "commands.system.shutdown"
        # sandbox.py: the execution engine's synchronous event handler (paper parity)
        assert callable(kernel.exec_engine._handle_event_with_tracking)
        # sandbox.py: the RiskEngine's synchronous command handler (paper parity), where its queue hands commands
        assert callable(kernel.risk_engine._execute_command)
        # replay.py: the data engine's bar aggregators (keyed by (bar type, request id)), moved onto market time
        assert isinstance(kernel.data_engine._bar_aggregators, dict)
        # node.py: a paper node's execution algorithms, registered with a market-time clock, go where
        # Trader.add_exec_algorithm puts them, for the trader to start, stop and dispose
        assert node.node.trader._exec_algorithms == {}
    finally:
        node.dispose()


def test_time_bars_close_on_the_clock_they_are_given():
    # Why replay.py moves each time bar aggregator onto a clock of its own: the data engine gives it the
    # node's clock, a LiveClock in a live node, whose timers run on wall time; history replayed through it
    # closes no bar. On a TestClock in historical mode, the data's own timestamps close them.
    from nautilus_trader.common.component import LiveClock, TestClock
    from nautilus_trader.data.aggregation import TimeBarAggregator
    from nautilus_trader.model.data import Bar, BarType
    from nautilus_trader.model.objects import Price, Quantity
    from nautilus_trader.test_kit.providers import TestInstrumentProvider

    instrument = TestInstrumentProvider.btcusdt_binance()
    one_minute = BarType.from_str(f"{instrument.id}-1-MINUTE-LAST-EXTERNAL")
    five = BarType.from_str(f"{instrument.id}-5-MINUTE-LAST-INTERNAL")
    start = 1_704_067_200_000_000_000  # 2024-01-01, long before the wall clock's now

    def closed(clock, historical: bool) -> list:
        built: list = []
        aggregator = TimeBarAggregator(instrument, five, built.append, clock)
        if historical:
            aggregator.set_historical_mode(True, built.append)
        else:
            aggregator.start_timer()
        for minute in range(1, 21):
            ts = start + minute * 60_000_000_000
            price = Price.from_str("42000.00")
            aggregator.handle_bar(Bar(one_minute, price, price, price, price, Quantity.from_str("1.000000"), ts, ts))
        aggregator.stop_timer()
        return built

    assert closed(LiveClock(), historical=False) == []
    assert len(closed(TestClock(), historical=True)) == 4  # 20 minutes: four 5-minute bars


def test_the_inferred_fill_hook_is_where_reconciliation_makes_inferred_fills():
    # reporter.py wraps LiveExecutionEngine._generate_inferred_fill(order, report, instrument)
    method = getattr(LiveExecutionEngine, reporter.INFERRED_FILL_METHOD)
    assert list(inspect.signature(method).parameters) == ["self", "order", "report", "instrument"]
    # 1.231 calls it from _handle_fill_quantity_mismatch (1.221: _reconcile_order_report); the
    # reporter wraps the engine's method itself, so any caller is covered.
    source = inspect.getsource(LiveExecutionEngine._handle_fill_quantity_mismatch)
    assert f"self.{reporter.INFERRED_FILL_METHOD}(order, report, instrument)" in source


def test_the_mass_status_the_runtime_asks_in_turn_is_asked_side_by_side_by_nautilus_trader():
    # live/reconciliation.py replaces LiveExecutionClient.generate_mass_status(lookback_mins) on a live node's
    # execution clients: 1.231 gathers the order statuses, the trades and the positions concurrently, and the
    # engine reconciles a status ahead of its trades (inferred fill) and trades ahead of their status (ignored
    # for a NEW order; a failed reconciliation for a PARTIALLY_FILLED one) differently.
    from nautilus_trader.live.execution_client import LiveExecutionClient

    method = getattr(LiveExecutionClient, reconciliation.MASS_STATUS_METHOD)
    assert list(inspect.signature(method).parameters) == ["self", "lookback_mins"]
    source = inspect.getsource(method)
    assert "await asyncio.gather(" in source
    for asked in ("generate_order_status_reports", "generate_fill_reports", "generate_position_status_reports"):
        assert f"self.{asked}(" in source
    engine = inspect.getsource(LiveExecutionEngine._handle_order_status_transitions)
    assert "if report.order_status == OrderStatus.ACCEPTED:" in engine  # returns before the trades are reconciled
    mismatch = inspect.getsource(LiveExecutionEngine._handle_fill_quantity_mismatch)
    assert "if report.filled_qty < order.filled_qty:" in mismatch and "return False  # Failed" in mismatch
    # The whole of the method the runtime stands in for, as 1.231 has it: any upstream change to it (what it asks,
    # in which order, what it publishes) fails here, to be read and carried over to ask_in_order.
    assert hashlib.sha256(source.encode()).hexdigest() == GENERATE_MASS_STATUS_1231


def test_the_start_s_reconciliation_is_the_engine_s_reconcile_execution_state_and_binance_asks_again_later():
    # reconciliation.start_reconciled wraps the engine's reconcile_execution_state, which the kernel awaits at start
    # (as an attribute of the engine: the wrapper on the instance is what it calls); after it, a mass status asks no
    # positions. The Binance client asks one after every user-data resubscription, through the attribute too.
    from nautilus_trader.adapters.binance.execution import BinanceCommonExecutionClient
    from nautilus_trader.system.kernel import NautilusKernel

    assert "await self._exec_engine.reconcile_execution_state(" in inspect.getsource(NautilusKernel)
    after = inspect.getsource(BinanceCommonExecutionClient._reconcile_after_resubscribe)
    assert f"await self.{reconciliation.MASS_STATUS_METHOD}(" in after


def test_the_spot_user_data_client_recovers_a_reconnect_in_the_method_binance_user_stream_stands_in_for():
    # binance_user_stream replaces _reauth_and_resubscribe on the instance (the reconnect callback looks it up
    # there) with its steps carried over; any upstream change to it fails here, to be read and carried over.
    from nautilus_trader.adapters.binance.websocket.user import BinanceUserDataWebSocketClient

    from strategy_runtime.live.binance_user_stream import REAUTH_METHOD, RECONNECT_TASK, RESUBSCRIBE_METHOD

    reconnect = inspect.getsource(BinanceUserDataWebSocketClient._handle_reconnect)
    assert f"self.{RECONNECT_TASK} = self._loop.create_task(self.{REAUTH_METHOD}())" in reconnect
    assert f"self._loop.create_task(self.{RESUBSCRIBE_METHOD}())" in inspect.getsource(
        BinanceUserDataWebSocketClient._handle_message
    )
    source = inspect.getsource(getattr(BinanceUserDataWebSocketClient, REAUTH_METHOD))
    assert hashlib.sha256(source.encode()).hexdigest() == REAUTH_AND_RESUBSCRIBE_1231


def test_the_stock_sandbox_client_sets_up_only_what_the_fixed_client_does():
    # sandbox.py skips the stock __init__ (it crashes on leverages) and does its work itself:
    # if a newer stock __init__ sets up more, the fixed client would lack it.
    tree = ast.parse(textwrap.dedent(inspect.getsource(StockSandbox.__init__)))
    assigned = {
        target.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self"
    }
    assert assigned == {"test_clock", "exchange", "_client"}


def test_a_wildcard_subscription_made_after_a_topic_was_published_receives_it():
    # Fixed upstream after 1.221 (whose MessageBus.subscribe called is_matching with its arguments
    # swapped, so a late wildcard subscription never received a topic already published). The halt
    # now subscribes when it begins and the risk guard in on_start: both rely on this.
    bus = MessageBus(TraderId("PIN-001"), TestClock())
    early: list[int] = []
    late: list[int] = []
    bus.subscribe("events.order.*", early.append)
    bus.publish("events.order.S-000", 1)
    bus.subscribe("events.order.*", late.append)
    bus.publish("events.order.S-000", 2)  # a topic published before the late subscription
    bus.publish("events.order.S-001", 3)  # a topic first published after it
    assert early == [1, 2, 3]
    assert late == [2, 3]


def test_the_stock_sandbox_client_still_cannot_see_bars():
    # Why strategy_runtime/paper/sandbox.py keeps its fixed client: the stock client subscribes its exchange
    # to data.*.{venue}.* only, and no bar topic (data.bars.{bar_type}) matches it, so on bars alone
    # every market order is rejected with "no market".
    source = inspect.getsource(StockSandbox.connect)
    assert 'self._msgbus.subscribe(f"data.*.{self.venue}.*", handler=self.on_data)' in source
    assert not is_matching_py("data.bars.BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL", "data.*.BINANCE.*")
    assert is_matching_py("data.bars.BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL", "data.bars.*.BINANCE-*")
    # ... and it still hands the config's leverages (instrument id strings) to the exchange unconverted.
    assert "leverages=config.leverages or {}" in inspect.getsource(StockSandbox.__init__)


def _flip_engine(strategy: Strategy) -> BacktestEngine:
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(bypass_logging=True)))
    engine.add_venue(Venue("BINANCE"), OmsType.NETTING, AccountType.MARGIN, starting_balances=[Money(1_000_000, USDT)])
    engine.add_instrument(_BTC)
    prices = [50_000, 50_000, 40_000, 40_000, 45_000]
    engine.add_data(
        [
            TradeTick(_BTC.id, Price(p, 2), Quantity.from_str("1.000000"), AggressorSide.BUYER, TradeId(str(i)), i, i)
            for i, p in enumerate(prices, start=1)
        ]
    )
    engine.add_strategy(strategy)
    return engine


_BTC = TestInstrumentProvider.btcusdt_binance()


class _Flip(Strategy):
    """Long 0.01, then sell 0.02 (a reversal through zero in one order); with ``halt``, a reduce-only close after."""

    def __init__(self, halt: Callable[[], None] | None = None) -> None:
        super().__init__(StrategyConfig(strategy_id="FLIP-001"))
        self.ticks = 0
        self.halt = halt
        self.denied: list[str] = []

    def on_start(self) -> None:
        self.subscribe_trade_ticks(_BTC.id)

    def on_trade_tick(self, tick: TradeTick) -> None:
        self.ticks += 1
        if self.ticks == 1:
            self.submit_order(self.order_factory.market(_BTC.id, OrderSide.BUY, Quantity.from_str("0.010000")))
        elif self.ticks == 3:
            self.submit_order(self.order_factory.market(_BTC.id, OrderSide.SELL, Quantity.from_str("0.020000")))
        elif self.ticks == 5 and self.halt:
            self.halt()
            self.submit_order(
                self.order_factory.market(_BTC.id, OrderSide.BUY, Quantity.from_str("0.010000"), reduce_only=True)
            )

    def on_order_denied(self, event: OrderDenied) -> None:
        self.denied.append(event.reason)


def test_realized_pnl_survives_a_reversal_in_one_order():
    # Fixed after 1.221 (which kept no history of the position closed by a flip, so the portfolio's
    # realized PnL lost it): the portfolio now adds the closed position's snapshot. Buy 0.01 @ 50,000,
    # sell 0.02 @ 40,000: -100 realized on the long, and commissions on both fills.
    strategy = _Flip()
    engine = _flip_engine(strategy)
    engine.run()
    fills = [o for o in engine.cache.orders() if o.is_closed]
    commissions = sum((c.as_decimal() for p in engine.cache.position_snapshots() for c in p.commissions()), Decimal(0))
    commissions += sum((c.as_decimal() for p in engine.cache.positions() for c in p.commissions()), Decimal(0))
    assert len(fills) == 2
    assert engine.portfolio.realized_pnl(_BTC.id).as_decimal() == Decimal(-100) - commissions
    engine.dispose()


def test_a_halted_risk_engine_denies_reduce_only_closes():
    # Why the halt flattens before it sets HALTED, and why a strategy's own closes in on_stop do not
    # flatten a halted node (haltPolicy: flatten does): HALTED denies every SubmitOrder in 1.231 too.
    engine: BacktestEngine | None = None

    def halt() -> None:  # after the reversal: short 0.01
        assert engine is not None
        engine.kernel.risk_engine.set_trading_state(TradingState.HALTED)

    strategy = _Flip(halt=halt)
    engine = _flip_engine(strategy)
    engine.run()
    assert strategy.denied == ["TradingState.HALTED"]
    assert engine.portfolio.is_net_short(_BTC.id)
    engine.dispose()


def test_a_backtest_fires_timers_due_at_the_same_time_in_the_order_of_their_names():
    # paper.market_clocks fires ties so (and compares client-order-id names by their market time).
    from datetime import timedelta

    from nautilus_trader.common.actor import Actor
    from nautilus_trader.config import ActorConfig
    from nautilus_trader.model.data import Bar, BarType

    instrument = TestInstrumentProvider.btcusdt_binance()
    bar_type = BarType.from_str(f"{instrument.id}-1-MINUTE-LAST-EXTERNAL")
    fired: list[tuple[int, str]] = []
    names = ["T-9", "T-10", "b", "a"]  # set one a bar, in this order, each every minute

    class SetsTimers(Actor):
        def __init__(self) -> None:
            super().__init__(ActorConfig())
            self.bars = 0

        def on_start(self) -> None:
            self.subscribe_bars(bar_type)

        def on_bar(self, bar: Bar) -> None:
            if self.bars < len(names):
                self.clock.set_timer(
                    names[self.bars], timedelta(minutes=1), callback=lambda e: fired.append((e.ts_event, e.name))
                )
            self.bars += 1

    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    try:
        engine.add_venue(Venue("BINANCE"), OmsType.NETTING, AccountType.MARGIN, starting_balances=[Money(1000, USDT)])
        engine.add_instrument(instrument)
        price, size = Price.from_str("100.00"), Quantity.from_str("1.000000")
        minute = 60_000_000_000
        engine.add_data([Bar(bar_type, price, price, price, price, size, m * minute, m * minute) for m in range(1, 7)])
        engine.add_actor(SetsTimers())
        engine.run()
    finally:
        engine.dispose()
    last = max(ts for ts, _ in fired)
    assert [name for ts, name in fired if ts == last] == sorted(names) == ["T-10", "T-9", "a", "b"]


def test_the_orders_made_up_to_align_a_position_carry_the_tag_the_reporter_knows_them_by():
    # reporter.py records what the ledger's book lacks of a position alignment, not each start's made-up fill.
    source = inspect.getsource(LiveExecutionEngine)
    assert f'tags = ["{reporter.POSITION_ALIGNMENT_TAG}"]' in source
    assert "# Internal position diff alignment (synthetic fill)" in source


def test_a_reconciled_order_belongs_to_the_strategy_claiming_its_instrument_else_to_external():
    # strategy_source.load_strategy(claims=...): a live strategy claims the spec's instruments, since 1.231 gives
    # every reconciled order its cache does not hold (after a restart: all of them) to the claiming strategy or to
    # EXTERNAL, never by its client order id. An upgrade that maps the id back to its strategy shows here.
    source = inspect.getsource(LiveExecutionEngine._generate_order)
    assert "strategy_id = self.get_external_order_claim(report.instrument_id)" in source
    assert 'strategy_id = StrategyId("EXTERNAL")' in source
    # A claimed alignment order carries no tag: the reporter knows it by the call that made it (is_external False).
    assert "tags = None" in source.split("# External order claimed by a strategy", 1)[1]
    assert list(inspect.signature(getattr(LiveExecutionEngine, reporter.ORDER_GENERATION_METHOD)).parameters) == [
        "self",
        "report",
        "is_external",
    ]
    assert "order = self._generate_order(report, is_external)" in inspect.getsource(
        LiveExecutionEngine._reconcile_order_report
    )


def test_a_fill_beyond_its_order_s_quantity_is_rejected_before_it_is_published():
    # reporter.py records a trade of an order filled by inference as it reaches ExecEngine.process: 1.231
    # rejects one that would overfill the order (the inferred fill took its quantity) and returns before the
    # event is published on the order topic, unless allow_overfills (the runtime leaves it off).
    from pathlib import Path

    source = (Path(nautilus_trader.__file__).parent / "execution" / "engine.pyx").read_text()
    check = source.index("if not self._check_overfill(order, event):")
    assert source[check:].startswith(
        "if not self._check_overfill(order, event):\n                return  # Reject overfill, skip all processing"
    )
    assert check < source.index("self._msgbus.publish_c(\n            topic=self._get_order_events_topic(", check)
    assert "return False  # Reject overfill" in source


def test_a_venue_close_reaches_the_engine_as_a_status_then_its_trade_and_the_status_alone_opens_an_external_position():
    # live/binance_venue_closes.py wraps the client's _send_order_status_report and _send_fill_report: NautilusTrader
    # 1.231's USD-M client sends, for an autoclose-/adl_autoclose order's CALCULATED update, a status then a fill
    # report; a fill inferred from a status naming no position goes to <instrument>-EXTERNAL.
    source = inspect.getsource(BinanceFuturesOrderData.handle_order_trade_update)
    branch = source[source.index("BinanceExecutionType.CALCULATED") :]
    status_at = branch.index(f"exec_client.{binance_venue_closes.SEND_STATUS_METHOD}(order_report)")
    assert status_at < branch.index(f"exec_client.{binance_venue_closes.SEND_FILL_METHOD}(fill_report)")
    # no fill report without the instrument in the client's provider (the wrapper asks the provider too)
    assert "instrument = exec_client._instrument_provider.find(instrument_id=instrument_id)" in source
    for prefix in binance_venue_closes.VENUE_CLOSE_PREFIXES:
        assert f'startswith("{prefix}")' in source
    inferred = inspect.getsource(nautilus_reconciliation.create_inferred_order_filled_event)
    assert 'report.venue_position_id or PositionId(f"{instrument.id}-EXTERNAL")' in inferred


def test_a_mass_status_keeps_one_order_per_client_order_id_and_asks_the_statuses_of_the_client():
    # live/binance_venue_closes.py names each ADL's status adl_autoclose-<venue order id> in what the client's
    # generate_order_status_reports answers: NautilusTrader 1.231's engine keeps the first order of a mass status per
    # client order id, and both mass statuses (NautilusTrader's and live/reconciliation.py's) ask the client's method.
    from nautilus_trader.live.execution_client import LiveExecutionClient

    dedup = inspect.getsource(LiveExecutionEngine._deduplicate_mass_status_orders)
    assert "if order_report.client_order_id in seen_client_order_ids:" in dedup
    assert "duplicate_venue_order_ids.append(venue_order_id)" in dedup
    reconcile = inspect.getsource(LiveExecutionEngine._reconcile_execution_mass_status)
    assert "self._deduplicate_mass_status_orders(mass_status)" in reconcile
    statuses = f"self.{binance_venue_closes.STATUSES_METHOD}("
    assert statuses in inspect.getsource(LiveExecutionClient.generate_mass_status)
    assert f"client.{binance_venue_closes.STATUSES_METHOD}(" in inspect.getsource(reconciliation.ask_in_order)
