"""The operator's RBAC is least privilege: namespaced Roles when it watches named
namespaces, a ClusterRole only when it watches them all, nothing it does not use, and
enough to grant each strategy pod its own narrow Role."""

from __future__ import annotations

import pytest

from tests.support.helm import RELEASE, RELEASE_NAMESPACE, find, render
from tests.support.rbac import Grants, Request, triples

WATCHED = ["trading-paper", "trading-live"]
# What the operator gives each strategy pod (ARCHITECTURE: "a Role that can only get/patch
# the status of this one LiveStrategy"); Kubernetes lets it create that Role only if it
# holds these permissions itself.
STRATEGY_ROLE_RULES = [
    {
        "apiGroups": ["livestrat.io"],
        "resources": ["livestrategies/status"],
        "verbs": ["get", "patch"],
        "resourceNames": ["s1"],
    }
]
DANGEROUS_VERBS = {"*", "escalate", "bind", "impersonate", "deletecollection"}


def grants(docs: list[dict]) -> Grants:
    return Grants.for_service_account(docs, RELEASE_NAMESPACE, RELEASE)


def test_watching_all_namespaces_uses_one_cluster_role_and_no_roles():
    docs = render()
    assert len(find(docs, "ClusterRole")) == 1
    (binding,) = find(docs, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": RELEASE_NAMESPACE}]
    assert not find(docs, "Role") and not find(docs, "RoleBinding")


def test_watching_named_namespaces_uses_one_role_per_namespace_and_nothing_cluster_wide():
    docs = render(None, {"watchNamespaces": WATCHED})
    assert not find(docs, "ClusterRole") and not find(docs, "ClusterRoleBinding")
    assert sorted(r["metadata"]["namespace"] for r in find(docs, "Role")) == sorted(WATCHED)
    assert sorted(b["metadata"]["namespace"] for b in find(docs, "RoleBinding")) == sorted(WATCHED)
    access = grants(docs)
    assert access.cluster_rules == []
    assert set(access.namespaced_rules) == set(WATCHED)
    # Nothing in a namespace it does not watch, nor in its own.
    assert not access.allows(Request("get", "livestrat.io", "livestrategies", "default"))
    assert not access.allows(Request("get", "", "secrets", RELEASE_NAMESPACE, "x"))


def test_kill_switch_reads_only_the_watched_namespace_objects():
    access = grants(render(None, {"watchNamespaces": WATCHED}))
    for ns in WATCHED:
        assert access.allows(Request("get", "", "namespaces", ns, ns))
    assert not access.allows(Request("get", "", "namespaces", "trading-live", "kube-system"))
    assert not access.allows(Request("list", "", "namespaces"))


@pytest.mark.parametrize("values", [{}, {"watchNamespaces": WATCHED}, {"replicaCount": 2}], ids=["all", "named", "ha"])
def test_no_wildcards_no_escalation_and_secrets_are_only_read_one_by_one(values):
    access = grants(render(None, values))
    for verb, group, resource in triples(access.all_rules()):
        assert verb not in DANGEROUS_VERBS, (verb, group, resource)
        assert "*" not in (group, resource), (verb, group, resource)
        if resource == "secrets":
            assert verb == "get", "list/watch on secrets would hand the operator every credential"
        assert not (group == "rbac.authorization.k8s.io" and resource in {"clusterroles", "clusterrolebindings"})


@pytest.mark.parametrize("values", [{}, {"watchNamespaces": WATCHED}], ids=["all", "named"])
def test_operator_holds_what_it_grants_each_strategy_pod(values):
    access = grants(render(None, values))
    namespace = values.get("watchNamespaces", ["any-namespace"])[0]
    for rule in STRATEGY_ROLE_RULES:
        for verb, group, resource in triples([rule]):
            for name in rule.get("resourceNames", [None]):
                assert access.allows(Request(verb, group, resource, namespace, name)), (verb, resource)
    for resource in ("roles", "rolebindings"):
        assert access.allows(Request("create", "rbac.authorization.k8s.io", resource, namespace))


def test_peering_permissions_only_with_two_replicas():
    def peering(docs: list[dict]) -> set:
        return {t for t in triples(grants(docs).all_rules()) if t[1] == "kopf.dev"}

    assert peering(render()) == set()
    assert peering(render(None, {"watchNamespaces": WATCHED})) == set()
    assert peering(render(None, {"replicaCount": 2})) == {
        ("list", "kopf.dev", "clusterkopfpeerings"),
        ("watch", "kopf.dev", "clusterkopfpeerings"),
        ("patch", "kopf.dev", "clusterkopfpeerings"),
    }
    assert peering(render(None, {"replicaCount": 2, "watchNamespaces": WATCHED})) == {
        ("list", "kopf.dev", "kopfpeerings"),
        ("watch", "kopf.dev", "kopfpeerings"),
        ("patch", "kopf.dev", "kopfpeerings"),
    }
