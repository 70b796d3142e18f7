"""What the desk prints of RiskBudgets and of a member's share, from budgets whose status the operator's own
decision wrote (tests/support/budgets.py): no API server, rendered by Rich as a terminal shows it."""

from __future__ import annotations

from decimal import Decimal

from livestrat.desk import budget_views, budgets, fleet, views
from tests.desk.test_fleet import NOW, running, stored
from tests.desk.test_views import shown
from tests.support.budgets import budget_body, member_report, member_share

NS = "desk-a"


def calm() -> dict:
    reports = [
        member_report("alpha", 3000, daily="-100.00 USDT", orders=2),
        member_report("beta", -1000, daily="20.00 USDT"),
    ]
    return budget_body("account-a", NS, reports, maxGrossExposure=8000.0, maxDailyLoss=500.0)


def breached() -> dict:
    reports = [member_report("alpha", 6000, daily="-300.00 USDT"), member_report("beta", -3000)]
    return budget_body("account-b", NS, reports, on_breach="HaltBreacher", maxGrossExposure=8000.0)


def test_the_budgets_table_shows_members_state_policy_each_limit_used_vs_allowed_exposure_and_pnl():
    rows = [budgets.row(calm()), budgets.row(breached())]
    text = shown(budget_views.budgets_view(rows))
    line_a = next(line for line in text.splitlines() if " account-a " in line)
    assert line_a.split()[:5] == [NS, "account-a", "2/2", "Active", "HaltAll"]
    assert "4000.00 USDT" in line_a and "-80.00 USDT" in line_a  # Σ|notional|, Σ daily PnL
    assert "maxGrossExposure 4000.00 USDT/8000.00 USDT (50%)" in line_a
    assert "maxDailyLoss 80.00 USDT/500.00 USDT (16%)" in line_a
    line_b = next(line for line in text.splitlines() if " account-b " in line)
    assert line_b.split()[2:5] == ["2/2", "Breached", "HaltBreacher"]
    assert "2 budgets, 1 breached" in text
    assert f"kubectl -n {NS} annotate riskbudget account-b livestrat.io/risk-acknowledged=" in text
    # money read once, by the desk's one parser, into amounts per currency
    assert rows[0].exposure == {"USDT": Decimal("4000.00")} and rows[0].daily_pnl == {"USDT": Decimal("-80.00")}


def test_one_budget_shows_its_members_rows_from_its_status_and_how_to_acknowledge_the_breach():
    body = breached()
    each = budgets.row(body)
    text = shown(budget_views.budget_view(each))
    alpha = next(line for line in text.splitlines() if line.startswith("alpha "))
    beta = next(line for line in text.splitlines() if line.startswith("beta "))
    assert "6000.00 USDT" in alpha and "-300.00 USDT" in alpha and "HALTED" in alpha  # the breacher halts
    assert "3000.00 USDT" in beta and "HALTED" not in beta
    at = body["status"]["breach"]["breachedAt"]
    assert f"acknowledge: kubectl -n {NS} annotate riskbudget account-b livestrat.io/risk-acknowledged={at}" in text
    assert "maxGrossExposure" in text and "112%" in text  # 9000 of 8000

    document = budget_views.budget_document(each, members=True)
    assert [(m["name"], m["grossExposure"], m["halted"]) for m in document["memberRows"]] == [
        ("alpha", {"USDT": "6000.00"}, True),
        ("beta", {"USDT": "3000.00"}, False),
    ]
    assert document["breach"]["halted"] == ["alpha"] and document["acknowledge"].endswith(f"={at} --overwrite")


def test_an_active_budget_offers_no_acknowledgement():
    each = budgets.row(calm())
    assert each.acknowledge_command is None
    assert "acknowledge" not in shown(budget_views.budget_view(each))


def test_a_member_shows_its_budget_and_share_in_list_and_status():
    budget = calm()
    member = stored("alpha", NS, status=running(totalPnl="-100.00 USDT") | {"budget": member_share(budget, 0.5)})
    loner = stored("solo", NS, status=running(totalPnl="1.00 USDT"))
    rows = [fleet.row(member), fleet.row(loner)]

    listed = shown(views.fleet_view(rows, NOW))
    assert "BUDGET" in listed
    assert next(line for line in listed.splitlines() if " alpha " in line).endswith("account-a 50%")
    assert next(line for line in listed.splitlines() if " solo " in line).rstrip().endswith("-")

    status = shown(views.status_view(rows[0], [], None, NOW))
    assert "budget: account-a, share 50%: maxGrossExposure 4000.00 USDT, maxDailyLoss 250.00 USDT" in status
    document = views.status_document(rows[0], [], None, NOW)
    assert document["budget"] == {"name": "account-a", "weight": 0.5}
    assert document["budgetShare"]["maxDailyLoss"] == "250.00 USDT"
    assert views.row_document(rows[1], NOW)["budget"] is None


def test_without_any_member_in_view_the_list_has_no_budget_column():
    rows = [fleet.row(stored("solo", NS, status=running(totalPnl="1.00 USDT")))]
    assert "BUDGET" not in shown(views.fleet_view(rows, NOW))
