"""The paper venue: NautilusTrader's sandbox execution client, fixed to trade on replayed bars.

NautilusTrader's ``adapters.sandbox.SandboxExecutionClient`` (1.221, and still 1.231) has three problems for us
(see docs/runtime.md, "Paper replay"):

1. It subscribes its simulated exchange to ``data.*.{venue}.*``, which never matches a bar
   topic (``data.bars.BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL``): with bars only, every
   market order is rejected with "no market". ``SandboxExecutionClient`` here also
   subscribes ``data.bars.*.{venue}-*``.
2. It subscribes at priority 0, so whether the exchange sees a data point before or after
   the strategy depends on subscription order. The backtest engine always lets the exchange
   see a bar first; this client subscribes at ``EXCHANGE_PRIORITY`` to do the same.
3. It hard-codes the simulated exchange's models and crashes on ``leverages`` (it passes the
   config's strings where instrument ids are expected). This client builds the
   ``SimulatedExchange`` itself from ``SandboxExecClientConfig``, which adds the settings a
   ``BacktestVenueConfig`` has (adaptive bar ordering, fill probabilities, seeded slippage).

``synchronous_exec_events(kernel)`` is the other half of paper/backtest parity: see its docstring.

The factory must be named ``SandboxLiveExecClientFactory``: ``TradingNodeBuilder`` passes the
portfolio (which the simulated exchange needs) only to a factory class of exactly that name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from nautilus_trader.adapters.sandbox.config import SandboxExecutionClientConfig
from nautilus_trader.adapters.sandbox.execution import SandboxExecutionClient as StockSandboxExecutionClient
from nautilus_trader.backtest.engine import SimulatedExchange
from nautilus_trader.backtest.execution_client import BacktestExecClient
from nautilus_trader.backtest.models import FillModel, LatencyModel, MakerTakerFeeModel
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus, TestClock
from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.core.data import Data
from nautilus_trader.live.execution_client import LiveExecutionClient
from nautilus_trader.live.factories import LiveExecClientFactory
from nautilus_trader.model.data import Bar
from nautilus_trader.model.enums import account_type_from_str, book_type_from_str, oms_type_from_str
from nautilus_trader.model.identifiers import AccountId, ClientId, InstrumentId, Venue
from nautilus_trader.model.objects import Currency, Money
from nautilus_trader.portfolio.base import PortfolioFacade

from strategy_runtime.risk.gate import EXEC_EVENTS_ENDPOINT, RISK_ENDPOINT

if TYPE_CHECKING:
    from nautilus_trader.system.kernel import NautilusKernel

# Above the default 0 of strategies and actors and the 10 of the Portfolio's bar subscription:
# the exchange matches a data point before anything else reacts to it, as in a backtest.
EXCHANGE_PRIORITY = 100


class SandboxExecClientConfig(SandboxExecutionClientConfig, frozen=True, kw_only=True):
    """The stock sandbox settings plus those a ``BacktestVenueConfig`` has and the stock client lacks.

    ``leverages`` keys are instrument id strings.
    """

    bar_adaptive_high_low_ordering: bool = False
    prob_fill_on_limit: float = 1.0
    prob_slippage: float = 0.0
    random_seed: int | None = None


def venue_data_topics(venue: str) -> tuple[str, str]:
    """The message bus topics of ``venue``'s market data: what the sandbox matches on (and the window recorder
    records, ``paper.window_recording``). The bar pattern also matches a symbol containing ``.<VENUE>-`` of another
    venue: a subscriber checks the instrument."""
    # Ticks, instruments and book data: data.<kind>.<VENUE>.<SYMBOL>;
    # bars: data.bars.<SYMBOL>.<VENUE>-<step>-<aggregation>-<price>-<source>.
    return f"data.*.{venue}.*", f"data.bars.*.{venue}-*"


class SandboxExecutionClient(StockSandboxExecutionClient):
    """The stock sandbox client with a simulated exchange built from ``SandboxExecClientConfig``."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        portfolio: PortfolioFacade,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
        config: SandboxExecClientConfig,
    ) -> None:
        # The stock __init__ builds (and initialises the account of) its own exchange, which
        # crashes on leverages and cannot take our settings; so skip it and do its work here,
        # with our exchange. Everything else (order routing, reports) is inherited unchanged.
        # NautilusTrader 1.231's stock __init__ sets exactly test_clock, exchange and _client:
        # pinned by tests/runtime/test_nautilus_pins.py.
        venue = Venue(config.venue)
        oms_type = oms_type_from_str(config.oms_type)
        account_type = account_type_from_str(config.account_type)
        base_currency = Currency.from_str(config.base_currency) if config.base_currency else None
        # The exchange's clock is data time: the matching engine sets it to each data point.
        self.test_clock = TestClock()
        LiveExecutionClient.__init__(
            self,
            loop=loop,
            client_id=ClientId(config.venue),
            venue=venue,
            oms_type=oms_type,
            account_type=account_type,
            base_currency=base_currency,
            instrument_provider=InstrumentProvider(),
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            config=None,
        )
        # As the stock __init__ does since 1.222: the account is known before the first event.
        self._set_account_id(AccountId(f"{config.venue}-001"))
        self.exchange = SimulatedExchange(
            venue=venue,
            oms_type=oms_type,
            account_type=account_type,
            starting_balances=[Money.from_str(b) for b in config.starting_balances],
            base_currency=base_currency,
            default_leverage=Decimal(config.default_leverage),
            leverages={InstrumentId.from_str(k): Decimal(str(v)) for k, v in (config.leverages or {}).items()},
            modules=[],
            portfolio=portfolio,
            msgbus=self._msgbus,
            cache=cache,
            clock=self.test_clock,
            fill_model=FillModel(
                prob_fill_on_limit=config.prob_fill_on_limit,
                prob_slippage=config.prob_slippage,
                random_seed=config.random_seed,
            ),
            fee_model=MakerTakerFeeModel(),
            # No latency and no queue: a command is matched the moment it arrives, which is
            # what a backtest with latency_model=None does.
            latency_model=LatencyModel(0),
            book_type=book_type_from_str(config.book_type),
            frozen_account=config.frozen_account,
            bar_execution=config.bar_execution,
            bar_adaptive_high_low_ordering=config.bar_adaptive_high_low_ordering,
            trade_execution=config.trade_execution,
            reject_stop_orders=config.reject_stop_orders,
            support_gtd_orders=config.support_gtd_orders,
            support_contingent_orders=config.support_contingent_orders,
            use_position_ids=config.use_position_ids,
            use_random_ids=config.use_random_ids,
            use_reduce_only=config.use_reduce_only,
            use_message_queue=False,
        )
        self._client = BacktestExecClient(exchange=self.exchange, msgbus=msgbus, cache=cache, clock=self.test_clock)
        self.exchange.register_client(self._client)
        self.exchange.initialize_account()

    def _topics(self) -> tuple[str, str]:
        return venue_data_topics(self.venue.value)

    def connect(self) -> None:
        self._log.info("Connecting...")
        for topic in self._topics():
            self._msgbus.subscribe(topic, handler=self.on_data, priority=EXCHANGE_PRIORITY)
        # Instruments already in the cache (put there at build) are known to the exchange at once.
        for instrument in self._cache.instruments(venue=self.venue):
            self.exchange.add_instrument(instrument)
        self._client._set_connected(True)
        self._set_connected(True)
        self._log.info("Connected")

    def disconnect(self) -> None:
        for topic in self._topics():
            self._msgbus.unsubscribe(topic, handler=self.on_data)
        super().disconnect()

    def on_data(self, data: Data) -> None:
        # The bar pattern also matches a symbol containing ".<VENUE>-" of another venue: check.
        if isinstance(data, Bar) and data.bar_type.instrument_id.venue != self.venue:
            return
        super().on_data(data)


class SandboxLiveExecClientFactory(LiveExecClientFactory):
    """Creates the fixed sandbox client. The class name is load-bearing (see the module docstring)."""

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: SandboxExecClientConfig,
        portfolio: PortfolioFacade,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> SandboxExecutionClient:
        if not isinstance(config, SandboxExecClientConfig):
            raise TypeError(f"expected a SandboxExecClientConfig, got {type(config).__name__}")
        return SandboxExecutionClient(
            loop=loop, portfolio=portfolio, msgbus=msgbus, cache=cache, clock=clock, config=config
        )


def synchronous_exec_events(kernel: NautilusKernel) -> Callable[[Any], None]:
    """Paper only: apply order events the moment they are emitted, as a backtest does.

    In a live node every order event goes through the execution engine's queue and is applied
    one loop iteration later, but the simulated exchange carries on synchronously after it
    emits a fill. Two things then differ from the backtest:

    - a stop-loss or take-profit filled while the exchange processes a bar is applied after
      the strategy's ``on_bar`` for that bar: the strategy acts on a stale position;
    - the children of a bracket (OTO) are activated right after the entry fill and their
      reduce-only check reads a position that does not exist yet: every one is rejected
      (upstream issue nautechsystems/nautilus_trader#5009).

    Routing the ``ExecEngine.process`` endpoint to the engine's synchronous handler removes
    both. Never call this on a node with real venue clients: their events arrive from network
    callbacks and belong on the queue.
    """
    msgbus, engine = kernel.msgbus, kernel.exec_engine
    # ``_handle_event_with_tracking`` is private in NautilusTrader 1.231 (the live engine's synchronous
    # handler, what its queue calls); pinned by tests/runtime/test_nautilus_pins.py.
    msgbus.deregister(EXEC_EVENTS_ENDPOINT, engine.process)
    msgbus.register(EXEC_EVENTS_ENDPOINT, engine._handle_event_with_tracking)
    return engine._handle_event_with_tracking


def synchronous_risk_commands(kernel: NautilusKernel) -> None:
    """Paper only, once the trader runs: the RiskEngine executes a command the moment it is sent, as a backtest's.

    In a backtest an order a strategy submits is checked (and, by the risk guard's gate, denied and a
    breach declared) before the strategy's next line runs; queued, a strategy that closes and then
    re-enters through an execution algorithm had its entry taken by the algorithm before the close's
    breach shut the gate. Not before the trader runs: what strategies send from ``on_start`` stays on
    the queue until every component, the risk guard's gate among them, has started.
    ``_execute_command`` (private in NautilusTrader 1.231, pinned) is what the live engine's queue calls.
    """
    risk = kernel.risk_engine
    kernel.msgbus.deregister(RISK_ENDPOINT, risk.execute)
    kernel.msgbus.register(RISK_ENDPOINT, risk._execute_command)
