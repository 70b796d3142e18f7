"""People at the desk, in tests: a ServiceAccount bound to a role, with a kubeconfig of its own, as a cluster admin
would hand one out (``kubectl create rolebinding ... --clusterrole=...``, a token from the TokenRequest API).

The role's rules are given by the test: the chart's rendered ClusterRoles (tests/chart/) or the desk's own table
(:func:`livestrat.desk.roles.rules_of`). The emulator authorizes every request with RBAC, so the user can do exactly
what the role allows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from livestrat.kube_emulator.emulator import KubernetesEmulator, kubeconfig

CLUSTER_ROLES = "rbac.authorization.k8s.io/v1/clusterroles"
ROLE_BINDINGS = "rbac.authorization.k8s.io/v1/rolebindings"
SERVICE_ACCOUNTS = "v1/serviceaccounts"


def add_cluster_role(emulator: KubernetesEmulator, name: str, rules: list[Mapping[str, Any]]) -> None:
    if emulator.read_object(CLUSTER_ROLES, name) is None:
        emulator.create_object(CLUSTER_ROLES, {"metadata": {"name": name}, "rules": [dict(r) for r in rules]})


def desk_user(
    emulator: KubernetesEmulator,
    directory: Path,
    who: str,
    cluster_roles: Iterable[str],
    namespaces: Iterable[str],
    *,
    home: str = "desk-users",
) -> Path:
    """A kubeconfig for ServiceAccount ``home/who``, bound in each of ``namespaces`` to each of ``cluster_roles``
    (RoleBindings: the rights hold in those namespaces only); its default namespace is the first one."""
    namespaces = list(namespaces)
    if emulator.read_object("v1/namespaces", home) is None:
        emulator.add_namespace(home)
    emulator.create_object(SERVICE_ACCOUNTS, {"metadata": {"name": who}}, namespace=home)
    for namespace in namespaces:
        for role in cluster_roles:
            emulator.create_object(
                ROLE_BINDINGS,
                {
                    "metadata": {"name": f"{who}-{role}"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                    "subjects": [{"kind": "ServiceAccount", "name": who, "namespace": home}],
                },
                namespace=namespace,
            )
    token = emulator.issue_token(home, who)
    path = directory / f"kubeconfig-{who}.json"
    path.write_text(json.dumps(kubeconfig(str(emulator.url), namespace=namespaces[0], token=token)))
    return path
