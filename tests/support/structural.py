"""Kubernetes' rules for a *structural* CRD schema, as apiextensions-apiserver states them.

No Python library implements them, and the API server refuses a CRD whose schema breaks
them (or, with `preserveUnknownFields`, stores it without pruning), so the test suite
checks the generated CRD against this list:

1. every node has a non-empty `type`, unless it sets `x-kubernetes-int-or-string: true`
   or `x-kubernetes-preserve-unknown-fields: true`;
2. no `$ref`; `items` is one schema, not a list;
3. `properties` and `additionalProperties` are not both set on one node;
4. inside `allOf`/`anyOf`/`oneOf`/`not`: no `type`, `description`, `default`,
   `additionalProperties` or `nullable`, and every property named there is also declared
   outside the junctor;
5. under `metadata` only `name` and `generateName` may be restricted;
6. `default` is not used where the node is nullable-free `metadata` or inside junctors.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

JUNCTORS = ("allOf", "anyOf", "oneOf", "not")
FORBIDDEN_IN_JUNCTORS = ("type", "description", "default", "additionalProperties", "nullable")


def _junctor_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in JUNCTORS:
        value = node.get(key)
        if isinstance(value, dict):
            yield value
        elif isinstance(value, list):
            yield from (v for v in value if isinstance(v, dict))


def violations(node: Any, path: str = "openAPIV3Schema") -> Iterator[str]:
    if not isinstance(node, dict):
        yield f"{path}: a schema must be an object"
        return
    if "$ref" in node:
        yield f"{path}: $ref is not allowed"
    exempt = node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
    if not node.get("type") and not exempt:
        yield f"{path}: type is missing"
    if "properties" in node and "additionalProperties" in node:
        yield f"{path}: properties and additionalProperties are mutually exclusive"
    if isinstance(node.get("items"), list):
        yield f"{path}: items must be a single schema"
    for sub in _junctor_nodes(node):
        for key in FORBIDDEN_IN_JUNCTORS:
            if key in sub:
                yield f"{path}: {key} is not allowed inside allOf/anyOf/oneOf/not"
        for name in sub.get("properties", {}):
            if name not in node.get("properties", {}):
                yield f"{path}: property {name} appears only inside a junctor"
    for name, sub in node.get("properties", {}).items():
        sub_path = f"{path}.properties.{name}"
        if path == "openAPIV3Schema" and name == "metadata":
            allowed = set(sub.get("properties", {})) <= {"name", "generateName"}
            if not allowed or set(sub) - {"type", "properties", "description"}:
                yield f"{sub_path}: only metadata.name and metadata.generateName may be restricted"
        yield from violations(sub, sub_path)
    if isinstance(node.get("items"), dict):
        yield from violations(node["items"], f"{path}.items")
    if isinstance(node.get("additionalProperties"), dict):
        yield from violations(node["additionalProperties"], f"{path}.additionalProperties")
