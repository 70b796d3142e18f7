"""The stand-in kubelet's configMap volumes, checked against the Kubernetes documentation ("ConfigMaps", "Configure a
Pod to Use a ConfigMap", the ConfigMapVolumeSource reference) and the kubelet's AtomicWriter layout, and the
emulator's validation of ConfigMap keys (apimachinery's IsConfigMapKey)."""

from __future__ import annotations

import base64
import json
import os

import kubernetes_asyncio
import pytest
from kubernetes_asyncio.client import CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from livestrat.kube_emulator import configmap_volume
from livestrat.kube_emulator.configmap_volume import MountFailed, payload, write
from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.kube import wait_for


@pytest.fixture
async def client(kubeconfig_path):
    await kubernetes_asyncio.config.load_kube_config(config_file=str(kubeconfig_path))
    async with kubernetes_asyncio.client.ApiClient() as client:
        yield client


CODE = {"metadata": {"name": "ema-code"}, "data": {"shipped_ema.py": "X = 1\n", "helpers.py": "Y = 2\n"}}


def test_every_key_is_a_file_named_after_it_with_the_default_mode():
    files = payload({"name": "ema-code"}, CODE)
    assert files == {"shipped_ema.py": (b"X = 1\n", 0o644), "helpers.py": (b"Y = 2\n", 0o644)}
    binary = {"metadata": {"name": "b"}, "binaryData": {"model.bin": base64.b64encode(b"\x00\x01").decode()}}
    assert payload({"name": "b", "defaultMode": 0o444}, binary) == {"model.bin": (b"\x00\x01", 0o444)}


def test_items_project_only_the_listed_keys_at_their_paths_and_modes():
    source = {"name": "ema-code", "items": [{"key": "helpers.py", "path": "lib/helpers.py", "mode": 0o400}]}
    assert payload(source, CODE) == {"lib/helpers.py": (b"Y = 2\n", 0o400)}


def test_a_missing_configmap_or_listed_key_fails_the_mount_unless_optional():
    with pytest.raises(MountFailed, match=r'^configmap "ema-code" not found$'):
        payload({"name": "ema-code"}, None)
    assert payload({"name": "ema-code", "optional": True}, None) == {}
    listed = {"name": "ema-code", "items": [{"key": "absent.py", "path": "absent.py"}]}
    with pytest.raises(MountFailed, match=r"^configmap references non-existent config key: absent\.py$"):
        payload(listed, CODE)
    assert payload({**listed, "optional": True}, CODE) == {}


@pytest.mark.parametrize("path", ["../escape.py", "lib/../../escape.py", "/abs.py", "..hidden"])
def test_a_path_that_would_leave_the_volume_or_clash_with_its_links_is_refused(path):
    with pytest.raises(MountFailed, match=r"^invalid path"):
        payload({"name": "ema-code", "items": [{"key": "helpers.py", "path": path}]}, CODE)


def test_the_files_sit_behind_the_data_link_and_an_update_swaps_it_whole(tmp_path):
    target = tmp_path / "code"
    assert write(target, payload({"name": "ema-code", "defaultMode": 0o444}, CODE))
    data = os.readlink(target / "..data")
    assert data.startswith("..") and (target / data).is_dir()
    assert os.readlink(target / "shipped_ema.py") == "..data/shipped_ema.py"
    assert (target / "shipped_ema.py").read_text() == "X = 1\n"
    assert (target / "shipped_ema.py").stat().st_mode & 0o777 == 0o444
    assert not write(target, payload({"name": "ema-code", "defaultMode": 0o444}, CODE))  # unchanged: untouched

    (target / "__pycache__").mkdir()  # written beside the files by a reader (only where the mount is not read-only)
    edited = {"metadata": {"name": "ema-code"}, "data": {"shipped_ema.py": "X = 2\n"}}
    assert write(target, payload({"name": "ema-code", "defaultMode": 0o444}, edited))
    assert os.readlink(target / "..data") != data and not (target / data).exists()  # the old directory is gone
    assert (target / "shipped_ema.py").read_text() == "X = 2\n"
    assert not (target / "helpers.py").exists() and not (target / "helpers.py").is_symlink()
    # the update removes what the old payload had and nothing else (AtomicWriter's pathsToRemove)
    assert sorted(p.name for p in target.iterdir() if not p.name.startswith("..")) == ["__pycache__", "shipped_ema.py"]
    assert configmap_volume.current(target) == {"shipped_ema.py": (b"X = 2\n", 0o444)}


STATEFULSET = {
    "metadata": {"name": "s1", "labels": {"app": "s1"}},
    "spec": {
        "replicas": 1,
        "serviceName": "s1",
        "selector": {"matchLabels": {"app": "s1"}},
        "template": {
            "metadata": {"labels": {"app": "s1"}},
            "spec": {
                "containers": [
                    {"name": "c", "image": "runtime:1", "volumeMounts": [{"name": "code", "mountPath": "/opt/code"}]}
                ],
                "volumes": [{"name": "code", "configMap": {"name": "ema-code", "optional": False}}],
            },
        },
    },
}


def _pod(emulator):
    return emulator.read_object("v1/pods", "s1-0", namespace="default")


def _waiting(pod) -> str | None:
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    return (statuses[0].get("state") or {}).get("waiting", {}).get("reason")


async def test_a_pod_whose_configmap_is_missing_stays_container_creating_with_a_failed_mount_event(emulator, tmp_path):
    async with Kubelet(emulator, workdir=tmp_path) as kubelet:
        emulator.create_object("apps/v1/statefulsets", STATEFULSET, namespace="default")

        def failed_mount():
            events = emulator.list_objects("v1/events", namespace="default")
            return [e for e in events if e["reason"] == "FailedMount" and e["involvedObject"]["name"] == "s1-0"]

        [event] = await wait_for(failed_mount)
        assert event["type"] == "Warning" and event["source"]["component"] == "kubelet"
        assert event["message"] == 'MountVolume.SetUp failed for volume "code" : configmap "ema-code" not found'
        pod = await wait_for(lambda: (p := _pod(emulator)) is not None and p.get("status") and p)
        assert pod["status"]["phase"] == "Pending" and _waiting(pod) == "ContainerCreating"

        emulator.create_object("v1/configmaps", CODE, namespace="default")
        await wait_for(lambda: kubelet._pod_ready(_pod(emulator)))
        pod = _pod(emulator)
        container = kubelet.containers[("default", "s1-0")]
        volume = Kubelet.pod_directory(tmp_path, container, pod) / "code"
        assert (volume / "shipped_ema.py").read_text() == "X = 1\n"
        assert os.readlink(volume / "shipped_ema.py") == "..data/shipped_ema.py"

        # an edit reaches the running pod's files (the kubelet's periodic sync), without restarting it
        emulator.patch_object("v1/configmaps", "ema-code", {"data": {"shipped_ema.py": "X = 3\n"}}, namespace="default")
        await wait_for(lambda: (volume / "shipped_ema.py").read_text() == "X = 3\n")
        assert kubelet.started_pods == ["default/s1-0"] and container.restarts == 0


@pytest.mark.parametrize(
    ("key", "detail"),
    [
        (
            "my strategy.py",
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
            "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
        ),
        ("..data", "must not start with '..'"),
        ("..", "must not be '..'"),
    ],
)
async def test_a_configmap_key_that_is_no_file_name_is_refused_as_the_api_server_refuses_it(
    emulator,
    client,
    key,
    detail,
):
    with pytest.raises(ApiException) as refused:
        await CoreV1Api(client).create_namespaced_config_map(
            "default", {"metadata": {"name": "bad"}, "data": {key: "x"}}
        )
    assert refused.value.status == 422
    body = json.loads(refused.value.body)
    assert body["reason"] == "Invalid"
    assert f'ConfigMap "bad" is invalid: data[{key}]: Invalid value: "{key}": {detail}' in body["message"]
    assert emulator.read_object("v1/configmaps", "bad", namespace="default") is None


async def test_a_key_in_both_data_and_binary_data_is_refused(emulator):
    both = {"metadata": {"name": "both"}, "data": {"a.py": "x"}, "binaryData": {"a.py": "eA=="}}
    with pytest.raises(
        Exception, match=r"binaryData\[a.py\]: Invalid value: \"a.py\": duplicate of key present in data"
    ):
        emulator.create_object("v1/configmaps", both, namespace="default")
