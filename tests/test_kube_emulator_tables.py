"""What kubectl needs of the emulator to show a user what a cluster would: printer columns and discovery.

``kubectl get lstrat`` asks the API server for a Table (server-side printing): a custom resource's rows are
the CRD's ``additionalPrinterColumns``, evaluated on each object (apiextensions-apiserver's table convertor);
``kubectl get lstrat -w`` asks for a watch of Tables. And kubectl finds the core resources (``kubectl get
pods``) only when ``/api/v1`` names its group version ``v1``; a subresource (``pods/status``) has no short
names of its own, or kubectl warns that ``lstrat`` could mean ``livestrategies/status`` too.
"""

from __future__ import annotations

import asyncio
import json
import os

import aiohttp
import pytest

from livestrat.api.crd import build_crd
from livestrat.kube_emulator.emulator import ADMIN_HEADERS
from tests.support.desk import example, kubectl_binary
from tests.support.kube import LIVESTRATEGIES

TABLE = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)
PATH = "/apis/livestrat.io/v1alpha1/namespaces/default/livestrategies"


def printer_columns() -> list[dict]:
    return build_crd()["spec"]["versions"][0]["additionalPrinterColumns"]


async def get(emulator, path: str, accept: str = TABLE, **params: str) -> dict:
    headers = {**ADMIN_HEADERS, "Accept": accept}
    async with (
        aiohttp.ClientSession() as http,
        http.get(str(emulator.url).rstrip("/") + path, headers=headers, params=params) as answer,
    ):
        assert answer.status == 200, await answer.text()
        return await answer.json(content_type=None)


def running(emulator, name: str, fills: int) -> None:
    emulator.create_object(LIVESTRATEGIES, example("paper-ema-cross") | {"metadata": {"name": name}}, "default")
    status = {"phase": "Running", "trading": {"fills": fills, "totalPnl": "12.5 USDT"}}
    emulator.patch_object(LIVESTRATEGIES, name, {"status": status}, namespace="default", subresource="status")


async def test_a_list_asked_for_as_a_table_has_the_crds_printer_columns_and_a_row_per_object(emulator):
    running(emulator, "a", fills=3)
    running(emulator, "b", fills=0)
    table = await get(emulator, PATH)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names == ["Name", *(c["name"] for c in printer_columns())]
    assert table["columnDefinitions"][0]["format"] == "name"
    rows = {row["cells"][0]: dict(zip(names, row["cells"], strict=True)) for row in table["rows"]}
    assert set(rows) == {"a", "b"}
    assert rows["a"]["Phase"] == "Running" and rows["a"]["Fills"] == 3 and rows["b"]["Fills"] == 0
    assert rows["a"]["PnL"] == "12.5 USDT" and rows["a"]["Mode"] == "paper"
    assert rows["a"]["Risk"] is None  # no status.risk yet: an empty cell
    assert rows["a"]["Age"].endswith("s")  # a date column is shown as an age
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"  # includeObject defaults to Metadata


async def test_one_object_asked_for_as_a_table_is_a_table_of_one_row(emulator):
    running(emulator, "a", fills=7)
    table = await get(emulator, f"{PATH}/a", includeObject="Object")
    assert [row["cells"][0] for row in table["rows"]] == ["a"]
    assert table["rows"][0]["object"]["spec"]["mode"] == "paper"


async def test_a_client_that_does_not_ask_for_a_table_gets_the_objects(emulator):
    running(emulator, "a", fills=1)
    assert (await get(emulator, PATH, accept="application/json"))["kind"] == "LiveStrategyList"


async def test_a_watch_of_tables_sends_the_columns_once_and_a_row_per_event(emulator):
    running(emulator, "a", fills=1)
    headers = {**ADMIN_HEADERS, "Accept": TABLE}
    url = str(emulator.url).rstrip("/") + PATH
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers, params={"watch": "true"}) as answer:
        first = json.loads(await answer.content.readline())
        emulator.patch_object(
            LIVESTRATEGIES, "a", {"status": {"trading": {"fills": 2}}}, namespace="default", subresource="status"
        )
        second = json.loads(await asyncio.wait_for(answer.content.readline(), 5))
    assert first["type"] == "ADDED" and first["object"]["kind"] == "Table"
    assert [c["name"] for c in first["object"]["columnDefinitions"]][:2] == ["Name", "Mode"]
    assert second["type"] == "MODIFIED" and second["object"]["columnDefinitions"] == []
    cells = second["object"]["rows"][0]["cells"]
    assert cells[0] == "a" and 2 in cells


def pod(emulator, name: str, state: dict, *, ready: bool, restarts: int = 0) -> None:
    spec = {"containers": [{"name": "strategy", "image": "livestrat-runtime:test"}]}
    emulator.create_object("v1/pods", {"metadata": {"name": name}, "spec": spec}, "default")
    status = {
        "phase": "Running" if "running" in state else "Pending",
        "containerStatuses": [{"name": "strategy", "ready": ready, "restartCount": restarts, "state": state}],
    }
    emulator.patch_object("v1/pods", name, {"status": status}, namespace="default", subresource="status")


async def test_pods_and_statefulsets_as_tables_have_the_api_servers_columns(emulator):
    pod(emulator, "up-0", {"running": {"startedAt": "2026-01-01T00:00:00Z"}}, ready=True, restarts=2)
    pod(emulator, "new-0", {"waiting": {"reason": "ContainerCreating"}}, ready=False)
    pod(emulator, "crashed-0", {"terminated": {"exitCode": 2, "reason": "Error"}}, ready=False, restarts=1)
    emulator.patch_object("v1/pods", "up-0", {"metadata": {"finalizers": ["x.io/hold"]}}, namespace="default")
    table = await get(emulator, "/api/v1/namespaces/default/pods")
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Ready", "Status", "Restarts", "Age"]
    rows = {row["cells"][0]: row["cells"][1:4] for row in table["rows"]}
    assert rows == {
        "up-0": ["1/1", "Running", 2],
        "new-0": ["0/1", "ContainerCreating", 0],
        "crashed-0": ["0/1", "Error", 1],
    }
    emulator.delete_object("v1/pods", "up-0", namespace="default")  # held by its finalizer: terminating
    rows = {
        row["cells"][0]: row["cells"][2] for row in (await get(emulator, "/api/v1/namespaces/default/pods"))["rows"]
    }
    assert rows["up-0"] == "Terminating"

    template = {"metadata": {"labels": {"app": "a"}}, "spec": spec_of_one_container()}
    sts = {
        "metadata": {"name": "a"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "a"}}, "template": template},
    }
    emulator.create_object("apps/v1/statefulsets", sts, "default")
    table = await get(emulator, "/apis/apps/v1/namespaces/default/statefulsets")
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Ready", "Age"]
    assert table["rows"][0]["cells"][:2] == ["a", "0/1"]
    emulator.patch_object(
        "apps/v1/statefulsets",
        "a",
        {"status": {"replicas": 1, "readyReplicas": 1}},
        namespace="default",
        subresource="status",
    )
    assert (await get(emulator, "/apis/apps/v1/namespaces/default/statefulsets"))["rows"][0]["cells"][1] == "1/1"
    # Other built-in kinds stay lists: kubectl prints those itself.
    assert (await get(emulator, "/api/v1/namespaces/default/configmaps"))["kind"] == "ConfigMapList"


def spec_of_one_container() -> dict:
    return {"containers": [{"name": "strategy", "image": "livestrat-runtime:test"}]}


async def test_the_core_group_version_is_v1_and_subresources_have_no_names_of_their_own(emulator):
    core = await get(emulator, "/api/v1", accept="application/json")
    assert core["groupVersion"] == "v1"
    custom = await get(emulator, "/apis/livestrat.io/v1alpha1", accept="application/json")
    for listing in (core, custom):
        for entry in listing["resources"]:
            if "/" in entry["name"]:
                assert entry["shortNames"] == [] and entry["singularName"] == "", entry
    # the group's two kinds (the fixture installs both CRDs): LiveStrategy and RiskBudget
    assert {"lstrat", "rbudget"} == {n for e in custom["resources"] for n in e["shortNames"]}


@pytest.mark.slow  # runs kubectl
async def test_kubectl_shows_the_printer_columns_and_finds_pods_without_a_warning(emulator, kubeconfig_path):
    binary = kubectl_binary()
    assert binary is not None, "kubectl is missing: make tools installs it"
    running(emulator, "a", fills=3)

    async def kubectl(*args: str) -> tuple[str, str]:
        process = await asyncio.create_subprocess_exec(
            binary,
            *args,
            env=dict(os.environ, KUBECONFIG=str(kubeconfig_path), HOME=str(kubeconfig_path.parent)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        return out.decode(), err.decode()

    out, err = await kubectl("get", "lstrat")
    header, row = out.splitlines()
    assert header.split() == ["NAME", *(c["name"].upper() for c in printer_columns() if not c.get("priority"))]
    assert row.split()[:6] == ["a", "paper", "sandbox", "Running", "3", "12.5"]
    assert "Warning" not in err
    out, err = await kubectl("get", "pods")
    assert "No resources found in default namespace." in err and "Warning" not in err
    pod(emulator, "a-0", {"running": {"startedAt": "2026-01-01T00:00:00Z"}}, ready=True)
    out, _ = await kubectl("get", "pods")
    assert [line.split()[:4] for line in out.splitlines()] == [
        ["NAME", "READY", "STATUS", "RESTARTS"],
        ["a-0", "1/1", "Running", "0"],
    ]
