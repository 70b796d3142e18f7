"""``livestrat desk`` against the Kubernetes emulator: the watch, the actions, the user's rights.

No operator here: the LiveStrategies and their status are written as the operator and the runtime write them
(``Desk.push_runtime_status``); what the dashboard does is read back from the emulator's store.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import DataTable, Static

from livestrat.desk import roles
from livestrat.desk.cluster import Cluster
from livestrat.desk.cluster_feed import ClusterControls, ClusterSource
from livestrat.desk.dashboard import ConfirmAction, Dashboard
from livestrat.kube_emulator.emulator import KubernetesEmulator
from tests.dashboard.fleet_bodies import plain
from tests.support.budgets import budget_body, member_report, member_share
from tests.support.desk import LIVESTRATEGIES, RISKBUDGETS, Desk, paper
from tests.support.desk_users import add_cluster_role, desk_user
from tests.support.kube import wait_for

SIZE = (200, 50)
NS = "desk-a"


@pytest.fixture
def desk_a(emulator: KubernetesEmulator, kubeconfig_path: Path) -> Desk:
    emulator.add_namespace(NS)
    return Desk(emulator, kubeconfig_path, NS)


def store(desk: Desk, name: str, **spec) -> None:
    desk.emulator.create_object(LIVESTRATEGIES, paper(name, **spec), namespace=desk.namespace)


def cell(app: Dashboard, key: str, column: str) -> str:
    value = app.query_one("#fleet", DataTable).get_cell(key, column)
    return value.plain if isinstance(value, Text) else str(value)


def keys(app: Dashboard) -> list[str]:
    return [str(k.value) for k in app.query_one("#fleet", DataTable).rows]


def budgets_panel(app: Dashboard) -> str:
    panel = app.query_one("#budgets", Static)
    return " ".join(plain(panel.content).split()) if panel.display else ""


def store_budget(emulator: KubernetesEmulator, body: dict) -> None:
    """A RiskBudget as ``kubectl apply`` stores it, then the status the operator's decision wrote."""
    manifest = {k: body[k] for k in ("apiVersion", "kind", "spec")} | {"metadata": {"name": body["metadata"]["name"]}}
    emulator.create_object(RISKBUDGETS, manifest, namespace=NS)
    write_budget_status(emulator, body)


def write_budget_status(emulator: KubernetesEmulator, body: dict) -> None:
    name = body["metadata"]["name"]
    emulator.patch_object(RISKBUDGETS, name, {"status": body["status"]}, namespace=NS, subresource="status")


def user(emulator: KubernetesEmulator, tmp_path: Path, who: str, role: str) -> Path:
    add_cluster_role(emulator, f"livestrat-{role}", roles.rules_of(role))
    return desk_user(emulator, tmp_path, who, [f"livestrat-{role}"], [NS])


async def test_the_dashboard_follows_the_watch_as_strategies_report_come_and_go(desk_a, kubeconfig_path):
    store(desk_a, "ema-cross-btc")
    desk_a.push_runtime_status("ema-cross-btc", fills=3, total_pnl="12.50 USDT")
    desk_b = desk_a.in_namespace("desk-b")
    desk_a.emulator.add_namespace("desk-b")
    store(desk_b, "mean-revert")
    async with await Cluster.connect(kubeconfig=str(kubeconfig_path)) as cluster:
        app = Dashboard(ClusterSource(cluster, None), ClusterControls(cluster))
        async with app.run_test(size=SIZE):
            await wait_for(lambda: keys(app) == ["desk-a/ema-cross-btc", "desk-b/mean-revert"], timeout=10)
            assert cell(app, "desk-a/ema-cross-btc", "pnl") == "12.50 USDT"
            assert "all namespaces" in app.sub_title

            # The runtime pushes a new state: the row follows.
            desk_a.push_runtime_status("ema-cross-btc", fills=4, total_pnl="-3.25 USDT")
            await wait_for(lambda: cell(app, "desk-a/ema-cross-btc", "pnl") == "-3.25 USDT", timeout=10)
            # A new strategy appears, another is deleted.
            store(desk_a, "breakout")
            await wait_for(lambda: "desk-a/breakout" in keys(app), timeout=10)
            desk_b.emulator.delete_object(LIVESTRATEGIES, "mean-revert", namespace="desk-b")
            await wait_for(lambda: keys(app) == ["desk-a/breakout", "desk-a/ema-cross-btc"], timeout=10)


async def test_one_namespace_shows_only_its_strategies(desk_a, kubeconfig_path):
    store(desk_a, "ema-cross-btc")
    desk_a.emulator.add_namespace("desk-b")
    store(desk_a.in_namespace("desk-b"), "elsewhere")
    async with await Cluster.connect(kubeconfig=str(kubeconfig_path), namespace=NS) as cluster:
        app = Dashboard(ClusterSource(cluster, cluster.namespace), ClusterControls(cluster))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(lambda: keys(app) == ["desk-a/ema-cross-btc"], timeout=10)
            await pilot.pause(0.2)
            assert keys(app) == ["desk-a/ema-cross-btc"]


async def test_halt_in_the_dashboard_says_what_it_will_do_then_scales_the_strategy_to_zero(desk_a, emulator, tmp_path):
    store(desk_a, "ema-cross-btc", haltPolicy="flatten")
    desk_a.push_runtime_status("ema-cross-btc", fills=3, total_pnl="12.50 USDT")
    trader = user(emulator, tmp_path, "alice", roles.TRADER)
    async with await Cluster.connect(kubeconfig=str(trader)) as cluster:
        app = Dashboard(ClusterSource(cluster, cluster.namespace), ClusterControls(cluster))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(lambda: keys(app) == ["desk-a/ema-cross-btc"], timeout=10)
            await pilot.press("h")
            await wait_for(lambda: isinstance(app.screen, ConfirmAction), timeout=10)
            will = app.screen.plan.will
            assert "--replicas=0" in will and "closes its positions (haltPolicy flatten)" in will
            await pilot.press("n")
            await pilot.pause(0.2)
            assert desk_a.get("ema-cross-btc")["spec"]["replicas"] == 1  # cancelled: untouched

            await pilot.press("h")
            await wait_for(lambda: isinstance(app.screen, ConfirmAction), timeout=10)
            await pilot.press("y")
            await wait_for(lambda: desk_a.get("ema-cross-btc")["spec"]["replicas"] == 0, timeout=10)
            # and the second halt has nothing to do: it says so and asks nothing
            await wait_for(lambda: app.bodies["desk-a/ema-cross-btc"]["spec"]["replicas"] == 0, timeout=10)
            await pilot.press("h")
            await pilot.pause(0.3)
            assert not isinstance(app.screen, ConfirmAction)


async def test_a_read_only_desk_user_sees_the_fleet_and_is_told_which_role_a_halt_needs(desk_a, emulator, tmp_path):
    store(desk_a, "ema-cross-btc")
    reader = user(emulator, tmp_path, "bob", roles.DESK)
    async with await Cluster.connect(kubeconfig=str(reader)) as cluster:
        app = Dashboard(ClusterSource(cluster, cluster.namespace), ClusterControls(cluster))
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await wait_for(lambda: keys(app) == ["desk-a/ema-cross-btc"], timeout=10)
            await pilot.press("h")
            await wait_for(lambda: isinstance(app.screen, ConfirmAction), timeout=10)
            await pilot.press("y")
            await wait_for(lambda: any("halt desk-a/ema-cross-btc failed" in n.message for n in app._notifications))
            failed = next(n.message for n in app._notifications if "failed" in n.message)
            assert roles.TRADER in failed, failed  # the role that grants it
    assert desk_a.get("ema-cross-btc")["spec"]["replicas"] == 1


async def test_a_watch_that_is_refused_is_shown_and_retried(desk_a, emulator, tmp_path):
    # A user with no rights at all: the list is refused; the dashboard says so instead of showing an empty desk.
    nobody = desk_user(emulator, tmp_path, "carol", [], [NS])
    async with await Cluster.connect(kubeconfig=str(nobody)) as cluster:
        source = ClusterSource(cluster, cluster.namespace)
        app = Dashboard(source, ClusterControls(cluster))
        async with app.run_test(size=SIZE):
            await wait_for(lambda: source.trouble is not None, timeout=10)
            assert "the watch of LiveStrategies failed" in source.trouble and "trying again" in source.trouble
            assert "forbidden" in source.trouble.lower() or "403" in source.trouble


async def test_the_dashboard_watches_risk_budgets_shows_a_breach_at_a_glance_and_drops_a_deleted_one(
    desk_a, emulator, tmp_path
):
    # Two members inside their budget's daily loss; the operator's decision wrote the budget's status.
    calm = budget_body(
        "account-a",
        NS,
        [member_report("alpha", 3000, "-100.00 USDT"), member_report("beta", -1000)],
        maxDailyLoss=500.0,
    )
    for name in ("alpha", "beta"):
        store(desk_a, name)
        desk_a.emulator.patch_object(
            LIVESTRATEGIES, name, {"status": {"budget": member_share(calm, 0.5)}}, namespace=NS, subresource="status"
        )
    store_budget(emulator, calm)
    reader = user(emulator, tmp_path, "dana", roles.DESK)  # the desk role: get/list/watch riskbudgets
    async with await Cluster.connect(kubeconfig=str(reader)) as cluster:
        source = ClusterSource(cluster, cluster.namespace)
        app = Dashboard(source, ClusterControls(cluster))
        async with app.run_test(size=SIZE):
            await wait_for(lambda: "account-a" in budgets_panel(app), timeout=10)
            panel = budgets_panel(app)
            assert "Active" in panel and "HaltAll" in panel and "2/2" in panel
            assert "maxDailyLoss 100.00 USDT/500.00 USDT (20%)" in panel, panel
            assert "4000.00 USDT" in panel and "-100.00 USDT" in panel  # exposure and the day's PnL
            assert not app.query_one("#budgets").has_class("breached")
            # alpha (the first row) is a member: its detail pane shows the budget with its members
            detail = " ".join(plain(app.query_one("#detail", Static).content).split())
            assert "desk-a/account-a" in detail and "Members" in detail and "alpha" in detail and "beta" in detail

            # The members lose more: the operator latches a breach and halts them all.
            breached = budget_body(
                "account-a",
                NS,
                [member_report("alpha", 3000, "-400.00 USDT"), member_report("beta", -1000, "-200.00 USDT")],
                maxDailyLoss=500.0,
            )
            write_budget_status(emulator, breached)
            await wait_for(lambda: "Breached" in budgets_panel(app), timeout=10)
            assert app.query_one("#budgets").has_class("breached")
            panel = budgets_panel(app)
            assert "desk-a/account-a is breached: acknowledge with kubectl -n desk-a annotate riskbudget" in panel
            assert "maxDailyLoss 600.00 USDT/500.00 USDT (120%)" in panel
            totals = plain(app.query_one("#totals", Static).content)
            assert "1 budget, 1 breached" in totals, totals

            emulator.delete_object(RISKBUDGETS, "account-a", namespace=NS)
            await wait_for(lambda: budgets_panel(app) == "", timeout=10)
            assert "breached" not in plain(app.query_one("#totals", Static).content)
            assert keys(app) == ["desk-a/alpha", "desk-a/beta"]
            assert source.trouble is None and source.note is None


async def test_a_user_who_may_not_list_risk_budgets_still_sees_the_strategies_with_a_one_line_note(
    desk_a, emulator, tmp_path
):
    store(desk_a, "ema-cross-btc")
    store_budget(emulator, budget_body("account-a", NS, [member_report("ema-cross-btc", 3000)], maxDailyLoss=500.0))
    # a role of the cluster admin's own: the strategies, not their budgets
    strategies_only = [
        {"apiGroups": ["livestrat.io"], "resources": ["livestrategies"], "verbs": ["get", "list", "watch"]}
    ]
    add_cluster_role(emulator, "strategies-only", strategies_only)
    erin = desk_user(emulator, tmp_path, "erin", ["strategies-only"], [NS])
    async with await Cluster.connect(kubeconfig=str(erin)) as cluster:
        source = ClusterSource(cluster, cluster.namespace)
        app = Dashboard(source, ClusterControls(cluster))
        async with app.run_test(size=SIZE):
            await wait_for(lambda: keys(app) == ["desk-a/ema-cross-btc"], timeout=10)
            await wait_for(lambda: source.note is not None, timeout=10)
            assert "\n" not in source.note
            assert "you may not list riskbudgets in namespace 'desk-a'" in source.note
            assert f"the chart's {roles.DESK!r} role grants it" in source.note, source.note
            assert source.trouble is None  # the strategies shown are current
            # where the budgets would be, the note alone (the panel is drawn at the app's next refresh after the note)
            note = " ".join(source.note.split())
            await wait_for(lambda: budgets_panel(app) == note, timeout=10)
