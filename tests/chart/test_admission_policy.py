"""The chart installs the admission policy that refuses undeclared LiveStrategy fields (livestrat/api/admission.py)
where the cluster serves ValidatingAdmissionPolicy, with the validations `make crds` generated from the models."""

from __future__ import annotations

import pytest
import yaml

from livestrat.api.admission import (
    BUDGET_VALIDATIONS_FILE,
    VALIDATIONS_FILE,
    budget_validations,
    render_budget_validations,
    render_validations,
    validations,
)
from tests.support.helm import CHART, ROOT, helm
from tests.support.k8s_schemas import manifest_errors

SERVED = ("--api-versions", "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy")


def test_the_charts_validations_are_the_ones_the_models_generate():
    assert (ROOT / VALIDATIONS_FILE).read_text() == render_validations(), "run `make crds`"
    assert (ROOT / BUDGET_VALIDATIONS_FILE).read_text() == render_budget_validations(), "run `make crds`"


def rendered(*args: str, resource: str = "livestrategies") -> list[dict]:
    result = helm("template", "desk", str(CHART), "-n", "livestrat-system", *args)
    assert result.returncode == 0, result.stderr
    return [
        d
        for d in yaml.safe_load_all(result.stdout)
        if d
        and d["kind"].startswith("ValidatingAdmissionPolicy")
        and d["metadata"]["name"].endswith("-fields")
        and (resource == "riskbudgets") == d["metadata"]["name"].endswith("-riskbudget-fields")
    ]


@pytest.mark.slow  # runs helm
def test_the_chart_renders_the_policy_and_its_binding_where_the_cluster_serves_them():
    policy, binding = rendered(*SERVED)
    assert policy["spec"]["validations"] == validations()
    assert policy["spec"]["failurePolicy"] == "Ignore"  # a policy that cannot evaluate never blocks a halt
    [rule] = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["resources"] == ["livestrategies"] and rule["operations"] == ["CREATE", "UPDATE"]
    assert binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}
    assert policy["metadata"]["name"].startswith("livestrat-system-")  # cluster-scoped: one per release
    for document in (policy, binding):
        assert manifest_errors(document, "1.34", strict=True) == [], document["kind"]
    assert rendered() == []  # a cluster without it (before 1.30): the operator refuses such a spec itself
    assert rendered(*SERVED, "--set", "admissionPolicy.enabled=false") == []


@pytest.mark.slow  # runs helm
def test_the_chart_renders_the_riskbudgets_policy_beside_it():
    policy, binding = rendered(*SERVED, resource="riskbudgets")
    assert policy["spec"]["validations"] == budget_validations()
    [rule] = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["resources"] == ["riskbudgets"] and policy["spec"]["failurePolicy"] == "Ignore"
    assert binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}
    for document in (policy, binding):
        assert manifest_errors(document, "1.34", strict=True) == [], document["kind"]
    assert rendered(resource="riskbudgets") == []
