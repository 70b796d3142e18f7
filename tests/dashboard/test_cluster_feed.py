"""``livestrat desk`` against the Kubernetes emulator: the watch, the actions, the user's rights.

No operator here: the LiveStrategies and their status are written as the operator and the runtime write them
(``Desk.push_runtime_status``); what the dashboard does is read back from the emulator's store.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import DataTable

from livestrat.desk import roles
from livestrat.desk.cluster import Cluster
from livestrat.desk.cluster_feed import ClusterControls, ClusterSource
from livestrat.desk.dashboard import ConfirmAction, Dashboard
from livestrat.kube_emulator.emulator import KubernetesEmulator
from tests.support.desk import LIVESTRATEGIES, Desk, paper
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
