"""The desk's actions through the API, with the user's own kubeconfig and rights (no operator: what the API stores)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from livestrat.api.contract import (
    HALT_ANNOTATION,
    KILL_SWITCH_ANNOTATION,
    RISK_ACK_ANNOTATION,
    RISK_HALTED_AT_ANNOTATION,
)
from livestrat.desk import actions, roles
from livestrat.desk.cluster import Cluster, DeskError, Forbidden, NotFound
from livestrat.kube_emulator.emulator import KubernetesEmulator, kubeconfig
from tests.support.desk import LIVESTRATEGIES, paper
from tests.support.desk_users import add_cluster_role, desk_user
from tests.support.watch_gap import WatchGap

NS = "desk-a"


@pytest.fixture
def desk_namespace(emulator: KubernetesEmulator) -> str:
    emulator.add_namespace(NS)
    return NS


def store(emulator: KubernetesEmulator, name: str, status: dict | None = None, **spec) -> None:
    emulator.create_object(LIVESTRATEGIES, paper(name, **spec), namespace=NS)
    if status:
        emulator.patch_object(LIVESTRATEGIES, name, {"status": status}, namespace=NS, subresource="status")


def read(emulator: KubernetesEmulator, name: str) -> dict:
    return emulator.read_object(LIVESTRATEGIES, name, namespace=NS)


def user(emulator: KubernetesEmulator, tmp_path: Path, who: str, *role_names: str) -> Path:
    for role in role_names:
        add_cluster_role(emulator, f"livestrat-{role}", roles.rules_of(role))
    return desk_user(emulator, tmp_path, who, [f"livestrat-{r}" for r in role_names], [NS])


async def test_no_kubeconfig_says_where_it_looked_and_what_to_do(tmp_path):
    with pytest.raises(DeskError, match=r"no kubeconfig at .*missing.*--kubeconfig or \$KUBECONFIG"):
        await Cluster.connect(environ={"KUBECONFIG": str(tmp_path / "missing")})


async def test_the_context_namespace_is_where_a_name_is_looked_for(emulator, desk_namespace, tmp_path):
    trader = user(emulator, tmp_path, "alice", roles.TRADER)
    async with await Cluster.connect(kubeconfig=str(trader)) as cluster:
        assert cluster.namespace == NS
    async with await Cluster.connect(kubeconfig=str(trader), namespace="elsewhere") as cluster:
        assert cluster.namespace == "elsewhere"


async def test_a_missing_strategy_is_named_with_its_namespace(emulator, desk_namespace, kubeconfig_path):
    async with await Cluster.connect(kubeconfig=str(kubeconfig_path)) as cluster:
        with pytest.raises(NotFound, match=f"LiveStrategy 'nope' in namespace '{NS}'"):
            await actions.halt(cluster, NS, "nope")


async def test_halt_scales_to_zero_and_says_what_it_will_do_first(emulator, desk_namespace, tmp_path):
    store(emulator, "ema", {"phase": "Running", "replicas": 1, "trading": {"openOrders": 2}}, haltPolicy="flatten")
    async with await Cluster.connect(kubeconfig=str(user(emulator, tmp_path, "alice", roles.TRADER))) as cluster:
        action = await actions.halt(cluster, NS, "ema")
        assert read(emulator, "ema")["spec"]["replicas"] == 1  # describing changes nothing
        text = action.describe()
        assert "2 open order(s)" in text and "--replicas=0" in text and "closes its positions" in text
        outcome = await action.run(cluster)
    assert read(emulator, "ema")["spec"]["replicas"] == 0
    assert outcome.state["spec"]["replicas"] == 0
    assert outcome.done == ("scaled to 0 replicas",)


async def test_halting_a_halted_strategy_does_nothing_and_says_so(emulator, desk_namespace, kubeconfig_path):
    store(emulator, "ema", replicas=0)
    version = read(emulator, "ema")["metadata"]["resourceVersion"]
    async with await Cluster.connect(kubeconfig=str(kubeconfig_path)) as cluster:
        action = await actions.halt(cluster, NS, "ema")
        assert action.nothing_to_do == "spec.replicas is 0 already"
        await action.run(cluster)
    assert read(emulator, "ema")["metadata"]["resourceVersion"] == version


async def test_a_halt_with_a_note_is_the_gitops_proof_annotation(emulator, desk_namespace, kubeconfig_path):
    store(emulator, "ema")
    async with await Cluster.connect(kubeconfig=str(kubeconfig_path)) as cluster:
        await (await actions.halt(cluster, NS, "ema", note="alice: venue maintenance")).run(cluster)
    stored = read(emulator, "ema")
    assert stored["metadata"]["annotations"][HALT_ANNOTATION] == "alice: venue maintenance"
    assert stored["spec"]["replicas"] == 1  # the spec Git owns is left alone


async def test_resume_lifts_the_annotation_and_scales_up(emulator, desk_namespace, kubeconfig_path):
    store(emulator, "ema", replicas=0)
    emulator.patch_object(LIVESTRATEGIES, "ema", {"metadata": {"annotations": {HALT_ANNOTATION: "x"}}}, namespace=NS)
    async with await Cluster.connect(kubeconfig=str(kubeconfig_path)) as cluster:
        outcome = await (await actions.resume(cluster, NS, "ema")).run(cluster)
    stored = read(emulator, "ema")
    assert HALT_ANNOTATION not in (stored["metadata"].get("annotations") or {})
    assert stored["spec"]["replicas"] == 1
    assert len(outcome.done) == 2


async def test_resume_warns_that_a_risk_halt_holds(emulator, desk_namespace, kubeconfig_path):
    risk = {"state": "Halted", "breachedLimit": "maxDailyLoss", "breachedAt": "2026-12-06T10:00:00.000Z"}
    store(emulator, "ema", {"phase": "RiskHalted", "risk": risk}, replicas=0)
    async with await Cluster.connect(kubeconfig=str(kubeconfig_path)) as cluster:
        action = await actions.resume(cluster, NS, "ema")
    assert "kubectl livestrat ack-risk ema" in action.describe()


async def test_ack_risk_acknowledges_the_breach_the_operator_latched(emulator, desk_namespace, kubeconfig_path):
    # the runtime restarted without its ledger and reports Active; the operator's record still holds the halt
    store(emulator, "ema", {"phase": "RiskHalted", "risk": {"state": "Active"}})
    latched = "2026-12-06T10:00:00.000Z"
    emulator.patch_object(
        LIVESTRATEGIES, "ema", {"metadata": {"annotations": {RISK_HALTED_AT_ANNOTATION: latched}}}, namespace=NS
    )
    async with await Cluster.connect(kubeconfig=str(kubeconfig_path)) as cluster:
        action = await actions.ack_risk(cluster, NS, "ema")
        assert latched in action.describe()
        await action.run(cluster)
        assert (await actions.ack_risk(cluster, NS, "ema")).nothing_to_do == "its breach is acknowledged already"
    assert read(emulator, "ema")["metadata"]["annotations"][RISK_ACK_ANNOTATION] == latched


async def test_ack_risk_on_a_strategy_that_is_not_halted_does_nothing(emulator, desk_namespace, kubeconfig_path):
    store(emulator, "ema", {"phase": "Running", "risk": {"state": "Active"}})
    async with await Cluster.connect(kubeconfig=str(kubeconfig_path)) as cluster:
        assert (await actions.ack_risk(cluster, NS, "ema")).nothing_to_do == "it is not risk-halted"


async def test_kill_switch_on_names_every_strategy_it_halts_and_off_resumes_none(
    emulator, desk_namespace, kubeconfig_path
):
    store(emulator, "a")
    store(emulator, "b")
    async with await Cluster.connect(kubeconfig=str(kubeconfig_path)) as cluster:
        on = await actions.kill_switch(cluster, NS, True)
        assert "(2: a, b)" in on.describe()
        outcome = await on.run(cluster)
        assert outcome.state["metadata"]["annotations"][KILL_SWITCH_ANNOTATION] == "true"
        assert (await actions.kill_switch(cluster, NS, True)).nothing_to_do == "the kill switch is on already"
        off = await actions.kill_switch(cluster, NS, False)
        assert "nothing resumes by itself" in off.describe()
        await off.run(cluster)
    assert KILL_SWITCH_ANNOTATION not in (
        emulator.read_object("v1/namespaces", NS)["metadata"].get("annotations") or {}
    )


async def test_the_desk_role_may_look_but_not_halt(emulator, desk_namespace, tmp_path):
    store(emulator, "ema")
    reader = user(emulator, tmp_path, "bob", roles.DESK)
    async with await Cluster.connect(kubeconfig=str(reader)) as cluster:
        action = await actions.halt(cluster, NS, "ema")  # reading is allowed
        with pytest.raises(Forbidden) as refused:
            await action.run(cluster)
    message = str(refused.value)
    assert f"you may not patch livestrategies/scale in namespace '{NS}'" in message
    assert "'trader' role grants it" in message and "--clusterrole=livestrat-operator-trader" in message
    assert read(emulator, "ema")["spec"]["replicas"] == 1


async def test_a_trader_may_not_pull_the_kill_switch(emulator, desk_namespace, tmp_path):
    trader = user(emulator, tmp_path, "carol", roles.TRADER)
    async with await Cluster.connect(kubeconfig=str(trader)) as cluster:
        with pytest.raises(Forbidden, match="'kill-switch' role grants it"):
            await actions.kill_switch(cluster, NS, True)


async def test_watching_the_fleet_sees_every_strategy_then_each_change(emulator, desk_namespace, tmp_path):
    store(emulator, "a")
    reader = user(emulator, tmp_path, "dave", roles.DESK)
    async with await Cluster.connect(kubeconfig=str(reader)) as cluster:
        seen = cluster.watch_strategies(NS)
        assert [(kind, body["metadata"]["name"]) for kind, body in [await anext(seen)]] == [("ADDED", "a")]
        emulator.patch_object(LIVESTRATEGIES, "a", {"status": {"phase": "Running"}}, namespace=NS, subresource="status")
        kind, body = await anext(seen)
        assert (kind, body["status"]["phase"]) == ("MODIFIED", "Running")
        store(emulator, "b")
        kind, body = await anext(seen)
        assert (kind, body["metadata"]["name"], body["kind"]) == ("ADDED", "b", "LiveStrategy")
        await seen.aclose()


async def test_after_a_watch_gap_the_fleet_relists_and_forgets_what_was_deleted_meanwhile(
    emulator, desk_namespace, kubeconfig_path
):
    store(emulator, "kept")
    store(emulator, "gone")
    async with await Cluster.connect(kubeconfig=str(kubeconfig_path)) as cluster:
        seen = cluster.watch_strategies(NS)
        first = {(await anext(seen))[1]["metadata"]["name"] for _ in range(2)}
        assert first == {"kept", "gone"}
        next_event = asyncio.ensure_future(anext(seen))
        async with WatchGap(emulator, user_agent="kubectl-livestrat/"):
            await asyncio.sleep(0.2)  # the watch is cut and held: nothing arrives
            emulator.delete_object(LIVESTRATEGIES, "gone", namespace=NS)
            store(emulator, "new")
            assert not next_event.done()
        events = [await next_event] + [await anext(seen) for _ in range(2)]
        await seen.aclose()
    assert sorted((kind, body["metadata"]["name"]) for kind, body in events) == [
        ("ADDED", "new"),
        ("DELETED", "gone"),
        ("MODIFIED", "kept"),
    ]


async def test_another_context_of_the_kubeconfig_is_taken_with_its_namespace(emulator, desk_namespace, tmp_path):
    two = kubeconfig(str(emulator.url), namespace="default")
    two["contexts"].append({"name": "desk", "context": {"cluster": "kmock", "user": "kmock", "namespace": NS}})
    path = tmp_path / "two-contexts.json"
    path.write_text(json.dumps(two))
    store(emulator, "ema")
    async with await Cluster.connect(kubeconfig=str(path), context="desk") as cluster:
        assert (cluster.context, cluster.namespace) == ("desk", NS)
        assert [s["metadata"]["name"] for s in await cluster.list_strategies(cluster.namespace)] == ["ema"]
    with pytest.raises(DeskError, match=r"cannot be used: .*nope"):
        await Cluster.connect(kubeconfig=str(path), context="nope")


async def test_the_kill_switch_role_alone_pulls_the_switch_without_listing_the_strategies(
    emulator, desk_namespace, tmp_path
):
    store(emulator, "a")
    on_call = user(emulator, tmp_path, "sam", roles.KILL_SWITCH)
    async with await Cluster.connect(kubeconfig=str(on_call)) as cluster:
        action = await actions.kill_switch(cluster, NS, True)
        assert "you may not list" in action.describe()
        await action.run(cluster)
    assert emulator.read_object("v1/namespaces", NS)["metadata"]["annotations"][KILL_SWITCH_ANNOTATION] == "true"
