"""The ServiceAccount admission plugin (plugin/pkg/admission/serviceaccount) on pod creation, for the emulator.

As the API server runs it (reference/access-authn-authz/service-accounts-admin, "ServiceAccount admission
controller"): a pod without ``spec.serviceAccountName`` gets ``default``; the ServiceAccount must exist, else
the pod is refused 403 (``pods "NAME" is forbidden: error looking up service account NS/SA: serviceaccount
"SA" not found``), which is how a StatefulSet whose ServiceAccount is missing gets no pod; unless
``automountServiceAccountToken`` is false on the pod (or, when the pod does not say, on the ServiceAccount),
a projected volume ``kube-api-access-XXXXX`` (a bound token at ``token``, expiring in 3607 s, the cluster CA
and the namespace) is added and mounted read-only at ``/var/run/secrets/kubernetes.io/serviceaccount`` in
every container and init container that has no mount at that path. The kubelet stand-in
(kubelet.py) issues the token for that volume, as the kubelet does.

Also, as the ServiceAccount controller does in every namespace: :func:`default_service_account`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import kmock

SERVICE_ACCOUNTS = kmock.resource("", "v1", "serviceaccounts")
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery utilrand.String


def default_service_account(namespace: str) -> dict[str, Any]:
    """The ``default`` ServiceAccount the ServiceAccount controller creates in every new namespace."""
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": namespace}}


def token_volume(name: str) -> dict[str, Any]:
    """serviceaccount.TokenVolumeSource: the projected volume the plugin adds."""
    return {
        "name": name,
        "projected": {
            "defaultMode": 0o644,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}
                        ]
                    }
                },
            ],
        },
    }


def should_automount(service_account: dict[str, Any], spec: dict[str, Any]) -> bool:
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    if service_account.get("automountServiceAccountToken") is not None:
        return bool(service_account["automountServiceAccountToken"])
    return True


def admit_pod(
    pod: dict[str, Any], namespace: str, read_service_account: Callable[[str, str], dict[str, Any] | None]
) -> str | None:
    """Mutate ``pod`` as the plugin does; the reason it is refused (403's inner error), or None."""
    spec = pod.setdefault("spec", {})
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = "default"
    name = spec["serviceAccountName"]
    spec["serviceAccount"] = name  # the deprecated field the v1 conversion fills from it
    account = read_service_account(namespace, name)
    if account is None:
        return f'error looking up service account {namespace}/{name}: serviceaccount "{name}" not found'
    if should_automount(account, spec):
        _mount_token(spec)
    return None


def _mount_token(spec: dict[str, Any]) -> None:
    volumes = spec.get("volumes") or []
    existing = next((v["name"] for v in volumes if str(v.get("name", "")).startswith(VOLUME_PREFIX)), None)
    name = existing or VOLUME_PREFIX + "".join(random.choices(_NAME_ALPHABET, k=5))
    needs_volume = False
    for kind in ("initContainers", "containers"):
        for container in spec.get(kind) or []:
            mounts = container.setdefault("volumeMounts", [])
            if not any(m.get("mountPath") == TOKEN_MOUNT_PATH for m in mounts):
                mounts.append({"name": name, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH})
                needs_volume = True
    if existing is None and needs_volume:
        spec["volumes"] = [*volumes, token_volume(name)]


def service_account_token_path(spec: dict[str, Any], container: dict[str, Any]) -> tuple[str, int] | None:
    """Where the kubelet writes a bound token into ``container``: (file path, expirationSeconds), or None when no
    mounted volume projects a ``serviceAccountToken``."""
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount.get("name")) or {}
        for source in (volume.get("projected") or {}).get("sources") or []:
            token = source.get("serviceAccountToken")
            if token is not None:
                return f"{mount['mountPath'].rstrip('/')}/{token.get('path', 'token')}", int(
                    token.get("expirationSeconds", 3600)
                )
    return None
