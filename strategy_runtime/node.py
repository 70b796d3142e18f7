"""A NautilusTrader ``TradingNode`` built from a ``RuntimeConfig``: the strategy pod's engine.

Public API (kept stable for the runtime, ``livestrat run`` and the tests)::

    node = build_node(config, actors=[reporter, guard], signal_handler=on_signal,
                      shutdown_handler=on_shutdown)   # inside the running event loop
    await node.start()          # returns once the trader runs (clients connected, reconciled)
    ...                         # node.replay.finished / node.replay.progress in paper replay
    await node.stop()           # Trader.stop (actors, then strategies' on_stop), disconnect
    node.dispose()              # release the engines; safe inside or outside the loop

``build_node(config, *, catalog=None, actors=(), environ=os.environ, signal_handler=None,
shutdown_handler=None, log_level=None) -> StrategyNode``

``StrategyNode``: ``node`` (the TradingNode), ``kernel``, ``config``, ``strategy``, ``actors``,
``replay`` (paper: ``progress``, ``finished``, ``stop_replay()``), ``catalog`` (paper),
``sandbox`` (paper: the simulated venue's client), ``nautilus_account_type`` and
``notional_limit_checked_by_nautilus``, ``run_task``, ``timeouts``; ``start()``, ``stop()``,
``dispose()``, ``front_doors()`` (the OrderEmulator's and the execution algorithms' endpoints, for
the risk guard's gate). ``CONFIGURATION_ERRORS``: the exceptions a user fixes in the spec or its data
(report them as ``InvalidSpec``); ``NodeStartError`` when the node does not reach RUNNING.
Related: ``paper.catalog.prepare_catalog``, ``local.config.local_runtime_config`` (a manifest on a
laptop), ``local.summary.summarize``/``fills_in``, ``local.backtest.run_backtest``.

- **Strategy**: ``spec.strategy`` loaded by import path (``strategy_source.load_strategy``);
  any import/config error is a ``StrategyLoadError`` naming the path (report: InvalidSpec).
  Live, it claims the spec's instruments (``external_order_claims``, unless its config sets them): the
  orders and positions reconciled after a restart are its own, not strategy EXTERNAL's.
  Its execution algorithms (``spec.strategy.execAlgorithms``) join the trader; in paper mode each
  on a clock the replay runs on market time (``paper.market_clocks``).
- **Paper** (``mode: paper``, sandbox adapter): the catalog's instruments go into the cache,
  ``ReplayDataClient`` streams ``data.replay`` in lockstep, the fixed sandbox client
  simulates ``venue.name`` (``paper.venue``), and order events are applied synchronously
  (``paper.sandbox.synchronous_exec_events``): fills equal a backtest's (``local/backtest.py``).
  ``node.replay`` is the replay client; without ``data.replay`` a paper node has no data
  feed and ``build_node`` raises ``NodeBuildError``.
- **Live**: the adapter's data and execution clients (``live.venues.live_venue``) with credentials
  from the environment variables of ``runtime_config``; instruments from the venue; execution
  reconciliation on, applying every fill the venue reports and asking the venue one thing after another
  (``live.reconciliation``).
- **RiskEngine** from ``spec.risk``: ``max_notional_per_order`` for every instrument and the
  submit/modify rates. NautilusTrader (1.221 and 1.231) enforces the notional limit only for orders on a
  CASH account whose price it knows (LIMIT-type price, STOP trigger, or for MARKET orders
  the last quote or trade tick: bars are not enough); MARGIN accounts skip it entirely. The
  rates are counted on the node's clock, i.e. wall time, which is what they mean live. A paper
  replay's market time has no fixed relation to wall time (speed 0; a paced replay's jitter), so
  there the RiskEngine does not throttle (``UNTHROTTLED``) and the risk guard's order gate counts
  the rates on the replay's market clock instead, with NautilusTrader's own ``Throttler``, as a
  backtest's RiskEngine does. See docs/runtime.md.
- **Actors**: instances passed in ``actors`` join the trader before it starts, after the
  strategy (the reporting actor and the risk guard).
- **Signals**: the kernel installs loop handlers for SIGTERM/SIGINT/SIGABRT that stop the
  node without cancelling orders. ``build_node`` removes them: with ``signal_handler`` it
  installs that for SIGTERM and SIGINT instead; without one the signals keep Python's
  defaults (SIGTERM terminates, SIGINT raises KeyboardInterrupt).
- **Shutdown requests**: an engine error (the engines are configured to shut down gracefully
  instead of ``os._exit(1)``) or a strategy's ``shutdown_system()`` publish ``ShutdownSystem``;
  with ``shutdown_handler`` it goes to the handler instead of the kernel's own stop (which
  would not cancel orders).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.component import TestClock
from nautilus_trader.common.messages import ShutdownSystem
from nautilus_trader.config import (
    LiveDataClientConfig,
    LiveDataEngineConfig,
    LiveExecClientConfig,
    LiveExecEngineConfig,
    LiveRiskEngineConfig,
    LoggingConfig,
    TradingNodeConfig,
)
from nautilus_trader.execution.algorithm import ExecAlgorithm
from nautilus_trader.live.factories import LiveDataClientFactory, LiveExecClientFactory
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.system.kernel import NautilusKernel
from nautilus_trader.trading.strategy import Strategy

from livestrat.api.runtime_config import RuntimeConfig
from livestrat.api.spec import Adapter, LiveStrategySpec, Mode, ReplayDataType
from strategy_runtime.live.client_hooks import connect_failure
from strategy_runtime.live.reconciliation import ask_in_order, keep_every_reported_fill, start_reconciled
from strategy_runtime.live.venue_options import VenueOptionError
from strategy_runtime.live.venues import VenueConfigError, live_venue
from strategy_runtime.paper.catalog import CatalogError, StrategyCatalog, prepare_catalog
from strategy_runtime.paper.feed_lockstep import FeedLockstep, drain
from strategy_runtime.paper.live_feed import LiveFeed, live_feed
from strategy_runtime.paper.replay import (
    REPLAY_CLIENT_ID,
    ReplayDataClient,
    ReplayDataClientConfig,
    ReplayDataClientFactory,
)
from strategy_runtime.paper.sandbox import (
    SandboxExecutionClient,
    SandboxLiveExecClientFactory,
    synchronous_exec_events,
    synchronous_risk_commands,
)
from strategy_runtime.paper.venue import SANDBOX_CLIENT_NAME, PaperVenueError, paper_venue
from strategy_runtime.preflight import data_findings
from strategy_runtime.risk.gate import EMULATOR_ENDPOINT
from strategy_runtime.strategy_source import StrategyLoadError, load_strategy

logger = logging.getLogger("livestrat.node")

SHUTDOWN_TOPIC = "commands.system.shutdown"
HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT)
NAUTILUS_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGABRT)
# NautilusTrader's log levels; the runtime configuration may also say WARN.
_LOG_LEVELS = {"TRACE": "DEBUG", "DEBUG": "DEBUG", "INFO": "INFO", "WARN": "WARNING", "WARNING": "WARNING"}
_LOG_LEVELS |= {"ERROR": "ERROR", "CRITICAL": "ERROR", "OFF": "OFF"}


class NodeBuildError(Exception):
    """The spec cannot be turned into a node (beyond strategy, catalog and venue errors, which have their own types)."""


class NodeStartError(Exception):
    """The node did not reach RUNNING: a client did not connect, or reconciliation or the portfolio timed out."""


# What a user fixes in the spec (or the data it names): the runtime reports these as InvalidSpec.
CONFIGURATION_ERRORS: tuple[type[Exception], ...] = (
    StrategyLoadError,
    CatalogError,
    PaperVenueError,
    VenueConfigError,
    VenueOptionError,
    NodeBuildError,
)


@dataclass(frozen=True)
class NodeTimeouts:
    """Seconds the kernel waits at each step. ``post_stop`` is the pause after ``Trader.stop`` for late events."""

    connection: float
    reconciliation: float
    portfolio: float
    disconnection: float
    post_stop: float
    shutdown: float

    @property
    def start(self) -> float:
        return self.connection + self.reconciliation + self.portfolio


PAPER_TIMEOUTS = NodeTimeouts(
    connection=10.0, reconciliation=5.0, portfolio=5.0, disconnection=2.0, post_stop=0.1, shutdown=2.0
)
LIVE_TIMEOUTS = NodeTimeouts(
    connection=30.0, reconciliation=30.0, portfolio=10.0, disconnection=5.0, post_stop=1.0, shutdown=5.0
)


def front_doors(kernel: Any, trader: Any) -> dict[str, Callable[[Any], None]]:
    """The endpoints a strategy sends orders to before the RiskEngine, with their handlers: the
    OrderEmulator's (emulated orders) and each execution algorithm's (the risk guard's gate stands on them),
    in a live node and a backtest engine alike."""
    doors: dict[str, Callable[[Any], None]] = {EMULATOR_ENDPOINT: kernel.emulator.execute}
    for algorithm in trader.exec_algorithms():
        doors[f"{algorithm.id}.execute"] = algorithm.execute
    return doors


@dataclass
class StrategyNode:
    """A built node and what the runtime needs to drive it."""

    node: TradingNode
    config: RuntimeConfig
    strategy: Strategy
    actors: tuple[Actor, ...]
    timeouts: NodeTimeouts
    # CASH or MARGIN as NautilusTrader books the account. The RiskEngine enforces
    # max_notional_per_order only on CASH (and only for orders it can price): see the module doc.
    nautilus_account_type: str = "MARGIN"
    replay: ReplayDataClient | None = None  # paper replay only
    catalog: StrategyCatalog | None = None  # paper only
    feed_lockstep: FeedLockstep | None = None  # paper on a live feed only (paper.feed_lockstep)
    # What the message bus's ExecEngine.process endpoint calls: the engine's process (live), its synchronous
    # handler (paper). The reporter stands in front of it.
    exec_events_handler: Callable[[Any], None] | None = None
    _run_task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def kernel(self) -> NautilusKernel:
        return self.node.kernel

    @property
    def notional_limit_checked_by_nautilus(self) -> bool:
        """Whether the RiskEngine checks ``spec.risk.maxNotionalPerOrder`` on this account at all."""
        return self.nautilus_account_type == "CASH" and self.config.spec.risk.max_notional_per_order is not None

    @property
    def sandbox(self) -> SandboxExecutionClient | None:
        """The simulated venue's execution client in paper mode (its ``exchange`` holds the book)."""
        # Private in NautilusTrader 1.231 (no public lookup of a client by id); pinned by test_nautilus_pins.
        clients = self.kernel.exec_engine._clients.values()
        return next((c for c in clients if isinstance(c, SandboxExecutionClient)), None)

    def front_doors(self) -> dict[str, Callable[[Any], None]]:
        """See :func:`front_doors`."""
        return front_doors(self.kernel, self.node.trader)

    @property
    def run_task(self) -> asyncio.Task[None] | None:
        """The task running ``TradingNode.run_async``: done once the node stopped (or failed)."""
        return self._run_task

    async def start(self, timeout: float | None = None) -> None:
        """Start the node and return once its trader is running; NodeStartError otherwise."""
        if self._run_task is not None:
            raise RuntimeError("the node was already started")
        self._run_task = asyncio.get_running_loop().create_task(self.node.run_async(), name="trading-node")
        limit = self.timeouts.start + 5.0 if timeout is None else timeout
        deadline = time.monotonic() + limit
        while not self.node.trader.is_running:
            # A client whose connect failed never connects (NautilusTrader does not retry it): say why now,
            # not after the start's timeouts; the pod's restart, with its back-off, is the retry.
            if failures := self._connect_failures():
                raise NodeStartError("; ".join(failures))
            if self._run_task.done():
                self._run_task.result()  # raises what run_async raised
                raise NodeStartError("the node stopped while starting (see the NautilusTrader log above)")
            if time.monotonic() > deadline:
                raise NodeStartError(self._why_not_running(limit))
            await asyncio.sleep(0.002)
        if self.feed_lockstep is not None:  # as a replay's, once what strategies sent from on_start is processed
            await drain(self.kernel)
            synchronous_risk_commands(self.kernel)

    def _why_not_running(self, waited: float) -> str:
        k = self.kernel
        parts = [f"the node was not running after {waited:.0f}s"]
        if not k.data_engine.check_connected():
            parts.append(f"data clients not connected ({', '.join(map(str, k.data_engine.registered_clients))})")
        if not k.exec_engine.check_connected():
            parts.append(f"execution clients not connected ({', '.join(map(str, k.exec_engine.registered_clients))})")
            parts.extend(self._connect_failures())
        if len(parts) == 1:
            parts.append("reconciliation or portfolio initialisation did not complete")
        return "; ".join(parts)

    def _connect_failures(self) -> list[str]:
        """Why each execution client that tried to connect and failed did (the venue's answer), if any."""
        # Private in NautilusTrader 1.231 (the engine hands out no client); pinned by test_nautilus_pins.
        return [
            f"execution client {client_id} could not connect: {failure}"
            for client_id, client in self.kernel.exec_engine._clients.items()
            if (failure := connect_failure(client)) is not None
        ]

    async def stop(self) -> None:
        """Stop the trader (actors, then strategies' ``on_stop``) and the clients, then wait for the run task."""
        if self._run_task is None:
            return
        if self.replay is not None:
            self.replay.stop_replay()
        await self.node.stop_async()
        if self.feed_lockstep is not None:
            await self.feed_lockstep.stop()
        try:
            await asyncio.wait_for(asyncio.shield(self._run_task), timeout=self.timeouts.shutdown)
        except asyncio.CancelledError:
            pass
        except TimeoutError:
            # The engines' queue tasks end on sentinels the stop sent; if they have not, the
            # node is stopped anyway (trader, clients, engines): say so and carry on.
            logger.warning("the node's run task had not ended %.1fs after the stop", self.timeouts.shutdown)

    def dispose(self) -> None:
        """Release the engines. Unlike ``TradingNode.dispose`` it never stops or closes the event loop.

        The kernel made its thread pool the loop's default executor; it is left running, since
        the rest of the program (DNS lookups, ``asyncio.to_thread``) goes on using it.
        """
        self.kernel.dispose()


def trader_id_for(config: RuntimeConfig) -> str:
    """``NAME-TAG``: the strategy's name in the node's log, the same in the backtest (same id on both sides).

    NautilusTrader puts the tag (after the last hyphen) into every client order id,
    ``O-<time to the second>-<trader tag>-<strategy tag>-<count>``. With one tag for every strategy, two
    strategies of one venue account ordering in the same second (the same bar's close) built the same ids:
    Binance refused the second ("Duplicate order sent") and each node took the other's order events for its
    own. So the tag is four characters of a digest of ``namespace/name``: stable across restarts, different
    for two strategies (1 in about a million pairs share one), and the id stays within Binance's 36 characters.
    """
    name = "".join(c if c.isalnum() else "-" for c in config.strategy.name.upper()).strip("-") or "LIVESTRAT"
    digest = hashlib.sha256(config.strategy.key.encode()).digest()
    return f"{name}-{base64.b32encode(digest).decode()[:4]}"


# Components whose DEBUG lines carry what must not reach a log: NautilusTrader 1.231's Binance HTTP client logs each
# request's query at DEBUG (``BinanceHttpClient.send_request``), a signed one's ``signature=`` with it (a request the
# venue takes for its recvWindow). At INFO whatever the node's level (tests/runtime/test_secrets.py).
QUIET_COMPONENTS = {"BinanceHttpClient": "INFO"}


def nautilus_log_level(level: str) -> str:
    try:
        return _LOG_LEVELS[level.upper()]
    except KeyError:
        raise NodeBuildError(f"log level {level!r} is not one of {', '.join(_LOG_LEVELS)}") from None


# A paper node's RiskEngine rate: no throttle on the wall clock (the order gate counts market time).
UNTHROTTLED = "1000000000/00:00:01"


def risk_engine_config(spec: LiveStrategySpec, *, replay_speed: float | None) -> LiveRiskEngineConfig:
    """The RiskEngine's pre-trade limits from ``spec.risk`` (``replay_speed`` given: a paper replay, whose
    submit and modify rates the order gate counts on market time instead: ``UNTHROTTLED``)."""
    risk = spec.risk
    notional: dict[str, str] = {}
    if risk.max_notional_per_order is not None:
        # Decimal from the text, not the float, so 0.1 stays 0.1.
        value = str(Decimal(str(risk.max_notional_per_order)))
        notional = dict.fromkeys(spec.instruments, value)
    submit, modify = risk.max_order_submit_rate, risk.max_order_modify_rate
    if replay_speed is not None:
        submit = modify = UNTHROTTLED
    return LiveRiskEngineConfig(
        max_order_submit_rate=submit,
        max_order_modify_rate=modify,
        max_notional_per_order=notional,  # type: ignore[arg-type]  # RiskEngine reads Decimal(value)
        # An exception in an engine's queue otherwise ends the process at once (os._exit),
        # leaving orders open at the venue; this way it becomes a ShutdownSystem (see module doc).
        graceful_shutdown_on_exception=True,
    )


def _replay_client_config(config: RuntimeConfig, catalog: StrategyCatalog) -> ReplayDataClientConfig:
    replay = config.spec.data.replay
    assert replay is not None
    data_types = set(replay.data_types)
    if ReplayDataType.BARS in data_types and not catalog.bar_types:
        raise NodeBuildError(
            f"data.replay.dataTypes asks for bars but the catalog at {catalog.path} holds no EXTERNAL bars "
            f"for {', '.join(config.spec.instruments)}"
        )
    return ReplayDataClientConfig(
        catalog_path=catalog.path,
        instrument_ids=list(config.spec.instruments),
        bar_types=list(catalog.bar_types) if ReplayDataType.BARS in data_types else [],
        quotes=ReplayDataType.QUOTES in data_types,
        trades=ReplayDataType.TRADES in data_types,
        start=replay.start,
        end=replay.end,
        speed=replay.speed,
        lockstep=True,
        synchronous_commands=True,
    )


def _take_signals(node: TradingNode, handler: Callable[[signal.Signals], None] | None) -> None:
    loop = node.kernel.loop
    for sig in NAUTILUS_SIGNALS:
        loop.remove_signal_handler(sig)  # restores SIG_DFL (SIGINT: KeyboardInterrupt)
    if handler is not None:
        for sig in HANDLED_SIGNALS:
            loop.add_signal_handler(sig, handler, sig)


def _add_exec_algorithms(
    node: TradingNode, algorithms: Sequence[ExecAlgorithm], *, market_time: bool
) -> list[TestClock]:
    """Register ``spec.strategy.execAlgorithms`` (each on its ``{id}.execute`` endpoint); the clocks to drive.

    Live, ``Trader.add_exec_algorithm`` gives each the trader's kind of clock: wall time. In a paper replay
    its timers (a TWAP's slices) must run on market time, as a backtest's do: each gets a ``TestClock`` the
    replay advances (``ReplayDataClient.drive_clocks``). The trader makes every component's clock a new
    instance of its own clock's class and NautilusTrader 1.231 offers no way to choose another, so a paper
    algorithm is registered as ``add_exec_algorithm`` does it, with that clock, and put in
    ``Trader._exec_algorithms`` (private, pinned in test_nautilus_pins.py) for the trader to start and stop.
    """
    trader = node.trader
    if not market_time:
        for algorithm in algorithms:
            trader.add_exec_algorithm(algorithm)
        return []
    kernel = node.kernel
    clocks = []
    for algorithm in algorithms:
        if algorithm.id in trader._exec_algorithms:
            raise NodeBuildError(f"two execution algorithms have the id {algorithm.id}")
        clock = TestClock()
        algorithm.register(
            trader_id=trader.id, portfolio=kernel.portfolio, msgbus=kernel.msgbus, cache=kernel.cache, clock=clock
        )
        trader._exec_algorithms[algorithm.id] = algorithm
        clocks.append(clock)
    return clocks


def _warn_unclaimed(instruments: Sequence[str], strategy: Strategy) -> None:
    """A strategy whose own ``external_order_claims`` leaves out instruments of the spec: after a restart their
    orders and positions at the venue are strategy EXTERNAL's, which the strategy does not see as its own."""
    own = {str(i) for i in strategy.external_order_claims}
    unclaimed = [i for i in instruments if i not in own]
    if unclaimed:
        logger.warning(
            "spec.strategy.config.external_order_claims leaves out %s: after a restart the venue's orders and "
            "positions of %s are reconciled as strategy EXTERNAL's, and the strategy does not see them as its own "
            "(it may place them again); leave the field unset to have the runtime claim every instrument of the spec",
            ", ".join(unclaimed),
            "it" if len(unclaimed) == 1 else "them",
        )


def build_node(
    config: RuntimeConfig,
    *,
    catalog: StrategyCatalog | None = None,
    actors: Sequence[Actor] = (),
    environ: Mapping[str, str] = os.environ,
    signal_handler: Callable[[signal.Signals], None] | None = None,
    shutdown_handler: Callable[[ShutdownSystem], None] | None = None,
    log_level: str | None = None,
) -> StrategyNode:
    """Build (not start) the node for ``config``; call it inside the event loop that will run the node.

    ``catalog``: the paper catalog when the caller already prepared it (``prepare_catalog``);
    otherwise a paper node prepares it here (writing ``data.sample`` if needed).
    """
    spec = config.spec
    paper = spec.mode == Mode.PAPER
    # First: the most common user error, and no side effects. Live: the strategy claims the spec's instruments, so
    # that what reconciliation brings back after a restart is its own (strategy_source's docstring).
    loaded = load_strategy(spec.strategy, config.code_path, claims=() if paper else spec.instruments)
    if not paper:
        _warn_unclaimed(spec.instruments, loaded.strategy)
    timeouts = PAPER_TIMEOUTS if paper else LIVE_TIMEOUTS
    data_clients: dict[str, LiveDataClientConfig] = {}
    exec_clients: dict[str, LiveExecClientConfig] = {}
    data_factories: dict[str, type[LiveDataClientFactory]] = {}
    exec_factories: dict[str, type[LiveExecClientFactory]] = {}
    replay_speed: float | None = None
    account_type = "MARGIN"
    reports_positions = True
    feed: LiveFeed | None = None
    if paper and spec.venue.adapter != Adapter.SANDBOX:
        # Paper on a live feed: the venue's data client (no keys) feeds the sandbox.
        feed = live_feed(spec, environ)
        timeouts = LIVE_TIMEOUTS  # a network data client connects, as a live one does
        venue = paper_venue(spec, live_feed=(feed.venue, feed.sandbox_account_type))
        data_clients[feed.name] = feed.data_config
        data_factories[feed.name] = feed.data_factory
        exec_clients[SANDBOX_CLIENT_NAME] = venue.sandbox_config()
        exec_factories[SANDBOX_CLIENT_NAME] = SandboxLiveExecClientFactory
        account_type = venue.account_type
        catalog = None  # instruments and data come from the venue
    elif paper:
        if spec.data.replay is None:
            raise NodeBuildError(
                "a paper strategy on the sandbox adapter needs data.replay: the sandbox has no market of its own "
                "(for a live feed, set venue.adapter to the venue)"
            )
        catalog = catalog if catalog is not None else prepare_catalog(config)
        # A replay with nothing the strategy can use starts, trades nothing and ends "fine": say so first.
        for finding in data_findings(config, catalog):
            logger.warning("%s", finding.message)
        venue = paper_venue(spec)
        data_clients[REPLAY_CLIENT_ID] = _replay_client_config(config, catalog)
        data_factories[REPLAY_CLIENT_ID] = ReplayDataClientFactory
        exec_clients[SANDBOX_CLIENT_NAME] = venue.sandbox_config()
        exec_factories[SANDBOX_CLIENT_NAME] = SandboxLiveExecClientFactory
        replay_speed = spec.data.replay.speed
        account_type = venue.account_type
    else:
        clients = live_venue(spec, environ)
        account_type = clients.nautilus_account_type
        reports_positions = clients.reports_positions
        data_clients[clients.name] = clients.data_config
        exec_clients[clients.name] = clients.exec_config
        data_factories[clients.name] = clients.data_factory
        exec_factories[clients.name] = clients.exec_factory

    node_config = TradingNodeConfig(
        trader_id=trader_id_for(config),
        logging=LoggingConfig(
            log_level=nautilus_log_level(log_level or config.log_level),
            log_colors=False,
            log_component_levels=QUIET_COMPONENTS,
        ),
        data_engine=LiveDataEngineConfig(graceful_shutdown_on_exception=True),
        risk_engine=risk_engine_config(spec, replay_speed=replay_speed),
        exec_engine=LiveExecEngineConfig(
            # Live: rebuild open orders and positions from the venue at start, then keep
            # checking open orders (a missed websocket message must not hide an order).
            reconciliation=not paper,
            open_check_interval_secs=None if paper else 10.0,
            # A venue that reports no positions (Binance spot) would have the engine "correct" the position the
            # fills built with an invented fill; there the fills are the position (live.venues.reports_positions).
            generate_missing_orders=reports_positions,
            graceful_shutdown_on_exception=True,
        ),
        data_clients=data_clients,
        exec_clients=exec_clients,
        timeout_connection=timeouts.connection,
        timeout_reconciliation=timeouts.reconciliation,
        timeout_portfolio=timeouts.portfolio,
        timeout_disconnection=timeouts.disconnection,
        timeout_post_stop=timeouts.post_stop,
        timeout_shutdown=timeouts.shutdown,
    )
    node = TradingNode(config=node_config)
    _take_signals(node, signal_handler)
    if shutdown_handler is not None:
        # The kernel's own handler is private in NautilusTrader 1.231; pinned by test_nautilus_pins.
        node.kernel.msgbus.unsubscribe(SHUTDOWN_TOPIC, node.kernel._on_shutdown_system)
        node.kernel.msgbus.subscribe(SHUTDOWN_TOPIC, shutdown_handler)
    if catalog is not None:
        for instrument in catalog.instruments:
            node.kernel.cache.add_instrument(instrument)
    node.trader.add_strategy(loaded.strategy)
    market_clocks = _add_exec_algorithms(node, loaded.exec_algorithms, market_time=paper)
    for actor in actors:
        node.trader.add_actor(actor)
    for name, factory in data_factories.items():
        node.add_data_client_factory(name, factory)
    for name, factory in exec_factories.items():
        node.add_exec_client_factory(name, factory)
    node.build()

    replay: ReplayDataClient | None = None
    lockstep: FeedLockstep | None = None
    if paper and feed is None:
        # Private in NautilusTrader 1.231 (the builder hands out no client); pinned by test_nautilus_pins.
        replay = node.kernel.data_engine._clients[ClientId(REPLAY_CLIENT_ID)]
        assert isinstance(replay, ReplayDataClient)
        replay.attach_kernel(node.kernel)
        replay.drive_clocks(market_clocks)
        events_handler = synchronous_exec_events(node.kernel)
    elif paper:
        # The sandbox matches synchronously, on the live feed as on a replay: its events are applied at once, and
        # the node takes the feed's data one point at a time, as a backtest does.
        events_handler = synchronous_exec_events(node.kernel)
        lockstep = FeedLockstep(node.kernel)
    else:
        events_handler = node.kernel.exec_engine.process
        keep_every_reported_fill(node.kernel.exec_engine)
        # Private in NautilusTrader 1.231 (the builder hands out no client); pinned by test_nautilus_pins.
        start_over = start_reconciled(node.kernel.exec_engine)
        for client in node.kernel.exec_engine._clients.values():
            ask_in_order(client, reports_positions=reports_positions, start_over=start_over)
    return StrategyNode(
        node=node,
        config=config,
        strategy=loaded.strategy,
        actors=tuple(actors),
        timeouts=timeouts,
        nautilus_account_type=account_type,
        replay=replay,
        catalog=catalog,
        exec_events_handler=events_handler,
        feed_lockstep=lockstep,
    )
