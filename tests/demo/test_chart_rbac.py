"""The demo's operator holds exactly the RBAC the chart grants it: read from the chart, checked against Helm."""

from __future__ import annotations

import pytest

from livestrat.demo import chart
from tests.support.helm import RELEASE, RELEASE_NAMESPACE, find, render

pytestmark = pytest.mark.slow  # runs helm


def test_the_demo_installs_the_operators_cluster_role_and_binding_as_helm_renders_them():
    rendered = render(None, {})  # the chart's defaults: every namespace watched, one replica, no peering
    demo = chart.operator_rbac()
    for kind in ("ClusterRole", "ClusterRoleBinding"):
        (helm,) = find(rendered, kind)
        (ours,) = find(demo, kind)
        assert ours["metadata"]["name"] == helm["metadata"]["name"]
        for field in ("rules", "roleRef", "subjects"):
            assert ours.get(field) == helm.get(field), (kind, field)
    (account,) = find(demo, "ServiceAccount")
    assert (account["metadata"]["namespace"], account["metadata"]["name"]) == (RELEASE_NAMESPACE, RELEASE)
    assert find(rendered, "ServiceAccount", RELEASE)


def test_a_chart_whose_rules_are_no_longer_plain_yaml_is_refused_with_the_reason(tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    text = (chart.CHART / "templates" / "_rbac.tpl").read_text()
    (templates / "_rbac.tpl").write_text(text.replace("verbs: [create]", "verbs: [{{ .Values.verb }}]", 1))
    with pytest.raises(chart.ChartError, match=r"namespacedRules.*no longer plain YAML"):
        chart.operator_rules(tmp_path)
    with pytest.raises(chart.ChartError, match="run it there"):
        chart.operator_rules(tmp_path / "absent")
