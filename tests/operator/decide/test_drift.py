"""Operator upgrades: never a restart of a running strategy; ConfigDrift says what would change."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from livestrat.api.resource import LiveStrategy
from strategy_operator.decide.plan import plan as make_plan
from strategy_operator.observe.observation import Observation
from tests.support.observations import SETTINGS, condition, observe, parsed, pod, run, statefulset, status

NEW_IMAGE = SETTINGS.model_copy(update={"runtime_image": "registry.example.com/livestrat/livestrat-runtime:0.2.0"})


def built_by_the_old_operator(running: LiveStrategy, now: LiveStrategy | None = None, **kwargs: Any) -> Observation:
    """``running``'s pod and StatefulSet built with SETTINGS; observed (as ``now``) by an operator with NEW_IMAGE."""
    old = observe(running)
    kwargs.setdefault("status", {"observedGeneration": 3})
    return observe(
        now or running,
        sts=statefulset(running),
        pods=[pod(config_hash=old.desired_hash)],
        running_config=old.desired_config,
        settings=NEW_IMAGE,
        **kwargs,
    )


@pytest.mark.parametrize("policy", ["Auto", "Manual"])
def test_a_new_default_runtime_image_never_restarts_a_running_strategy(policy):
    plan, report = run(built_by_the_old_operator(parsed(updatePolicy=policy)))
    assert not plan.apply and plan.replicas == 1 and plan.delete_pods == []
    assert report.status.phase == "Running"
    drift = condition(report, "ConfigDrift")
    assert drift["status"] == "True" and drift["reason"] == "RuntimeImageChanged"
    assert "registry.example.com/livestrat/livestrat-runtime:0.2.0" in drift["message"]
    assert "livestrat-runtime:0.1.0" in drift["message"] and "restartNonce" in drift["message"]
    assert "ConfigDrift" in [e.reason for e in report.events]


def test_a_new_way_of_building_the_pod_is_reported_as_an_operator_upgrade():
    strategy = parsed()
    obs = built_by_the_old_operator(strategy)
    sts = copy.deepcopy(obs.statefulset)
    sts["spec"]["template"]["spec"]["enableServiceLinks"] = True  # what an older operator version built
    sts["spec"]["template"]["metadata"]["annotations"].pop("livestrat.io/spec-hash")  # before it carried one
    plan, report = run(dataclasses.replace(obs, statefulset=sts, desired_statefulset=statefulset(strategy)))
    assert not plan.apply
    drift = condition(report, "ConfigDrift")
    assert drift["reason"] == "OperatorUpgraded" and "spec.enableServiceLinks" in drift["message"]


def test_a_change_of_the_strategys_own_spec_under_auto_restarts_it_and_brings_the_new_image():
    changed = parsed(risk={"maxDailyLoss": 10})
    obs = built_by_the_old_operator(parsed(), changed, status={"observedGeneration": 2})
    plan, _ = run(obs)
    assert plan.apply  # generation 3 is new to the operator and its spec differs from what runs
    plan, _ = run(dataclasses.replace(obs, status=status(observedGeneration=3)))
    assert not plan.apply  # acted on already: a difference in rendering alone replaces nothing
    plan, _ = run(built_by_the_old_operator(parsed(), parsed(restartNonce="now"), status={"observedGeneration": 3}))
    assert plan.apply  # a restart nonce restarts it, whatever else
    manual = built_by_the_old_operator(
        parsed(updatePolicy="Manual"), parsed(updatePolicy="Manual", risk={"maxDailyLoss": 10})
    )
    assert not make_plan(dataclasses.replace(manual, status=status(observedGeneration=2))).apply


def test_changing_only_the_update_policy_or_the_replicas_restarts_nothing():
    obs = built_by_the_old_operator(parsed(updatePolicy="Manual"), parsed(updatePolicy="Auto"), status={})
    plan, report = run(obs)
    assert not plan.apply and condition(report, "ConfigDrift")["reason"] == "RuntimeImageChanged"


def test_a_strategy_without_a_running_pod_takes_the_new_pod_at_once():
    halted = parsed(replicas=0)
    old = observe(halted)
    plan, report = run(
        observe(halted, sts=statefulset(halted, 0), running_config=old.desired_config, settings=NEW_IMAGE)
    )
    assert plan.apply and condition(report, "ConfigDrift")["status"] == "False"
    obs = built_by_the_old_operator(parsed())
    plan, _ = run(dataclasses.replace(obs, pods=[dataclasses.replace(obs.pods[0], running=False, ready=False)]))
    assert plan.apply  # crash-looping: nothing running to leave alone


def test_a_quantity_stored_in_canonical_form_is_no_template_change():
    from strategy_operator.decide.drift import template_changes

    def template(cpu: str, memory: str, size: str) -> dict[str, Any]:
        container = {"name": "strategy", "resources": {"requests": {"cpu": cpu, "memory": memory}}}
        volume = {"name": "tmp", "emptyDir": {"sizeLimit": size}}
        return {"spec": {"containers": [container], "volumes": [volume]}}

    assert template_changes(template("500m", "1Gi", "1Gi"), template("0.5", "1024Mi", "1Gi")) == []
    assert template_changes(template("500m", "1Gi", "1Gi"), template("1", "1Gi", "1Gi")) == [
        "spec.containers[strategy].resources.requests.cpu"
    ]
