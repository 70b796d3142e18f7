"""A RiskBudget that lists a strategy another (older) budget holds says so in a condition naming both.

Pure, as the rest of the budget's decision: which budget holds which strategy is
``strategy_operator.decide.shares.claims`` over the namespace's budgets; the budget's status shows the result.
"""

from __future__ import annotations

from datetime import UTC, datetime

from livestrat.api.budget_spec import RiskBudgetSpec
from livestrat.api.budget_status import RiskBudgetStatus
from strategy_operator.decide.budget import BudgetObservation, decide_budget
from strategy_operator.decide.budget_figures import MemberReport
from strategy_operator.decide.shares import BudgetView, held_elsewhere

NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)


def budget_body(name: str, members: list[str], created: str) -> dict:
    return {
        "metadata": {"name": name, "creationTimestamp": created, "generation": 1},
        "spec": {"members": members, "currency": "USDT", "limits": {"maxGrossExposure": 1000}},
    }


def observe(body: dict, held_elsewhere: dict[str, str]) -> BudgetObservation:
    spec = RiskBudgetSpec.model_validate(body["spec"])
    return BudgetObservation(
        name=body["metadata"]["name"],
        namespace="trading",
        generation=1,
        spec=spec,
        status=RiskBudgetStatus(),
        acknowledgement=None,
        members=[MemberReport(name=m, exists=True) for m in spec.members],
        halted_by_this={},
        now=NOW,
        held_elsewhere=held_elsewhere,
    )


def condition(status: RiskBudgetStatus, type_: str):
    return next(c for c in status.conditions if c.type == type_)


def test_the_newer_budget_names_both_and_the_older_shows_no_conflict():
    desk = budget_body("desk-usdt", ["alpha"], "2026-01-01T00:00:00Z")
    night = budget_body("night-usdt", ["alpha", "beta"], "2026-02-01T00:00:00Z")
    views = [BudgetView.read(desk), BudgetView.read(night)]

    def elsewhere(name: str) -> dict[str, str]:
        return held_elsewhere(name, views)

    newer = decide_budget(observe(night, elsewhere("night-usdt"))).status
    conflict = condition(newer, "MemberConflict")
    assert conflict.status == "True" and conflict.reason == "MemberOfAnotherBudget"
    assert "LiveStrategy alpha is listed by RiskBudgets desk-usdt and night-usdt" in conflict.message
    assert "Remove it from spec.members" in conflict.message

    older = decide_budget(observe(desk, elsewhere("desk-usdt"))).status
    assert condition(older, "MemberConflict").status == "False"
