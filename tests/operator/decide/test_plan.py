"""The plan: replicas, what may be applied now, which pods to delete, the kill switch (no API server, no clock)."""

from __future__ import annotations

import dataclasses

from strategy_operator.build.policy import SpecProblem
from strategy_operator.decide.events import Event
from strategy_operator.decide.plan import Plan, SecretsCheck, secrets_due
from strategy_operator.decide.plan import plan as make_plan
from strategy_operator.observe.observation import PodView
from tests.support.observations import condition, observe, parsed, pod, run, statefulset


def test_the_kill_switch_holds_at_zero_and_leaves_the_desks_halt_without_rewriting_the_spec():
    plan, report = run(observe(kill_switch=True, pods=[pod()]))
    assert plan.replicas == 0 and plan.hold.reason == "KillSwitch" and not plan.scale_spec_to_zero
    assert plan.mark_halted == "kill switch of namespace desk, seen 2026-03-02T12:00:00Z"
    assert report.status.phase == "Halting"
    plan, report = run(observe(parsed(replicas=0), kill_switch=True))
    assert plan.mark_halted is not None and report.status.phase == "Halted"  # a manifest may say 1 again
    assert condition(report, "Halted")["reason"] == "KillSwitch"
    # a halt the desk has already noted is kept as it is
    plan, _ = run(dataclasses.replace(observe(kill_switch=True), halt_requested="desk: bob"))
    assert plan.hold.reason == "KillSwitch" and plan.mark_halted is None


def test_the_desks_halt_annotation_holds_whatever_the_spec_says_and_its_note_is_shown():
    plan, report = run(dataclasses.replace(observe(pods=[pod()]), halt_requested="desk: alice, venue down"))
    assert plan.replicas == 0 and plan.hold.reason == "HaltRequested" and plan.mark_halted is None
    assert report.status.phase == "Halting"
    plan, report = run(dataclasses.replace(observe(), halt_requested="desk: alice, venue down"))
    assert report.status.phase == "Halted"
    halted = condition(report, "Halted")
    assert halted["reason"] == "HaltRequested" and "'desk: alice, venue down'" in halted["message"]
    assert "kubectl annotate livestrategy ema-cross-btc livestrat.io/halt-" in halted["message"]
    # also when the spec does not read, and over a running pod that keeps running otherwise
    unreadable = dataclasses.replace(
        observe(pods=[pod()]), spec=None, problems=[SpecProblem("SpecInvalid", "x")], halt_requested=""
    )
    assert make_plan(unreadable).replicas == 0 and make_plan(unreadable).hold.reason == "HaltRequested"


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


def test_a_running_pod_of_an_earlier_object_of_the_name_is_replaced_at_once_whatever_the_policy():
    """Adopted from an earlier LiveStrategy of this name (deleted --cascade=orphan with its finalizer taken off by
    hand, so its pod kept running): the pod runs that object's identity, cannot report (its pushes are ignored)
    and has shut its own gate; under Manual too it is replaced with this object's configuration at once."""
    strategy = parsed(updatePolicy="Manual")
    applied = statefulset(parsed(updatePolicy="Manual", haltPolicy="cancelOrders"))  # what the adopted pod runs
    running = observe(parsed(updatePolicy="Manual", haltPolicy="cancelOrders")).desired_config

    def over(config: object) -> Plan:
        return run(observe(strategy, sts=applied, pods=[pod(config_hash="the-applied-hash")], running_config=config))[0]

    earlier = {**running, "strategy": {**running["strategy"], "uid": "uid-earlier"}}
    assert observe(strategy).desired_config["strategy"]["uid"] == "uid-1"
    plan = over(earlier)
    assert plan.apply and plan.replicas == 1
    # the control: the same drift under this object's own identity waits under Manual (ConfigDrift)
    assert not over(running).apply
    for odd in ({**running, "strategy": "garbage"}, {**running, "strategy": {"name": "x"}}):  # identity not known
        assert not over(odd).apply


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


def test_the_orphaned_pod_of_a_running_strategy_is_left_for_its_statefulset_to_adopt_not_deleted():
    orphan = pod(controlled=False, adoptable=True)
    plan, _ = run(observe(sts=None, pods=[orphan]))  # `kubectl delete statefulset --cascade=orphan`
    assert plan.replicas == 1 and plan.delete_pods == []
    halted = parsed(replicas=0)
    plan, _ = run(observe(halted, sts=None, pods=[orphan]))  # it must not run: deleted
    assert [d.reason for d in plan.delete_pods] == ["RoguePodDeleted"]
    plan, _ = run(observe(pods=[pod(), pod(controlled=False)]))  # a foreign pod beside it: never two
    assert [d.reason for d in plan.delete_pods] == ["RoguePodDeleted"]


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
    assert (
        "pending configuration" in invalid["message"]
        and "keeps the configuration it was started with" in invalid["message"]
    )
    drift = condition(report, "ConfigDrift")
    assert drift["reason"] == "SpecChanged" and "cannot start yet" in drift["message"]
    assert Event("Warning", "SecretNotFound", invalid["message"]) in report.events


def test_an_edit_a_running_strategy_cannot_run_is_not_applied_and_stops_nothing():
    """Decision 11: a spec edit the operator refuses (an image, live mode, a Secret it cannot find under Auto)
    keeps the running pod on the configuration it was started with; halts still act, a new strategy starts nothing."""
    old = parsed()
    new = parsed(pod={"image": "elsewhere.example/runtime:1"})
    old_obs = observe(old)
    refused = SpecProblem("ImageNotAllowed", "spec.pod.image 'elsewhere.example/runtime:1' is not allowed.")
    obs = observe(
        new,
        sts=statefulset(old),
        pods=[pod(config_hash=old_obs.desired_hash)],
        running_config=old_obs.desired_config,
        problems=[refused],
    )
    plan, report = run(obs)
    assert plan.replicas == 1 and plan.hold is None and not plan.apply and plan.delete_pods == []
    assert report.status.phase == "Running"
    invalid = condition(report, "InvalidSpec")
    assert invalid["status"] == "True" and invalid["reason"] == "ImageNotAllowed"
    assert "The running pod keeps the configuration it was started with" in invalid["message"]
    assert "not allowed" in condition(report, "ConfigDrift")["message"]
    assert secrets_due(obs) is None
    # halts still act
    plan, _ = run(dataclasses.replace(obs, spec=parsed(pod={"image": "elsewhere.example/runtime:1"}, replicas=0).spec))
    assert plan.replicas == 0 and plan.hold.reason == "ScaledToZero"
    assert make_plan(dataclasses.replace(obs, kill_switch=True)).replicas == 0
    # nothing starts from it: a new strategy, or one halted
    for held in (observe(new, sts=None, problems=[refused]), observe(new, sts=statefulset(old, 0), problems=[refused])):
        plan, report = run(held)
        assert plan.replicas == 0 and plan.hold.reason == "ImageNotAllowed" and report.status.phase == "Invalid"


def test_the_secrets_are_looked_at_only_when_a_pod_is_to_run_the_desired_configuration():
    assert secrets_due(observe(sts=None)) == SecretsCheck.START  # a new strategy: before its pod starts
    assert secrets_due(observe(pods=[pod()])) is None  # its ready pod has its environment
    assert secrets_due(observe(parsed(replicas=0))) is None  # held: nothing starts
    assert secrets_due(observe(kill_switch=True)) is None
    old = parsed(updatePolicy="Manual")
    old_obs = observe(old)
    pending = observe(
        parsed(updatePolicy="Manual", risk={"maxDailyLoss": 10}),
        sts=statefulset(old),
        pods=[pod(config_hash=old_obs.desired_hash)],
        running_config=old_obs.desired_config,
    )
    assert secrets_due(pending) == SecretsCheck.PENDING  # the running pod stays; what waits is reported
