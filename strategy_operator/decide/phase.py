"""The phase: where a strategy is in its lifecycle, with the Ready, Halted and InvalidSpec verdicts.

:func:`phase_verdicts` reads the plan's replicas and hold and the observed pod: halting (and its
deadline), halted, pending, invalid, starting (and its timeout), running, risk-halted or
failed, with a message a person can act on and the deadlines at which time alone would change
the verdict. The pod's exit codes mean what :mod:`strategy_operator.decide.runtime_signals` says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from livestrat.api.status import ConditionType, Phase
from strategy_operator.build import labels
from strategy_operator.decide import conditions, runtime_signals, unreadable
from strategy_operator.decide.claims import NETTING_ACCOUNT_IN_USE
from strategy_operator.decide.conditions import Verdict
from strategy_operator.decide.plan import Hold
from strategy_operator.decide.risk import latch_of, risk_message
from strategy_operator.observe.observation import Observation, PodView, parse_time

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
# Reasons for holding the StatefulSet at 0 that leave the phase Pending (fixable without a spec change: a Secret
# created, the holder of an account's claim gone, or (PromotionRefused) the paper strategy's track record
# meeting spec.promotion: decide.promotion).
PENDING_REASONS = frozenset({"SecretNotFound", "SecretKeyNotFound", NETTING_ACCOUNT_IN_USE, "PromotionRefused"})


@dataclass
class Verdicts:
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
    return pod is not None and not pod.ready and runtime_signals.rejected(pod.exit_code)


def invalid_verdict(obs: Observation, pod: PodView | None) -> Verdict:
    if obs.problems:
        first = obs.problems[0]
        message = " ".join(p.message for p in obs.problems)
        if first.reason in unreadable.UNREADABLE or unreadable.keeps_running(obs):
            message = f"{message} {unreadable.effect(obs)}"
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
            + f" {unreadable.KEPT}"
        )
        return Verdict.true(ConditionType.INVALID_SPEC, first.reason, message)
    return Verdict.false(ConditionType.INVALID_SPEC, "Valid", "")


def _lost_readiness(obs: Observation, pod: PodView) -> datetime | None:
    """Since when a pod that was ready is not any more; None for a pod that has not been ready yet.
    The operator's own Ready condition says whether it was (it survives an operator restart)."""
    previous = conditions.find(obs.status.conditions, ConditionType.READY)
    if previous is None or previous.reason not in ("PodReady", "PodNotReady"):
        return None
    changed = parse_time(previous.last_transition_time)
    if pod.created is not None and changed is not None and changed < pod.created:
        return None  # the pod that was ready is an earlier one: this one is starting
    if previous.reason == "PodNotReady" and changed is not None:
        return changed  # when this operator saw it lose readiness
    return pod.ready_since or changed or obs.phase_since  # the kubelet's Ready transition


_LOG_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}[ T][\d:.,]+\s+[A-Z]+\s+[\w.]+:\s*")


def _last_line(text: str | None) -> str:
    """The last line of a termination message, without the log line's timestamp, level and logger."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return _LOG_PREFIX.sub("", lines[-1])[:512] if lines else ""


def phase_verdicts(obs: Observation, hold: Hold | None, replicas: int) -> Verdicts:
    pod = obs.pod
    invalid = invalid_verdict(obs, pod)
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
                return Verdicts(
                    Phase.FAILED,
                    message,
                    ready_false("HaltTimedOut", message),
                    halted_false("HaltTimedOut", message),
                    invalid,
                )
            message = f"halting ({hold.reason}): waiting for pod {pod.name} to exit"
            return Verdicts(
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
        return Verdicts(phase, hold.message, ready_false(hold.reason, hold.message), halted, invalid)

    halted = halted_false("Running", "")
    latch = latch_of(obs)
    if latch.latched:  # HaltInPlace: the pod stays, the runtime does not trade
        message = risk_message(obs, latch)
        return Verdicts(Phase.RISK_HALTED, message, ready_false("RiskLimitBreached", message), halted, invalid)
    start_timeout = timedelta(seconds=obs.settings.start_timeout_seconds)
    limit = int(start_timeout.total_seconds())

    def timed(since: datetime, waiting: tuple[str, str], failed: tuple[str, str]) -> Verdicts:
        """Starting with ``waiting`` (reason, message) until ``since`` + the start timeout, then Failed."""
        deadline = since + start_timeout
        if obs.now >= deadline:
            return Verdicts(Phase.FAILED, failed[1], ready_false(*failed), halted, invalid)
        return Verdicts(Phase.STARTING, waiting[1], ready_false(*waiting), halted, invalid, [deadline])

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
        return Verdicts(Phase.STARTING, message, ready_false("Restarting", message), halted, invalid)
    if pod.ready:
        message = f"pod {pod.name} is ready"
        return Verdicts(Phase.RUNNING, message, Verdict.true(ConditionType.READY, "PodReady", message), halted, invalid)
    if _rejected(pod):
        return Verdicts(Phase.INVALID, invalid.message, ready_false(invalid.reason, invalid.message), halted, invalid)
    failure = runtime_signals.exit_failure(pod.exit_code)
    if failure is not None and not pod.running:
        reason, what = failure
        detail = _last_line(pod.exit_message)
        message = f"pod {pod.name}: {what} (exit code {pod.exit_code}){': ' + detail if detail else ''}"
        return Verdicts(Phase.FAILED, message, ready_false(reason, message), halted, invalid)
    if pod.waiting_reason in FATAL_WAITING:
        detail = f": {pod.waiting_message}" if pod.waiting_message else ""
        message = f"pod {pod.name} is in {pod.waiting_reason}{detail}"
        return Verdicts(Phase.FAILED, message, ready_false(pod.waiting_reason or "Failed", message), halted, invalid)
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


def timed_wait(replicas: int, pods: list[PodView]) -> str | None:
    """The wait with a timeout a strategy is in: for its pod to appear, or for its pod to exit."""
    if replicas == 1 and not pods:
        return "awaiting-pod"
    if replicas == 0 and pods:
        return "halting"
    return None
