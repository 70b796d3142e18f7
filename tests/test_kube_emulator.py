"""The emulator keeps the API semantics the operator and the runtime rely on."""

from __future__ import annotations

import json

import kubernetes_asyncio
import pytest
from kubernetes_asyncio.client import CoreV1Api, CustomObjectsApi
from kubernetes_asyncio.client.exceptions import ApiException

from tests.support.kube import LIVESTRATEGIES
from tests.support.kube_validation import RBAC, name_check

MANIFEST = {
    "apiVersion": "livestrat.io/v1alpha1",
    "kind": "LiveStrategy",
    "metadata": {"name": "s1", "namespace": "default"},
    "spec": {"replicas": 1},
}


S1 = ("livestrat.io", "v1alpha1", "default", "livestrategies", "s1")  # MANIFEST's object, as the client names it


@pytest.fixture
async def client(kubeconfig_path):
    await kubernetes_asyncio.config.load_kube_config(config_file=str(kubeconfig_path))
    async with kubernetes_asyncio.client.ApiClient() as client:
        yield client


@pytest.fixture
def api(client):
    return CustomObjectsApi(client)


async def test_status_subresource_generation_and_scale(emulator, api):
    created = await api.create_namespaced_custom_object(
        "livestrat.io", "v1alpha1", "default", "livestrategies", MANIFEST
    )
    assert created["metadata"]["generation"] == 1

    patched = await api.patch_namespaced_custom_object_status(
        "livestrat.io",
        "v1alpha1",
        "default",
        "livestrategies",
        "s1",
        {"status": {"trading": {"fills": 3}}, "spec": {"replicas": 0}},
        _content_type="application/merge-patch+json",
    )
    # /status changes only .status and never bumps the generation
    assert patched["status"]["trading"]["fills"] == 3
    assert patched["spec"]["replicas"] == 1
    assert patched["metadata"]["generation"] == 1

    scale = await api.patch_namespaced_custom_object_scale(
        "livestrat.io",
        "v1alpha1",
        "default",
        "livestrategies",
        "s1",
        {"spec": {"replicas": 0}},
        _content_type="application/merge-patch+json",
    )
    assert scale["spec"]["replicas"] == 0
    stored = emulator.read_object(LIVESTRATEGIES, "s1", namespace="default")
    assert stored["spec"]["replicas"] == 0
    assert stored["metadata"]["generation"] == 2


async def test_writes_are_counted(emulator, api):
    before = len(emulator.writes())
    await api.create_namespaced_custom_object("livestrat.io", "v1alpha1", "default", "livestrategies", MANIFEST)
    await api.get_namespaced_custom_object("livestrat.io", "v1alpha1", "default", "livestrategies", "s1")
    assert len(emulator.writes()) == before + 1


# What the Kubernetes documentation says names must be: "Object Names and IDs" (DNS subdomain
# names for most resource types, RFC 1123 and RFC 1035 label names, path segment names) and the
# StatefulSet page ("The name of a StatefulSet object must be a valid DNS label").
DOCUMENTED_NAMES = [
    # (group, plural, name, accepted)
    ("", "configmaps", "c" * 253, True),  # a DNS subdomain: no more than 253 characters
    ("", "configmaps", "c" * 254, False),
    ("", "configmaps", "runtime.config-1", True),  # lowercase alphanumerics, '-' or '.'
    ("", "configmaps", "Runtime", False),
    ("", "configmaps", "run_time", False),
    ("", "configmaps", "-runtime", False),  # starts with an alphanumeric character
    ("", "configmaps", "runtime.", False),  # ends with an alphanumeric character
    ("livestrat.io", "livestrategies", "ema.cross", True),  # custom resources too (the CRD may say more)
    ("", "namespaces", "n" * 63, True),  # an RFC 1123 label: at most 63 characters
    ("", "namespaces", "n" * 64, False),
    ("", "namespaces", "trading.live", False),  # alphanumerics or '-' only
    ("apps", "statefulsets", "s" * 63, True),
    ("apps", "statefulsets", "s" * 64, False),
    ("apps", "statefulsets", "ema.cross", False),
    ("", "services", "metrics-1", True),  # an RFC 1035 label
    ("", "services", "m" * 63, True),
    ("", "services", "m" * 64, False),
    ("", "services", "1-metrics", False),  # starts with an alphabetic character
    ("", "services", "ema.cross", False),
    ("", "services", "metrics-", False),  # ends with an alphanumeric character
    (RBAC, "roles", "Status_Writer:v1", True),  # a path segment name
    (RBAC, "rolebindings", ".", False),  # not "." or ".."
    (RBAC, "clusterroles", "..", False),
    (RBAC, "clusterrolebindings", "a/b", False),  # no "/" or "%"
    (RBAC, "roles", "100%", False),
]


@pytest.mark.parametrize(("group", "plural", "name", "accepted"), DOCUMENTED_NAMES)
def test_names_follow_the_documented_rule_of_their_resource(group, plural, name, accepted):
    assert (name_check(group, plural)(name, False) == []) is accepted


async def test_a_name_its_resource_cannot_have_is_refused_as_the_api_server_refuses_it(emulator, client):
    service = {"metadata": {"name": "1-metrics"}, "spec": {"clusterIP": "None", "ports": [{"port": 8080}]}}
    with pytest.raises(ApiException) as refused:
        await CoreV1Api(client).create_namespaced_service("default", service)
    assert refused.value.status == 422
    status = json.loads(refused.value.body)
    detail = (
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
        "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
        "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
    )
    assert status["reason"] == "Invalid"
    assert status["message"] == f'Service "1-metrics" is invalid: metadata.name: Invalid value: "1-metrics": {detail}'
    assert status["details"] == {
        "name": "1-metrics",
        "group": "",
        "kind": "Service",
        "causes": [
            {
                "reason": "FieldValueInvalid",
                "message": f'Invalid value: "1-metrics": {detail}',
                "field": "metadata.name",
            }
        ],
    }
    assert emulator.read_object("v1/services", "1-metrics", namespace="default") is None


async def test_a_generated_name_keeps_58_characters_of_the_prefix_and_adds_5(emulator, client):
    prefix = "runtime-" + "c" * 60
    created = await CoreV1Api(client).create_namespaced_config_map("default", {"metadata": {"generateName": prefix}})
    name = created.metadata.name
    assert len(name) == 63 and name.startswith(prefix[:58])
    assert name_check("", "services")(name, False) == []


async def test_annotations_hold_256_kib_in_all(emulator, api):
    # The annotations page: "the total size of all annotations (keys and values combined) must not exceed 256 KiB".
    at_the_limit = {**MANIFEST, "metadata": {**MANIFEST["metadata"], "annotations": {"note": "x" * (256 * 1024 - 4)}}}
    await api.create_namespaced_custom_object("livestrat.io", "v1alpha1", "default", "livestrategies", at_the_limit)
    with pytest.raises(ApiException) as refused:
        await api.patch_namespaced_custom_object(
            "livestrat.io",
            "v1alpha1",
            "default",
            "livestrategies",
            "s1",
            {"metadata": {"annotations": {"n": "1"}}},
            _content_type="application/merge-patch+json",
        )
    assert refused.value.status == 422
    assert json.loads(refused.value.body)["message"] == (
        'LiveStrategy.livestrat.io "s1" is invalid: metadata.annotations: Too long: may not be more than 262144 bytes'
    )
    stored = emulator.read_object(LIVESTRATEGIES, "s1", namespace="default")
    assert list(stored["metadata"]["annotations"]) == ["note"]


async def test_an_object_stored_past_validation_is_served_as_it_is_stored(emulator, api):
    # What a stale CRD schema or a direct etcd write leaves: the operator must read whatever is stored.
    created = await api.create_namespaced_custom_object(
        "livestrat.io", "v1alpha1", "default", "livestrategies", MANIFEST
    )
    broken = {
        **MANIFEST,
        "metadata": {"name": "s1", "annotations": ["not", "a", "map"], "labels": 7},
        "spec": "a string",
        "status": {"risk": ["Halted"], "replicas": "one"},
    }
    stored = emulator.store_unchecked(LIVESTRATEGIES, broken, namespace="default")
    assert stored["metadata"]["uid"] == created["metadata"]["uid"]
    assert stored["metadata"]["generation"] == 2
    assert int(stored["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    served = await api.get_namespaced_custom_object(*S1)
    assert served["spec"] == "a string" and served["metadata"]["annotations"] == ["not", "a", "map"]
    assert served["metadata"]["labels"] == 7 and served["status"] == {"risk": ["Halted"], "replicas": "one"}
    # a label selector does not break on it (a real server would have dropped such labels when reading)
    listed = await api.list_namespaced_custom_object(
        "livestrat.io", "v1alpha1", "default", "livestrategies", label_selector="app=x"
    )
    assert listed["items"] == []
    # a later write is checked as usual, and keeps what it does not replace
    merge = "application/merge-patch+json"
    patched = await api.patch_namespaced_custom_object_status(
        *S1, {"status": {"phase": "Running"}}, _content_type=merge
    )
    assert patched["metadata"]["annotations"] == ["not", "a", "map"] and patched["status"]["risk"] == ["Halted"]
    born = emulator.store_unchecked(LIVESTRATEGIES, {**broken, "metadata": {"name": "s2"}}, namespace="default")
    assert born["metadata"]["generation"] == 1 and born["status"] == broken["status"]


@pytest.mark.parametrize(
    ("broken", "path"),
    [
        ({"spec": {"replicas": "one"}}, ".spec.replicas"),
        ({"spec": "a string"}, ".spec"),
        ({"spec": {"replicas": 10**20}}, ".spec.replicas"),
        ({"spec": {"replicas": 1}, "status": {"replicas": [1]}}, ".status.replicas"),
        ({"spec": {"replicas": 1}, "status": {"selector": {"app": "x"}}}, ".status.selector"),
    ],
)
async def test_an_object_whose_replicas_cannot_be_read_cannot_be_scaled(emulator, api, broken, path):
    # apiextensions' scaleFromCustomResource reads spec.replicas and status.replicas with NestedInt64 and the
    # selector with NestedString: a value of another type (or a level that is not an object) is an error, for
    # reading the scale as for writing it.
    await api.create_namespaced_custom_object("livestrat.io", "v1alpha1", "default", "livestrategies", MANIFEST)
    emulator.store_unchecked(LIVESTRATEGIES, {**MANIFEST, **broken}, namespace="default")
    for call in (
        lambda: api.get_namespaced_custom_object_scale(*S1),
        lambda: api.patch_namespaced_custom_object_scale(
            *S1, {"spec": {"replicas": 0}}, _content_type="application/merge-patch+json"
        ),
    ):
        with pytest.raises(ApiException) as refused:
            await call()
        assert refused.value.status == 500 and f"{path} accessor error" in refused.value.body
    assert emulator.read_object(LIVESTRATEGIES, "s1", namespace="default")["spec"] == broken["spec"]


def _pod(emulator, name: str, *, ready: bool, labels: dict | None = None) -> None:
    """A running pod; its status written through the status subresource, as the kubelet does."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "strategy"} if labels is None else labels},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }
    emulator.create_object("v1/pods", pod, namespace="default")
    _set_ready(emulator, name, ready)


def _set_ready(emulator, name: str, ready: bool) -> None:
    status = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    emulator.patch_object("v1/pods", name, {"status": status}, namespace="default", subresource="status")


def _budget(name: str, **spec) -> dict:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "strategy"}}, **spec},
    }


async def _evict(client, name: str) -> tuple[int, dict]:
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "default"}}
    try:
        answer = await CoreV1Api(client).create_namespaced_pod_eviction(name, "default", body)
    except ApiException as exc:
        return exc.status, json.loads(exc.body)
    return 200, client.sanitize_for_serialization(answer)


async def test_an_eviction_honours_the_pod_disruption_budget_as_documented(emulator, client):
    # https://kubernetes.io/docs/concepts/scheduling-eviction/api-eviction/ ("How API-initiated eviction
    # works"): 200 OK, the eviction is allowed and the pod is deleted as by a DELETE; 429 Too Many Requests,
    # the eviction is not allowed because of a configured PodDisruptionBudget (try again later); 500
    # Internal Server Error, a misconfiguration such as several PodDisruptionBudgets for the same pod; a pod
    # that no PodDisruptionBudget selects is always evicted.
    # https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/pod-disruption-budget-v1/:
    # maxUnavailable 0 prevents all voluntary evictions; unhealthyPodEvictionPolicy IfHealthyBudget (the
    # default): a running pod that is not healthy (Ready) is evicted only if status.currentHealthy is at least
    # status.desiredHealthy; AlwaysAllow: it is evicted whatever the budget says.
    pods = "v1/pods"
    budgets = "policy/v1/poddisruptionbudgets"
    _pod(emulator, "guarded", ready=True)
    emulator.create_object(budgets, _budget("strategy", maxUnavailable=0), namespace="default")
    status, answer = await _evict(client, "guarded")
    assert status == 429 and answer["reason"] == "TooManyRequests", answer
    assert "disruption budget" in answer["message"]
    assert emulator.read_object(pods, "guarded", namespace="default") is not None

    assert emulator.read_object(budgets, "strategy", namespace="default")  # (the budget itself is untouched)
    # a budget that allows one disruption (two healthy pods, at least one available): one eviction passes
    emulator.patch_object(
        budgets, "strategy", {"spec": {"maxUnavailable": None, "minAvailable": 1}}, namespace="default"
    )
    _pod(emulator, "spare", ready=True)
    assert (await _evict(client, "spare"))[0] == 200
    assert (await _evict(client, "guarded"))[0] == 429  # now the last healthy one
    emulator.patch_object(
        budgets, "strategy", {"spec": {"maxUnavailable": 0, "minAvailable": None}}, namespace="default"
    )

    # a pod that never got ready: the budget is not healthy (0 of 1), so the default policy keeps it too
    _set_ready(emulator, "guarded", False)
    assert (await _evict(client, "guarded"))[0] == 429
    emulator.patch_object(
        budgets, "strategy", {"spec": {"unhealthyPodEvictionPolicy": "AlwaysAllow"}}, namespace="default"
    )
    assert (await _evict(client, "guarded"))[0] == 200
    assert emulator.read_object(pods, "guarded", namespace="default") is None

    # one more budget over the same pod: a misconfiguration
    _pod(emulator, "twice", ready=True)
    emulator.create_object(budgets, _budget("other", minAvailable=0), namespace="default")
    assert (await _evict(client, "twice"))[0] == 500

    # no budget at all: evicted
    _pod(emulator, "free", ready=True, labels={})
    assert (await _evict(client, "free"))[0] == 200
    assert emulator.read_object(pods, "free", namespace="default") is None


@pytest.mark.parametrize(
    ("containers", "init", "expected"),
    [
        # every container (init containers included) with cpu and memory limits equal to their requests
        (
            [{"requests": {"cpu": "700m", "memory": "200Mi"}, "limits": {"cpu": "0.7", "memory": "200Mi"}}],
            [],
            "Guaranteed",
        ),
        # a limit without a request: the request defaults to the limit
        ([{"limits": {"cpu": "1", "memory": "1Gi"}}], [], "Guaranteed"),
        # memory limit above its request
        ([{"requests": {"memory": "100Mi"}, "limits": {"memory": "200Mi"}}], [], "Burstable"),
        # one container without cpu: not every container meets the criteria
        ([{"limits": {"cpu": "1", "memory": "1Gi"}}, {"limits": {"memory": "1Gi"}}], [], "Burstable"),
        # an init container that does not meet them either
        ([{"limits": {"cpu": "1", "memory": "1Gi"}}], [{"requests": {"cpu": "100m"}}], "Burstable"),
        # no cpu or memory request or limit anywhere (other resources do not count)
        ([{}, {"requests": {"ephemeral-storage": "1Gi"}}], [], "BestEffort"),
    ],
)
async def test_a_pod_gets_its_qos_class_when_it_is_created_as_documented(emulator, client, containers, init, expected):
    # https://kubernetes.io/docs/concepts/workloads/pods/pod-qos/ and
    # https://kubernetes.io/docs/tasks/configure-pod-container/quality-service-pod/: Kubernetes assigns the
    # class when the pod is created (status.qosClass). Guaranteed: every container, init containers included,
    # has a memory limit and request that are equal, and a cpu limit and request that are equal (a container
    # that gives a limit and no request gets a request equal to it). Burstable: not Guaranteed, and at least
    # one container has a memory or cpu request or limit. BestEffort: none has any.
    def container(i: int, resources: dict) -> dict:
        return {"name": f"c{i}", "image": "i", "resources": resources}

    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "qos"},
        "spec": {
            "containers": [container(i, r) for i, r in enumerate(containers)],
            "initContainers": [container(10 + i, r) for i, r in enumerate(init)],
        },
    }
    created = await CoreV1Api(client).create_namespaced_pod("default", pod)
    assert created.status.qos_class == expected
