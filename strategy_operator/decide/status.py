"""The report: the operator's part of the status, the events that tell the story, the next deadline.

:func:`report` turns an observation and its plan into the operator-owned fields of
``LiveStrategyStatus`` (the contract's model, :mod:`livestrat.api.status`: phase, message,
replicas, selector, observedGeneration, podName and the seven conditions), the events of the
transitions, and when time alone could change the verdict. :func:`write_failed` is the status
after a write the API server refused. :func:`status_patch` is the merge patch of the fields
that differ: the operator writes nothing else, and nothing when nothing changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from livestrat.api.promotion import PromotionRecord, PromotionState
from livestrat.api.status import (
    OPERATOR_FIELDS,
    RUNTIME_FIELDS,
    ConditionStatus,
    ConditionType,
    HaltRecord,
    LiveStrategyStatus,
    NettingClaim,
    Phase,
    TradingState,
)
from strategy_operator.build import labels
from strategy_operator.decide import claims, conditions, disruption, drift, runtime_signals, unreadable
from strategy_operator.decide.conditions import Verdict
from strategy_operator.decide.events import Event, transition_events
from strategy_operator.decide.phase import phase_verdicts
from strategy_operator.decide.plan import Hold, Plan
from strategy_operator.decide.risk import budget_halt_message, latch_of, risk_message
from strategy_operator.observe.observation import Observation, parse_time
from strategy_operator.observe.reading import Unreadable

PROMOTION_RECHECK_SECONDS = 5.0
STATUS_FROM_EARLIER_OBJECT = "StatusFromEarlierObject"


def earlier_object_message(uid: str) -> str:
    return (
        f"status.trading and status.risk were pushed by the pod of an earlier LiveStrategy of this name (uid {uid}), "
        "deleted and applied again while that pod still ran: they are not this strategy's figures, nothing was "
        "acted on, and they were removed. That pod pushes nothing more and sends no new order once it sees this "
        "object"
    )


@dataclass(frozen=True)
class Report:
    status: LiveStrategyStatus  # the operator-owned status fields, complete (the runtime's left out)
    events: list[Event]
    recheck_after: float | None  # seconds until time alone may change the verdict


def _staleness(obs: Observation, phase: str) -> tuple[Verdict, datetime | None]:
    pod = obs.pod
    if phase not in (Phase.RUNNING, Phase.RISK_HALTED) or pod is None or not pod.ready:
        return Verdict.false(ConditionType.STALE, "NotRunning", ""), None
    trading = obs.status.trading or TradingState()
    heartbeat = parse_time(trading.heartbeat)
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
        f"the last heartbeat ({trading.heartbeat}) is older than {int(limit.total_seconds())}s: fills, PnL "
        "and risk in this status may be out of date"
    )
    return Verdict.true(ConditionType.STALE, "HeartbeatTooOld", message), None


def _trading(obs: Observation, phase: str, stale: Verdict) -> Verdict:
    if phase != Phase.RUNNING:
        return Verdict.false(ConditionType.TRADING, "NotRunning", f"the strategy is {phase}")
    if unreadable_report := unreadable.status_verdict(obs, ConditionType.TRADING):
        return unreadable_report
    if stale.status == ConditionStatus.TRUE:
        return Verdict.unknown(ConditionType.TRADING, "Stale", "the runtime's report is out of date")
    node_state = (obs.status.trading or TradingState()).node_state
    if node_state is None:
        return Verdict.unknown(ConditionType.TRADING, "NoReport", "the runtime has not reported yet")
    if not runtime_signals.node_trades(node_state):
        return Verdict.false(ConditionType.TRADING, "NodeNotRunning", f"the runtime reports its node {node_state}")
    return Verdict.true(ConditionType.TRADING, "Trading", "the runtime reports its node running")


def _risk_verdict(obs: Observation) -> Verdict:
    latch = latch_of(obs)
    if latch.latched:
        return Verdict.true(ConditionType.RISK_HALTED, "RiskLimitBreached", risk_message(obs, latch))
    if obs.budget_halts:
        return Verdict.true(ConditionType.RISK_HALTED, "RiskBudgetBreached", budget_halt_message(obs))
    if unreadable_report := unreadable.status_verdict(obs, ConditionType.RISK_HALTED):
        return unreadable_report
    if latch.acknowledged:
        message = f"the breach at {latch.breached_at} was acknowledged"
        if latch.reported_halted:  # until the runtime has started with the acknowledgement
            return Verdict.false(ConditionType.RISK_HALTED, "Acknowledged", message)
        return Verdict.false(ConditionType.RISK_HALTED, "WithinLimits", f"{message}; the runtime reports no halt")
    return Verdict.false(ConditionType.RISK_HALTED, "WithinLimits", "")


def halt_record(obs: Observation, hold: Hold | None) -> HaltRecord | None:
    """``status.halt``: the operator's decision that no pod may run (any hold), for the runtime to read at SIGTERM.

    Its time is that of the first decision while the strategy stays held, whatever the reason becomes."""
    if hold is None:
        return None
    since = obs.status.halt.since if obs.status.halt is not None else conditions.timestamp(obs.now)
    return HaltRecord(reason=hold.reason, message=hold.message, since=since)


def report(obs: Observation, plan_: Plan) -> Report:
    verdicts = phase_verdicts(obs, plan_.hold, plan_.replicas)
    stale, stale_deadline = _staleness(obs, verdicts.phase)
    all_verdicts = [
        verdicts.ready,
        _trading(obs, verdicts.phase, stale),
        verdicts.halted,
        _risk_verdict(obs),
        drift.verdict(obs, plan_),
        verdicts.invalid,
        stale,
        disruption.verdict(obs),
    ]
    merged = conditions.merge(obs.status.conditions, all_verdicts, now=obs.now, generation=obs.generation)
    pods_present = [p for p in obs.pods if p.controlled]
    pod = obs.pod
    status = LiveStrategyStatus(
        phase=verdicts.phase,
        message=verdicts.message,
        replicas=1 if pods_present else 0,
        selector=labels.selector(obs.name),
        observed_generation=obs.generation,
        pod_name=pod.name if pod is not None else None,
        conditions=merged,
        halt=halt_record(obs, plan_.hold),
        promotion=plan_.promotion or obs.status.promotion,
        netting_claim=claims.record(
            obs.claimant,
            obs.status.netting_claim,
            runs=plan_.replicas == 1,
            blocked=any(p.reason == claims.NETTING_ACCOUNT_IN_USE for p in obs.problems),
            now=obs.now,
        ),
    )
    deadlines = [*verdicts.deadlines, *([stale_deadline] if stale_deadline else [])]
    future = [(d - obs.now).total_seconds() for d in deadlines if d > obs.now]
    recheck = min(future) + 0.05 if future else None
    if plan_.promotion is not None and plan_.promotion.state == PromotionState.REFUSED:
        # The paper strategy's record changes without telling this one: its status is read again this often.
        recheck = min(recheck or PROMOTION_RECHECK_SECONDS, PROMOTION_RECHECK_SECONDS)
    return Report(status=status, events=transition_events(obs.status, status) + repairs(obs), recheck_after=recheck)


def repairs(obs: Observation) -> list[Event]:
    """The events of what the status write repairs (``status_patch``'s ``rewrite`` and ``drop_runtime``): told with
    the write, whether the pass then succeeds or not (the write is made either way, and not made again)."""
    told = [Event("Warning", unreadable.STATUS_REPAIRED, unreadable.repaired_message(r)) for r in obs.status_repairs]
    if obs.runtime_of_another is not None:
        told.append(Event("Warning", STATUS_FROM_EARLIER_OBJECT, earlier_object_message(obs.runtime_of_another)))
    return told


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
    for condition in report_.status.conditions:
        verdict = conditions.verdict_of(condition)
        if verdict.type == ConditionType.READY:
            verdict = Verdict.false(ConditionType.READY, reason, message)
        elif verdict.type == ConditionType.HALTED and halt:
            verdict = Verdict.false(ConditionType.HALTED, reason, message)
        elif verdict.type == ConditionType.TRADING and halt:
            verdict = Verdict.unknown(ConditionType.TRADING, reason, "the halt failed: the pod may still trade")
        elif verdict.type == ConditionType.TRADING:
            verdict = Verdict.false(ConditionType.TRADING, "NotRunning", f"the strategy is {Phase.FAILED}")
        verdicts.append(verdict)
    merged = conditions.merge(obs.status.conditions, verdicts, now=obs.now, generation=obs.generation)
    status = report_.status.model_copy(
        update={
            "phase": Phase.FAILED,
            "message": message,
            "conditions": merged,
            "observed_generation": obs.status.observed_generation,
        }
    )
    return Report(status=status, events=transition_events(obs.status, status) + repairs(obs), recheck_after=None)


# ------------------------------------------------------------------------------------------------
# The operator's part of the status, on the wire.
# ------------------------------------------------------------------------------------------------


def operator_part(status: LiveStrategyStatus) -> LiveStrategyStatus:
    """The status with only the operator's fields (the runtime's left out)."""
    return status.model_copy(update=dict.fromkeys(RUNTIME_FIELDS))


def with_operator_part(status: LiveStrategyStatus, part: LiveStrategyStatus) -> LiveStrategyStatus:
    """``status`` with the operator's fields taken from ``part``."""
    return status.model_copy(update={name: getattr(part, name) for name in OPERATOR_FIELDS})


def _wire(value: Any) -> Any:
    if isinstance(value, list):
        return [item.to_wire() for item in value]
    if isinstance(value, HaltRecord | PromotionRecord | NettingClaim):
        return value.to_wire()
    return value


def status_patch(
    current: LiveStrategyStatus,
    desired: LiveStrategyStatus,
    rewrite: Iterable[Unreadable] = (),
    *,
    drop_runtime: bool = False,
) -> dict[str, Any]:
    """The merge patch of the operator's fields that differ (``None`` deletes, as a merge patch does), and of
    those in ``rewrite`` (stored, but unreadable: ``current`` does not show them). When the status itself did
    not read, every field of the operator's. ``drop_runtime``: the stored ``trading`` and ``risk`` are another
    object's (a pod of an earlier LiveStrategy of this name pushed them): deleted, the one write the operator
    makes to the runtime's fields."""
    fields = LiveStrategyStatus.model_fields
    broken = {u.part for u in rewrite}
    patch = {
        str(fields[name].alias): _wire(getattr(desired, name))
        for name in OPERATOR_FIELDS
        if getattr(current, name) != getattr(desired, name) or {str(fields[name].alias), ""} & broken
    }
    if drop_runtime:
        patch |= {str(fields[name].alias): None for name in RUNTIME_FIELDS}
    return patch
