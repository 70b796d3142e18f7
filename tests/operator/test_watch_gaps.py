"""Stale caches after a watch gap: what was deleted while the operator's watches were cut off stops nothing.

kopf forgets an object (from its indexes, and its daemon) only on a DELETED event. After a gap in its watches
(tests/support/watch_gap.py: the API server answers 410 Gone and kopf relists) or a peering pause, what was
deleted meanwhile stays in its caches. The operator confirms with the API server before it declares a name
taken, deletes a pod or scales a StatefulSet down, and a reconciler whose LiveStrategy is gone stops.
"""

from __future__ import annotations

from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk, paper
from tests.support.kube import wait_for
from tests.support.operator import OperatorThread, fast_settings, peering_crd, running_operator
from tests.support.watch_gap import WatchGap

LIVESTRATEGIES = "livestrat.io/v1alpha1/livestrategies"
STATEFULSETS = "apps/v1/statefulsets"


def owner_uid(body: dict) -> str:
    return body["metadata"]["ownerReferences"][0]["uid"]


async def test_a_strategy_deleted_and_recreated_during_a_watch_gap_gets_its_children_and_keeps_running(
    emulator, desk: Desk, kubelet: Kubelet
):
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(paper("gap"))
        await wait_for(lambda: desk.phase("gap") == "Running")
        first = desk.get("gap")["metadata"]["uid"]

        async with WatchGap(emulator, user_agent="kopf/") as gap:
            await desk.kubectl("delete", "livestrategy/gap", "--wait=false")
            # Nobody releases it while the operator is blind: a person removes the finalizer, as for a stuck one.
            emulator.patch_object(LIVESTRATEGIES, "gap", {"metadata": {"finalizers": None}}, namespace="default")
            await wait_for(lambda: desk.get("gap") is None and desk.statefulset("gap") is None and not desk.pods("gap"))
            await desk.apply(paper("gap"))
        await wait_for(lambda: gap.refused > 0)  # the operator was told 410 Gone, and relisted

        second = desk.get("gap")["metadata"]["uid"]
        assert second != first
        await wait_for(lambda: desk.statefulset("gap") and owner_uid(desk.statefulset("gap")) == second, timeout=30)
        await wait_for(lambda: desk.phase("gap") == "Running" and desk.pods("gap"), timeout=30)
        for kind in ("ConfigMap", "ServiceAccount", "Role", "RoleBinding", "StatefulSet"):
            assert owner_uid(desk.child(kind, "gap")) == second, kind

        # Anything of the strategy wakes every reconciler of its name, the gone one's too: none acts on the past.
        desk.push_runtime_status("gap", fills=1)
        await operator.processed(emulator, "gap")
        assert desk.phase("gap") == "Running", (desk.status("gap")["message"], desk.events("gap"), kubelet.started_pods)
        assert desk.statefulset("gap")["spec"]["replicas"] == 1
        assert owner_uid(desk.statefulset("gap")) == second
        assert "NameConflict" not in desk.events("gap")
        assert operator.metric("livestrat_operator_reconcile_errors_total") == 0


async def test_after_a_failover_the_strategy_recreated_meanwhile_keeps_its_running_statefulset(
    emulator, desk: Desk, kubelet: Kubelet
):
    # Replica "low" acts; "high" takes over (it pauses "low": no watches, no reconcilers) and, meanwhile, the
    # strategy is deleted and recreated and runs again. "high" leaves: "low" acts again after a relist, its caches
    # still holding the children of the strategy that was deleted.
    emulator.add_crd(peering_crd(clusterwide=True))
    emulator.create_object("kopf.dev/v1/clusterkopfpeerings", {"metadata": {"name": "livestrat"}})
    low = OperatorThread(fast_settings(peering="livestrat", priority=50), name="low")
    high = OperatorThread(fast_settings(peering="livestrat", priority=100), name="high")
    async with low:
        await desk.apply(paper("failover"))
        await wait_for(lambda: desk.phase("failover") == "Running")
        first = desk.get("failover")["metadata"]["uid"]
        async with high:
            await wait_for(lambda: ("default", "failover") in high.context.reconciler.phases, timeout=30)
            await desk.delete("failover")
            await desk.apply(paper("failover"))
            await wait_for(lambda: desk.statefulset("failover") and owner_uid(desk.statefulset("failover")) != first)
            await wait_for(lambda: desk.phase("failover") == "Running" and desk.pods("failover"), timeout=30)
        second = desk.get("failover")["metadata"]["uid"]
        started = len(kubelet.started_pods)

        await wait_for(lambda: low.reconciled(emulator, "failover"), timeout=30)  # "low" acts again
        desk.push_runtime_status("failover", fills=1)
        await low.processed(emulator, "failover")
        assert (
            desk.statefulset("failover")["spec"]["replicas"] == 1 and owner_uid(desk.statefulset("failover")) == second
        )
        assert desk.phase("failover") == "Running" and len(kubelet.started_pods) == started
        assert "NameConflict" not in desk.events("failover")


async def test_a_deletion_whose_statefulset_went_unseen_releases_the_strategy_without_waiting_for_a_retry(
    emulator, desk: Desk, kubelet: Kubelet
):
    # The StatefulSet goes while the operator's StatefulSet watch is cut off (the garbage collector of a foreground
    # deletion, a person): its cache still shows it with one replica. Scaling it down answers 404; that is the
    # halt done, not a failure to retry in a minute while the pod it left keeps trading.
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(paper("unseen"))
        await wait_for(lambda: desk.phase("unseen") == "Running" and desk.pods("unseen"))
        async with WatchGap(emulator, user_agent="kopf/", plural="statefulsets"):
            emulator.delete_object(STATEFULSETS, "unseen", namespace="default", propagation="Orphan")
            await wait_for(lambda: desk.statefulset("unseen") is None)
            await desk.kubectl("delete", "livestrategy/unseen", "--wait=false")
            await wait_for(lambda: desk.get("unseen") is None and not desk.pods("unseen"), timeout=20)
        assert operator.metric("livestrat_operator_reconcile_errors_total") == 0


async def test_a_namespace_deleted_with_its_kill_switch_engaged_during_a_watch_gap_holds_nothing_once_recreated(
    emulator, desk: Desk, kubelet: Kubelet
):
    # kopf keys its index entries by uid and forgets one only on a DELETED event: the deleted namespace's engaged
    # kill switch stays in the index after the relist, beside the new namespace of the same name, which has none.
    emulator.add_namespace("team-k")
    team = desk.in_namespace("team-k")
    async with running_operator(emulator, fast_settings()) as operator:
        desk.set_namespace_annotation("livestrat.io/kill-switch", "true", namespace="team-k")
        await team.apply(paper("held"))
        await wait_for(lambda: "KillSwitchEngaged" in team.events("held"), timeout=30)  # the switch is in the index
        await team.kubectl("delete", "livestrategy/held")
        await wait_for(lambda: team.get("held") is None)

        async with WatchGap(emulator, user_agent="kopf/") as gap:
            await desk.kubectl("delete", "namespace", "team-k", "--wait=false")
            await wait_for(lambda: emulator.read_object("v1/namespaces", "team-k") is None, timeout=30)
            emulator.add_namespace("team-k")  # the same name, a new namespace: no kill switch
        await wait_for(lambda: gap.refused > 0)  # the operator was told 410 Gone, and relisted

        await team.apply(paper("fresh"))
        await wait_for(lambda: team.phase("fresh") == "Running" and team.pods("fresh"), timeout=30)
        assert "livestrat.io/halt" not in (team.get("fresh")["metadata"].get("annotations") or {})
        assert "KillSwitchEngaged" not in team.events("fresh")

        # and the switch engaged on the new namespace still halts at once
        desk.set_namespace_annotation("livestrat.io/kill-switch", "true", namespace="team-k")
        await wait_for(lambda: team.condition("fresh", "Halted").get("reason") == "KillSwitch", timeout=30)
        assert operator.metric("livestrat_operator_reconcile_errors_total") == 0
