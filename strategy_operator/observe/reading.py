"""Reading a LiveStrategy as the API's models read it: its spec strictly, its status leniently.

The spec is read by the same models as the CRD was generated from; a spec they cannot read
is a problem the status reports (the last applied configuration keeps running). The status is
read through the same models the runtime writes it with (:mod:`livestrat.api.status`); a part
of it that does not read (a newer writer, a hand edit) is left out rather than stopping the
reconciliation: halts must work whatever else in the object is broken.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from livestrat.api import validation
from livestrat.api.resource import API_VERSION, KIND, LiveStrategy
from livestrat.api.status import Condition, LiveStrategyStatus
from strategy_operator.build.policy import SpecProblem


def read_strategy(raw: Mapping[str, Any]) -> tuple[LiveStrategy | None, list[SpecProblem]]:
    """The spec as the models read it. The CRD's own rules (CEL) are the API server's to enforce;
    the cross-field rules that decide whether a pod may run are checked again in ``spec_problems``."""
    meta = raw.get("metadata") or {}
    doc = {"apiVersion": API_VERSION, "kind": KIND, "metadata": dict(meta), "spec": raw.get("spec") or {}}
    try:
        return LiveStrategy.model_validate(doc), []
    except ValidationError as exc:
        problems = "; ".join(str(p) for p in validation.problems(doc)) or str(exc.errors()[0]["msg"])
        return None, [SpecProblem("SpecInvalid", f"the spec cannot be read: {problems}")]


def _reads(model: type[Any], value: Any) -> bool:
    try:
        model.model_validate(value)
    except ValidationError:
        return False
    return True


def read_status(raw: Any) -> LiveStrategyStatus:
    """``status`` as the models read it; each field that does not read is left out (conditions one by one)."""
    raw = raw if isinstance(raw, Mapping) else {}
    try:
        return LiveStrategyStatus.model_validate(raw)
    except ValidationError:
        pass
    kept: dict[str, Any] = {}
    for field in LiveStrategyStatus.model_fields.values():
        alias = str(field.alias)
        if alias not in raw:
            continue
        value = raw[alias]
        if alias == "conditions" and isinstance(value, list):
            value = [condition for condition in value if _reads(Condition, condition)]
        if _reads(LiveStrategyStatus, {alias: value}):
            kept[alias] = value
    return LiveStrategyStatus.model_validate(kept)
