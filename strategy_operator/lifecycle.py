"""Phases, conditions and decisions: pure functions of what the operator observed.

One reconciliation reads everything into an :class:`Observation` (the LiveStrategy, its
StatefulSet and pods, the namespace's kill switch, the Secrets it needs, the clock), then

- :func:`plan` decides what the children must be: how many pods (0 or 1, and why 0),
  whether the new configuration may be applied now (``updatePolicy``), which pods to delete;
- :func:`report` computes the operator's part of the status (phase, message, conditions,
  replicas, pod name), the events that tell the story, and when time alone could change
  the verdict (the next timeout or staleness deadline).

Nothing here talks to the API server or reads the clock, so every rule is unit-tested.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from livestrat.api.spec import LiveStrategySpec, OnBreach, UpdatePolicy
from livestrat.api.status import ConditionStatus, ConditionType, Phase, RiskStateName
from strategy_operator import conditions, drift, labels
from strategy_operator.children import SpecProblem, spec_hash
from strategy_operator.conditions import Verdict
from strategy_operator.settings import OperatorSettings

# Container states in which a pod will not become ready without someone changing something.
FATAL_WAITING = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
# `livestrat runtime` exit codes (strategy_runtime.runtime) and what they mean here.
EXIT_REASONS = {
    1: ("RuntimeFailed", "the strategy's node failed"),
    2: ("StrategyRejected", "the runtime cannot run this spec"),
    3: ("FencedOut", "another runtime holds this strategy's ledger fence"),
    4: ("FenceLost", "the runtime lost its ledger fence and stopped trading"),
}
# ConfigDrift reasons of a running pod left as it is (each posts a ConfigDrift event when it begins).
DRIFT_REASONS = frozenset({"SpecChanged", "OperatorUpgraded", "RuntimeImageChanged"})
# Reasons for holding the StatefulSet at 0 that leave the phase Pending (fixable without a spec change).
PENDING_REASONS = frozenset({"SecretNotFound", "SecretKeyNotFound"})
RUNTIME_NODE_RUNNING = "Running"


def parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


# ------------------------------------------------------------------------------------------------
# What the operator observed.
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PodView:
    """What matters about one strategy pod."""

    name: str
    uid: str
    controlled: bool  # created by the strategy's own StatefulSet
    terminating: bool
    deletion_started: datetime | None
    grace_seconds: float | None
    created: datetime | None
    ready: bool
    ready_since: datetime | None
    running: bool  # its container runs (it may trade)
    config_hash: str | None
    waiting_reason: str | None = None
    waiting_message: str | None = None
    exit_code: int | None = None
    exit_message: str | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any], statefulset_uid: str | None, statefulset_name: str) -> PodView:
        """``statefulset_uid``: the uid of the strategy's StatefulSet, None while the operator does not know
        it (not in its cache yet): a pod whose controller is a StatefulSet of that name counts as the
        StatefulSet's own until then, never as a rogue pod to delete."""
        meta = body.get("metadata") or {}
        status = body.get("status") or {}
        owners = [ref for ref in meta.get("ownerReferences") or [] if ref.get("controller")]
        if statefulset_uid is not None:
            controlled = any(ref.get("uid") == statefulset_uid for ref in owners)
        else:
            controlled = any(ref.get("kind") == "StatefulSet" and ref.get("name") == statefulset_name for ref in owners)
        ready_condition = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
        container = next(
            (c for c in status.get("containerStatuses") or [] if c.get("name") == labels.CONTAINER),
            (status.get("containerStatuses") or [{}])[0] if status.get("containerStatuses") else {},
        )
        state = container.get("state") or {}
        waiting = state.get("waiting") or {}
        terminated = state.get("terminated") or (container.get("lastState") or {}).get("terminated") or {}
        # A graceful deletion's grace period is the pod's own; never count on less than that.
        graces = [meta.get("deletionGracePeriodSeconds"), (body.get("spec") or {}).get("terminationGracePeriodSeconds")]
        grace = max((float(g) for g in graces if g is not None), default=None)
        return cls(
            name=str(meta.get("name")),
            uid=str(meta.get("uid") or ""),
            controlled=controlled,
            terminating=bool(meta.get("deletionTimestamp")),
            deletion_started=parse_time(meta.get("deletionTimestamp")),
            grace_seconds=float(grace) if grace is not None else None,
            created=parse_time(meta.get("creationTimestamp")),
            ready=ready_condition.get("status") == "True",
            ready_since=parse_time(ready_condition.get("lastTransitionTime")),
            running="running" in state,
            config_hash=(meta.get("annotations") or {}).get(labels.CONFIG_HASH_ANNOTATION),
            waiting_reason=waiting.get("reason"),
            waiting_message=waiting.get("message"),
            exit_code=terminated.get("exitCode"),
            exit_message=terminated.get("message"),
        )


@dataclass(frozen=True)
class RiskLatch:
    """A post-trade risk halt, and whether a human acknowledged it.

    The halt is latched in what only the operator writes (the ``livestrat.io/risk-halted-at``
    annotation, ``recorded``), not in ``status.risk``, which the runtime writes and may lose:
    a runtime that starts again without its ledger reports ``Active``, and that must not resume
    the strategy. Only ``livestrat.io/risk-acknowledged`` set to the breach's time releases it.
    """

    latched: bool = False
    acknowledged: bool = False
    limit: str | None = None
    reason: str | None = None
    breached_at: str | None = None
    reported_halted: bool = False  # the runtime's own status says it is halted
    record: str | None = None  # a breach time the operator has not recorded yet: write it


def same_instant(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    if a.strip() == b.strip():
        return True
    ta, tb = parse_time(a.strip()), parse_time(b.strip())
    return ta is not None and tb is not None and ta == tb


def _later(recorded: str | None, reported: str | None) -> str | None:
    """The later of two breach times (the reported one when they cannot be compared)."""
    if not recorded or not reported:
        return reported or recorded
    a, b = parse_time(recorded.strip()), parse_time(reported.strip())
    if a is not None and b is not None and a > b:
        return recorded
    return reported


def risk_latch(risk: Mapping[str, Any] | None, acknowledgement: str | None, recorded: str | None) -> RiskLatch:
    """Latched on the latest breach, the one the operator recorded or the one the runtime reports, until the
    acknowledgement annotation names its time."""
    risk = risk or {}
    halted = risk.get("state") == RiskStateName.HALTED
    reported = risk.get("breachedAt") if halted else None
    if halted and not reported:  # a halt without a time cannot be acknowledged nor recorded: it holds
        return RiskLatch(latched=True, limit=risk.get("breachedLimit"), reason=risk.get("reason"), reported_halted=True)
    breach = _later(recorded, reported)
    if breach is None:
        return RiskLatch()
    acknowledged = same_instant(acknowledgement, breach)
    from_report = same_instant(breach, reported)
    return RiskLatch(
        latched=not acknowledged,
        acknowledged=acknowledged,
        limit=risk.get("breachedLimit") if from_report else None,
        reason=risk.get("reason") if from_report else None,
        breached_at=breach,
        reported_halted=halted,
        record=breach if not same_instant(breach, recorded) else None,
    )


@dataclass(frozen=True)
class Observation:
    """Everything one reconciliation knows."""

    name: str
    namespace: str
    generation: int | None
    spec: LiveStrategySpec | None  # None: the spec cannot be read (see ``problems``)
    deleting: bool
    acknowledgement: str | None  # the livestrat.io/risk-acknowledged annotation
    status: Mapping[str, Any]
    kill_switch: bool
    problems: Sequence[SpecProblem]  # why the spec cannot run (incl. missing Secrets)
    statefulset: Mapping[str, Any] | None
    pods: Sequence[PodView]
    desired_hash: str
    running_config: dict[str, Any] | None  # runtime.json of the ConfigMap as it is
    desired_config: dict[str, Any]
    now: datetime
    phase_since: datetime  # when this phase was first seen (operator memory)
    settings: OperatorSettings
    spec_replicas: Any = 1  # spec.replicas as stored, also when the spec cannot be read
    risk_recorded: str | None = None  # the livestrat.io/risk-halted-at annotation (the operator's own)
    # What keeps the pending (not applied) configuration from starting; the running pod is not held for it.
    deferred_problems: Sequence[SpecProblem] = ()
    desired_statefulset: Mapping[str, Any] | None = None  # what the operator would build now

    @property
    def risk(self) -> RiskLatch:
        return risk_latch(self.status.get("risk"), self.acknowledgement, self.risk_recorded)

    @property
    def applied_hash(self) -> str | None:
        return _template_annotations(self.statefulset).get(labels.CONFIG_HASH_ANNOTATION)

    @property
    def applied_nonce(self) -> str | None:
        return _template_annotations(self.statefulset).get(labels.RESTART_NONCE_ANNOTATION)

    @property
    def desired_spec_hash(self) -> str | None:
        return _template_annotations(self.desired_statefulset).get(labels.SPEC_HASH_ANNOTATION)

    @property
    def applied_spec_hash(self) -> str | None:
        """The spec-hash of the applied pod template; for a template built before it carried one, computed from
        the ConfigMap it runs (written together with it)."""
        found = _template_annotations(self.statefulset).get(labels.SPEC_HASH_ANNOTATION)
        if found or self.running_config is None:
            return found
        return spec_hash(self.running_config, self.applied_nonce)

    @property
    def pod(self) -> PodView | None:
        """The strategy's pod: the StatefulSet's own (a live one first), else any."""
        ranked = sorted(self.pods, key=lambda p: (not p.controlled, p.terminating, p.name))
        return ranked[0] if ranked else None


def _template_annotations(statefulset: Mapping[str, Any] | None) -> Mapping[str, Any]:
    template = ((statefulset or {}).get("spec") or {}).get("template") or {}
    return (template.get("metadata") or {}).get("annotations") or {}


# ------------------------------------------------------------------------------------------------
# The plan: what the children must be.
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hold:
    """Why the StatefulSet is held at 0 replicas."""

    reason: str
    message: str


@dataclass(frozen=True)
class PodDeletion:
    pod: PodView
    reason: str  # event reason
    message: str


@dataclass(frozen=True)
class Plan:
    replicas: int
    hold: Hold | None
    apply: bool  # write the desired configuration and pod template now
    scale_spec_to_zero: bool  # the kill switch sets spec.replicas to 0 (sticky)
    delete_pods: list[PodDeletion] = field(default_factory=list)
    record_breach: str | None = None  # write livestrat.io/risk-halted-at with this breach time


def _hold(obs: Observation) -> Hold | None:
    if obs.deleting:
        return Hold("Deleting", "the LiveStrategy is being deleted: the strategy halts before it is released")
    if obs.problems:
        first = obs.problems[0]
        return Hold(first.reason, first.message)
    if obs.kill_switch:
        return Hold(
            "KillSwitch",
            f"the kill switch of namespace {obs.namespace} is engaged (annotation livestrat.io/kill-switch): "
            "every strategy here is halted; remove the annotation, then scale each strategy to 1 to resume",
        )
    spec = obs.spec
    assert spec is not None  # an unreadable spec is a problem above
    latch = obs.risk
    # HaltInPlace leaves the pod up only while its runtime itself says it is halted: one that lost its
    # state (a new pod, a ledger on scratch space) and reports Active would trade.
    if latch.latched and (spec.risk.on_breach == OnBreach.SCALE_TO_ZERO or not latch.reported_halted):
        return Hold("RiskLimitBreached", _risk_message(obs, latch))
    if spec.replicas == 0:
        return Hold("ScaledToZero", "spec.replicas is 0")
    return None


def _risk_message(obs: Observation, latch: RiskLatch) -> str:
    what = latch.limit or "a risk limit"
    why = f": {latch.reason}" if latch.reason else ""
    when = f" at {latch.breached_at}" if latch.breached_at else ""
    policy = obs.spec.risk.on_breach if obs.spec is not None else OnBreach.SCALE_TO_ZERO
    if policy == OnBreach.SCALE_TO_ZERO:
        effect = "the pod is stopped"
    elif latch.reported_halted:
        effect = "the pod stays up, not trading"
    else:
        effect = "its runtime no longer reports the halt (its state was lost with its pod?), so the pod is stopped"
    stamp = latch.breached_at or "<status.risk.breachedAt>"
    return (
        f"{what} breached{when}{why}; onBreach {policy}: {effect}. To resume, acknowledge this breach: "
        f"kubectl annotate livestrategy {obs.name} livestrat.io/risk-acknowledged={stamp} --overwrite"
    )


def spec_changed_unacted(obs: Observation) -> bool:
    """The LiveStrategy's own spec asks for another pod than the one applied, and the operator has not acted on
    this generation yet (``status.observedGeneration``): a change of the strategy, not a new way of the
    operator to render the same spec."""
    acted = obs.status.get("observedGeneration")
    unacted = acted is None or obs.generation is None or acted != obs.generation
    return unacted and obs.applied_spec_hash != obs.desired_spec_hash


def applies_now(obs: Observation) -> bool:
    """Whether the desired configuration and pod template may be written now. Without a running pod, always.
    A running pod is replaced only by an explicit restart (``restartNonce``, an acknowledged risk halt under
    HaltInPlace) or, under ``Auto``, by a change of the strategy's own spec; never by the operator alone
    (a new version, a new default runtime image): that waits for the pod's next restart (``ConfigDrift``)."""
    spec = obs.spec
    running = [p for p in obs.pods if p.controlled and not p.terminating and p.running]
    if spec is None or obs.statefulset is None or not running or obs.applied_hash == obs.desired_hash:
        return True
    nonce_changed = (spec.restart_nonce or None) != (obs.applied_nonce or None)
    running_ack = (obs.running_config or {}).get("riskAcknowledgement")
    ack_changed = obs.acknowledgement is not None and obs.acknowledgement != running_ack and obs.risk.acknowledged
    if nonce_changed or ack_changed:
        return True
    return spec.update_policy == UpdatePolicy.AUTO and spec_changed_unacted(obs)


def plan(obs: Observation) -> Plan:
    hold = _hold(obs)
    replicas = 0 if hold is not None else 1
    spec = obs.spec
    apply = applies_now(obs)

    deletions: list[PodDeletion] = []
    statefulset = obs.statefulset or {}
    sts_spec, sts_status = statefulset.get("spec") or {}, statefulset.get("status") or {}
    settled_at_zero = sts_spec.get("replicas") == 0 and (sts_status.get("observedGeneration") or 0) >= (
        (statefulset.get("metadata") or {}).get("generation") or 0
    )
    for pod in obs.pods:
        if pod.terminating:
            continue
        if not pod.controlled:
            deletions.append(
                PodDeletion(
                    pod,
                    "RoguePodDeleted",
                    f"pod {pod.name} carries this strategy's label but was not created by its StatefulSet: "
                    "deleted, a strategy never runs twice",
                )
            )
        elif replicas == 0 and settled_at_zero:
            deletions.append(
                PodDeletion(
                    pod,
                    "RoguePodDeleted",
                    f"pod {pod.name} runs although the strategy is halted ({hold.reason if hold else 'held'}): deleted",
                )
            )
        elif (
            replicas == 1
            and apply
            and obs.applied_hash == obs.desired_hash
            and pod.config_hash != obs.desired_hash
            and not pod.ready
        ):
            # A StatefulSet does not replace a pod that never became ready (its rolling update
            # waits for it): the new configuration would never arrive. Replace it ourselves.
            deletions.append(
                PodDeletion(pod, "Restarting", f"pod {pod.name} is not ready and runs an old configuration: replaced")
            )
    # The kill switch holds whatever the spec says, also when it cannot be read.
    asked = spec.replicas if spec is not None else obs.spec_replicas
    scale_spec = obs.kill_switch and not obs.deleting and asked != 0
    return Plan(
        replicas=replicas,
        hold=hold,
        apply=apply,
        scale_spec_to_zero=scale_spec,
        delete_pods=deletions,
        record_breach=obs.risk.record if spec is not None else None,
    )


# ------------------------------------------------------------------------------------------------
# The report: status, events, next deadline.
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Report:
    status: dict[str, Any]  # the operator-owned status fields, complete
    events: list[Event]
    recheck_after: float | None  # seconds until time alone may change the verdict


@dataclass
class _Verdicts:
    phase: str
    message: str
    ready: Verdict
    halted: Verdict
    invalid: Verdict
    deadlines: list[datetime] = field(default_factory=list)


def _halt_deadline(obs: Observation, pod: PodView) -> datetime:
    grace = pod.grace_seconds
    if grace is None:
        grace = float(obs.spec.pod.termination_grace_period_seconds) if obs.spec is not None else 60.0
    began = pod.deletion_started or obs.phase_since
    return began + timedelta(seconds=grace + obs.settings.halt_timeout_margin_seconds)


def _rejected(pod: PodView | None) -> bool:
    return pod is not None and not pod.ready and pod.exit_code == 2


def _invalid_verdict(obs: Observation, pod: PodView | None) -> Verdict:
    if obs.problems:
        first = obs.problems[0]
        message = " ".join(p.message for p in obs.problems)
        return Verdict.true(ConditionType.INVALID_SPEC, first.reason, message)
    if pod is not None and _rejected(pod):
        detail = _last_line(pod.exit_message) or "see the pod's log"
        return Verdict.true(
            ConditionType.INVALID_SPEC, "StrategyRejected", f"the runtime cannot run this spec: {detail}"
        )
    if obs.deferred_problems:
        first = obs.deferred_problems[0]
        message = (
            "the pending configuration (see ConfigDrift) could not start: "
            + " ".join(p.message for p in obs.deferred_problems)
            + " The running pod keeps its configuration meanwhile."
        )
        return Verdict.true(ConditionType.INVALID_SPEC, first.reason, message)
    return Verdict.false(ConditionType.INVALID_SPEC, "Valid", "")


def _lost_readiness(obs: Observation, pod: PodView) -> datetime | None:
    """Since when a pod that was ready is not any more; None for a pod that has not been ready yet.
    The operator's own Ready condition says whether it was (it survives an operator restart)."""
    previous = conditions.by_type(obs.status.get("conditions")).get(ConditionType.READY) or {}
    if previous.get("reason") not in ("PodReady", "PodNotReady"):
        return None
    changed = parse_time(previous.get("lastTransitionTime"))
    if pod.created is not None and changed is not None and changed < pod.created:
        return None  # the pod that was ready is an earlier one: this one is starting
    if previous.get("reason") == "PodNotReady" and changed is not None:
        return changed  # when this operator saw it lose readiness
    return pod.ready_since or changed or obs.phase_since  # the kubelet's Ready transition


_LOG_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}[ T][\d:.,]+\s+[A-Z]+\s+[\w.]+:\s*")


def _last_line(text: str | None) -> str:
    """The last line of a termination message, without the log line's timestamp, level and logger."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return _LOG_PREFIX.sub("", lines[-1])[:512] if lines else ""


def _phase(obs: Observation, hold: Hold | None, replicas: int) -> _Verdicts:
    pod = obs.pod
    invalid = _invalid_verdict(obs, pod)
    ready_false = lambda reason, message="": Verdict.false(ConditionType.READY, reason, message)  # noqa: E731
    halted_false = lambda reason, message="": Verdict.false(ConditionType.HALTED, reason, message)  # noqa: E731

    if replicas == 0:
        assert hold is not None
        if pod is not None:
            deadline = _halt_deadline(obs, pod)
            if obs.now >= deadline:
                waited = int((obs.now - (pod.deletion_started or obs.phase_since)).total_seconds())
                message = (
                    f"pod {pod.name} still exists {waited}s "
                    "after the halt began: its node may be unreachable and it may still trade; check the node, "
                    f"then delete the pod by force (kubectl delete pod {pod.name} --force) once the node is down"
                )
                return _Verdicts(
                    Phase.FAILED,
                    message,
                    ready_false("HaltTimedOut", message),
                    halted_false("HaltTimedOut", message),
                    invalid,
                )
            message = f"halting ({hold.reason}): waiting for pod {pod.name} to exit"
            return _Verdicts(
                Phase.HALTING,
                message,
                ready_false("Halting", message),
                halted_false("Halting", message),
                invalid,
                [deadline],
            )
        halted = Verdict.true(ConditionType.HALTED, hold.reason, hold.message)
        if hold.reason == "RiskLimitBreached":
            phase = Phase.RISK_HALTED
        elif hold.reason in PENDING_REASONS:
            phase = Phase.PENDING
        elif obs.problems:
            phase = Phase.INVALID
        else:
            phase = Phase.HALTED
        return _Verdicts(phase, hold.message, ready_false(hold.reason, hold.message), halted, invalid)

    halted = halted_false("Running", "")
    latch = obs.risk
    if latch.latched:  # HaltInPlace: the pod stays, the runtime does not trade
        message = _risk_message(obs, latch)
        return _Verdicts(Phase.RISK_HALTED, message, ready_false("RiskLimitBreached", message), halted, invalid)
    start_timeout = timedelta(seconds=obs.settings.start_timeout_seconds)
    limit = int(start_timeout.total_seconds())

    def timed(since: datetime, waiting: tuple[str, str], failed: tuple[str, str]) -> _Verdicts:
        """Starting with ``waiting`` (reason, message) until ``since`` + the start timeout, then Failed."""
        deadline = since + start_timeout
        if obs.now >= deadline:
            return _Verdicts(Phase.FAILED, failed[1], ready_false(*failed), halted, invalid)
        return _Verdicts(Phase.STARTING, waiting[1], ready_false(*waiting), halted, invalid, [deadline])

    if pod is None:
        name = labels.pod_name(obs.name)
        return timed(
            obs.phase_since,
            ("Starting", f"waiting for the StatefulSet to create pod {name}"),
            (
                "PodNotCreated",
                f"pod {name} was not created within {limit}s: see "
                f"`kubectl describe statefulset {obs.name}` (quota, admission, scheduling)",
            ),
        )
    if pod.terminating or (pod.config_hash is not None and pod.config_hash != obs.applied_hash and obs.applied_hash):
        message = f"pod {pod.name} restarts with the new configuration"
        return _Verdicts(Phase.STARTING, message, ready_false("Restarting", message), halted, invalid)
    if pod.ready:
        message = f"pod {pod.name} is ready"
        return _Verdicts(
            Phase.RUNNING, message, Verdict.true(ConditionType.READY, "PodReady", message), halted, invalid
        )
    if _rejected(pod):
        return _Verdicts(Phase.INVALID, invalid.message, ready_false(invalid.reason, invalid.message), halted, invalid)
    if pod.exit_code in EXIT_REASONS and pod.exit_code != 2 and not pod.running:
        reason, what = EXIT_REASONS[pod.exit_code]
        detail = _last_line(pod.exit_message)
        message = f"pod {pod.name}: {what} (exit code {pod.exit_code}){': ' + detail if detail else ''}"
        return _Verdicts(Phase.FAILED, message, ready_false(reason, message), halted, invalid)
    if pod.waiting_reason in FATAL_WAITING:
        detail = f": {pod.waiting_message}" if pod.waiting_message else ""
        message = f"pod {pod.name} is in {pod.waiting_reason}{detail}"
        return _Verdicts(Phase.FAILED, message, ready_false(pod.waiting_reason or "Failed", message), halted, invalid)
    look = f"see `kubectl logs {pod.name}` and `kubectl describe pod {pod.name}`"
    lost = _lost_readiness(obs, pod)
    if lost is not None:
        since = conditions.timestamp(lost)
        return timed(
            lost,
            ("PodNotReady", f"pod {pod.name} was ready and is not since {since}: its runtime's /readyz fails"),
            ("PodNotReady", f"pod {pod.name} has not been ready since {since} ({limit}s): its /readyz fails; {look}"),
        )
    return timed(
        pod.created or obs.phase_since,
        ("Starting", f"pod {pod.name} is starting"),
        ("StartTimeout", f"pod {pod.name} did not become ready within {limit}s: {look}"),
    )


def _staleness(obs: Observation, phase: str) -> tuple[Verdict, datetime | None]:
    pod = obs.pod
    if phase not in (Phase.RUNNING, Phase.RISK_HALTED) or pod is None or not pod.ready:
        return Verdict.false(ConditionType.STALE, "NotRunning", ""), None
    trading = obs.status.get("trading") or {}
    heartbeat = parse_time(trading.get("heartbeat"))
    reference = (
        max(t for t in (heartbeat, pod.ready_since, pod.created) if t is not None)
        if (heartbeat or pod.ready_since or pod.created)
        else obs.phase_since
    )
    limit = timedelta(seconds=obs.settings.stale_after_seconds)
    if obs.now - reference < limit:
        return Verdict.false(ConditionType.STALE, "Fresh", ""), reference + limit
    if heartbeat is None or (pod.ready_since is not None and heartbeat < pod.ready_since):
        message = (
            f"the runtime of pod {pod.name} has not reported for {int(limit.total_seconds())}s since it became ready: "
            "the status shows no live trading state"
        )
        return Verdict.true(ConditionType.STALE, "NoHeartbeat", message), None
    message = (
        f"the last heartbeat ({trading.get('heartbeat')}) is older than {int(limit.total_seconds())}s: fills, PnL "
        "and risk in this status may be out of date"
    )
    return Verdict.true(ConditionType.STALE, "HeartbeatTooOld", message), None


def _trading(obs: Observation, phase: str, stale: Verdict) -> Verdict:
    if phase != Phase.RUNNING:
        return Verdict.false(ConditionType.TRADING, "NotRunning", f"the strategy is {phase}")
    if stale.status == ConditionStatus.TRUE:
        return Verdict.unknown(ConditionType.TRADING, "Stale", "the runtime's report is out of date")
    node_state = (obs.status.get("trading") or {}).get("nodeState")
    if node_state is None:
        return Verdict.unknown(ConditionType.TRADING, "NoReport", "the runtime has not reported yet")
    if node_state != RUNTIME_NODE_RUNNING:
        return Verdict.false(ConditionType.TRADING, "NodeNotRunning", f"the runtime reports its node {node_state}")
    return Verdict.true(ConditionType.TRADING, "Trading", "the runtime reports its node running")


def _pending_drift(obs: Observation) -> Verdict:
    """The running pod is left as it is, and differs from what the operator would build now: say what differs,
    whose change it is (the strategy's spec, or the operator's version or settings) and how it applies."""
    assert obs.spec is not None
    manual = obs.spec.update_policy == UpdatePolicy.MANUAL
    spec_fields, operator_fields = drift.split(drift.changed_fields(obs.running_config, obs.desired_config))
    applied_template = ((obs.statefulset or {}).get("spec") or {}).get("template")
    desired_template = ((obs.desired_statefulset or {}).get("spec") or {}).get("template") or {}
    image = drift.image_change(applied_template, desired_template)
    template_fields = [
        f for f in drift.template_changes(applied_template, desired_template) if not image or f != image[0]
    ]
    restart = "change spec.restartNonce, or halt and resume the strategy" + ("" if manual else ", or change its spec")
    pending = (
        " The pending configuration cannot start yet: " + " ".join(p.message for p in obs.deferred_problems)
        if obs.deferred_problems
        else ""
    )
    generation = (obs.running_config or {}).get("generation", "?")
    if spec_fields:
        policy = "updatePolicy is Manual: " if manual else ""
        return Verdict.true(
            ConditionType.CONFIG_DRIFT,
            "SpecChanged",
            f"{policy}the running strategy keeps generation {generation}'s configuration; the spec differs in "
            f"{drift.describe(spec_fields)}. To restart with it: {restart}.{pending}",
        )
    parts = []
    if image:
        parts.append(f"runtime image {image[1]} (the pod runs {image[2]})")
    if template_fields:
        parts.append(f"pod template ({drift.describe(template_fields)})")
    if operator_fields:
        parts.append(f"runtime.json ({drift.describe(operator_fields)})")
    what = "; ".join(parts) or "pod template"
    return Verdict.true(
        ConditionType.CONFIG_DRIFT,
        "RuntimeImageChanged" if image else "OperatorUpgraded",
        f"the operator (a new version, or new settings) would now build this strategy's pod differently: {what}. "
        f"A running strategy is never restarted for that; it gets the new pod at its next restart: {restart}.{pending}",
    )


def _drift(obs: Observation, plan_: Plan) -> Verdict:
    spec = obs.spec
    pod = obs.pod
    if spec is None or obs.statefulset is None:
        return Verdict.false(ConditionType.CONFIG_DRIFT, "UpToDate", "")
    if not plan_.apply and obs.applied_hash != obs.desired_hash:
        return _pending_drift(obs)
    if plan_.replicas == 1 and pod is not None and pod.config_hash not in (None, obs.desired_hash):
        return Verdict.true(
            ConditionType.CONFIG_DRIFT, "Restarting", f"pod {pod.name} restarts with the new configuration"
        )
    return Verdict.false(ConditionType.CONFIG_DRIFT, "UpToDate", "")


def _risk_verdict(obs: Observation) -> Verdict:
    latch = obs.risk
    if latch.latched:
        return Verdict.true(ConditionType.RISK_HALTED, "RiskLimitBreached", _risk_message(obs, latch))
    if latch.acknowledged:
        message = f"the breach at {latch.breached_at} was acknowledged"
        if latch.reported_halted:  # until the runtime has started with the acknowledgement
            return Verdict.false(ConditionType.RISK_HALTED, "Acknowledged", message)
        return Verdict.false(ConditionType.RISK_HALTED, "WithinLimits", f"{message}; the runtime reports no halt")
    return Verdict.false(ConditionType.RISK_HALTED, "WithinLimits", "")


def report(obs: Observation, plan_: Plan) -> Report:
    verdicts = _phase(obs, plan_.hold, plan_.replicas)
    stale, stale_deadline = _staleness(obs, verdicts.phase)
    all_verdicts = [
        verdicts.ready,
        _trading(obs, verdicts.phase, stale),
        verdicts.halted,
        _risk_verdict(obs),
        _drift(obs, plan_),
        verdicts.invalid,
        stale,
    ]
    merged = conditions.merge(obs.status.get("conditions"), all_verdicts, now=obs.now, generation=obs.generation)
    pods_present = [p for p in obs.pods if p.controlled]
    pod = obs.pod
    status = {
        "phase": verdicts.phase,
        "message": verdicts.message,
        "replicas": 1 if pods_present else 0,
        "selector": labels.selector(obs.name),
        "observedGeneration": obs.generation,
        "podName": pod.name if pod is not None else None,
        "conditions": merged,
    }
    deadlines = [*verdicts.deadlines, *([stale_deadline] if stale_deadline else [])]
    future = [(d - obs.now).total_seconds() for d in deadlines if d > obs.now]
    recheck = min(future) + 0.05 if future else None
    return Report(status=status, events=transition_events(obs.status, status), recheck_after=recheck)


# ------------------------------------------------------------------------------------------------
# Events: one per transition, computed from the old and the new status.
# ------------------------------------------------------------------------------------------------

_PHASE_EVENTS = {
    Phase.STARTING: ("Normal", "Starting"),
    Phase.RUNNING: ("Normal", "Running"),
    Phase.HALTING: ("Normal", "Halting"),
    Phase.HALTED: ("Normal", "Halted"),
    Phase.RISK_HALTED: ("Warning", "RiskHalted"),
}


def _primary_reason(status: Mapping[str, Any]) -> str | None:
    found = conditions.by_type(status.get("conditions"))
    phase = status.get("phase")
    if phase in (Phase.INVALID, Phase.PENDING):
        return (found.get(ConditionType.INVALID_SPEC) or {}).get("reason")
    if phase in (Phase.FAILED, Phase.STARTING):
        return (found.get(ConditionType.READY) or {}).get("reason")
    if phase == Phase.HALTED:
        return (found.get(ConditionType.HALTED) or {}).get("reason")
    return None


def _condition(status: Mapping[str, Any], type: str) -> Mapping[str, Any]:
    return conditions.by_type(status.get("conditions")).get(type) or {}


def transition_events(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Event]:
    events: list[Event] = []
    phase, reason = new.get("phase"), _primary_reason(new)
    if (old.get("phase"), _primary_reason(old)) != (phase, reason):
        message = str(new.get("message") or "")
        if phase in (Phase.INVALID, Phase.PENDING, Phase.FAILED):
            events.append(Event("Warning", reason or str(phase), message))
        elif phase == Phase.STARTING and reason == "Restarting":
            events.append(Event("Normal", "Restarting", message))
        elif phase == Phase.STARTING and reason == "PodNotReady":
            events.append(Event("Warning", "PodNotReady", message))
        elif phase == Phase.HALTED and reason == "KillSwitch":
            events.append(Event("Warning", "KillSwitchHalted", message))
        elif phase in _PHASE_EVENTS:
            kind, name = _PHASE_EVENTS[phase]
            events.append(Event(kind, name, message))

    def flipped(type: str) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
        before, after = _condition(old, type), _condition(new, type)
        if (before.get("status"), before.get("reason")) == (after.get("status"), after.get("reason")):
            return None
        return before, after

    if change := flipped(ConditionType.STALE):
        before, after = change
        if after.get("status") == ConditionStatus.TRUE:
            events.append(Event("Warning", "Stale", str(after.get("message") or "")))
        elif before.get("status") == ConditionStatus.TRUE:
            events.append(Event("Normal", "HeartbeatResumed", "the runtime reports again"))
    if change := flipped(ConditionType.CONFIG_DRIFT):
        _, after = change
        if after.get("status") == ConditionStatus.TRUE and after.get("reason") in DRIFT_REASONS:
            events.append(Event("Normal", "ConfigDrift", str(after.get("message") or "")))
    if change := flipped(ConditionType.RISK_HALTED):
        before, after = change
        if before.get("status") == ConditionStatus.TRUE and after.get("status") == ConditionStatus.FALSE:
            events.append(Event("Normal", "RiskAcknowledged", str(after.get("message") or "")))
    if change := flipped(ConditionType.INVALID_SPEC):
        # Problems of a pending configuration, while the pod keeps running on its own: no phase tells them.
        _, after = change
        if after.get("status") == ConditionStatus.TRUE and phase in (Phase.RUNNING, Phase.STARTING, Phase.RISK_HALTED):
            events.append(Event("Warning", str(after.get("reason")), str(after.get("message") or "")))
    return events


# ------------------------------------------------------------------------------------------------
# A write the API server refused.
# ------------------------------------------------------------------------------------------------

WRITE_FAILURES = ("HaltFailed", "ApplyFailed")


def write_failed(obs: Observation, report_: Report, reason: str, message: str) -> Report:
    """The status after a write failed (``HaltFailed``: the halt did not happen, the pod may still trade;
    ``ApplyFailed``: a child could not be written): phase Failed, never Running or Halted; the generation
    is not marked observed (it was not acted on). The next reconciliation retries and reports anew."""
    assert reason in WRITE_FAILURES
    halt = reason == "HaltFailed"
    verdicts = []
    for condition in report_.status["conditions"]:
        verdict = Verdict(condition["type"], condition["status"], condition["reason"], condition["message"])
        if verdict.type == ConditionType.READY:
            verdict = Verdict.false(ConditionType.READY, reason, message)
        elif verdict.type == ConditionType.HALTED and halt:
            verdict = Verdict.false(ConditionType.HALTED, reason, message)
        elif verdict.type == ConditionType.TRADING and halt:
            verdict = Verdict.unknown(ConditionType.TRADING, reason, "the halt failed: the pod may still trade")
        elif verdict.type == ConditionType.TRADING:
            verdict = Verdict.false(ConditionType.TRADING, "NotRunning", f"the strategy is {Phase.FAILED}")
        verdicts.append(verdict)
    merged = conditions.merge(obs.status.get("conditions"), verdicts, now=obs.now, generation=obs.generation)
    status = {
        **report_.status,
        "phase": Phase.FAILED,
        "message": message,
        "conditions": merged,
        "observedGeneration": obs.status.get("observedGeneration"),
    }
    return Report(status=status, events=transition_events(obs.status, status), recheck_after=None)
