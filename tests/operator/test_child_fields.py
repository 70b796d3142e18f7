"""What the operator stops wanting leaves its children; what the API server keeps to itself is never patched."""

from __future__ import annotations

from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk, example, paper
from tests.support.kube import wait_for
from tests.support.operator import fast_settings, operator_writes, running_operator

NONCE = "livestrat.io/restart-nonce"
WORKLOAD_IDENTITY = "iam.gke.io/gcp-service-account"


def template_annotations(desk: Desk, name: str) -> dict[str, str]:
    return desk.statefulset(name)["spec"]["template"]["metadata"].get("annotations") or {}


def pod_hash(desk: Desk, name: str) -> str | None:
    pods = [p for p in desk.pods(name) if not p["metadata"].get("deletionTimestamp")]
    return pods[0]["metadata"]["annotations"].get("livestrat.io/config-hash") if pods else None


async def test_a_removed_restart_nonce_leaves_the_template_and_a_later_manual_edit_restarts_nothing(
    emulator, desk: Desk, kubelet: Kubelet
):
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(paper("manual", updatePolicy="Manual", restartNonce="first"))
        await wait_for(lambda: desk.phase("manual") == "Running")
        assert template_annotations(desk, "manual")[NONCE] == "first"

        before = pod_hash(desk, "manual")
        await desk.edit_spec("manual", {"restartNonce": None})  # a new nonce (none): one restart
        await wait_for(lambda: desk.phase("manual") == "Running" and pod_hash(desk, "manual") not in (None, before))
        assert NONCE not in template_annotations(desk, "manual")
        started = len(kubelet.started_pods)

        await desk.edit_spec("manual", {"risk": {"maxDailyLoss": 900}})  # Manual: waits for a restart
        await wait_for(lambda: desk.is_true("manual", "ConfigDrift"))
        await operator.processed(emulator, "manual")
        assert desk.condition("manual", "ConfigDrift")["reason"] == "SpecChanged"
        assert len(kubelet.started_pods) == started and desk.phase("manual") == "Running"


async def test_leaving_gcs_fuse_and_workload_identity_removes_their_annotations(emulator, desk: Desk, kubelet: Kubelet):
    name = "ema-cross-gcs"
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(example("gcs-fuse-catalog"))
        await wait_for(lambda: desk.phase(name) == "Running")
        assert template_annotations(desk, name)["gke-gcsfuse/volumes"] == "true"
        assert WORKLOAD_IDENTITY in desk.child("ServiceAccount", name)["metadata"]["annotations"]

        await desk.edit_spec(
            name, {"data": {"catalog": {"gcsFuse": None, "emptyDir": {}}}, "pod": {"workloadIdentity": None}}
        )
        await wait_for(lambda: "emptyDir" in desk.statefulset(name)["spec"]["template"]["spec"]["volumes"][1])
        await operator.processed(emulator, name)
        assert [key for key in template_annotations(desk, name) if key.startswith("gke-gcsfuse/")] == []
        assert WORKLOAD_IDENTITY not in (desk.child("ServiceAccount", name)["metadata"].get("annotations") or {})
        await wait_for(lambda: desk.phase(name) == "Running")


async def test_a_statefulset_built_with_other_fixed_fields_is_updated_around_them_and_says_how_to_rebuild_it(
    emulator, desk: Desk, kubelet: Kubelet
):
    # As an older operator version might have built it: the API server refuses any change of serviceName.
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(paper("older"))
        await wait_for(lambda: desk.phase("older") == "Running")
        built = desk.statefulset("older")
        built["spec"]["serviceName"] = "older-metrics"
        emulator.store_unchecked("apps/v1/statefulsets", built, namespace="default")
        before = pod_hash(desk, "older")

        await desk.edit_spec("older", {"risk": {"maxDailyLoss": 1500}})  # Auto: the pod restarts with it
        await wait_for(lambda: desk.phase("older") == "Running" and pod_hash(desk, "older") not in (None, before))
        await operator.processed(emulator, "older")
        assert "ApplyFailed" not in desk.events("older")
        assert desk.statefulset("older")["spec"]["serviceName"] == "older-metrics"  # kept: no update may change it
        drift = desk.condition("older", "ConfigDrift")
        assert drift["reason"] == "OperatorUpgraded" and "spec.serviceName" in drift["message"]

        await desk.scale("older", 0)
        await wait_for(lambda: desk.phase("older") == "Halted")
        await desk.kubectl("delete", "statefulset", "older")  # what the condition says to do
        await wait_for(lambda: (desk.statefulset("older") or {}).get("spec", {}).get("serviceName") == "older")
        await desk.scale("older", 1)
        await wait_for(lambda: desk.phase("older") == "Running" and not desk.is_true("older", "ConfigDrift"))
        assert "ApplyFailed" not in desk.events("older")


async def test_a_quantity_the_api_server_rewrites_costs_no_write_and_no_event_after_an_operator_restart(
    emulator, desk: Desk, kubelet: Kubelet
):
    resources = {"requests": {"cpu": "0.5", "memory": "1024Mi"}, "limits": {"memory": "2048Mi"}}
    async with running_operator(emulator, fast_settings()):
        await desk.apply(paper("halfcore", pod={"resources": resources}))
        await wait_for(lambda: desk.phase("halfcore") == "Running")
    stored = desk.statefulset("halfcore")["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert stored == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"memory": "2Gi"},
    }  # as the server keeps it
    events = desk.events("halfcore")

    since = len(emulator)
    async with running_operator(emulator, fast_settings()) as operator:
        await operator.processed(emulator, "halfcore")
        assert operator_writes(emulator, since) == []
    assert desk.events("halfcore") == events


async def test_the_service_account_livestrat_made_goes_once_no_pod_runs_with_it(emulator, desk: Desk, kubelet: Kubelet):
    emulator.create_object("v1/serviceaccounts", {"metadata": {"name": "team"}}, namespace="default")
    async with running_operator(emulator, fast_settings(allow_service_account_name=True)) as operator:
        await desk.apply(paper("own", updatePolicy="Manual"))
        await wait_for(lambda: desk.phase("own") == "Running")

        await desk.edit_spec("own", {"pod": {"serviceAccountName": "team"}})  # Manual: the pod keeps its account
        await wait_for(lambda: desk.is_true("own", "ConfigDrift"))
        await operator.processed(emulator, "own")
        account = desk.child("ServiceAccount", "own")
        assert account is not None and not account["metadata"].get("deletionTimestamp")

        await desk.scale("own", 0)  # no pod runs with it any more: it goes, for good
        await wait_for(lambda: desk.phase("own") == "Halted" and desk.child("ServiceAccount", "own") is None)
        await desk.scale("own", 1)
        await wait_for(lambda: desk.phase("own") == "Running")
        assert desk.pods("own")[0]["spec"]["serviceAccountName"] == "team"
