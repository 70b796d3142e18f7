"""The operator's own Prometheus metrics, served on ``/metrics`` (settings.metrics_port).

Per operator instance (a registry of its own, so several operators can run in one test
process): reconciliations and their errors, their duration, the strategies in each phase and
the failed ones by reason (what alerts need: ``HaltTimedOut``, ``HaltFailed``, ...), the API
requests the operator itself makes (kopf's watches and bookkeeping are not counted), the
events it posts and the pods it deletes; whether this replica acts (peering), and ``/readyz``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from livestrat.api.runtime_config import host_and_port
from livestrat.api.status import Phase

logger = logging.getLogger("livestrat.operator")


# Failure reasons always exported (0 when none), so that an alert on them has a series to watch.
ALERTED_FAILURES = ("HaltTimedOut", "HaltFailed", "ApplyFailed")
# Why kopf may pause a replica (strategy_operator.peering.Paused), always exported.
PAUSE_REASONS = ("PeeringObjectMissing", "SamePriorityPeer", "HigherPriorityPeer")


class _PhaseCollector(Collector):
    """``livestrat_operator_strategies{phase}`` and ``livestrat_operator_failed_strategies{reason}``,
    counted at scrape time from the operator's memory."""

    def __init__(self, phases: Mapping[tuple[str, str], str], failures: Mapping[tuple[str, str], str]) -> None:
        self._phases = phases
        self._failures = failures

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "livestrat_operator_strategies", "LiveStrategies this operator reconciles, by phase", labels=["phase"]
        )
        counts = dict.fromkeys((str(p) for p in Phase), 0)
        for phase in list(self._phases.values()):
            counts[phase] = counts.get(phase, 0) + 1
        for phase, count in sorted(counts.items()):
            family.add_metric([phase], count)
        yield family
        failed = GaugeMetricFamily(
            "livestrat_operator_failed_strategies",
            "LiveStrategies in phase Failed, by the reason of their Ready condition",
            labels=["reason"],
        )
        reasons = dict.fromkeys(ALERTED_FAILURES, 0)
        for reason in list(self._failures.values()):
            reasons[reason] = reasons.get(reason, 0) + 1
        for reason, count in sorted(reasons.items()):
            failed.add_metric([reason], count)
        yield failed


class _PauseCollector(Collector):
    """``livestrat_operator_acting`` (1: this replica acts) and ``livestrat_operator_paused{reason}`` (1 for the
    reason kopf pauses it, every reason exported), read at scrape time from the peering monitor."""

    def __init__(self, metrics: OperatorMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        reason = self._metrics.paused_by()
        yield GaugeMetricFamily(
            "livestrat_operator_acting",
            "1 when this operator replica acts (watches and reconciles); 0 while kopf pauses it",
            value=0 if reason else 1,
        )
        paused = GaugeMetricFamily(
            "livestrat_operator_paused",
            "1 for the reason kopf pauses this replica: PeeringObjectMissing, SamePriorityPeer (faults: nobody "
            "acts), HigherPriorityPeer (a standby)",
            labels=["reason"],
        )
        for known in PAUSE_REASONS:
            paused.add_metric([known], 1 if reason == known else 0)
        yield paused


class OperatorMetrics:
    def __init__(
        self, phases: Mapping[tuple[str, str], str], failures: Mapping[tuple[str, str], str] | None = None
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # Why kopf pauses this replica (None: it acts); the peering monitor sets it (standalone: always acting).
        self.paused_by: Callable[[], str | None] = lambda: None
        self.readiness: Callable[[], tuple[bool, str]] = lambda: (True, "acting (standalone)")
        self.reconciles = Counter(
            "livestrat_operator_reconciles",
            "Reconciliations of a LiveStrategy, by result (ok, error)",
            ["result"],
            registry=self.registry,
        )
        self.reconcile_errors = Counter(
            "livestrat_operator_reconcile_errors",
            "Failed reconciliations, by error type",
            ["error"],
            registry=self.registry,
        )
        self.reconcile_seconds = Histogram(
            "livestrat_operator_reconcile_duration_seconds",
            "Time one reconciliation took",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.api_requests = Counter(
            "livestrat_operator_api_requests",
            "Kubernetes API requests made by the operator (not counting kopf's own), by verb, resource and code",
            ["verb", "resource", "code"],
            registry=self.registry,
        )
        self.events = Counter(
            "livestrat_operator_events",
            "Kubernetes Events posted about LiveStrategies, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.pod_deletions = Counter(
            "livestrat_operator_pod_deletions",
            "Strategy pods the operator deleted itself, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.registry.register(_PhaseCollector(phases, failures if failures is not None else {}))
        self.registry.register(_PauseCollector(self))
        self._runner: web.AppRunner | None = None

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    async def serve(self, host: str, port: int) -> None:
        app = web.Application()
        app.router.add_get("/metrics", make_aiohttp_handler(self.registry))
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        logger.info("operator: metrics on http://%s/metrics", host_and_port(host, port))

    async def _readyz(self, _request: web.Request) -> web.Response:
        """Ready: acting, or a standby behind a live replica of higher priority; not ready: paused by a fault."""
        ready, message = self.readiness()
        return web.Response(status=200 if ready else 503, text=message + "\n")

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
