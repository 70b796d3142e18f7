"""The API calls the operator makes: exactly what its RBAC (the Helm chart's) must grant."""

from __future__ import annotations

from tests.support.api_calls import REQUIRED_BEYOND_RECORDED, ApiCall, OperatorApiUse, as_rules

LS, RBAC, APPS, CRDS, KOPF = "livestrat.io", "rbac.authorization.k8s.io", "apps", "apiextensions.k8s.io", "kopf.dev"


def calls(group: str, resource: str, *verbs: str) -> set[ApiCall]:
    return {ApiCall(verb, group, resource) for verb in verbs}


WATCHED = ("list", "watch")
EXPECTED = (
    # its own resource: kopf's watch, finalizer and annotations; the operator's status; the kill switch's scale;
    # read before a halt or a pod's deletion is acted on (the daemon's copy may be of one deleted meanwhile)
    calls(LS, "livestrategies", *WATCHED, "get", "create", "patch", "delete")  # create, delete: paper twins
    | calls(LS, "livestrategies/status", "patch")
    | calls(LS, "livestrategies/scale", "patch")
    # RiskBudgets: kopf's watch and finalizer (its daemon's; a deletion releases the members the budget halts); the
    # operator writes their status (their breach marks members: livestrategies patch); each member's share goes into
    # its status.budget (livestrategies/status patch)
    | calls(LS, "riskbudgets", *WATCHED, "patch")
    | calls(LS, "riskbudgets/status", "patch")
    # the children, watched (label-selected) and kept as desired
    | calls("", "configmaps", *WATCHED, "create", "patch")
    | calls("", "serviceaccounts", *WATCHED, "create", "patch", "delete")
    # the headless Service of a strategy made before issue 15: deleted
    | calls("", "services", *WATCHED, "delete")
    # a strategy's own Role and RoleBinding: deleted once its pod shares the namespace's identity
    | calls(RBAC, "roles", *WATCHED, "create", "patch", "delete")
    | calls(RBAC, "rolebindings", *WATCHED, "create", "patch", "delete")
    # what the pod reports with, read from the API when a deletion releases it (pod-identity finalizer), and the
    # namespace's shared identity, read before a pod needs it
    | calls("", "serviceaccounts", "get")
    | calls(RBAC, "roles", "get")
    | calls(RBAC, "rolebindings", "get")
    | calls(APPS, "statefulsets", *WATCHED, "create", "patch")
    | calls("policy", "poddisruptionbudgets", *WATCHED, "create", "patch")
    # pods: watched; rogue ones deleted; re-listed while waiting for one to exit
    | calls("", "pods", *WATCHED, "delete")
    # Secrets: only whether the referenced ones (and keys) exist, before a pod starts
    | calls("", "secrets", "get")
    # the kill switch (namespace annotations; get: one the watch shows engaged is confirmed, observe.kill_switch),
    # kopf's CRD scanning, events, peering
    | calls("", "namespaces", *WATCHED, "get")
    | calls("", "nodes", *WATCHED)
    | calls(CRDS, "customresourcedefinitions", *WATCHED)
    | calls("", "events", "create")
    | calls(KOPF, "clusterkopfpeerings", *WATCHED, "get", "patch")  # get: whether this replica acts
)
# A child created moments before its watch event arrives is read back after a 409; the StatefulSet and ConfigMap are
# read before a halt or a pod deletion is acted on, a child before its name is declared taken.
MAY_ALSO = {
    ApiCall("get", group, plural)
    for group, plural in (
        ("", "configmaps"),
        ("", "serviceaccounts"),
        (RBAC, "roles"),
        (RBAC, "rolebindings"),
        (APPS, "statefulsets"),
        ("policy", "poddisruptionbudgets"),
    )
}


async def test_the_operator_uses_exactly_these_api_calls(operator_api_calls: OperatorApiUse):
    used = set(operator_api_calls.all)
    assert EXPECTED <= used <= EXPECTED | MAY_ALSO, sorted(used ^ EXPECTED)
    # inside a namespace only: Secrets are read one by one, pods deleted one by one
    assert ApiCall("get", "", "secrets") not in operator_api_calls.cluster
    assert ApiCall("delete", "", "pods") not in operator_api_calls.cluster
    rules = as_rules(used | REQUIRED_BEYOND_RECORDED)
    assert {"apiGroups": [LS], "resources": ["livestrategies/finalizers"], "verbs": ["update"]} in rules
