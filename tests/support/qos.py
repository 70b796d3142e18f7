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
from decimal import Decimal, InvalidOperation
from typing import Any

QOS_RESOURCES = ("cpu", "memory")
_SUFFIXES = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}


def quantity(text: Any) -> Decimal:
    """A Kubernetes quantity's value (``500m`` is 0.5, ``1Gi`` is 1073741824, ``1e3`` and ``1E3`` are 1000)."""
    value = str(text).strip()
    try:
        return Decimal(value)  # a plain number, or one with a decimal exponent
    except InvalidOperation:
        pass
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):  # Ki before K-less, Ei before E
        if suffix and value.endswith(suffix):
            return Decimal(value[: -len(suffix)]) * _SUFFIXES[suffix]
    raise ValueError(f"not a quantity: {text!r}")


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
