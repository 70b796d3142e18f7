"""``status.conditions`` in the shape of ``metav1.Condition``.

The operator always reports the same eight condition types, in the same order, so that
``kubectl wait --for=condition=Halted`` and friends work from the first reconciliation.
``lastTransitionTime`` changes only when a condition's ``status`` changes; a new reason or
message with the same status keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from livestrat.api.status import Condition, ConditionStatus, ConditionType

ORDER = [
    ConditionType.READY,
    ConditionType.TRADING,
    ConditionType.HALTED,
    ConditionType.RISK_HALTED,
    ConditionType.CONFIG_DRIFT,
    ConditionType.INVALID_SPEC,
    ConditionType.STALE,
    ConditionType.DISRUPTION_BLOCKED,
]
MAX_MESSAGE = 2048


@dataclass(frozen=True)
class Verdict:
    """One condition as the operator sees it now (without its transition time)."""

    type: str
    status: str
    reason: str
    message: str = ""

    @classmethod
    def true(cls, type: str, reason: str, message: str = "") -> Verdict:
        return cls(type, ConditionStatus.TRUE, reason, message)

    @classmethod
    def false(cls, type: str, reason: str, message: str = "") -> Verdict:
        return cls(type, ConditionStatus.FALSE, reason, message)

    @classmethod
    def unknown(cls, type: str, reason: str, message: str = "") -> Verdict:
        return cls(type, ConditionStatus.UNKNOWN, reason, message)


def timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def by_type(conditions: Iterable[Condition] | None) -> dict[str, Condition]:
    return {condition.type: condition for condition in conditions or []}


def find(conditions: Iterable[Condition] | None, type: str) -> Condition | None:
    return by_type(conditions).get(type)


def verdict_of(condition: Condition) -> Verdict:
    return Verdict(condition.type, condition.status, condition.reason, condition.message)


def merge(
    previous: Iterable[Condition] | None,
    verdicts: Iterable[Verdict],
    *,
    now: datetime,
    generation: int | None,
) -> list[Condition]:
    """The new condition list: previous transition times kept where the status did not change."""
    old = by_type(previous)
    result = []
    for verdict in sorted(verdicts, key=lambda v: ORDER.index(v.type) if v.type in ORDER else len(ORDER)):
        before = old.get(verdict.type)
        changed = before is None or before.status != verdict.status
        result.append(
            Condition(
                type=verdict.type,
                status=ConditionStatus(verdict.status),
                reason=verdict.reason,
                message=verdict.message[:MAX_MESSAGE],
                last_transition_time=timestamp(now) if changed or before is None else before.last_transition_time,
                observed_generation=generation,
            )
        )
    return result
