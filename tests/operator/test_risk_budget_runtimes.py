"""Two real paper runtimes under one RiskBudget: what they report adds up, and their sum breaking a limit that
neither breaks alone halts both, each as on its own risk breach (a halt: its own haltPolicy applies).

The real operator, the real `livestrat runtime` in each pod (a NautilusTrader node replaying the example's
sample bars) started by the stand-in kubelet, the real kubectl.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.support.desk import Desk, paper
from tests.support.kube import wait_for
from tests.support.kubelet import Kubelet
from tests.support.operator import fast_settings, running_operator

pytestmark = pytest.mark.slow
MEMBERS = ["ema-a", "ema-b"]


def budget(max_gross: float) -> dict:
    return {
        "apiVersion": "livestrat.io/v1alpha1",
        "kind": "RiskBudget",
        "metadata": {"name": "sandbox-account"},
        "spec": {"members": MEMBERS, "currency": "USDT", "limits": {"maxGrossExposure": max_gross}},
    }


def notional(desk: Desk, name: str) -> Decimal:
    """The member's gross notional, as its runtime reports its positions."""
    positions = (desk.status(name).get("trading") or {}).get("positions") or []
    return sum((Decimal(p["notional"].split()[0]) for p in positions if p.get("notional")), Decimal(0))


def settled(desk: Desk, name: str) -> bool:
    trading = desk.status(name).get("trading") or {}
    return bool((trading.get("replay") or {}).get("finished")) and notional(desk, name) > 0


async def test_two_paper_runtimes_halt_together_when_their_sum_breaks_the_budget(
    emulator, desk: Desk, kube_env, tmp_path
):
    async with (
        Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kube_env, runtime=True),
        running_operator(emulator, fast_settings(stale_after_seconds=60)),
    ):
        for name in MEMBERS:
            await desk.apply(paper(name))
        await desk.apply_budget(budget(1e9))
        # each replays its sample to the end and holds the position EMA cross leaves it with
        await wait_for(lambda: all(settled(desk, n) for n in MEMBERS), timeout=180)
        each = {n: notional(desk, n) for n in MEMBERS}
        total = sum(each.values())
        await wait_for(lambda: desk.budget_status("sandbox-account").get("exposure") == f"{total:f} USDT", timeout=30)
        assert desk.budget_status("sandbox-account")["state"] == "Active"

        # a limit neither member breaks alone, and their sum does
        limit = float(max(each.values()) + (total - max(each.values())) / 2)
        await desk.apply_budget(budget(limit))
        await wait_for(lambda: all(desk.phase(n) == "RiskHalted" for n in MEMBERS), timeout=120)
        breach = desk.budget_status("sandbox-account")["breach"]
        assert breach["limits"] == ["maxGrossExposure"] and breach["halted"] == MEMBERS
        for name in MEMBERS:
            status = desk.status(name)
            assert desk.pods(name) == []
            assert status["halt"]["reason"] == "RiskLimitBreached"
            # the runtime halted as asked (a halt, not a restart, so its haltPolicy applied) and pushed its final status
            assert status["trading"]["nodeState"] == "Stopped" and status["trading"]["openOrders"] == 0
