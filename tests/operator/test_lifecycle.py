"""Phases, conditions and decisions, from observations alone (no API server, no clock)."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest

from livestrat.api.crd import build_crd
from livestrat.api.resource import LiveStrategy
from livestrat.api.status import LiveStrategyStatus
from strategy_operator.build.manifests import build_children
from strategy_operator.build.policy import SpecProblem
from strategy_operator.decide import conditions
from strategy_operator.decide.events import Event, transition_events
from strategy_operator.decide.plan import Plan
from strategy_operator.decide.plan import plan as make_plan
from strategy_operator.decide.status import Report, report, status_patch, with_operator_part, write_failed
from strategy_operator.observe.observation import Observation, PodView
from strategy_operator.settings import OperatorSettings
from tests.support.desk import example

NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
SETTINGS = OperatorSettings(stale_after_seconds=60, start_timeout_seconds=300, halt_timeout_margin_seconds=30)
STS_UID = "sts-uid"


def stamp(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parsed(**spec: Any) -> LiveStrategy:
    doc = example("paper-ema-cross")
    doc["spec"].update(spec)
    doc["metadata"].update(namespace="desk", uid="uid-1", generation=3)
    return LiveStrategy.model_validate(doc)


def statefulset(strategy: LiveStrategy, replicas: int = 1, *, settled: bool = True) -> dict[str, Any]:
    sts = copy.deepcopy(build_children(strategy, SETTINGS, replicas=replicas)[-1])
    sts["metadata"].update(uid=STS_UID, generation=5)
    sts["status"] = {"observedGeneration": 5 if settled else 4}
    return sts


def pod(
    *,
    ready: bool = True,
    config_hash: str | None = None,
    controlled: bool = True,
    terminating_for: float | None = None,
    age: float = 30,
    ready_for: float = 20,
    running: bool = True,
    **extra: Any,
) -> PodView:
    return PodView(
        name="ema-cross-btc-0",
        uid="pod-uid",
        controlled=controlled,
        terminating=terminating_for is not None,
        deletion_started=NOW - timedelta(seconds=terminating_for) if terminating_for is not None else None,
        grace_seconds=60.0,
        created=NOW - timedelta(seconds=age),
        ready=ready,
        ready_since=NOW - timedelta(seconds=ready_for) if ready else None,
        running=running,
        config_hash=config_hash,
        **extra,
    )


def observe(
    strategy: LiveStrategy | None = None,
    *,
    sts: dict | bool | None = True,
    pods: list[PodView] | None = None,
    status: dict | None = None,
    kill_switch: bool = False,
    problems: list[SpecProblem] | None = None,
    acknowledgement: str | None = None,
    running_config: dict | None = None,
    since: float = 0,
    deleting: bool = False,
    settings: OperatorSettings = SETTINGS,
    recorded: str | None = None,
    deferred: list[SpecProblem] | None = None,
    spec_replicas: Any = 1,
) -> Observation:
    strategy = strategy or parsed()
    children = build_children(strategy, settings, replicas=1)
    desired_hash = children[-1]["metadata"]["annotations"]["livestrat.io/config-hash"]
    desired_config = json.loads(children[0]["data"]["runtime.json"])
    if sts is True:
        sts = statefulset(strategy, strategy.spec.replicas)
    pods = [dataclasses.replace(p, config_hash=p.config_hash or desired_hash) for p in (pods or [])]
    return Observation(
        name="ema-cross-btc",
        namespace="desk",
        generation=3,
        spec=strategy.spec,
        deleting=deleting,
        acknowledgement=acknowledgement,
        status=LiveStrategyStatus.model_validate(status or {}),
        kill_switch=kill_switch,
        problems=problems or [],
        statefulset=sts or None,
        pods=pods,
        desired_hash=desired_hash,
        running_config=running_config if running_config is not None else desired_config,
        desired_config=desired_config,
        now=NOW,
        phase_since=NOW - timedelta(seconds=since),
        settings=settings,
        spec_replicas=spec_replicas,
        risk_recorded=recorded,
        deferred_problems=deferred or [],
        desired_statefulset=children[-1],
    )


def run(obs: Observation) -> tuple[Plan, Report]:
    decided = make_plan(obs)
    return decided, report(obs, decided)


def condition(reported: Report, type_: str) -> dict[str, Any]:
    """A condition of the reported status, as it is written (camelCase)."""
    return next(c.to_wire() for c in reported.status.conditions if c.type == type_)


def status(**wire: Any) -> LiveStrategyStatus:
    """A status from its wire form; a condition without a transition time gets one (events do not read it)."""
    for item in wire.get("conditions", []):
        item.setdefault("lastTransitionTime", stamp(3600))
    return LiveStrategyStatus.model_validate(wire)


# ------------------------------------------------------------------------------------------------
# Phases
# ------------------------------------------------------------------------------------------------


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
    ],
)
def test_a_pod_that_cannot_become_ready_fails_at_once_with_the_kubelets_reason(extra, reason):
    _, report = run(observe(pods=[pod(ready=False, running=False, **extra)]))
    assert report.status.phase == "Failed"
    assert condition(report, "Ready")["reason"] == reason


def test_a_spec_the_runtime_rejects_is_invalid_with_its_own_words():
    rejected = pod(ready=False, running=False, exit_code=2, exit_message="...\nno module named 'acme.strategies'")
    _, report = run(observe(pods=[rejected]))
    assert report.status.phase == "Invalid"
    invalid = condition(report, "InvalidSpec")
    assert invalid["status"] == "True" and invalid["reason"] == "StrategyRejected"
    assert "no module named 'acme.strategies'" in invalid["message"]


def test_spec_problems_hold_the_pod_at_zero_invalid_or_pending():
    live = SpecProblem("LiveTradingNotAllowed", "not here")
    plan, report = run(observe(problems=[live], pods=[]))
    assert plan.replicas == 0 and report.status.phase == "Invalid"
    assert condition(report, "InvalidSpec")["reason"] == "LiveTradingNotAllowed"
    missing = SpecProblem("SecretNotFound", "create it")
    plan, report = run(observe(problems=[missing], pods=[]))
    assert plan.replicas == 0 and report.status.phase == "Pending"
    assert report.events == [Event("Warning", "SecretNotFound", "create it")]


# ------------------------------------------------------------------------------------------------
# Kill switch, risk
# ------------------------------------------------------------------------------------------------


def test_the_kill_switch_holds_at_zero_and_scales_the_spec_down():
    plan, report = run(observe(kill_switch=True, pods=[pod()]))
    assert plan.replicas == 0 and plan.scale_spec_to_zero and plan.hold.reason == "KillSwitch"
    assert report.status.phase == "Halting"
    plan, report = run(observe(parsed(replicas=0), kill_switch=True))
    assert not plan.scale_spec_to_zero and report.status.phase == "Halted"
    assert condition(report, "Halted")["reason"] == "KillSwitch"


BREACH = {
    "state": "Halted",
    "breachedLimit": "maxDrawdown",
    "reason": "3100 below peak",
    "breachedAt": "2026-03-02T11:00:00.250Z",
}


def test_a_risk_breach_holds_the_pod_at_zero_until_acknowledged():
    plan, report = run(observe(status={"risk": BREACH}))
    assert plan.replicas == 0 and plan.hold.reason == "RiskLimitBreached"
    assert report.status.phase == "RiskHalted"
    risk = condition(report, "RiskHalted")
    assert risk["status"] == "True" and "maxDrawdown" in risk["message"]
    assert "livestrat.io/risk-acknowledged=2026-03-02T11:00:00.250Z" in risk["message"]
    for wrong in ("2026-03-02T11:00:00Z", "yes", ""):
        plan, _ = run(observe(status={"risk": BREACH}, acknowledgement=wrong))
        assert plan.replicas == 0
    plan, report = run(observe(status={"risk": BREACH}, acknowledgement="2026-03-02T11:00:00.25+00:00"))
    assert plan.replicas == 1 and condition(report, "RiskHalted")["reason"] == "Acknowledged"


def test_halt_in_place_keeps_the_pod_running_but_not_trading():
    strategy = parsed(risk={"onBreach": "HaltInPlace"})
    plan, report = run(observe(strategy, status={"risk": BREACH}, pods=[pod()]))
    assert plan.replicas == 1 and report.status.phase == "RiskHalted"
    assert condition(report, "Trading")["status"] == "False"


# ------------------------------------------------------------------------------------------------
# Update policies
# ------------------------------------------------------------------------------------------------


def test_manual_policy_keeps_the_running_configuration_and_names_what_differs():
    old = parsed(updatePolicy="Manual")
    new = parsed(updatePolicy="Manual", risk={"maxDailyLoss": 10}, haltPolicy="cancelOrders")
    old_obs = observe(old, pods=[pod()])
    running_config, applied_sts = old_obs.desired_config, statefulset(old)
    obs = observe(new, sts=applied_sts, pods=[pod(config_hash=old_obs.desired_hash)], running_config=running_config)
    plan, report = run(obs)
    assert not plan.apply and plan.replicas == 1 and report.status.phase == "Running"
    drift = condition(report, "ConfigDrift")
    assert drift["status"] == "True" and drift["reason"] == "SpecChanged"
    assert "spec.haltPolicy" in drift["message"] and "spec.risk.maxDailyLoss" in drift["message"]
    assert "generation 3" in drift["message"]
    # a new restartNonce applies it
    plan, _ = run(dataclasses.replace(obs, spec=parsed(updatePolicy="Manual", restartNonce="1").spec))
    assert plan.apply
    # so does a halt: without a running pod there is nothing to leave alone
    plan, _ = run(dataclasses.replace(obs, pods=[]))
    assert plan.apply


def test_auto_policy_reports_the_restart_while_the_old_pod_goes():
    old = parsed()
    new = parsed(risk={"maxDailyLoss": 10})
    old_hash = observe(old).desired_hash
    new_obs = observe(new)
    sts = statefulset(new)
    plan, report = run(observe(new, sts=sts, pods=[pod(config_hash=old_hash, terminating_for=1)]))
    assert plan.apply and report.status.phase == "Starting" and condition(report, "Ready")["reason"] == "Restarting"
    assert condition(report, "ConfigDrift")["reason"] == "Restarting"
    assert new_obs.desired_hash != old_hash


def test_a_pod_stuck_on_an_old_configuration_is_replaced():
    old_hash = observe(parsed()).desired_hash
    new = parsed(risk={"maxDailyLoss": 10})
    plan, _ = run(observe(new, sts=statefulset(new), pods=[pod(ready=False, config_hash=old_hash)]))
    assert [(d.pod.name, d.reason) for d in plan.delete_pods] == [("ema-cross-btc-0", "Restarting")]
    plan, _ = run(observe(new, sts=statefulset(new), pods=[pod(ready=True, config_hash=old_hash)]))
    assert plan.delete_pods == []  # a ready pod is the StatefulSet's to roll


# ------------------------------------------------------------------------------------------------
# Rogue pods
# ------------------------------------------------------------------------------------------------


def test_pods_that_must_not_run_are_deleted():
    halted = parsed(replicas=0)
    plan, _ = run(observe(halted, sts=statefulset(halted, 0), pods=[pod()]))
    assert [d.reason for d in plan.delete_pods] == ["RoguePodDeleted"]
    plan, _ = run(observe(halted, sts=statefulset(halted, 0, settled=False), pods=[pod()]))
    assert plan.delete_pods == []  # the StatefulSet controller has not acted yet: its pod, its job
    plan, _ = run(observe(pods=[pod(), pod(controlled=False)]))
    assert [d.reason for d in plan.delete_pods] == ["RoguePodDeleted"]  # never two pods, even when running
    plan, _ = run(observe(halted, sts=statefulset(halted, 0), pods=[pod(terminating_for=1)]))
    assert plan.delete_pods == []


# ------------------------------------------------------------------------------------------------
# Staleness, trading
# ------------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------------
# Conditions, events, the status document
# ------------------------------------------------------------------------------------------------


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


def test_events_tell_the_story_of_the_transitions():
    running = status(phase="Running", conditions=[{"type": "Stale", "status": "False", "reason": "Fresh"}])
    stale = status(
        phase="Running",
        conditions=[{"type": "Stale", "status": "True", "reason": "HeartbeatTooOld", "message": "old"}],
    )
    assert transition_events(running, stale) == [Event("Warning", "Stale", "old")]
    assert [e.reason for e in transition_events(stale, running)] == ["HeartbeatResumed"]
    halted = status(
        phase="Halted",
        message="m",
        conditions=[{"type": "Halted", "status": "True", "reason": "KillSwitch"}],
    )
    assert [e.reason for e in transition_events(running, halted)] == ["KillSwitchHalted"]


STATUS_SCHEMA = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]


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
    ]


# ------------------------------------------------------------------------------------------------
# Operator upgrades: never a restart of a running strategy
# ------------------------------------------------------------------------------------------------

NEW_IMAGE = SETTINGS.model_copy(update={"runtime_image": "ghcr.io/livestrat/livestrat-runtime:0.2.0"})


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
    assert "ghcr.io/livestrat/livestrat-runtime:0.2.0" in drift["message"]
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


# ------------------------------------------------------------------------------------------------
# Secrets of a pending configuration, the risk latch, lost readiness, pods before their StatefulSet
# ------------------------------------------------------------------------------------------------


def test_secret_problems_of_a_pending_configuration_hold_nothing_and_are_reported():
    old = parsed(updatePolicy="Manual")
    new = parsed(updatePolicy="Manual", ledger={"dsnSecret": {"name": "pg", "key": "dsn"}})
    old_obs = observe(old)
    missing = SpecProblem("SecretNotFound", "Secret 'pg' (ledger DSN) does not exist.")
    obs = observe(
        new,
        sts=statefulset(old),
        pods=[pod(config_hash=old_obs.desired_hash)],
        running_config=old_obs.desired_config,
        deferred=[missing],
    )
    plan, report = run(obs)
    assert plan.replicas == 1 and not plan.apply and report.status.phase == "Running"
    invalid = condition(report, "InvalidSpec")
    assert invalid["status"] == "True" and invalid["reason"] == "SecretNotFound"
    assert "pending configuration" in invalid["message"] and "keeps its configuration" in invalid["message"]
    drift = condition(report, "ConfigDrift")
    assert drift["reason"] == "SpecChanged" and "cannot start yet" in drift["message"]
    assert Event("Warning", "SecretNotFound", invalid["message"]) in report.events


def test_a_risk_halt_is_latched_by_the_operator_not_by_what_the_runtime_reports():
    at = BREACH["breachedAt"]
    plan, _ = run(observe(status={"risk": BREACH}))
    assert plan.record_breach == at  # first seen: the operator records it
    # the runtime now says Active (a new pod that lost its ledger, or anything with the pod's token): still halted
    plan, report = run(observe(status={"risk": {"state": "Active"}}, recorded=at))
    assert plan.replicas == 0 and plan.record_breach is None and report.status.phase == "RiskHalted"
    assert f"livestrat.io/risk-acknowledged={at}" in condition(report, "RiskHalted")["message"]
    # HaltInPlace keeps the pod up only while its runtime itself reports the halt
    in_place = parsed(risk={"onBreach": "HaltInPlace"})
    plan, _ = run(observe(in_place, status={"risk": BREACH}, recorded=at, pods=[pod()]))
    assert plan.replicas == 1
    plan, report = run(observe(in_place, status={"risk": {"state": "Active"}}, recorded=at, pods=[pod()]))
    assert plan.replicas == 0 and "no longer reports the halt" in condition(report, "RiskHalted")["message"]
    # only the acknowledgement of this breach releases it
    plan, report = run(observe(status={"risk": {"state": "Active"}}, recorded=at, acknowledgement=at))
    assert plan.replicas == 1 and condition(report, "RiskHalted")["reason"] == "WithinLimits"
    _, report = run(observe(status={"risk": BREACH}, recorded=at, acknowledgement=at))
    assert condition(report, "RiskHalted")["reason"] == "Acknowledged"
    # a newer breach is recorded and latched again; an older report does not replace the record
    newer = {**BREACH, "breachedAt": "2026-03-02T12:30:00Z"}
    plan, _ = run(observe(status={"risk": newer}, recorded=at, acknowledgement=at))
    assert plan.replicas == 0 and plan.record_breach == "2026-03-02T12:30:00Z"
    plan, _ = run(observe(status={"risk": BREACH}, recorded="2026-03-02T12:30:00Z", acknowledgement=at))
    assert plan.replicas == 0 and plan.record_breach is None


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


def test_a_pod_whose_statefulset_is_not_in_the_cache_yet_is_its_own_not_a_rogue():
    body = {
        "metadata": {
            "name": "ema-cross-btc-0",
            "uid": "pod-uid",
            "ownerReferences": [
                {"kind": "StatefulSet", "name": "ema-cross-btc", "uid": "just-made", "controller": True}
            ],
        }
    }
    assert PodView.from_body(body, None, "ema-cross-btc").controlled
    assert not PodView.from_body(body, "another-uid", "ema-cross-btc").controlled  # known: it must be this one
    assert not PodView.from_body(body, None, "other-strategy").controlled
    plan, _ = run(observe(sts=None, pods=[PodView.from_body(body, None, "ema-cross-btc")]))
    assert plan.delete_pods == []


def test_the_kill_switch_scales_the_spec_down_even_when_it_cannot_be_read():
    unreadable = dataclasses.replace(
        observe(kill_switch=True, pods=[pod()]), spec=None, problems=[SpecProblem("SpecInvalid", "x")]
    )
    plan = make_plan(unreadable)
    assert plan.replicas == 0 and plan.scale_spec_to_zero
    assert not make_plan(dataclasses.replace(unreadable, spec_replicas=0)).scale_spec_to_zero


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
