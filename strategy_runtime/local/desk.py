"""``livestrat run --desk``: the local run in the desk's dashboard, shown as a cluster would show it.

The dashboard (``livestrat.desk.dashboard``) reads LiveStrategies. A local run has none, so :class:`LocalRun` makes
one from the manifest's spec and the runtime's own status snapshot (``StrategyRuntime.status_snapshot``: the same
``status.trading`` and ``status.risk`` a pod pushes), with the phase, replicas and halt record the operator would
write for what the runtime says of itself (its node state, why it stops). Its heartbeat is the moment it was read:
the dashboard runs in the runtime's event loop, so it is as fresh as the loop is alive.

A halt from the dashboard stops the run as Ctrl-C does (``haltPolicy`` applies, then the summary is printed);
resume and ack-risk have no meaning for a run that ends when it stops. Ctrl-C in the dashboard halts at once, as
it does without it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from textual.binding import Binding, BindingType

from livestrat.api.resource import GROUP, KIND, VERSION
from livestrat.api.runtime_config import RuntimeConfig
from livestrat.api.status import HaltRecord, LiveStrategyStatus, NodeState, Phase, RiskStateName
from livestrat.desk.dashboard import HALT, ActionUnavailable, Dashboard, MemorySource, Plan
from strategy_runtime.runtime import RunOutcome, StrategyRuntime
from strategy_runtime.stop_cause import halt
from strategy_runtime.timestamps import utc_text

POLL_SECONDS = 0.5
DESK_HALT = "HaltedFromDesk"
RUN_STOPPED = "RunStopped"

PHASES = {
    NodeState.STARTING: Phase.STARTING,
    NodeState.RUNNING: Phase.RUNNING,
    NodeState.HALTING: Phase.HALTING,
    NodeState.STOPPED: Phase.HALTED,
    NodeState.HALT_INCOMPLETE: Phase.FAILED,
}


class LocalRun:
    """The run's LiveStrategy for the dashboard (a :class:`MemorySource` it keeps current), and its controls."""

    def __init__(self, runtime: StrategyRuntime, config: RuntimeConfig, clock: Callable[[], datetime]) -> None:
        self.runtime = runtime
        self.config = config
        self.clock = clock
        self.halt: HaltRecord | None = None
        self.source = MemorySource(f"local run {config.strategy.key} (Ctrl-C or h halts it)")
        self._spec = config.spec.model_dump(mode="json", by_alias=True, exclude_none=True)

    def status(self) -> LiveStrategyStatus:
        """What the cluster's status would say of the run now."""
        snapshot = self.runtime.status_snapshot()
        now = self.clock()
        node_state = self.runtime.node_state
        reason = self.runtime.stop_reason
        if reason and self.halt is None:
            self.halt = HaltRecord(reason=RUN_STOPPED, message=reason, since=utc_text(now))
        phase = PHASES.get(node_state, Phase.PENDING)
        if snapshot.risk.state == RiskStateName.HALTED and node_state != NodeState.RUNNING:
            phase = Phase.RISK_HALTED
        running = node_state in (NodeState.STARTING, NodeState.RUNNING, NodeState.HALTING)
        message = self.runtime.stop_cause_text or reason or None
        return LiveStrategyStatus(
            phase=phase,
            message=message,
            replicas=1 if running else 0,
            halt=self.halt,
            trading=snapshot.trading.model_copy(update={"heartbeat": utc_text(now)}),
            risk=snapshot.risk,
        )

    def body(self) -> dict[str, Any]:
        key = self.config.strategy
        status = self.status()
        spec = {**self._spec, "replicas": status.replicas}
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "metadata": {"name": key.name, "namespace": key.namespace},
            "spec": spec,
            "status": status.model_dump(mode="json", by_alias=True, exclude_none=True),
        }

    async def follow(self) -> None:
        """Keeps the source current until cancelled."""
        while True:
            self.source.put(self.body())
            await asyncio.sleep(POLL_SECONDS)

    # ------------------------------------------------------------------------------------------ controls

    def halt_now(self, why: str) -> None:
        """Stop the run as Ctrl-C does: a halt, ``haltPolicy`` applies."""
        if self.halt is None:
            self.halt = HaltRecord(reason=DESK_HALT, message=why, since=utc_text(self.clock()))
        self.runtime.request_stop(why, cause=halt(why))

    async def plan(self, action: str, body: Mapping[str, Any]) -> Plan:
        name = self.config.strategy.key
        if action != HALT:
            raise ActionUnavailable(
                f"a local run has no {action}: it ends when it stops; start it again with livestrat run"
            )
        if self.runtime.stop_reason:
            raise ActionUnavailable(f"the run is already stopping ({self.runtime.stop_reason})")
        policy = self.config.spec.halt_policy
        will = (
            f"Stops the local run {name} as Ctrl-C does: its open orders are cancelled"
            + (" and its positions closed (haltPolicy flatten)" if policy == "flatten" else " (haltPolicy cancel)")
            + ", its final state is shown here, and the run's summary is printed when you quit (q)."
        )

        async def run() -> str:
            self.halt_now("halted from the desk by the person running it")
            return f"{name}: halting (haltPolicy {policy})"

        return Plan(action=HALT, strategy=name, will=will, run=run)


class LocalDashboard(Dashboard):
    """The dashboard of one local run: Ctrl-C halts it at once, as it does without the dashboard; quitting while
    it runs halts it too (the summary follows)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+c", "interrupt", "Halt now", show=False, priority=True),
        Binding("q", "quit", "Quit (halts a run still going)"),
    ]

    def __init__(self, local: LocalRun, run: asyncio.Task[RunOutcome]) -> None:
        super().__init__(local.source, local, clock=local.clock)
        self.local = local
        run.add_done_callback(self._run_over)

    def action_interrupt(self) -> None:
        if not self.local.runtime.stop_reason:
            self.local.halt_now("received Ctrl-C from the person running it")
            self.notify("halting: Ctrl-C")

    def _run_over(self, run: asyncio.Task[RunOutcome]) -> None:
        self.local.source.put(self.local.body())
        self.local.source.close()
        why = run.result().reason if not run.cancelled() and run.exception() is None else "it failed"
        self.notify(f"the run is over ({why}): q quits and prints the summary", timeout=3600)


class _ToTheDashboard(logging.Handler):
    """The runtime's warnings and errors as the dashboard's notifications (a line on stderr would tear the screen)."""

    def __init__(self, app: Dashboard) -> None:
        super().__init__(logging.WARNING)
        self.app = app

    def emit(self, record: logging.LogRecord) -> None:
        severity = "error" if record.levelno >= logging.ERROR else "warning"
        self.app.notify(self.format(record), severity=severity, timeout=15)


async def _in_the_terminal(app: LocalDashboard) -> None:
    await app.run_async()


async def run_with_desk(
    runtime: StrategyRuntime,
    config: RuntimeConfig,
    show: Callable[[LocalDashboard], Awaitable[None]] = _in_the_terminal,
) -> RunOutcome:
    """The run and its dashboard in one event loop; closing the dashboard halts a run still going. ``show`` runs
    the app until it is closed (tests drive it with Textual's pilot)."""
    local = LocalRun(runtime, config, clock=lambda: datetime.now(UTC))
    run = asyncio.get_running_loop().create_task(runtime.run(), name="local-run")
    app = LocalDashboard(local, run)
    follow = asyncio.get_running_loop().create_task(local.follow(), name="desk-follow")
    logger = logging.getLogger("livestrat")
    handlers = logger.handlers[:]
    logger.handlers[:] = [_ToTheDashboard(app)]
    try:
        await show(app)
    finally:
        logger.handlers[:] = handlers
        follow.cancel()
        if not run.done() and not runtime.stop_reason:
            local.halt_now("the desk was closed while the run was going")
    return await run
