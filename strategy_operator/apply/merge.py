"""A desired object against the one the API server has: whether it differs, and the merge patch that mends it.

Used for a strategy's children (:mod:`strategy_operator.apply.children`) and for the namespace's shared identity
(:mod:`strategy_operator.apply.shared_identity`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strategy_operator.build.manifests import STATEFULSET_MUTABLE
from strategy_operator.quantities import QUANTITY_FIELDS, QUANTITY_MAPS, same_quantity


def is_subset(desired: Any, existing: Any, key: str | None = None, parent: str | None = None) -> bool:
    """Every field set in ``desired`` has that value in ``existing`` (lists: same length, element-wise;
    resource quantities by value: the API server stores them in canonical form)."""
    if isinstance(desired, Mapping):
        return isinstance(existing, Mapping) and all(is_subset(v, existing.get(k), k, key) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(existing, list)
            and len(desired) == len(existing)
            and all(is_subset(d, e) for d, e in zip(desired, existing, strict=True))
        )
    if key in QUANTITY_FIELDS or parent in QUANTITY_MAPS:
        return same_quantity(desired, existing)
    return desired == existing


def patchable(desired: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch of a desired child: everything but the identity the API keeps itself, and what it
    refuses to change (a StatefulSet's fixed fields)."""
    meta = {k: v for k, v in (desired.get("metadata") or {}).items() if k not in ("name", "namespace")}
    patch = {k: v for k, v in desired.items() if k not in ("apiVersion", "kind", "metadata")}
    if desired.get("kind") == "StatefulSet" and isinstance(patch.get("spec"), Mapping):
        patch["spec"] = {k: v for k, v in patch["spec"].items() if k in STATEFULSET_MUTABLE}  # never the fixed ones
    if meta:
        patch["metadata"] = meta
    return patch
