"""The emulator keeps the API semantics the operator and the runtime rely on."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import kubernetes_asyncio
import pytest
from kubernetes_asyncio.client import CoreV1Api, CustomObjectsApi
from kubernetes_asyncio.client.exceptions import ApiException

from livestrat.kube_emulator.emulator import ADMIN_HEADERS
from livestrat.kube_emulator.quantities import DOCUMENTED_EXAMPLES, canonical
from livestrat.kube_emulator.validation import RBAC, name_check
from tests.support.kube import ADMISSION_PLURALS, LIVESTRATEGIES, wait_for
from tests.support.watch_gap import WatchGap

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


# The CronTab of the Kubernetes documentation (tasks/extend-kubernetes/custom-resources/custom-resource-definitions,
# "Defaulting"), with a node that preserves unknown fields ("Controlling pruning").
CRONTAB_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "crontabs.stable.example.com"},
    "spec": {
        "group": "stable.example.com",
        "scope": "Namespaced",
        "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "cronSpec": {"type": "string", "default": "5 0 * * *"},
                                    "image": {"type": "string"},
                                    "replicas": {"type": "integer", "default": 1},
                                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                },
                            }
                        },
                    }
                },
            }
        ],
    },
}
CRONTABS = "stable.example.com/v1/crontabs"


def crontab_url(emulator, name: str = "") -> str:
    return f"{str(emulator.url).rstrip('/')}/apis/stable.example.com/v1/namespaces/default/crontabs{'/' + name if name else ''}"


async def test_unknown_fields_are_pruned_and_told_unless_the_write_asks_for_strict_validation(emulator):
    # Documentation, "Field pruning": "if you specify a field that the API server does not recognize, the unknown
    # field is pruned (removed) before being persisted"; "Controlling pruning": not under
    # x-kubernetes-preserve-unknown-fields. The API reference, parameter fieldValidation of every write: "Ignore:
    # ... unknown fields that are silently dropped from the object ... - Warn: This will send a warning via the
    # standard warning response header for each unknown field that is dropped from the object ... This is the
    # default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would
    # be dropped from the object".
    emulator.add_crd(CRONTAB_CRD)
    body = {
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": "typo"},
        "spec": {"image": "busybox", "replica": 3, "extra": {"anything": [1]}},
        "stray": True,
    }
    async with aiohttp.ClientSession(headers=ADMIN_HEADERS) as http:
        async with http.post(crontab_url(emulator), params={"fieldValidation": "Strict"}, json=body) as refused:
            assert refused.status == 400
            message = (await refused.json())["message"]
            assert 'unknown field "spec.replica"' in message and 'unknown field "stray"' in message, message
        assert emulator.read_object(CRONTABS, "typo", namespace="default") is None
        async with http.post(crontab_url(emulator), json=body) as warned:  # no fieldValidation: Warn
            assert warned.status == 201
            assert sorted(warned.headers.getall("Warning")) == [
                '299 - "unknown field \\"spec.replica\\""',
                '299 - "unknown field \\"stray\\""',
            ]
        stored = emulator.read_object(CRONTABS, "typo", namespace="default")
        assert "stray" not in stored and "replica" not in stored["spec"]
        assert stored["spec"]["extra"] == {"anything": [1]}  # preserved where the schema says so
        patch = {"spec": {"replicaz": 2}}
        async with http.patch(
            crontab_url(emulator, "typo"),
            params={"fieldValidation": "Ignore"},
            json=patch,
            headers={"Content-Type": "application/merge-patch+json"},
        ) as ignored:
            assert ignored.status == 200 and "Warning" not in ignored.headers
            assert "replicaz" not in (await ignored.json())["spec"]


async def test_defaults_are_applied_on_writes_and_to_what_is_read_after_the_crd_gains_one(emulator):
    # Documentation, "Defaulting": "Defaulting happens on the object - in the request to the API server using the
    # request version defaults, - when reading from etcd using the storage version defaults ... Defaults applied
    # when reading data from etcd are not automatically written back to etcd."
    emulator.add_crd(CRONTAB_CRD)
    created = emulator.create_object(
        CRONTABS, {"metadata": {"name": "cron"}, "spec": {"image": "busybox"}}, namespace="default"
    )
    assert created["spec"] == {"cronSpec": "5 0 * * *", "image": "busybox", "replicas": 1}
    # A newer CRD adds a defaulted field: what was stored before reads with it, without a write or a watch event.
    newer = json.loads(json.dumps(CRONTAB_CRD))
    properties = newer["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    properties["timeZone"] = {"type": "string", "default": "UTC"}
    version = emulator.resource_version
    emulator.patch_object("apiextensions.k8s.io/v1/customresourcedefinitions", "crontabs.stable.example.com", newer)
    read = emulator.read_object(CRONTABS, "cron", namespace="default")
    assert read["spec"]["timeZone"] == "UTC"
    assert read["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert emulator.resource_version == version + 1  # the CRD's own write, nothing else


def crontab_policy(failure_policy: str = "Fail") -> list[dict]:
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "few-replicas"},
            "spec": {
                "failurePolicy": failure_policy,
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["stable.example.com"],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": ["crontabs"],
                        }
                    ]
                },
                "validations": [
                    {
                        "expression": "object.spec.replicas <= 5",
                        "messageExpression": "'replicas ' + string(object.spec.replicas) + ' is more than 5'",
                    },
                    {"expression": "request.operation == 'CREATE' || oldObject.spec.image == object.spec.image"},
                    {"expression": "object.spec.extra.size() < 3"},  # fails to evaluate without spec.extra
                ],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": "few-replicas"},
            "spec": {"policyName": "few-replicas", "validationActions": ["Deny"]},
        },
    ]


@pytest.mark.parametrize("failure_policy", ["Fail", "Ignore"])
async def test_a_bound_validating_admission_policy_refuses_what_its_expressions_do_not_allow(emulator, failure_policy):
    # Documentation, reference/access-authn-authz/validating-admission-policy and the API reference of
    # ValidatingAdmissionPolicy: a policy acts through a binding whose validationActions include Deny, on the
    # requests its matchConstraints.resourceRules name; CEL variables "'object' - The object from the incoming
    # request ... 'oldObject' - The existing object. The value is null for CREATE requests. 'request' - Attributes
    # of the admission request"; a failed validation answers with its messageExpression (else message) and its
    # reason, Invalid when unset; failurePolicy "Fail" (the default) refuses a request whose expression cannot be
    # evaluated, "Ignore" lets it through. The API server (admission/plugin/policy/validating dispatcher.go) wraps the
    # message with admission.NewForbidden ('crontabs.stable.example.com "c" is forbidden: ...') and answers an
    # expression that errors under Fail as a denial without a reason: Invalid, 422, "expression '...' resulted in
    # error: ..." (validator.go, cel filter.go).
    emulator.add_crd(CRONTAB_CRD)
    for document in crontab_policy(failure_policy):
        emulator.create_object(ADMISSION_PLURALS[document["kind"]], document)
    merge = {"Content-Type": "application/merge-patch+json"}
    body = {"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "c"}}
    async with aiohttp.ClientSession(headers=ADMIN_HEADERS) as http:
        many = {**body, "spec": {"image": "a", "replicas": 9, "extra": {}}}
        async with http.post(crontab_url(emulator), json=many) as refused:
            assert refused.status == 422 and (await refused.json())["reason"] == "Invalid"
            assert (await refused.json())["message"] == (
                'crontabs.stable.example.com "c" is forbidden: '
                "ValidatingAdmissionPolicy 'few-replicas' with binding 'few-replicas' denied request: "
                "replicas 9 is more than 5"
            )
        async with http.post(crontab_url(emulator), json={**body, "spec": {"image": "a", "extra": {}}}) as created:
            assert created.status == 201
        async with http.patch(crontab_url(emulator, "c"), json={"spec": {"image": "b"}}, headers=merge) as changed:
            assert changed.status == 422  # oldObject: the stored object
        async with http.patch(crontab_url(emulator, "c"), json={"spec": {"extra": None}}, headers=merge) as broken:
            assert broken.status == (422 if failure_policy == "Fail" else 200)
            if failure_policy == "Fail":
                assert (
                    "expression 'object.spec.extra.size() < 3' resulted in error: " in (await broken.json())["message"]
                )


STATEFULSET = {
    "metadata": {"name": "s1", "labels": {"app": "s1"}},
    "spec": {
        "replicas": 1,
        "serviceName": "s1",
        "selector": {"matchLabels": {"app": "s1"}},
        "podManagementPolicy": "OrderedReady",
        "template": {
            "metadata": {"labels": {"app": "s1"}},
            "spec": {"containers": [{"name": "c", "image": "runtime:1"}]},
        },
    },
}


@pytest.mark.parametrize(
    "change",
    [
        {"serviceName": "other"},
        {"selector": {"matchLabels": {"app": "s1", "tier": "x"}}},
        {"podManagementPolicy": "Parallel"},
        {"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]},
    ],
)
async def test_a_statefulset_refuses_changes_outside_its_mutable_fields(emulator, client, change):
    # The API server's update validation of a StatefulSet (ValidateStatefulSetUpdate) lets only replicas,
    # ordinals, template, updateStrategy, revisionHistoryLimit, persistentVolumeClaimRetentionPolicy and
    # minReadySeconds change; anything else is 422 with this message, for every client.
    from kubernetes_asyncio.client import AppsV1Api

    apps = AppsV1Api(client)
    emulator.create_object("apps/v1/statefulsets", STATEFULSET, namespace="default")
    with pytest.raises(ApiException) as refused:
        await apps.patch_namespaced_stateful_set(
            "s1", "default", {"spec": change}, _content_type="application/merge-patch+json"
        )
    assert refused.value.status == 422
    assert json.loads(refused.value.body)["message"] == (
        'StatefulSet.apps "s1" is invalid: spec: Forbidden: updates to statefulset spec for fields other than '
        "'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
        "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    )
    allowed = {
        "replicas": 0,
        "revisionHistoryLimit": 3,
        "minReadySeconds": 5,
        "updateStrategy": {"type": "OnDelete"},
        "template": {"metadata": {"annotations": {"a": "b"}}},
    }
    patched = await apps.patch_namespaced_stateful_set(
        "s1", "default", {"spec": allowed}, _content_type="application/merge-patch+json"
    )
    assert patched.spec.replicas == 0 and patched.spec.service_name == "s1"


# The Quantity type of the Kubernetes API reference (DOCUMENTED_EXAMPLES cites it): the documented canonical forms.
@pytest.mark.parametrize(("written", "stored"), DOCUMENTED_EXAMPLES)
def test_a_quantity_is_stored_in_its_documented_canonical_form(written, stored):
    assert canonical(written) == stored


async def test_pods_and_pod_templates_store_their_quantities_canonically_and_the_same_value_is_a_no_op(emulator):
    template = {
        "metadata": {"labels": {"app": "s1"}},
        "spec": {
            "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}}}],
            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "0.5Gi"}}],
        },
    }
    sts = emulator.create_object(
        "apps/v1/statefulsets",
        {**STATEFULSET, "spec": {**STATEFULSET["spec"], "template": template}},
        namespace="default",
    )
    stored = sts["spec"]["template"]["spec"]
    assert stored["containers"][0]["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert stored["volumes"][0]["emptyDir"]["sizeLimit"] == "512Mi"
    again = emulator.patch_object("apps/v1/statefulsets", "s1", {"spec": {"template": template}}, namespace="default")
    assert again["metadata"]["resourceVersion"] == sts["metadata"]["resourceVersion"]  # nothing changed
    pod = emulator.create_object("v1/pods", {"metadata": {"name": "p"}, "spec": template["spec"]}, namespace="default")
    assert pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "500m"


def _owned(name: str, owner: dict, *, block: bool, finalizers: tuple[str, ...] = ()) -> dict:
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}
    meta = {"name": name, "ownerReferences": [{**ref, "blockOwnerDeletion": block}]}
    if finalizers:
        meta["finalizers"] = list(finalizers)
    return {"metadata": meta}


def _read(emulator, name: str) -> dict | None:
    return emulator.read_object("v1/configmaps", name, namespace="default")


async def test_background_deletion_removes_the_owner_at_once_and_its_dependents_later(emulator):
    # "Garbage Collection": in background cascading deletion (the default) the API server deletes the owner
    # immediately and the garbage collector deletes the dependents afterwards, in the background: a client can find
    # the owner gone and its dependents still there. Each level of the cascade goes in its turn.
    owner = emulator.create_object("v1/configmaps", {"metadata": {"name": "owner"}}, namespace="default")
    child = emulator.create_object("v1/configmaps", _owned("child", owner, block=True), "default")
    emulator.create_object("v1/configmaps", _owned("grandchild", child, block=True), "default")
    emulator.delete_object("v1/configmaps", "owner", namespace="default")

    assert _read(emulator, "owner") is None
    assert _read(emulator, "child") is not None and _read(emulator, "grandchild") is not None  # not yet collected
    await wait_for(lambda: _read(emulator, "child") is None and _read(emulator, "grandchild") is None)


async def test_foreground_deletion_keeps_the_owner_until_its_blocking_dependents_are_gone(emulator):
    # "Garbage Collection": in foreground cascading deletion the owner enters deletion in progress (deletionTimestamp,
    # the foregroundDeletion finalizer), the controller deletes the dependents, and the owner is deleted once the
    # dependents with ownerReference.blockOwnerDeletion=true are gone; the others do not block it.
    owner = emulator.create_object("v1/configmaps", {"metadata": {"name": "owner"}}, namespace="default")
    emulator.create_object("v1/configmaps", _owned("blocking", owner, block=True, finalizers=("x/hold",)), "default")
    emulator.create_object("v1/configmaps", _owned("free", owner, block=False, finalizers=("x/hold",)), "default")
    emulator.create_object("v1/configmaps", _owned("plain", owner, block=True), "default")
    emulator.delete_object("v1/configmaps", "owner", namespace="default", propagation="Foreground")

    waiting = _read(emulator, "owner")
    assert waiting["metadata"]["finalizers"] == ["foregroundDeletion"] and waiting["metadata"]["deletionTimestamp"]
    assert _read(emulator, "plain") is not None  # the collector has not come round yet
    await wait_for(lambda: _read(emulator, "plain") is None)
    for name in ("blocking", "free"):  # deleted, held by their own finalizers
        assert _read(emulator, name)["metadata"]["deletionTimestamp"]
    emulator.patch_object("v1/configmaps", "free", {"metadata": {"finalizers": None}}, namespace="default")
    emulator.garbage_collector.drain()  # all the collector would do
    assert _read(emulator, "owner")["metadata"]["finalizers"] == ["foregroundDeletion"]  # "free" never blocked it
    emulator.patch_object("v1/configmaps", "blocking", {"metadata": {"finalizers": None}}, namespace="default")
    assert _read(emulator, "owner") is not None  # the collector removes the finalizer, later
    await wait_for(lambda: _read(emulator, "owner") is None)


async def test_orphan_deletion_leaves_the_dependents_without_the_owners_reference(emulator):
    # "Use Cascading Deletion" (--cascade=orphan): the owner gets the orphan finalizer, the garbage collector removes
    # the owner reference from the dependents, which stay. The owner's other finalizers still hold it.
    owner = emulator.create_object(
        "v1/configmaps", {"metadata": {"name": "owner", "finalizers": ["x/hold"]}}, namespace="default"
    )
    emulator.create_object("v1/configmaps", _owned("child", owner, block=True), "default")
    emulator.delete_object("v1/configmaps", "owner", namespace="default", propagation="Orphan")
    assert _read(emulator, "owner")["metadata"]["finalizers"] == ["x/hold", "orphan"]
    assert _read(emulator, "child")["metadata"]["ownerReferences"]  # the collector has not come round yet
    await wait_for(lambda: _read(emulator, "child")["metadata"].get("ownerReferences") is None)
    assert _read(emulator, "owner")["metadata"]["finalizers"] == ["x/hold"]
    emulator.patch_object("v1/configmaps", "owner", {"metadata": {"finalizers": None}}, namespace="default")
    assert _read(emulator, "owner") is None
    emulator.garbage_collector.drain()
    assert _read(emulator, "child") is not None  # not collected later


async def test_a_dependent_whose_owner_does_not_exist_is_collected_and_a_live_owner_keeps_it(emulator):
    # "Owners and Dependents": an owner reference names its owner by uid; a dependent whose owners are all absent is
    # garbage, also when it is created so (a dangling reference). One that still has a live owner only loses the
    # reference to the absent one.
    owner = emulator.create_object("v1/configmaps", {"metadata": {"name": "owner"}}, namespace="default")
    ghost = {**owner, "metadata": {**owner["metadata"], "name": "ghost", "uid": "00000000-dead-4000-8000-000000000000"}}
    emulator.create_object("v1/configmaps", _owned("dangling", ghost, block=True), "default")
    both = _owned("both", owner, block=True)
    both["metadata"]["ownerReferences"] += _owned("x", ghost, block=True)["metadata"]["ownerReferences"]
    emulator.create_object("v1/configmaps", both, "default")
    assert _read(emulator, "dangling") is not None  # created: the collector looks at it later
    await wait_for(lambda: _read(emulator, "dangling") is None)
    await wait_for(lambda: len(_read(emulator, "both")["metadata"]["ownerReferences"]) == 1)
    assert _read(emulator, "both")["metadata"]["ownerReferences"][0]["uid"] == owner["metadata"]["uid"]


async def test_an_owner_recreated_under_the_same_name_does_not_inherit_the_dependents_of_the_old_one(emulator):
    # "Owners and Dependents": a reference names the owner's uid, so the dependents of a deleted owner stay garbage
    # when an owner of the same name is created before the collector comes round; the new owner's own stay.
    owner = emulator.create_object("v1/configmaps", {"metadata": {"name": "owner"}}, namespace="default")
    emulator.create_object("v1/configmaps", _owned("old-child", owner, block=True), "default")
    with emulator.garbage_collector.paused():
        emulator.delete_object("v1/configmaps", "owner", namespace="default")
        again = emulator.create_object("v1/configmaps", {"metadata": {"name": "owner"}}, namespace="default")
        emulator.create_object("v1/configmaps", _owned("new-child", again, block=True), "default")
    await wait_for(lambda: _read(emulator, "old-child") is None)
    emulator.garbage_collector.drain()
    assert _read(emulator, "owner")["metadata"]["uid"] == again["metadata"]["uid"]
    assert _read(emulator, "new-child") is not None


async def test_a_new_statefulset_adopts_the_orphan_pod_its_selector_matches(emulator, tmp_path):
    # "Use Cascading Deletion": deleting a StatefulSet with --cascade=orphan leaves its pods, and a controller whose
    # selector matches orphan pods adopts them (ControllerRefManager) rather than creating others.
    from livestrat.kube_emulator.kubelet import Kubelet

    async with Kubelet(emulator, workdir=tmp_path) as kubelet:
        emulator.create_object("apps/v1/statefulsets", STATEFULSET, namespace="default")
        await wait_for(lambda: emulator.read_object("v1/pods", "s1-0", namespace="default") is not None)
        pod_uid = emulator.read_object("v1/pods", "s1-0", namespace="default")["metadata"]["uid"]
        emulator.delete_object("apps/v1/statefulsets", "s1", namespace="default", propagation="Orphan")
        await wait_for(lambda: emulator.read_object("apps/v1/statefulsets", "s1", namespace="default") is None)
        orphan = emulator.read_object("v1/pods", "s1-0", namespace="default")
        assert orphan["metadata"]["uid"] == pod_uid and not orphan["metadata"].get("ownerReferences")

        again = emulator.create_object("apps/v1/statefulsets", STATEFULSET, namespace="default")

        def adopted() -> bool:
            pod = emulator.read_object("v1/pods", "s1-0", namespace="default")
            refs = pod["metadata"].get("ownerReferences") or []
            return [(r["uid"], r["controller"]) for r in refs] == [(again["metadata"]["uid"], True)]

        await wait_for(adopted)
        assert emulator.read_object("v1/pods", "s1-0", namespace="default")["metadata"]["uid"] == pod_uid
        assert kubelet.started_pods == ["default/s1-0"]


async def test_a_client_whose_watches_were_cut_off_is_told_410_gone_and_its_relist_misses_what_was_deleted(emulator):
    # Kubernetes documentation, API concepts, "Efficient detection of changes": a server keeps a limited history
    # (etcd 3: the last 5 minutes by default); "When the requested watch operations fail because the historical
    # version of that resource is not available, clients must handle the case by recognizing the status code 410
    # Gone, clearing their local cache, performing a new get or list operation, and starting the watch from the
    # resourceVersion that was returned." The 410 comes as an ERROR event in a watch stream ("Expired", "too old
    # resource version"), and a list shows what exists: a deletion in the gap leaves no trace in it.
    url = f"{str(emulator.url).rstrip('/')}/api/v1/namespaces/default/configmaps"
    cut_off, other = {"User-Agent": "kopf/1.0"}, {"User-Agent": "someone-else/1.0"}
    for name in ("kept", "doomed"):
        emulator.create_object("v1/configmaps", {"metadata": {"name": name}}, namespace="default")
    async with aiohttp.ClientSession(headers=ADMIN_HEADERS) as session:
        async with session.get(url, headers=cut_off) as response:
            listed = await response.json()
        seen = listed["metadata"]["resourceVersion"]
        watch = {"watch": "true", "resourceVersion": seen}
        async with session.get(url, params=watch, headers=cut_off) as stream, WatchGap(emulator, user_agent="kopf/"):
            assert await stream.content.readline() == b""  # the server ended the stream

            resumed = asyncio.ensure_future(session.get(url, params=watch, headers=cut_off))
            async with session.get(url, params=watch, headers=other) as unaffected:
                emulator.delete_object("v1/configmaps", "doomed", namespace="default")
                emulator.create_object("v1/configmaps", {"metadata": {"name": "doomed"}}, namespace="default")
                told = [json.loads(await unaffected.content.readline())["type"] for _ in range(2)]
                assert told == ["DELETED", "ADDED"]  # other clients see everything
            await asyncio.sleep(0.2)
            assert not resumed.done()  # held: the cut-off client hears nothing
        async with await resumed as response:
            error = json.loads(await response.content.readline())
        assert error["type"] == "ERROR" and error["object"]["code"] == 410 and error["object"]["reason"] == "Expired"
        assert error["object"]["message"].startswith(f"too old resource version: {seen} ")

        async with session.get(url, headers=cut_off) as response:  # the relist
            relisted = await response.json()
        names = {item["metadata"]["name"]: item["metadata"]["uid"] for item in relisted["items"]}
        before = {item["metadata"]["name"]: item["metadata"]["uid"] for item in listed["items"]}
        assert names.keys() == before.keys() and names["doomed"] != before["doomed"]  # no DELETED: a new uid
        params = {"watch": "true", "resourceVersion": relisted["metadata"]["resourceVersion"]}
        async with session.get(url, params=params, headers=cut_off) as stream:
            emulator.delete_object("v1/configmaps", "kept", namespace="default")
            assert json.loads(await stream.content.readline())["type"] == "DELETED"  # watching again


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


async def test_the_core_groups_discovery_is_named_v1_so_kubectl_finds_built_in_kinds(emulator):
    # The API server's /api/v1 is an APIResourceList whose groupVersion is "v1" (no group, no slash).
    response = await emulator.get("/api/v1")
    listed = await response.json()
    assert listed["groupVersion"] == "v1"
    assert "configmaps" in {r["name"] for r in listed["resources"]}
