"""Halts that stay put while a GitOps controller with self-heal keeps re-applying the manifests from Git.

Such a controller puts back every field its manifest sets (``spec.replicas: 1``): a halt written there
(``kubectl scale --replicas=0``, or the kill switch rewriting each spec) lasts until its next pass. The desk's
halt is an annotation no manifest owns (``livestrat.io/halt``, as CloudNativePG hibernates a cluster with
``cnpg.io/hibernation``), and the kill switch holds through it.
"""

from __future__ import annotations

from livestrat.api.contract import HALT_ANNOTATION, KILL_SWITCH_ANNOTATION
from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk, paper
from tests.support.gitops import SelfHeal
from tests.support.kube import wait_for
from tests.support.operator import fast_settings, operator_writes, running_operator


def halted(desk: Desk, name: str) -> bool:
    return desk.is_true(name, "Halted") and not desk.pods(name) and desk.statefulset(name)["spec"]["replicas"] == 0


async def test_the_desks_halt_holds_while_gitops_reapplies_the_manifest_and_removing_it_resumes(
    emulator, desk: Desk, kubelet: Kubelet
):
    manifest = paper("ema-gitops")
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(manifest)
        await wait_for(lambda: desk.phase("ema-gitops") == "Running")
        async with SelfHeal(desk, [manifest]) as gitops:
            started = len(kubelet.started_pods)
            await desk.annotate("ema-gitops", HALT_ANNOTATION, "desk: alice, venue maintenance")
            await wait_for(lambda: halted(desk, "ema-gitops"), timeout=30)
            await gitops.passes(3)
            await operator.processed(emulator, "ema-gitops")
            assert halted(desk, "ema-gitops") and desk.phase("ema-gitops") == "Halted"
            halt = desk.condition("ema-gitops", "Halted")
            assert halt["reason"] == "HaltRequested" and "desk: alice, venue maintenance" in halt["message"]
            assert desk.get("ema-gitops")["spec"]["replicas"] == 1  # the manifest's, untouched
            assert len(kubelet.started_pods) == started

            await desk.annotate("ema-gitops", HALT_ANNOTATION, None)
            await wait_for(lambda: desk.phase("ema-gitops") == "Running", timeout=30)


async def test_the_kill_switch_holds_under_gitops_and_lifting_it_resumes_each_strategy_only_when_asked(
    emulator, desk: Desk, kubelet: Kubelet
):
    emulator.add_namespace("desk-a")
    a = desk.in_namespace("desk-a")
    manifests = [paper("one"), paper("two")]
    async with running_operator(emulator, fast_settings()) as operator:
        for manifest in manifests:
            await a.apply(manifest)
        await wait_for(lambda: a.phase("one") == "Running" and a.phase("two") == "Running")
        async with SelfHeal(a, manifests) as gitops:
            since = len(emulator)
            started = len(kubelet.started_pods)
            desk.set_namespace_annotation(KILL_SWITCH_ANNOTATION, "true", namespace="desk-a")
            await wait_for(lambda: halted(a, "one") and halted(a, "two"), timeout=30)
            await gitops.passes(3)
            await operator.processed(emulator, "one", "two", namespace="desk-a")
            for name in ("one", "two"):
                assert halted(a, name) and a.condition(name, "Halted")["reason"] == "KillSwitch", name
                assert a.get(name)["spec"]["replicas"] == 1, name  # no spec rewritten: nothing to fight over
                assert "kill switch" in a.get(name)["metadata"]["annotations"][HALT_ANNOTATION], name
            scaled = [r for r in operator_writes(emulator, since) if r.url.path.endswith("/scale")]
            assert scaled == []

            # Lifting the switch resumes nothing, whatever Git says: each strategy keeps the desk's halt.
            desk.set_namespace_annotation(KILL_SWITCH_ANNOTATION, None, namespace="desk-a")
            await wait_for(lambda: a.condition("one", "Halted").get("reason") == "HaltRequested", timeout=30)
            await wait_for(lambda: a.condition("two", "Halted").get("reason") == "HaltRequested", timeout=30)
            await gitops.passes(3)
            await operator.processed(emulator, "one", "two", namespace="desk-a")
            assert halted(a, "one") and halted(a, "two")
            assert len(kubelet.started_pods) == started

            await a.annotate("two", HALT_ANNOTATION, None)  # a deliberate resume, one strategy
            await wait_for(lambda: a.phase("two") == "Running", timeout=30)
            await operator.processed(emulator, "one", namespace="desk-a")
            assert halted(a, "one")
