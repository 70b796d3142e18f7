"""Kubernetes RBAC, evaluated offline: which requests a set of rendered Roles, ClusterRoles
and bindings allows a ServiceAccount to make.

Follows the RBAC authorizer (k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac): a request
(verb, apiGroup, resource[/subresource], namespace, name) is allowed when a rule of a role
bound to the subject matches it. RoleBindings grant only inside their own namespace;
ClusterRoleBindings everywhere. A request on a Namespace object itself (GET
/api/v1/namespaces/NAME) has that namespace as its namespace, so a Role in NAME can allow it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

RBAC_GROUP = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class Request:
    verb: str
    group: str
    resource: str  # "livestrategies" or "livestrategies/status"
    namespace: str | None = None  # None: a cluster-scoped request (or all namespaces)
    name: str | None = None


def _matches(values: Iterable[str], wanted: str) -> bool:
    values = list(values)
    return "*" in values or wanted in values


def rule_allows(rule: dict, request: Request) -> bool:
    if "nonResourceURLs" in rule:
        return False
    return (
        _matches(rule.get("verbs", []), request.verb)
        and _matches(rule.get("apiGroups", []), request.group)
        and _matches(rule.get("resources", []), request.resource)
        and (not rule.get("resourceNames") or request.name in rule["resourceNames"])
    )


@dataclass
class Grants:
    """The roles bound to one subject, from a list of rendered manifests."""

    cluster_rules: list[dict]
    namespaced_rules: dict[str, list[dict]]

    @classmethod
    def for_service_account(cls, docs: list[dict], namespace: str, name: str) -> Grants:
        subject = {"kind": "ServiceAccount", "name": name, "namespace": namespace}
        roles = {(d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in docs if d["kind"] == "Role"}
        cluster_roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ClusterRole"}
        cluster_rules: list[dict] = []
        namespaced: dict[str, list[dict]] = {}
        for binding in docs:
            if binding["kind"] not in {"RoleBinding", "ClusterRoleBinding"}:
                continue
            if subject not in [{**s, "namespace": s.get("namespace", namespace)} for s in binding["subjects"]]:
                continue
            ref = binding["roleRef"]
            assert ref["apiGroup"] == RBAC_GROUP
            if ref["kind"] == "ClusterRole":
                rules = cluster_roles[ref["name"]]["rules"]
            else:
                rules = roles[(binding["metadata"]["namespace"], ref["name"])]["rules"]
            if binding["kind"] == "ClusterRoleBinding":
                cluster_rules += rules
            else:
                namespaced.setdefault(binding["metadata"]["namespace"], []).extend(rules)
        return cls(cluster_rules, namespaced)

    def allows(self, request: Request) -> bool:
        rules = list(self.cluster_rules)
        if request.namespace is not None:
            rules += self.namespaced_rules.get(request.namespace, [])
        return any(rule_allows(rule, request) for rule in rules)

    def all_rules(self) -> list[dict]:
        return self.cluster_rules + [r for rules in self.namespaced_rules.values() for r in rules]


def triples(rules: Iterable[dict]) -> set[tuple[str, str, str]]:
    """Every (verb, apiGroup, resource) a list of rules names."""
    return {
        (verb, group, resource)
        for rule in rules
        for verb in rule.get("verbs", [])
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
    }
