"""Deletions with another propagation than the default: orphaned children are taken back, foreground waits."""

from __future__ import annotations

from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import LIVESTRATEGIES, Desk, paper
from tests.support.kube import wait_for
from tests.support.operator import fast_settings, running_operator


def live_pods(desk: Desk, name: str) -> list[dict]:
    return [p for p in desk.pods(name) if not p["metadata"].get("deletionTimestamp")]


async def test_a_statefulset_deleted_with_cascade_orphan_is_recreated_and_adopts_the_running_pod(
    emulator, desk: Desk, kubelet: Kubelet
):
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(paper("orphaned"))
        await wait_for(lambda: desk.phase("orphaned") == "Running")
        [pod] = desk.pods("orphaned")
        old = desk.statefulset("orphaned")["metadata"]["uid"]

        await desk.kubectl("delete", "statefulset", "orphaned", "--cascade=orphan")

        def adopted() -> bool:
            sts = desk.statefulset("orphaned")
            pods = live_pods(desk, "orphaned")
            refs = [r["uid"] for p in pods for r in p["metadata"].get("ownerReferences") or [] if r.get("controller")]
            return sts is not None and sts["metadata"]["uid"] != old and refs == [sts["metadata"]["uid"]]

        await wait_for(adopted)
        await operator.processed(emulator, "orphaned")
        assert [p["metadata"]["uid"] for p in desk.pods("orphaned")] == [pod["metadata"]["uid"]]  # the same pod
        assert kubelet.started_pods == ["default/orphaned-0"]
        assert "RoguePodDeleted" not in desk.events("orphaned")
        assert desk.phase("orphaned") == "Running"


async def test_a_foreground_deletion_keeps_what_the_pod_reports_with_until_the_pod_is_gone(
    emulator, desk: Desk, kube_env, tmp_path
):
    # The garbage collector deletes the dependents first; the pod still halts and pushes its final status with its
    # service account, through its Role and RoleBinding: those stay until it is gone.
    identity = ("ServiceAccount", "Role", "RoleBinding")
    kubelet = Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kube_env)
    async with kubelet, running_operator(emulator, fast_settings()):
        await desk.apply(paper("fg"))
        await wait_for(lambda: desk.phase("fg") == "Running")

        kubelet.hold_stops()
        await desk.kubectl("delete", "livestrategy", "fg", "--cascade=foreground", "--wait=false")
        await wait_for(lambda: any(p["metadata"].get("deletionTimestamp") for p in desk.pods("fg")))
        assert desk.pods("fg"), "the pod was to be still halting"
        assert {kind: desk.child(kind, "fg") is not None for kind in identity} == dict.fromkeys(identity, True)
        kubelet.release_stops()

        await wait_for(lambda: desk.get("fg") is None, timeout=30)
        assert desk.pods("fg") == []
        assert {kind: desk.child(kind, "fg") for kind in (*identity, "StatefulSet", "ConfigMap")} == {
            kind: None for kind in (*identity, "StatefulSet", "ConfigMap")
        }


async def test_a_strategy_deleted_with_cascade_orphan_leaves_children_a_new_one_of_its_name_takes_over(
    emulator, desk: Desk, kubelet: Kubelet
):
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(paper("reborn"))
        await wait_for(lambda: desk.phase("reborn") == "Running")
        await desk.kubectl("delete", "livestrategy", "reborn", "--cascade=orphan", "--timeout=60s")  # halts first
        assert desk.get("reborn") is None and desk.pods("reborn") == []
        kinds = ("ConfigMap", "ServiceAccount", "Role", "RoleBinding", "StatefulSet")
        assert all(not desk.child(kind, "reborn")["metadata"].get("ownerReferences") for kind in kinds)

        await desk.apply(paper("reborn"))
        await wait_for(lambda: desk.phase("reborn") == "Running")
        uid = desk.get("reborn")["metadata"]["uid"]
        for kind in kinds:
            [owner] = desk.child(kind, "reborn")["metadata"]["ownerReferences"]
            assert owner["uid"] == uid and owner["controller"] is True, kind
        await operator.processed(emulator, "reborn")
        assert "NameConflict" not in desk.events("reborn")


async def test_an_object_that_is_not_livestrats_still_holds_its_name_against_a_strategy(
    emulator, desk: Desk, kubelet: Kubelet
):
    emulator.create_object(  # the strategy's label, but not livestrat's: someone else's ConfigMap
        "v1/configmaps", {"metadata": {"name": "taken", "labels": {"livestrat.io/strategy": "taken"}}}, "default"
    )
    async with running_operator(emulator, fast_settings()):
        await desk.apply(paper("taken"))
        await wait_for(lambda: desk.condition("taken", "InvalidSpec").get("reason") == "NameConflict")
        assert desk.pods("taken") == []


async def test_a_strategy_recreated_before_the_garbage_collector_came_round_waits_for_it_and_adopts_nothing(
    emulator, desk: Desk, kubelet: Kubelet
):
    # "Garbage Collection": after a background deletion the owner is gone at once and its dependents go later; they
    # name the old owner's uid, so a LiveStrategy recreated under the same name meanwhile is not their owner. It
    # takes none of them, runs no pod beside them, and tells nobody to rename it: the collector removes them.
    kinds = ("ConfigMap", "ServiceAccount", "Role", "RoleBinding", "StatefulSet")
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(paper("again"))
        await wait_for(lambda: desk.phase("again") == "Running")
        old = desk.get("again")["metadata"]["uid"]
        with emulator.garbage_collector.paused():
            await desk.delete("again")  # halted first, then gone; its children still there
            assert desk.pods("again") == []
            assert {kind: desk.child(kind, "again")["metadata"]["ownerReferences"][0]["uid"] for kind in kinds} == (
                dict.fromkeys(kinds, old)
            )
            await desk.apply(paper("again"))
            await operator.processed(emulator, "again")
            assert {kind: desk.child(kind, "again")["metadata"]["ownerReferences"][0]["uid"] for kind in kinds} == (
                dict.fromkeys(kinds, old)
            )
            assert desk.pods("again") == [] and desk.statefulset("again")["spec"]["replicas"] == 0

        new = desk.get("again")["metadata"]["uid"]
        await wait_for(lambda: desk.phase("again") == "Running" and desk.pods("again"), timeout=30)
        for kind in kinds:
            [owner] = desk.child(kind, "again")["metadata"]["ownerReferences"]
            assert owner["uid"] == new and owner["controller"] is True, kind
        await operator.processed(emulator, "again")
        assert kubelet.started_pods == ["default/again-0", "default/again-0"]  # one at a time: the old, then the new
        assert "NameConflict" not in desk.events("again"), desk.event_messages("again", "NameConflict")
        assert desk.phase("again") == "Running"


async def test_a_strategy_released_by_hand_and_applied_again_while_its_pod_runs_never_runs_two_pods(
    emulator, desk: Desk, kubelet: Kubelet
):
    # The way out of a deletion stuck while the operator is down: its finalizer taken off by hand. The LiveStrategy
    # goes at once; its StatefulSet and pod go when the garbage collector comes round (the StatefulSet, then its
    # pod). Applied again meanwhile, the new strategy leaves the old StatefulSet alone (not scaled, not adopted) and
    # starts its own pod only once the old one is gone: never two at a time.
    async with running_operator(emulator, fast_settings()):
        await desk.apply(paper("stuck"))
        await wait_for(lambda: desk.phase("stuck") == "Running" and desk.pods("stuck"))
    [old_pod] = desk.pods("stuck")
    old_sts = desk.statefulset("stuck")
    with emulator.garbage_collector.paused():
        await desk.kubectl("delete", "livestrategy/stuck", "--wait=false")
        emulator.patch_object(LIVESTRATEGIES, "stuck", {"metadata": {"finalizers": None}}, namespace="default")
        assert desk.get("stuck") is None
        async with running_operator(emulator, fast_settings()) as operator:
            await desk.apply(paper("stuck"))
            await operator.processed(emulator, "stuck")
            sts = desk.statefulset("stuck")
            assert sts["metadata"]["uid"] == old_sts["metadata"]["uid"]
            assert (sts["spec"], sts["metadata"]["generation"]) == (old_sts["spec"], old_sts["metadata"]["generation"])
            assert sts["metadata"]["ownerReferences"] == old_sts["metadata"]["ownerReferences"]
            assert [p["metadata"]["uid"] for p in desk.pods("stuck")] == [old_pod["metadata"]["uid"]]
    async with running_operator(emulator, fast_settings()):
        new = desk.get("stuck")["metadata"]["uid"]

        def replaced() -> bool:
            sts = desk.statefulset("stuck")
            return sts is not None and sts["metadata"]["uid"] != old_sts["metadata"]["uid"]

        await wait_for(replaced, timeout=30)
        await wait_for(lambda: desk.phase("stuck") == "Running" and live_pods(desk, "stuck"), timeout=30)
        [pod] = live_pods(desk, "stuck")
        assert pod["metadata"]["uid"] != old_pod["metadata"]["uid"]
        assert desk.statefulset("stuck")["metadata"]["ownerReferences"][0]["uid"] == new
        assert kubelet.started_pods == ["default/stuck-0", "default/stuck-0"] and kubelet.max_running == 1
        assert "NameConflict" not in desk.events("stuck")
