"""The emulator authenticates and authorizes as an API server does, checked against the documentation and source.

Sources: kubernetes.io reference/access-authn-authz/authentication ("Service account tokens", "Anonymous requests"),
service-accounts-admin ("Bound service account tokens", "ServiceAccount admission controller"), rbac
("Referring to resources", "Referring to subjects", "Default roles and role bindings"),
validating-admission-policy ("Matching requests: matchConditions", "Variable composition"); tasks
configure-service-account ("the API credentials are automatically revoked ... 60 seconds after the
.metadata.deletionTimestamp"); and Kubernetes' source for exact texts: pkg/serviceaccount/claims.go,
apiserver endpoints/handlers/responsewriters/errors.go (``forbiddenMessage``), apierrors ``NewForbidden`` and
``NewUnauthorized``, plugin/pkg/admission/serviceaccount/admission.go.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import aiohttp
import kmock
import pytest

from livestrat.kube_emulator import pod_logs
from livestrat.kube_emulator.authn import (
    ADMIN_TOKEN,
    CREDENTIAL_ID_KEY,
    NODE_NAME_KEY,
    NODE_UID_KEY,
    POD_NAME_KEY,
    POD_UID_KEY,
    UNAUTHORIZED_BODY,
    Unauthorized,
)
from livestrat.kube_emulator.emulator import KubernetesEmulator
from livestrat.kube_emulator.kubelet import Container, Kubelet
from tests.support.kube import LIVESTRATEGIES, call, wait_for

SA = "v1/serviceaccounts"
PODS = "v1/pods"
ROLES = "rbac.authorization.k8s.io/v1/roles"
ROLE_BINDINGS = "rbac.authorization.k8s.io/v1/rolebindings"
CLUSTER_ROLES = "rbac.authorization.k8s.io/v1/clusterroles"
CLUSTER_ROLE_BINDINGS = "rbac.authorization.k8s.io/v1/clusterrolebindings"
POLICIES = "admissionregistration.k8s.io/v1/validatingadmissionpolicies"
POLICY_BINDINGS = "admissionregistration.k8s.io/v1/validatingadmissionpolicybindings"
STATUS_URL = "/apis/livestrat.io/v1alpha1/namespaces/desk/livestrategies/{name}/status"


@pytest.fixture
def desk(emulator: KubernetesEmulator) -> KubernetesEmulator:
    """Namespace ``desk``: LiveStrategies s1 and s2, a ServiceAccount ``runner`` whose Role may get and patch the
    status of s1 only (resourceNames), and pod ``s1-0`` running as it on node ``node-1``."""
    emulator.add_namespace("desk")
    emulator.create_object("v1/nodes", {"metadata": {"name": "node-1"}})
    for name in ("s1", "s2"):
        emulator.create_object(LIVESTRATEGIES, {"metadata": {"name": name}, "spec": {"replicas": 1}}, namespace="desk")
    emulator.create_object(SA, {"metadata": {"name": "runner"}}, namespace="desk")
    rule = {"apiGroups": ["livestrat.io"], "resources": ["livestrategies/status"], "resourceNames": ["s1"]}
    emulator.create_object(
        ROLES, {"metadata": {"name": "s1-status"}, "rules": [{**rule, "verbs": ["get", "patch"]}]}, namespace="desk"
    )
    emulator.create_object(
        ROLE_BINDINGS,
        {
            "metadata": {"name": "s1-status"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "s1-status"},
            "subjects": [{"kind": "ServiceAccount", "name": "runner"}],  # namespace: the RoleBinding's
        },
        namespace="desk",
    )
    pod = {
        "metadata": {"name": "s1-0"},
        "spec": {"serviceAccountName": "runner", "nodeName": "node-1", "containers": [{"name": "c", "image": "i"}]},
    }
    emulator.create_object(PODS, pod, namespace="desk")
    return emulator


# ------------------------------------------------------------------------------------------ authentication


async def test_a_pod_bound_token_is_the_service_account_with_its_pod_and_node_in_extra(desk):
    # authentication: "Service accounts authenticate with the username system:serviceaccount:(NAMESPACE):(SERVICEACCOUNT),
    # and are assigned to the groups system:serviceaccounts and system:serviceaccounts:(NAMESPACE)" (and every
    # authenticated user to system:authenticated); the uid is the ServiceAccount's; a pod-bound token adds its pod
    # and node and the token's credential id to extra (ServiceAccountInfo.UserInfo).
    token = desk.issue_token("desk", "runner", pod="s1-0")
    user = desk.tokens.authenticate(f"Bearer {token}")
    account = desk.read_object(SA, "runner", namespace="desk")
    pod = desk.read_object(PODS, "s1-0", namespace="desk")
    node = desk.read_object("v1/nodes", "node-1")
    assert user.username == "system:serviceaccount:desk:runner"
    assert user.uid == account["metadata"]["uid"]
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:desk", "system:authenticated")
    assert user.extra[POD_NAME_KEY] == ("s1-0",) and user.extra[POD_UID_KEY] == (pod["metadata"]["uid"],)
    assert user.extra[NODE_NAME_KEY] == ("node-1",) and user.extra[NODE_UID_KEY] == (node["metadata"]["uid"],)
    assert user.extra[CREDENTIAL_ID_KEY][0].startswith("JTI=")
    unbound = desk.tokens.authenticate(f"Bearer {desk.issue_token('desk', 'runner')}")
    assert set(unbound.extra) == {CREDENTIAL_ID_KEY}  # no pod, no node
    assert desk.tokens.authenticate(f"Bearer {ADMIN_TOKEN}").groups == ("system:masters", "system:authenticated")


async def test_an_unknown_token_is_refused_401_with_the_api_servers_body(desk):
    # apierrors.NewUnauthorized("Unauthorized") from the authentication filter: no details, the cause only in the log.
    for token in ("nonsense", desk.issue_token("desk", "runner")[:-2] + "xx"):
        status, body = await call(desk, "GET", "/api/v1/namespaces/desk/pods", token=token)
        assert (status, body) == (401, UNAUTHORIZED_BODY)
    assert desk.tokens.refusals[-1] == "invalid bearer token"


async def test_a_token_dies_with_its_service_account_and_does_not_come_back_with_a_new_one(desk):
    # claims.go: the ServiceAccount must exist with the uid of the claim.
    token = desk.issue_token("desk", "runner")
    assert (await call(desk, "GET", STATUS_URL.format(name="s1"), token=token))[0] == 200
    desk.delete_object(SA, "runner", namespace="desk")
    assert (await call(desk, "GET", STATUS_URL.format(name="s1"), token=token))[0] == 401
    desk.create_object(SA, {"metadata": {"name": "runner"}}, namespace="desk")
    assert (await call(desk, "GET", STATUS_URL.format(name="s1"), token=token))[0] == 401
    assert desk.tokens.refusals[-1].startswith("service account UID (")


async def test_a_pod_token_stays_valid_one_minute_past_the_pods_deletion_timestamp_and_not_once_it_is_gone(desk):
    # configure-service-account: "the API credentials are automatically revoked when the Pod is deleted, even if
    # finalizers are in place. In particular, the API credentials are revoked 60 seconds beyond the
    # .metadata.deletionTimestamp set on the Pod". claims.go: invalidIfDeletedBefore = now - jwt.DefaultLeeway (1 min);
    # a pod that is gone, or another pod of the same name (uid), invalidates the token at once.
    token = desk.issue_token("desk", "runner", pod="s1-0")
    desk.patch_object(PODS, "s1-0", {"metadata": {"finalizers": ["example.com/hold"]}}, namespace="desk")
    desk.delete_object(PODS, "s1-0", namespace="desk")  # terminating: still there
    deleted = datetime.datetime.strptime(
        desk.read_object(PODS, "s1-0", namespace="desk")["metadata"]["deletionTimestamp"], "%Y-%m-%dT%H:%M:%SZ"
    ).replace(tzinfo=datetime.UTC)
    desk.tokens.now = lambda: deleted + datetime.timedelta(seconds=59)
    assert (await call(desk, "GET", STATUS_URL.format(name="s1"), token=token))[0] == 200
    desk.tokens.now = lambda: deleted + datetime.timedelta(seconds=61)
    assert (await call(desk, "GET", STATUS_URL.format(name="s1"), token=token))[0] == 401
    assert desk.tokens.refusals[-1] == "service account token has been invalidated"
    desk.tokens.now = lambda: deleted
    desk.patch_object(PODS, "s1-0", {"metadata": {"finalizers": None}}, namespace="desk")  # gone
    assert (await call(desk, "GET", STATUS_URL.format(name="s1"), token=token))[0] == 401


async def test_a_service_account_held_by_a_finalizer_stops_authenticating_a_minute_after_its_deletion(desk):
    # The same rule for the ServiceAccount: a finalizer keeps the object, not its tokens (claims.go checks the
    # ServiceAccount's deletionTimestamp against now - 1 min before it looks at the pod).
    token = desk.issue_token("desk", "runner", pod="s1-0")
    desk.patch_object(SA, "runner", {"metadata": {"finalizers": ["example.com/hold"]}}, namespace="desk")
    desk.delete_object(SA, "runner", namespace="desk")
    stamp = desk.read_object(SA, "runner", namespace="desk")["metadata"]["deletionTimestamp"]
    deleted = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    desk.tokens.now = lambda: deleted + datetime.timedelta(seconds=59)
    assert (await call(desk, "GET", STATUS_URL.format(name="s1"), token=token))[0] == 200
    desk.tokens.now = lambda: deleted + datetime.timedelta(seconds=61)
    assert (await call(desk, "GET", STATUS_URL.format(name="s1"), token=token))[0] == 401
    assert desk.tokens.refusals[-1] == "service account desk/runner has been deleted"


async def test_a_token_expires_a_minute_after_its_expiry(desk):
    token = desk.issue_token("desk", "runner", expiration_seconds=600)
    start = datetime.datetime.now(datetime.UTC)
    desk.tokens.now = lambda: start + datetime.timedelta(seconds=600 + 50)
    desk.tokens.authenticate(f"Bearer {token}")  # within go-jose's leeway
    desk.tokens.now = lambda: start + datetime.timedelta(seconds=600 + 70)
    with pytest.raises(Unauthorized, match="service account token has expired"):
        desk.tokens.authenticate(f"Bearer {token}")


async def test_a_request_without_a_token_is_anonymous_and_may_read_only_public_info(desk):
    # authentication, "Anonymous requests": system:anonymous in group system:unauthenticated; rbac "Default roles":
    # system:public-info-viewer (/version, /healthz...) is bound to system:unauthenticated, discovery is not.
    assert (await call(desk, "GET", "/version"))[0] == 200
    status, body = await call(desk, "GET", "/api")
    assert status == 403
    assert body["message"] == 'forbidden: User "system:anonymous" cannot get path "/api"'
    assert body["details"] == {}
    status, body = await call(desk, "GET", "/api/v1/namespaces/desk/pods")
    assert status == 403 and body["reason"] == "Forbidden"
    # kubectl and helm send no token over plain HTTP (client-go): taken as the admin the tests configure them as
    assert (
        desk.tokens.authenticate(None, "kubectl/v1.34.5 (linux/amd64) kubernetes/ebfac05").username
        == "kubernetes-admin"
    )
    assert desk.tokens.authenticate(None, "kopf/1.38").username == "system:anonymous"
    # kube-apiserver's --anonymous-auth=false: 401 instead
    async with KubernetesEmulator(anonymous_auth=False) as strict, kmock.Server(strict):
        assert await call(strict, "GET", "/version") == (401, UNAUTHORIZED_BODY)


# ------------------------------------------------------------------------------------------- authorization


async def test_rbac_lets_a_service_account_patch_only_the_status_its_role_names(desk):
    token = desk.issue_token("desk", "runner", pod="s1-0")
    patch = {"status": {"phase": "Running"}}
    status, _ = await call(desk, "PATCH", STATUS_URL.format(name="s1"), token=token, json=patch)
    assert status == 200
    assert desk.read_object(LIVESTRATEGIES, "s1", namespace="desk")["status"]["phase"] == "Running"
    # another object: resourceNames; the main resource: "livestrategies/status" is not "livestrategies"
    status, body = await call(desk, "PATCH", STATUS_URL.format(name="s2"), token=token, json=patch)
    assert (status, body) == (
        403,
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": 'livestrategies.livestrat.io "s2" is forbidden: User "system:serviceaccount:desk:runner" '
            'cannot patch resource "livestrategies/status" in API group "livestrat.io" in the namespace "desk"',
            "reason": "Forbidden",
            "details": {"name": "s2", "group": "livestrat.io", "kind": "livestrategies"},
            "code": 403,
        },
    )
    status, body = await call(desk, "GET", "/apis/livestrat.io/v1alpha1/namespaces/desk/livestrategies/s1", token=token)
    assert status == 403 and 'cannot get resource "livestrategies" in API group' in body["message"]
    # rbac "Referring to resources": a rule with resourceNames cannot allow list (no name) ...
    status, body = await call(desk, "GET", "/apis/livestrat.io/v1alpha1/namespaces/desk/livestrategies", token=token)
    assert status == 403 and body["message"] == (
        'livestrategies.livestrat.io is forbidden: User "system:serviceaccount:desk:runner" cannot list resource '
        '"livestrategies" in API group "livestrat.io" in the namespace "desk"'
    )
    # ... nor reach into another namespace; cluster-scoped requests say so
    status, body = await call(desk, "GET", "/api/v1/namespaces", token=token)
    assert status == 403 and body["message"].endswith(
        'cannot list resource "namespaces" in API group "" at the cluster scope'
    )
    assert body["details"] == {"kind": "namespaces"}
    # every authenticated user may discover the API (system:discovery)
    assert (await call(desk, "GET", "/apis", token=token))[0] == 200


async def test_rbac_subjects_users_groups_wildcard_subresources_and_a_named_watch(desk):
    token = desk.issue_token("desk", "runner")
    pods = "/api/v1/namespaces/desk/pods"
    assert (await call(desk, "GET", pods, token=token))[0] == 403
    # a ClusterRole bound by a RoleBinding to a Group: granted in that namespace only
    desk.create_object(
        CLUSTER_ROLES,
        {
            "metadata": {"name": "pod-reader"},
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"], "resourceNames": ["s1-0"]}
            ],
        },
    )
    desk.create_object(
        ROLE_BINDINGS,
        {
            "metadata": {"name": "all-sas"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pod-reader"},
            "subjects": [
                {"kind": "Group", "name": "system:serviceaccounts:desk", "apiGroup": "rbac.authorization.k8s.io"}
            ],
        },
        namespace="desk",
    )
    assert (await call(desk, "GET", pods, token=token))[0] == 403  # resourceNames: a plain list has no name
    # rbac: "you can restrict watch/list of a single item with fieldSelector metadata.name=NAME"
    assert (await call(desk, "GET", pods, token=token, fieldSelector="metadata.name=s1-0"))[0] == 200
    assert (
        await call(desk, "GET", "/api/v1/namespaces/default/pods", token=token, fieldSelector="metadata.name=s1-0")
    )[0] == 403
    # "*/status": every resource's status subresource; a ClusterRoleBinding to a User
    desk.create_object(
        CLUSTER_ROLES,
        {
            "metadata": {"name": "statuses"},
            "rules": [{"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["patch"]}],
        },
    )
    desk.create_object(
        CLUSTER_ROLE_BINDINGS,
        {
            "metadata": {"name": "runner-statuses"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "statuses"},
            "subjects": [
                {"kind": "User", "name": "system:serviceaccount:desk:runner", "apiGroup": "rbac.authorization.k8s.io"}
            ],
        },
    )
    assert (await call(desk, "PATCH", STATUS_URL.format(name="s2"), token=token, json={"status": {}}))[0] == 200
    url = "/apis/livestrat.io/v1alpha1/namespaces/desk/livestrategies/s2"
    assert (await call(desk, "PATCH", url, token=token, json={"spec": {"replicas": 0}}))[0] == 403


async def test_a_binding_to_a_missing_role_is_named_in_the_denial(desk):
    # rbac.go: the visitor's errors become the reason "RBAC: ..." (a lister's NotFound names the kind in the singular).
    desk.create_object(
        ROLE_BINDINGS,
        {
            "metadata": {"name": "early"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "not-yet"},
            "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": "desk"}],
        },
        namespace="desk",
    )
    status, body = await call(desk, "GET", "/api/v1/namespaces/desk/secrets", token=desk.issue_token("desk", "runner"))
    assert status == 403
    assert body["message"].endswith(
        'cannot list resource "secrets" in API group "" in the namespace "desk": '
        'RBAC: role.rbac.authorization.k8s.io "not-yet" not found'
    )


# --------------------------------------------------------------------------------- admission: service accounts


async def test_every_namespace_gets_a_default_service_account_and_pods_run_as_it(emulator):
    emulator.add_namespace("fresh")
    assert emulator.read_object(SA, "default", namespace="fresh") is not None
    pod = emulator.create_object(
        PODS, {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}, namespace="fresh"
    )
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "default"
    (volume,) = spec["volumes"]
    assert volume["name"].startswith("kube-api-access-")
    assert volume["projected"]["sources"][0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": volume["name"], "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
    ]


async def test_a_pod_of_a_missing_service_account_is_refused_and_automount_false_mounts_nothing(emulator):
    body = {
        "metadata": {"name": "p"},
        "spec": {"serviceAccountName": "ghost", "containers": [{"name": "c", "image": "i"}]},
    }
    status, answer = await call(emulator, "POST", "/api/v1/namespaces/default/pods", token=ADMIN_TOKEN, json=body)
    assert status == 403 and answer["reason"] == "Forbidden"
    assert answer["message"] == (
        'pods "p" is forbidden: error looking up service account default/ghost: serviceaccount "ghost" not found'
    )
    emulator.create_object(
        SA, {"metadata": {"name": "quiet"}, "automountServiceAccountToken": False}, namespace="default"
    )
    quiet = emulator.create_object(
        PODS, {**body, "spec": {**body["spec"], "serviceAccountName": "quiet"}}, namespace="default"
    )
    assert "volumes" not in quiet["spec"]
    loud = {
        "metadata": {"name": "q"},
        "spec": {**body["spec"], "serviceAccountName": "quiet", "automountServiceAccountToken": True},
    }
    assert emulator.create_object(PODS, loud, namespace="default")["spec"]["volumes"]  # the pod's own word wins


# -------------------------------------------------------------------------------- admission: policies & users


def own_status_policy(failure_policy: str = "Fail", condition: str | None = None) -> list[dict[str, Any]]:
    """A policy narrowing the ServiceAccount ``runner``'s status writes to the LiveStrategy its pod runs."""
    username = "system:serviceaccount:desk:runner"
    return [
        {
            "metadata": {"name": "own-status"},
            "spec": {
                "failurePolicy": failure_policy,
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["livestrat.io"],
                            "apiVersions": ["*"],
                            "operations": ["UPDATE"],
                            "resources": ["livestrategies/status"],
                        }
                    ]
                },
                "matchConditions": [
                    {"name": "runner-only", "expression": condition or f"request.userInfo.username == '{username}'"}
                ],
                "variables": [
                    {"name": "pod", "expression": "request.userInfo.extra['authentication.kubernetes.io/pod-name'][0]"},
                    {"name": "owner", "expression": "variables.pod.substring(0, variables.pod.lastIndexOf('-'))"},
                ],
                "validations": [
                    {
                        "expression": "variables.owner == request.name",
                        "messageExpression": "'pod ' + variables.pod + ' may not write the status of ' + request.name",
                        "reason": "Forbidden",
                    }
                ],
            },
        },
        {"metadata": {"name": "own-status"}, "spec": {"policyName": "own-status", "validationActions": ["Deny"]}},
    ]


def install(emulator: KubernetesEmulator, documents: list[dict[str, Any]]) -> None:
    emulator.create_object(POLICIES, documents[0])
    emulator.create_object(POLICY_BINDINGS, documents[1])


def wide_role(emulator: KubernetesEmulator) -> None:
    """Let ``runner`` patch every status in ``desk``, so that only the policy can stop it."""
    emulator.patch_object(
        ROLES,
        "s1-status",
        {"rules": [{"apiGroups": ["livestrat.io"], "resources": ["livestrategies/status"], "verbs": ["get", "patch"]}]},
        namespace="desk",
    )


async def test_match_conditions_select_the_service_accounts_requests_and_userinfo_reaches_cel(desk):
    # validating-admission-policy "matchConditions": "If ANY matchCondition evaluates to FALSE, the policy is skipped.
    # If ALL matchConditions evaluate to TRUE, the policy is evaluated"; variables: "variables.NAME", each able to
    # use the earlier ones; request.userInfo is the AdmissionRequest's.
    wide_role(desk)
    install(desk, own_status_policy())
    token = desk.issue_token("desk", "runner", pod="s1-0")
    patch = {"status": {"phase": "Running"}}
    assert (await call(desk, "PATCH", STATUS_URL.format(name="s1"), token=token, json=patch))[0] == 200
    status, body = await call(desk, "PATCH", STATUS_URL.format(name="s2"), token=token, json=patch)
    assert status == 403 and body["reason"] == "Forbidden"
    assert body["message"] == (
        "livestrategies.livestrat.io \"s2\" is forbidden: ValidatingAdmissionPolicy 'own-status' with binding "
        "'own-status' denied request: pod s1-0 may not write the status of s2"
    )
    # the admin's request: the condition is false, the policy skipped
    assert (await call(desk, "PATCH", STATUS_URL.format(name="s2"), token=ADMIN_TOKEN, json=patch))[0] == 200


@pytest.mark.parametrize("failure_policy", ["Fail", "Ignore"])
async def test_a_match_condition_that_errors_follows_the_failure_policy_and_a_false_one_wins(desk, failure_policy):
    # "If any matchCondition evaluates to an error (but none are FALSE): If failurePolicy=Fail, reject the request; If
    # failurePolicy=Ignore, the policy is skipped". The refusal: Invalid, 422 (validator.go: an error is a denial
    # without a reason), "expression '...' resulted in error: ..." (cel filter.go).
    wide_role(desk)
    errs = "request.userInfo.extra['no-such-key'][0] == 'x'"
    install(desk, own_status_policy(failure_policy, condition=errs))
    patch = {"status": {"phase": "Running"}}
    status, body = await call(desk, "PATCH", STATUS_URL.format(name="s2"), token=ADMIN_TOKEN, json=patch)
    if failure_policy == "Fail":
        assert status == 422 and body["reason"] == "Invalid"
        assert f"denied request: expression '{errs}' resulted in error: " in body["message"]
    else:
        assert status == 200
    # a false condition beside the erroring one: skipped, whatever the failure policy
    desk.patch_object(
        POLICIES,
        "own-status",
        {"spec": {"matchConditions": [{"name": "errs", "expression": errs}, {"name": "never", "expression": "false"}]}},
    )
    assert (await call(desk, "PATCH", STATUS_URL.format(name="s2"), token=ADMIN_TOKEN, json=patch))[0] == 200


# ----------------------------------------------------------------------------------------- the stand-in kubelet


def statefulset(service_account: str | None) -> dict[str, Any]:
    template_spec: dict[str, Any] = {"containers": [{"name": "strategy", "image": "i"}]}
    if service_account:
        template_spec["serviceAccountName"] = service_account
    return {
        "metadata": {"name": "s1"},
        "spec": {
            "replicas": 1,
            "serviceName": "s1",
            "selector": {"matchLabels": {"app": "s1"}},
            "template": {"metadata": {"labels": {"app": "s1"}}, "spec": template_spec},
        },
    }


async def test_the_statefulset_controller_makes_no_pod_until_its_service_account_exists(desk, tmp_path):
    # The ServiceAccount admission refuses the pod; the StatefulSet controller says so in a FailedCreate event and
    # retries, so the pod comes once the ServiceAccount does.
    desk.delete_object(PODS, "s1-0", namespace="desk")  # the fixture's
    async with Kubelet(desk, workdir=tmp_path) as kubelet:
        desk.create_object("apps/v1/statefulsets", statefulset("later"), namespace="desk")
        events = await wait_for(lambda: desk.list_objects("v1/events", "desk"))
        assert events[0]["reason"] == "FailedCreate" and events[0]["type"] == "Warning"
        assert events[0]["message"] == (
            'create Pod s1-0 in StatefulSet s1 failed error: pods "s1-0" is forbidden: '
            'error looking up service account desk/later: serviceaccount "later" not found'
        )
        assert desk.read_object(PODS, "s1-0", namespace="desk") is None and kubelet.started_pods == []
        await asyncio.sleep(0.2)
        assert len(desk.list_objects("v1/events", "desk")) == 1  # once per distinct refusal
        desk.create_object(SA, {"metadata": {"name": "later"}}, namespace="desk")
        await wait_for(lambda: desk.read_object(PODS, "s1-0", namespace="desk") is not None)
        assert kubelet.started_pods == ["desk/s1-0"]


async def test_a_runtime_pod_gets_a_kubeconfig_with_a_token_bound_to_it_or_none(desk, tmp_path, kubeconfig_path):
    # The kubelet mounts the projected token the ServiceAccount admission added: bound to the pod, as its
    # ServiceAccount; automountServiceAccountToken false: nothing mounted, no credentials.
    kubelet = Kubelet(desk, workdir=tmp_path, kubeconfig=kubeconfig_path)
    desk.delete_object(PODS, "s1-0", namespace="desk")
    pod = desk.create_object(
        PODS,
        {"metadata": {"name": "s1-0"}, "spec": statefulset("runner")["spec"]["template"]["spec"]},
        namespace="desk",
    )
    container = Container(namespace="desk", pod="s1-0", grace=1)
    main = pod["spec"]["containers"][0]
    config = json.loads(kubelet._pod_kubeconfig(container, pod, main, tmp_path / "p").read_text())
    assert config["clusters"][0]["cluster"]["server"] == str(desk.url)
    token = config["users"][0]["user"]["token"]
    volume = next(v["name"] for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api-access-"))
    assert (tmp_path / "p" / volume / "token").read_text() == token
    user = desk.tokens.authenticate(f"Bearer {token}")
    assert user.username == "system:serviceaccount:desk:runner"
    assert user.extra[POD_UID_KEY] == (pod["metadata"]["uid"],)
    assert (await call(desk, "GET", STATUS_URL.format(name="s1"), token=token))[0] == 200

    quiet = statefulset("runner")["spec"]["template"]["spec"] | {"automountServiceAccountToken": False}
    other = desk.create_object(PODS, {"metadata": {"name": "s2-0"}, "spec": quiet}, namespace="desk")
    container = Container(namespace="desk", pod="s2-0", grace=1)
    config = json.loads(
        kubelet._pod_kubeconfig(container, other, other["spec"]["containers"][0], tmp_path / "q").read_text()
    )
    assert config["users"][0]["user"] == {}


async def test_a_service_account_may_grant_only_what_it_holds(desk):
    # rbac "Privilege escalation prevention": "You can only create/update a role if ... you already have all the
    # permissions contained in the role, at the same scope ... or you have been granted explicit permission to perform
    # the escalate verb"; "You can only create/update a role binding if you already have all the permissions contained
    # in the referenced role ... or if you have been authorized to perform the bind verb". Texts: rule.go
    # ConfirmNoEscalation; a binding to a missing role: the role's NotFound (policybased storage).
    writer = {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create"]}
    grant_runner(desk, writer)
    token = desk.issue_token("desk", "runner")
    roles, bindings = (
        "/apis/rbac.authorization.k8s.io/v1/namespaces/desk/roles",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/desk/rolebindings",
    )
    own = {
        "apiGroups": ["livestrat.io"],
        "resources": ["livestrategies/status"],
        "resourceNames": ["s1"],
        "verbs": ["get"],
    }
    assert (await call(desk, "POST", roles, token=token, json={"metadata": {"name": "same"}, "rules": [own]}))[0] == 201
    more = [own, {"apiGroups": ["livestrat.io"], "resources": ["livestrategies"], "verbs": ["get", "patch"]}]
    status, body = await call(desk, "POST", roles, token=token, json={"metadata": {"name": "more"}, "rules": more})
    assert status == 403 and body["reason"] == "Forbidden"
    assert body["message"] == (
        'roles.rbac.authorization.k8s.io "more" is forbidden: user "system:serviceaccount:desk:runner" '
        '(groups=["system:serviceaccounts" "system:serviceaccounts:desk" "system:authenticated"]) is attempting to '
        "grant RBAC permissions not currently held:\n"
        '{APIGroups:["livestrat.io"], Resources:["livestrategies"], Verbs:["get" "patch"]}'
    )
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role"}
    subjects = [{"kind": "ServiceAccount", "name": "default"}]
    binding = {"metadata": {"name": "b"}, "roleRef": {**ref, "name": "same"}, "subjects": subjects}
    assert (await call(desk, "POST", bindings, token=token, json=binding))[0] == 201
    early = {"metadata": {"name": "early"}, "roleRef": {**ref, "name": "not-yet"}, "subjects": subjects}
    status, body = await call(desk, "POST", bindings, token=token, json=early)
    assert (status, body["message"]) == (404, 'roles.rbac.authorization.k8s.io "not-yet" not found')
    # the escalate verb lifts the check
    escalate = {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]}
    grant_runner(desk, escalate)
    assert (await call(desk, "POST", roles, token=token, json={"metadata": {"name": "more"}, "rules": more}))[0] == 201


async def test_a_self_subject_review_answers_who_the_caller_is_and_stores_nothing(desk):
    # reference/kubernetes-api/authentication-resources/self-subject-review-v1: create only; the status holds the
    # user info of the request; every authenticated user may create one (system:basic-user).
    token = desk.issue_token("desk", "runner", pod="s1-0")
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    url = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
    status, body = await call(desk, "POST", url, token=token, json=review)
    assert status == 201 and body["kind"] == "SelfSubjectReview"
    user = body["status"]["userInfo"]
    assert user["username"] == "system:serviceaccount:desk:runner"
    assert "system:serviceaccounts:desk" in user["groups"] and user["extra"][POD_NAME_KEY] == ["s1-0"]
    assert (await call(desk, "GET", url, token=token))[0] == 403  # only create is granted (and served)
    assert (await call(desk, "POST", url, json=review))[0] in (401, 403)  # anonymous: not an authenticated user


# ------------------------------------------------------------------------------- concurrent requests, each its own
# aiohttp serves each request in its own task; one suspended at an await (a user reaction, a watch, a followed log)
# lets the others run. The API server judges every request as its own user, with its own subresource and
# fieldValidation, whatever else it serves meanwhile (the request's context.Context in the apiserver's handlers).

ROLES_URL = "/apis/rbac.authorization.k8s.io/v1/namespaces/desk/roles"


def grant_runner(desk, rule: dict) -> None:
    """One more rule in the Role runner holds (``s1-status`` in ``desk``)."""
    desk.patch_object(
        ROLES,
        "s1-status",
        {"rules": [*desk.read_object(ROLES, "s1-status", namespace="desk")["rules"], rule]},
        namespace="desk",
    )


ROLE_WRITER = {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["create"]}
MORE = [{"apiGroups": ["livestrat.io"], "resources": ["livestrategies"], "verbs": ["get", "patch"]}]  # not runner's


def hold(emulator: KubernetesEmulator, method: kmock.method, resource: str) -> tuple[asyncio.Event, asyncio.Event]:
    """Hold the next ``method`` request on ``resource`` at an await inside the emulator's serving of it (a user
    reaction of kmock's DSL that answers nothing, as a test's reaction or a slow webhook holds it), then let it through
    to the emulation. (held: it waits there; release: let it go on)"""
    held, release = asyncio.Event(), asyncio.Event()

    async def wait() -> None:  # None: matched, nothing to answer with; the emulation serves the request
        held.set()
        await release.wait()

    emulator[method, kmock.resource(resource)] << wait
    return held, release


async def while_another_request_is_served(
    emulator: KubernetesEmulator, held: asyncio.Event, release: asyncio.Event, request: Awaitable[Any]
) -> Any:
    """``request``, held at its await while the admin's request is served to its end; then its answer."""
    answer = asyncio.ensure_future(request)
    await held.wait()
    assert (await call(emulator, "GET", "/api/v1/namespaces/desk/pods", token=ADMIN_TOKEN))[0] == 200
    release.set()
    return await answer


async def test_a_role_written_by_a_user_without_escalate_is_refused_while_another_users_request_finishes_meanwhile(
    desk,
):
    # rbac "Privilege escalation prevention": the grant is checked against the permissions of the user writing the
    # role, not of whoever else the API server serves at the time.
    grant_runner(desk, ROLE_WRITER)
    token = desk.issue_token("desk", "runner")
    held, release = hold(desk, kmock.method.POST, ROLES)
    role = {"metadata": {"name": "more"}, "rules": MORE}
    status, body = await while_another_request_is_served(
        desk, held, release, call(desk, "POST", ROLES_URL, token=token, json=role)
    )
    assert held.is_set() and (status, body.get("reason")) == (403, "Forbidden"), body
    assert 'user "system:serviceaccount:desk:runner" ' in body["message"]
    assert "is attempting to grant RBAC permissions not currently held" in body["message"]
    assert desk.read_object(ROLES, "more", namespace="desk") is None


async def test_an_admission_policy_sees_the_user_of_its_request_while_another_users_request_finishes_meanwhile(desk):
    # validating-admission-policy: request.userInfo is the AdmissionRequest's, the user who sent this request.
    wide_role(desk)
    install(desk, own_status_policy())
    token = desk.issue_token("desk", "runner", pod="s1-0")
    held, release = hold(desk, kmock.method.PATCH, LIVESTRATEGIES)
    patch = {"status": {"phase": "Running"}}
    status, body = await while_another_request_is_served(
        desk, held, release, call(desk, "PATCH", STATUS_URL.format(name="s2"), token=token, json=patch)
    )
    assert held.is_set() and (status, body.get("reason")) == (403, "Forbidden"), body
    assert body["message"].endswith("denied request: pod s1-0 may not write the status of s2")
    assert "status" not in desk.read_object(LIVESTRATEGIES, "s2", namespace="desk")


def labelled_pods_policy() -> list[dict[str, Any]]:
    """A policy refusing pods without the label ``app`` (on pods, not on their subresources)."""
    return [
        {
            "metadata": {"name": "labelled-pods"},
            "spec": {
                "matchConstraints": {
                    "resourceRules": [
                        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}
                    ]
                },
                "validations": [
                    {
                        "expression": "has(object.metadata.labels) && 'app' in object.metadata.labels",
                        "message": "every pod needs the label app",
                        "reason": "Forbidden",
                    }
                ],
            },
        },
        {"metadata": {"name": "labelled-pods"}, "spec": {"policyName": "labelled-pods", "validationActions": ["Deny"]}},
    ]


class OneLine:
    """A container's log for ``pods/NAME/log``: one line, the container running until told otherwise."""

    def __init__(self, path: Path) -> None:
        self.path, self.running = path, True
        path.write_bytes(pod_logs.cri_line(datetime.datetime.now(datetime.UTC), "stdout", "started"))

    def container_log(self, namespace: str, pod: str, container: str, previous: bool) -> pod_logs.ContainerLog | None:
        return None if previous else pod_logs.ContainerLog(self.path, running=self.running)


async def test_the_tests_and_the_stand_in_controllers_write_as_the_admin_while_a_users_log_is_followed(desk, tmp_path):
    # The test-side helpers and the stand-in controllers (kubelet.py) write out of band as the admin, to the main
    # resource: also while a request of another user to another subresource is suspended, here runner following a
    # pod's log (pods/log). The admin's Role is not judged by runner's permissions, and a pod the admin creates is a
    # pods CREATE for admission (a policy on pods applies), not a pods/log one.
    log_reader = {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}
    grant_runner(desk, log_reader)
    install(desk, labelled_pods_policy())
    desk.patch_object(
        PODS,
        "s1-0",
        {"status": {"containerStatuses": [{"name": "c", "state": {"running": {}}}]}},
        namespace="desk",
        subresource="status",
    )
    desk.log_source = log = OneLine(tmp_path / "c.log")
    token = desk.issue_token("desk", "runner")
    url = str(desk.url).rstrip("/") + "/api/v1/namespaces/desk/pods/s1-0/log"
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http, http.get(url, params={"follow": "true"}, headers=headers) as answer:
        assert answer.status == 200  # its headers are sent: the emulator follows the log, awaiting new lines
        assert desk.create_object(ROLES, {"metadata": {"name": "more"}, "rules": MORE}, namespace="desk")
        unlabelled = {"metadata": {"name": "bare"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
        with pytest.raises(kmock.KubernetesError) as refused:
            desk.create_object(PODS, unlabelled, namespace="desk")
        assert refused.value.status == 403 and "every pod needs the label app" in str(refused.value.message)
        log.running = False
        assert await answer.text() == "started\n"
