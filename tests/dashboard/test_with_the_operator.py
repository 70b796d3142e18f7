"""The dashboard over a working cluster: the real operator (kopf) against the emulator, a real ``livestrat runtime``
in the pod (started by the stand-in kubelet), and a trader watching with ``livestrat desk``'s app and their own
kubeconfig, as in docs/dashboard.md."""

from __future__ import annotations

import pytest
from rich.text import Text
from textual.widgets import DataTable

from livestrat.desk import roles
from livestrat.desk.cluster import Cluster
from livestrat.desk.cluster_feed import ClusterControls, ClusterSource
from livestrat.desk.dashboard import ConfirmAction, Dashboard
from livestrat.desk.fleet import money_text, parse_money
from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk, example
from tests.support.desk_users import add_cluster_role, desk_user
from tests.support.kube import wait_for
from tests.support.operator import fast_settings, running_operator

pytestmark = pytest.mark.slow
NAME = "ema-cross-btc"
KEY = f"default/{NAME}"


def cell(app: Dashboard, column: str) -> str:
    table = app.query_one("#fleet", DataTable)
    if KEY not in [str(k.value) for k in table.rows]:
        return ""
    value = table.get_cell(KEY, column)
    return value.plain if isinstance(value, Text) else str(value)


async def test_a_trader_sees_a_real_runtimes_fills_and_pnl_arrive_and_halts_it_from_the_dashboard(
    emulator, kube_env, tmp_path
):
    desk = Desk(emulator, kube_env)  # the admin who applies the example
    add_cluster_role(emulator, "livestrat-trader", roles.rules_of(roles.TRADER))
    trader = desk_user(emulator, tmp_path, "alice", ["livestrat-trader"], ["default"])
    async with (
        Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kube_env, runtime=True) as kubelet,
        running_operator(emulator, fast_settings(stale_after_seconds=30)),
        await Cluster.connect(kubeconfig=str(trader)) as cluster,
    ):
        app = Dashboard(ClusterSource(cluster, cluster.namespace), ClusterControls(cluster))
        async with app.run_test(size=(200, 50)) as pilot:
            await desk.apply(example("paper-ema-cross"))  # kubectl apply -f examples/paper-ema-cross.yaml
            await wait_for(lambda: cell(app, "strategy") == KEY, timeout=30)
            # Seen as soon as it is applied: no pod yet, so nothing traded (a runtime takes seconds to start).
            assert cell(app, "fill") == "-" and cell(app, "pnl") == "-"

            # The runtime trades and pushes its state; the row shows it as it comes.
            await wait_for(lambda: cell(app, "phase") == "Running", timeout=90)
            await wait_for(lambda: cell(app, "fill") != "-" and cell(app, "pnl") != "-", timeout=90)
            await wait_for(lambda: (desk.status(NAME).get("trading") or {}).get("replay", {}).get("finished"), 90)
            trading = desk.status(NAME)["trading"]
            await wait_for(lambda: cell(app, "pnl") == money_text(parse_money(trading["totalPnl"])), timeout=30)
            fill = trading["lastFill"]
            assert cell(app, "fill") == f"{fill['side']} {fill['quantity']} {fill['instrument']} @ {fill['price']}"
            assert "STALE" not in cell(app, "heartbeat")
            pod = kubelet.containers[("default", f"{NAME}-0")]

            # h, and yes: the strategy is scaled to 0, the operator halts it, the pod is gone.
            await pilot.press("h")
            await wait_for(lambda: isinstance(app.screen, ConfirmAction), timeout=30)
            assert "--replicas=0" in app.screen.plan.will
            await pilot.press("y")
            await wait_for(lambda: desk.get(NAME)["spec"]["replicas"] == 0, timeout=30)
            await wait_for(lambda: cell(app, "phase") == "Halted", timeout=60)
            assert desk.statefulset(NAME)["spec"]["replicas"] == 0 and desk.pods(NAME) == []
            assert pod.history == ["exit 0"]
            assert cell(app, "position") == "flat"  # haltPolicy flatten closed it
            assert "STALE" not in cell(app, "heartbeat")  # no pod is meant to report now
