"""What the operator last applied to a child, recorded on it, and the patch that removes what it no longer wants.

A merge patch only adds and overwrites: a key the operator stops wanting (the ``restartNonce``
pod-template annotation, the ``gke-gcsfuse/*`` annotations, the service account's Workload Identity,
a resource limit, a mount option) would stay on the child forever. So, as ``kubectl apply`` does with
its ``last-applied-configuration``, every write records on the child the *shape* of what the
operator applied (keys and list elements, values replaced by ``1``: a few KiB at most, never a copy
of the configuration, which may take 256 KiB) in the ``livestrat.io/applied-fields`` annotation.
The next write is a three-way merge: a key recorded there, absent from the desired manifest and
present on the child, is set to ``null`` in the patch (inside a map), or makes the whole list be
sent again (a merge patch replaces lists whole). What the API server defaults or other controllers
add was never recorded, so it is never removed: a child at rest costs no write.

A child written by an operator older than the record has none: for it, the keys this operator has
ever set optionally (:data:`LEGACY_SHAPE`) stand in for the record until its next write.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from strategy_operator.build import labels
from strategy_operator.build.manifests import GCSFUSE_POD_ANNOTATIONS

Shape = Any  # a dict of shapes, a list of shapes, or 1 (a value)

# Maps others write into too (kubectl, controllers, admission webhooks): the operator removes its own keys from
# them, never the whole map. Any other field it stops wanting goes whole.
SHARED_MAPS = ("labels", "annotations")

# What operators before the record set optionally: removed where they are no longer desired.
LEGACY_SHAPE: Shape = {
    "metadata": {"annotations": {labels.WORKLOAD_IDENTITY_ANNOTATION: 1}},
    "spec": {
        "template": {
            "metadata": {
                "annotations": {labels.RESTART_NONCE_ANNOTATION: 1, **dict.fromkeys(GCSFUSE_POD_ANNOTATIONS, 1)}
            }
        }
    },
}


def shape(value: Any) -> Shape:
    """Keys and list elements of ``value``, every value replaced by 1."""
    if isinstance(value, Mapping):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return 1


def without_record(patch: Mapping[str, Any]) -> dict[str, Any]:
    """A child's patch without the record itself (the record alone is no reason to write)."""
    meta = dict(patch.get("metadata") or {})
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != labels.APPLIED_FIELDS_ANNOTATION}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    result = {k: v for k, v in patch.items() if k != "metadata"}
    if meta:
        result["metadata"] = meta
    return result


def with_record(manifest: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """A whole desired child carrying the record of ``patch``, the part of it the operator writes."""
    record = json.dumps(shape(without_record(patch)), sort_keys=True, separators=(",", ":"))
    meta = dict(manifest.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}), labels.APPLIED_FIELDS_ANNOTATION: record}
    return {**manifest, "metadata": meta}


def recorded(existing: Mapping[str, Any]) -> Shape:
    """The shape the child says the operator last applied; :data:`LEGACY_SHAPE` when it says none (or nonsense)."""
    text = ((existing.get("metadata") or {}).get("annotations") or {}).get(labels.APPLIED_FIELDS_ANNOTATION)
    try:
        found = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        found = None
    return found if isinstance(found, dict) else LEGACY_SHAPE


def removals(previous: Shape, desired: Any, existing: Any) -> tuple[dict[str, Any], bool]:
    """(the merge patch of ``null``s that removes what was applied before and is no longer desired,
    whether a list must be sent again because an element lost a key)."""
    if isinstance(previous, dict) and isinstance(existing, Mapping) and isinstance(desired, Mapping):
        nulls: dict[str, Any] = {}
        resend = False
        for key, before in previous.items():
            if key not in existing or key == "finalizers":  # others' too: added and removed one by one
                continue
            if key not in desired:
                if key in SHARED_MAPS:  # others' keys stay: only the operator's own go
                    inner, _ = removals(before, {}, existing[key])
                    if inner:
                        nulls[key] = inner
                else:
                    nulls[key] = None
                continue
            inner, inner_resend = removals(before, desired[key], existing[key])
            if inner:
                nulls[key] = inner
            resend = resend or inner_resend
        return nulls, resend
    if isinstance(previous, list) and isinstance(existing, list) and isinstance(desired, list):
        # Matched by position, as the operator builds its lists in a fixed order; a list of another length
        # differs anyway and is sent whole.
        for before, wanted, found in zip(previous, desired, existing, strict=False):
            inner, inner_resend = removals(before, wanted, found)
            if inner or inner_resend:
                return {}, True
    return {}, False


def merged(patch: Mapping[str, Any], nulls: Mapping[str, Any]) -> dict[str, Any]:
    """``patch`` with the removals added (they name only keys ``patch`` does not set)."""
    result = dict(patch)
    for key, value in nulls.items():
        result[key] = merged(result[key], value) if isinstance(value, Mapping) and key in result else value
    return result
