"""The children a strategy pod reports its state with, kept until no pod of the strategy is left.

The runtime pushes its final status while it halts, with its ServiceAccount's token, allowed by its
Role and RoleBinding. A foreground deletion of the LiveStrategy (``kubectl delete --cascade=foreground``)
makes the garbage collector delete the dependents first, while the halt finalizer still waits for
the pod to exit: without more, the pod would lose its identity and its permission before its last
report. So these three children carry the ``livestrat.io/pod-identity`` finalizer: a deletion only
marks them (the API server keeps tokens of a service account that is being deleted valid for a
minute, as it does those of a pod being deleted), and the operator removes the finalizer once no
pod of the strategy is left, when the LiveStrategy is released, or when such a child is deleted on
its own while nothing runs (it is then created anew).
A release that meets a change (409: the garbage collector marked the child meanwhile) reads it again and
retries: once the LiveStrategy is released, nothing looks at it again.

The operator never replaces a child's finalizers: it adds its own to those there (a merge patch
replaces the whole list), never while the LiveStrategy is being deleted, and removes only its own,
with the child's resourceVersion as a precondition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strategy_operator.build import labels
from strategy_operator.kube_client import ApiError, KubeClient


def finalizers_of(body: Mapping[str, Any] | None) -> list[str]:
    found = ((body or {}).get("metadata") or {}).get("finalizers")
    return [f for f in found if isinstance(f, str)] if isinstance(found, list) else []


def with_finalizers(desired: dict[str, Any], existing: Mapping[str, Any] | None, *, deleting: bool) -> dict[str, Any]:
    """``desired`` with the finalizers to write: the child's own, plus the operator's unless the strategy is
    being deleted (a finalizer added then might outlive the pod it protects)."""
    wanted = (desired.get("metadata") or {}).get("finalizers")
    if wanted is None:
        return desired
    meta = dict(desired["metadata"])
    there = finalizers_of(existing)
    if deleting:
        meta.pop("finalizers")
        if there:
            meta["finalizers"] = there
    else:
        meta["finalizers"] = there + [f for f in wanted if f not in there]
    return {**desired, "metadata": meta}


RELEASE_ATTEMPTS = 5


async def release(kube: KubeClient, child: Mapping[str, Any]) -> None:
    """Remove the operator's finalizer from ``child``, with its resourceVersion as the precondition. A 409 (it changed
    meanwhile: the garbage collector marks a child of a foreground deletion while the halt releases it) reads it
    again and retries: after the LiveStrategy is released no pass of the operator looks at it again, and a finalizer
    left would keep the child, and a foreground-deleted owner, for good. A 404: it went."""
    kind = str(child.get("kind"))
    for _ in range(RELEASE_ATTEMPTS):
        there = finalizers_of(child)
        if labels.POD_IDENTITY_FINALIZER not in there:
            return
        meta = child.get("metadata") or {}
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        kept = [f for f in there if f != labels.POD_IDENTITY_FINALIZER]
        patch = {"metadata": {"finalizers": kept or None, "resourceVersion": meta.get("resourceVersion")}}
        try:
            await kube.patch(kind, namespace, name, patch)
            return
        except ApiError as exc:
            if exc.status == 404:
                return
            if exc.status != 409:
                raise
        fresh = await kube.get(kind, namespace, name)
        if fresh is None:
            return
        child = {"kind": kind, **fresh}


async def release_all(kube: KubeClient, namespace: str, name: str) -> None:
    """Once no pod of the strategy is left: its identity children may go (read from the API: a cache may lag)."""
    for kind in labels.POD_IDENTITY_KINDS:
        child = await kube.get(kind, namespace, labels.child_name(name))
        if child is not None:
            await release(kube, {"kind": kind, **child})
