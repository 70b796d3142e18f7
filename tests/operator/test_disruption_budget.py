"""A drain waits for a deliberate decision: each strategy's pod is guarded by a PodDisruptionBudget.

``kubectl drain`` evicts pods through the Eviction API, which honours PodDisruptionBudgets
(livestrat/kube_emulator/disruption.py, checked against the documentation in tests/test_kube_emulator.py).
The operator gives every LiveStrategy one that allows no disruption, so a drain retries (429) until
the desk halts the strategy or moves it; the halt itself deletes the pod and is never blocked.
"""

from __future__ import annotations

import aiohttp

from livestrat.kube_emulator.emulator import ADMIN_HEADERS
from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk, example
from tests.support.kube import wait_for
from tests.support.operator import fast_settings, running_operator

NAME = "ema-cross-btc"
BUDGETS = "policy/v1/poddisruptionbudgets"


async def evict(emulator, pod: str) -> int:
    """What ``kubectl drain`` sends for each pod of the node: a policy/v1 Eviction; the HTTP status."""
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": "default"}}
    async with (
        aiohttp.ClientSession(headers=ADMIN_HEADERS) as session,
        session.post(
            f"{str(emulator.url).rstrip('/')}/api/v1/namespaces/default/pods/{pod}/eviction", json=body
        ) as response,
    ):
        return response.status


async def test_a_drain_cannot_evict_a_running_strategy_and_a_halt_is_never_blocked(
    emulator, desk: Desk, kubelet: Kubelet
):
    async with running_operator(emulator, fast_settings()):
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Running")
        budget = emulator.read_object(BUDGETS, NAME, namespace="default")
        assert budget is not None
        [owner] = budget["metadata"]["ownerReferences"]
        assert owner["kind"] == "LiveStrategy" and owner["uid"] == desk.get(NAME)["metadata"]["uid"]
        assert budget["spec"]["maxUnavailable"] == 0
        assert budget["spec"]["selector"] == {"matchLabels": {"livestrat.io/strategy": NAME}}

        assert await evict(emulator, f"{NAME}-0") == 429  # kubectl drain retries until someone decides
        assert [p["metadata"]["name"] for p in desk.pods(NAME)] == [f"{NAME}-0"]

        await desk.scale(NAME, 0)  # the deliberate decision: the StatefulSet deletes the pod, no eviction
        await wait_for(lambda: desk.phase(NAME) == "Halted")
        assert desk.pods(NAME) == []


async def test_a_drain_held_by_the_budget_is_shown_until_someone_decides(emulator, desk: Desk, kubelet: Kubelet):
    # kubectl drain cordons the node first (spec.unschedulable), then evicts its pods and retries every 429.
    async with running_operator(emulator, fast_settings()):
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Running")
        [pod] = desk.pods(NAME)
        node = pod["spec"]["nodeName"]
        assert desk.condition(NAME, "DisruptionBlocked")["status"] == "False"

        emulator.patch_object("v1/nodes", node, {"spec": {"unschedulable": True}})  # kubectl cordon
        assert await evict(emulator, f"{NAME}-0") == 429
        await wait_for(lambda: desk.is_true(NAME, "DisruptionBlocked"))
        blocked = desk.condition(NAME, "DisruptionBlocked")
        assert blocked["reason"] == "NodeDraining"
        assert node in blocked["message"] and "--replicas=0" in blocked["message"]
        assert f"kubectl -n default delete pod {NAME}-0" in blocked["message"]
        await wait_for(lambda: "DisruptionBlocked" in desk.events(NAME))
        assert desk.phase(NAME) == "Running"  # nothing else changes: the strategy trades on

        emulator.patch_object("v1/nodes", node, {"spec": {"unschedulable": None}})  # kubectl uncordon
        await wait_for(lambda: desk.condition(NAME, "DisruptionBlocked")["status"] == "False")
