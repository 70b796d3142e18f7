"""Events: one per transition, computed from the old and the new status (never posted twice for one)."""

from __future__ import annotations

from dataclasses import dataclass

from livestrat.api.promotion import PromotionState
from livestrat.api.status import ConditionStatus, ConditionType, LiveStrategyStatus, Phase
from strategy_operator.decide import conditions, unreadable

# ConfigDrift reasons of a running pod left as it is (each posts a ConfigDrift event when it begins).
DRIFT_REASONS = frozenset({"SpecChanged", "OperatorUpgraded", "RuntimeImageChanged"})
PROMOTION_REFUSED = "PromotionRefused"  # the hold of a live strategy its promotion does not admit yet


@dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str


_PHASE_EVENTS = {
    Phase.STARTING: ("Normal", "Starting"),
    Phase.RUNNING: ("Normal", "Running"),
    Phase.HALTING: ("Normal", "Halting"),
    Phase.HALTED: ("Normal", "Halted"),
    Phase.RISK_HALTED: ("Warning", "RiskHalted"),
}


def _primary_reason(status: LiveStrategyStatus) -> str | None:
    phase = status.phase
    if phase == Phase.PENDING and _reason(status, ConditionType.HALTED) == PROMOTION_REFUSED:
        return PROMOTION_REFUSED
    if phase in (Phase.INVALID, Phase.PENDING):
        return _reason(status, ConditionType.INVALID_SPEC)
    if phase in (Phase.FAILED, Phase.STARTING):
        return _reason(status, ConditionType.READY)
    if phase == Phase.HALTED:
        return _reason(status, ConditionType.HALTED)
    return None


def _reason(status: LiveStrategyStatus, type: str) -> str | None:
    found = conditions.find(status.conditions, type)
    return found.reason if found is not None else None


def _state(status: LiveStrategyStatus, type: str) -> tuple[str | None, str | None, str]:
    """(status, reason, message) of a condition; Nones when it is not there."""
    found = conditions.find(status.conditions, type)
    return (found.status, found.reason, found.message) if found is not None else (None, None, "")


def transition_events(old: LiveStrategyStatus, new: LiveStrategyStatus) -> list[Event]:
    events: list[Event] = []
    phase, reason = new.phase, _primary_reason(new)
    if (old.phase, _primary_reason(old)) != (phase, reason):
        message = str(new.message or "")
        if reason == PROMOTION_REFUSED:
            pass  # the promotion's own event below tells it, with its figures
        elif phase in (Phase.INVALID, Phase.PENDING, Phase.FAILED):
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

    def flipped(type: str) -> tuple[tuple[str | None, str | None, str], tuple[str | None, str | None, str]] | None:
        before, after = _state(old, type), _state(new, type)
        return None if before[:2] == after[:2] else (before, after)

    promotion = new.promotion
    if promotion is not None and (old.promotion is None or old.promotion.message != promotion.message):
        accepted = promotion.state == PromotionState.ACCEPTED
        events.append(
            Event("Normal", "PromotionAccepted", promotion.message)
            if accepted
            else Event("Warning", PROMOTION_REFUSED, promotion.message)
        )
    if change := flipped(ConditionType.STALE):
        (was, _, _), (now, _, message) = change
        if now == ConditionStatus.TRUE:
            events.append(Event("Warning", "Stale", message))
        elif was == ConditionStatus.TRUE:
            events.append(Event("Normal", "HeartbeatResumed", "the runtime reports again"))
    if change := flipped(ConditionType.CONFIG_DRIFT):
        _, (now, why, message) = change
        if now == ConditionStatus.TRUE and why in DRIFT_REASONS:
            events.append(Event("Normal", "ConfigDrift", message))
    if change := flipped(ConditionType.DISRUPTION_BLOCKED):
        _, (now, _, message) = change
        if now == ConditionStatus.TRUE:
            events.append(Event("Warning", "DisruptionBlocked", message))
    if change := flipped(ConditionType.RISK_HALTED):
        (was, _, _), (now, _, message) = change
        if was == ConditionStatus.TRUE and now == ConditionStatus.FALSE:
            events.append(Event("Normal", "RiskAcknowledged", message))
    if change := flipped(ConditionType.INVALID_SPEC):
        # Problems of a pending configuration, while the pod keeps running on its own: no phase tells them.
        _, (now, why, message) = change
        if now == ConditionStatus.TRUE and phase in (Phase.RUNNING, Phase.STARTING, Phase.RISK_HALTED):
            events.append(Event("Warning", str(why), message))
    # A field that does not read: told once per distinct problem (the message without the effect a halt changes).
    for type in (ConditionType.INVALID_SPEC, ConditionType.TRADING, ConditionType.RISK_HALTED):
        (_, was, before), (_, why, message) = _state(old, type), _state(new, type)
        if why not in unreadable.TOLD_ONCE:
            continue
        if (was, unreadable.without_effect(before)) == (why, unreadable.without_effect(message)):
            continue
        if type == ConditionType.INVALID_SPEC and any(event.reason == why for event in events):
            continue  # the phase's event told it
        events.append(Event("Warning", str(why), message))
    return events
