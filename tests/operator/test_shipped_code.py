"""Strategy code shipped without building an image: the desk creates a ConfigMap from its .py files with the real
kubectl, the real operator mounts it into the pod, the stand-in kubelet lays it out as a kubelet does and starts a
REAL runtime that imports the strategy from it and trades. An edit of the code restarts nothing that runs; live
strategies take code only from the sources the operator allows."""

from __future__ import annotations

import os

import pytest

from livestrat.api.runtime_config import CODE_MOUNT_DIR
from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk, example
from tests.support.kube import wait_for
from tests.support.operator import fast_settings, running_operator
from tests.support.shipped_code import HELPER, MODULE, SOURCE, configmap, shipped_manifest

pytestmark = pytest.mark.slow
NAME = "ema-cross-btc"


def trading(desk: Desk) -> dict:
    return desk.status(NAME).get("trading") or {}


async def ship(desk: Desk, tmp_path, name: str = "ema-code") -> None:
    """``kubectl create configmap NAME --from-file=shipped_ema.py --from-file=helpers.py --dry-run=client -o yaml |
    kubectl apply -f -`` (docs/runtime.md, "Shipping strategy code")."""
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    (source / f"{MODULE}.py").write_text(SOURCE)
    (source / "helpers.py").write_text(HELPER)
    if desk.binary is None:  # without the kubectl binary: the object kubectl would create
        desk.emulator.create_object("v1/configmaps", configmap(name), namespace=desk.namespace)
        return
    files = [f"--from-file={source / f}" for f in (f"{MODULE}.py", "helpers.py")]
    # --dry-run=client -o yaml | kubectl apply -f -: creates it, and updates it when it exists (the emulator speaks
    # JSON, not the protobuf a plain `kubectl create` sends for built-in kinds)
    manifest = await desk.kubectl("create", "configmap", name, *files, "--dry-run=client", "-o", "yaml")
    await desk.kubectl("apply", "--validate=false", "-f", "-", stdin=manifest)


async def test_a_strategy_shipped_in_a_configmap_trades_and_an_edit_of_its_code_restarts_nothing(
    emulator, desk: Desk, kube_env, tmp_path
):
    async with (
        Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kube_env, runtime=True) as kubelet,
        running_operator(emulator, fast_settings(stale_after_seconds=30)) as operator,
    ):
        await ship(desk, tmp_path)
        await desk.apply(shipped_manifest())
        # the runtime imported shipped_ema (a module the image does not have) from the ConfigMap, and trades
        await wait_for(lambda: desk.phase(NAME) == "Running", timeout=90)
        await wait_for(lambda: trading(desk).get("fills", 0) > 0, timeout=90)
        [pod] = desk.pods(NAME)
        assert {"name": "code", "configMap": {"name": "ema-code", "optional": False, "defaultMode": 0o444}} in pod[
            "spec"
        ]["volumes"]
        container = kubelet.containers[("default", f"{NAME}-0")]
        volume = Kubelet.pod_directory(kubelet.workdir, container, pod) / "code"
        assert os.readlink(volume / f"{MODULE}.py") == f"..data/{MODULE}.py"
        assert CODE_MOUNT_DIR in desk.child("ConfigMap", NAME)["data"]["runtime.json"]

        # The desk edits the code in place: the kubelet refreshes the files, the running strategy keeps its code
        # and runs on (decision 11: nothing but a halt stops it), and the pod is neither replaced nor restarted.
        edited = SOURCE.replace("pass", "edited = True")
        emulator.patch_object("v1/configmaps", "ema-code", {"data": {f"{MODULE}.py": edited}}, namespace="default")
        await wait_for(lambda: (volume / f"{MODULE}.py").read_text() == edited)
        heartbeat = trading(desk)["heartbeat"]
        await wait_for(lambda: trading(desk)["heartbeat"] != heartbeat, timeout=30)
        await operator.processed(emulator, NAME)
        assert [p["metadata"]["uid"] for p in desk.pods(NAME)] == [pod["metadata"]["uid"]]
        assert container.restarts == 0 and kubelet.started_pods == [f"default/{NAME}-0"]
        assert desk.phase(NAME) == "Running" and not desk.is_true(NAME, "ConfigDrift")

        # A new version under a new name is a change of the spec: under updatePolicy Auto the pod restarts with it.
        await ship(desk, tmp_path, "ema-code-v2")
        await desk.edit_spec(NAME, {"strategy": {"code": {"configMap": {"name": "ema-code-v2"}}}})
        await wait_for(lambda: len(kubelet.started_pods) == 2, timeout=60)
        await wait_for(
            lambda: desk.phase(NAME) == "Running" and trading(desk).get("nodeState") == "Running", timeout=90
        )
        [restarted] = desk.pods(NAME)
        code = next(v for v in restarted["spec"]["volumes"] if v["name"] == "code")
        assert code["configMap"]["name"] == "ema-code-v2" and kubelet.max_running == 1


async def test_a_strategy_whose_configmap_does_not_exist_waits_for_it_in_container_creating(
    emulator, desk: Desk, kubelet: Kubelet
):
    async with running_operator(emulator, fast_settings()):
        await desk.apply(shipped_manifest(name="not-yet-shipped"))
        await wait_for(lambda: len(desk.pods(NAME)) == 1)

        def failed_mount() -> list[str]:
            events = emulator.list_objects("v1/events", namespace="default")
            return [e["message"] for e in events if e["reason"] == "FailedMount"]

        [message] = await wait_for(failed_mount)
        assert message == 'MountVolume.SetUp failed for volume "code" : configmap "not-yet-shipped" not found'
        [pod] = desk.pods(NAME)
        assert pod["status"]["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}
        assert desk.phase(NAME) != "Running"

        emulator.create_object("v1/configmaps", configmap("not-yet-shipped"), namespace="default")
        await wait_for(lambda: desk.phase(NAME) == "Running", timeout=20)


async def test_a_live_strategy_takes_code_only_from_a_source_the_operator_allows(
    emulator, desk: Desk, kubelet: Kubelet
):
    live = example("live-binance-testnet")
    name = live["metadata"]["name"]
    live["spec"]["strategy"]["code"] = {"configMap": {"name": "ema-code"}}
    for secret, keys in (("binance-testnet", ("api-key", "api-secret")), ("ledger-dsn", ("dsn",))):
        emulator.create_object(
            "v1/secrets", {"metadata": {"name": secret}, "data": dict.fromkeys(keys, "eA==")}, namespace="default"
        )
    emulator.create_object("v1/configmaps", configmap(), namespace="default")
    async with running_operator(emulator, fast_settings(live_namespaces=["default"])):
        await desk.apply(live)
        await wait_for(lambda: desk.phase(name) == "Invalid")
        invalid = desk.condition(name, "InvalidSpec")
        assert invalid["reason"] == "CodeSourceNotAllowed"
        for said in (
            "spec.strategy.code.configMap (ConfigMap ema-code)",
            "only from: image",
            "LIVESTRAT_LIVE_CODE_SOURCES",
        ):
            assert said in invalid["message"], invalid["message"]
        assert desk.pods(name) == [] and desk.statefulset(name)["spec"]["replicas"] == 0
        await wait_for(lambda: "CodeSourceNotAllowed" in desk.events(name))

    async with running_operator(
        emulator, fast_settings(live_namespaces=["default"], live_code_sources=["image", "configMap"])
    ):
        await wait_for(lambda: desk.phase(name) == "Running", timeout=20)
        volumes = desk.statefulset(name)["spec"]["template"]["spec"]["volumes"]
        assert {"name": "code", "configMap": {"name": "ema-code", "optional": False, "defaultMode": 0o444}} in volumes


async def test_a_package_shipped_beside_the_catalog_on_its_volume_trades(emulator, desk: Desk, kube_env, tmp_path):
    # The catalog's volume is a PVC here (the stand-in keeps a claim's data across pods; GCS FUSE is the same
    # mount with another volume source): the desk copies a package into strategies/v1 of it.
    manifest = shipped_manifest()
    strategy = manifest["spec"]["strategy"]
    strategy["strategyPath"], strategy["configPath"] = (
        "desk_strats.ema:ShippedEMACross",
        "desk_strats.ema:ShippedEMACrossConfig",
    )
    strategy["code"] = {"catalogVolume": {"path": "strategies/v1"}}
    manifest["spec"]["data"]["catalog"] = {"persistentVolumeClaim": {"claimName": "market-data", "readOnly": False}}
    async with (
        Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kube_env, runtime=True) as kubelet,
        running_operator(emulator, fast_settings(stale_after_seconds=30)),
    ):
        package = kubelet.claim_directory("default", "market-data") / "strategies" / "v1" / "desk_strats"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "ema.py").write_text(SOURCE)
        await desk.apply(manifest)
        await wait_for(lambda: desk.phase(NAME) == "Running", timeout=90)
        await wait_for(lambda: trading(desk).get("fills", 0) > 0, timeout=90)
        [pod] = desk.pods(NAME)
        mounts = pod["spec"]["containers"][0]["volumeMounts"]
        assert {"name": "catalog", "mountPath": CODE_MOUNT_DIR, "subPath": "strategies/v1", "readOnly": True} in mounts
