"""The operator hands each member of a RiskBudget its share (``status.budget``), against the Kubernetes API emulator.

A desk's story: three paper strategies run; the desk applies a RiskBudget over two of them. Each member gets
its share of the limits in its status; a weight changed in the budget reaches their status; a strategy taken
out of the budget loses its share; a second budget that lists a strategy already held by the first gives it no
share and says so, naming both. At rest the operator writes no share again.
"""

from __future__ import annotations

from typing import Any

import pytest

from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk, paper
from tests.support.kube import wait_for
from tests.support.operator import fast_settings, operator_writes, running_operator
from tests.support.runtime_process import ROOT
from tests.support.scripted import read_events, scripted_strategy

pytestmark = pytest.mark.slow

RISKBUDGETS = "livestrat.io/v1alpha1/riskbudgets"


def risk_budget(name: str, members: list[str], **spec: Any) -> dict[str, Any]:
    """A RiskBudget manifest over ``members`` (USDT), with spec fields replaced."""
    return {
        "apiVersion": "livestrat.io/v1alpha1",
        "kind": "RiskBudget",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "members": members,
            "currency": "USDT",
            "limits": {"maxGrossExposure": 10000, "maxDailyLoss": 600, "maxOpenOrders": 8},
            **spec,
        },
    }


def share_writes(emulator, since: int) -> list[str]:
    """The strategies whose status.budget the operator wrote since ``since``."""
    return [
        r.url.path.split("/")[-2]
        for r in operator_writes(emulator, since)
        if r.url.path.endswith("/status") and isinstance(r.data, dict) and "budget" in (r.data.get("status") or {})
    ]


async def test_members_get_their_shares_and_a_weight_change_reaches_their_status(
    emulator, desk: Desk, kubelet: Kubelet
):
    async with running_operator(emulator, fast_settings()):
        for name in ("alpha", "beta", "gamma"):
            await desk.apply(paper(name))
        await wait_for(lambda: all(desk.phase(n) == "Running" for n in ("alpha", "beta", "gamma")), timeout=30)

        emulator.create_object(RISKBUDGETS, risk_budget("desk-usdt", ["alpha", "beta"]), namespace="default")
        await wait_for(lambda: desk.status("alpha").get("budget") and desk.status("beta").get("budget"), timeout=15)
        alpha = desk.status("alpha")["budget"]
        assert alpha["budget"] == "desk-usdt" and alpha["weight"] == 0.5
        assert alpha["maxGrossExposure"] == "5000.00 USDT" and alpha["maxDailyLoss"] == "300.00 USDT"
        assert alpha["maxOpenOrders"] == 4 and alpha["reduceOnly"] is False
        assert "budget" not in desk.status("gamma")  # not a member
        assert desk.phase("alpha") == "Running"  # the operator's own status fields are untouched

        # The desk gives alpha three times beta's weight.
        since = len(emulator)
        emulator.patch_object(
            RISKBUDGETS,
            "desk-usdt",
            {"spec": {"allocation": {"rule": "Weights", "weights": {"alpha": 3, "beta": 1}}}},
            namespace="default",
        )
        await wait_for(lambda: desk.status("beta")["budget"]["maxGrossExposure"] == "2500.00 USDT", timeout=15)
        assert desk.status("alpha")["budget"]["maxGrossExposure"] == "7500.00 USDT"
        assert desk.status("alpha")["budget"]["weight"] == 0.75
        assert sorted(share_writes(emulator, since)) == ["alpha", "beta"]  # one write each

        # At rest, and while the runtimes push their trading state, no share is written again.
        since = len(emulator)
        for n in range(3):
            desk.push_runtime_status("alpha", fills=n)
            desk.push_runtime_status("beta", fills=n)
        await desk.apply(paper("delta"))  # another strategy comes: not a member
        await wait_for(lambda: desk.phase("delta") == "Running", timeout=30)
        assert share_writes(emulator, since) == []

        # beta leaves the budget: its share goes; alpha now holds all of it.
        emulator.patch_object(RISKBUDGETS, "desk-usdt", {"spec": {"members": ["alpha"]}}, namespace="default")
        await wait_for(lambda: "budget" not in desk.status("beta"), timeout=15)
        await wait_for(lambda: desk.status("alpha")["budget"]["maxGrossExposure"] == "10000.00 USDT", timeout=15)

        # The budget is deleted: no strategy holds a share of it any more.
        emulator.delete_object(RISKBUDGETS, "desk-usdt", namespace="default")
        await wait_for(lambda: "budget" not in desk.status("alpha"), timeout=15)
        assert desk.phase("alpha") == "Running"


async def test_a_strategy_never_belongs_to_two_budgets_and_the_second_says_so_naming_both(
    emulator, desk: Desk, kubelet: Kubelet
):
    async with running_operator(emulator, fast_settings()):
        for name in ("alpha", "beta"):
            await desk.apply(paper(name))
        emulator.create_object(RISKBUDGETS, risk_budget("desk-usdt", ["alpha"]), namespace="default")
        await wait_for(lambda: desk.status("alpha").get("budget"), timeout=15)

        emulator.create_object(RISKBUDGETS, risk_budget("night-usdt", ["alpha", "beta"]), namespace="default")
        await wait_for(lambda: desk.status("beta").get("budget"), timeout=15)

        assert desk.status("alpha")["budget"]["budget"] == "desk-usdt"  # the older budget keeps it
        assert desk.status("alpha")["budget"]["maxGrossExposure"] == "10000.00 USDT"
        assert desk.status("beta")["budget"]["budget"] == "night-usdt"
        assert desk.status("beta")["budget"]["maxGrossExposure"] == "5000.00 USDT"  # alpha still counts in its 1/N

        def warnings() -> list[str]:
            return [
                e.get("message", "")
                for e in emulator.list_objects("v1/events", "default")
                if (e.get("involvedObject") or {}).get("name") == "night-usdt"
                and e.get("reason") == "MemberOfAnotherBudget"
            ]

        [message] = await wait_for(warnings, timeout=15)
        assert "listed by RiskBudgets desk-usdt and night-usdt" in message and "Remove it" in message

        def conflict(budget: str) -> dict:
            status = (emulator.read_object(RISKBUDGETS, budget, namespace="default") or {}).get("status") or {}
            return next((c for c in status.get("conditions") or [] if c["type"] == "MemberConflict"), {})

        said = await wait_for(
            lambda: conflict("night-usdt").get("status") == "True" and conflict("night-usdt"), timeout=15
        )
        assert said["reason"] == "MemberOfAnotherBudget"
        assert "LiveStrategy alpha is listed by RiskBudgets desk-usdt and night-usdt" in said["message"]
        assert conflict("desk-usdt").get("status") == "False"


async def test_a_real_runtime_is_held_within_the_share_the_operator_hands_it_and_a_new_weight_needs_no_restart(
    emulator, desk: Desk, kube_env, tmp_path
):
    # A paper strategy buys 0.01 BTC (about 420 USDT) on every bar of a paced replay. Its budget allows 2,000 USDT of
    # gross exposure between two members: 1,000 USDT is its share.
    events = tmp_path / "events.jsonl"
    strategy = scripted_strategy(str(events), keep_trying_from=2, keep_trying_quantity="0.01")
    data = {"catalog": {"emptyDir": {}}, "sample": {"bars": 3000, "seed": 42}, "replay": {"speed": 600}}
    manifest = paper("scalper", strategy=strategy, data=data, risk={"maxNotionalPerOrder": 5000})

    def rows(kind: str) -> list[dict]:
        return [e for e in read_events(str(events)) if e.get("event") == kind] if events.exists() else []

    def denied_for(share: str) -> list[dict]:
        return [r for r in rows("OrderDenied") if f"RiskBudget desk-usdt maxGrossExposure {share}" in r["reason"]]

    def held() -> float:
        positions = (desk.status("scalper").get("trading") or {}).get("positions") or []
        return sum(float(p["quantity"]) for p in positions)

    pods = Kubelet(
        emulator, workdir=tmp_path / "pods", kubeconfig=kube_env, runtime=True, environ={"PYTHONPATH": str(ROOT)}
    )
    async with pods as kubelet, running_operator(emulator, fast_settings(stale_after_seconds=30)):
        budget = risk_budget("desk-usdt", ["scalper", "night-owl"], limits={"maxGrossExposure": 2000})
        emulator.create_object(RISKBUDGETS, budget, namespace="default")
        await desk.apply(manifest)
        await wait_for(lambda: desk.status("scalper").get("budget"), timeout=30)
        assert desk.status("scalper")["budget"]["maxGrossExposure"] == "1000.00 USDT"

        await wait_for(lambda: len(denied_for("1000.00 USDT")) >= 3, timeout=90)
        filled = len(rows("OrderFilled"))
        await wait_for(lambda: len(denied_for("1000.00 USDT")) >= 8, timeout=30)
        assert len(rows("OrderFilled")) <= filled + 1  # one already past the gate may fill; then none
        await wait_for(lambda: held() > 0, timeout=15)
        assert held() * 42_000 < 1000 * 1.5  # within its share (the price walks around 42,000)

        # The desk gives it the whole budget: its runtime trades again, up to the new share, in the same pod.
        emulator.patch_object(
            RISKBUDGETS,
            "desk-usdt",
            {"spec": {"allocation": {"rule": "Weights", "weights": {"scalper": 1, "night-owl": 0}}}},
            namespace="default",
        )
        await wait_for(lambda: desk.status("scalper")["budget"]["maxGrossExposure"] == "2000.00 USDT", timeout=15)
        await wait_for(lambda: len(rows("OrderFilled")) >= filled + 2, timeout=60)
        await wait_for(lambda: denied_for("2000.00 USDT"), timeout=60)
        assert len(kubelet.started_pods) == 1  # never restarted
        assert desk.phase("scalper") == "Running"
