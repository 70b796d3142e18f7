"""A pod's Quality of Service class, as the API server assigns it when the pod is created.

From https://kubernetes.io/docs/concepts/workloads/pods/pod-qos/ and
https://kubernetes.io/docs/tasks/configure-pod-container/quality-service-pod/:

- **Guaranteed**: every container, init containers included, has a memory limit and a memory
  request that are equal, and a cpu limit and a cpu request that are equal. A container that
  gives a limit and no request gets a request equal to the limit (defaulting), so a limit alone
  counts as both;
- **Burstable**: not Guaranteed, and at least one container has a memory or cpu request or limit;
- **BestEffort**: no container has any memory or cpu request or limit.

The class is set once, at creation (``status.qosClass``), and never changes. Quantities are compared
by value (``0.5`` is ``500m``); other resources (``ephemeral-storage``) play no part. Where it
differs: ephemeral containers and pod-level resources (a newer, feature-gated field) are not read.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from livestrat.kube_emulator import quantities

QOS_RESOURCES = ("cpu", "memory")
quantity = quantities.value  # compared by value: one parser of the quantity format for the emulator


def _resources(container: Mapping[str, Any]) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    resources = container.get("resources") or {}
    limits = {k: quantity(v) for k, v in (resources.get("limits") or {}).items() if k in QOS_RESOURCES}
    requests = {k: quantity(v) for k, v in (resources.get("requests") or {}).items() if k in QOS_RESOURCES}
    return {**limits, **requests}, limits  # a limit without a request: the request defaults to it


def qos_class(spec: Mapping[str, Any]) -> str:
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    sized = [_resources(c) for c in containers]
    if not any(requests or limits for requests, limits in sized):
        return "BestEffort"
    guaranteed = all(
        all(r in limits and r in requests and requests[r] == limits[r] for r in QOS_RESOURCES)
        for requests, limits in sized
    )
    return "Guaranteed" if guaranteed else "Burstable"
