"""A risk halt: held until acknowledged, latched by the operator, in place only while the runtime says so."""

from __future__ import annotations

import dataclasses

from tests.support.observations import BREACH, condition, observe, parsed, pod, run


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


def test_a_budget_breach_halts_the_member_as_its_own_risk_breach_would_whatever_its_on_breach():
    at = "2026-03-02T11:00:00.250000Z"
    for on_breach in ("ScaleToZero", "HaltInPlace"):  # its runtime is not halted: the pod stops either way
        strategy = parsed(risk={"onBreach": on_breach})
        running = dataclasses.replace(observe(strategy, pods=[pod()]), budget_halts=(("account-a", at),))
        plan, report = run(running)
        assert plan.replicas == 0 and plan.hold.reason == "RiskLimitBreached" and plan.hold.asked
        assert report.status.phase == "Halting"
        stopped = dataclasses.replace(observe(strategy), budget_halts=(("account-a", at),))
        plan, report = run(stopped)
        assert plan.replicas == 0 and report.status.phase == "RiskHalted"
        assert report.status.halt.reason == "RiskLimitBreached"  # a halt: the member's haltPolicy applies
        risk = condition(report, "RiskHalted")
        assert risk["status"] == "True" and risk["reason"] == "RiskBudgetBreached"
        assert f"kubectl annotate riskbudget account-a livestrat.io/risk-acknowledged={at}" in risk["message"]
    # the member's own acknowledgement does not release the budget's halt
    obs = dataclasses.replace(observe(acknowledgement=at), budget_halts=(("account-a", at),))
    assert run(obs)[0].replicas == 0
