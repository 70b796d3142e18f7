"""The operator's halt decision, where the runtime reads it at SIGTERM: ``status.halt``.

A restart is not a halt (architecture decision 12): the runtime applies ``haltPolicy``
(flatten) only when the operator decided a halt. So the operator writes ``status.halt``
before it tells the pod to stop, and removes it before it lets a pod start again; the order
of its requests, as the API server received them, is what these tests check.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kmock

from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk, example, paper
from tests.support.kube import wait_for
from tests.support.operator import fast_settings, operator_writes, running_operator

NAME = "ema-cross-btc"
LIVESTRATEGIES = "livestrat.io/v1alpha1/livestrategies"


def _halt_written(request: kmock.Request) -> bool | None:
    """For a status patch that sets or removes ``status.halt``: True (set) or False (removed); else None."""
    if not request.url.path.endswith(f"/livestrategies/{NAME}/status") or not isinstance(request.data, dict):
        return None
    status = request.data.get("status") or {}
    if "halt" not in status:
        return None
    return status["halt"] is not None


def _replicas_written(request: kmock.Request) -> int | None:
    if not request.url.path.endswith(f"/statefulsets/{NAME}") or not isinstance(request.data, dict):
        return None
    return (request.data.get("spec") or {}).get("replicas")


def _story(emulator: Any, since: int) -> list[str]:
    """The operator's writes that matter here, in the order the API server took them (a write repeated at once,
    as a StatefulSet patched again from a cache that lags behind the first, told once)."""
    story: list[str] = []
    for request in operator_writes(emulator, since):
        halt = _halt_written(request)
        replicas = _replicas_written(request)
        told = ("halt recorded" if halt else "halt removed") if halt is not None else None
        told = f"StatefulSet {replicas}" if replicas is not None else told
        if told is not None and story[-1:] != [told]:
            story.append(told)
    return story


async def test_a_halt_is_recorded_before_the_pod_is_told_to_stop_and_removed_before_a_pod_may_start(
    emulator, desk: Desk, kubelet: Kubelet
):
    async with running_operator(emulator, fast_settings()):
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Running")
        assert "halt" not in desk.status(NAME)  # a running strategy has no halt record: any stop is a restart

        since = len(emulator)
        await desk.scale(NAME, 0)
        await wait_for(lambda: desk.phase(NAME) == "Halted")
        record = desk.status(NAME)["halt"]
        assert record["reason"] == "ScaledToZero" and record["since"]
        assert _story(emulator, since) == ["halt recorded", "StatefulSet 0"]

        since = len(emulator)
        await desk.scale(NAME, 1)
        await wait_for(lambda: desk.phase(NAME) == "Running")
        assert "halt" not in desk.status(NAME)
        assert _story(emulator, since) == ["halt removed", "StatefulSet 1"]

        since = len(emulator)
        await desk.delete(NAME)  # the finalizer halts it first
        assert _story(emulator, since)[:2] == ["halt recorded", "StatefulSet 0"]


async def test_the_kill_switch_is_a_halt_too(emulator, desk: Desk, kubelet: Kubelet):
    async with running_operator(emulator, fast_settings()):
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Running")
        since = len(emulator)
        desk.set_namespace_annotation("livestrat.io/kill-switch", "true", namespace="default")
        await wait_for(lambda: desk.phase(NAME) == "Halted")
        assert _story(emulator, since)[:2] == ["halt recorded", "StatefulSet 0"]
        assert desk.status(NAME)["halt"]["reason"] == "KillSwitch"


async def test_a_halt_record_the_api_server_refuses_does_not_hold_the_halt_up(emulator, desk: Desk, kubelet: Kubelet):
    # Halts work in every state: without the record the pod is stopped all the same (its runtime then cancels its
    # orders and does not flatten), and the status says what failed once it can be written.
    refusing = asyncio.Event()
    denied = kmock.KubernetesError(403, "Forbidden", 'admission webhook "freeze.example.com" denied the request')
    emulator[kmock.method.PATCH, kmock.resource(LIVESTRATEGIES), refusing] << denied
    async with running_operator(emulator, fast_settings()):
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Running")

        refusing.set()
        since = len(emulator)
        emulator.patch_object(LIVESTRATEGIES, NAME, {"spec": {"replicas": 0}}, namespace="default")  # out of band
        await wait_for(lambda: desk.statefulset(NAME)["spec"]["replicas"] == 0 and desk.pods(NAME) == [])
        assert "halt" not in desk.status(NAME)
        # the record was tried first (the emulator records the refused request too), then the halt went ahead
        assert _story(emulator, since)[:2] == ["halt recorded", "StatefulSet 0"]
        await wait_for(lambda: "ApplyFailed" in desk.events(NAME))

        refusing.clear()
        await wait_for(lambda: desk.phase(NAME) == "Halted", timeout=60)
        assert desk.status(NAME)["halt"]["reason"] == "ScaledToZero"


async def test_a_child_gone_while_its_namespace_terminates_is_not_created_again_nor_an_error(
    emulator, desk: Desk, kubelet: Kubelet
):
    # Kubernetes 1.33+ deletes the rest of a namespace one resource type at a time once its pods are gone: a
    # StatefulSet may go before its LiveStrategy. Nothing can be created there any more (403, NamespaceTerminating):
    # the operator does not try to put it back as a failure.
    team = desk.in_namespace("team")
    emulator.add_namespace("team")
    async with running_operator(emulator, fast_settings()) as operator:
        await team.apply(paper("a"))
        await wait_for(lambda: team.phase("a") == "Running")
        with emulator.namespace_controller.paused():
            await desk.kubectl("delete", "namespace", "team", "--wait=false")
            passes = operator.metric("livestrat_operator_reconciles_total")
            emulator.delete_object("apps/v1/statefulsets", "a", namespace="team")
            await wait_for(lambda: any(_tried_to_create_statefulset(r) for r in emulator))  # and was refused
            # the pass that tried it is over (ok or error): the count of passes moved past it
            await wait_for(lambda: operator.metric("livestrat_operator_reconciles_total") > passes)
            assert operator.metric("livestrat_operator_reconcile_errors_total") == 0
            assert team.phase("a") != "Failed", team.status("a")
        await wait_for(lambda: emulator.read_object("v1/namespaces", "team") is None, timeout=30)


def _tried_to_create_statefulset(request: kmock.Request) -> bool:
    return request.method.value == "POST" and request.url.path.endswith("/namespaces/team/statefulsets")
