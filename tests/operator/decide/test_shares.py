"""Each member's share of its RiskBudget, decided from the budgets and the strategies of a namespace (no cluster).

The decision is pure: budgets and strategies as the operator's caches hold them go in, the ``status.budget``
writes come out, and none when every member already holds its share.
"""

from __future__ import annotations

from typing import Any

from strategy_operator.decide.shares import BudgetView, MemberView, decide_shares


def budget(
    name: str,
    members: list[str],
    *,
    created: str = "2026-01-01T00:00:00Z",
    generation: int = 1,
    status: dict | None = None,
    annotations: dict | None = None,
    **spec: Any,
) -> BudgetView:
    body = {
        "metadata": {"name": name, "creationTimestamp": created, "generation": generation, "annotations": annotations},
        "spec": {
            "members": members,
            "currency": "USDT",
            "limits": {"maxGrossExposure": 10000, "maxDailyLoss": 1000, "maxOpenOrders": 10},
            **spec,
        },
        "status": status or {},
    }
    return BudgetView.read(body)


def member(name: str, budget: dict | None = None, total_pnl: str | None = None) -> MemberView:
    status: dict = {"trading": {"totalPnl": total_pnl}} if total_pnl else {}
    if budget is not None:
        status["budget"] = budget
    return MemberView.read({"metadata": {"name": name}, "status": status})


def test_equal_shares_each_member_gets_its_fraction_of_every_limit_and_nothing_is_written_at_rest():
    budgets = [budget("desk", ["a", "b", "c"])]
    decided = decide_shares(budgets, [member("a"), member("b"), member("c"), member("outsider")])

    assert set(decided.writes) == {"a", "b", "c"}
    share = decided.writes["a"]
    assert share["budget"] == "desk" and share["weight"] == 0.333333
    assert share["maxGrossExposure"] == "3333.33 USDT"  # rounded down: the shares never add up to more
    assert share["maxDailyLoss"] == "333.33 USDT"
    assert share["maxOpenOrders"] == 3
    assert share["observedGeneration"] == 1 and share["reduceOnly"] is False

    at_rest = [member(name, decided.writes[name]) for name in "abc"] + [member("outsider")]
    assert decide_shares(budgets, at_rest).writes == {}


def test_a_weight_change_rewrites_only_the_shares_it_changes():
    before = budget("desk", ["a", "b"], allocation={"rule": "Weights", "weights": {"a": 1, "b": 1}})
    held = decide_shares([before], [member("a"), member("b")]).writes
    after = budget("desk", ["a", "b"], generation=2, allocation={"rule": "Weights", "weights": {"a": 3, "b": 1}})

    writes = decide_shares([after], [member("a", held["a"]), member("b", held["b"])]).writes

    assert writes["a"]["maxGrossExposure"] == "7500.00 USDT" and writes["a"]["weight"] == 0.75
    assert writes["b"]["maxGrossExposure"] == "2500.00 USDT" and writes["b"]["observedGeneration"] == 2


def test_a_strategy_that_leaves_the_budget_loses_its_share():
    desk = budget("desk", ["a", "b"])
    held = decide_shares([desk], [member("a"), member("b")]).writes

    writes = decide_shares([budget("desk", ["a"], generation=2)], [member("a", held["a"]), member("b", held["b"])])

    assert writes.writes["b"] is None
    assert writes.writes["a"]["maxGrossExposure"] == "10000.00 USDT"


def test_a_strategy_listed_by_two_budgets_belongs_to_the_older_and_the_conflict_names_both():
    older = budget("desk", ["a", "b"], created="2026-01-01T00:00:00Z")
    newer = budget("night", ["b", "c"], created="2026-02-01T00:00:00Z")

    decided = decide_shares([newer, older], [member("a"), member("b"), member("c")])

    assert decided.writes["b"]["budget"] == "desk"
    assert decided.writes["c"]["budget"] == "night" and decided.writes["c"]["maxGrossExposure"] == "5000.00 USDT"
    [conflict] = decided.conflicts
    assert (conflict.member, conflict.holder, conflict.others) == ("b", "desk", ("night",))
    assert "RiskBudgets desk and night" in conflict.message()


def test_a_latched_reduce_only_breach_makes_every_share_reduce_only_until_acknowledged():
    breach = {"breach": {"breachedAt": "2026-03-01T10:00:00.000000Z", "onBreach": "ReduceOnly", "limits": []}}
    breached = budget("desk", ["a"], onBreach="ReduceOnly", status=breach)
    assert decide_shares([breached], [member("a")]).writes["a"]["reduceOnly"] is True

    acknowledged = budget(
        "desk",
        ["a"],
        onBreach="ReduceOnly",
        status=breach,
        annotations={"livestrat.io/risk-acknowledged": "2026-03-01T10:00:00.000000Z"},
    )
    assert decide_shares([acknowledged], [member("a")]).writes["a"]["reduceOnly"] is False


def test_performance_weights_follow_total_pnl_in_whole_percentage_points():
    rule = {"rule": "Performance", "minWeight": 0.05}
    desk = budget("desk", ["a", "b"], allocation=rule, limits={"maxGrossExposure": 10000, "maxDrawdown": 1000})

    writes = decide_shares([desk], [member("a", total_pnl="1000.00 USDT"), member("b")]).writes

    assert writes["a"]["weight"] == 0.67 and writes["b"]["weight"] == 0.33
    held = [member("a", writes["a"], "1001.00 USDT"), member("b", writes["b"])]
    assert decide_shares([desk], held).writes == {}  # a dollar more moves no weight by a point


def test_a_budget_whose_spec_does_not_read_takes_no_share_away():
    desk = budget("desk", ["a"])
    held = decide_shares([desk], [member("a")]).writes["a"]
    broken = BudgetView(name="desk", created="2026-01-01T00:00:00Z", generation=2, spec=None)

    assert decide_shares([broken], [member("a", held)]).writes == {}


def test_a_total_pnl_the_pod_of_an_earlier_object_of_the_name_pushed_weighs_nothing():
    """Deleted and applied again while its old pod still ran: that pod's totalPnl (stamped with the old uid) is not
    the member's, and does not move a PnL-weighted allocation."""
    body = {
        "metadata": {"name": "a", "uid": "uid-a"},
        "status": {"trading": {"totalPnl": "900.00 USDT", "strategyUid": "uid-an-earlier-a"}, "budget": {"x": 1}},
    }
    view = MemberView.read(body)
    assert view.total_pnl is None and view.budget == {"x": 1}
    body["status"]["trading"]["strategyUid"] = "uid-a"
    assert MemberView.read(body).total_pnl == "900.00 USDT"
