"""A new version of shipped strategy code (spec.strategy.code naming another ConfigMap) is a change of the spec: it
follows updatePolicy as every spec change does, and ConfigDrift names the field while it waits."""

from __future__ import annotations

import pytest

from livestrat.api.resource import LiveStrategy
from strategy_operator.observe.observation import Observation
from tests.support.observations import condition, observe, parsed, pod, run, statefulset


def shipped(version: str, policy: str) -> LiveStrategy:
    strategy = parsed(updatePolicy=policy).spec.strategy.to_wire()
    return parsed(updatePolicy=policy, strategy={**strategy, "code": {"configMap": {"name": f"ema-code-{version}"}}})


def running_v3_asked_v4(policy: str) -> Observation:
    running, asked = shipped("v3", policy), shipped("v4", policy)
    old = observe(running)
    return observe(
        asked,
        sts=statefulset(running),
        pods=[pod(config_hash=old.desired_hash)],
        running_config=old.desired_config,
        status={"observedGeneration": 2},  # generation 3 (v4) is new to the operator
    )


def test_under_manual_the_running_strategy_keeps_its_code_and_config_drift_names_the_configmap():
    plan, report = run(running_v3_asked_v4("Manual"))
    assert not plan.apply and plan.replicas == 1 and plan.delete_pods == []
    drift = condition(report, "ConfigDrift")
    assert drift["status"] == "True" and drift["reason"] == "SpecChanged"
    assert "spec.strategy.code.configMap" in drift["message"] and "restartNonce" in drift["message"]


@pytest.mark.parametrize(("policy", "applies"), [("Auto", True), ("Manual", False)])
def test_the_new_code_applies_as_updatepolicy_says(policy, applies):
    plan, _ = run(running_v3_asked_v4(policy))
    assert plan.apply is applies
