"""Peering (two operator replicas, one acting): no namespace can freeze the others, and a paused replica shows.

kopf pauses a replica while any of its peering objects says so, and, with peering mandatory, while an object it
watches is missing: with one KopfPeering per watched namespace, one namespace without its object paused the
whole operator, silently (its liveness endpoint answers all the same). The operator peers through one
ClusterKopfPeering whatever it watches, and tells whether it acts: metrics, readiness (/readyz), an alert.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp

from livestrat.kube_emulator.kubelet import Kubelet
from strategy_operator.peering import Paused, paused_by
from tests.support.desk import Desk, paper
from tests.support.kube import wait_for
from tests.support.operator import OperatorThread, fast_settings, peering_crd

CLUSTER_PEERINGS = "kopf.dev/v1/clusterkopfpeerings"


def keepalive(priority: int, seconds_ago: float = 0, lifetime: int = 60) -> dict:
    """A replica's entry in the peering object, as kopf writes it (peering.touch)."""
    seen = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    return {"priority": priority, "lifetime": lifetime, "lastseen": seen.isoformat()}


def test_why_a_replica_is_paused_follows_kopfs_rule_on_the_peering_object():
    me = "livestrat-operator-1"
    assert paused_by(None, me, 999) == Paused.PEERING_OBJECT_MISSING
    assert paused_by({"metadata": {"name": "p"}}, me, 999) is None  # alone
    assert paused_by({"status": {me: keepalive(999)}}, me, 999) is None  # only itself
    acting = {"livestrat-operator-0": keepalive(1000)}
    assert paused_by({"status": acting}, me, 999) == Paused.HIGHER_PRIORITY_PEER  # a standby
    gone = {"livestrat-operator-0": keepalive(1000, seconds_ago=61)}
    assert paused_by({"status": gone}, me, 999) is None  # its keep-alive expired: this one takes over
    assert paused_by({"status": {"twin": keepalive(999)}}, me, 999) == Paused.SAME_PRIORITY_PEER
    assert paused_by({"status": {"low": keepalive(5)}}, me, 999) is None
    assert paused_by({"status": "not a map"}, me, 999) is None


async def readiness(operator: OperatorThread) -> tuple[int, str]:
    url = operator.metrics_url.replace("/metrics", "/readyz")
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_an_operator_watching_named_namespaces_acts_in_all_of_them_through_one_cluster_peering(
    emulator, desk: Desk, kubelet: Kubelet
):
    for namespace in ("desk-a", "desk-b"):
        emulator.add_namespace(namespace)
    emulator.add_crd(peering_crd(clusterwide=True))
    emulator.add_crd(peering_crd(clusterwide=False))
    emulator.create_object(CLUSTER_PEERINGS, {"metadata": {"name": "livestrat"}})
    # desk-b has a KopfPeering of that name, desk-a none: neither matters any more
    emulator.create_object("kopf.dev/v1/kopfpeerings", {"metadata": {"name": "livestrat"}}, namespace="desk-b")
    settings = fast_settings(peering="livestrat", replica_ordinal=0)
    async with OperatorThread(settings, namespaces=["desk-a", "desk-b"]) as operator:
        a, b = desk.in_namespace("desk-a"), desk.in_namespace("desk-b")
        await a.apply(paper("one"))
        await b.apply(paper("two"))
        await wait_for(lambda: a.phase("one") == "Running" and b.phase("two") == "Running", timeout=30)
        assert operator.metric("livestrat_operator_acting") == 1
        assert (await readiness(operator))[0] == 200


async def test_a_replica_paused_by_a_missing_peering_object_says_so_and_acts_once_it_exists(
    emulator, desk: Desk, kubelet: Kubelet
):
    emulator.add_crd(peering_crd(clusterwide=True))
    settings = fast_settings(peering="livestrat", replica_ordinal=0)
    async with OperatorThread(settings) as operator:
        await desk.apply(paper("waiting"))
        await wait_for(lambda: operator.metric("livestrat_operator_paused", reason="PeeringObjectMissing") == 1)
        assert operator.metric("livestrat_operator_acting") == 0
        status, body = await readiness(operator)
        assert status == 503 and "ClusterKopfPeering livestrat" in body
        assert desk.phase("waiting") is None  # nothing acts

        emulator.create_object(CLUSTER_PEERINGS, {"metadata": {"name": "livestrat"}})
        await wait_for(lambda: desk.phase("waiting") == "Running", timeout=30)
        await wait_for(lambda: operator.metric("livestrat_operator_acting") == 1, timeout=30)
        assert operator.metric("livestrat_operator_paused", reason="PeeringObjectMissing") == 0
        assert (await readiness(operator))[0] == 200
