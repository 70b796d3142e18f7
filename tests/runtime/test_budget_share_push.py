"""A RiskBudget share reaches a running runtime through the answer to its status push, and changes without a restart.

A real ``livestrat runtime`` process trades a paced paper replay (a market BUY of 0.01 BTC at 40,000 on every
bar) and pushes its status to the HTTP Kubernetes API emulator (livestrat/kube_emulator/emulator.py). The test
plays the operator: it writes ``status.budget`` into the LiveStrategy, as the operator's share writer does,
and changes it while the strategy runs. The runtime has no ``get``: it reads the share from the object the
API server answers each merge patch with. What the strategy saw (every order and its events, with the
denial reasons) is in its events file.
"""

from __future__ import annotations

import pytest

from tests.support.catalogs import falling, flat
from tests.support.kube import LIVESTRATEGIES, wait_for
from tests.support.paced_buyer import NAME, NAMESPACE, paced_buyer

pytestmark = pytest.mark.slow


def share(generation: int, **limits) -> dict:
    """``status.budget`` as the operator writes it for this member of RiskBudget desk-usdt."""
    return {"budget": "desk-usdt", "weight": 0.5, "observedGeneration": generation, **limits}


async def test_the_operators_share_reaches_the_running_gate_and_a_change_of_share_needs_no_restart(
    tmp_path, emulator, kubeconfig_path
):
    buyer = paced_buyer(tmp_path, flat(3_000))
    buyer.create(emulator)
    rows, denials = buyer.rows, buyer.denials

    def operator_writes(status: dict) -> None:
        emulator.patch_object(LIVESTRATEGIES, NAME, {"status": status}, namespace=NAMESPACE, subresource="status")

    runtime = buyer.start(tmp_path, kubeconfig_path)
    pid = runtime.process.pid
    try:
        await runtime.wait_ready()
        await wait_for(lambda: len(rows("OrderFilled")) >= 3, timeout=60)
        assert rows("OrderDenied") == []  # no budget yet: nothing holds it

        # 1. The operator hands it a share smaller than what it already holds (at least 1,200 USDT).
        operator_writes({"budget": share(1, maxGrossExposure="1000 USDT")})
        denied = await wait_for(lambda: denials("RiskBudget desk-usdt maxGrossExposure 1000 USDT"), timeout=30)
        assert denied[0]["reason"].startswith("livestrat risk guard: ")
        filled = len(rows("OrderFilled"))
        await wait_for(lambda: len(denials("maxGrossExposure 1000 USDT")) >= len(denied) + 5, timeout=30)
        assert len(rows("OrderFilled")) <= filled + 1  # one already past the gate may fill; then nothing
        state = await runtime.state()
        assert state["budgetShare"]["observedGeneration"] == 1
        assert "maxGrossExposure 1000 USDT" in state["budgetShare"]["lastDenial"]
        position = state["trading"]["positions"]
        assert position and position[0]["side"] == "LONG"  # kept: no flattening nobody asked for
        assert float(position[0]["quantity"]) >= 0.03
        _, metrics = await runtime.get("/metrics")
        assert "livestrat_orders_denied_by_guard_total" in metrics

        # 2. The budget's weights change: a larger share, and it trades again, in the same process.
        operator_writes({"budget": share(2, maxGrossExposure="1000000 USDT")})
        filled = len(rows("OrderFilled"))
        await wait_for(lambda: len(rows("OrderFilled")) >= filled + 3, timeout=30)
        assert (await runtime.state())["budgetShare"]["observedGeneration"] == 2

        # 3. The budget breaches under onBreach ReduceOnly: only reducing orders pass (its buys add).
        operator_writes({"budget": share(2, maxGrossExposure="1000000 USDT", reduceOnly=True)})
        await wait_for(lambda: denials("onBreach ReduceOnly"), timeout=30)

        # 4. It leaves the budget: the share goes, and so does the hold.
        operator_writes({"budget": None})
        filled = len(rows("OrderFilled"))
        await wait_for(lambda: len(rows("OrderFilled")) >= filled + 3, timeout=30)
        assert "budgetShare" not in await runtime.state()

        assert runtime.process.poll() is None and runtime.process.pid == pid  # never restarted
        runtime.signal()
        code, _ = await runtime.wait_exit(30)
    finally:
        runtime.kill()
    assert code == 0, runtime.output()


async def test_a_daily_loss_share_that_arrives_mid_run_halts_a_strategy_without_limits_of_its_own(
    tmp_path, emulator, kubeconfig_path
):
    # The strategy has no maxDailyLoss of its own; it buys on every bar while the price falls 0.5 % a bar.
    buyer = paced_buyer(tmp_path, falling(3_000))
    buyer.create(emulator)

    def risk() -> dict:
        return (emulator.read_object(LIVESTRATEGIES, NAME, namespace=NAMESPACE) or {}).get("status", {}).get(
            "risk"
        ) or {}

    runtime = buyer.start(tmp_path, kubeconfig_path)
    try:
        await runtime.wait_ready()
        filled = await wait_for(lambda: buyer.rows("OrderFilled")[4:], timeout=60)
        assert filled and risk()["state"] == "Active"  # a loss, and nothing to hold it to yet

        # Its budget's share of maxDailyLoss: 5 USDT, written while it runs.
        share_written = {"budget": share(1, maxDailyLoss="5 USDT")}
        emulator.patch_object(
            LIVESTRATEGIES, NAME, {"status": share_written}, namespace=NAMESPACE, subresource="status"
        )

        halted = await wait_for(lambda: risk() if risk().get("state") == "Halted" else None, timeout=30)
        assert halted["breachedLimit"] == "maxDailyLoss"
        assert "this strategy's share of RiskBudget desk-usdt maxDailyLoss" in halted["reason"], halted
        assert runtime.process.poll() is None  # halted by its guard, in the same process (the operator stops it)
    finally:
        runtime.kill()
