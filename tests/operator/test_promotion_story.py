"""A live strategy admitted by its paper strategy's track record, with the real operator against the emulator.

The paper strategy runs (the stand-in kubelet's pod), its runtime's reports are pushed into its status as
``livestrat runtime`` pushes them. The live strategy names it in ``spec.promotion``: refused while the record falls
short (no pod, the criterion and its figures in a condition, status.promotion and an Event), admitted once it
holds (its pod, the audit record), and an acceptance is not taken back by what the paper strategy does later.
"""

from __future__ import annotations

import pytest

from livestrat.api.contract import PROMOTED_BY_ANNOTATION
from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk, example
from tests.support.kube import LIVESTRATEGIES, wait_for
from tests.support.operator import fast_settings, running_operator

pytestmark = pytest.mark.slow

PAPER = "ema-cross-btc"
LIVE = "ema-cross-btc-live"


def live_manifest(promoted_by: str) -> dict:
    live = example("live-ema-cross-promoted")
    live["metadata"]["annotations"] = {PROMOTED_BY_ANNOTATION: promoted_by}
    live["spec"]["promotion"]["criteria"] = {
        "minDurationSeconds": 0,
        "minFills": 20,
        "maxDrawdown": 1500,
        "maxBacktestMismatches": 0,
    }
    return live


def add_live_secrets(desk: Desk) -> None:
    for secret, keys in (("binance-testnet", ("api-key", "api-secret")), ("ledger-dsn", ("dsn",))):
        desk.emulator.create_object(
            "v1/secrets", {"metadata": {"name": secret}, "data": dict.fromkeys(keys, "eA==")}, namespace=desk.namespace
        )


async def test_a_live_strategy_runs_only_once_its_paper_track_record_meets_its_criteria(
    emulator, desk: Desk, kubelet: Kubelet
):
    add_live_secrets(desk)
    async with running_operator(emulator, fast_settings(live_namespaces=["default"], stale_after_seconds=120)):
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(PAPER) == "Running")
        desk.push_runtime_status(PAPER, fills=2, risk={"state": "Active", "maxDrawdown": "120.00 USDT"})
        await wait_for(lambda: desk.is_true(PAPER, "Trading"))

        # refused: two fills of the twenty asked for; no pod, and the figures where the trader looks
        await desk.apply(live_manifest("alice@example.com"))
        await wait_for(lambda: (desk.status(LIVE).get("promotion") or {}).get("state") == "Refused")
        await wait_for(lambda: desk.phase(LIVE) == "Pending")
        halted = desk.condition(LIVE, "Halted")
        assert halted["reason"] == "PromotionRefused"
        assert f"criteria.minFills: the paper strategy {PAPER} has 2 fills, at least 20 needed" in halted["message"]
        assert "criteria.maxBacktestMismatches" in halted["message"]
        assert desk.pods(LIVE) == [] and desk.statefulset(LIVE)["spec"]["replicas"] == 0
        await wait_for(lambda: any("has 2 fills" in m for m in desk.event_messages(LIVE, "PromotionRefused")))

        # the paper strategy trades on: the operator reads its record again by itself and admits the live one
        desk.push_runtime_status(PAPER, fills=25, risk={"state": "Active", "maxDrawdown": "900.00 USDT"})
        # ... and its runtime, its replay finished, compares it with the backtest (strategy_runtime.backtest_agreement)
        agreement = {
            "checkedAt": "2026-12-06T10:00:00Z",
            "paperFills": 25,
            "backtestFills": 25,
            "matched": 25,
            "mismatches": 0,
            "message": "the same 25 fills at the same prices as the backtest",
        }
        emulator.patch_object(
            LIVESTRATEGIES,
            PAPER,
            {"status": {"trading": {"backtest": agreement}}},
            namespace="default",
            subresource="status",
        )
        await wait_for(lambda: desk.phase(LIVE) == "Running", timeout=30)
        record = desk.status(LIVE)["promotion"]
        assert record["state"] == "Accepted" and record["from"] == PAPER
        assert record["promotedBy"] == "alice@example.com" and record["decidedAt"]
        evidence = record["evidence"]
        assert (evidence["fills"], evidence["maxDrawdown"], evidence["riskHalts"], evidence["backtestMismatches"]) == (
            25,
            "900.00 USDT",
            0,
            0,
        )
        assert record["evidence"]["runningSince"] == desk.condition(PAPER, "Trading")["lastTransitionTime"]
        await wait_for(lambda: desk.event_messages(LIVE, "PromotionAccepted"))
        assert "by alice@example.com" in desk.event_messages(LIVE, "PromotionAccepted")[0]
        [pod] = desk.pods(LIVE)
        uid = pod["metadata"]["uid"]

        # admitted on that evidence: a risk halt of the paper strategy afterwards stops nothing live, and a new
        # promotion of the same strategy (another criterion, another promoter) restarts nothing
        desk.push_runtime_status(PAPER, fills=26, risk={"state": "Halted", "reason": "maxDrawdown", "breachedAt": "x"})
        await desk.annotate(LIVE, PROMOTED_BY_ANNOTATION, "bob@example.com")
        await desk.edit_spec(LIVE, {"promotion": {"from": PAPER, "criteria": {"minFills": 26}}})
        await wait_for(lambda: desk.status(LIVE).get("observedGeneration") == desk.get(LIVE)["metadata"]["generation"])
        assert desk.phase(LIVE) == "Running" and [p["metadata"]["uid"] for p in desk.pods(LIVE)] == [uid]
        assert desk.status(LIVE)["promotion"]["promotedBy"] == "alice@example.com"
