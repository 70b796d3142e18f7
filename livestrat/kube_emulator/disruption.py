"""PodDisruptionBudgets and the Eviction API, as the emulator's API server and its disruption controller.

What the Kubernetes documentation says, and what this module does
(https://kubernetes.io/docs/concepts/scheduling-eviction/api-eviction/ and the policy/v1
PodDisruptionBudget reference):

- ``POST /api/v1/namespaces/NS/pods/NAME/eviction`` with a policy/v1 ``Eviction`` is a
  policy-controlled DELETE: allowed, the pod is deleted as by a DELETE (its ``deleteOptions``)
  and the answer is 200 OK; refused because of a PodDisruptionBudget, 429 Too Many Requests
  ("try again later": ``kubectl drain`` retries); more than one budget selecting the pod, 500;
  a pod no budget selects is always evicted;
- a budget's selector is a label selector (``matchLabels``, ``matchExpressions``);
  ``maxUnavailable`` N: at most N pods unavailable after the eviction (0 refuses every voluntary
  eviction); ``minAvailable`` N: at least N available after it;
- healthy means the pod's ``Ready`` condition is True; a running pod that is not healthy may be
  evicted under ``unhealthyPodEvictionPolicy: IfHealthyBudget`` (the default) only if the budget
  is healthy (``currentHealthy >= desiredHealthy``), under ``AlwaysAllow`` always;
- the disruption controller keeps ``status`` (``expectedPods``, ``currentHealthy``,
  ``desiredHealthy``, ``disruptionsAllowed``): :func:`budget_status` computes it, the stand-in
  controllers (kubelet.py) write it.

Where it differs: only integer ``maxUnavailable``/``minAvailable`` (a percentage is refused
with 422, never silently read); ``expectedPods`` counts the selected pods that are not being
deleted (the real controller asks the pods' controller for its scale, which for a StatefulSet
of one pod is the same number); the budget's ``disruptedPods`` bookkeeping is not kept (one
eviction at a time, in the loop thread, cannot race with another); a pod that is not Running is
handled as a running one that is not healthy (the documentation states the policies for
running pods only; the API server's own exceptions for other pods are not modelled).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import kmock

if TYPE_CHECKING:
    from livestrat.kube_emulator.emulator import KubernetesEmulator

Body = dict[str, Any]
PODS = "v1/pods"
BUDGETS = "policy/v1/poddisruptionbudgets"


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector: a null selector matches nothing, an empty one everything."""
    if selector is None:
        return False
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def healthy(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _count(value: Any, field: str) -> int:
    from livestrat.kube_emulator.emulator import api_error

    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise api_error(422, "Invalid", f"spec.{field}: the emulator reads only integers (got {value!r})")


def budget_status(budget: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> Body:
    """What the disruption controller writes into ``status`` for ``pods`` (the namespace's)."""
    spec = budget.get("spec") or {}
    selected = [
        p
        for p in pods
        if not (p.get("metadata") or {}).get("deletionTimestamp")
        and selects(spec.get("selector"), (p.get("metadata") or {}).get("labels") or {})
    ]
    expected = len(selected)
    current = sum(1 for p in selected if healthy(p))
    if "maxUnavailable" in spec:
        desired = max(0, expected - _count(spec["maxUnavailable"], "maxUnavailable"))
    else:
        desired = _count(spec.get("minAvailable", 0), "minAvailable")
    return {
        "observedGeneration": (budget.get("metadata") or {}).get("generation"),
        "expectedPods": expected,
        "currentHealthy": current,
        "desiredHealthy": desired,
        "disruptionsAllowed": max(0, current - desired),
    }


def evict(emulator: KubernetesEmulator, namespace: str, name: str, eviction: Mapping[str, Any]) -> Body:
    """The Eviction subresource: delete the pod if no budget forbids it (a Status), else raise the API's error."""
    from livestrat.kube_emulator.emulator import api_error

    pod = emulator.read_object(PODS, name, namespace=namespace)
    if pod is None:
        raise api_error(404, "NotFound", f'pods "{name}" not found')
    labels = (pod.get("metadata") or {}).get("labels") or {}
    budgets = [
        b for b in emulator.list_objects(BUDGETS, namespace) if selects((b.get("spec") or {}).get("selector"), labels)
    ]
    if len(budgets) > 1:
        names = ", ".join(b["metadata"]["name"] for b in budgets)
        raise api_error(
            500,
            "InternalError",
            f"This pod has more than one PodDisruptionBudget ({names}), which the "
            "eviction subresource does not support.",
        )
    if budgets:
        budget = budgets[0]
        status = budget_status(budget, emulator.list_objects(PODS, namespace))
        policy = (budget.get("spec") or {}).get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
        if healthy(pod):
            allowed = status["disruptionsAllowed"] > 0
        elif policy == "AlwaysAllow":
            allowed = True
        else:
            allowed = status["currentHealthy"] >= status["desiredHealthy"]
        if not allowed:
            raise api_error(
                429,
                "TooManyRequests",
                "Cannot evict pod as it would violate the pod's disruption budget.",
                causes=[
                    {
                        "reason": "DisruptionBudget",
                        "message": f"The disruption budget {budget['metadata']['name']} needs "
                        f"{status['desiredHealthy']} healthy pods and has {status['currentHealthy']} currently",
                    }
                ],
            )
    emulator._delete(kmock.resource(PODS), namespace, name, dict(eviction.get("deleteOptions") or {}))
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
