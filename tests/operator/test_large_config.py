"""A strategy with a large configuration: kubectl apply keeps the manifest in an annotation, and the
API server allows 256 KiB of annotations in all (the emulator too): the operator's own bookkeeping
must not add a second copy of the spec."""

from __future__ import annotations

import json

from livestrat.api.runtime_config import CONFIG_FILE_NAME
from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk, example
from tests.support.kube import wait_for
from tests.support.operator import fast_settings, running_operator

NAME = "ema-cross-btc"
KOPF_DIFF_BASE = "livestrat.io/last-handled-configuration"


def large_config(size: int) -> dict:
    """The paper example's config and a table of about ``size`` bytes (a strategy's lookup table, say)."""
    config = dict(example("paper-ema-cross")["spec"]["strategy"]["config"])
    config["weights"] = [round(0.5 + i / 1e6, 6) for i in range(size // 9)]
    return config


async def test_a_strategy_with_a_200_kib_config_applied_with_kubectl_runs_and_can_be_deleted(
    emulator, desk: Desk, kubelet: Kubelet
):
    manifest = example("paper-ema-cross")
    manifest["spec"]["strategy"]["config"] = large_config(200 * 1024)
    assert len(json.dumps(manifest["spec"]["strategy"]["config"])) > 200 * 1024
    async with running_operator(emulator, fast_settings()):
        await desk.apply(manifest)  # client-side: the manifest is kept in last-applied-configuration
        await wait_for(lambda: desk.phase(NAME) == "Running")
        strategy = desk.get(NAME)
        annotations = strategy["metadata"]["annotations"]
        # no note of kopf's of what it handled (the operator has no change handlers): no second copy of the spec
        assert KOPF_DIFF_BASE not in annotations
        assert "livestrat.io/halt-before-delete" in strategy["metadata"]["finalizers"]
        # the pod gets the whole configuration all the same
        runtime = json.loads(desk.child("ConfigMap", NAME)["data"][CONFIG_FILE_NAME])
        assert runtime["spec"]["strategy"]["config"] == manifest["spec"]["strategy"]["config"]

        await desk.delete(NAME)  # halts first (the finalizer), then goes
        assert desk.get(NAME) is None
