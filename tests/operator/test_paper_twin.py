"""A live strategy's paper twin (spec.twin), with the real operator against the emulator.

The operator keeps the LiveStrategy ``NAME-twin``: the live spec in paper mode, owned by the live strategy. It
follows the live spec (and its replicas), is put back when edited by hand, goes when spec.twin goes or the live
strategy is deleted, and never touches the live strategy's own pod. A name taken by someone else's LiveStrategy
is said in a Warning, and the live strategy runs on.
"""

from __future__ import annotations

import pytest

from livestrat.api.contract import TWIN_OF_LABEL
from livestrat.kube_emulator.kubelet import Kubelet
from strategy_operator.apply import twin as twin_writer
from tests.support.desk import Desk, example
from tests.support.kube import LIVESTRATEGIES, wait_for
from tests.support.operator import fast_settings, running_operator
from tests.support.watch_gap import WatchGap

pytestmark = pytest.mark.slow

LIVE = "ema-cross-binance-testnet"
TWIN = f"{LIVE}-twin"
TWIN_SPEC = {"startingBalances": ["10000 USDT"]}


def add_live_secrets(desk: Desk) -> None:
    for secret, keys in (("binance-testnet", ("api-key", "api-secret")), ("ledger-dsn", ("dsn",))):
        desk.emulator.create_object(
            "v1/secrets", {"metadata": {"name": secret}, "data": dict.fromkeys(keys, "eA==")}, namespace=desk.namespace
        )


def pod_uid(desk: Desk, name: str) -> str | None:
    pods = desk.pods(name)
    return pods[0]["metadata"]["uid"] if len(pods) == 1 else None


async def test_the_operator_keeps_a_paper_twin_beside_the_live_strategy(emulator, desk: Desk, kubelet: Kubelet):
    add_live_secrets(desk)
    async with running_operator(emulator, fast_settings(live_namespaces=["default"])):
        await desk.apply(example("live-binance-testnet"))
        await wait_for(lambda: desk.phase(LIVE) == "Running")
        live_pod = pod_uid(desk, LIVE)
        assert live_pod is not None

        # asked for: the twin is a paper LiveStrategy of the live spec, with its own pod; the live pod is untouched
        await desk.edit_spec(LIVE, {"twin": TWIN_SPEC})
        await wait_for(lambda: desk.phase(TWIN) == "Running", timeout=20)
        twin = desk.get(TWIN)
        assert twin is not None
        assert twin["metadata"]["labels"][TWIN_OF_LABEL] == LIVE
        assert twin["metadata"]["ownerReferences"][0]["uid"] == desk.get(LIVE)["metadata"]["uid"]
        assert twin["spec"]["mode"] == "paper" and twin["spec"]["venue"]["startingBalances"] == ["10000 USDT"]
        assert "credentialsSecret" not in twin["spec"]["venue"]
        assert twin["spec"]["strategy"] == desk.get(LIVE)["spec"]["strategy"]
        assert desk.statefulset(TWIN) is not None
        assert any(TWIN in m for m in desk.event_messages(LIVE, "TwinCreated"))
        assert pod_uid(desk, LIVE) == live_pod

        # the live spec changes: so does the twin's (the live one, updatePolicy Manual, keeps running as it was)
        await desk.edit_spec(LIVE, {"strategy": {"config": {"trade_size": "0.002"}}})
        await wait_for(lambda: desk.get(TWIN)["spec"]["strategy"]["config"]["trade_size"] == "0.002")
        assert pod_uid(desk, LIVE) == live_pod

        # an edit of the twin by hand is put back
        emulator.patch_object(LIVESTRATEGIES, TWIN, {"spec": {"risk": {"maxPosition": 5}}}, namespace="default")
        await wait_for(lambda: desk.get(TWIN)["spec"]["risk"]["maxPosition"] == 0.01)

        # halting the live strategy halts its twin; resuming resumes it
        await desk.scale(LIVE, 0)
        await wait_for(lambda: desk.phase(LIVE) == "Halted" and desk.phase(TWIN) == "Halted", timeout=20)
        await desk.scale(LIVE, 1)
        await wait_for(lambda: desk.phase(LIVE) == "Running" and desk.phase(TWIN) == "Running", timeout=20)
        live_pod = pod_uid(desk, LIVE)

        # spec.twin removed: the twin goes, the live strategy runs on
        await desk.edit_spec(LIVE, {"twin": None})
        await wait_for(lambda: desk.get(TWIN) is None, timeout=30)
        assert any(TWIN in m for m in desk.event_messages(LIVE, "TwinDeleted"))
        assert desk.phase(LIVE) == "Running" and pod_uid(desk, LIVE) == live_pod

        # asked for again, then the live strategy deleted: the garbage collector deletes the twin after it
        await desk.edit_spec(LIVE, {"twin": TWIN_SPEC})
        await wait_for(lambda: desk.phase(TWIN) == "Running", timeout=20)
        await desk.delete(LIVE)
        await wait_for(lambda: desk.get(LIVE) is None and desk.get(TWIN) is None, timeout=30)


async def test_a_twin_name_someone_else_holds_is_said_and_stops_nothing(emulator, desk: Desk, kubelet: Kubelet):
    add_live_secrets(desk)
    async with running_operator(emulator, fast_settings(live_namespaces=["default"])):
        foreign = example("paper-ema-cross")
        foreign["metadata"]["name"] = TWIN
        await desk.apply(foreign)
        live = example("live-binance-testnet")
        live["spec"]["twin"] = TWIN_SPEC
        await desk.apply(live)
        await wait_for(lambda: desk.phase(LIVE) == "Running")
        await wait_for(lambda: desk.event_messages(LIVE, "TwinNameTaken"))
        [message] = desk.event_messages(LIVE, "TwinNameTaken")
        assert TWIN in message and "rename or delete it" in message
        assert desk.get(TWIN)["spec"]["venue"]["adapter"] == "sandbox"  # someone else's, left as it was
        assert TWIN_OF_LABEL not in (desk.get(TWIN)["metadata"].get("labels") or {})

        # once the name is free, the twin is made
        await desk.delete(TWIN)
        await wait_for(lambda: (desk.get(TWIN) or {}).get("metadata", {}).get("labels", {}).get(TWIN_OF_LABEL), 30)
        assert desk.phase(LIVE) == "Running"


async def test_a_twin_deleted_during_a_watch_gap_is_made_again(emulator, desk: Desk, kubelet: Kubelet, monkeypatch):
    # kopf forgets an object only on a DELETED event: after the gap its cache still shows the deleted twin, and only
    # reading the API server again tells (every RECHECK_SECONDS; shortened here).
    monkeypatch.setattr(twin_writer, "RECHECK_SECONDS", 1.0)
    add_live_secrets(desk)
    live = example("live-binance-testnet")
    live["spec"]["twin"] = TWIN_SPEC
    async with running_operator(emulator, fast_settings(live_namespaces=["default"])):
        await desk.apply(live)
        await wait_for(lambda: desk.phase(TWIN) == "Running", timeout=20)
        first = desk.get(TWIN)["metadata"]["uid"]
        async with WatchGap(emulator, user_agent="kopf/") as gap:
            emulator.patch_object(LIVESTRATEGIES, TWIN, {"metadata": {"finalizers": None}}, namespace="default")
            await desk.kubectl("delete", f"livestrategy/{TWIN}", "--wait=false")
            await wait_for(lambda: desk.get(TWIN) is None)
        await wait_for(lambda: gap.refused > 0)  # the operator was told 410 Gone, and relisted
        await wait_for(lambda: (desk.get(TWIN) or {}).get("metadata", {}).get("uid") not in (None, first), timeout=30)
        assert desk.get(TWIN)["metadata"]["labels"][TWIN_OF_LABEL] == LIVE


async def test_a_live_strategy_applied_again_before_its_old_twin_is_collected_waits_for_it_without_a_warning(
    emulator, desk: Desk, kubelet: Kubelet
):
    # Deleted, the live strategy goes first and the garbage collector deletes its twin afterwards (background
    # cascading deletion). Applied again meanwhile, it finds the old twin owned by the old uid: not someone else's
    # name to give up, only garbage on its way out; the new twin is made once it is gone.
    add_live_secrets(desk)
    live = example("live-binance-testnet")
    live["spec"]["twin"] = TWIN_SPEC
    async with running_operator(emulator, fast_settings(live_namespaces=["default"])) as operator:
        await desk.apply(live)
        await wait_for(lambda: desk.phase(LIVE) == "Running" and desk.phase(TWIN) == "Running", timeout=30)
        old_twin = desk.get(TWIN)["metadata"]["uid"]
        with emulator.garbage_collector.paused():
            await desk.delete(LIVE)
            await desk.apply(live)
            await operator.processed(emulator, LIVE)
            assert desk.get(TWIN)["metadata"]["uid"] == old_twin
        new = desk.get(LIVE)["metadata"]["uid"]

        def twin_of_the_new_one() -> bool:
            twin = desk.get(TWIN)
            return twin is not None and twin["metadata"]["ownerReferences"][0]["uid"] == new

        await wait_for(twin_of_the_new_one, timeout=30)
        await wait_for(lambda: desk.phase(TWIN) == "Running", timeout=30)
        assert desk.event_messages(LIVE, "TwinNameTaken") == []
