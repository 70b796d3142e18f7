"""A write the API server refuses is reported: status, event, metrics; never a silent log line."""

from __future__ import annotations

import asyncio

import kmock

from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk, example
from tests.support.kube import wait_for
from tests.support.operator import fast_settings, running_operator

NAME = "ema-cross-btc"
DENIED = 'admission webhook "freeze.example.com" denied the request: change freeze until 18:00'


def refuse(emulator, method: kmock.method, resource: str) -> asyncio.Event:
    """While the returned event is set, the API server answers these requests 403 with a webhook's message."""
    refusing = asyncio.Event()
    emulator[method, kmock.resource(resource), refusing] << kmock.KubernetesError(403, "Forbidden", DENIED)
    return refusing


async def test_a_halt_the_api_server_refuses_is_failed_with_its_reason_then_retried(
    emulator, desk: Desk, kubelet: Kubelet
):
    refusing = refuse(emulator, kmock.method.PATCH, "apps/v1/statefulsets")
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Running")
        generation = desk.status(NAME)["observedGeneration"]

        refusing.set()
        await desk.scale(NAME, 0)
        await wait_for(lambda: desk.phase(NAME) == "Failed", timeout=30)
        ready, halted = desk.condition(NAME, "Ready"), desk.condition(NAME, "Halted")
        assert ready["reason"] == "HaltFailed" and halted["status"] == "False" and halted["reason"] == "HaltFailed"
        assert "freeze.example.com" in ready["message"] and "may still run and trade" in ready["message"]
        assert desk.status(NAME)["observedGeneration"] == generation  # not acted on
        assert desk.pods(NAME) and desk.statefulset(NAME)["spec"]["replicas"] == 1
        await wait_for(lambda: "HaltFailed" in desk.events(NAME))
        assert operator.metric("livestrat_operator_failed_strategies", reason="HaltFailed") == 1
        assert operator.metric("livestrat_operator_reconcile_errors_total", error="ApiError") >= 1
        assert operator.metric("livestrat_operator_strategies", phase="Failed") == 1

        refusing.clear()  # the freeze is over: the retry halts it
        await wait_for(lambda: desk.phase(NAME) == "Halted", timeout=60)
        assert desk.status(NAME)["observedGeneration"] == desk.get(NAME)["metadata"]["generation"]
        assert operator.metric("livestrat_operator_failed_strategies", reason="HaltFailed") == 0


async def test_children_the_api_server_refuses_are_failed_with_its_reason(emulator, desk: Desk, kubelet: Kubelet):
    refusing = refuse(emulator, kmock.method.POST, "v1/configmaps")
    refusing.set()
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Failed", timeout=30)
        ready = desk.condition(NAME, "Ready")
        assert ready["reason"] == "ApplyFailed" and f"create ConfigMap {NAME}" in ready["message"]
        assert "freeze.example.com" in ready["message"]
        await wait_for(lambda: "ApplyFailed" in desk.events(NAME))
        assert operator.metric("livestrat_operator_failed_strategies", reason="ApplyFailed") == 1

        refusing.clear()
        await wait_for(lambda: desk.phase(NAME) == "Running", timeout=60)
        assert desk.events(NAME).count("ApplyFailed") == 1  # told once, however many retries
