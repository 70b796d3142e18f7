"""One live strategy per venue account and instrument, told as the desk lives it (the real operator, the emulator)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from livestrat.kube_emulator.kubelet import Kubelet
from strategy_operator.decide import claims
from strategy_operator.observe import observer
from tests.support.desk import Desk, example, paper
from tests.support.kube import wait_for
from tests.support.operator import OperatorThread, fast_settings, operator_writes, peering_crd, running_operator
from tests.support.watch_gap import WatchGap

LIVE_NAMESPACE = "live-desk"
LIVESTRATEGIES = "livestrat.io/v1alpha1/livestrategies"


def live(name: str, *, instruments: tuple[str, ...] = ("BTCUSDT.BINANCE",), **venue: Any) -> dict[str, Any]:
    """The live Binance testnet example under another name, on the desk's one account (Secret binance-testnet)."""
    strategy = copy.deepcopy(example("live-binance-testnet"))
    strategy["metadata"]["name"] = name
    strategy["spec"]["instruments"] = list(instruments)
    strategy["spec"]["venue"].update(venue)
    return strategy


@pytest.fixture
def floor(emulator, desk: Desk) -> Desk:
    """A namespace where the operator allows live trading, with the venue's and the ledger's Secrets."""
    emulator.add_namespace(LIVE_NAMESPACE)
    for secret, keys in (("binance-testnet", ("api-key", "api-secret")), ("ledger-dsn", ("dsn",))):
        emulator.create_object(
            "v1/secrets", {"metadata": {"name": secret}, "data": dict.fromkeys(keys, "eA==")}, namespace=LIVE_NAMESPACE
        )
    return desk.in_namespace(LIVE_NAMESPACE)


def settings():
    return fast_settings(live_namespaces=[LIVE_NAMESPACE])


def pod_uids(desk: Desk, *names: str) -> dict[str, list[str]]:
    return {name: [p["metadata"]["uid"] for p in desk.pods(name)] for name in names}


def by_age(desk: Desk, *names: str) -> list[str]:
    """The strategies in the order they get a claim when none runs: the oldest first, then by name."""
    return sorted(names, key=lambda name: (desk.get(name)["metadata"]["creationTimestamp"], name))


def statefulset_writes(emulator, since: int) -> list:
    return [r for r in operator_writes(emulator, since) if "/statefulsets" in r.url.path]


async def test_a_second_live_strategy_on_the_account_and_instrument_gets_no_pod_and_is_told_who_holds_it(
    emulator, floor: Desk, kubelet: Kubelet
):
    async with running_operator(emulator, settings()):
        await floor.apply(live("trend-btc"))
        await wait_for(lambda: floor.phase("trend-btc") == "Running")
        first_pod = pod_uids(floor, "trend-btc")

        await floor.apply(live("mean-revert-btc"))
        await wait_for(lambda: floor.phase("mean-revert-btc") == "Pending")
        assert floor.pods("mean-revert-btc") == []
        sts = floor.statefulset("mean-revert-btc")
        assert sts is None or sts["spec"]["replicas"] == 0
        for condition in ("Ready", "InvalidSpec"):
            said = floor.condition("mean-revert-btc", condition)
            assert said["reason"] == "NettingAccountInUse"
            for named in ("trend-btc", "BTCUSDT.BINANCE", "binance spot (testnet), Secret binance-testnet"):
                assert named in said["message"]
        await wait_for(lambda: floor.event_messages("mean-revert-btc", "NettingAccountInUse"))
        [event] = floor.event_messages("mean-revert-btc", "NettingAccountInUse")
        assert "trend-btc" in event and "another account or subaccount" in event

        # another instrument on the same account, another account (the same Secret's futures market), or paper: all run
        perp = ("BTCUSDT-PERP.BINANCE",)
        await floor.apply(live("trend-eth", instruments=("ETHUSDT.BINANCE",)))
        await floor.apply(live("trend-btc-perp", instruments=perp, accountType="usdtFutures"))
        await floor.apply({**paper("paper-btc"), "metadata": {"name": "paper-btc"}})
        for name in ("trend-eth", "trend-btc-perp", "paper-btc"):
            await wait_for(lambda name=name: floor.phase(name) == "Running")
            assert "NettingAccountInUse" not in floor.events(name)
        # a HEDGING account (Binance futures) conflicts all the same: a live strategy takes every order and position
        # of its instruments on its account for its own
        await floor.apply(live("mean-revert-btc-perp", instruments=perp, accountType="usdtFutures"))
        await wait_for(lambda: floor.phase("mean-revert-btc-perp") == "Pending")
        assert floor.pods("mean-revert-btc-perp") == []
        said = floor.condition("mean-revert-btc-perp", "InvalidSpec")
        assert said["reason"] == "NettingAccountInUse"
        for named in (
            "trend-btc-perp",
            "BTCUSDT-PERP.BINANCE",
            "binance usdtFutures (testnet), Secret binance-testnet",
        ):
            assert named in said["message"]
        # the first strategies were never touched
        assert floor.phase("trend-btc") == "Running" and pod_uids(floor, "trend-btc") == first_pod
        assert floor.phase("mean-revert-btc") == "Pending" and floor.pods("mean-revert-btc") == []
        assert floor.phase("trend-btc-perp") == "Running"


async def test_the_claim_passes_on_when_its_holder_is_deleted_and_stays_while_it_is_halted(
    emulator, floor: Desk, kubelet: Kubelet
):
    async with running_operator(emulator, settings()) as operator:
        await floor.apply(live("trend-btc"))
        await wait_for(lambda: floor.phase("trend-btc") == "Running")
        await floor.apply(live("mean-revert-btc"))
        await wait_for(lambda: floor.phase("mean-revert-btc") == "Pending")

        # halted, it may still hold a position at the venue: it keeps its claim
        await floor.scale("trend-btc", 0)
        await wait_for(lambda: floor.phase("trend-btc") == "Halted")
        await operator.processed(emulator, "trend-btc", "mean-revert-btc", namespace=LIVE_NAMESPACE)
        assert floor.phase("mean-revert-btc") == "Pending" and floor.pods("mean-revert-btc") == []
        # an edit to another account releases nothing while it is halted: its position is on this one
        await floor.edit_spec("trend-btc", {"venue": {"credentialsSecret": {"name": "desk-b-keys"}}})
        await operator.processed(emulator, "trend-btc", namespace=LIVE_NAMESPACE)
        await floor.annotate("mean-revert-btc", "example.com/look-again", "1")  # decided again, after the edit
        await operator.processed(emulator, "mean-revert-btc", namespace=LIVE_NAMESPACE)
        assert floor.status("trend-btc")["nettingClaim"]["account"] == "binance spot (testnet), Secret binance-testnet"
        assert floor.phase("mean-revert-btc") == "Pending" and floor.pods("mean-revert-btc") == []

        await floor.delete("trend-btc")
        await wait_for(lambda: floor.get("trend-btc") is None)
        await wait_for(lambda: floor.phase("mean-revert-btc") == "Running")
        assert floor.condition("mean-revert-btc", "InvalidSpec")["status"] == "False"


async def test_strategies_created_together_or_found_by_a_restarted_operator_keep_one_holder_and_restart_nothing(
    emulator, floor: Desk, kubelet: Kubelet
):
    # created while no operator runs (the same moment, as far as it can tell): the older, then the name, holds
    await floor.apply(live("b-second"))
    await floor.apply(live("a-first"))
    older, younger = by_age(floor, "a-first", "b-second")
    async with running_operator(emulator, settings()) as operator:
        await wait_for(lambda: floor.phase(older) == "Running" and floor.phase(younger) == "Pending")
        await operator.processed(emulator, older, younger, namespace=LIVE_NAMESPACE)
    running = pod_uids(floor, older)
    status = {name: floor.status(name) for name in (older, younger)}

    since = len(emulator)
    async with running_operator(emulator, settings()) as operator:
        await operator.processed(emulator, older, younger, namespace=LIVE_NAMESPACE)
        assert statefulset_writes(emulator, since) == []
        assert pod_uids(floor, older) == running and floor.pods(younger) == []
        assert {name: floor.status(name) for name in (older, younger)} == status


async def test_an_operator_upgraded_over_two_strategies_sharing_an_account_halts_neither_and_says_so(
    emulator, floor: Desk, kubelet: Kubelet, monkeypatch
):
    # Both run: started by an operator that knew no claims (an older version).
    with monkeypatch.context() as older_version:
        older_version.setattr(observer, "claim_problems", lambda me, others: [])
        older_version.setattr(claims, "record", lambda *args, **kwargs: None)
        async with running_operator(emulator, settings()):
            await floor.apply(live("trend-btc"))
            await floor.apply(live("mean-revert-btc"))
            await wait_for(
                lambda: floor.phase("trend-btc") == "Running" and floor.phase("mean-revert-btc") == "Running"
            )
    running = pod_uids(floor, "trend-btc", "mean-revert-btc")
    holder, other = by_age(floor, "trend-btc", "mean-revert-btc")

    since = len(emulator)
    async with running_operator(emulator, settings()) as operator:
        await operator.processed(emulator, holder, other, namespace=LIVE_NAMESPACE)
        await wait_for(lambda: floor.event_messages(other, "NettingAccountInUse"))
        [event] = floor.event_messages(other, "NettingAccountInUse")
        assert holder in event and "Both run on it" in event
        assert f"kubectl scale livestrategy {other} --replicas=0" in event
        # nothing halted, nothing restarted: the conflict is the desk's to settle
        assert statefulset_writes(emulator, since) == []
        assert pod_uids(floor, "trend-btc", "mean-revert-btc") == running
        assert floor.phase(holder) == "Running" and floor.phase(other) == "Running"
        assert floor.condition(other, "InvalidSpec")["reason"] == "NettingAccountInUse"
        assert floor.event_messages(holder, "NettingAccountInUse") == []

        # the desk halts one: the other runs on, alone with its claim
        await floor.scale(other, 0)
        await wait_for(lambda: floor.pods(other) == [] and floor.phase(other) == "Pending")  # waits for the claim
        assert pod_uids(floor, holder) == {holder: running[holder]}


async def test_a_holder_deleted_during_a_watch_gap_releases_its_claim_although_the_caches_still_show_it(
    emulator, floor: Desk, kubelet: Kubelet
):
    async with running_operator(emulator, settings()):
        await floor.apply(live("trend-btc"))
        await wait_for(lambda: floor.phase("trend-btc") == "Running")
        await floor.apply(live("mean-revert-btc"))
        await wait_for(lambda: floor.phase("mean-revert-btc") == "Pending")

        async with WatchGap(emulator, user_agent="kopf/") as gap:
            await floor.scale("trend-btc", 0)
            await floor.kubectl("delete", "livestrategy/trend-btc", "--wait=false")
            # Nobody releases it while the operator is blind: a person removes the finalizer, as for a stuck one.
            emulator.patch_object(
                LIVESTRATEGIES, "trend-btc", {"metadata": {"finalizers": None}}, namespace=LIVE_NAMESPACE
            )
            await wait_for(lambda: floor.get("trend-btc") is None and not floor.pods("trend-btc"))
        await wait_for(lambda: gap.refused > 0)  # the operator was told 410 Gone, and relisted: no DELETED came

        await wait_for(lambda: floor.phase("mean-revert-btc") == "Running", timeout=30)


def asked_for_a_pod(emulator, name: str) -> bool:
    """The operator ever wrote this strategy's StatefulSet with a pod wanted (created or patched to 1)."""
    return any(
        isinstance(r.data, dict)
        and (r.data.get("spec") or {}).get("replicas") == 1
        and (r.url.path.endswith(f"/statefulsets/{name}") or (r.data.get("metadata") or {}).get("name") == name)
        for r in statefulset_writes(emulator, 0)
    )


async def test_strategies_applied_at_the_same_moment_never_both_get_a_pod(emulator, floor: Desk, kubelet: Kubelet):
    pairs = [(f"fast-{coin}", f"slow-{coin}", f"{coin.upper()}USDT.BINANCE") for coin in ("btc", "eth", "sol")]
    async with running_operator(emulator, settings()) as operator:
        await asyncio.gather(
            *(floor.apply(live(name, instruments=(instrument,))) for *names, instrument in pairs for name in names)
        )
        everyone = [name for *names, _ in pairs for name in names]
        await wait_for(lambda: all(floor.phase(name) in ("Running", "Pending") for name in everyone), timeout=30)
        await operator.processed(emulator, *everyone, namespace=LIVE_NAMESPACE)
        for pair in pairs:
            # One runs: the older, unless it did not exist yet when the other started (created in the same second).
            [holder] = [name for name in pair[:2] if floor.phase(name) == "Running"]
            [waiting] = [name for name in pair[:2] if name != holder]
            assert floor.phase(waiting) == "Pending" and floor.pods(waiting) == []
            assert not asked_for_a_pod(emulator, waiting)
            assert floor.status(holder)["nettingClaim"]["instruments"] == [pair[2]]


async def test_after_a_failover_the_replica_with_stale_caches_keeps_the_same_holder_and_restarts_nothing(
    emulator, floor: Desk, kubelet: Kubelet
):
    # Replica "low" acts; "high" takes over (it pauses "low") and meanwhile the holder is deleted, the claim passes
    # on and a third strategy waits for it. "high" leaves: "low" acts again, its caches still holding the deleted
    # holder and its StatefulSet at one replica (kopf forgets an object only on a DELETED event).
    emulator.add_crd(peering_crd(clusterwide=True))
    emulator.create_object("kopf.dev/v1/clusterkopfpeerings", {"metadata": {"name": "livestrat"}})
    low = OperatorThread(fast_settings(peering="livestrat", priority=50, live_namespaces=[LIVE_NAMESPACE]), name="low")
    high = OperatorThread(
        fast_settings(peering="livestrat", priority=100, live_namespaces=[LIVE_NAMESPACE]), name="high"
    )
    async with low:
        await floor.apply(live("trend-btc"))
        await wait_for(lambda: floor.phase("trend-btc") == "Running")
        async with high:
            await wait_for(lambda: (LIVE_NAMESPACE, "trend-btc") in high.context.reconciler.phases, timeout=30)
            await floor.apply(live("mean-revert-btc"))
            await wait_for(lambda: floor.phase("mean-revert-btc") == "Pending")
            await floor.delete("trend-btc")
            await wait_for(lambda: floor.get("trend-btc") is None)
            await wait_for(lambda: floor.phase("mean-revert-btc") == "Running", timeout=30)
            await floor.apply(live("late-btc"))
            await wait_for(lambda: floor.phase("late-btc") == "Pending")
        started = list(kubelet.started_pods)
        told = floor.events("mean-revert-btc")
        since = len(emulator)

        await wait_for(lambda: low.reconciled(emulator, "mean-revert-btc", LIVE_NAMESPACE), timeout=30)  # acts again
        floor.push_runtime_status("mean-revert-btc", fills=1)
        await low.processed(emulator, "mean-revert-btc", "late-btc", namespace=LIVE_NAMESPACE)
        assert floor.phase("mean-revert-btc") == "Running" and floor.phase("late-btc") == "Pending"
        assert floor.events("mean-revert-btc") == told  # nothing new: no conflict found on stale caches
        assert "mean-revert-btc" in floor.condition("late-btc", "InvalidSpec")["message"]
        assert kubelet.started_pods == started and statefulset_writes(emulator, since) == []
