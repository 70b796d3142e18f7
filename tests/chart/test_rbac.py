"""The operator's RBAC is least privilege: namespaced Roles when it watches named
namespaces (plus read-only access to Namespace objects and CRDs, which it watches
cluster-wide), a full ClusterRole only when it watches them all, and enough to grant each
strategy pod its own narrow Role. That it grants exactly the calls the operator makes is
test_rbac_matches_operator.py."""

from __future__ import annotations

import pytest

from livestrat.kube_emulator.rbac import Grants, Request, triples
from tests.support.helm import RELEASE, RELEASE_NAMESPACE, find, render

# Every test here runs a process (helm, kubectl, livestrat): the slow tier (tests/support/tiers.py).
pytestmark = pytest.mark.slow

WATCHED = ["trading-paper", "trading-live"]
DANGEROUS_VERBS = {"*", "escalate", "bind", "impersonate", "deletecollection"}


def grants(docs: list[dict]) -> Grants:
    return Grants.for_service_account(docs, RELEASE_NAMESPACE, RELEASE)


def test_watching_all_namespaces_uses_one_cluster_role_and_no_roles():
    docs = render()
    (cluster_role,) = find(docs, "ClusterRole")
    assert not cluster_role["metadata"]["name"].endswith("-read")
    (binding,) = find(docs, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": RELEASE_NAMESPACE}]
    assert not find(docs, "Role") and not find(docs, "RoleBinding")


def test_watching_named_namespaces_uses_one_role_per_namespace_and_only_reads_cluster_wide():
    docs = render(None, {"watchNamespaces": WATCHED})
    assert sorted(r["metadata"]["namespace"] for r in find(docs, "Role")) == sorted(WATCHED)
    assert sorted(b["metadata"]["namespace"] for b in find(docs, "RoleBinding")) == sorted(WATCHED)
    access = grants(docs)
    assert set(access.namespaced_rules) == set(WATCHED)
    # Cluster-wide only what the operator reads across namespaces: Namespace objects (the
    # kill switch), Nodes (drains: DisruptionBlocked) and CRDs (kopf), never anything namespaced.
    assert triples(access.cluster_rules) == {
        ("list", "", "namespaces"),
        ("watch", "", "namespaces"),
        ("list", "apiextensions.k8s.io", "customresourcedefinitions"),
        ("watch", "apiextensions.k8s.io", "customresourcedefinitions"),
        ("list", "", "nodes"),
        ("watch", "", "nodes"),
    }
    (cluster_role,) = find(docs, "ClusterRole")
    assert cluster_role["metadata"]["name"].endswith("-read")
    # Nothing in a namespace it does not watch, nor in its own.
    assert not access.allows(Request("list", "livestrat.io", "livestrategies", "default"))
    assert not access.allows(Request("get", "", "secrets", RELEASE_NAMESPACE, "x"))
    assert access.allows(Request("get", "", "secrets", WATCHED[0], "x"))


def test_watched_namespaces_get_the_same_rules_as_a_cluster_wide_install():
    cluster = grants(render()).cluster_rules
    named = grants(render(None, {"watchNamespaces": WATCHED}))
    for ns in WATCHED:
        assert triples(named.namespaced_rules[ns]) | triples(named.cluster_rules) == triples(cluster)


def test_nobody_can_change_a_namespace_through_the_operator():
    for values in ({}, {"watchNamespaces": WATCHED}):
        access = grants(render(None, values))
        for verb in ("patch", "update", "delete", "create"):
            assert not access.allows(Request(verb, "", "namespaces", None, "trading-live"))


@pytest.mark.parametrize("values", [{}, {"watchNamespaces": WATCHED}, {"replicaCount": 2}], ids=["all", "named", "ha"])
def test_no_wildcards_no_escalation_and_secrets_are_only_read_one_by_one(values):
    access = grants(render(None, values))
    for verb, group, resource in triples(access.all_rules()):
        assert verb not in DANGEROUS_VERBS, (verb, group, resource)
        assert "*" not in (group, resource), (verb, group, resource)
        if resource == "secrets":
            assert verb == "get", "list/watch on secrets would hand the operator every credential"
        assert not (group == "rbac.authorization.k8s.io" and resource in {"clusterroles", "clusterrolebindings"})


def test_peering_permissions_only_with_two_replicas():
    def peering(docs: list[dict]) -> set:
        return {t for t in triples(grants(docs).all_rules()) if t[1] == "kopf.dev"}

    assert peering(render()) == set()
    assert peering(render(None, {"watchNamespaces": WATCHED})) == set()
    cluster_peering = {(verb, "kopf.dev", "clusterkopfpeerings") for verb in ("get", "list", "watch", "patch")}
    assert peering(render(None, {"replicaCount": 2})) == cluster_peering
    # one ClusterKopfPeering whatever is watched: no namespace's missing object can pause the operator
    assert peering(render(None, {"replicaCount": 2, "watchNamespaces": WATCHED})) == cluster_peering
