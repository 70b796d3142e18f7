"""Reading a LiveStrategy as it is stored, whatever is stored: never an exception, always what could not be read.

The API server checks a LiveStrategy against the CRD's schema only when it is written, so etcd can
hold what today's schema refuses: an object written under an older or laxer CRD, written to etcd
directly, or left by a conversion bug. :func:`read_object` reads any JSON value in any field:

- the spec, strictly, by the models the CRD is generated from (as the API server would: no ``"1"``
  for 1, no ``true`` for a number), and ``metadata.labels``/``annotations``, which must be maps of
  strings. A field that does not read is a problem (``SpecInvalid``, ``MetadataInvalid``) that
  names it, says what is wrong and what to do; the operator then acts on nothing in the object but
  its halts (:mod:`strategy_operator.decide.unreadable`);
- the status, leniently, through the models the runtime writes it with: a field that does not read
  is left out (conditions one by one). The runtime's fields (``trading``, ``risk``) are reported
  (``StatusInvalid``); the operator's own are written back (``StatusRepaired``);
- ``spec.replicas`` and the desk's halt annotation on their own (a halt must act whatever else is
  broken), and whether the scale subresource can serve the object (apiextensions refuses to when its
  replicas or selector field has another type): the kill switch may write ``spec.replicas`` through it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from livestrat.api import validation
from livestrat.api.contract import BUDGET_HALT_PREFIX, HALT_ANNOTATION
from livestrat.api.resource import API_VERSION, KIND, LiveStrategy
from livestrat.api.status import (
    OPERATOR_FIELDS,
    RUNTIME_FIELDS,
    Condition,
    LiveStrategyStatus,
    own_status,
    pushed_by_another,
)
from strategy_operator.build.policy import SpecProblem

MAX_LISTED = 5  # problems named in one message (the rest counted)
INT64 = range(-(2**63), 2**63)


@dataclass(frozen=True)
class Unreadable:
    """A field of the stored object that does not read, and why."""

    field: str  # as a user finds it: "status.risk", "metadata.annotations"
    problem: str

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"

    @property
    def part(self) -> str:
        """The field right under the top level: ``trading`` of ``status.trading.fills``; "" for a top level."""
        rest = self.field.split(".", 1)[1] if "." in self.field else ""
        return re.split(r"[.\[]", rest)[0]


@dataclass(frozen=True)
class Reading:
    """A LiveStrategy as the operator can read it."""

    strategy: LiveStrategy | None  # None: its spec or metadata cannot be read (see ``problems``)
    problems: list[SpecProblem]
    annotations: dict[str, str]  # the annotations, when they read (else none)
    spec_replicas: int | None  # spec.replicas as stored (absent: 1); None when it is not an integer
    status: LiveStrategyStatus  # what reads of the status
    unreadable_status: tuple[Unreadable, ...] = ()  # the runtime's fields that do not read
    status_repairs: tuple[Unreadable, ...] = ()  # the operator's fields that do not read: written back
    scalable: bool = True  # the scale subresource can serve it
    halt_request: str | None = None  # the livestrat.io/halt annotation (its note), also when others do not read
    budget_halts: tuple[tuple[str, str], ...] = ()  # (RiskBudget, breach time) of each livestrat.io/budget-halt.*
    annotations_writable: bool = True  # absent or a map of strings: a merge patch of one key replaces nothing
    # The uid of an earlier LiveStrategy of this name whose pod pushed the stored trading and risk (left out of
    # ``status``: see ``livestrat.api.status.own_status``); None: its own pod's, or none.
    pushed_by_another: str | None = None


def _kind(value: Any) -> str:
    """What a JSON value is, in words (never its content: it may be a misplaced secret)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return {str: "a string", list: "a list", dict: "an object"}.get(type(value), "null")


def _string_map(value: Any) -> bool:
    return isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def _listed(found: list[Any]) -> str:
    more = f"; and {len(found) - MAX_LISTED} more" if len(found) > MAX_LISTED else ""
    return "; ".join(str(item) for item in found[:MAX_LISTED]) + more


def readable_metadata(meta: Mapping[str, Any]) -> tuple[dict[str, Any], list[Unreadable]]:
    """The metadata with the labels and annotations that are not maps of strings left out (as the API server
    itself leaves them out when it reads such an object from etcd), and those left out."""
    readable, dropped = dict(meta), []
    for name in ("labels", "annotations"):
        value = readable.get(name)
        if value is None or _string_map(value):
            continue
        del readable[name]
        if isinstance(value, Mapping):
            odd = next((k for k, v in value.items() if not isinstance(v, str)), None)
            what = f"the value of {odd!r} is {_kind(value[odd])}"
        else:
            what = f"it is {_kind(value)}"
        dropped.append(Unreadable(f"metadata.{name}", f"must be a map of strings, {what}"))
    return readable, dropped


def read_strategy(raw: Mapping[str, Any]) -> tuple[LiveStrategy | None, list[SpecProblem]]:
    """The LiveStrategy as the models read it, strictly. The CRD's own rules (CEL) are the API server's to
    enforce; the cross-field rules that decide whether a pod may run are checked again in ``spec_problems``."""
    meta = raw.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    name = meta.get("name") or "NAME"
    readable, dropped = readable_metadata(meta)
    doc = {"apiVersion": API_VERSION, "kind": KIND, "metadata": readable}
    if "spec" in raw:
        doc["spec"] = raw["spec"]
    unknown: set[str] = set()  # fields the models do not have
    try:
        strategy = LiveStrategy.from_manifest(doc)
    except ValidationError as exc:
        listed = validation.problems_of(exc)
        strategy, found = None, [Unreadable(p.path, p.message) for p in listed]
        unknown = {p.path for p, e in zip(listed, exc.errors(), strict=True) if e["type"] == "extra_forbidden"}
    else:
        found = []
    problems = []
    bad_meta = dropped + [p for p in found if p.field.startswith("metadata")]
    if bad_meta:
        problems.append(
            SpecProblem(
                "MetadataInvalid",
                f"{_listed(bad_meta)}. It was stored past the API server's validation (an older CRD, a direct "
                "write), so the operator cannot read it (the risk acknowledgement and the risk record are "
                f"annotations): set it right with kubectl edit livestrategy {name}.",
            )
        )
    bad_spec = [p for p in found if not p.field.startswith("metadata")]
    if bad_spec and all(p.field in unknown for p in bad_spec):
        # A CRD-first upgrade (the API server defaults a field the newer CRD added into every object), or a typo
        # where the admission policy is not installed. A field this operator does not know may be a limit it cannot
        # honour: the spec is not applied.
        problems.append(
            SpecProblem(
                "SpecInvalid",
                f"{_listed(bad_spec)}. This operator does not know these fields: the CRD installed is newer than "
                "this operator (upgrade the operator to the CRD's version: docs/install.md, Upgrades), or they are "
                "misspelt and no admission policy refused them (docs/install.md, Misspelt fields: then fix them with "
                f"kubectl edit livestrategy {name}).",
            )
        )
    elif bad_spec:
        problems.append(
            SpecProblem(
                "SpecInvalid",
                f"{_listed(bad_spec)}. The spec was stored past the API server's validation (an older CRD, a "
                f"direct write), so the operator cannot read it: fix it with kubectl edit livestrategy {name}, or "
                "apply a manifest that `livestrat validate` accepts.",
            )
        )
    return (strategy if not problems else None), problems


def _strictly[M: BaseModel](model: type[M], value: Any) -> M:
    """``value`` read by ``model`` as the API server reads JSON: strictly (no "1" for 1), enums as strings."""
    return model.model_validate_json(json.dumps(value), strict=True)


def _reads(model: type[BaseModel], value: Any) -> bool:
    try:
        _strictly(model, value)
    except ValidationError:
        return False
    return True


def _status(raw: Mapping[str, Any]) -> tuple[LiveStrategyStatus, list[Unreadable]]:
    """The status as it reads, each field that does not read left out (conditions one by one), and those."""
    try:
        return _strictly(LiveStrategyStatus, raw), []
    except ValidationError:
        pass
    kept: dict[str, Any] = {}
    unreadable: list[Unreadable] = []
    for model_field in LiveStrategyStatus.model_fields.values():
        alias = str(model_field.alias)
        if alias not in raw:
            continue
        value = raw[alias]
        try:
            _strictly(LiveStrategyStatus, {alias: value})
        except ValidationError as exc:
            first = validation.problems_of(exc, "status")[0]
            unreadable.append(Unreadable(first.path, first.message))
            if alias == "conditions" and isinstance(value, list):
                kept[alias] = [condition for condition in value if _reads(Condition, condition)]
        else:
            kept[alias] = value
    return _strictly(LiveStrategyStatus, kept), unreadable


def read_status(raw: Any) -> LiveStrategyStatus:
    """``status`` as the models read it; each field that does not read is left out (conditions one by one)."""
    return _status(raw)[0] if isinstance(raw, Mapping) else LiveStrategyStatus()


def _status_problems(raw: Any, unreadable: list[Unreadable]) -> tuple[tuple[Unreadable, ...], tuple[Unreadable, ...]]:
    """What does not read in the status: (the runtime's fields, the operator's fields)."""
    if raw is None:
        return (), ()
    if not isinstance(raw, Mapping):
        return (), (Unreadable("status", f"must be an object, it is {_kind(raw)}"),)

    def among(names: tuple[str, ...]) -> tuple[Unreadable, ...]:
        aliases = {str(LiveStrategyStatus.model_fields[name].alias) for name in names}
        return tuple(u for u in unreadable if u.part in aliases)

    return among(RUNTIME_FIELDS), among(OPERATOR_FIELDS)


def _spec_replicas(raw: Mapping[str, Any]) -> int | None:
    spec = raw.get("spec")
    if not isinstance(spec, Mapping):
        return None
    replicas = spec.get("replicas", 1)
    return replicas if isinstance(replicas, int) and not isinstance(replicas, bool) and replicas in INT64 else None


def grace_seconds(raw: Mapping[str, Any]) -> float:
    """spec.pod.terminationGracePeriodSeconds as stored, also when the rest does not read (at most the schema's
    3600); the default 60 when it is not a positive number."""
    spec = raw.get("spec")
    pod = spec.get("pod") if isinstance(spec, Mapping) else None
    value = pod.get("terminationGracePeriodSeconds") if isinstance(pod, Mapping) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return min(float(value), 3600.0)
    return 60.0


def _scalable(raw: Mapping[str, Any]) -> bool:
    """Whether the scale subresource can serve the object: apiextensions reads spec.replicas and status.replicas
    as integers and status.selector as a string, and refuses when one has another type, or when spec (where it
    writes) or status is not an object."""
    spec, status = raw.get("spec"), raw.get("status")
    if not isinstance(spec, Mapping) or _spec_replicas(raw) is None:
        return False
    if status is None:
        return True
    if not isinstance(status, Mapping):
        return False
    replicas, selector = status.get("replicas", 0), status.get("selector", "")
    return (isinstance(replicas, int) and not isinstance(replicas, bool) and replicas in INT64) and isinstance(
        selector, str
    )


def _halt_request(annotations: Any) -> str | None:
    """The desk's halt, read on its own: present is a halt whatever its value (a note that is not a string, or
    other annotations that do not read, do not make it less of one)."""
    if not isinstance(annotations, Mapping) or HALT_ANNOTATION not in annotations:
        return None
    value = annotations[HALT_ANNOTATION]
    return value if isinstance(value, str) else f"(a note that is {_kind(value)})"


def _budget_halts(annotations: Any) -> tuple[tuple[str, str], ...]:
    """The RiskBudgets that halt this member, read on their own as the desk's halt is."""
    if not isinstance(annotations, Mapping):
        return ()
    return tuple(
        sorted(
            (str(key).removeprefix(BUDGET_HALT_PREFIX), value if isinstance(value, str) else "")
            for key, value in annotations.items()
            if str(key).startswith(BUDGET_HALT_PREFIX)
        )
    )


def read_object(raw: Mapping[str, Any]) -> Reading:
    """Everything the operator reads of a stored LiveStrategy, and what it cannot read."""
    meta = raw.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    strategy, problems = read_strategy(raw)
    stored = own_status(raw)
    status, unreadable = _status(stored) if isinstance(stored, Mapping) else (LiveStrategyStatus(), [])
    runtime, ours = _status_problems(stored, unreadable)
    return Reading(
        strategy=strategy,
        problems=problems,
        annotations=dict(annotations) if _string_map(annotations) else {},
        spec_replicas=_spec_replicas(raw),
        status=status,
        unreadable_status=runtime,
        status_repairs=ours,
        scalable=_scalable(raw),
        halt_request=_halt_request(annotations),
        budget_halts=_budget_halts(annotations),
        annotations_writable=annotations is None or _string_map(annotations),
        pushed_by_another=pushed_by_another(raw),
    )
