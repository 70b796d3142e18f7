"""The runbook's emergency stop while the operator is down (docs/operations.md, "Operator
down"), command by command with the real ``kubectl``, and the real operator coming back.

The order matters: a StatefulSet scaled to 0 by hand while its LiveStrategy still says
``replicas: 1`` is scaled up again by the returning operator, and the strategy trades again.
The runbook first records the halt where the operator reads it and no GitOps controller undoes
it (the desk's ``livestrat.io/halt`` annotation, written by the API server alone, or the
namespace's kill switch), then stops the pods directly.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from livestrat.kube_emulator.emulator import KubernetesEmulator
from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk, kubectl_binary, paper
from tests.support.helm import ROOT
from tests.support.kube import wait_for
from tests.support.operator import fast_settings, running_operator

NAMESPACE = "trading-live"
STRATEGIES = ("ema-cross-btc", "ema-cross-eth")
RUNBOOK = ROOT / "docs" / "operations.md"

# The commands of the runbook, as docs/operations.md prints them (without `-n NAMESPACE`,
# which the desk adds).
RECORD_THE_HALT = "annotate livestrategy --all livestrat.io/halt=emergency-stop --overwrite"
KILL_SWITCH = f"annotate namespace {NAMESPACE} livestrat.io/kill-switch=true --overwrite"
STOP_THE_PODS = "scale statefulset -l livestrat.io/strategy --replicas=0"

pytestmark = pytest.mark.skipif(kubectl_binary() is None, reason="the runbook is kubectl: run `make tools`")


@pytest.fixture
def desk(emulator: KubernetesEmulator, kube_env: Path) -> Desk:
    emulator.add_namespace(NAMESPACE)
    return Desk(emulator, kube_env, NAMESPACE)


@pytest.fixture
async def kubelet(emulator: KubernetesEmulator, kube_env: Path, tmp_path: Path) -> AsyncIterator[Kubelet]:
    async with Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kube_env) as kubelet:
        yield kubelet


async def run(desk: Desk, command: str) -> None:
    if command == KILL_SWITCH:
        # The emulator's discovery does not list Namespace objects, so kubectl cannot
        # annotate one here: the same patch, sent directly.
        desk.set_namespace_annotation("livestrat.io/kill-switch", "true")
        return
    await desk.kubectl(*command.split())


async def strategies_running_then_operator_gone(emulator: KubernetesEmulator, desk: Desk) -> None:
    async with running_operator(emulator, fast_settings()):
        for name in STRATEGIES:
            await desk.apply(paper(name))
        await wait_for(lambda: all(desk.phase(n) == "Running" for n in STRATEGIES))


def runbook_commands() -> str:
    """docs/operations.md with `-n NAMESPACE` taken out of each kubectl line."""
    return re.sub(r"kubectl -n \S+ ", "kubectl ", RUNBOOK.read_text())


@pytest.mark.parametrize("record", [RECORD_THE_HALT, KILL_SWITCH], ids=["annotate-livestrategies", "kill-switch"])
async def test_halting_by_hand_while_the_operator_is_down_keeps_every_strategy_halted_when_it_returns(
    emulator, desk: Desk, kubelet: Kubelet, record: str
):
    await strategies_running_then_operator_gone(emulator, desk)
    started = len(kubelet.started_pods)

    await run(desk, record)  # 1. the halt, where the operator will read it
    await run(desk, STOP_THE_PODS)  # 2. the emergency stop: SIGTERM, each runtime halts
    await wait_for(lambda: not any(desk.pods(n) for n in STRATEGIES))

    async with running_operator(emulator, fast_settings()):
        await wait_for(lambda: all(desk.phase(n) == "Halted" for n in STRATEGIES))
        await asyncio.sleep(1.0)  # time enough to undo it, if it were going to
        for name in STRATEGIES:
            await wait_for(lambda name=name: "livestrat.io/halt" in desk.get(name)["metadata"]["annotations"])
            assert desk.get(name)["spec"]["replicas"] == 1  # the manifest's: a GitOps controller has nothing to undo
            assert desk.statefulset(name)["spec"]["replicas"] == 0
            assert desk.pods(name) == []
    assert len(kubelet.started_pods) == started, "a halted strategy was started again"


async def test_scaling_only_the_statefulsets_is_undone_by_the_returning_operator(
    emulator, desk: Desk, kubelet: Kubelet
):
    # Why the runbook records the halt first: this is what the old runbook did.
    await strategies_running_then_operator_gone(emulator, desk)
    started = len(kubelet.started_pods)
    await run(desk, STOP_THE_PODS)
    await wait_for(lambda: not any(desk.pods(n) for n in STRATEGIES))

    async with running_operator(emulator, fast_settings()):
        # The status still says Running from before: wait for the pods themselves.
        await wait_for(lambda: len(kubelet.started_pods) == started + len(STRATEGIES))
        for name in STRATEGIES:
            assert desk.get(name)["spec"]["replicas"] == 1
            assert desk.statefulset(name)["spec"]["replicas"] == 1


def test_the_runbook_prints_these_commands_in_this_order():
    text = runbook_commands()
    section = text.split("### Operator down", 1)[1].split("\n## ", 1)[0]
    positions = [section.find(f"kubectl {command}") for command in (RECORD_THE_HALT, STOP_THE_PODS)]
    assert -1 not in positions, positions
    assert positions == sorted(positions), "the runbook must record the halt before it stops the pods"
    assert f"kubectl {KILL_SWITCH}" in text


async def test_annotating_every_strategy_also_halts_one_the_scale_subresource_cannot_serve(emulator, desk: Desk):
    # An object stored past validation whose spec.replicas is not an integer: the API server cannot serve its scale
    # subresource, and `kubectl scale --all` would give up there, leaving those after it as they were. The
    # annotation is a patch of metadata, which leaves the broken field as it is (a real API server lets unchanged
    # invalid fields through an update since CRD validation ratcheting, beta and on by default in Kubernetes 1.30,
    # GA in 1.33: "Ignores errors raised on unchanged fields of Custom Resources across UPDATE/PATCH requests").
    for name in ("a-first", "b-broken", "c-last"):
        emulator.create_object("livestrat.io/v1alpha1/livestrategies", paper(name), namespace=NAMESPACE)
    broken = desk.get("b-broken")
    broken["spec"]["replicas"] = "one"
    emulator.store_unchecked("livestrat.io/v1alpha1/livestrategies", broken)
    with pytest.raises(AssertionError, match="accessor error"):
        await desk.kubectl("scale", "livestrategy", "--all", "--replicas=0")
    assert desk.get("c-last")["spec"]["replicas"] == 1  # not scaled

    await run(desk, RECORD_THE_HALT)
    notes = [desk.get(n)["metadata"]["annotations"].get("livestrat.io/halt") for n in ("a-first", "b-broken", "c-last")]
    assert notes == ["emergency-stop"] * 3
