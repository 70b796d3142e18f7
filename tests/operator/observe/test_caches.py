"""The watch caches keep what the operator reads of an object, and no more."""

from __future__ import annotations

import copy

from livestrat.api.resource import LiveStrategy
from strategy_operator.build.manifests import build_children
from strategy_operator.observe.caches import cached
from strategy_operator.observe.observation import PodView
from tests.support.desk import example
from tests.support.operator import fast_settings

MANAGED = [{"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:status": {}}}]


def a_running_pod() -> dict:
    """The pod the StatefulSet makes from the operator's template, as the API server and the kubelet complete it."""
    strategy = LiveStrategy.model_validate(example("paper-ema-cross") | {"metadata": {"name": "s", "namespace": "d"}})
    statefulset = build_children(strategy, fast_settings(), replicas=1)[-1]
    template = copy.deepcopy(statefulset["spec"]["template"])
    sts_ref = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "s", "uid": "u-sts", "controller": True}
    meta = template["metadata"] | {"name": "s-0", "namespace": "d", "uid": "u-pod", "ownerReferences": [sts_ref]}
    meta |= {"creationTimestamp": "2026-12-06T10:00:00Z", "managedFields": MANAGED}
    ready = {"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-06T10:00:05Z"}
    running = {"name": "runtime", "ready": True, "state": {"running": {"startedAt": "2026-12-06T10:00:03Z"}}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": template["spec"] | {"nodeName": "node-a"},
        "status": {"phase": "Running", "conditions": [ready], "containerStatuses": [running]},
    }


def test_a_cached_pod_reads_as_the_whole_pod_without_its_containers_and_field_owners():
    pod = a_running_pod()
    kept = cached("Pod", pod)
    assert PodView.from_body(kept, "u-sts", "s") == PodView.from_body(pod, "u-sts", "s")
    assert PodView.from_body(kept, "u-sts", "s").node_name == "node-a"
    assert "containers" not in kept["spec"] and "managedFields" not in kept["metadata"]
    assert "managedFields" in pod["metadata"] and "containers" in pod["spec"]  # the watch's copy is left alone


def test_a_cached_child_is_kept_whole_but_for_its_field_owners():
    strategy = LiveStrategy.model_validate(example("paper-ema-cross") | {"metadata": {"name": "s", "namespace": "d"}})
    for child in build_children(strategy, fast_settings(), replicas=1):
        stored = child | {"metadata": child["metadata"] | {"managedFields": MANAGED}}
        assert cached(child["kind"], stored) == child


def test_cached_copies_of_many_objects_share_their_keys_and_repeated_strings():
    """The watch decodes each event's JSON anew: without interning, every copy of every key ("metadata",
    "name", ...) and of every repeated value (an image, a label) is a string object of its own, per object."""
    import json

    pod = a_running_pod()
    first, second = (cached("Pod", json.loads(json.dumps(pod))) for _ in range(2))
    assert first == cached("Pod", pod)
    assert next(k for k in first["metadata"] if k == "ownerReferences") is next(
        k for k in second["metadata"] if k == "ownerReferences"
    )
    assert first["metadata"]["ownerReferences"][0]["kind"] is second["metadata"]["ownerReferences"][0]["kind"]
    assert first["status"]["conditions"][0]["type"] is second["status"]["conditions"][0]["type"]
