"""Live strategies run Guaranteed: requests equal limits for cpu and memory in every container of their pod.

A Guaranteed pod is the last one a node under memory pressure evicts and gets the CPU it asked for
(no overcommit); the API server decides the class when the pod is created, from its containers
(livestrat/kube_emulator/qos.py, checked against the documentation in tests/test_kube_emulator.py).
"""

from __future__ import annotations

from livestrat.api.validation import parse
from livestrat.kube_emulator.kubelet import Kubelet
from strategy_operator.build.manifests import build_pod_template
from strategy_operator.settings import OperatorSettings
from tests.support.desk import Desk, example
from tests.support.kube import wait_for
from tests.support.operator import fast_settings, running_operator


async def test_a_live_strategys_pod_is_guaranteed_and_a_paper_one_keeps_its_resources(
    emulator, desk: Desk, kubelet: Kubelet
):
    live = example("live-binance-testnet")
    name = live["metadata"]["name"]
    emulator.add_namespace("live-desk")
    allowed = desk.in_namespace("live-desk")
    for secret, keys in (("binance-testnet", ("api-key", "api-secret")), ("ledger-dsn", ("dsn",))):
        emulator.create_object(
            "v1/secrets", {"metadata": {"name": secret}, "data": dict.fromkeys(keys, "eA==")}, namespace="live-desk"
        )
    async with running_operator(emulator, fast_settings(live_namespaces=["live-desk"])):
        await allowed.apply(live)
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: allowed.phase(name) == "Running" and desk.phase("ema-cross-btc") == "Running")
        [pod] = allowed.pods(name)
        assert pod["status"]["qosClass"] == "Guaranteed"
        [paper_pod] = desk.pods("ema-cross-btc")
        assert paper_pod["status"]["qosClass"] == "Burstable"  # as its spec asks: paper may burst


def test_a_live_strategy_gives_the_gcs_fuse_sidecar_limits_equal_to_its_requests():
    live = example("live-binance-testnet")
    live["metadata"]["namespace"] = "live-desk"
    live["spec"]["data"]["catalog"] = {"gcsFuse": {"bucket": "market-data"}}
    template = build_pod_template(parse(live, source="test"), OperatorSettings(live_namespaces=["live-desk"]))
    annotations = template["metadata"]["annotations"]
    assert annotations["gke-gcsfuse/cpu-limit"] == annotations["gke-gcsfuse/cpu-request"]
    assert annotations["gke-gcsfuse/memory-limit"] == annotations["gke-gcsfuse/memory-request"]
    [container] = template["spec"]["containers"]
    resources = container["resources"]
    for resource in ("cpu", "memory"):
        assert resources["requests"][resource] == resources["limits"][resource], resource
