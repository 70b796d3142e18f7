"""The runtime's Prometheus metrics, and the event-loop lag it measures for them.

Metrics are read when Prometheus scrapes, from a ``RuntimeMetrics`` snapshot the runtime
assembles on demand: nothing is counted on the node's hot path for them except what the
reporter already counts. Each runtime has its own registry (no process-global state, so
tests may run several runtimes in one process). No label carries a secret: instruments,
currencies, event kinds and state names only.

| metric | type | labels |
|---|---|---|
| ``livestrat_info`` | gauge (1) | ``strategy``, ``mode`` |
| ``livestrat_ready`` | gauge 0/1 | |
| ``livestrat_fills`` | gauge | fills the ledger holds for the strategy (earlier runs included) |
| ``livestrat_fills_seen_total`` | counter | fills this process saw |
| ``livestrat_fills_not_recorded_total`` | counter | fills the ledger refused (should stay 0) |
| ``livestrat_fills_superseded_total`` | counter | inferred fills superseded whole (``ledger.supersede``) |
| ``livestrat_pnl`` | gauge | ``kind`` (realized, unrealized, total), ``currency`` |
| ``livestrat_position`` | gauge | ``instrument`` (signed net quantity) |
| ``livestrat_open_orders`` | gauge | working orders (``orders_view``) |
| ``livestrat_order_events_total`` | counter | ``event`` (OrderSubmitted, OrderFilled, OrderDenied, ...) |
| ``livestrat_risk_state`` | gauge 0/1 | ``state`` (Active, Reducing, Halted) |
| ``livestrat_risk_daily_pnl``, ``livestrat_risk_drawdown`` | gauge | ``currency`` |
| ``livestrat_orders_denied_by_guard_total`` | counter | |
| ``livestrat_event_loop_lag_seconds`` | histogram | how late a 100 ms tick of the event loop ran |
| ``livestrat_ledger_pending``, ``livestrat_ledger_oldest_pending_seconds`` | gauge | |
| ``livestrat_ledger_write_failures`` | gauge | consecutive failed ledger writes |
| ``livestrat_ledger_fence_held`` | gauge 0/1 | |
| ``livestrat_ledger_fence_confirmed`` | gauge 0/1 | the fence confirmed within its lease (0: new orders wait) |
| ``livestrat_ledger_not_durable``, ``livestrat_ledger_spooled`` | gauge | fills in memory only; in the spool |
| ``livestrat_orders_held`` | gauge 0/1 | the gate holds new orders (the fence unconfirmed, fills not durable) |
| ``livestrat_status_pushes_total``, ``livestrat_status_push_failures_total`` | counter | |
| ``livestrat_replay_events``, ``livestrat_replay_events_total_planned`` | gauge | paper replay progress |
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from livestrat.api.status import RiskStateName

LAG_TICK_SECONDS = 0.1
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class RuntimeMetrics:
    """The numbers ``/metrics`` exports, taken at scrape time."""

    strategy: str
    mode: str
    ready: bool = False
    fills_in_ledger: int | None = None
    fills_seen: int = 0
    fills_not_recorded: int = 0
    fills_superseded: int = 0
    pnl: Mapping[str, Mapping[str, Decimal]] = field(default_factory=dict)  # kind -> currency -> amount
    positions: Mapping[str, Decimal] = field(default_factory=dict)
    open_orders: int = 0
    order_events: Mapping[str, int] = field(default_factory=dict)
    risk_state: str | None = None
    daily_pnl: Mapping[str, Decimal] = field(default_factory=dict)
    drawdown: Mapping[str, Decimal] = field(default_factory=dict)
    denied_by_guard: int = 0
    ledger_pending: int | None = None
    ledger_oldest_pending_seconds: float | None = None
    ledger_write_failures: int | None = None
    ledger_fence_held: bool | None = None
    ledger_fence_confirmed: bool | None = None
    ledger_not_durable: int | None = None
    ledger_spooled: int | None = None
    orders_held: bool | None = None
    status_pushes: int | None = None
    status_push_failures: int | None = None
    replay_events: int | None = None
    replay_total: int | None = None


def _gauge(name: str, doc: str, value: float | None, labels: Mapping[str, str] | None = None) -> Iterator[Metric]:
    if value is None:
        return
    family = GaugeMetricFamily(name, doc, labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), float(value))
    yield family


def _counter(name: str, doc: str, value: float | None) -> Iterator[Metric]:
    if value is None:
        return
    family = CounterMetricFamily(name, doc)
    family.add_metric([], float(value))
    yield family


class RuntimeCollector(Collector):
    """Turns the runtime's ``RuntimeMetrics`` into metric families at each scrape."""

    def __init__(self, read: Callable[[], RuntimeMetrics]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        m = self._read()
        yield from _gauge(
            "livestrat_info", "The strategy this runtime trades.", 1, {"strategy": m.strategy, "mode": m.mode}
        )
        yield from _gauge("livestrat_ready", "1 once the node runs and the ledger fence is held.", int(m.ready))
        yield from _gauge("livestrat_fills", "Fills the ledger holds for this strategy.", m.fills_in_ledger)
        yield from _counter("livestrat_fills_seen", "Fills this process saw.", m.fills_seen)
        yield from _counter("livestrat_fills_not_recorded", "Fills the ledger refused.", m.fills_not_recorded)
        yield from _counter(
            "livestrat_fills_superseded",
            "Inferred fills this process took out of the ledger's count whole: the venue's trades of the order came.",
            m.fills_superseded,
        )

        pnl = GaugeMetricFamily("livestrat_pnl", "PnL by kind and currency.", labels=["kind", "currency"])
        for kind, amounts in m.pnl.items():
            for currency, amount in amounts.items():
                pnl.add_metric([kind, currency], float(amount))
        yield pnl
        positions = GaugeMetricFamily("livestrat_position", "Signed net position.", labels=["instrument"])
        for instrument, quantity in m.positions.items():
            positions.add_metric([instrument], float(quantity))
        yield positions
        yield from _gauge(
            "livestrat_open_orders",
            "Working orders: open or in flight at a venue, emulated, or held by an execution algorithm.",
            m.open_orders,
        )
        events = CounterMetricFamily("livestrat_order_events", "Order events by kind.", labels=["event"])
        for event, count in sorted(m.order_events.items()):
            events.add_metric([event], float(count))
        yield events

        if m.risk_state is not None:
            risk = GaugeMetricFamily("livestrat_risk_state", "1 for the current risk state.", labels=["state"])
            for state in RiskStateName:
                risk.add_metric([state.value], float(m.risk_state == state.value))
            yield risk
        for name, doc, amounts in (
            ("livestrat_risk_daily_pnl", "PnL since the UTC day began.", m.daily_pnl),
            ("livestrat_risk_drawdown", "Total PnL below its peak.", m.drawdown),
        ):
            family = GaugeMetricFamily(name, doc, labels=["currency"])
            for currency, amount in amounts.items():
                family.add_metric([currency], float(amount))
            yield family
        yield from _counter(
            "livestrat_orders_denied_by_guard", "Orders the risk guard's gate denied.", m.denied_by_guard
        )

        yield from _gauge("livestrat_ledger_pending", "Fills not yet committed.", m.ledger_pending)
        yield from _gauge(
            "livestrat_ledger_oldest_pending_seconds",
            "Age of the oldest uncommitted fill.",
            m.ledger_oldest_pending_seconds,
        )
        yield from _gauge(
            "livestrat_ledger_write_failures", "Consecutive failed ledger writes.", m.ledger_write_failures
        )
        if m.ledger_fence_held is not None:
            yield from _gauge("livestrat_ledger_fence_held", "1 while the fence is held.", int(m.ledger_fence_held))
        if m.ledger_fence_confirmed is not None:
            yield from _gauge(
                "livestrat_ledger_fence_confirmed",
                "1 while the fence is confirmed within its lease.",
                int(m.ledger_fence_confirmed),
            )
        yield from _gauge(
            "livestrat_ledger_not_durable", "Fills neither committed nor in the spool.", m.ledger_not_durable
        )
        yield from _gauge("livestrat_ledger_spooled", "Fills in the spool, not committed yet.", m.ledger_spooled)
        if m.orders_held is not None:
            yield from _gauge("livestrat_orders_held", "1 while the gate holds new orders.", int(m.orders_held))
        yield from _counter("livestrat_status_pushes", "Status patches accepted.", m.status_pushes)
        yield from _counter("livestrat_status_push_failures", "Status patches that failed.", m.status_push_failures)
        yield from _gauge("livestrat_replay_events", "Replay events handed to the node.", m.replay_events)
        yield from _gauge("livestrat_replay_events_total_planned", "Replay events to hand over.", m.replay_total)


class LoopLagMeter:
    """How late a periodic tick of the event loop runs: what the node's own handlers feel."""

    def __init__(self, registry: CollectorRegistry, tick: float = LAG_TICK_SECONDS) -> None:
        self._tick = tick
        self.histogram = Histogram(
            "livestrat_event_loop_lag_seconds",
            "How late a periodic tick of the event loop ran.",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.last = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag-meter")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self._tick)
            self.last = max(0.0, time.perf_counter() - before - self._tick)
            self.histogram.observe(self.last)


def new_registry(read: Callable[[], RuntimeMetrics]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RuntimeCollector(read))
    return registry
