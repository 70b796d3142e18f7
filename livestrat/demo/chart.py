"""What the Helm chart installs for the operator, read from the chart itself: its RBAC, its identity.

The demo runs no Helm (``make run`` does not download it), so the chart's rules are read from the
templates that hold them (``templates/_rbac.tpl``: plain YAML inside ``define`` blocks) and wrapped the
way ``templates/rbac.yaml`` wraps them for an operator watching every namespace with one replica (no
peering): one ClusterRole, bound to the operator's ServiceAccount. tests/demo/test_chart_rbac.py checks
the result against ``helm template``. The emulator's RBAC then refuses the operator what the chart would.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

import livestrat

CHART = Path(livestrat.__file__).resolve().parents[1] / "charts" / "livestrat-operator"
RELEASE = "livestrat-operator"  # the release name the docs install with (docs/install.md)
RELEASE_NAMESPACE = "livestrat-system"
CLUSTER_ROLE = f"{RELEASE_NAMESPACE}-{RELEASE}"  # the chart's livestrat.clusterName
RULE_BLOCKS = ("livestrat.rbac.namespacedRules", "livestrat.rbac.clusterReadRules")


class ChartError(Exception):
    """The chart is not where a checkout has it, or its templates changed shape."""


def _define(text: str, name: str) -> str:
    match = re.search(r'\{\{-? define "' + re.escape(name) + r'" -?\}\}(.*?)\{\{-? end -?\}\}', text, re.DOTALL)
    if match is None:
        raise ChartError(f'templates/_rbac.tpl has no block "{name}": the demo reads the operator\'s rules there')
    body = match.group(1)
    if "{{" in body:
        raise ChartError(f'templates/_rbac.tpl: "{name}" is no longer plain YAML; the demo cannot read it')
    return body


def operator_rules(chart: Path = CHART) -> list[dict[str, Any]]:
    """The rules of the operator's ClusterRole when it watches every namespace, without peering."""
    path = chart / "templates" / "_rbac.tpl"
    try:
        text = path.read_text()
    except OSError as exc:
        raise ChartError(
            f"{path}: {exc.strerror}; livestrat demo reads the chart of a checkout of the project (run it there)"
        ) from None
    rules: list[dict[str, Any]] = []
    for name in RULE_BLOCKS:
        rules.extend(yaml.safe_load(_define(text, name)) or [])
    return rules


def operator_rbac(chart: Path = CHART) -> list[dict[str, Any]]:
    """The operator's ServiceAccount, ClusterRole and ClusterRoleBinding, as the chart installs them."""
    subject = {"kind": "ServiceAccount", "name": RELEASE, "namespace": RELEASE_NAMESPACE}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": RELEASE, "namespace": RELEASE_NAMESPACE}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": CLUSTER_ROLE},
            "rules": operator_rules(chart),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": CLUSTER_ROLE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": CLUSTER_ROLE},
            "subjects": [subject],
        },
    ]
