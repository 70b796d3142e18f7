"""The manifests of a LiveStrategy's children, built from its spec and the operator's settings.

Pure functions: no API server, no clock. ``build_children(strategy, settings, replicas=...)``
returns every child; each ``build_*`` is usable (and unit-tested) on its own:

- ConfigMap ``NAME``: ``runtime.json``, the rendered ``RuntimeConfig`` (never a secret);
- ServiceAccount ``NAME`` (unless ``spec.pod.serviceAccountName`` names an existing one),
  annotated for GKE Workload Identity;
- Role + RoleBinding ``NAME``: ``get`` and ``patch`` on ``livestrategies/status`` of this
  one LiveStrategy (``resourceNames``), nothing else: the runtime reports its own state;
- Service ``NAME``: headless, the pod's metrics port;
- StatefulSet ``NAME``: ``replicas`` 0 or 1, one pod ``NAME-0`` running ``livestrat runtime``.

Names and labels are in :mod:`strategy_operator.labels`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from livestrat.api.resource import GROUP, PLURAL, RISK_ACK_ANNOTATION, LiveStrategy
from livestrat.api.runtime_config import (
    CATALOG_MOUNT_DIR,
    CONFIG_FILE_NAME,
    CONFIG_MOUNT_DIR,
    ENV_API_KEY,
    ENV_API_PASSPHRASE,
    ENV_API_SECRET,
    ENV_LEDGER_DSN,
    HTTP_PORT,
    STATE_DIR,
    LedgerKind,
    LedgerTarget,
    RuntimeConfig,
    StrategyIdentity,
    halt_budget_seconds,
)
from livestrat.api.spec import Mode
from strategy_operator import labels
from strategy_operator.settings import OperatorSettings

RUNTIME_UID = 10001  # the runtime image's non-root user (and group)
TMP_DIR = "/tmp"
SQLITE_FILE = "ledger.sqlite"

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

# Spec fields that do not change what the pod runs: scaling is the StatefulSet's replicas,
# the nonce is a pod-template annotation, the policy only decides when changes apply.
NOT_CONFIGURATION = ("replicas", "restartNonce", "updatePolicy")


@dataclass(frozen=True)
class SpecProblem:
    """Why a spec cannot run here, found without asking the API server. ``reason`` is a condition reason."""

    reason: str
    message: str


@dataclass(frozen=True)
class SecretRequirement:
    """A Secret (and the keys in it) the pod's environment is filled from."""

    name: str
    keys: tuple[str, ...]
    purpose: str  # "venue credentials", "ledger DSN"


# ------------------------------------------------------------------------------------------------
# What the spec needs, and what is wrong with it.
# ------------------------------------------------------------------------------------------------


def strategy_uid(strategy: LiveStrategy) -> str:
    return str((strategy.metadata.model_extra or {}).get("uid") or "")


def strategy_generation(strategy: LiveStrategy) -> int | None:
    generation = (strategy.metadata.model_extra or {}).get("generation")
    return int(generation) if generation is not None else None


def ledger_secret(strategy: LiveStrategy, settings: OperatorSettings) -> tuple[str, str] | None:
    """(Secret name, key) of the ledger's PostgreSQL DSN: the spec's, else the operator's default."""
    ref = strategy.spec.ledger.dsn_secret
    if ref is not None:
        return ref.name, ref.key
    if settings.default_ledger_secret:
        return settings.default_ledger_secret, settings.default_ledger_secret_key
    return None


def gcs_bucket(strategy: LiveStrategy, settings: OperatorSettings) -> str | None:
    source = strategy.spec.data.catalog.gcs_fuse
    if source is None:
        return None
    return source.bucket or settings.default_gcs_bucket


def gcp_service_account(strategy: LiveStrategy, settings: OperatorSettings) -> str | None:
    if strategy.spec.pod.service_account_name:
        return None  # the user's own service account: theirs to annotate
    identity = strategy.spec.pod.workload_identity
    return identity.gcp_service_account if identity is not None else settings.default_gcp_service_account


def spec_problems(strategy: LiveStrategy, settings: OperatorSettings) -> list[SpecProblem]:
    """What stops this spec from running in this namespace under these settings (no I/O)."""
    spec, namespace = strategy.spec, strategy.metadata.namespace or ""
    found: list[SpecProblem] = []
    if spec.mode == Mode.LIVE and not settings.live_allowed(namespace):
        allowed = ", ".join(settings.live_namespaces) or "none"
        found.append(
            SpecProblem(
                "LiveTradingNotAllowed",
                f"spec.mode is live, but this operator does not allow live trading in namespace {namespace!r} "
                f"(allowed: {allowed}; Helm value liveTrading.allowedNamespaces). No pod runs: use mode paper, "
                "or have the namespace allowed.",
            )
        )
    if spec.mode == Mode.LIVE and spec.venue.credentials_secret is None:
        found.append(
            SpecProblem(
                "CredentialsRequired",
                "spec.mode is live but spec.venue.credentialsSecret is not set: name the Secret holding the "
                "venue's API key and secret.",
            )
        )
    if spec.mode == Mode.LIVE and ledger_secret(strategy, settings) is None:
        found.append(
            SpecProblem(
                "LedgerRequired",
                "a live strategy records its fills in PostgreSQL, and neither spec.ledger.dsnSecret nor the "
                "operator's default ledger Secret (Helm value defaults.ledgerSecret) is set: set one.",
            )
        )
    if spec.pod.image and not settings.image_allowed(spec.pod.image):
        found.append(
            SpecProblem(
                "ImageNotAllowed",
                f"spec.pod.image {spec.pod.image!r} is not under an image prefix this operator allows "
                f"({', '.join(settings.allowed_image_prefixes)}; operator setting LIVESTRAT_ALLOWED_IMAGE_PREFIXES): "
                "use an allowed image, or remove spec.pod.image to run the operator's default runtime image.",
            )
        )
    if spec.pod.service_account_name and not settings.allow_service_account_name:
        found.append(
            SpecProblem(
                "ServiceAccountNotAllowed",
                f"spec.pod.serviceAccountName {spec.pod.service_account_name!r} is set, but this operator does "
                "not let a strategy pod run as a service account of its choosing (operator setting "
                "LIVESTRAT_ALLOW_SERVICE_ACCOUNT_NAME): remove it (use spec.pod.workloadIdentity for Google "
                "access), or have the setting enabled.",
            )
        )
    if spec.data.catalog.gcs_fuse is not None and gcs_bucket(strategy, settings) is None:
        found.append(
            SpecProblem(
                "BucketRequired",
                "spec.data.catalog.gcsFuse.bucket is not set and the operator has no default bucket "
                "(Helm value defaults.gcsBucket): name the bucket that holds the catalog.",
            )
        )
    return found


def secret_requirements(strategy: LiveStrategy, settings: OperatorSettings) -> list[SecretRequirement]:
    """The Secrets (and keys) the pod needs; the operator checks they exist before starting it."""
    needed: list[SecretRequirement] = []
    credentials = strategy.spec.venue.credentials_secret
    if credentials is not None:
        keys = [credentials.api_key_key, credentials.api_secret_key]
        if credentials.passphrase_key:
            keys.append(credentials.passphrase_key)
        needed.append(SecretRequirement(credentials.name, tuple(keys), "venue credentials"))
    ledger = ledger_secret(strategy, settings)
    if ledger is not None:
        needed.append(SecretRequirement(ledger[0], (ledger[1],), "ledger DSN"))
    return needed


# ------------------------------------------------------------------------------------------------
# The runtime configuration and its hash.
# ------------------------------------------------------------------------------------------------


def render_runtime_config(strategy: LiveStrategy, settings: OperatorSettings) -> RuntimeConfig:
    """The configuration the pod's runtime reads from ``/etc/livestrat/runtime.json``."""
    spec = strategy.spec
    ledger = (
        LedgerTarget(kind=LedgerKind.POSTGRESQL)
        if ledger_secret(strategy, settings) is not None
        else LedgerTarget(kind=LedgerKind.SQLITE, sqlite_path=f"{STATE_DIR}/{SQLITE_FILE}")
    )
    fields: dict[str, Any] = {
        "strategy": StrategyIdentity(
            namespace=strategy.metadata.namespace or "", name=strategy.metadata.name, uid=strategy_uid(strategy) or None
        ),
        "spec": spec,
        "generation": strategy_generation(strategy),
        "catalog_path": CATALOG_MOUNT_DIR,
        "state_dir": STATE_DIR,
        "ledger": ledger,
        "http_port": HTTP_PORT,
        "halt_budget_seconds": halt_budget_seconds(spec.pod.termination_grace_period_seconds),
        "log_level": settings.log_level,
    }
    # A risk halt the ledger keeps is lifted when the runtime starts with a new acknowledgement.
    fields["risk_acknowledgement"] = (strategy.metadata.annotations or {}).get(RISK_ACK_ANNOTATION) or None
    return RuntimeConfig(**fields)


def config_substance(document: dict[str, Any]) -> dict[str, Any]:
    """A rendered ``runtime.json`` without what does not change the pod's behaviour (generation, scaling)."""
    substance = {key: value for key, value in document.items() if key != "generation"}
    spec = dict(substance.get("spec") or {})
    for key in NOT_CONFIGURATION:
        spec.pop(key, None)
    substance["spec"] = spec
    return substance


def digest(value: Any) -> str:
    """16 hex digits of a JSON document's SHA-256: the operator's one way of hashing what it builds."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------
# The children.
# ------------------------------------------------------------------------------------------------


def _metadata(strategy: LiveStrategy, **extra: Any) -> dict[str, Any]:
    name = strategy.metadata.name
    meta: dict[str, Any] = {
        "name": labels.child_name(name),
        "namespace": strategy.metadata.namespace,
        "labels": labels.child_labels(name),
    }
    uid = strategy_uid(strategy)
    if uid:
        meta["ownerReferences"] = [labels.owner_reference(name, uid)]
    meta.update(extra)
    return meta


def build_configmap(strategy: LiveStrategy, settings: OperatorSettings) -> dict[str, Any]:
    config = render_runtime_config(strategy, settings)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(strategy),
        "data": {CONFIG_FILE_NAME: config.dumps()},
    }


def service_account_name(strategy: LiveStrategy) -> str:
    return strategy.spec.pod.service_account_name or labels.child_name(strategy.metadata.name)


def build_service_account(strategy: LiveStrategy, settings: OperatorSettings) -> dict[str, Any] | None:
    """The pod's identity; None when the spec names an existing service account."""
    if strategy.spec.pod.service_account_name:
        return None
    meta = _metadata(strategy)
    google_account = gcp_service_account(strategy, settings)
    if google_account:
        meta["annotations"] = {labels.WORKLOAD_IDENTITY_ANNOTATION: google_account}
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}


def build_role(strategy: LiveStrategy) -> dict[str, Any]:
    """Only what the runtime needs: read and patch the status of its own LiveStrategy."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _metadata(strategy),
        "rules": [
            {
                "apiGroups": [GROUP],
                "resources": [f"{PLURAL}/status"],
                "resourceNames": [strategy.metadata.name],
                "verbs": ["get", "patch"],
            }
        ],
    }


def build_role_binding(strategy: LiveStrategy) -> dict[str, Any]:
    name = labels.child_name(strategy.metadata.name)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(strategy),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": service_account_name(strategy),
                "namespace": strategy.metadata.namespace,
            }
        ],
    }


def build_service(strategy: LiveStrategy) -> dict[str, Any]:
    """Headless: a stable DNS name for the StatefulSet's pod and a target for metrics scraping."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(strategy),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,  # scrape a halted or starting runtime too
            "selector": labels.selector_labels(strategy.metadata.name),
            "ports": [{"name": "metrics", "port": HTTP_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
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
    annotations = {"kubectl.kubernetes.io/default-container": labels.CONTAINER}
    if spec.data.catalog.gcs_fuse is not None:
        annotations.update(GCSFUSE_POD_ANNOTATIONS)
    if spec.restart_nonce:
        annotations[labels.RESTART_NONCE_ANNOTATION] = spec.restart_nonce
    resources = {
        key: dict(value)
        for key, value in (("requests", spec.pod.resources.requests), ("limits", spec.pod.resources.limits))
        if value
    }
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
        ],
    }
    return {
        "metadata": {"labels": labels.child_labels(name), "annotations": annotations},
        "spec": {
            "serviceAccountName": service_account_name(strategy),
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
            ],
        },
    }


def config_hash(configmap: dict[str, Any], template: dict[str, Any]) -> str:
    """What the pod runs, in 16 hex digits: the configuration's substance and the pod template."""
    return _config_hash(json.loads(configmap["data"][CONFIG_FILE_NAME]), template)


def _config_hash(document: dict[str, Any], template: dict[str, Any]) -> str:
    return digest({"config": config_substance(document), "template": template})


def spec_hash(document: dict[str, Any], restart_nonce: str | None) -> str:
    """The part of what the pod runs that the LiveStrategy itself asks for, in 16 hex digits: its spec
    as rendered into ``runtime.json`` (without scaling and the update policy), its identity and its
    restart nonce. What ``config_hash`` covers beyond this comes from the operator (its settings, such
    as the default runtime image, and its version's way of building the pod): a change there never
    restarts a running strategy by itself."""
    substance = config_substance(document)
    return digest(
        {"strategy": substance.get("strategy"), "spec": substance.get("spec"), "restartNonce": restart_nonce or None}
    )


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
    hashed = _config_hash(document, template)
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
    children += [
        build_role(strategy),
        build_role_binding(strategy),
        build_service(strategy),
        build_statefulset(strategy, settings, replicas=replicas, configmap=configmap),
    ]
    return children
