"""Offline validation of LiveStrategy (and RiskBudget) manifests, in the order the API server applies it.

1. Structure, types, enums and bounds: the pydantic models in strict JSON mode (the API
   server does not coerce ``"1"`` into ``1`` either), which also fill in defaults.
2. Cross-field rules: the CRD's own ``x-kubernetes-validations``, evaluated with a CEL
   implementation (cel-python) against the defaulted object. The rule text is read from
   the generated schema, so what ``livestrat validate`` checks is what the cluster checks.

Error messages name the field, say what is wrong and what is allowed. They never echo a
string value: a misplaced credential must not be printed back to a terminal or a log.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import celpy
from celpy import celtypes
from pydantic import ValidationError

from livestrat.api import budget_resource, resource
from livestrat.api.budget_resource import RiskBudget
from livestrat.api.crd import budget_openapi_schema, openapi_schema
from livestrat.api.resource import LiveStrategy
from livestrat.api.spec import CREDENTIAL_NAME


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidManifest(ValueError):
    """A manifest failed validation; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem], source: str = "") -> None:
        self.problems = problems
        where = f"{source}: " if source else ""
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{where}invalid LiveStrategy\n{lines}")


def _dotted(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


@cache
def _schema() -> dict[str, Any]:
    """The CRD's schema, generated once: callers only read it."""
    return openapi_schema()


@cache
def _budget_schema() -> dict[str, Any]:
    return budget_openapi_schema()


def _suggestion(loc: tuple[int | str, ...], root: dict[str, Any] | None = None) -> str:
    """' (did you mean X?)' for a misspelt field, from the fields the schema (``root``: the CRD's) has there."""
    schema = (root or _schema())["properties"]
    node: dict[str, Any] = {"properties": {"spec": schema["spec"], "metadata": schema["metadata"]}}
    for part in loc[:-1]:
        node = node.get("items", {}) if isinstance(part, int) else node.get("properties", {}).get(part, {})
    close = difflib.get_close_matches(str(loc[-1]), list(node.get("properties", {})), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


# What a value is, in the words of an error message (a string's content is never echoed).
_JSON_KINDS = ((str, "a string"), (list, "a list"), (dict, "an object"), (type(None), "null"))


def _pydantic_problem(error: dict[str, Any], root: dict[str, Any] | None = None) -> Problem:
    loc = tuple(error["loc"])
    path = _dotted(loc)
    kind = error["type"]
    field = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        if re.search(CREDENTIAL_NAME, field):
            return Problem(
                path,
                "credentials must not be written inline; store them in a Secret and "
                "reference it with spec.venue.credentialsSecret",
            )
        return Problem(path, f"unknown field{_suggestion(loc, root)}; the fields are listed in docs/api.md")
    message = error["msg"]
    value = error.get("input")
    if kind == "missing":
        message = "required field is missing"
    elif isinstance(value, bool | int | float) and not isinstance(value, str):
        message = f"{message} (got {value!r})"
    elif (what := next((n for t, n in _JSON_KINDS if isinstance(value, t)), None)) and (
        not isinstance(value, str) or kind.endswith(("_type", "_parsing"))
    ):
        message = f"{message} (got {what})"
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
    ctx = error.get("ctx") or {}
    if kind == "string_pattern_mismatch" and "pattern" in ctx:
        message = f"does not match the allowed format {ctx['pattern']}"
    return Problem(path, message)


@cache
def _cel() -> celpy.Environment:
    return celpy.Environment()


@cache
def _program(rule: str) -> Any:
    env = _cel()
    return env.program(env.compile(rule))


def to_cel(value: Any, schema: dict[str, Any]) -> Any:
    """Type a JSON value for CEL from its schema, as the API server does.

    A ``number`` is a double even when written ``1``; a ``date-time`` string is a
    timestamp; fields the schema does not declare are invisible to rules.
    """
    kind = schema.get("type")
    if isinstance(value, dict):
        if "properties" in schema:
            props = schema["properties"]
            return celtypes.MapType(
                {celtypes.StringType(k): to_cel(v, props[k]) for k, v in value.items() if k in props}
            )
        items = schema.get("additionalProperties")
        items = items if isinstance(items, dict) else {}
        return celtypes.MapType({celtypes.StringType(k): to_cel(v, items) for k, v in value.items()})
    if isinstance(value, list):
        return celtypes.ListType([to_cel(v, schema.get("items", {})) for v in value])
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return celtypes.DoubleType(value)
    if kind == "string" and schema.get("format") == "date-time" and isinstance(value, str):
        return celtypes.TimestampType(value)
    return celpy.json_to_cel(value)


def _rules_at(schema: dict[str, Any], value: Any, path: str) -> Iterator[Problem]:
    """Evaluate every CEL rule in ``schema`` against ``value`` and its children."""
    for rule in schema.get("x-kubernetes-validations", []):
        try:
            ok = bool(_program(rule["rule"]).evaluate({"self": to_cel(value, schema)}))
        except celpy.CELEvalError as exc:  # the API server reports these as invalid too
            ok, rule = False, {**rule, "message": f"{rule['message']} (rule failed: {exc.args[0]})"}
        if not ok:
            yield Problem((path + rule.get("fieldPath", "")).lstrip("."), rule["message"])
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                yield from _rules_at(sub, value[name], f"{path}.{name}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, item in value.items():
                yield from _rules_at(extra, item, f"{path}.{name}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from _rules_at(schema["items"], item, f"{path}[{index}]")


def _checked(doc: Any) -> tuple[LiveStrategy | None, list[Problem]]:
    """The parsed manifest and everything wrong with it (the model is built only once)."""
    if not isinstance(doc, dict):
        return None, [Problem("", "a manifest must be a YAML mapping (an object)")]
    if doc.get("apiVersion") != resource.API_VERSION or doc.get("kind") != resource.KIND:
        return None, [
            Problem(
                "apiVersion/kind",
                f"expected apiVersion {resource.API_VERSION} and kind {resource.KIND}",
            )
        ]
    try:
        strategy = LiveStrategy.from_manifest(doc)
    except ValidationError as exc:
        return None, problems_of(exc)
    return strategy, list(_rules_at(_schema(), strategy.to_wire(), ""))


def _checked_budget(doc: dict[str, Any]) -> list[Problem]:
    """Everything wrong with a RiskBudget manifest: its models, then its CRD's CEL rules."""
    try:
        budget = RiskBudget.from_manifest(doc)
    except ValidationError as exc:
        return problems_of(exc, root=_budget_schema())
    return list(_rules_at(_budget_schema(), budget.to_wire(), ""))


def problems_of(error: ValidationError, prefix: str = "", root: dict[str, Any] | None = None) -> list[Problem]:
    """What a model's validation error says, one problem per field (``prefix``: where the model sits; ``root``: the
    CRD schema it is checked against, the LiveStrategy's unless told)."""
    found = [_pydantic_problem(e, root) for e in error.errors()]
    return [Problem(f"{prefix}.{p.path}" if prefix and p.path else p.path or prefix, p.message) for p in found]


def problems(doc: Any) -> list[Problem]:
    """Everything wrong with one manifest (a LiveStrategy, or a RiskBudget), or an empty list."""
    budget = isinstance(doc, dict) and (doc.get("apiVersion"), doc.get("kind")) == (
        resource.API_VERSION,
        budget_resource.KIND,
    )
    if budget:
        return _checked_budget(doc)
    return _checked(doc)[1]


def parse(doc: Any, source: str = "") -> LiveStrategy:
    """The validated LiveStrategy, or InvalidManifest naming every problem."""
    strategy, found = _checked(doc)
    if found or strategy is None:
        raise InvalidManifest(found, source)
    return strategy
