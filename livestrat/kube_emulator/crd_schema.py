"""What the API server does with a custom object against its CRD's structural schema: pruning and defaulting.

As the Kubernetes documentation describes them (tasks/extend-kubernetes/custom-resources/
custom-resource-definitions, "Field pruning", "Controlling pruning", "Defaulting"; and the ``fieldValidation``
parameter of every write in the API reference), and as ``k8s.io/apiextensions-apiserver``'s
``pkg/apiserver/schema/pruning`` and ``.../schema/defaulting`` implement them:

- **pruning**: a field the schema does not specify is removed before the object is persisted, unless the node
  says ``x-kubernetes-preserve-unknown-fields: true`` (where the fields it does specify are still pruned
  inside). ``apiVersion``, ``kind`` and ``metadata`` at the root are the API server's, not the schema's;
- **defaulting**: a property with a ``default`` that is absent gets it, also inside a default just applied; an
  object absent altogether is not created to hold its properties' defaults (hence defaults on the objects
  themselves). A null is left as it is: harsher than the API server, which prunes a null the schema does not
  make nullable and then defaults it (an object stored past validation with a null keeps it here).

Pure functions over JSON values; a value of another type than its schema's is left as it is (the type check is
validation, which the emulator does not do).
"""

from __future__ import annotations

import copy
from typing import Any

ROOT_FIELDS = ("apiVersion", "kind", "metadata")
PRESERVE = "x-kubernetes-preserve-unknown-fields"


def prune(value: Any, schema: dict[str, Any], *, kept: Any = None, root: bool = True) -> tuple[Any, list[str]]:
    """``value`` without the fields ``schema`` does not specify, and those fields' paths (``spec.risk.maxDrawdwn``,
    as the API server names them in ``unknown field "..."``). ``kept``: the object as it is stored; an unknown
    field it already holds is kept (it was stored past validation: see ``KubernetesEmulator.store_unchecked``)."""
    unknown: list[str] = []
    return _prune(value, schema, kept, "", unknown, root), unknown


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _prune(value: Any, schema: dict[str, Any], kept: Any, path: str, unknown: list[str], root: bool) -> Any:
    if isinstance(value, list):
        items = schema.get("items")
        if not isinstance(items, dict):
            return value
        return [_prune(item, items, None, f"{path}[{index}]", unknown, False) for index, item in enumerate(value)]
    if not isinstance(value, dict):
        return value
    properties = schema.get("properties")
    additional = schema.get("additionalProperties")
    preserve = bool(schema.get(PRESERVE))
    kept = kept if isinstance(kept, dict) else {}
    result: dict[str, Any] = {}
    for key, item in value.items():
        where = _join(path, key)
        if root and key in ROOT_FIELDS:
            result[key] = item
        elif properties is not None and key in properties:
            result[key] = _prune(item, properties[key], kept.get(key), where, unknown, False)
        elif isinstance(additional, dict):
            result[key] = _prune(item, additional, kept.get(key), where, unknown, False)
        elif preserve or additional is True or key in kept:
            result[key] = item
        else:
            unknown.append(where)
    return result


def default(value: Any, schema: dict[str, Any]) -> Any:
    """``value`` with the schema's defaults applied (a new value; ``value`` is not changed)."""
    value = copy.deepcopy(value)
    _default(value, schema)
    return value


def _default(value: Any, schema: dict[str, Any]) -> None:
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for item in value:
                _default(item, items)
        return
    if not isinstance(value, dict):
        return
    properties = schema.get("properties") or {}
    for key, sub in properties.items():
        if "default" in sub and key not in value:
            value[key] = copy.deepcopy(sub["default"])
        if key in value:
            _default(value[key], sub)
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict):
        for key, item in value.items():
            if key not in properties:
                _default(item, additional)
