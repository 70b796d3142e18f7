"""Malformed LiveStrategies, made systematically: what a stale or bypassed schema lets into etcd.

The API server checks a LiveStrategy against the CRD's schema only when it is written; an object
written under an older or laxer CRD, written to etcd directly, or left by a conversion bug can hold
anything, and the operator reads it as it is (the emulator stores such objects with
``store_unchecked``). :func:`malformations` breaks the paper example one field at a time:

- a wrong JSON type at every level of the spec (each field of the example, walked depth first,
  gets a value of another type, the substitutes taken in turn), and the spec itself a string, a
  list, a number or null;
- required fields missing, unknown fields (a typo, an inline credential), values past their bounds
  (huge numbers, long strings, long lists), nulls where the schema allows none;
- ``metadata.annotations`` and ``metadata.labels`` as lists, numbers, strings, or with values that
  are not strings;
- status fields of the wrong type: the runtime's (``trading``, ``risk``) and the operator's own
  (``conditions``, ``phase``, ``replicas``, ...), and the status itself not an object.

Each one says what the operator answers with (:class:`Answer`): the condition (type, status,
reason) and the Event reason, the field named in both messages. :func:`oddities` are objects that
look odd but are valid (unknown status fields a newer runtime may write, a huge but allowed number,
a large free-form strategy config): they must run like any other.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.support.desk import example

Path = tuple[str | int, ...]
MISSING: Any = object()  # the field is removed


@dataclass(frozen=True)
class Answer:
    """How the operator answers a malformed object."""

    event: str  # the Warning event's reason
    condition: str | None = None  # the condition that stays while the field cannot be read (None: repaired at once)
    status: str = "True"
    reason: str = ""

    @property
    def repaired(self) -> bool:
        return self.condition is None


SPEC_INVALID = Answer("SpecInvalid", "InvalidSpec", "True", "SpecInvalid")
METADATA_INVALID = Answer("MetadataInvalid", "InvalidSpec", "True", "MetadataInvalid")
RISK_UNREADABLE = Answer("StatusInvalid", "RiskHalted", "Unknown", "StatusInvalid")
TRADING_UNREADABLE = Answer("StatusInvalid", "Trading", "Unknown", "StatusInvalid")
REPAIRED = Answer("StatusRepaired")


@dataclass(frozen=True)
class Malformation:
    name: str  # the LiveStrategy's name
    path: Path  # the field broken, from the object's root
    value: Any  # what is stored there (MISSING: removed)
    answer: Answer
    born: bool = False  # stored so from the start (it never ran), rather than broken while it runs

    @property
    def field(self) -> str:
        """The field as the operator's messages name it: ``spec.instruments[0]``."""
        text = ""
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text

    @property
    def spec_is_object(self) -> bool:
        """Whether a merge patch of ``spec.replicas`` can halt it (else only the kill switch can)."""
        return not (self.path == ("spec",) and not isinstance(self.value, dict))

    def applied_to(self, body: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``body`` with this field broken."""
        broken = copy.deepcopy(body)
        *parents, last = self.path
        target: Any = broken
        for part in parents:
            target = target.setdefault(part, {}) if isinstance(part, str) else target[part]
        if self.value is MISSING:
            target.pop(last, None)
        else:
            target[last] = copy.deepcopy(self.value)
        return broken


def paper_strategy(name: str, namespace: str = "default") -> dict[str, Any]:
    """The paper example, valid, under another name."""
    doc = example("paper-ema-cross")
    doc["metadata"] = {"name": name, "namespace": namespace}
    return doc


# Values of another JSON type than the field's, taken in turn so that every kind of mistake appears.
WRONG_TYPES: dict[type, list[Any]] = {
    dict: ["an object written as a string", ["a", "list"], 7],
    list: ["a list written as a string", {"an": "object"}, 7],
    str: [7, ["a", "list"], {"an": "object"}, True],
    int: ["7", [7], {"n": 7}, True],
    float: ["2000", [2000], {"usdt": 2000}, True],
    bool: ["true", 1],
}
FREE_FORM = {("spec", "strategy", "config")}  # any object goes inside: its keys are the strategy's own


def _fields(value: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    """Every field of a document, depth first (for a list, the list and its first item)."""
    yield path, value
    if path in FREE_FORM:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _fields(item, (*path, key))
    elif isinstance(value, list) and value:
        yield from _fields(value[0], (*path, 0))


def _slug(path: Path) -> str:
    return "-".join(str(part).lower() for part in path[1:])[:40].strip("-")


def _spec_type_errors() -> Iterator[Malformation]:
    spec = paper_strategy("x")["spec"]
    turns = {kind: itertools.cycle(values) for kind, values in WRONG_TYPES.items()}
    for path, value in _fields(spec, ("spec",)):
        if path == ("spec",):
            continue  # the spec itself: below
        wrong = next(turns[type(value)])
        yield Malformation(f"type-{_slug(path)}", path, wrong, SPEC_INVALID)
    for index, wrong in enumerate(["a spec written as a string", ["a", "list"], 42, None]):
        yield Malformation(f"type-spec-{index}", ("spec",), wrong, SPEC_INVALID)


def _spec_other_errors() -> Iterator[Malformation]:
    cases: list[tuple[str, Path, Any]] = [
        # required fields missing
        ("missing-strategy", ("spec", "strategy"), MISSING),
        ("missing-venue", ("spec", "venue"), MISSING),
        ("missing-instruments", ("spec", "instruments"), MISSING),
        ("missing-data", ("spec", "data"), MISSING),
        ("missing-strategy-path", ("spec", "strategy", "strategyPath"), MISSING),
        ("missing-venue-adapter", ("spec", "venue", "adapter"), MISSING),
        ("missing-catalog", ("spec", "data", "catalog"), MISSING),
        # unknown fields
        ("unknown-replica", ("spec", "replica"), 0),
        ("unknown-max-daily-los", ("spec", "risk", "maxDailyLos"), 100),
        ("unknown-api-secret", ("spec", "venue", "apiSecret"), "s3cr3t-never-echoed"),
        # past their bounds
        ("huge-replicas", ("spec", "replicas"), 10**30),
        ("negative-replicas", ("spec", "replicas"), -1),
        ("huge-strategy-path", ("spec", "strategy", "strategyPath"), "x" * 300_000),
        ("huge-instruments", ("spec", "instruments"), [f"I{i}.BINANCE" for i in range(5000)]),
        ("huge-restart-nonce", ("spec", "restartNonce"), "n" * 100_000),
        ("huge-grace-period", ("spec", "pod", "terminationGracePeriodSeconds"), 10**12),
        ("negative-daily-loss", ("spec", "risk", "maxDailyLoss"), -2000),
        # nulls where the schema allows none
        ("null-replicas", ("spec", "replicas"), None),
        ("null-risk", ("spec", "risk"), None),
        ("null-venue", ("spec", "venue"), None),
    ]
    for name, path, value in cases:
        yield Malformation(name, path, value, SPEC_INVALID)


def _metadata_errors() -> Iterator[Malformation]:
    cases: list[tuple[str, Path, Any]] = [
        ("annotations-list", ("metadata", "annotations"), ["livestrat.io/risk-acknowledged"]),
        ("annotations-int", ("metadata", "annotations"), 7),
        ("annotations-string", ("metadata", "annotations"), "livestrat.io/risk-acknowledged=now"),
        ("annotation-value-int", ("metadata", "annotations"), {"livestrat.io/risk-acknowledged": 5}),
        ("annotation-value-object", ("metadata", "annotations"), {"team": {"desk": "a"}}),
        ("labels-list", ("metadata", "labels"), ["desk-a"]),
        ("labels-int", ("metadata", "labels"), 7),
        ("label-value-list", ("metadata", "labels"), {"desk": ["a"]}),
    ]
    for name, path, value in cases:
        yield Malformation(name, path, value, METADATA_INVALID)


def _status_errors() -> Iterator[Malformation]:
    runtime: list[tuple[str, Path, Any, Answer]] = [
        ("risk-list", ("status", "risk"), ["Halted"], RISK_UNREADABLE),
        ("risk-string", ("status", "risk"), "Halted", RISK_UNREADABLE),
        ("risk-int", ("status", "risk"), 7, RISK_UNREADABLE),
        ("risk-state-int", ("status", "risk"), {"state": 5}, RISK_UNREADABLE),
        ("risk-state-unknown", ("status", "risk"), {"state": "Exploded"}, RISK_UNREADABLE),
        ("risk-breached-at-object", ("status", "risk"), {"state": "Halted", "breachedAt": {"t": 1}}, RISK_UNREADABLE),
        ("trading-list", ("status", "trading"), [1], TRADING_UNREADABLE),
        ("trading-string", ("status", "trading"), "Running", TRADING_UNREADABLE),
        ("trading-fills-string", ("status", "trading"), {"fills": "many"}, TRADING_UNREADABLE),
        ("trading-node-state-list", ("status", "trading"), {"nodeState": []}, TRADING_UNREADABLE),
        ("trading-heartbeat-int", ("status", "trading"), {"heartbeat": 5}, TRADING_UNREADABLE),
    ]
    for name, path, value, answer in runtime:
        yield Malformation(name, path, value, answer)
    operator: list[tuple[str, Path, Any]] = [
        ("status-string", ("status",), "Running"),
        ("status-list", ("status",), ["Running"]),
        ("conditions-string", ("status", "conditions"), "Ready"),
        ("conditions-object", ("status", "conditions"), {"type": "Ready", "status": "True"}),
        ("conditions-ints", ("status", "conditions"), [1, 2]),
        ("condition-without-type", ("status", "conditions"), [{"status": "True", "reason": "PodReady"}]),
        ("phase-int", ("status", "phase"), 7),
        ("replicas-string", ("status", "replicas"), "one"),
        ("replicas-list", ("status", "replicas"), [1]),
        ("observed-generation-string", ("status", "observedGeneration"), "latest"),
        ("pod-name-object", ("status", "podName"), {"name": "x"}),
        ("selector-list", ("status", "selector"), ["livestrat.io/strategy"]),
        ("message-object", ("status", "message"), {"text": "hi"}),
    ]
    for name, path, value in operator:
        yield Malformation(name, path, value, REPAIRED)


def _born_malformed() -> Iterator[Malformation]:
    """Stored malformed from the start: never ran."""
    yield Malformation("born-spec-string", ("spec",), "a spec written as a string", SPEC_INVALID, born=True)
    yield Malformation("born-missing-venue", ("spec", "venue"), MISSING, SPEC_INVALID, born=True)
    yield Malformation("born-replicas-string", ("spec", "replicas"), "one", SPEC_INVALID, born=True)
    yield Malformation("born-annotations-list", ("metadata", "annotations"), ["x"], METADATA_INVALID, born=True)
    yield Malformation("born-labels-int", ("metadata", "labels"), 7, METADATA_INVALID, born=True)


def malformations() -> list[Malformation]:
    found = [
        *_spec_type_errors(),
        *_spec_other_errors(),
        *_metadata_errors(),
        *_status_errors(),
        *_born_malformed(),
    ]
    names = [m.name for m in found]
    assert len(names) == len(set(names)), "every malformed object has a name of its own"
    return found


def oddities() -> list[Malformation]:
    """Objects that look odd but are valid: they run like any other (``answer`` is unused)."""
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(60):
        deep = {"nested": deep}
    cases: list[tuple[str, Path, Any]] = [
        ("odd-status-unknown-field", ("status", "fromANewerRuntime"), {"anything": [1, 2]}),
        ("odd-huge-daily-loss", ("spec", "risk", "maxDailyLoss"), 1e308),
        ("odd-config-null-value", ("spec", "strategy", "config", "request_bars"), None),
        ("odd-config-deep", ("spec", "strategy", "config", "extra_settings"), deep),
        ("odd-config-large", ("spec", "strategy", "config", "notes"), "n" * 100_000),
        ("odd-annotations-null", ("metadata", "annotations"), None),
        ("odd-sample-null", ("spec", "data", "sample"), None),  # optional: null is its absence
    ]
    return [Malformation(name, path, value, REPAIRED) for name, path, value in cases]
