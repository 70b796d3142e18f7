"""Every Kubernetes kind the operator touches, in one table: its API path, and whether it is watched.

The API client finds a kind's URL here, the handlers register one watch cache (a kopf index)
per watched kind here, and the reconciler reads a strategy's children from those caches by
the same names.
"""

from __future__ import annotations

from dataclasses import dataclass

from livestrat.api import budget_resource
from livestrat.api.resource import GROUP, KIND, PLURAL, VERSION


@dataclass(frozen=True)
class Kind:
    kind: str
    group: str  # "" for the core API
    version: str
    plural: str
    watched: bool = False  # cached per strategy (selected by the strategy label)
    namespaced: bool = True

    @property
    def prefix(self) -> str:
        """The URL prefix of its API group: ``/api/v1`` or ``/apis/GROUP/VERSION``."""
        return f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"

    @property
    def index(self) -> str:
        """The id of its watch cache (a kopf index)."""
        return f"livestrat_{self.plural}"


KINDS: dict[str, Kind] = {
    kind.kind: kind
    for kind in (
        Kind("ConfigMap", "", "v1", "configmaps", watched=True),
        Kind("ServiceAccount", "", "v1", "serviceaccounts", watched=True),
        Kind("Service", "", "v1", "services", watched=True),
        Kind("Pod", "", "v1", "pods", watched=True),
        Kind("Role", "rbac.authorization.k8s.io", "v1", "roles", watched=True),
        Kind("RoleBinding", "rbac.authorization.k8s.io", "v1", "rolebindings", watched=True),
        Kind("StatefulSet", "apps", "v1", "statefulsets", watched=True),
        Kind("PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets", watched=True),
        Kind("Secret", "", "v1", "secrets"),  # read only when a pod is about to need it
        Kind(KIND, GROUP, VERSION, PLURAL),  # watched by kopf itself (its handlers)
        Kind(budget_resource.KIND, GROUP, VERSION, budget_resource.PLURAL),  # watched by kopf itself too
        # a namespace's kill switch, confirmed when the watch cache shows it engaged (observe.kill_switch)
        Kind("Namespace", "", "v1", "namespaces", namespaced=False),
        # kopf's peering object (with LIVESTRAT_PEERING): read to tell whether this replica acts (peering.py)
        Kind("ClusterKopfPeering", "kopf.dev", "v1", "clusterkopfpeerings", namespaced=False),
    )
}
WATCHED = [kind for kind in KINDS.values() if kind.watched]
NAMESPACES_INDEX = "livestrat_namespaces"  # the namespaces whose kill switch is engaged
NODES_INDEX = "livestrat_nodes"  # the nodes being drained (cordoned, or marked for removal), and why
ACCOUNTS_INDEX = "livestrat_accounts"  # the live strategies, by (namespace, venue account): claims
MEMBERS_INDEX = "livestrat_budget_members"  # (namespace, LiveStrategy) -> what a RiskBudget reads of it
BUDGETS_INDEX = "livestrat_budgets"  # (namespace, member) -> the RiskBudgets naming it in spec.members
TWINS_INDEX = "livestrat_twins"  # (namespace, live strategy) -> its paper twin (spec.twin), without its status
BUDGET_HALTS_INDEX = "livestrat_budget_halts"  # (namespace, RiskBudget) -> the LiveStrategies its breach marks
