"""The operator's watch caches (kopf indexes), read by strategy: its children, its pods, its namespace.

kopf fills one index per watched kind (:data:`strategy_operator.kinds.WATCHED`), keyed by
(namespace, strategy name) from the strategy label, one of the namespaces whose kill
switch is engaged, one of the nodes being drained, and one of the live strategies on a venue account
(their claims: :mod:`strategy_operator.observe.claims`). The reconciler reads them and nothing else in the
steady state. They may hold objects deleted during a gap in the watches (kopf removes an object only on a
DELETED event, and a relist after 410 Gone sends none): the observer confirms with the API server
before anything is destroyed or declared taken on their word (:mod:`strategy_operator.observe.observer`).
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Mapping
from typing import Any

from livestrat.api.contract import KILL_SWITCH_ANNOTATION
from strategy_operator.build import labels
from strategy_operator.kinds import ACCOUNTS_INDEX, KINDS, NAMESPACES_INDEX, NODES_INDEX, TWINS_INDEX
from strategy_operator.wakeups import Key


def uid_of(body: Mapping[str, Any] | None) -> str:
    return str(((body or {}).get("metadata") or {}).get("uid") or "")


def kill_switch_engaged(annotations: Mapping[str, str] | None) -> bool:
    return str((annotations or {}).get(KILL_SWITCH_ANNOTATION, "")).strip().lower() == "true"


# The taint the cluster autoscaler puts on a node it is about to remove (it then evicts the node's pods).
AUTOSCALER_REMOVAL_TAINT = "ToBeDeletedByClusterAutoscaler"


def node_drain(spec: Mapping[str, Any] | None) -> str | None:
    """Why a node's pods are being evicted, from its spec: cordoned (``kubectl drain`` and node upgrades mark it
    unschedulable first), or tainted for removal by the cluster autoscaler; None when neither."""
    spec = spec or {}
    if spec.get("unschedulable") is True:
        return "cordoned (spec.unschedulable: kubectl drain, a node upgrade)"
    taints = spec.get("taints") or []
    if any(isinstance(t, Mapping) and t.get("key") == AUTOSCALER_REMOVAL_TAINT for t in taints):
        return f"tainted {AUTOSCALER_REMOVAL_TAINT} (the cluster autoscaler is removing it)"
    return None


# What the operator reads of a pod's spec (observe.observation.PodView): the rest (containers, volumes, probes)
# is the StatefulSet's template, which the cache holds once per strategy already.
POD_SPEC_READ = frozenset({"nodeName", "serviceAccountName", "terminationGracePeriodSeconds"})


def compact(value: Any) -> Any:
    """A deep copy of a JSON value with every string interned.

    The watch decodes each event's JSON anew, so each cached object holds its own copy of every key ("metadata",
    "name", "apiVersion", ...) and of every value its siblings repeat (labels, the image, "True", "apps/v1"):
    about a third of the caches' bytes. Interned, the N copies are one string (Python 3.12+ frees an interned
    string nothing holds any more, so the uids and timestamps of deleted objects do not stay)."""
    if isinstance(value, str):
        return sys.intern(value)
    if isinstance(value, Mapping):
        return {sys.intern(str(k)): compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [compact(item) for item in value]
    return value


def cached(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """What a watch cache keeps of an object: everything the operator reads of it, and no more.

    Never ``metadata.managedFields`` (the API server's record of field ownership: often larger than the object,
    and never read); of a pod, only the spec fields :data:`POD_SPEC_READ`. A child is kept whole otherwise: it is
    compared with its desired manifest field by field. Its strings are interned (:func:`compact`)."""
    kept = dict(body)
    meta = kept.get("metadata")
    if isinstance(meta, Mapping) and "managedFields" in meta:
        kept["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    spec = kept.get("spec")
    if kind == "Pod" and isinstance(spec, Mapping):
        kept["spec"] = {k: v for k, v in spec.items() if k in POD_SPEC_READ}
    return compact(kept)


class Caches:
    def __init__(self, indexes: Mapping[str, Any]) -> None:
        self._indexes = indexes

    def _store(self, index: str, key: Any) -> list[Any]:
        found = self._indexes.get(index)
        if found is None:
            return []
        try:
            return list(found.get(key, []))
        except TypeError:
            return []

    def named(self, kind: str, key: Key) -> list[dict[str, Any]]:
        """Every copy the cache holds of the strategy's child of this kind, by its name (never by position: a foreign
        object may share the label). More than one: all but one were deleted in a watch gap (see :meth:`child`)."""
        name = labels.child_name(key[1])
        stored = self._store(KINDS[kind].index, key)
        return [body for body in stored if (body.get("metadata") or {}).get("name") == name]

    def child(self, kind: str, key: Key, gone: Collection[str] = ()) -> dict[str, Any] | None:
        """The strategy's child of this kind, leaving out the uids ``gone`` (confirmed deleted by the API server).

        kopf forgets an object only on a DELETED event: after a gap in its watches (a 410 Gone and a relist, a
        peering pause) an object deleted meanwhile stays here, beside the one created since under its name."""
        found = [body for body in self.named(kind, key) if uid_of(body) not in gone]
        return found[0] if found else None

    def twin(self, key: Key) -> dict[str, Any] | None:
        """The strategy's paper twin (``spec.twin``): what holds the twin label naming it. Foreign objects of the
        twin's name without the label are not here: creating the twin finds them. One deleted in a watch gap may
        still be: apply.twin reads it from the API server now and then."""
        found = self._store(TWINS_INDEX, key)
        return found[0] if found else None

    def pods(self, key: Key) -> list[dict[str, Any]]:
        return self._store(KINDS["Pod"].index, key)

    def claimants(self, namespace: str, account: str) -> list[Any]:
        """The live strategies of the namespace on this venue account (``decide.claims.Claimant``, not active)."""
        return self._store(ACCOUNTS_INDEX, (namespace, account))

    def kill_switch(self, namespace: str) -> bool:
        return any(self._store(NAMESPACES_INDEX, namespace))

    def node_drain(self, node: str | None) -> str | None:
        """Why the node is being drained (see :func:`node_drain`), None when it is not (or not known)."""
        found = self._store(NODES_INDEX, node) if node else []
        return str(found[0]) if found else None
