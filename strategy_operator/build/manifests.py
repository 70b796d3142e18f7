"""The manifests of a LiveStrategy's children, built from its spec and the operator's settings.

Pure functions: no API server, no clock. ``build_children(strategy, settings, replicas=...)``
returns every child; each ``build_*`` is usable (and unit-tested) on its own:

- ConfigMap ``NAME``: ``runtime.json``, the rendered ``RuntimeConfig`` (never a secret);
- PodDisruptionBudget ``NAME``: no voluntary disruption (a drain waits for a halt or a move);
- StatefulSet ``NAME``: ``replicas`` 0 or 1, one pod ``NAME-0`` running ``livestrat runtime``;
- the pod's identity, which may ``patch`` the status of this one LiveStrategy and nothing else (the
  runtime reports its own state). Under the operator's ``runtimeIdentity: shared`` (the chart's
  default) the pod runs as the namespace's ``livestrat-runtime`` (:func:`build_shared_identity`,
  kept by :mod:`strategy_operator.apply.shared_identity`; the chart's admission policy narrows its
  patches to the pod's own strategy), unless the strategy asks for an identity of its own. Otherwise
  (and under ``perStrategy``) a ServiceAccount ``NAME`` (unless ``spec.pod.serviceAccountName``
  names an existing one), annotated for GKE Workload Identity, and a Role + RoleBinding ``NAME``
  naming this LiveStrategy (``resourceNames``).

No Service: Prometheus scrapes the pods directly (the chart's PodMonitor), and nothing addresses a
pod by its DNS name. The StatefulSet still names ``NAME`` as its ``serviceName`` (a field fixed at
creation; StatefulSets made before issue 15 have a headless Service of that name).

Names and labels are in :mod:`strategy_operator.build.labels`, the ``runtime.json`` and the
hashes in :mod:`strategy_operator.build.configuration`; what may run at all is
:mod:`strategy_operator.build.policy`'s to say. Every child is adopted by the LiveStrategy
(kopf's owner reference: ``controller`` and ``blockOwnerDeletion``), so deleting it deletes them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import kopf

from livestrat.api.resource import API_VERSION, GROUP, KIND, PLURAL, LiveStrategy
from livestrat.api.runtime_config import (
    CATALOG_MOUNT_DIR,
    CODE_MOUNT_DIR,
    CONFIG_FILE_NAME,
    CONFIG_MOUNT_DIR,
    ENV_API_KEY,
    ENV_API_PASSPHRASE,
    ENV_API_SECRET,
    ENV_LEDGER_DSN,
    HTTP_PORT,
    STATE_DIR,
)
from livestrat.api.spec import DEFAULT_CPU, DEFAULT_MEMORY_LIMIT, Mode
from strategy_operator.build import labels
from strategy_operator.build.configuration import (
    config_hash,
    render_runtime_config,
    spec_hash,
    strategy_uid,
)
from strategy_operator.build.policy import gcp_service_account, gcs_bucket, ledger_secret, shares_identity
from strategy_operator.settings import OperatorSettings

RUNTIME_UID = 10001  # the runtime image's non-root user (and group)
TMP_DIR = "/tmp"

GCSFUSE_DRIVER = "gcsfuse.csi.storage.gke.io"
# The GKE webhook injects the gcsfuse sidecar into pods with this annotation; the other
# annotations size that sidecar ("0" = no limit). A file cache lives in its ephemeral storage.
GCSFUSE_POD_ANNOTATIONS = {
    "gke-gcsfuse/volumes": "true",
    "gke-gcsfuse/cpu-request": "250m",
    "gke-gcsfuse/memory-request": "256Mi",
    "gke-gcsfuse/ephemeral-storage-request": "1Gi",
    "gke-gcsfuse/cpu-limit": "0",
    "gke-gcsfuse/memory-limit": "2Gi",
    "gke-gcsfuse/ephemeral-storage-limit": "20Gi",
}

# The only fields of a StatefulSet's spec an update may change (the API server's update validation); the others
# (selector, serviceName, podManagementPolicy, volumeClaimTemplates) are fixed when it is created.
STATEFULSET_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)


def fixed_field_changes(desired: Mapping[str, Any] | None, existing: Mapping[str, Any] | None) -> list[str]:
    """The fixed fields the operator sets that a StatefulSet has with other values (built by an older version)."""
    wanted, found = (desired or {}).get("spec") or {}, (existing or {}).get("spec") or {}
    fixed = sorted(wanted.keys() - set(STATEFULSET_MUTABLE))
    return [f"spec.{key}" for key in fixed if wanted.get(key) != found.get(key)]


# ------------------------------------------------------------------------------------------------
# The children.
# ------------------------------------------------------------------------------------------------


def _metadata(strategy: LiveStrategy, *, pod_identity: bool = False, **extra: Any) -> dict[str, Any]:
    """``pod_identity``: what the pod reports its state with, held by a finalizer until the pod is gone."""
    name = strategy.metadata.name
    meta: dict[str, Any] = {
        "name": labels.child_name(name),
        "namespace": strategy.metadata.namespace,
        "labels": labels.child_labels(name),
    }
    if pod_identity:
        meta["finalizers"] = [labels.POD_IDENTITY_FINALIZER]
    meta.update(extra)
    uid = strategy_uid(strategy)
    if uid:  # a strategy not stored yet (a local rendering) has no uid to be owned by
        owner = {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name, "uid": uid}}
        kopf.append_owner_reference({"metadata": meta}, owner=kopf.Body(owner))
    return meta


def build_configmap(strategy: LiveStrategy, settings: OperatorSettings) -> dict[str, Any]:
    config = render_runtime_config(strategy, settings)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(strategy),
        "data": {CONFIG_FILE_NAME: config.dumps()},
    }


def service_account_name(strategy: LiveStrategy, settings: OperatorSettings) -> str:
    if shares_identity(strategy, settings):
        return labels.SHARED_IDENTITY
    return strategy.spec.pod.service_account_name or labels.child_name(strategy.metadata.name)


def own_namespace_rule(namespace: str) -> dict[str, Any]:
    """A pod may read its own Namespace (that object only): at SIGTERM, a namespace being deleted is a halt
    (``strategy_runtime.stop_cause``; Kubernetes 1.33+ stops a namespace's pods before its LiveStrategies are deleted).
    A Role can grant it: a request on a Namespace object has that namespace as its namespace."""
    return {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": [namespace], "verbs": ["get"]}


def build_shared_identity(namespace: str, settings: OperatorSettings) -> list[dict[str, Any]]:
    """The namespace's shared pod identity: ServiceAccount, Role, RoleBinding ``livestrat-runtime``, owned by no
    strategy. The Role may patch the status of any LiveStrategy here; which one a pod may patch is the admission
    policy's to say (the pod name in its token must be that strategy's pod)."""

    def meta() -> dict[str, Any]:
        # the finalizer keeps each part while a pod runs as it (a namespace's deletion deletes them at once):
        # released by strategy_operator.apply.shared_identity.release_if_unused
        return {
            "name": labels.SHARED_IDENTITY,
            "namespace": namespace,
            "labels": labels.shared_identity_labels(),
            "finalizers": [labels.POD_IDENTITY_FINALIZER],
        }

    account: dict[str, Any] = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta()}
    if settings.default_gcp_service_account:
        account["metadata"]["annotations"] = {labels.WORKLOAD_IDENTITY_ANNOTATION: settings.default_gcp_service_account}
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta(),
        "rules": [
            {"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "verbs": ["patch"]},
            own_namespace_rule(namespace),
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta(),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": labels.SHARED_IDENTITY},
        "subjects": [{"kind": "ServiceAccount", "name": labels.SHARED_IDENTITY, "namespace": namespace}],
    }
    return [account, role, binding]


def build_service_account(strategy: LiveStrategy, settings: OperatorSettings) -> dict[str, Any] | None:
    """The pod's identity; None when the spec names an existing service account or the pod shares one."""
    if strategy.spec.pod.service_account_name or shares_identity(strategy, settings):
        return None
    meta = _metadata(strategy, pod_identity=True)
    google_account = gcp_service_account(strategy, settings)
    if google_account:
        meta["annotations"] = {labels.WORKLOAD_IDENTITY_ANNOTATION: google_account}
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}


def build_role(strategy: LiveStrategy) -> dict[str, Any]:
    """Only what the runtime needs: patch the status of its own LiveStrategy (it reads its halt record from the
    response of a patch that changes nothing, so not even ``get``)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _metadata(strategy, pod_identity=True),
        "rules": [
            {
                "apiGroups": [GROUP],
                "resources": [f"{PLURAL}/status"],
                "resourceNames": [strategy.metadata.name],
                "verbs": ["patch"],
            },
            own_namespace_rule(strategy.metadata.namespace),
        ],
    }


def build_role_binding(strategy: LiveStrategy, settings: OperatorSettings) -> dict[str, Any]:
    name = labels.child_name(strategy.metadata.name)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(strategy, pod_identity=True),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": service_account_name(strategy, settings),
                "namespace": strategy.metadata.namespace,
            }
        ],
    }


def build_pod_disruption_budget(strategy: LiveStrategy) -> dict[str, Any]:
    """No voluntary disruption of the strategy's pod: a drain's eviction (429) waits for a deliberate decision.

    A halt, a rollout or the operator deleting a pod delete it directly and are never held by it; only the
    Eviction API (``kubectl drain``, the cluster autoscaler, node upgrades) asks the budget. The default
    ``unhealthyPodEvictionPolicy`` (IfHealthyBudget) holds a pod that is not ready too: a runtime that is not
    ready may still hold orders and positions (a stalled ledger, a held gate)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(strategy),
        "spec": {"maxUnavailable": 0, "selector": {"matchLabels": labels.selector_labels(strategy.metadata.name)}},
    }


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _environment(strategy: LiveStrategy, settings: OperatorSettings) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "HOME", "value": TMP_DIR},  # the root filesystem is read-only
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]
    credentials = strategy.spec.venue.credentials_secret
    if credentials is not None:
        env.append(_secret_env(ENV_API_KEY, credentials.name, credentials.api_key_key))
        env.append(_secret_env(ENV_API_SECRET, credentials.name, credentials.api_secret_key))
        if credentials.passphrase_key:
            env.append(_secret_env(ENV_API_PASSPHRASE, credentials.name, credentials.passphrase_key))
    ledger = ledger_secret(strategy, settings)
    if ledger is not None:
        env.append(_secret_env(ENV_LEDGER_DSN, *ledger))
    return env


def _catalog_volume(strategy: LiveStrategy, settings: OperatorSettings) -> tuple[dict[str, Any], dict[str, Any]]:
    """The catalog volume and its mount."""
    catalog = strategy.spec.data.catalog
    mount: dict[str, Any] = {"name": "catalog", "mountPath": CATALOG_MOUNT_DIR}
    if catalog.gcs_fuse is not None:
        source = catalog.gcs_fuse
        options = list(source.mount_options)
        if source.path:
            options.append(f"only-dir={source.path}")
        attributes = {"bucketName": gcs_bucket(strategy, settings) or ""}
        if options:
            attributes["mountOptions"] = ",".join(options)
        volume = {
            "name": "catalog",
            "csi": {"driver": GCSFUSE_DRIVER, "readOnly": source.read_only, "volumeAttributes": attributes},
        }
        mount["readOnly"] = source.read_only
        return volume, mount
    if catalog.persistent_volume_claim is not None:
        claim = catalog.persistent_volume_claim
        volume = {
            "name": "catalog",
            "persistentVolumeClaim": {"claimName": claim.claim_name, "readOnly": claim.read_only},
        }
        mount["readOnly"] = claim.read_only
        if claim.path:
            mount["subPath"] = claim.path
        return volume, mount
    empty: dict[str, Any] = {}
    if catalog.empty_dir is not None and catalog.empty_dir.size_limit:
        empty["sizeLimit"] = catalog.empty_dir.size_limit
    return {"name": "catalog", "emptyDir": empty}, mount


def _code_volume(strategy: LiveStrategy) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """``spec.strategy.code``: a volume of its own (a ConfigMap) or none (a directory of the catalog's volume), and
    the read-only mount at ``CODE_MOUNT_DIR``; (None, None) for code in the image.

    The ConfigMap is not optional: without it the kubelet leaves the pod in ContainerCreating with a FailedMount
    event naming it, rather than starting a strategy without its code. Its content is not hashed into the pod
    template: an edit does not restart a running strategy (decision 11), whose imported modules stay as they were
    (docs/runtime.md, "Shipping strategy code")."""
    code = strategy.spec.strategy.code
    if code is None:
        return None, None
    if code.config_map is not None:
        volume = {"name": "code", "configMap": {"name": code.config_map.name, "optional": False, "defaultMode": 0o444}}
        return volume, {"name": "code", "mountPath": CODE_MOUNT_DIR, "readOnly": True}
    assert code.catalog_volume is not None
    # The catalog's own volume, mounted a second time at the code's directory (subPath), read-only whatever the
    # catalog's mount is: the strategy never writes its own code.
    return None, {"name": "catalog", "mountPath": CODE_MOUNT_DIR, "subPath": code.catalog_volume.path, "readOnly": True}


def guaranteed_qos(strategy: LiveStrategy) -> bool:
    """Whether the pod runs Guaranteed (requests equal limits for cpu and memory): by default, live strategies."""
    chosen = strategy.spec.pod.guaranteed_qos
    return chosen if chosen is not None else strategy.spec.mode == Mode.LIVE


def _container_resources(strategy: LiveStrategy) -> dict[str, dict[str, str]]:
    """``spec.pod.resources``; under Guaranteed QoS each of cpu and memory gets its limit (else its request, else
    the default) as both request and limit: a limit the user accepted is never lowered, a request never raised
    past it."""
    given = strategy.spec.pod.resources
    resources = {key: dict(value) for key, value in (("requests", given.requests), ("limits", given.limits)) if value}
    if not guaranteed_qos(strategy):
        return resources
    requests, limits = resources.setdefault("requests", {}), resources.setdefault("limits", {})
    for resource, default in (("cpu", DEFAULT_CPU), ("memory", DEFAULT_MEMORY_LIMIT)):
        requests[resource] = limits[resource] = limits.get(resource) or requests.get(resource) or default
    return resources


def _gcsfuse_annotations(strategy: LiveStrategy) -> dict[str, str]:
    """The GKE webhook sizes its sidecar from these; under Guaranteed QoS its limits equal its requests."""
    annotations = dict(GCSFUSE_POD_ANNOTATIONS)
    if guaranteed_qos(strategy):
        for resource in ("cpu", "memory"):
            request, limit = (
                annotations[f"gke-gcsfuse/{resource}-request"],
                annotations[f"gke-gcsfuse/{resource}-limit"],
            )
            chosen = request if limit == "0" else limit  # "0": no limit
            annotations[f"gke-gcsfuse/{resource}-request"] = annotations[f"gke-gcsfuse/{resource}-limit"] = chosen
    return annotations


def _scheduling(strategy: LiveStrategy) -> dict[str, Any]:
    """``spec.pod``'s priorityClassName, nodeSelector, affinity and tolerations, as written; absent ones left out."""
    pod = strategy.spec.pod
    fields: dict[str, Any] = {
        "priorityClassName": pod.priority_class_name,
        "nodeSelector": dict(pod.node_selector) if pod.node_selector else None,
        "affinity": pod.affinity.to_wire() if pod.affinity is not None else None,
        "tolerations": [t.to_wire() for t in pod.tolerations] if pod.tolerations else None,
    }
    return {key: value for key, value in fields.items() if value is not None}


def _probe(path: str, *, period: int, timeout: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http", "scheme": "HTTP"},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
        "successThreshold": 1,
    }


def build_pod_template(strategy: LiveStrategy, settings: OperatorSettings) -> dict[str, Any]:
    """The pod template, without the config-hash annotation (see :func:`build_statefulset`)."""
    spec, name = strategy.spec, strategy.metadata.name
    catalog_volume, catalog_mount = _catalog_volume(strategy, settings)
    code_volume, code_mount = _code_volume(strategy)
    annotations = {"kubectl.kubernetes.io/default-container": labels.CONTAINER}
    if spec.data.catalog.gcs_fuse is not None:
        annotations.update(_gcsfuse_annotations(strategy))
    if spec.restart_nonce:
        annotations[labels.RESTART_NONCE_ANNOTATION] = spec.restart_nonce
    resources = _container_resources(strategy)
    container = {
        "name": labels.CONTAINER,
        "image": spec.pod.image or settings.runtime_image,
        "imagePullPolicy": spec.pod.image_pull_policy or settings.runtime_image_pull_policy,
        "command": ["livestrat", "runtime", "--config", f"{CONFIG_MOUNT_DIR}/{CONFIG_FILE_NAME}"],
        "env": _environment(strategy, settings),
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        # /healthz answers as soon as the runtime's HTTP server is up; the node may take longer.
        "startupProbe": _probe("/healthz", period=5, timeout=5, failures=24),
        "livenessProbe": _probe("/healthz", period=10, timeout=5, failures=6),
        "readinessProbe": _probe("/readyz", period=5, timeout=5, failures=2),
        "resources": resources,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        # the last lines of the log become the termination message: the operator quotes it
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_MOUNT_DIR, "readOnly": True},
            catalog_mount,
            {"name": "state", "mountPath": STATE_DIR},
            {"name": "tmp", "mountPath": TMP_DIR},
            *([code_mount] if code_mount is not None else []),
        ],
    }
    return {
        "metadata": {"labels": labels.child_labels(name), "annotations": annotations},
        "spec": {
            "serviceAccountName": service_account_name(strategy, settings),
            "automountServiceAccountToken": True,  # the runtime patches its own status
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": spec.pod.termination_grace_period_seconds,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": RUNTIME_UID,
                "runAsGroup": RUNTIME_UID,
                "fsGroup": RUNTIME_UID,
                "fsGroupChangePolicy": "OnRootMismatch",
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            **_scheduling(strategy),
            "containers": [container],
            "volumes": [
                {
                    "name": "config",
                    "configMap": {
                        "name": labels.child_name(name),
                        "items": [{"key": CONFIG_FILE_NAME, "path": CONFIG_FILE_NAME}],
                        "defaultMode": 0o444,
                    },
                },
                catalog_volume,
                {"name": "state", "emptyDir": {}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
                *([code_volume] if code_volume is not None else []),
            ],
        },
    }


def build_statefulset(
    strategy: LiveStrategy,
    settings: OperatorSettings,
    *,
    replicas: int,
    configmap: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One pod at most, ever: a StatefulSet's pod has one identity (``NAME-0``), and a
    replacement is created only after its predecessor is gone (OrderedReady, RollingUpdate)."""
    if replicas not in (0, 1):
        raise ValueError(f"a strategy runs 0 or 1 pod, not {replicas}")
    configmap = configmap or build_configmap(strategy, settings)
    template = build_pod_template(strategy, settings)
    document = json.loads(configmap["data"][CONFIG_FILE_NAME])
    template["metadata"]["annotations"][labels.SPEC_HASH_ANNOTATION] = spec_hash(document, strategy.spec.restart_nonce)
    hashed = config_hash(document, template)
    template["metadata"]["annotations"][labels.CONFIG_HASH_ANNOTATION] = hashed
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _metadata(strategy, annotations={labels.CONFIG_HASH_ANNOTATION: hashed}),
        "spec": {
            "replicas": replicas,
            "serviceName": labels.child_name(strategy.metadata.name),
            "selector": {"matchLabels": labels.selector_labels(strategy.metadata.name)},
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "revisionHistoryLimit": 3,
            "template": template,
        },
    }


def build_children(strategy: LiveStrategy, settings: OperatorSettings, *, replicas: int) -> list[dict[str, Any]]:
    """Every child, in the order they are created (the pod's dependencies before the StatefulSet)."""
    configmap = build_configmap(strategy, settings)
    children = [configmap]
    account = build_service_account(strategy, settings)
    if account is not None:
        children.append(account)
    if not shares_identity(strategy, settings):
        children += [build_role(strategy), build_role_binding(strategy, settings)]
    children += [
        build_pod_disruption_budget(strategy),
        build_statefulset(strategy, settings, replicas=replicas, configmap=configmap),  # the last, always
    ]
    return children
