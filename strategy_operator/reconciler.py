"""One LiveStrategy's reconciliation: observe, decide, act, report.

Observe from the operator's watch caches (no API reads in the steady state), decide with
:mod:`strategy_operator.lifecycle`, then act in this order:

1. halting first: a StatefulSet that must go to 0 is scaled before anything else;
2. the kill switch: ``spec.replicas`` set to 0 through the scale subresource (sticky; also
   when the spec cannot be read);
3. a risk halt not recorded yet: the ``livestrat.io/risk-halted-at`` annotation;
4. the children, created or patched only where they differ from what is desired;
5. pods that must not run (rogue, or stuck on an old configuration) deleted, with an event;
6. the status: a merge patch of the operator's own fields, only those that changed;
7. the events of the transitions.

Every write is skipped when there is nothing to change, so a strategy at rest costs no
write at all (the runtime's heartbeats only make the operator re-read its caches).

A write the API server refuses is not only logged: the status says so (phase ``Failed``,
reason ``HaltFailed`` or ``ApplyFailed`` with the API's message), a Warning event is posted,
the operator's metrics count it, and the reconciliation is retried with back-off.

The daemon's copy of the LiveStrategy comes from the watch and may not show yet what this
operator has just written (its status, its annotation, the kill switch's scale): the
operator compares with what it wrote itself (:class:`OwnWrites`) while the copy lags, so a
transition is acted on, and told, once.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import kopf
from pydantic import ValidationError

from livestrat.api import validation
from livestrat.api.resource import API_VERSION, KILL_SWITCH_ANNOTATION, KIND, RISK_ACK_ANNOTATION, LiveStrategy
from livestrat.api.runtime_config import CONFIG_FILE_NAME
from livestrat.api.status import ConditionType, Phase
from strategy_operator import labels, lifecycle
from strategy_operator.children import (
    SecretRequirement,
    SpecProblem,
    build_children,
    config_substance,
    digest,
    secret_requirements,
    spec_problems,
    strategy_generation,
)
from strategy_operator.kube_client import ApiError, KubeClient
from strategy_operator.lifecycle import Event, Observation, PodView
from strategy_operator.metrics import OperatorMetrics
from strategy_operator.settings import OperatorSettings
from strategy_operator.wakeups import Key

logger = logging.getLogger("livestrat.operator")

OPERATOR_STATUS_FIELDS = ("phase", "message", "replicas", "selector", "observedGeneration", "podName", "conditions")
SECRETS_VALID_SECONDS = 60.0  # a found Secret is not looked up again for this long (before a pod starts)
SECRETS_REPORT_SECONDS = 300.0  # the same, for a pending configuration while the running pod stays
SECRETS_RETRY_SECONDS = (2.0, 4.0, 8.0, 15.0, 30.0)  # a missing one is looked up again after these
CONFIRM_PODS_SECONDS = 5.0  # a pod the caches still show while waiting for it to exit is re-read this often
CONFLICT_RECHECK_SECONDS = 5.0  # a child's name taken by a foreign object is looked at again this often
CACHE_LAG_SECONDS = 10.0  # a child created this recently is trusted to exist although the cache lacks it
OWN_WRITES_KEPT = 16


def utcnow() -> datetime:
    return datetime.now(UTC)


class OwnWrites:
    """Successive values of one field this operator wrote, which the watch's copy may not show yet.

    ``current(seen)``: the value the operator knows, from ``seen`` (the copy's). A copy showing
    one of the values before the operator's last write lags behind it: the last written value
    counts. A copy showing anything else (it caught up, someone else wrote, the operator's
    memory is new) counts as it is. After ``CACHE_LAG_SECONDS`` the copy counts anyway.
    """

    def __init__(self) -> None:
        self._chain: list[Any] = []
        self._written_at = -math.inf

    def current(self, seen: Any) -> Any:
        fresh = time.monotonic() - self._written_at < CACHE_LAG_SECONDS
        if fresh and self._chain and seen != self._chain[-1] and seen in self._chain[:-1]:
            return self._chain[-1]
        self._chain.clear()
        return seen

    def wrote(self, before: Any, after: Any) -> None:
        if not self._chain:
            self._chain.append(before)
        self._chain.append(after)
        del self._chain[:-OWN_WRITES_KEPT]
        self._written_at = time.monotonic()


@dataclass
class StrategyMemory:
    """What the operator remembers about one strategy between reconciliations (lost on restart)."""

    situation: str | None = None  # "awaiting-pod" or "halting": the waits that have a timeout
    situation_since: datetime | None = None
    secrets_key: tuple[SecretRequirement, ...] = ()
    secrets_checked_at: float = -math.inf
    secret_problems: list[SpecProblem] = field(default_factory=list)
    secret_failures: int = 0
    converged: dict[str, tuple[str, str]] = field(default_factory=dict)  # kind -> (desired digest, resourceVersion)
    created: dict[str, tuple[dict[str, Any], float]] = field(default_factory=dict)  # kind -> (body, when): cache lag
    conflicts: dict[str, SpecProblem] = field(default_factory=dict)  # kind -> a name taken by a foreign object
    conflicts_checked_at: float = -math.inf
    pods_confirmed_at: float = -math.inf
    confirmed_gone: set[str] = field(default_factory=set)  # pod uids the caches still show but the API does not
    status_writes: OwnWrites = field(default_factory=OwnWrites)  # the operator's status fields
    breach_writes: OwnWrites = field(default_factory=OwnWrites)  # the livestrat.io/risk-halted-at annotation
    spec_scaled_from: int | None = None  # the generation whose spec.replicas the kill switch set to 0
    deletion_seen: datetime | None = None  # when this operator first saw the deletion (bounds the wait)
    reconciled_version: str | None = None  # resourceVersion of the LiveStrategy last reconciled without error

    def just_created(self, kind: str) -> dict[str, Any] | None:
        """A child this operator created moments ago, which the watch cache may not show yet."""
        found = self.created.get(kind)
        if found is None or time.monotonic() - found[1] > CACHE_LAG_SECONDS:
            self.created.pop(kind, None)
            return None
        return found[0]


@dataclass
class Step:
    """What the reconciliation is writing now: a refused write is reported with it."""

    stage: str = "halt"  # "halt" (the pod must go) or "apply" (children, records)
    what: str = ""

    def now(self, stage: str, what: str) -> None:
        self.stage, self.what = stage, what


@dataclass(frozen=True)
class Observed:
    """One reconciliation's observation, and what it read the spec into."""

    observation: Observation
    strategy: LiveStrategy | None
    uid: str
    desired_children: list[dict[str, Any]]


class Caches:
    """The operator's watch caches (kopf indexes), keyed by (namespace, strategy name)."""

    KINDS: ClassVar[dict[str, str]] = {
        "ConfigMap": "livestrat_configmaps",
        "ServiceAccount": "livestrat_serviceaccounts",
        "Role": "livestrat_roles",
        "RoleBinding": "livestrat_rolebindings",
        "Service": "livestrat_services",
        "StatefulSet": "livestrat_statefulsets",
        "Pod": "livestrat_pods",
    }
    NAMESPACES = "livestrat_namespaces"

    def __init__(self, indexes: Mapping[str, Any]) -> None:
        self._indexes = indexes

    def _store(self, index: str, key: Any) -> list[Any]:
        found = self._indexes.get(index)
        if found is None:
            return []
        try:
            return list(found.get(key, []))
        except TypeError:
            return []

    def child(self, kind: str, key: Key) -> dict[str, Any] | None:
        name = labels.child_name(key[1])
        for body in self._store(self.KINDS[kind], key):
            if (body.get("metadata") or {}).get("name") == name:
                return body
        return None

    def pods(self, key: Key) -> list[dict[str, Any]]:
        return self._store(self.KINDS["Pod"], key)

    def kill_switch(self, namespace: str) -> bool:
        return any(self._store(self.NAMESPACES, namespace))


def kill_switch_engaged(annotations: Mapping[str, str] | None) -> bool:
    return str((annotations or {}).get(KILL_SWITCH_ANNOTATION, "")).strip().lower() == "true"


def is_subset(desired: Any, existing: Any) -> bool:
    """Every field set in ``desired`` has that value in ``existing`` (lists: same length, element-wise)."""
    if isinstance(desired, Mapping):
        return isinstance(existing, Mapping) and all(is_subset(v, existing.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(existing, list)
            and len(desired) == len(existing)
            and all(is_subset(d, e) for d, e in zip(desired, existing, strict=True))
        )
    return desired == existing


def operator_fields(status: Mapping[str, Any]) -> dict[str, Any]:
    return {key: status.get(key) for key in OPERATOR_STATUS_FIELDS}


def status_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The operator's status fields that differ (``None`` deletes, as a merge patch does)."""
    patch: dict[str, Any] = {}
    for key in OPERATOR_STATUS_FIELDS:
        if current.get(key) != desired.get(key):
            patch[key] = desired.get(key)
    return patch


def _secret_retry_wait(memory: StrategyMemory) -> float:
    """How long a missing Secret (or key) is trusted to be missing: longer after each failed look-up."""
    return SECRETS_RETRY_SECONDS[min(memory.secret_failures, len(SECRETS_RETRY_SECONDS)) - 1]


def _owned_by(body: Mapping[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in (body.get("metadata") or {}).get("ownerReferences") or [])


class Reconciler:
    def __init__(
        self,
        settings: OperatorSettings,
        kube: KubeClient,
        metrics: OperatorMetrics,
        post_event: Callable[[Mapping[str, Any], Event], None] | None = None,
    ) -> None:
        self.settings = settings
        self.kube = kube
        self.metrics = metrics
        self.memories: dict[Key, StrategyMemory] = {}
        self.phases: dict[Key, str] = {}  # the phase of each strategy (metrics, liveness probe)
        self.failures: dict[Key, str] = {}  # the reason of each Failed one (metrics: alerts)
        self._post_event = post_event or _kopf_event

    def memory(self, key: Key) -> StrategyMemory:
        return self.memories.setdefault(key, StrategyMemory())

    def forget(self, key: Key) -> None:
        self.memories.pop(key, None)
        self.phases.pop(key, None)
        self.failures.pop(key, None)

    def _record_phase(self, key: Key, status: Mapping[str, Any]) -> None:
        self.phases[key] = str(status["phase"])
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == ConditionType.READY), {})
        if status["phase"] == Phase.FAILED:
            self.failures[key] = str(ready.get("reason") or "Failed")
        else:
            self.failures.pop(key, None)

    def event(self, body: Mapping[str, Any], event: Event) -> None:
        self.metrics.events.labels(event.reason).inc()
        self._post_event(body, event)

    # -------------------------------------------------------------------------------- observing

    def _read_strategy(self, raw: Mapping[str, Any]) -> tuple[LiveStrategy | None, list[SpecProblem]]:
        """The spec as the models read it. The CRD's own rules (CEL) are the API server's to enforce;
        the cross-field rules that decide whether a pod may run are checked again in ``spec_problems``."""
        meta = raw.get("metadata") or {}
        doc = {"apiVersion": API_VERSION, "kind": KIND, "metadata": dict(meta), "spec": raw.get("spec") or {}}
        try:
            return LiveStrategy.model_validate(doc), []
        except ValidationError as exc:
            problems = "; ".join(str(p) for p in validation.problems(doc)) or str(exc.errors()[0]["msg"])
            return None, [SpecProblem("SpecInvalid", f"the spec cannot be read: {problems}")]

    async def _secret_problems(
        self, strategy: LiveStrategy, memory: StrategyMemory, valid_for: float = SECRETS_VALID_SECONDS
    ) -> list[SpecProblem]:
        needed = tuple(secret_requirements(strategy, self.settings))
        now = time.monotonic()
        if needed == memory.secrets_key:
            wait = _secret_retry_wait(memory) if memory.secret_problems else valid_for
            if now - memory.secrets_checked_at < wait:
                return memory.secret_problems
        namespace = strategy.metadata.namespace or ""
        problems: list[SpecProblem] = []
        for requirement in needed:
            secret = await self.kube.get("Secret", namespace, requirement.name)
            if secret is None:
                problems.append(
                    SpecProblem(
                        "SecretNotFound",
                        f"Secret {requirement.name!r} ({requirement.purpose}) does not exist in namespace "
                        f"{namespace!r}: create it (keys {', '.join(requirement.keys)}); the strategy starts "
                        "by itself once it exists.",
                    )
                )
                continue
            present = set((secret.get("data") or {}).keys())
            del secret  # only the key names are kept, never a value
            missing = [key for key in requirement.keys if key not in present]
            if missing:
                problems.append(
                    SpecProblem(
                        "SecretKeyNotFound",
                        f"Secret {requirement.name!r} ({requirement.purpose}) has no key "
                        f"{', '.join(repr(k) for k in missing)}: add it, or point the spec at the right key.",
                    )
                )
        memory.secrets_key, memory.secrets_checked_at, memory.secret_problems = needed, now, problems
        memory.secret_failures = memory.secret_failures + 1 if problems else 0
        return problems

    async def _recheck_conflicts(self, namespace: str, name: str, uid: str, memory: StrategyMemory) -> None:
        """A foreign object holding a child's name carries no label: it is re-read now and then, not watched."""
        if not memory.conflicts or time.monotonic() - memory.conflicts_checked_at < CONFLICT_RECHECK_SECONDS:
            return
        memory.conflicts_checked_at = time.monotonic()
        for kind in list(memory.conflicts):
            found = await self.kube.get(kind, namespace, labels.child_name(name))
            if found is None or _owned_by(found, uid):
                del memory.conflicts[kind]

    def _secret_recheck(self, memory: StrategyMemory) -> float | None:
        if not memory.secret_problems:
            return None
        return max(0.1, memory.secrets_checked_at + _secret_retry_wait(memory) - time.monotonic())

    async def _confirmed_pods(
        self, key: Key, caches: Caches, memory: StrategyMemory, *, confirm: bool
    ) -> list[dict[str, Any]]:
        """The strategy's pods from the cache; re-read from the API when waiting on them (a cache may lag)."""
        pods = [p for p in caches.pods(key) if (p.get("metadata") or {}).get("uid") not in memory.confirmed_gone]
        if not pods or not confirm or time.monotonic() - memory.pods_confirmed_at < CONFIRM_PODS_SECONDS:
            return pods
        memory.pods_confirmed_at = time.monotonic()
        live = await self.kube.list("Pod", key[0], labels.selector(key[1]))
        live_uids = {(p.get("metadata") or {}).get("uid") for p in live}
        memory.confirmed_gone |= {(p.get("metadata") or {}).get("uid") for p in pods} - live_uids
        return [p for p in pods if (p.get("metadata") or {}).get("uid") in live_uids]

    # -------------------------------------------------------------------------------- reconciling

    async def reconcile(self, body: Mapping[str, Any], caches: Caches) -> float | None:
        """Bring one strategy's children and status in line; returns when to look again (seconds), if timed."""
        started = time.monotonic()
        try:
            recheck = await self._reconcile(dict(body), caches)
        except Exception as exc:
            self.metrics.reconciles.labels("error").inc()
            self.metrics.reconcile_errors.labels(type(exc).__name__).inc()
            raise
        finally:
            self.metrics.reconcile_seconds.observe(time.monotonic() - started)
        self.metrics.reconciles.labels("ok").inc()
        return recheck

    async def _reconcile(self, raw: dict[str, Any], caches: Caches) -> float | None:
        meta = raw.get("metadata") or {}
        key: Key = (meta["namespace"], meta["name"])
        memory = self.memory(key)
        observed = await self._observe(raw, caches, memory)
        plan = lifecycle.plan(observed.observation)
        observation = observed.observation
        since = self._since(memory, plan, list(observation.pods), observation.now)
        observation = dataclasses.replace(observation, phase_since=since)
        report = lifecycle.report(observation, plan)
        conflicts_before = set(memory.conflicts)
        await self._act(raw, dataclasses.replace(observed, observation=observation), plan, report, caches, memory)
        self._record_phase(key, report.status)
        memory.reconciled_version = meta.get("resourceVersion")

        if set(memory.conflicts) - conflicts_before:
            return 0.1  # found while acting: decide again with it
        conflict_recheck = (
            max(0.1, memory.conflicts_checked_at + CONFLICT_RECHECK_SECONDS - time.monotonic())
            if memory.conflicts
            else None
        )
        delays = [d for d in (report.recheck_after, self._secret_recheck(memory), conflict_recheck) if d is not None]
        return min(delays) if delays else None

    async def _observe(self, raw: dict[str, Any], caches: Caches, memory: StrategyMemory) -> Observed:
        """Everything the decision needs: the caches, plus the API reads that are due (Secrets, conflicts, pods)."""
        meta = raw.get("metadata") or {}
        name, namespace, uid = meta["name"], meta["namespace"], str(meta.get("uid") or "")
        key: Key = (namespace, name)
        annotations = meta.get("annotations") or {}
        seen = raw.get("status") or {}
        status = {**seen, **memory.status_writes.current(operator_fields(seen))}
        recorded = memory.breach_writes.current(annotations.get(labels.RISK_HALTED_AT_ANNOTATION))
        deleting = bool(meta.get("deletionTimestamp"))

        strategy, problems = self._read_strategy(raw)
        # A StatefulSet this operator has just created may not be in the cache yet: its pod may be.
        statefulset = caches.child("StatefulSet", key) or memory.just_created("StatefulSet")
        kill_switch = caches.kill_switch(namespace)
        desired_config: dict[str, Any] = {}
        desired_hash = ""
        desired_children: list[dict[str, Any]] = []
        if strategy is not None:
            problems += spec_problems(strategy, self.settings)
            await self._recheck_conflicts(namespace, name, uid, memory)
            problems += list(memory.conflicts.values())
            desired_children = build_children(strategy, self.settings, replicas=1)
            desired_config = json.loads(desired_children[0]["data"][CONFIG_FILE_NAME])
            desired_hash = desired_children[-1]["metadata"]["annotations"][labels.CONFIG_HASH_ANNOTATION]

        sts_uid = ((statefulset or {}).get("metadata") or {}).get("uid")
        halting = statefulset is not None and (statefulset.get("spec") or {}).get("replicas") == 0
        pods = [
            PodView.from_body(p, sts_uid, labels.child_name(name))
            for p in await self._confirmed_pods(key, caches, memory, confirm=halting)
        ]

        now = utcnow()
        observation = Observation(
            name=name,
            namespace=namespace,
            generation=meta.get("generation"),
            spec=strategy.spec if strategy is not None else None,
            deleting=deleting,
            acknowledgement=annotations.get(RISK_ACK_ANNOTATION),
            status=status,
            kill_switch=kill_switch,
            problems=problems,
            statefulset=statefulset,
            pods=pods,
            desired_hash=desired_hash,
            running_config=_runtime_json(caches.child("ConfigMap", key) or memory.just_created("ConfigMap")),
            desired_config=desired_config,
            now=now,
            phase_since=now,
            settings=self.settings,
            spec_replicas=(raw.get("spec") or {}).get("replicas", 1),
            risk_recorded=recorded,
            desired_statefulset=desired_children[-1] if desired_children else None,
        )

        # The Secrets a pod needs are read when one is about to start (or cannot), and, less often, while a
        # running pod is left as it is with a pending configuration: their problems then hold nothing (the
        # running pod has its environment) and are reported for the pending configuration.
        preview = lifecycle.plan(observation)
        current_pod = any(p.controlled and p.ready and p.config_hash == desired_hash for p in pods)
        if strategy is not None and preview.replicas == 1 and not current_pod:
            kept = not preview.apply
            found = await self._secret_problems(
                strategy, memory, SECRETS_REPORT_SECONDS if kept else SECRETS_VALID_SECONDS
            )
            if found and kept:
                observation = dataclasses.replace(observation, deferred_problems=found)
            elif found:
                observation = dataclasses.replace(observation, problems=[*problems, *found])
        return Observed(observation, strategy, uid, desired_children)

    async def _act(
        self,
        raw: dict[str, Any],
        observed: Observed,
        plan: lifecycle.Plan,
        report: lifecycle.Report,
        caches: Caches,
        memory: StrategyMemory,
    ) -> None:
        obs = observed.observation
        namespace, name = obs.namespace, obs.name
        actions: list[Event] = []
        step = Step()
        try:
            statefulset = obs.statefulset
            if plan.replicas == 0 and statefulset is not None and (statefulset.get("spec") or {}).get("replicas") != 0:
                # halting comes first, always (also when the spec cannot be read)
                step.now("halt", f"scale StatefulSet {name} to 0")
                await self.kube.patch("StatefulSet", namespace, name, {"spec": {"replicas": 0}})
                memory.converged.pop("StatefulSet", None)
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
            if plan.record_breach is not None:
                step.now("apply", f"record the risk halt in annotation {labels.RISK_HALTED_AT_ANNOTATION}")
                annotation = {labels.RISK_HALTED_AT_ANNOTATION: plan.record_breach}
                await self.kube.patch("LiveStrategy", namespace, name, {"metadata": {"annotations": annotation}})
                memory.breach_writes.wrote(obs.risk_recorded, plan.record_breach)
            if observed.strategy is not None:
                actions += await self._apply(observed, plan, caches, memory, step)
            for deletion in plan.delete_pods:
                stage = "halt" if deletion.reason == "RoguePodDeleted" else "apply"
                step.now(stage, f"delete pod {deletion.pod.name}")
                await self.kube.delete("Pod", namespace, deletion.pod.name, uid=deletion.pod.uid)
                self.metrics.pod_deletions.labels(deletion.reason).inc()
                kind = "Warning" if deletion.reason == "RoguePodDeleted" else "Normal"
                actions.append(Event(kind, deletion.reason, deletion.message))
        except Exception as exc:
            await self._report_failure(raw, obs, report, step, exc, memory, actions)
            raise
        await self._write_status(obs, report.status, memory)
        for event in actions + report.events:
            self.event(raw, event)

    async def _write_status(self, obs: Observation, desired: Mapping[str, Any], memory: StrategyMemory) -> None:
        patch = status_patch(obs.status, desired)
        if patch:
            await self.kube.patch("LiveStrategy", obs.namespace, obs.name, {"status": patch}, subresource="status")
            memory.status_writes.wrote(operator_fields(obs.status), operator_fields(desired))

    async def _report_failure(
        self,
        raw: dict[str, Any],
        obs: Observation,
        report: lifecycle.Report,
        step: Step,
        exc: Exception,
        memory: StrategyMemory,
        done: list[Event],
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
        failure = lifecycle.write_failed(obs, report, reason, message)
        self._record_phase((obs.namespace, obs.name), failure.status)
        logger.warning("%s/%s: %s", obs.namespace, obs.name, message)
        try:
            await self._write_status(obs, failure.status, memory)
        except Exception as second:  # the API server may be down altogether: the event and metrics remain
            logger.warning("%s/%s: the status could not be written either (%s)", obs.namespace, obs.name, second)
        for event in done + failure.events:
            self.event(raw, event)

    def _since(self, memory: StrategyMemory, plan: lifecycle.Plan, pods: list[PodView], now: datetime) -> datetime:
        """When the current timed wait began: for a pod to appear, or for a pod to exit."""
        if plan.replicas == 1 and not pods:
            situation = "awaiting-pod"
        elif plan.replicas == 0 and pods:
            situation = "halting"
        else:
            situation = None
        if situation != memory.situation or memory.situation_since is None:
            memory.situation, memory.situation_since = situation, now
        return memory.situation_since

    async def _apply(
        self, observed: Observed, plan: lifecycle.Plan, caches: Caches, memory: StrategyMemory, step: Step
    ) -> list[Event]:
        strategy, uid, desired_children = observed.strategy, observed.uid, observed.desired_children
        assert strategy is not None
        name, namespace = strategy.metadata.name, strategy.metadata.namespace or ""
        key: Key = (namespace, name)
        events: list[Event] = []
        created: list[str] = []
        updated: list[str] = []
        for desired in desired_children:
            kind = desired["kind"]
            if kind in memory.conflicts:
                continue  # someone else's object: left alone, looked at again now and then
            existing = caches.child(kind, key) or memory.just_created(kind)
            if kind == "ConfigMap" and existing is not None:
                if not plan.apply:
                    continue  # the running strategy keeps its configuration
                if config_substance(_runtime_json(existing) or {}) == config_substance(
                    observed.observation.desired_config
                ):
                    desired = {**desired, "data": existing.get("data")}  # same configuration: keep its generation
            if kind == "StatefulSet":
                # A child's name found taken in this very pass: no pod on top of someone else's object.
                replicas = 0 if memory.conflicts else plan.replicas
                desired = {**desired, "spec": {**desired["spec"], "replicas": replicas}}
                if existing is not None and not plan.apply:
                    desired = {"kind": kind, "metadata": {"name": name}, "spec": {"replicas": replicas}}
            step.now("apply", f"{'create' if existing is None else 'update'} {kind} {name}")
            outcome = await self._ensure(desired, existing, uid, namespace, memory)
            if outcome == "created":
                created.append(kind)
            elif outcome == "updated" and (kind != "StatefulSet" or _template_changed(existing, desired)):
                updated.append(kind)

        own_account = caches.child("ServiceAccount", key)
        wants_account = any(child["kind"] == "ServiceAccount" for child in desired_children)
        if not wants_account and own_account is not None and _owned_by(own_account, uid):
            step.now("apply", f"delete ServiceAccount {name}")
            await self.kube.delete("ServiceAccount", namespace, name)  # the spec now names its own
        if created:
            events.append(Event("Normal", "Created", f"created {', '.join(created)} {name}"))
        if updated:
            generation = strategy_generation(strategy)
            events.append(
                Event("Normal", "Updated", f"updated {', '.join(updated)} {name} for generation {generation}")
            )
        return events

    async def _ensure(
        self,
        desired: dict[str, Any],
        existing: Mapping[str, Any] | None,
        uid: str,
        namespace: str,
        memory: StrategyMemory,
    ) -> str | None:
        kind, name = desired["kind"], desired["metadata"]["name"]
        wanted = digest(desired)
        if existing is None:
            if "apiVersion" not in desired:
                return None  # a partial (replicas-only) change of a child that is not there yet
            try:
                created = await self.kube.create(desired)
            except ApiError as exc:
                if exc.status != 409:
                    raise
                existing = await self.kube.get(kind, namespace, name)  # the cache had not seen it yet
                if existing is None:
                    raise
            else:
                memory.converged[kind] = (wanted, str(created.get("metadata", {}).get("resourceVersion")))
                memory.created[kind] = (created, time.monotonic())
                memory.conflicts.pop(kind, None)
                return "created"
        version = str((existing.get("metadata") or {}).get("resourceVersion"))
        if uid and not _owned_by(existing, uid):
            conflict = SpecProblem(
                "NameConflict",
                f"a {kind} named {name!r} already exists in namespace {namespace!r} and does not belong to this "
                "LiveStrategy: rename the LiveStrategy or remove that object.",
            )
            memory.conflicts[kind] = conflict
            memory.conflicts_checked_at = time.monotonic()
            return None
        memory.conflicts.pop(kind, None)
        if memory.converged.get(kind) == (wanted, version) or is_subset(_patchable(desired), existing):
            memory.converged[kind] = (wanted, version)
            return None
        patched = await self.kube.patch(kind, namespace, name, _patchable(desired))
        memory.converged[kind] = (wanted, str(patched.get("metadata", {}).get("resourceVersion")))
        return "updated"

    # -------------------------------------------------------------------------------- deleting

    async def finalize(self, body: Mapping[str, Any], caches: Caches, wake: Callable[[], Any]) -> None:
        """A LiveStrategy is being deleted: halt it, wait for its pod to exit (bounded), then let it go."""
        raw = dict(body)
        meta = raw.get("metadata") or {}
        name, namespace = meta["name"], meta["namespace"]
        key: Key = (namespace, name)
        memory = self.memory(key)
        # Bounded from the deletion, but never from before this operator saw it: after an outage longer than
        # the bound, the pod still gets its full time to exit before the LiveStrategy is let go.
        if memory.deletion_seen is None:
            memory.deletion_seen = utcnow()
        stamped = lifecycle.parse_time(meta.get("deletionTimestamp"))
        began = max(stamped, memory.deletion_seen) if stamped is not None else memory.deletion_seen
        grace = float(((raw.get("spec") or {}).get("pod") or {}).get("terminationGracePeriodSeconds") or 60)
        deadline = began + timedelta(seconds=grace + self.settings.halt_timeout_margin_seconds)
        announced = False
        while True:
            statefulset = caches.child("StatefulSet", key) or memory.just_created("StatefulSet")
            if statefulset is not None and (statefulset.get("spec") or {}).get("replicas") != 0:
                await self.kube.patch("StatefulSet", namespace, name, {"spec": {"replicas": 0}})
            sts_uid = ((statefulset or {}).get("metadata") or {}).get("uid")
            pods = [
                PodView.from_body(p, sts_uid, labels.child_name(name))
                for p in await self._confirmed_pods(key, caches, memory, confirm=True)
            ]
            for pod in pods:
                if not pod.controlled and not pod.terminating:
                    await self.kube.delete("Pod", namespace, pod.name, uid=pod.uid)
            if not pods:
                self.event(raw, Event("Normal", "Deleted", "no strategy pod is left: the LiveStrategy is released"))
                break
            if utcnow() >= deadline:
                names = ", ".join(p.name for p in pods)
                self.event(
                    raw,
                    Event(
                        "Warning",
                        "DeletionTimeout",
                        f"pod {names} did not exit within {int(grace + self.settings.halt_timeout_margin_seconds)}s "
                        "of the deletion: released anyway; garbage collection deletes the pod, but check that "
                        "its node is down before assuming it stopped trading",
                    ),
                )
                break
            if not announced:
                message = f"deleting: halting first, waiting for pod {', '.join(p.name for p in pods)} to exit"
                current = raw.get("status") or {}
                patch = status_patch(current, {**current, "phase": Phase.HALTING, "message": message})
                if patch:
                    await self.kube.patch("LiveStrategy", namespace, name, {"status": patch}, subresource="status")
                self.event(raw, Event("Normal", "Deleting", message))
                announced = True
            await wake()
        self.forget(key)


def _runtime_json(configmap: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if configmap is None:
        return None
    text = (configmap.get("data") or {}).get(CONFIG_FILE_NAME)
    if not text:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _patchable(desired: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch of a desired child: everything but the identity the API keeps itself."""
    meta = {k: v for k, v in (desired.get("metadata") or {}).items() if k not in ("name", "namespace")}
    patch = {k: v for k, v in desired.items() if k not in ("apiVersion", "kind", "metadata")}
    if meta:
        patch["metadata"] = meta
    return patch


def _template_changed(existing: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    before = ((existing or {}).get("spec") or {}).get("template")
    after = (desired.get("spec") or {}).get("template")
    return after is not None and not is_subset(after, before)


def _kopf_event(body: Mapping[str, Any], event: Event) -> None:
    kopf.event(dict(body), type=event.type, reason=event.reason, message=event.message[:1024])
