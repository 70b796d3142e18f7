"""``DisruptionBlocked``: a drain is waiting for the desk's decision on this strategy's pod.

The strategy's PodDisruptionBudget (``maxUnavailable: 0``) makes the Eviction API refuse to evict
its pod, so ``kubectl drain``, a node upgrade or the cluster autoscaler retry until someone halts
the strategy or moves the pod. The refused evictions themselves leave no trace the operator can
read; what it can see is their cause: the pod's node cordoned (``kubectl drain`` and node upgrades
mark it unschedulable before they evict) or tainted for removal by the cluster autoscaler
(:func:`strategy_operator.observe.caches.node_drain`). Then the condition is True, with the two
commands that decide, and a Warning event says so once.
"""

from __future__ import annotations

from livestrat.api.status import ConditionType
from strategy_operator.decide.conditions import Verdict
from strategy_operator.observe.observation import Observation


def verdict(obs: Observation) -> Verdict:
    if obs.drain_blocked is None:
        return Verdict.false(ConditionType.DISRUPTION_BLOCKED, "NotBlocked", "")
    node, why = obs.drain_blocked
    pod = f"{obs.name}-0"
    message = (
        f"node {node} is being drained ({why}), and the PodDisruptionBudget {obs.name} keeps pod {pod} there "
        "until you decide: halt the strategy (kubectl -n "
        f"{obs.namespace} scale livestrategy/{obs.name} --replicas=0: orders cancelled, haltPolicy applies) or "
        f"move it (kubectl -n {obs.namespace} delete pod {pod}: a restart, orders cancelled, positions kept, the "
        "pod starts again on another node)"
    )
    return Verdict.true(ConditionType.DISRUPTION_BLOCKED, "NodeDraining", message)
