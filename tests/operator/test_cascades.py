"""Deletions with another propagation than the default: orphaned children are taken back, foreground waits."""

from __future__ import annotations

from tests.support.desk import Desk, paper
from tests.support.kube import wait_for
from tests.support.kubelet import Kubelet
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


async def test_a_pod_that_must_not_run_is_deleted_also_when_it_is_an_orphan(emulator, desk: Desk, kubelet: Kubelet):
    async with running_operator(emulator, fast_settings()):
        await desk.apply(paper("halted-orphan", replicas=0))
        await wait_for(lambda: desk.phase("halted-orphan") == "Halted")
        template = desk.statefulset("halted-orphan")["spec"]["template"]
        emulator.create_object(  # a pod its StatefulSet would adopt, while the strategy is halted
            "v1/pods",
            {"metadata": {"name": "halted-orphan-0", **template["metadata"]}, "spec": template["spec"]},
            namespace="default",
        )
        await wait_for(lambda: desk.pods("halted-orphan") == [])
        await wait_for(lambda: "RoguePodDeleted" in desk.events("halted-orphan"))
