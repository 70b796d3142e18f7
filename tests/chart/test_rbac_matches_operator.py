"""The RBAC the chart grants covers every API call the real operator makes, and nothing more.

The calls are recorded, not listed by hand: the real kopf operator runs against the
Kubernetes API emulator (tests/support/api_calls.py) and every request it sends is turned
into (verb, apiGroup, resource[/subresource]) with its namespace. The chart's Roles,
ClusterRoles and bindings are then evaluated like the API server's RBAC authorizer would
(livestrat/kube_emulator/rbac.py). With watched namespaces, the operator also runs as the chart's own
ServiceAccount, its roles stored in the emulator, whose RBAC refuses live what they do not grant.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import pytest
import yaml

from livestrat.kube_emulator.emulator import kubeconfig
from livestrat.kube_emulator.kubelet import Kubelet
from livestrat.kube_emulator.rbac import Grants, Request, triples
from strategy_operator.settings import OperatorSettings
from tests.support import api_calls
from tests.support.desk import Desk, paper
from tests.support.helm import CHART, RELEASE, RELEASE_NAMESPACE, find, operator_environ, render
from tests.support.kube import wait_for
from tests.support.operator import OperatorThread, fast_settings, is_operator_request

WATCHED = ["desk-a", "desk-b"]
RBAC_KINDS = {
    "ServiceAccount": "v1/serviceaccounts",
    "ClusterRole": "rbac.authorization.k8s.io/v1/clusterroles",
    "ClusterRoleBinding": "rbac.authorization.k8s.io/v1/clusterrolebindings",
    "Role": "rbac.authorization.k8s.io/v1/roles",
    "RoleBinding": "rbac.authorization.k8s.io/v1/rolebindings",
}


def grants(docs: list[dict]) -> Grants:
    return Grants.for_service_account(docs, RELEASE_NAMESPACE, RELEASE)


def read_back_gets(calls: Iterable) -> set:
    """A create that conflicts (the object exists, the watch has not shown it yet) is read back."""
    return {api_calls.ApiCall("get", c.group, c.resource) for c in calls if c.verb == "create"}


async def test_the_chart_grants_exactly_what_the_operator_uses_watching_all_namespaces(operator_api_calls):
    # The recorded flow goes through every feature, kopf peering across the cluster included.
    docs = render(None, {"replicaCount": 2})
    access = grants(docs)
    used = set(operator_api_calls.all)
    needed = used | api_calls.REQUIRED_BEYOND_RECORDED
    for call in sorted(operator_api_calls.cluster | api_calls.REQUIRED_BEYOND_RECORDED):
        assert access.allows(Request(call.verb, call.group, call.resource)), f"not granted: {call}"
    for call in sorted(operator_api_calls.namespaced):
        assert access.allows(Request(call.verb, call.group, call.resource, "any-namespace", "x")), call
    granted = {api_calls.ApiCall(*t) for t in triples(access.all_rules())}
    assert granted - needed - read_back_gets(used) == set(), "granted but never used"


def calls_by_namespace(requests: Iterable) -> set[tuple]:
    """(verb, group, resource, namespace) of the operator's requests; namespace None: cluster scope."""
    found = set()
    for request in requests:
        if not is_operator_request(request) or request.resource is None or request.resource.plural is None:
            continue
        verb = api_calls.verb_of(request)
        if verb is None:
            continue
        resource = request.resource.plural + (f"/{request.subresource}" if request.subresource else "")
        namespace = request.namespace
        if request.resource.plural == "namespaces" and request.name and namespace is None:
            namespace = request.name  # GET /api/v1/namespaces/NAME is "in" NAME for RBAC
        found.add((verb, request.resource.group or "", resource, namespace))
    return found


@pytest.mark.slow  # runs a process: the slow tier (tests/support/tiers.py)
async def test_an_operator_watching_named_namespaces_needs_nothing_its_roles_do_not_grant(
    emulator, kubeconfig_path, tmp_path, monkeypatch
):
    # Installed as the chart installs it: its CRDs, its peering objects, its settings.
    docs = render(None, {"replicaCount": 2, "watchNamespaces": WATCHED, "liveTrading": {"allowedNamespaces": []}})
    for path in sorted((CHART / "crds").glob("kopf-*.yaml")):
        for crd in filter(None, yaml.safe_load_all(path.read_text())):
            emulator.add_crd(crd)
    for namespace in WATCHED:
        emulator.add_namespace(namespace)
    for peering in find(docs, "ClusterKopfPeering"):
        emulator.create_object("kopf.dev/v1/clusterkopfpeerings", peering)
    environ = operator_environ(docs, pod_index=1)
    test_only = fast_settings()  # free ports, short timeouts
    settings = OperatorSettings.model_validate(
        OperatorSettings.from_env(environ).model_dump()
        | {k: getattr(test_only, k) for k in ("metrics_port", "health_port", "stale_after_seconds")}
    )
    assert settings.watch_namespaces == WATCHED and settings.peering

    # The operator logs in as the chart's ServiceAccount, so the emulator's RBAC enforces the chart's roles live
    # (a request they do not grant is a 403 the run would show); the desk (kubectl) stays the admin.
    emulator.add_namespace(RELEASE_NAMESPACE)
    for kind, plural in RBAC_KINDS.items():
        for document in find(docs, kind):
            emulator.create_object(plural, document, namespace=document["metadata"].get("namespace"))
    operator_kubeconfig = tmp_path / "operator-kubeconfig.json"
    token = emulator.issue_token(RELEASE_NAMESPACE, RELEASE)
    operator_kubeconfig.write_text(json.dumps(kubeconfig(str(emulator.url), namespace=RELEASE_NAMESPACE, token=token)))

    since = len(emulator)
    desk = Desk(emulator, kubeconfig_path, WATCHED[0])
    monkeypatch.setenv("KUBECONFIG", str(operator_kubeconfig))
    async with (
        Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kubeconfig_path),
        OperatorThread(settings, name="namespaced"),
    ):
        await desk.apply(paper("a"))
        await wait_for(lambda: desk.phase("a") == "Running", timeout=15)
        desk.push_runtime_status("a", fills=1)
        await desk.scale("a", 0)
        await wait_for(lambda: desk.phase("a") == "Halted", timeout=15)
        await desk.scale("a", 1)
        await wait_for(lambda: desk.phase("a") == "Running", timeout=15)
        desk.set_namespace_annotation("livestrat.io/kill-switch", "true")
        await wait_for(lambda: desk.phase("a") == "Halted", timeout=15)
        desk.set_namespace_annotation("livestrat.io/kill-switch", None)
        await desk.delete("a")

    access = grants(docs)
    calls = calls_by_namespace(list(emulator)[since:])
    assert calls, "no operator request recorded"
    assert any(r.headers.get("Authorization") == f"Bearer {token}" for r in list(emulator)[since:])
    operator_user = f'User "system:serviceaccount:{RELEASE_NAMESPACE}:{RELEASE}"'
    assert [message for message in emulator.forbidden if operator_user in message] == []
    assert emulator.tokens.refusals == []
    not_granted = sorted(
        (verb, group, resource, namespace or "<cluster>")
        for verb, group, resource, namespace in calls
        if not access.allows(Request(verb, group, resource, namespace, "x"))
    )
    assert not_granted == []
    # Inside the watched namespaces only: no Role anywhere else, nothing namespaced cluster-wide.
    assert {ns for *_, ns in calls if ns is not None} <= set(WATCHED)
    cluster_calls = {(verb, group, resource) for verb, group, resource, ns in calls if ns is None}
    assert cluster_calls <= {
        ("list", "", "namespaces"),
        ("watch", "", "namespaces"),
        ("list", "apiextensions.k8s.io", "customresourcedefinitions"),
        ("watch", "apiextensions.k8s.io", "customresourcedefinitions"),
        # kopf's keep-alives in the one ClusterKopfPeering, and the operator's look at it (peering.py)
        *{(verb, "kopf.dev", "clusterkopfpeerings") for verb in ("get", "list", "watch", "patch")},
        ("list", "", "nodes"),
        ("watch", "", "nodes"),
    }
    assert access.cluster_rules and triples(access.cluster_rules) == cluster_calls
