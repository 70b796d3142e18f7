"""Three strategies trade one account under a RiskBudget: what their runtimes report adds up in the budget,
`kubectl get riskbudgets` shows it, and a breach of an aggregate limit halts members by the budget's policy,
latched until the budget's breach is acknowledged.

The real operator against the Kubernetes emulator; the runtimes' side is their status, pushed as
``livestrat runtime`` pushes it (tests/support/desk.py); pods from the stand-in kubelet.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import timedelta
from typing import Any

from livestrat.api.crd import BUDGET_PRINTER_COLUMNS
from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.clock import ShiftedClock
from tests.support.desk import Desk, example, paper
from tests.support.kube import wait_for
from tests.support.operator import fast_settings, operator_writes, running_operator

MEMBERS = ["alpha", "beta", "gamma"]
ACK = "livestrat.io/risk-acknowledged"


def budget(on_breach: str = "HaltAll", **limits: Any) -> dict[str, Any]:
    return {
        "apiVersion": "livestrat.io/v1alpha1",
        "kind": "RiskBudget",
        "metadata": {"name": "account-a"},
        "spec": {"members": MEMBERS, "currency": "USDT", "limits": limits, "onBreach": on_breach},
    }


def report(desk: Desk, name: str, notional: float, daily: str = "0.00 USDT", orders: int = 0) -> None:
    """``name``'s runtime reports one BTC position of this signed notional (a short's negative)."""
    positions = []
    if notional:
        side = "SHORT" if notional < 0 else "LONG"
        positions = [
            {"instrument": "BTCUSDT.BINANCE", "side": side, "quantity": "0.1", "notional": f"{abs(notional):.2f} USDT"}
        ]
    desk.push_runtime_status(
        name,
        positions=positions,
        open_orders=orders,
        risk={"state": "Active", "dailyPnl": daily, "drawdown": "0.00 USDT"},
    )


def columns(desk: Desk, name: str) -> dict[str, Any]:
    """`kubectl get riskbudgets`: each column's value, read at its jsonPath in the stored object."""
    found = {}
    for column in BUDGET_PRINTER_COLUMNS:
        if column.get("priority"):
            continue
        node: Any = desk.budget(name)
        for part in column["jsonPath"].strip(".").split("."):
            node = (node or {}).get(part)
        found[column["name"]] = node
    return found


async def start_members(desk: Desk) -> None:
    for name in [*MEMBERS, "outsider"]:
        await desk.apply(paper(name))
    await wait_for(lambda: all(desk.phase(n) == "Running" for n in [*MEMBERS, "outsider"]), timeout=30)


async def test_an_aggregate_breach_halts_every_member_until_the_budget_is_acknowledged(
    emulator, desk: Desk, kubelet: Kubelet
):
    async with running_operator(emulator, fast_settings()):
        await start_members(desk)
        await desk.apply_budget(budget("HaltAll", maxGrossExposure=8000.0, maxDailyLoss=500.0))
        report(desk, "alpha", 3000, daily="-100.00 USDT", orders=2)
        report(desk, "beta", 3000, daily="-50.00 USDT")
        report(desk, "gamma", -1000, daily="20.00 USDT", orders=1)
        report(desk, "outsider", 50000)  # not a member: counts for nothing

        # the fleet view: each figure is the sum of the members' own reports
        await wait_for(lambda: columns(desk, "account-a")["Exposure"] == "7000.00 USDT")
        assert columns(desk, "account-a") == {
            "Members": "3/3",
            "Exposure": "7000.00 USDT",
            "Daily PnL": "-130.00 USDT",
            "Used": "87%",
            "State": "Active",
            "Age": desk.budget("account-a")["metadata"]["creationTimestamp"],
        }
        totals = desk.budget_status("account-a")["totals"]
        assert totals == [
            {
                "currency": "USDT",
                "grossExposure": "7000.00 USDT",
                "netExposure": "5000.00 USDT",
                "dailyPnl": "-130.00 USDT",
                "drawdown": "0.00 USDT",
            }
        ]

        # gamma's short grows: no member is over anything, their sum is over maxGrossExposure
        report(desk, "gamma", -2500, daily="20.00 USDT", orders=1)
        await wait_for(lambda: all(desk.phase(n) == "RiskHalted" for n in MEMBERS), timeout=30)
        assert all(desk.pods(n) == [] for n in MEMBERS)
        assert desk.phase("outsider") == "Running"
        breach = desk.budget_status("account-a")["breach"]
        at = breach["breachedAt"]
        assert breach["limits"] == ["maxGrossExposure"] and breach["halted"] == MEMBERS
        for name in MEMBERS:
            assert desk.status(name)["halt"]["reason"] == "RiskLimitBreached"  # a halt: its haltPolicy applies
            assert desk.condition(name, "RiskHalted")["reason"] == "RiskBudgetBreached"
        await wait_for(lambda: all("RiskHalted" in desk.events(n) for n in MEMBERS))  # kopf posts events apart
        await wait_for(lambda: "BudgetBreached" in dict(desk.budget_events("account-a")))
        reasons = [reason for reason, _ in desk.budget_events("account-a")]
        assert reasons.count("BudgetBreached") == 1
        message = dict(desk.budget_events("account-a"))["BudgetBreached"]
        assert "maxGrossExposure 8500.00 USDT over 8000" in message
        assert f"kubectl annotate riskbudget account-a {ACK}={at} --overwrite" in message

        # back within limits (the positions closed by hand): the breach holds, nothing restarts
        for name in MEMBERS:
            report(desk, name, 0)
        await wait_for(lambda: columns(desk, "account-a")["Exposure"] == "0.00 USDT")
        assert columns(desk, "account-a")["State"] == "Breached"
        await desk.annotate_budget("account-a", ACK, "2026-01-01T00:00:00Z")  # not this breach's time
        await desk.annotate(MEMBERS[0], ACK, at)  # a member's own acknowledgement releases nothing
        await wait_for(lambda: desk.budget("account-a")["metadata"]["annotations"].get(ACK))
        assert all(desk.phase(n) == "RiskHalted" for n in MEMBERS)

        await desk.annotate_budget("account-a", ACK, at)
        await wait_for(lambda: all(desk.phase(n) == "Running" for n in MEMBERS), timeout=30)
        assert columns(desk, "account-a")["State"] == "Active"
        assert "breach" not in desk.budget_status("account-a")
        await wait_for(lambda: "BudgetAcknowledged" in dict(desk.budget_events("account-a")))
        assert [r for r, _ in desk.budget_events("account-a")].count("BudgetAcknowledged") == 1


async def test_halt_breacher_halts_only_the_largest_loss_and_reduce_only_halts_none(
    emulator, desk: Desk, kubelet: Kubelet
):
    async with running_operator(emulator, fast_settings()):
        await start_members(desk)
        await desk.apply_budget(budget("HaltBreacher", maxDailyLoss=500.0))
        report(desk, "alpha", 1000, daily="-200.00 USDT")
        report(desk, "beta", 1000, daily="-350.00 USDT")  # the largest loss
        report(desk, "gamma", 1000, daily="40.00 USDT")
        await wait_for(lambda: desk.phase("beta") == "RiskHalted", timeout=30)
        assert desk.budget_status("account-a")["breach"]["halted"] == ["beta"]
        assert desk.phase("alpha") == desk.phase("gamma") == "Running"

        # the same loss under ReduceOnly (after the acknowledgement): a new breach, and no member halted
        at = desk.budget_status("account-a")["breach"]["breachedAt"]
        await desk.apply_budget(budget("ReduceOnly", maxDailyLoss=500.0))
        await desk.annotate_budget("account-a", ACK, at)
        await wait_for(lambda: (desk.budget_status("account-a").get("breach") or {}).get("breachedAt", at) != at)
        await wait_for(lambda: desk.phase("beta") == "Running", timeout=30)
        breach = desk.budget_status("account-a")["breach"]
        assert breach["onBreach"] == "ReduceOnly" and breach["halted"] == []
        assert all(desk.phase(n) == "Running" for n in MEMBERS)


async def test_deleting_a_breached_budget_releases_the_members_it_halts(emulator, desk: Desk, kubelet: Kubelet):
    async with running_operator(emulator, fast_settings()):
        await start_members(desk)
        await desk.apply_budget(budget("HaltAll", maxOpenOrders=10))
        for name in MEMBERS:
            report(desk, name, 0, orders=4)
        await wait_for(lambda: all(desk.phase(n) == "RiskHalted" for n in MEMBERS), timeout=30)
        await desk.delete_budget("account-a")
        await wait_for(lambda: all(desk.phase(n) == "Running" for n in MEMBERS), timeout=30)
        assert desk.budget("account-a") == {}


async def test_an_operator_on_a_cluster_without_the_riskbudget_crd_still_runs_strategies(
    emulator, desk: Desk, kubelet: Kubelet
):
    """Helm does not upgrade CRDs: until the RiskBudget CRD is applied, the new operator serves strategies as before."""
    emulator.delete_object("apiextensions.k8s.io/v1/customresourcedefinitions", "riskbudgets.livestrat.io")
    response = await emulator.get("/apis/livestrat.io/v1alpha1/namespaces/default/riskbudgets")
    assert response.status == 404  # not served
    async with running_operator(emulator, fast_settings()):
        await desk.apply(paper("alone"))
        await wait_for(lambda: desk.phase("alone") == "Running", timeout=30)
        await desk.scale("alone", 0)
        await wait_for(lambda: desk.phase("alone") == "Halted", timeout=30)


async def test_a_budget_writes_its_figures_at_most_about_once_a_second_and_the_last_ones_always(
    emulator, desk: Desk, kubelet: Kubelet
):
    async with running_operator(emulator, fast_settings()):
        await start_members(desk)
        await desk.apply_budget(budget("HaltAll", maxGrossExposure=1e9))
        report(desk, "alpha", 100)
        await wait_for(lambda: columns(desk, "account-a")["Exposure"] == "100.00 USDT")
        since = len(emulator)
        reports = 30
        for step in range(1, reports + 1):  # a mark that moves with every report
            report(desk, "alpha", 100 + step)
            await asyncio.sleep(0.02)
        await wait_for(lambda: columns(desk, "account-a")["Exposure"] == f"{100 + reports}.00 USDT")
        writes = [r for r in operator_writes(emulator, since) if r.url.path.endswith("/riskbudgets/account-a/status")]
        assert 1 <= len(writes) < reports / 2


async def test_a_daily_loss_breach_acknowledged_the_next_utc_day_lets_the_live_members_trade_again(
    emulator, desk: Desk, kube_env, tmp_path
):
    """docs/risk-budgets.md: after a daily-loss breach, wait for the UTC day to turn, then acknowledge. The halted
    members' pods are down, so their status keeps the loss of the day they halted on; the budget must not count it
    the next day (each runtime names the day of its ``dailyPnl``), or the acknowledgement breaches again at once."""
    namespace = "live-desk"
    emulator.add_namespace(namespace)
    for secret, keys in (("binance-testnet", ("api-key", "api-secret")), ("ledger-dsn", ("dsn",))):
        emulator.create_object(
            "v1/secrets", {"metadata": {"name": secret}, "data": dict.fromkeys(keys, "eA==")}, namespace=namespace
        )
    floor = desk.in_namespace(namespace)
    clock = ShiftedClock()  # the operator's and the kubelet's
    members = {"alpha": "BTCUSDT.BINANCE", "beta": "ETHUSDT.BINANCE"}
    async with (
        Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kube_env, clock=clock),
        running_operator(emulator, fast_settings(live_namespaces=[namespace]), clock=clock),
    ):
        for name, instrument in members.items():
            strategy = copy.deepcopy(example("live-binance-testnet"))
            strategy["metadata"]["name"] = name
            strategy["spec"]["instruments"] = [instrument]
            await floor.apply(strategy)
        await wait_for(lambda: all(floor.phase(n) == "Running" for n in members), timeout=30)
        manifest = {**budget("HaltAll", maxDailyLoss=120.0), "spec": {**budget()["spec"], "members": list(members)}}
        manifest["spec"]["limits"] = {"maxDailyLoss": 120.0}
        await floor.apply_budget(manifest)
        today = clock.now().date().isoformat()
        for name, loss in (("alpha", "-100.00 USDT"), ("beta", "-50.00 USDT")):
            floor.push_runtime_status(
                name, risk={"state": "Active", "dailyPnl": loss, "dailyPnlDay": today, "drawdown": "0.00 USDT"}
            )
        await wait_for(lambda: all(floor.phase(n) == "RiskHalted" for n in members), timeout=30)
        at = floor.budget_status("account-a")["breach"]["breachedAt"]
        assert floor.budget_status("account-a")["breach"]["limits"] == ["maxDailyLoss"]

        clock.advance(timedelta(days=1).total_seconds())  # the next UTC day; the halted runtimes report nothing
        await floor.annotate_budget("account-a", ACK, at)
        await wait_for(lambda: all(floor.phase(n) == "Running" for n in members), timeout=30)
        await wait_for(lambda: "BudgetAcknowledged" in dict(floor.budget_events("account-a")))
        status = floor.budget_status("account-a")
        assert status["state"] == "Active" and "breach" not in status
        assert [r for r, _ in floor.budget_events("account-a")].count("BudgetBreached") == 1
        rows = {m["name"]: m for m in status["members"]}
        assert rows["alpha"]["dailyPnl"] == "0.00 USDT" and f"-100.00 USDT is of {today}" in rows["alpha"]["note"]
        assert status["dailyPnl"] == "0.00 USDT"
