"""The replay data client: a catalog's history streamed through a live TradingNode (paper mode).

``ReplayDataClient`` is a ``LiveMarketDataClient`` that, once the node's trader is running,
loads the configured bars (and quotes and trades) from a ParquetDataCatalog, orders them by
``ts_init`` as the backtest engine does, and hands each one to the node's data engine. It
serves historical requests from the same catalog, never past the replay's current time.

- **Pace.** ``speed=0`` streams as fast as the node takes it; ``speed=S`` keeps market time
  ``S`` times faster than wall time (``ReplayPacer``), 1 being real time.
- **Lockstep** (on by default, needed for paper/backtest parity). After each event the client
  waits until every queue of the node (data, risk, execution: commands and events) is empty,
  so an order the strategy sends on bar N is matched by the simulated exchange before bar
  N+1 exists, which is the backtest engine's order of things.
- **Time bars on market time.** The node aggregates time bars (``…-5-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL``,
  time bars from trades) on timers of its clock, which in a live node is the wall clock: a replay that
  runs a day of market data in a second would close no 5-minute bar at all. Each time bar aggregator the
  node's subscriptions create is therefore moved onto a clock of its own that the replayed data advances
  (NautilusTrader's own mode for aggregating history: ``set_clock(TestClock())`` and historical mode,
  handing its bars to the live ``process``), which is how a backtest's clock moves: the same bars, at
  the same market times, at any replay speed.
- **Progress.** ``progress`` (events replayed, total, finished, market time) for the progress
  display and the status; ``finished`` is an ``asyncio.Event``, and a ``ReplayFinished``
  message goes out on the message bus topic ``REPLAY_FINISHED_TOPIC``.

The node builder (``strategy_runtime.node``) creates and registers the client itself so it
keeps a handle on it; ``ReplayDataClientFactory`` is there for nodes configured by hand.

One concern, the replay data client, with its pace and lockstep (longer than most modules:
NautilusTrader's data client interface is wide).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus, TestClock
from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.core.data import Data
from nautilus_trader.data.aggregation import TimeBarAggregator
from nautilus_trader.live.config import LiveDataClientConfig
from nautilus_trader.live.data_client import LiveMarketDataClient
from nautilus_trader.live.factories import LiveDataClientFactory
from nautilus_trader.model.identifiers import ClientId, InstrumentId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from strategy_runtime.paper import feed_lockstep
from strategy_runtime.paper.market_clocks import MarketClocks
from strategy_runtime.paper.sandbox import synchronous_risk_commands

if TYPE_CHECKING:
    from nautilus_trader.data.messages import (
        RequestBars,
        RequestInstrument,
        RequestInstruments,
        RequestQuoteTicks,
        RequestTradeTicks,
    )
    from nautilus_trader.system.kernel import NautilusKernel

REPLAY_FINISHED_TOPIC = "livestrat.replay.finished"
REPLAY_CLIENT_ID = "REPLAY"


@dataclass(frozen=True)
class ReplayProgress:
    """How far the replay has come. ``total`` is None until the catalog has been read."""

    events: int = 0
    total: int | None = None
    finished: bool = False
    market_time_ns: int | None = None  # ts_init of the last event handed to the node

    @property
    def fraction(self) -> float:
        if self.finished:
            return 1.0
        return self.events / self.total if self.total else 0.0


@dataclass(frozen=True)
class ReplayFinished:
    """Published on ``REPLAY_FINISHED_TOPIC`` when the last event has been processed (or the replay stopped)."""

    client_id: str
    events: int
    total: int
    stopped_early: bool
    first_ts_ns: int | None
    last_ts_ns: int | None
    wall_seconds: float


class ReplayDataClientConfig(LiveDataClientConfig, frozen=True, kw_only=True):
    """What to replay and how fast.

    ``start``/``end`` are inclusive, as RFC 3339 strings or nanoseconds; None means the
    catalog's first/last event. ``speed`` 0 streams as fast as possible.
    """

    catalog_path: str
    instrument_ids: list[str]
    bar_types: list[str] = []  # noqa: RUF012  (msgspec copies mutable defaults)
    quotes: bool = False
    trades: bool = False
    start: str | int | None = None
    end: str | int | None = None
    speed: float = 0.0
    lockstep: bool = True
    # A paper node's: once the trader runs, the RiskEngine executes commands as they are sent (paper.sandbox).
    synchronous_commands: bool = False


class ReplayPacer:
    """When each event is due in wall time: market time runs ``speed`` times faster than the wall clock.

    The first event sets the origin; ``delay(ts)`` is how long to wait before handing over
    the event stamped ``ts`` (nanoseconds), never negative. A schedule from one origin rather
    than a sleep per gap: time spent processing an event is not added to the next wait, so
    the pace does not drift.
    """

    def __init__(self, speed: float, now: Callable[[], float] = time.monotonic) -> None:
        if speed <= 0:
            raise ValueError(f"a pacer needs a positive speed, got {speed}")
        self.speed = speed
        self._now = now
        self._origin: tuple[int, float] | None = None

    def delay(self, ts_ns: int) -> float:
        if self._origin is None:
            self._origin = (ts_ns, self._now())
            return 0.0
        first_ts, wall0 = self._origin
        due = wall0 + (ts_ns - first_ts) / 1e9 / self.speed
        return max(0.0, due - self._now())


class ReplayDataClient(LiveMarketDataClient):
    """Streams a catalog through the node; see the module docstring."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client_id: ClientId,
        config: ReplayDataClientConfig,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> None:
        super().__init__(
            loop=loop,
            client_id=client_id,
            venue=None,  # no venue: registered as the default client, serves every venue
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            instrument_provider=InstrumentProvider(),
            config=config,
        )
        self._replay_config = config
        self._catalog = ParquetDataCatalog(config.catalog_path)
        self._kernel: NautilusKernel | None = None
        self._stop_requested = False
        self._holds: list[asyncio.Future[Any]] = []  # the next event waits until these are done (``hold``)
        # Market time, as a backtest's clock: set to each event's ts_init before the node gets it, firing
        # the timers due before it first (the order gate's rate throttles count on it: ``market_clock``).
        self.market_clock = TestClock()
        self._task: asyncio.Task[None] | None = None
        self._progress = ReplayProgress()
        self.finished = asyncio.Event()
        self._market_clocks = MarketClocks([], self.drain)  # drive_clocks: components' clocks on market time
        self.failure: BaseException | None = None  # why the replay ended early, if it failed
        # Replaceable for tests: how the client waits for an event's due time.
        self.sleep: Callable[[float], Any] = asyncio.sleep
        self.now: Callable[[], float] = time.monotonic

        # The simulated exchange registers, when it connects, only the instruments already in
        # the cache; that happens before this client's (asynchronous) connect has run, so the
        # instruments go into the cache now, at build.
        self._instruments: list[Instrument] = []
        for instrument_id in config.instrument_ids:
            instrument = cache.instrument(InstrumentId.from_str(instrument_id))
            if instrument is None:
                found = self._catalog.instruments(instrument_ids=[instrument_id])
                if not found:
                    raise ValueError(f"instrument {instrument_id} not found in the catalog at {config.catalog_path}")
                instrument = found[0]
                cache.add_instrument(instrument)
            self._instruments.append(instrument)

    # -- the runner's side -------------------------------------------------------------------

    def attach_kernel(self, kernel: NautilusKernel) -> None:
        """Give the client the node's engines: needed to know when the trader runs and for lockstep."""
        self._kernel = kernel

    def drive_clocks(self, clocks: list[TestClock]) -> None:
        """Run these clocks (the execution algorithms') on market time, timers firing in a backtest's order
        (``paper.market_clocks``)."""
        self._market_clocks = MarketClocks(clocks, self.drain)

    @property
    def progress(self) -> ReplayProgress:
        return self._progress

    def hold(self, until: asyncio.Future[Any]) -> None:
        """Hand over no further event until ``until`` is done, and the node has processed what it caused.

        The runtime's risk halt: a backtest contains a breach before its next data point reaches the
        venue (``local.backtest.BacktestHalt``), so the replay lets the halt's first containment
        (cancels, the flatten's fills) happen at the breach's market time too.
        """
        self._holds.append(until)

    def stop_replay(self) -> None:
        """Hand over no further events (a halt stops the market data before cancelling orders)."""
        self._stop_requested = True

    # -- connection --------------------------------------------------------------------------

    async def _connect(self) -> None:
        for instrument in self._instruments:
            self._handle_data(instrument)
        self._task = self._loop.create_task(self._replay(), name=f"replay-{self.id}")

    async def _disconnect(self) -> None:
        self._stop_requested = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # -- subscriptions: the replay streams what it was configured with, whoever subscribes ----

    async def _subscribe(self, command: Any) -> None:
        pass

    async def _subscribe_instruments(self, command: Any) -> None:
        pass

    async def _subscribe_instrument(self, command: Any) -> None:
        pass

    def _time_bars_on_market_time(self) -> None:
        """Move every time bar aggregator of the node's subscriptions onto a clock the replayed data advances."""
        if self._kernel is None:
            return
        engine = self._kernel.data_engine
        for (_, request_id), aggregator in list(engine._bar_aggregators.items()):
            if request_id is not None or not isinstance(aggregator, TimeBarAggregator) or aggregator.historical_mode:
                continue  # a request's own aggregator, another kind, or one moved already
            aggregator.stop_timer()  # its timer on the wall clock
            aggregator.set_clock(TestClock())  # set to the first update's time by the aggregator itself
            aggregator.set_historical_mode(True, engine.process)

    async def _subscribe_quote_ticks(self, command: Any) -> None:
        self._time_bars_on_market_time()
        if not self._replay_config.quotes:
            self._log.warning(
                f"{command.instrument_id} quotes were subscribed but the replay streams none: "
                "add quotes to spec.data.replay.dataTypes"
            )

    async def _subscribe_trade_ticks(self, command: Any) -> None:
        self._time_bars_on_market_time()
        if not self._replay_config.trades:
            self._log.warning(
                f"{command.instrument_id} trades were subscribed but the replay streams none: "
                "add trades to spec.data.replay.dataTypes"
            )

    async def _subscribe_bars(self, command: Any) -> None:
        self._time_bars_on_market_time()
        if str(command.bar_type) not in self._replay_config.bar_types:
            self._log.warning(
                f"bars {command.bar_type} were subscribed but the catalog holds none to replay "
                f"(it has: {', '.join(self._replay_config.bar_types) or 'no bars'})"
            )

    async def _subscribe_order_book_deltas(self, command: Any) -> None:
        self._log.warning("order book data is not replayed")

    async def _subscribe_order_book_snapshots(self, command: Any) -> None:
        self._log.warning("order book data is not replayed")

    async def _subscribe_instrument_status(self, command: Any) -> None:
        pass

    async def _subscribe_instrument_close(self, command: Any) -> None:
        pass

    async def _subscribe_mark_prices(self, command: Any) -> None:
        pass

    async def _subscribe_index_prices(self, command: Any) -> None:
        pass

    async def _subscribe_funding_rates(self, command: Any) -> None:
        pass

    async def _unsubscribe(self, command: Any) -> None:
        pass

    async def _unsubscribe_instruments(self, command: Any) -> None:
        pass

    async def _unsubscribe_instrument(self, command: Any) -> None:
        pass

    async def _unsubscribe_quote_ticks(self, command: Any) -> None:
        pass

    async def _unsubscribe_trade_ticks(self, command: Any) -> None:
        pass

    async def _unsubscribe_bars(self, command: Any) -> None:
        pass

    async def _unsubscribe_order_book_deltas(self, command: Any) -> None:
        pass

    async def _unsubscribe_order_book_snapshots(self, command: Any) -> None:
        pass

    async def _unsubscribe_instrument_status(self, command: Any) -> None:
        pass

    async def _unsubscribe_instrument_close(self, command: Any) -> None:
        pass

    async def _unsubscribe_mark_prices(self, command: Any) -> None:
        pass

    async def _unsubscribe_index_prices(self, command: Any) -> None:
        pass

    async def _unsubscribe_funding_rates(self, command: Any) -> None:
        pass

    # -- historical requests: from the catalog, never past the replay's current time ---------

    def _not_after_cursor(self, items: list[Any]) -> list[Any]:
        cursor = self._progress.market_time_ns
        if cursor is None:
            return []
        return [x for x in items if x.ts_init <= cursor]

    async def _request_instrument(self, request: RequestInstrument) -> None:
        instrument = self._cache.instrument(request.instrument_id)
        if instrument is not None:
            self._handle_instrument(instrument, request.id, request.start, request.end, request.params)

    async def _request_instruments(self, request: RequestInstruments) -> None:
        found = [i for i in self._instruments if i.id.venue == request.venue]
        self._handle_instruments(request.venue, found, request.id, request.start, request.end, request.params)

    async def _request_bars(self, request: RequestBars) -> None:
        bars = self._not_after_cursor(
            self._catalog.bars(bar_types=[str(request.bar_type)], start=request.start, end=request.end)
        )
        if request.limit:
            bars = bars[-request.limit :]
        self._handle_bars(request.bar_type, bars, request.id, request.start, request.end, request.params)

    async def _request_quote_ticks(self, request: RequestQuoteTicks) -> None:
        ticks = self._not_after_cursor(
            self._catalog.quote_ticks(instrument_ids=[str(request.instrument_id)], start=request.start, end=request.end)
        )
        if request.limit:
            ticks = ticks[-request.limit :]
        self._handle_quote_ticks(request.instrument_id, ticks, request.id, request.start, request.end, request.params)

    async def _request_trade_ticks(self, request: RequestTradeTicks) -> None:
        ticks = self._not_after_cursor(
            self._catalog.trade_ticks(instrument_ids=[str(request.instrument_id)], start=request.start, end=request.end)
        )
        if request.limit:
            ticks = ticks[-request.limit :]
        self._handle_trade_ticks(request.instrument_id, ticks, request.id, request.start, request.end, request.params)

    # -- the replay --------------------------------------------------------------------------

    def load_events(self) -> list[Data]:
        """Every event to replay, ordered by ``ts_init`` (stable: bars, then quotes, then trades on a tie)."""
        cfg = self._replay_config
        window = {"start": cfg.start, "end": cfg.end}
        events: list[Data] = []
        if cfg.bar_types:
            events += self._catalog.bars(bar_types=list(cfg.bar_types), **window)
        if cfg.quotes:
            events += self._catalog.quote_ticks(instrument_ids=list(cfg.instrument_ids), **window)
        if cfg.trades:
            events += self._catalog.trade_ticks(instrument_ids=list(cfg.instrument_ids), **window)
        events.sort(key=lambda e: e.ts_init)
        return events

    async def drain(self) -> None:
        """Return once the node has processed everything handed to it so far (``feed_lockstep.drain``), and what
        it is held for (``hold``) is done, each hold followed by the node's work on it."""
        assert self._kernel is not None
        while True:
            await feed_lockstep.drain(self._kernel)
            if not self._holds:
                return
            await asyncio.wait([self._holds.pop(0)])  # never raises: a failed halt is the runtime's to report

    async def _wait_until_trading(self) -> None:
        if self._kernel is None:
            raise RuntimeError("ReplayDataClient.attach_kernel(node.kernel) was not called before the node started")
        while not self._kernel.trader.is_running:
            if self._stop_requested:
                return
            await asyncio.sleep(0.001)
        await self.drain()  # the strategies' subscriptions from on_start are processed first

    async def _replay(self) -> None:
        try:
            await self._wait_until_trading()
            self._time_bars_on_market_time()
            if self._replay_config.synchronous_commands and not self._stop_requested:
                synchronous_risk_commands(self._kernel)  # as a backtest's (paper.sandbox)
            if self._stop_requested:
                self._finish(0, None, None, 0.0)
                return
            # Reading a large catalog takes a while: keep the event loop (heartbeats, HTTP) free.
            events = await self._loop.run_in_executor(None, self.load_events)
            await self._stream(events)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Ends the replay (finished is set, so no one waits forever); the runner sees ``failure``.
            self.failure = exc
            self._log.exception("Replay failed", exc)
            self._finish(self._progress.events, None, self._progress.market_time_ns, 0.0)

    async def _stream(self, events: list[Data]) -> None:
        cfg = self._replay_config
        total = len(events)
        self._progress = ReplayProgress(events=0, total=total)
        self._log.info(f"Replaying {total} events at speed {cfg.speed or 'max'} (lockstep={cfg.lockstep})")
        pacer = ReplayPacer(cfg.speed, now=self.now) if cfg.speed > 0 else None
        handle = self._handle_data
        started = time.perf_counter()
        first_ts = events[0].ts_init if events else None
        count = 0
        clocks = self._market_clocks
        market_time = 0
        for event in events:
            if self._stop_requested:
                break
            if clocks and market_time and event.ts_init > market_time:
                await clocks.after(market_time)  # timers due at the last market time: after its events
            if pacer is not None:
                delay = pacer.delay(event.ts_init)
                if delay > 0:
                    await self.sleep(delay)
                    if self._stop_requested:
                        break
            if clocks and event.ts_init > market_time:
                await clocks.before(event.ts_init)  # timers due before this market time, then the clocks move
                market_time = event.ts_init
            self._advance_market_clock(event.ts_init)
            handle(event)
            count += 1
            self._progress = ReplayProgress(events=count, total=total, market_time_ns=event.ts_init)
            if cfg.lockstep:
                await self.drain()
            elif count % 256 == 0:
                await asyncio.sleep(0)  # without lockstep, still let the node breathe
        if clocks and market_time and not self._stop_requested:
            await clocks.after(market_time)
        await self.drain()
        self._finish(count, first_ts, self._progress.market_time_ns, time.perf_counter() - started)

    def _advance_market_clock(self, ts: int) -> None:
        """Market time moves to ``ts``: timers due before it fire first, those due at ``ts`` after the event
        (before the next one), as a backtest engine advances its clocks around each data point."""
        clock = self.market_clock
        if ts <= clock.timestamp_ns():
            return
        for handler in clock.advance_time(ts - 1):
            handler.handle()
        clock.set_time(ts)

    def _finish(self, count: int, first_ts: int | None, last_ts: int | None, wall_seconds: float) -> None:
        total = self._progress.total if self._progress.total is not None else count
        self._progress = ReplayProgress(events=count, total=total, finished=True, market_time_ns=last_ts)
        rate = f" ({count / wall_seconds:,.0f}/s)" if wall_seconds > 0 else ""
        self._log.info(f"Replay finished: {count} of {total} events in {wall_seconds:.3f}s{rate}")
        self.finished.set()
        self._msgbus.publish(
            REPLAY_FINISHED_TOPIC,
            ReplayFinished(
                client_id=self.id.value,
                events=count,
                total=total,
                stopped_early=count < total,
                first_ts_ns=first_ts,
                last_ts_ns=last_ts,
                wall_seconds=wall_seconds,
            ),
        )


class ReplayDataClientFactory(LiveDataClientFactory):
    """For a node configured by hand; remember to ``attach_kernel`` the client it creates."""

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: ReplayDataClientConfig,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> ReplayDataClient:
        return ReplayDataClient(
            loop=loop, client_id=ClientId(name), config=config, msgbus=msgbus, cache=cache, clock=clock
        )
