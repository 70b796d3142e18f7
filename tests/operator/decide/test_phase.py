"""The phase and the Ready, Halted and InvalidSpec verdicts, from observations alone (no API server, no clock)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from strategy_operator.build.policy import SpecProblem
from strategy_operator.decide.events import Event
from tests.support.observations import NOW, condition, observe, parsed, pod, run, stamp


def test_a_new_strategy_is_starting_until_its_pod_is_ready_then_running():
    plan, report = run(observe(sts=None))
    assert plan.replicas == 1 and plan.apply and report.status.phase == "Starting"
    assert condition(report, "Ready")["status"] == "False"
    _, report = run(observe(pods=[pod(ready=False)]))
    assert report.status.phase == "Starting" and report.status.pod_name == "ema-cross-btc-0"
    _, report = run(observe(pods=[pod()]))
    assert report.status.phase == "Running" and report.status.replicas == 1
    assert condition(report, "Ready") | {"lastTransitionTime": ""} == {
        "type": "Ready",
        "status": "True",
        "reason": "PodReady",
        "message": "pod ema-cross-btc-0 is ready",
        "lastTransitionTime": "",
        "observedGeneration": 3,
    }


def test_scaling_to_zero_halts_then_halted_once_the_pod_is_gone():
    halted = parsed(replicas=0)
    plan, report = run(observe(halted, pods=[pod(terminating_for=2)]))
    assert plan.replicas == 0 and report.status.phase == "Halting"
    assert condition(report, "Halted")["status"] == "False" and condition(report, "Halted")["reason"] == "Halting"
    _, report = run(observe(halted))
    assert report.status.phase == "Halted" and report.status.replicas == 0 and report.status.pod_name is None
    assert condition(report, "Halted") | {"lastTransitionTime": ""} == {
        "type": "Halted",
        "status": "True",
        "reason": "ScaledToZero",
        "message": "spec.replicas is 0",
        "lastTransitionTime": "",
        "observedGeneration": 3,
    }


def test_a_halt_that_outlasts_the_grace_period_fails_with_a_reason():
    _, report = run(observe(parsed(replicas=0), pods=[pod(terminating_for=91)]))  # 60 s grace + 30 s margin
    assert report.status.phase == "Failed"
    assert condition(report, "Halted")["reason"] == "HaltTimedOut"
    assert "kubectl delete pod ema-cross-btc-0 --force" in report.status.message
    _, report = run(observe(parsed(replicas=0), pods=[pod(terminating_for=89)]))
    assert report.status.phase == "Halting" and report.recheck_after == pytest.approx(1.05)


def test_every_wait_has_a_timeout_that_ends_in_failed():
    _, report = run(observe(pods=[pod(ready=False, age=301)]))
    assert report.status.phase == "Failed" and condition(report, "Ready")["reason"] == "StartTimeout"
    _, report = run(observe(pods=[pod(ready=False, age=100)]))
    assert report.recheck_after == pytest.approx(200.05)
    _, report = run(observe(since=301))  # the StatefulSet never made a pod
    assert report.status.phase == "Failed" and condition(report, "Ready")["reason"] == "PodNotCreated"


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"waiting_reason": "ImagePullBackOff", "waiting_message": "not found"}, "ImagePullBackOff"),
        (
            {"waiting_reason": "CreateContainerConfigError", "waiting_message": 'secret "x" not found'},
            "CreateContainerConfigError",
        ),
        ({"exit_code": 3, "exit_message": "another runtime holds the fence"}, "FencedOut"),
        ({"exit_code": 1, "exit_message": "boom"}, "RuntimeFailed"),
        ({"exit_code": 5, "exit_message": "2 order(s) left open"}, "HaltIncomplete"),
        ({"exit_code": 70}, "HaltOverran"),
    ],
)
def test_a_pod_that_cannot_become_ready_fails_at_once_with_the_kubelets_reason(extra, reason):
    _, report = run(observe(pods=[pod(ready=False, running=False, **extra)]))
    assert report.status.phase == "Failed"
    assert condition(report, "Ready")["reason"] == reason


def test_an_exit_the_runtime_does_not_call_a_failure_leaves_the_pod_starting():
    for code in (0, 137):  # halted as asked and started again; a signal's code, not the runtime's
        _, report = run(observe(pods=[pod(ready=False, running=False, exit_code=code)]))
        assert report.status.phase == "Starting", code
    _, report = run(observe(pods=[pod(ready=False, running=False, exit_code=5)]))
    assert "the halt left orders open at a venue" in report.status.message  # the contract's meaning


def test_a_spec_the_runtime_rejects_is_invalid_with_its_own_words():
    rejected = pod(ready=False, running=False, exit_code=2, exit_message="...\nno module named 'acme.strategies'")
    _, report = run(observe(pods=[rejected]))
    assert report.status.phase == "Invalid"
    invalid = condition(report, "InvalidSpec")
    assert invalid["status"] == "True" and invalid["reason"] == "StrategyRejected"
    assert "no module named 'acme.strategies'" in invalid["message"]


def test_spec_problems_hold_the_pod_at_zero_invalid_or_pending():
    live = SpecProblem("LiveTradingNotAllowed", "not here")
    plan, report = run(observe(problems=[live], sts=None))  # a strategy that runs nothing starts nothing
    assert plan.replicas == 0 and report.status.phase == "Invalid"
    assert condition(report, "InvalidSpec")["reason"] == "LiveTradingNotAllowed"
    missing = SpecProblem("SecretNotFound", "create it")
    plan, report = run(observe(problems=[missing], sts=None))
    assert plan.replicas == 0 and report.status.phase == "Pending"
    assert report.events == [Event("Warning", "SecretNotFound", "create it")]


def test_a_pod_that_was_ready_and_is_not_any_more_is_not_a_failed_start():
    was_ready = {
        "conditions": [{"type": "Ready", "status": "True", "reason": "PodReady", "lastTransitionTime": stamp(7200)}]
    }
    lost = dataclasses.replace(pod(ready=False, age=7300), ready_since=NOW - timedelta(seconds=10))
    _, report = run(observe(pods=[lost], status=was_ready))
    assert report.status.phase == "Starting" and condition(report, "Ready")["reason"] == "PodNotReady"
    assert report.recheck_after == pytest.approx(290.05)  # the start timeout, from when it lost readiness
    assert [e.reason for e in report.events] == ["PodNotReady"]
    long_lost = dataclasses.replace(lost, ready_since=NOW - timedelta(seconds=301))
    _, report = run(observe(pods=[long_lost], status=was_ready))
    assert report.status.phase == "Failed" and condition(report, "Ready")["reason"] == "PodNotReady"
    # the operator's own condition says since when, when the kubelet's does not
    seen = {
        "conditions": [{"type": "Ready", "status": "False", "reason": "PodNotReady", "lastTransitionTime": stamp(100)}]
    }
    _, report = run(observe(pods=[pod(ready=False, age=7300)], status=seen))
    assert report.status.phase == "Starting" and report.recheck_after == pytest.approx(200.05)
    # a new pod after a ready one is a start
    _, report = run(observe(pods=[pod(ready=False, age=10)], status=was_ready))
    assert condition(report, "Ready")["reason"] == "Starting"
