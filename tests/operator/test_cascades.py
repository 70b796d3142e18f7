"""Deletions with another propagation than the default: orphaned children are taken back, foreground waits."""

from __future__ import annotations

from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk, paper
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
