"""``status.conditions`` in the shape of ``metav1.Condition``.

The operator always reports the same seven condition types, in the same order, so that
``kubectl wait --for=condition=Halted`` and friends work from the first reconciliation.
``lastTransitionTime`` changes only when a condition's ``status`` changes; a new reason or
message with the same status keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from livestrat.api.status import ConditionStatus, ConditionType

ORDER = [
    ConditionType.READY,
    ConditionType.TRADING,
    ConditionType.HALTED,
    ConditionType.RISK_HALTED,
    ConditionType.CONFIG_DRIFT,
    ConditionType.INVALID_SPEC,
    ConditionType.STALE,
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


def by_type(conditions: Iterable[Mapping[str, Any]] | None) -> dict[str, Mapping[str, Any]]:
    return {str(c.get("type")): c for c in conditions or [] if isinstance(c, Mapping)}


def merge(
    previous: Iterable[Mapping[str, Any]] | None,
    verdicts: Iterable[Verdict],
    *,
    now: datetime,
    generation: int | None,
) -> list[dict[str, Any]]:
    """The new condition list: previous transition times kept where the status did not change."""
    old = by_type(previous)
    result = []
    for verdict in sorted(verdicts, key=lambda v: ORDER.index(v.type) if v.type in ORDER else len(ORDER)):
        before = old.get(verdict.type)
        changed = before is None or before.get("status") != verdict.status
        condition: dict[str, Any] = {
            "type": verdict.type,
            "status": verdict.status,
            "reason": verdict.reason,
            "message": verdict.message[:MAX_MESSAGE],
            "lastTransitionTime": timestamp(now) if changed else str(before.get("lastTransitionTime")),
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        result.append(condition)
    return result
