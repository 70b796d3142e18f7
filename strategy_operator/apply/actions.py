"""Acting on a plan: the writes of one reconciliation, in the order that keeps a strategy safe.

1. halting first: the halt is recorded in ``status.halt`` (the runtime reads it at SIGTERM: only a
   halt applies ``haltPolicy``), then a StatefulSet that must go to 0 is scaled, before anything
   else; a record that cannot be written does not keep the pod from being stopped;
2. the kill switch: the desk's halt annotation ``livestrat.io/halt`` (sticky; also when the spec
   cannot be read), or ``spec.replicas`` 0 through the scale subresource where the annotations do
   not read;
3. a risk halt not recorded yet: the ``livestrat.io/risk-halted-at`` annotation;
4. the children, created or patched only where they differ (:mod:`strategy_operator.apply.children`),
   after the halt record is removed when a pod may run again (a pod never runs under a stale
   record: its eviction would flatten);
5. pods that must not run (rogue, or stuck on an old configuration) deleted, with an event;
6. the status: a merge patch of the operator's own fields, only those that changed;
7. the events of the transitions.

A write the API server refuses is not only logged: the status says so (phase ``Failed``,
reason ``HaltFailed`` or ``ApplyFailed`` with the API's message), a Warning event is posted,
and the error goes up so the reconciliation is retried with back-off. Each write is
remembered (:mod:`strategy_operator.apply.own_writes`) so a lagging copy does not undo it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from livestrat.api.contract import HALT_ANNOTATION, KILL_SWITCH_ANNOTATION, RISK_HALTED_AT_ANNOTATION
from livestrat.api.status import HaltRecord, LiveStrategyStatus, Phase
from strategy_operator.apply.children import ChildWriter
from strategy_operator.clock import Clock
from strategy_operator.decide.events import Event
from strategy_operator.decide.plan import Plan
from strategy_operator.decide.status import Report, operator_part, status_patch, write_failed
from strategy_operator.kube_client import ApiError, KubeClient
from strategy_operator.memory import StrategyMemory
from strategy_operator.metrics import OperatorMetrics
from strategy_operator.observe.caches import Caches
from strategy_operator.observe.observation import Observation
from strategy_operator.observe.observer import Gone, Observed, Observer

logger = logging.getLogger("livestrat.operator")

PostEvent = Callable[[Mapping[str, Any], Event], None]


def kopf_event(body: Mapping[str, Any], event: Event) -> None:
    kopf.event(dict(body), type=event.type, reason=event.reason, message=event.message[:1024])


def unless_terminating(post: PostEvent, terminating: Callable[[str], bool]) -> PostEvent:
    """``post``, but for an object of a namespace being deleted: the API server refuses to create anything there
    (Events too), and kopf would retry each one four times, each an ERROR in the log; told in the log instead."""

    def posting(body: Mapping[str, Any], event: Event) -> None:
        meta = body.get("metadata") or {}
        namespace = meta.get("namespace")
        if isinstance(namespace, str) and terminating(namespace):
            logger.info(
                "%s/%s: %s %s: %s (no Event: the namespace is being deleted)",
                namespace,
                meta.get("name"),
                event.type,
                event.reason,
                event.message,
            )
            return
        post(body, event)

    return posting


# A new strategy's first status is written once its StatefulSet's pod is there, or this many seconds after the pass
# that created the StatefulSet, whichever comes first (Actions.act).
FIRST_STATUS_WITHIN = 1.0


@dataclass
class Step:
    """What the reconciliation is writing now: a refused write is reported with it."""

    stage: str = "halt"  # "halt" (the pod must go) or "apply" (children, records)
    what: str = ""

    def now(self, stage: str, what: str) -> None:
        self.stage, self.what = stage, what


class Events:
    """Posting events about a LiveStrategy, counted in the operator's metrics."""

    def __init__(self, metrics: OperatorMetrics, post: PostEvent = kopf_event) -> None:
        self.metrics = metrics
        self._post = post

    def post(self, body: Mapping[str, Any], event: Event) -> None:
        self.metrics.events.labels(event.reason).inc()
        self._post(body, event)


class Actions:
    def __init__(
        self, kube: KubeClient, metrics: OperatorMetrics, events: Events, clock: Clock, observer: Observer
    ) -> None:
        self.kube = kube
        self.metrics = metrics
        self.events = events
        self.clock = clock
        self.children = ChildWriter(kube, clock, observer)

    async def act(
        self,
        raw: dict[str, Any],
        observed: Observed,
        plan: Plan,
        report: Report,
        caches: Caches,
        memory: StrategyMemory,
        on_failure: Callable[[LiveStrategyStatus], None],
    ) -> None:
        """Every write the plan and the report call for; ``on_failure`` is told the status of a refused write."""
        obs = observed.observation
        namespace, name = obs.namespace, obs.name
        actions: list[Event] = []
        step = Step()
        current = obs.status  # the status as stored, with what this pass has written so far
        try:
            statefulset = obs.statefulset
            unrecorded: Exception | None = None
            if report.status.halt is not None and current.halt is None:
                # Before the pod hears of it: its runtime reads the record at SIGTERM to know it is a halt.
                try:
                    current = await self._write_halt(obs, current, report.status.halt, memory)
                except Exception as exc:  # the halt goes ahead without it (the runtime then does not flatten)
                    unrecorded = exc
            if plan.replicas == 0 and statefulset is not None and (statefulset.get("spec") or {}).get("replicas") != 0:
                # halting comes first, always (also when the spec cannot be read)
                step.now("halt", f"scale StatefulSet {name} to 0")
                await self.kube.patch("StatefulSet", namespace, name, {"spec": {"replicas": 0}})
                memory.converged.pop("StatefulSet", None)
            if plan.mark_halted is not None:
                step.now("halt", f"set annotation {HALT_ANNOTATION} on LiveStrategy {name} (kill switch)")
                note = {HALT_ANNOTATION: plan.mark_halted}
                await self.kube.patch("LiveStrategy", namespace, name, {"metadata": {"annotations": note}})
                memory.halt_writes.wrote(obs.halt_requested, plan.mark_halted, self.clock.monotonic())
                actions.append(
                    Event(
                        "Warning",
                        "KillSwitchEngaged",
                        f"the kill switch of namespace {namespace} is engaged: annotation {HALT_ANNOTATION} set. To "
                        f"resume, remove the namespace's {KILL_SWITCH_ANNOTATION} annotation, then this one: "
                        f"kubectl annotate livestrategy {name} {HALT_ANNOTATION}-",
                    )
                )
            if report.status.halt is None and current.halt is not None:
                # Before a pod may start: a pod running under a stale record would flatten on an eviction.
                step.now("apply", "remove the halt record status.halt before a pod may run")
                current = await self._write_halt(obs, current, None, memory)
            generation = obs.generation or 0
            if plan.scale_spec_to_zero and not (
                memory.spec_scaled_from is not None and generation <= memory.spec_scaled_from
            ):
                step.now("halt", f"set spec.replicas of LiveStrategy {name} to 0 (kill switch)")
                await self.kube.patch("LiveStrategy", namespace, name, {"spec": {"replicas": 0}}, subresource="scale")
                memory.spec_scaled_from = generation
                actions.append(
                    Event(
                        "Warning",
                        "KillSwitchEngaged",
                        f"the kill switch of namespace {namespace} is engaged: spec.replicas set to 0. To resume, "
                        "remove the namespace's livestrat.io/kill-switch annotation, then scale the strategy to 1.",
                    )
                )
            if unrecorded is not None:
                step.now("apply", "record the halt in status.halt (the pod was stopped without it: no flatten)")
                raise unrecorded
            if plan.record_breach is not None:
                step.now("apply", f"record the risk halt in annotation {RISK_HALTED_AT_ANNOTATION}")
                annotation = {RISK_HALTED_AT_ANNOTATION: plan.record_breach}
                await self.kube.patch("LiveStrategy", namespace, name, {"metadata": {"annotations": annotation}})
                memory.breach_writes.wrote(obs.risk_recorded, plan.record_breach, self.clock.monotonic())
            if observed.strategy is not None:
                actions += await self.children.apply(observed, plan, caches, memory, step)
            for deletion in plan.delete_pods:
                stage = "halt" if deletion.reason == "RoguePodDeleted" else "apply"
                step.now(stage, f"delete pod {deletion.pod.name}")
                await self.kube.delete("Pod", namespace, deletion.pod.name, uid=deletion.pod.uid)
                self.metrics.pod_deletions.labels(deletion.reason).inc()
                kind = "Warning" if deletion.reason == "RoguePodDeleted" else "Normal"
                actions.append(Event(kind, deletion.reason, deletion.message))
        except Gone:
            raise  # a stale reconciler: nothing of its own to report, and no status of its to write
        except Exception as exc:
            await self._report_failure(raw, obs, report, step, exc, memory, actions, on_failure)
            raise
        created_at = memory.statefulset_created_at
        if (
            obs.status.phase is None
            and report.status.phase == Phase.STARTING
            and not obs.pods
            and created_at is not None
            and self.clock.monotonic() - created_at < FIRST_STATUS_WITHIN
        ):
            # A new strategy whose StatefulSet this operator has just created: its first status ("waiting for the
            # StatefulSet to create pod NAME-0") would be out of date within a second. It is written by the pass
            # the pod's arrival wakes, or at the latest FIRST_STATUS_WITHIN after the StatefulSet was created (the
            # reconciler looks again then): one status write per new strategy less. Its transition events wait with
            # it (they are derived from the status as stored).
            memory.first_status_deferred = True
            for event in actions:
                self.events.post(raw, event)
            return
        memory.first_status_deferred = False
        await self.write_status(obs, report.status, memory, current=current)
        for event in actions + report.events:
            self.events.post(raw, event)

    async def _write_halt(
        self, obs: Observation, current: LiveStrategyStatus, record: HaltRecord | None, memory: StrategyMemory
    ) -> LiveStrategyStatus:
        """``status.halt`` alone, ahead of the writes that depend on it; the status as it is afterwards."""
        after = current.model_copy(update={"halt": record})
        wire = record.to_wire() if record is not None else None
        await self.kube.patch("LiveStrategy", obs.namespace, obs.name, {"status": {"halt": wire}}, subresource="status")
        memory.status_writes.wrote(operator_part(current), operator_part(after), self.clock.monotonic())
        return after

    async def write_status(
        self,
        obs: Observation,
        desired: LiveStrategyStatus,
        memory: StrategyMemory,
        *,
        current: LiveStrategyStatus | None = None,
    ) -> None:
        """The operator's fields of the status that differ or do not read, in one merge patch; nothing when none.

        ``current``: the status as this pass left it (default: as observed)."""
        current = obs.status if current is None else current
        patch = status_patch(current, desired, obs.status_repairs, drop_runtime=obs.runtime_of_another is not None)
        if patch:
            await self.kube.patch("LiveStrategy", obs.namespace, obs.name, {"status": patch}, subresource="status")
            memory.status_writes.wrote(operator_part(current), operator_part(desired), self.clock.monotonic())
            if obs.status_repairs or obs.runtime_of_another is not None:
                memory.repaired_version = max(memory.repaired_version, obs.resource_version)

    async def _report_failure(
        self,
        raw: dict[str, Any],
        obs: Observation,
        report: Report,
        step: Step,
        exc: Exception,
        memory: StrategyMemory,
        done: list[Event],
        on_failure: Callable[[LiveStrategyStatus], None],
    ) -> None:
        """A write was refused (or never answered): say so in the status and an event, whatever happens next."""
        detail = f"{exc.status} {exc.reason}: {exc.message}" if isinstance(exc, ApiError) else f"{type(exc).__name__}"
        if step.stage == "halt":
            reason = "HaltFailed"
            message = (
                f"could not halt: {step.what} failed ({detail}); the pod may still run and trade. The operator "
                f"retries; check its permissions and the cluster's admission webhooks, or halt it by hand: "
                f"kubectl scale statefulset {obs.name} --replicas=0"
            )
        else:
            reason = "ApplyFailed"
            message = f"could not {step.what} ({detail}); the operator retries"
        failure = write_failed(obs, report, reason, message)
        on_failure(failure.status)
        logger.warning("%s/%s: %s", obs.namespace, obs.name, message)
        try:
            await self.write_status(obs, failure.status, memory)
        except Exception as second:  # the API server may be down altogether: the event and metrics remain
            logger.warning("%s/%s: the status could not be written either (%s)", obs.namespace, obs.name, second)
        for event in done + failure.events:
            self.events.post(raw, event)
