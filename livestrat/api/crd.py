"""Generate the CustomResourceDefinitions (LiveStrategy, RiskBudget) from the pydantic models.

The models are the single source of truth; ``crds/livestrategies.livestrat.io.yaml`` and
``crds/riskbudgets.livestrat.io.yaml`` are this module's output and a test fails when a committed
file differs from it.

Pydantic writes JSON Schema 2020-12 (``$ref``, ``anyOf`` for optionals, ``title``...);
Kubernetes wants a *structural* OpenAPI v3 schema: every node typed, no references, no
``null`` branches, unknown fields either pruned or explicitly preserved. ``to_structural``
does that translation and nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, NoDefault
from pydantic_core import core_schema

from livestrat.api import budget_resource, names, resource, twin
from livestrat.api.budget_spec import RiskBudgetSpec
from livestrat.api.budget_status import RiskBudgetStatus
from livestrat.api.spec import LiveStrategySpec
from livestrat.api.status import LiveStrategyStatus

CRD_DIR = Path("crds")
CRD_FILE = CRD_DIR / f"{resource.CRD_NAME}.yaml"
BUDGET_CRD_FILE = CRD_DIR / f"{budget_resource.CRD_NAME}.yaml"

# Keys of JSON Schema that the Kubernetes OpenAPI v3 subset does not accept.
_DROPPED_KEYS = {"title", "examples", "$schema"}

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Mode", "type": "string", "jsonPath": ".spec.mode", "description": "paper or live"},
    {"name": "Venue", "type": "string", "jsonPath": ".spec.venue.adapter", "description": "Adapter"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "Lifecycle phase"},
    {"name": "Fills", "type": "integer", "jsonPath": ".status.trading.fills", "description": "Fills recorded"},
    {"name": "PnL", "type": "string", "jsonPath": ".status.trading.totalPnl", "description": "Realized + unrealized"},
    {"name": "Risk", "type": "string", "jsonPath": ".status.risk.state", "description": "Active, Reducing, Halted"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {
        "name": "Realized",
        "type": "string",
        "jsonPath": ".status.trading.realizedPnl",
        "priority": 1,
        "description": "Realized PnL",
    },
    {
        "name": "Orders",
        "type": "integer",
        "jsonPath": ".status.trading.openOrders",
        "priority": 1,
        "description": "Open orders",
    },
    {
        "name": "Heartbeat",
        "type": "date",
        "jsonPath": ".status.trading.heartbeat",
        "priority": 1,
        "description": "Last runtime report",
    },
    {"name": "Pod", "type": "string", "jsonPath": ".status.podName", "priority": 1, "description": "Strategy pod"},
]


# `kubectl get riskbudgets`: the fleet view.
BUDGET_PRINTER_COLUMNS: list[dict[str, Any]] = [
    {
        "name": "Members",
        "type": "string",
        "jsonPath": ".status.memberCount",
        "description": "Members reporting / members",
    },
    {
        "name": "Exposure",
        "type": "string",
        "jsonPath": ".status.exposure",
        "description": "Gross exposure, in the budget's currency",
    },
    {"name": "Daily PnL", "type": "string", "jsonPath": ".status.dailyPnl", "description": "Members' daily PnL"},
    {"name": "Used", "type": "string", "jsonPath": ".status.used", "description": "The most used limit, in percent"},
    {"name": "State", "type": "string", "jsonPath": ".status.state", "description": "Active or Breached"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {
        "name": "Policy",
        "type": "string",
        "jsonPath": ".spec.onBreach",
        "priority": 1,
        "description": "HaltAll, HaltBreacher or ReduceOnly",
    },
    {
        "name": "Breached",
        "type": "date",
        "jsonPath": ".status.breach.breachedAt",
        "priority": 1,
        "description": "When the latched breach happened",
    },
]


class _DefaultsFromFactories(GenerateJsonSchema):
    """Also publish defaults that come from ``default_factory``.

    The API server applies a nested object's defaults only when the object is present, so
    ``spec.risk`` must itself default to an object for ``maxOrderSubmitRate`` to be set.
    """

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            value = factory()
            if isinstance(value, BaseModel):
                return value.model_dump(mode="json", by_alias=True, exclude_none=True)
            return value
        return schema.get("default", NoDefault)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def to_structural(node: Any, defs: dict[str, Any]) -> Any:
    """Translate one pydantic JSON-Schema node into a Kubernetes structural schema node."""
    if isinstance(node, list):
        return [to_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node

    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        node = {**target, **node}  # the field's own description wins over the model's

    any_of = node.pop("anyOf", None)
    if any_of is not None:
        branches = [b for b in any_of if b.get("type") != "null"]
        if len(branches) != 1:
            raise ValueError(f"union types are not structural: {any_of}")
        node = {**branches[0], **node}
        if "default" in node and node["default"] is None:
            del node["default"]
        if "$ref" in node:
            return to_structural(node, defs)

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "additionalProperties" and isinstance(value, bool):
            # false: the API server prunes unknown fields anyway (extra="forbid" in the models);
            # true: the node carries x-kubernetes-preserve-unknown-fields instead.
            continue
        if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            # JSON Schema 2020-12 writes `exclusiveMinimum: 0`; OpenAPI v3.0 (Kubernetes)
            # writes `minimum: 0` plus `exclusiveMinimum: true`.
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "default":
            out[key] = _without_nulls(value)
        elif key in ("properties",):
            out[key] = {name: to_structural(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = to_structural(value, defs)
        else:
            out[key] = value
    if "properties" in out:
        out.setdefault("type", "object")
    return {key: out[key] for key in sorted(out, key=_key_rank)}


_KEY_ORDER = ["type", "description", "default", "enum", "format", "pattern"]


def _key_rank(key: str) -> tuple[int, str]:
    """Keep generated YAML readable: type and description first, nested schemas last."""
    if key in _KEY_ORDER:
        return (_KEY_ORDER.index(key), key)
    if key in ("properties", "items", "additionalProperties", "required"):
        return (20, key)
    if key.startswith("x-kubernetes"):
        return (30, key)
    return (10, key)


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, schema_generator=_DefaultsFromFactories)
    defs = raw.pop("$defs", {})
    return to_structural(raw, defs)


def _kept_for_admission(node: dict[str, Any]) -> dict[str, Any]:
    """The spec's objects keep fields they do not declare, for the admission policy to refuse.

    A structural schema makes the API server prune an unknown field before anything else sees it,
    and a client that does not ask for strict field validation (the API server's default is Warn;
    GitOps controllers and client libraries often do not ask) gets its write through without it:
    ``maxDrawdwn: 500`` would be stored as no drawdown limit. Kept, the field reaches the admission
    policy (:mod:`livestrat.api.admission`), which refuses it for every client; where the policy is
    not installed, the operator refuses such a spec itself. Free-form maps stay as they are."""
    if node.get("type") == "object" and "properties" in node:
        node["x-kubernetes-preserve-unknown-fields"] = True
    for key in ("properties",):
        for sub in (node.get(key) or {}).values():
            _kept_for_admission(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            _kept_for_admission(node[key])
    return node


def _object_schema(
    spec: dict[str, Any],
    status: dict[str, Any],
    description: str,
    name_max: int,
    name_message: str,
    name_rule: str,
    more_name_rules: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    """A livestrat object's schema: its spec and status, and metadata.name's rule (both kinds share the shape)."""
    status.pop("required", None)  # written part by part (LiveStrategy: by the operator and the runtime each)
    return {
        "type": "object",
        "description": description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {
                "type": "object",
                # Both declared, or the API server types them for CEL as unbounded strings
                # (WithTypeAndObjectMeta) and prices the name rule accordingly.
                "properties": {
                    "name": {"type": "string", "maxLength": name_max, "description": name_message},
                    "generateName": {
                        "type": "string",
                        "maxLength": name_max,
                        "description": "A prefix the API server completes with 5 random characters; the "
                        "name it makes must follow the rule of metadata.name.",
                    },
                },
            },
            "spec": spec,
            "status": status,
        },
        # At the root, where the API server lets a rule read metadata.name (and generateName).
        "x-kubernetes-validations": [
            {"rule": rule, "message": message, "fieldPath": ".metadata.name", "reason": "FieldValueInvalid"}
            for rule, message in ((name_rule, name_message), *more_name_rules)
        ],
    }


def openapi_schema() -> dict[str, Any]:
    return _object_schema(
        _kept_for_admission(model_schema(LiveStrategySpec)),
        model_schema(LiveStrategyStatus),
        "A trading strategy run by livestrat: one pod running one NautilusTrader node.",
        names.NAME_MAX_LENGTH,
        names.NAME_MESSAGE,
        names.NAME_RULE,
        # A twin's name is the strategy's and a suffix: only the root sees metadata.name and spec.twin together.
        ((twin.TWIN_NAME_RULE, twin.TWIN_NAME_MESSAGE),),
    )


def budget_openapi_schema() -> dict[str, Any]:
    """The RiskBudget's schema. Its spec keeps undeclared fields for the admission policy to refuse, as the
    LiveStrategy's does (:func:`_kept_for_admission`)."""
    return _object_schema(
        _kept_for_admission(model_schema(RiskBudgetSpec)),
        model_schema(RiskBudgetStatus),
        "Limits across several LiveStrategies trading one venue account, and what a breach does.",
        budget_resource.NAME_MAX_LENGTH,
        budget_resource.NAME_MESSAGE,
        budget_resource.NAME_RULE,
    )


def _crd(
    kind: Any, schema: dict[str, Any], subresources: dict[str, Any], columns: list[dict[str, Any]]
) -> dict[str, Any]:
    """The CustomResourceDefinition of ``kind`` (its module of names: livestrat/api/resource.py, budget_resource.py)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.CRD_NAME,
            "labels": {"app.kubernetes.io/name": "livestrat", "app.kubernetes.io/component": "crd"},
        },
        "spec": {
            "group": kind.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.KIND,
                "listKind": f"{kind.KIND}List",
                "plural": kind.PLURAL,
                "singular": kind.SINGULAR,
                "shortNames": kind.SHORT_NAMES,
                "categories": kind.CATEGORIES,
            },
            "versions": [
                {
                    "name": kind.VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": subresources,
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }


def build_crd() -> dict[str, Any]:
    scale = {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    return _crd(resource, openapi_schema(), {"status": {}, "scale": scale}, PRINTER_COLUMNS)


def build_budget_crd() -> dict[str, Any]:
    return _crd(budget_resource, budget_openapi_schema(), {"status": {}}, BUDGET_PRINTER_COLUMNS)


HEADER = (
    "# GENERATED by `livestrat crd` from livestrat/api (the pydantic models). Do not edit:\n"
    "# change the models and run `make crds`; a test fails when this file is out of date.\n"
)


def render_crd() -> str:
    return HEADER + yaml.safe_dump(build_crd(), sort_keys=False, width=100)


def render_budget_crd() -> str:
    return HEADER + yaml.safe_dump(build_budget_crd(), sort_keys=False, width=100)


# Every CRD livestrat defines: its file name, and how it renders.
RENDERERS = {CRD_FILE.name: render_crd, BUDGET_CRD_FILE.name: render_budget_crd}


def render_all() -> str:
    """Every CRD, as one multi-document YAML stream (`livestrat crd`)."""
    return "---\n".join(render() for render in RENDERERS.values())


def write_crds(directory: Path = CRD_DIR) -> list[Path]:
    """Write every CRD into ``directory``, each in the file named after it."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, render in RENDERERS.items():
        (directory / name).write_text(render())
        written.append(directory / name)
    return written
