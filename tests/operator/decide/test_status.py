"""The status the operator writes: staleness, trading, conditions, a refused write; valid against the CRD."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import jsonschema
import pytest

from livestrat.api.crd import build_crd
from livestrat.api.status import LiveStrategyStatus
from strategy_operator.build.policy import SpecProblem
from strategy_operator.decide import conditions
from strategy_operator.decide.events import Event
from strategy_operator.decide.status import status_patch, with_operator_part, write_failed
from tests.support.observations import BREACH, NOW, condition, observe, parsed, pod, run, stamp

STATUS_SCHEMA = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]


def test_a_heartbeat_older_than_the_limit_makes_the_strategy_stale():
    trading = {"nodeState": "Running", "heartbeat": stamp(10)}
    _, report = run(observe(pods=[pod()], status={"trading": trading}))
    assert condition(report, "Stale")["status"] == "False" and condition(report, "Trading")["status"] == "True"
    assert report.recheck_after == pytest.approx(50.05)
    trading = {"nodeState": "Running", "heartbeat": stamp(61)}
    _, report = run(observe(pods=[pod(ready_for=120, age=200)], status={"trading": trading}))
    assert condition(report, "Stale")["reason"] == "HeartbeatTooOld"
    assert condition(report, "Trading")["status"] == "Unknown"
    _, report = run(observe(pods=[pod(ready_for=61, age=100)]))
    assert condition(report, "Stale")["reason"] == "NoHeartbeat"
    # a heartbeat from the previous pod counts from when the new one became ready
    _, report = run(
        observe(pods=[pod(ready_for=5)], status={"trading": {"nodeState": "Running", "heartbeat": stamp(600)}})
    )
    assert condition(report, "Stale")["status"] == "False"


def test_trading_says_what_the_runtime_reports():
    _, report = run(observe(pods=[pod()]))
    assert condition(report, "Trading")["status"] == "Unknown" and condition(report, "Trading")["reason"] == "NoReport"
    _, report = run(observe(pods=[pod()], status={"trading": {"nodeState": "Halting", "heartbeat": stamp(1)}}))
    assert condition(report, "Trading")["reason"] == "NodeNotRunning"


def test_a_transition_time_changes_only_when_the_status_changes():
    previous = conditions.merge(
        [], [conditions.Verdict.false("Ready", "Starting", "a")], now=NOW - timedelta(hours=1), generation=1
    )
    same = conditions.merge(previous, [conditions.Verdict.false("Ready", "Other", "b")], now=NOW, generation=2)
    assert same[0].last_transition_time == previous[0].last_transition_time and same[0].reason == "Other"
    flipped = conditions.merge(previous, [conditions.Verdict.true("Ready", "PodReady")], now=NOW, generation=2)
    assert flipped[0].last_transition_time == "2026-03-02T12:00:00Z"


def test_the_same_observation_twice_changes_nothing_and_tells_nothing():
    obs = observe(pods=[pod()], status={"trading": {"nodeState": "Running", "heartbeat": stamp(1)}})
    _, first = run(obs)
    again = dataclasses.replace(
        obs, status=with_operator_part(obs.status, first.status), now=NOW + timedelta(seconds=5)
    )
    _, second = run(again)
    assert second.status == first.status and second.events == []
    assert [e.reason for e in first.events] == ["Running"]


@pytest.mark.parametrize(
    "obs",
    [
        observe(sts=None),
        observe(pods=[pod()], status={"trading": {"nodeState": "Running", "heartbeat": stamp(1)}}),
        observe(parsed(replicas=0), pods=[pod(terminating_for=200)]),
        observe(status={"risk": BREACH}),
        observe(problems=[SpecProblem("SecretNotFound", "x")]),
    ],
    ids=["starting", "running", "halt-timed-out", "risk-halted", "pending"],
)
def test_the_status_written_is_valid_against_the_crd_and_the_models(obs):
    _, reported = run(obs)
    written = {k: v for k, v in status_patch(LiveStrategyStatus(), reported.status).items() if v is not None}
    jsonschema.Draft7Validator(STATUS_SCHEMA).validate(written)
    assert LiveStrategyStatus.model_validate(written, strict=False) == reported.status
    assert [c["type"] for c in written["conditions"]] == [
        "Ready",
        "Trading",
        "Halted",
        "RiskHalted",
        "ConfigDrift",
        "InvalidSpec",
        "Stale",
        "DisruptionBlocked",
    ]


def test_a_refused_halt_is_reported_failed_never_halted_and_the_generation_not_observed():
    obs = observe(parsed(replicas=0), pods=[pod()], status={"phase": "Running", "observedGeneration": 2})
    _, report = run(obs)
    failure = write_failed(obs, report, "HaltFailed", "could not halt: 403 Forbidden")
    assert failure.status.phase == "Failed" and failure.status.observed_generation == 2
    assert condition(failure, "Ready")["reason"] == "HaltFailed"
    assert condition(failure, "Halted") | {"lastTransitionTime": ""} == {
        "type": "Halted",
        "status": "False",
        "reason": "HaltFailed",
        "message": "could not halt: 403 Forbidden",
        "lastTransitionTime": "",
        "observedGeneration": 3,
    }
    assert condition(failure, "Trading")["status"] == "Unknown"
    assert failure.events == [Event("Warning", "HaltFailed", "could not halt: 403 Forbidden")]
    applied = write_failed(obs, report, "ApplyFailed", "could not update ConfigMap")
    assert (
        condition(applied, "Ready")["reason"] == "ApplyFailed"
        and condition(applied, "Halted")["reason"] != "ApplyFailed"
    )


def test_what_a_status_write_repairs_is_told_also_when_the_pass_then_fails():
    # The status write removes what a pod of an earlier object of the name pushed (and writes back an unreadable
    # field of the operator's) whether the pass then succeeds or not, and is not made again: so is its event.
    obs = dataclasses.replace(observe(pods=[pod()]), runtime_of_another="uid-earlier")
    _, report = run(obs)
    told = [e for e in report.events if e.reason == "StatusFromEarlierObject"]
    assert len(told) == 1 and "uid uid-earlier" in told[0].message and told[0].type == "Warning"
    failure = write_failed(obs, report, "ApplyFailed", "could not update ConfigMap")
    assert [e.reason for e in failure.events if e.reason == "StatusFromEarlierObject"] == ["StatusFromEarlierObject"]
    assert status_patch(obs.status, failure.status, drop_runtime=True)["trading"] is None
