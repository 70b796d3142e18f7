"""An object the operator cannot read stops nothing that runs, starts nothing, halts all the same, and says so once."""

from __future__ import annotations

import dataclasses

from livestrat.api.status import LiveStrategyStatus
from strategy_operator.build.policy import SpecProblem
from strategy_operator.decide.status import status_patch
from strategy_operator.observe.observation import Observation
from strategy_operator.observe.reading import Unreadable
from tests.support.observations import condition, observe, parsed, pod, run, statefulset

UNREADABLE = SpecProblem("SpecInvalid", "spec.risk: Input should be an object (got a list). Fix it.")


def unreadable(obs: Observation, **changes) -> Observation:
    """``obs`` of an object whose spec does not read (its replicas still an integer)."""
    return dataclasses.replace(obs, spec=None, problems=[UNREADABLE], desired_hash="", **changes)


def settled(obs: Observation) -> Observation:
    """The next look at the same object, the operator's status written (what a second pass sees)."""
    _, report = run(obs)
    return dataclasses.replace(obs, status=report.status)


def test_a_running_strategy_that_does_not_read_keeps_its_pod_and_is_told_once():
    obs = unreadable(settled(observe(pods=[pod()])))
    plan, report = run(obs)
    assert plan.replicas == 1 and plan.hold is None and report.status.phase == "Running"
    invalid = condition(report, "InvalidSpec")
    assert invalid["status"] == "True" and invalid["reason"] == "SpecInvalid"
    assert "spec.risk" in invalid["message"] and "keeps the configuration it was started with" in invalid["message"]
    assert "kubectl patch livestrategy ema-cross-btc --type merge" in invalid["message"]
    assert [(e.type, e.reason) for e in report.events] == [("Warning", "SpecInvalid")]
    assert run(settled(obs))[1].events == []  # the next pass tells nothing new


def test_a_strategy_that_does_not_read_and_runs_nothing_starts_nothing():
    for sts in (statefulset(parsed(), 0), None):
        plan, report = run(unreadable(observe(sts=sts)))
        assert plan.replicas == 0 and plan.hold.reason == "SpecInvalid" and report.status.phase == "Invalid"
        assert "No pod runs until it can be read" in condition(report, "InvalidSpec")["message"]
        assert [e.reason for e in report.events] == ["SpecInvalid"]


def test_halts_act_on_an_object_that_does_not_read():
    running = unreadable(observe(pods=[pod()]))
    halts = {
        "ScaledToZero": dataclasses.replace(running, spec_replicas=0),
        "KillSwitch": dataclasses.replace(running, kill_switch=True),
        "Deleting": dataclasses.replace(running, deleting=True),
        "RiskLimitBreached": dataclasses.replace(running, risk_recorded="2026-03-02T11:00:00Z"),
        "HaltRequested": dataclasses.replace(running, halt_requested="desk: alice"),
    }
    for reason, obs in halts.items():
        plan, report = run(obs)
        assert plan.replicas == 0 and plan.hold.reason == reason, reason
        assert report.status.phase == "Halting" and condition(report, "InvalidSpec")["reason"] == "SpecInvalid"
    # a spec.replicas that does not read asks for nothing: the pod stays
    assert run(dataclasses.replace(running, spec_replicas=None))[0].replicas == 1
    # once halted, the problem holds it: a resume needs a spec that reads
    plan, _ = run(unreadable(observe(sts=statefulset(parsed(), 0)), spec_replicas=1))
    assert plan.replicas == 0


def test_the_kill_switch_marks_an_unreadable_strategy_halted_by_its_annotation():
    engaged = unreadable(observe(pods=[pod()]), kill_switch=True)
    plan, _ = run(engaged)
    assert plan.replicas == 0 and plan.mark_halted is not None and not plan.scale_spec_to_zero


def test_where_the_annotations_do_not_read_the_kill_switch_sets_spec_replicas_where_the_scale_subresource_can():
    # Adding an annotation to annotations that are not a map of strings would replace them all.
    engaged = unreadable(observe(pods=[pod()]), kill_switch=True, annotations_writable=False)
    assert run(engaged)[0].scale_spec_to_zero and run(engaged)[0].mark_halted is None
    assert not run(dataclasses.replace(engaged, spec_replicas=None))[0].scale_spec_to_zero
    blocked, _ = run(dataclasses.replace(engaged, scalable=False))  # status.replicas unreadable: written back first
    assert blocked.replicas == 0 and not blocked.scale_spec_to_zero


def test_the_runtime_status_that_does_not_read_is_unknown_and_told_once():
    risk = Unreadable("status.risk", "Input should be an object (got a list)")
    trading = Unreadable("status.trading.fills", "Input should be a valid integer (got a string)")
    obs = observe(pods=[pod()], status={"phase": "Running"})
    obs = dataclasses.replace(obs, unreadable_status=(risk, trading))
    plan, report = run(obs)
    assert plan.replicas == 1 and report.status.phase == "Running"
    for type, field in (("RiskHalted", "status.risk"), ("Trading", "status.trading.fills")):
        found = condition(report, type)
        assert (found["status"], found["reason"]) == ("Unknown", "StatusInvalid") and field in found["message"]
        assert "--subresource=status" in found["message"]
    assert sorted(e.message.split(":")[0] for e in report.events if e.reason == "StatusInvalid") == [
        "status.risk",
        "status.trading.fills",
    ]
    assert [e for e in run(settled(obs))[1].events if e.reason == "StatusInvalid"] == []
    # a breach the operator recorded holds all the same
    _, report = run(dataclasses.replace(obs, risk_recorded="2026-03-02T11:00:00Z"))
    assert condition(report, "RiskHalted")["reason"] == "RiskLimitBreached"


def test_the_operators_own_status_that_does_not_read_is_written_back_and_told():
    repair = Unreadable("status.podName", "Input should be a valid string (got an object)")
    obs = dataclasses.replace(observe(pods=[]), status_repairs=(repair,))
    _, report = run(obs)
    assert [(e.reason, e.message.split(":")[0]) for e in report.events if e.type == "Warning"] == [
        ("StatusRepaired", "status.podName")
    ]
    # unread, the stored value shows as absent, like the desired one: written anyway (None deletes it)
    assert status_patch(report.status, report.status, (repair,)) == {"podName": None}
    whole = Unreadable("status", "must be an object, it is a string")
    assert set(status_patch(report.status, report.status, (whole,))) == {
        "phase",
        "message",
        "replicas",
        "selector",
        "observedGeneration",
        "podName",
        "conditions",
        "halt",
        "promotion",
        "nettingClaim",
    }
    assert status_patch(LiveStrategyStatus(), LiveStrategyStatus()) == {}
