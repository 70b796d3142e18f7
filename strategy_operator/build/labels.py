"""The names, labels and annotations the operator gives to what it creates.

Every child of a LiveStrategy is named after it (a Pod is ``NAME-0``; which names a strategy may
have so that every child's is valid: :mod:`livestrat.api.names`), carries the
``livestrat.io/strategy: NAME`` label (the operator's watches select on it) and the
``app.kubernetes.io/*`` labels, and is owned by the LiveStrategy (``ownerReferences``),
so that deleting the LiveStrategy deletes them all. The names the runtime reads too (the
strategy label, the LiveStrategy's annotations) are the contract's: :mod:`livestrat.api.contract`.
"""

from __future__ import annotations

from livestrat.api.contract import STRATEGY_LABEL
from livestrat.api.names import POD_SUFFIX
from livestrat.api.resource import GROUP

APP_NAME = "livestrat"
COMPONENT = "strategy"
MANAGED_BY = "livestrat-operator"
CONTAINER = "strategy"

FINALIZER = f"{GROUP}/halt-before-delete"
# On the children the pod reports its state with (its ServiceAccount, Role, RoleBinding): kept until no pod of
# the strategy is left, also when a foreground deletion deletes them first (strategy_operator.apply.pod_identity).
POD_IDENTITY_FINALIZER = f"{GROUP}/pod-identity"
POD_IDENTITY_KINDS = ("ServiceAccount", "Role", "RoleBinding")
# The identity strategy pods share in a namespace (strategy_operator.apply.shared_identity): a ServiceAccount, a Role
# that may patch LiveStrategy status there, and its RoleBinding, all of this name and label. The chart's admission
# policy (templates/runtime-identity-policy.yaml) narrows each patch to the strategy of the pod that sends it.
SHARED_IDENTITY = "livestrat-runtime"
SHARED_IDENTITY_LABEL = f"{GROUP}/runtime-identity"
SHARED_IDENTITY_KINDS = POD_IDENTITY_KINDS
# kopf's own bookkeeping (the last handled spec, progress of the deletion handler).
KOPF_PREFIX = GROUP

# On the StatefulSet's pod template (hence on the pod): what the pod runs (everything, and
# the part of it that comes from the LiveStrategy itself), and the restart nonce.
CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"
SPEC_HASH_ANNOTATION = f"{GROUP}/spec-hash"
RESTART_NONCE_ANNOTATION = f"{GROUP}/restart-nonce"

# On every child: the shape of what the operator last applied to it (keys, not values), so that what it no
# longer wants can be removed (strategy_operator.apply.applied_fields).
APPLIED_FIELDS_ANNOTATION = f"{GROUP}/applied-fields"

# GKE Workload Identity: the Google service account a Kubernetes service account impersonates.
WORKLOAD_IDENTITY_ANNOTATION = "iam.gke.io/gcp-service-account"


def child_name(strategy_name: str) -> str:
    """The name of every child (ConfigMap, ServiceAccount, Role, RoleBinding, PodDisruptionBudget, StatefulSet)."""
    return strategy_name


def pod_name(strategy_name: str) -> str:
    """The StatefulSet's only pod: ordinal 0 (the names a strategy may have leave room for it)."""
    return f"{child_name(strategy_name)}{POD_SUFFIX}"


def selector_labels(strategy_name: str) -> dict[str, str]:
    """The StatefulSet's selector: immutable once created, so it names the strategy and nothing else."""
    return {STRATEGY_LABEL: strategy_name}


def selector(strategy_name: str) -> str:
    """``status.selector`` (the scale subresource's labelSelectorPath) in label-selector syntax."""
    return ",".join(f"{key}={value}" for key, value in sorted(selector_labels(strategy_name).items()))


def shared_identity_labels() -> dict[str, str]:
    """No strategy label: the shared identity belongs to no one strategy (and is in none of their caches)."""
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/component": "runtime-identity",
        "app.kubernetes.io/part-of": APP_NAME,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        SHARED_IDENTITY_LABEL: "true",
    }


def child_labels(strategy_name: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": strategy_name,
        "app.kubernetes.io/component": COMPONENT,
        "app.kubernetes.io/part-of": APP_NAME,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        **selector_labels(strategy_name),
    }
