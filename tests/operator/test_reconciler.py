"""The reconciler's own memory, against watch caches that lag (no API server: a recording fake)."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from strategy_operator.apply.actions import FIRST_STATUS_WITHIN
from strategy_operator.apply.own_writes import CACHE_LAG_SECONDS
from strategy_operator.decide.events import Event
from strategy_operator.kinds import WATCHED
from strategy_operator.kube_client import ApiError
from strategy_operator.metrics import OperatorMetrics
from strategy_operator.observe.caches import Caches
from strategy_operator.observe.observer import Gone
from strategy_operator.reconciler import Reconciler
from tests.support.clock import ManualClock
from tests.support.desk import example
from tests.support.operator import fast_settings

NAME, NAMESPACE = "ema-cross-btc", "desk"
KEY = (NAMESPACE, NAME)


class RecordingKube:
    """Answers like an API server that accepts everything; remembers every write, and serves what it created and
    the LiveStrategy it is given (as it is stored) to a read."""

    def __init__(self, strategy: dict[str, Any]) -> None:
        self.writes: list[tuple[str, str, str]] = []
        self._uids = (f"uid-{n}" for n in itertools.count())
        self.stored: dict[tuple[str, str], dict[str, Any]] = {("LiveStrategy", strategy["metadata"]["name"]): strategy}

    async def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(("create", manifest["kind"], manifest["metadata"]["name"]))
        created = copy.deepcopy(manifest)
        created["metadata"].update(uid=next(self._uids), resourceVersion="1")
        self.stored[(manifest["kind"], manifest["metadata"]["name"])] = created
        return created

    async def patch(self, kind: str, namespace: str, name: str, patch: Any, subresource: str | None = None) -> dict:
        self.writes.append(("patch", kind + (f"/{subresource}" if subresource else ""), name))
        return {"metadata": {"resourceVersion": "2"}}

    async def delete(self, kind: str, namespace: str, name: str, *, uid: str | None = None) -> None:
        self.writes.append(("delete", kind, name))

    async def get(self, kind: str, namespace: str, name: str) -> dict | None:
        return copy.deepcopy(self.stored.get((kind, name)))

    async def list(self, kind: str, namespace: str, label_selector: str) -> list[dict]:
        return []


def live_strategy() -> dict[str, Any]:
    body = example("paper-ema-cross")
    body["metadata"].update(namespace=NAMESPACE, uid="strategy-uid", generation=1, resourceVersion="10")
    return body


async def test_the_pod_of_a_statefulset_the_cache_does_not_show_yet_is_never_deleted_as_rogue():
    body = live_strategy()
    kube = RecordingKube(body)
    events: list[Event] = []
    clock = ManualClock()
    reconciler = Reconciler(
        fast_settings(), kube, OperatorMetrics({}), post_event=lambda _body, e: events.append(e), clock=clock
    )
    indexes: dict[str, dict] = {kind.index: {} for kind in WATCHED}

    await reconciler.reconcile(body, Caches(indexes))  # creates the children
    created = {kind for verb, kind, _ in kube.writes if verb == "create"}
    assert "StatefulSet" in created
    statefulset = reconciler.memory(KEY).created.get("StatefulSet", clock.monotonic())
    statefulset_uid = statefulset["metadata"]["uid"]

    # The StatefulSet controller made the pod; its watch event came before the StatefulSet's.
    pod = {
        "metadata": {
            "name": f"{NAME}-0",
            "namespace": NAMESPACE,
            "uid": "pod-uid",
            "labels": {"livestrat.io/strategy": NAME},
            "annotations": statefulset["spec"]["template"]["metadata"]["annotations"],
            "ownerReferences": [{"kind": "StatefulSet", "name": NAME, "uid": statefulset_uid, "controller": True}],
        },
        "status": {"containerStatuses": [{"name": "strategy", "state": {"waiting": {"reason": "ContainerCreating"}}}]},
    }
    indexes["livestrat_pods"][KEY] = [pod]
    kube.writes.clear()
    await reconciler.reconcile(body, Caches(indexes))
    assert [w for w in kube.writes if w[0] == "delete"] == [], events
    assert "RoguePodDeleted" not in [e.reason for e in events]

    # Past the time the operator trusts its own creation: a pod whose controller is a StatefulSet of this name
    # is still the strategy's own until the cache shows that StatefulSet (and its uid).
    clock.advance(CACHE_LAG_SECONDS + 1)
    assert reconciler.memory(KEY).created.get("StatefulSet", clock.monotonic()) is None
    await reconciler.reconcile(body, Caches(indexes))
    assert [w for w in kube.writes if w[0] == "delete"] == []


async def test_a_transition_is_told_once_while_the_watchs_copy_lags_behind_the_operators_own_writes():
    body = live_strategy()  # never updated: the watch has not delivered the operator's status patch yet
    kube = RecordingKube(body)
    events: list[Event] = []
    clock = ManualClock()
    reconciler = Reconciler(
        fast_settings(), kube, OperatorMetrics({}), post_event=lambda _body, e: events.append(e), clock=clock
    )
    indexes: dict[str, dict] = {kind.index: {} for kind in WATCHED}
    for _ in range(3):
        await reconciler.reconcile(body, Caches(indexes))
        clock.advance(FIRST_STATUS_WITHIN)  # no pod comes: the first status is not deferred past this
    assert [e.reason for e in events].count("Starting") == 1
    assert [w for w in kube.writes if w[1] == "LiveStrategy/status"] == [("patch", "LiveStrategy/status", NAME)]


def cached_child(kind: str, owner_uid: str, uid: str) -> dict[str, Any]:
    """A child of the strategy's name as a watch cache holds it, owned by the LiveStrategy of ``owner_uid``."""
    return {
        "kind": kind,
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "uid": uid,
            "resourceVersion": "5",
            "labels": {"livestrat.io/strategy": NAME},
            "ownerReferences": [{"kind": "LiveStrategy", "name": NAME, "uid": owner_uid, "controller": True}],
        },
        "spec": {"replicas": 1},
    }


async def test_children_a_watch_gap_left_in_the_caches_are_confirmed_gone_and_made_again_not_declared_taken():
    # The LiveStrategy was deleted and recreated while the watches were cut off: the caches still hold the
    # children of the old one (another owner uid), which the API server no longer has.
    body = live_strategy()
    kube = RecordingKube(body)
    events: list[Event] = []
    reconciler = Reconciler(
        fast_settings(), kube, OperatorMetrics({}), post_event=lambda _body, e: events.append(e), clock=ManualClock()
    )
    indexes: dict[str, dict] = {kind.index: {} for kind in WATCHED}
    for kind in WATCHED:
        if kind.kind != "Pod":
            indexes[kind.index][KEY] = [cached_child(kind.kind, "old-strategy-uid", f"old-{kind.plural}")]

    await reconciler.reconcile(body, Caches(indexes))
    created = {kind for verb, kind, _ in kube.writes if verb == "create"}
    assert created == {
        "ConfigMap",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "StatefulSet",
        "PodDisruptionBudget",
    }
    assert not [w for w in kube.writes if w[:2] == ("patch", "StatefulSet")]  # nothing scaled down
    assert "NameConflict" not in [e.reason for e in events] and not reconciler.memory(KEY).conflicts
    # (a Service is no child any more: one of another owner is none of this strategy's business)
    stale = {f"old-{kind.plural}" for kind in WATCHED if kind.kind not in ("Pod", "Service")}
    assert stale <= reconciler.memory(KEY).confirmed_gone


async def test_a_reconciler_whose_strategy_was_recreated_meanwhile_stops_and_writes_nothing():
    old = live_strategy()
    new = copy.deepcopy(old)
    new["metadata"]["uid"] = "recreated-uid"
    kube = RecordingKube(new)  # what the API server has now
    reconciler = Reconciler(fast_settings(), kube, OperatorMetrics({}), post_event=lambda *_: None, clock=ManualClock())
    indexes: dict[str, dict] = {kind.index: {} for kind in WATCHED}
    indexes["livestrat_statefulsets"][KEY] = [cached_child("StatefulSet", "recreated-uid", "new-sts")]
    reconciler.saw(KEY, "recreated-uid")  # kopf told of the new one; the old one's daemon never heard of its end

    with pytest.raises(Gone):
        await reconciler.reconcile(old, Caches(indexes))
    assert kube.writes == []


class ForbiddenReads(RecordingKube):
    """An API server that refuses the operator's reads (a grant missing from an older chart, an outage)."""

    async def get(self, kind: str, namespace: str, name: str) -> dict | None:
        raise ApiError(403, "Forbidden", f"cannot get {kind}")

    async def list(self, kind: str, namespace: str, label_selector: str) -> list[dict]:
        raise ApiError(403, "Forbidden", f"cannot list {kind}")


async def test_a_halt_is_not_held_up_by_a_confirmation_the_api_server_refuses():
    body = live_strategy()
    body["spec"]["replicas"] = 0  # halted by the desk
    kube = ForbiddenReads(body)
    reconciler = Reconciler(fast_settings(), kube, OperatorMetrics({}), post_event=lambda *_: None, clock=ManualClock())
    indexes: dict[str, dict] = {kind.index: {} for kind in WATCHED}
    for kind in WATCHED:
        if kind.kind != "Pod":
            indexes[kind.index][KEY] = [cached_child(kind.kind, "strategy-uid", f"{kind.plural}-uid")]
    await reconciler.reconcile(body, Caches(indexes))
    # the halt recorded for the runtime (status.halt), then scaled to 0, before anything else, all the same
    assert kube.writes[:2] == [("patch", "LiveStrategy/status", NAME), ("patch", "StatefulSet", NAME)]
