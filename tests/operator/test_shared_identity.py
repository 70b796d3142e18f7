"""Strategy pods sharing one identity per namespace (issue 15: three writes fewer per strategy), and the upgrade to it.

Under ``runtimeIdentity: shared`` the operator keeps ServiceAccount, Role and RoleBinding ``livestrat-runtime`` in
each namespace with a strategy, and gives a new strategy only its ConfigMap, PodDisruptionBudget and StatefulSet.
An operator upgraded to it restarts no running strategy: a running pod keeps the identity it runs as (and its
Role and RoleBinding) until its next restart; what nothing uses any more goes.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import yaml

from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import CHILD_RESOURCES, Desk, paper
from tests.support.helm import template_result
from tests.support.kube import ADMISSION_PLURALS, call, wait_for
from tests.support.operator import fast_settings, is_operator_request, running_operator

SHARED = "livestrat-runtime"


def account_of(desk: Desk, name: str) -> str | None:
    pods = [p for p in desk.pods(name) if not p["metadata"].get("deletionTimestamp")]
    return pods[0]["spec"].get("serviceAccountName") if pods else None


def template_account(desk: Desk, name: str) -> str:
    return desk.statefulset(name)["spec"]["template"]["spec"]["serviceAccountName"]


def own_identity(desk: Desk, name: str) -> dict[str, Any]:
    return {kind: desk.child(kind, name) for kind in ("ServiceAccount", "Role", "RoleBinding", "Service")}


async def test_strategies_of_a_namespace_share_one_identity_made_once(emulator, desk: Desk, kubelet: Kubelet):
    async with running_operator(emulator, fast_settings(runtime_identity="shared")) as operator:
        for name in ("one", "two", "three"):
            await desk.apply(paper(name))
        await wait_for(lambda: all(desk.phase(n) == "Running" for n in ("one", "two", "three")), timeout=30)
        await operator.processed(emulator, "one", "two", "three")
        for name in ("one", "two", "three"):
            assert account_of(desk, name) == SHARED
            assert own_identity(desk, name) == {
                "ServiceAccount": None,
                "Role": None,
                "RoleBinding": None,
                "Service": None,
            }
        account, role, binding = (desk.child(kind, SHARED) for kind in ("ServiceAccount", "Role", "RoleBinding"))
        assert role["rules"] == [
            {"apiGroups": ["livestrat.io"], "resources": ["livestrategies/status"], "verbs": ["patch"]},
            {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["default"], "verbs": ["get"]},
        ]
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": SHARED, "namespace": "default"}]
        for made in (account, role, binding):
            assert not made["metadata"].get("ownerReferences")  # outlives any one strategy
        # written once for the namespace, not once per strategy
        creates = [
            r.url.path
            for r in emulator
            if is_operator_request(r)
            and r.method.value == "POST"
            and r.url.path.rsplit("/", 1)[-1] in ("serviceaccounts", "roles", "rolebindings")
        ]
        assert len(creates) == 3, creates

        # deleted by hand: as a strategy's own identity, it stays (terminating) while a pod runs as it
        emulator.delete_object(CHILD_RESOURCES["ServiceAccount"], SHARED, namespace="default")
        assert desk.child("ServiceAccount", SHARED)["metadata"]["deletionTimestamp"]
        await desk.scale("two", 0)
        await wait_for(lambda: desk.phase("two") == "Halted", timeout=30)
        await desk.scale("two", 1)
        await wait_for(lambda: desk.phase("two") == "Running" and account_of(desk, "two") == SHARED, timeout=30)
        assert desk.child("ServiceAccount", SHARED) is not None

        # a strategy deleted leaves the others their identity
        await desk.delete("one")
        await wait_for(lambda: desk.get("one") is None, timeout=30)
        assert desk.child("Role", SHARED) is not None and desk.child("RoleBinding", SHARED) is not None


async def test_upgrading_to_the_shared_identity_restarts_nothing_and_removes_what_nothing_uses(
    emulator, desk: Desk, kubelet: Kubelet
):
    running = ("auto", "manual")
    async with running_operator(emulator, fast_settings()):  # before: an identity per strategy
        await desk.apply(paper("auto"))
        await desk.apply(paper("manual", updatePolicy="Manual"))
        await desk.apply(paper("halted", replicas=0))
        await wait_for(lambda: all(desk.phase(n) == "Running" for n in running) and desk.phase("halted") == "Halted")
        for name in (*running, "halted"):
            desk.store_legacy_service(name)
    started = list(kubelet.started_pods)
    for name in running:
        assert account_of(desk, name) == name

    async with running_operator(emulator, fast_settings(runtime_identity="shared")) as operator:
        await wait_for(lambda: all(desk.child("Service", n) is None for n in (*running, "halted")), timeout=30)
        await operator.processed(emulator, *running, "halted")
        assert kubelet.started_pods == started  # not one pod restarted
        for name in running:
            # the running pod keeps the identity it reports with
            assert account_of(desk, name) == name and template_account(desk, name) == name
            kept = own_identity(desk, name)
            assert all(kept[kind] is not None for kind in ("ServiceAccount", "Role", "RoleBinding")), kept
            message = desk.condition(name, "ConfigDrift")["message"]
            assert "serviceAccountName" in message, message
        # nothing runs: it takes the shared identity at once, and its own goes
        assert template_account(desk, "halted") == SHARED
        await wait_for(lambda: all(v is None for v in own_identity(desk, "halted").values()), timeout=30)

        # at its next restart a strategy runs as the shared identity; its own goes once its old pod is gone
        await desk.edit_spec("auto", {"restartNonce": "after-upgrade"})
        await wait_for(lambda: desk.phase("auto") == "Running" and account_of(desk, "auto") == SHARED, timeout=30)
        await wait_for(lambda: all(v is None for v in own_identity(desk, "auto").values()), timeout=30)
        assert not desk.is_true("auto", "ConfigDrift")

        # Manual, untouched, keeps its pod and its identity
        await operator.processed(emulator, "manual")
        assert account_of(desk, "manual") == "manual" and desk.child("Role", "manual") is not None
        assert kubelet.max_running == 1


def chart_identity_policy() -> list[dict[str, Any]]:
    """The chart's runtime-identity policy and binding, as helm renders them for a cluster that serves them."""
    served = ("--api-versions", "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy")
    result = template_result(None, None, *served)
    assert result.returncode == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    found = [
        d
        for d in docs
        if d["kind"].startswith("ValidatingAdmissionPolicy") and "runtime-identity" in d["metadata"]["name"]
    ]
    assert [d["kind"] for d in found] == ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]
    return found


async def patch_status(emulator, name: str, token: str, patch: dict, method: str = "PATCH") -> tuple[int, dict]:
    path = f"/apis/livestrat.io/v1alpha1/namespaces/default/livestrategies/{name}/status"
    return await call(emulator, method, path, token=token, json=patch if method == "PATCH" else None)


@pytest.mark.slow  # renders the chart with helm
async def test_a_pod_of_the_shared_identity_writes_only_its_own_strategys_status(
    emulator, desk: Desk, kubelet: Kubelet
):
    """The shared Role names no strategy: the chart's admission policy is what keeps each pod to its own status, from
    the pod name its bound token carries (the emulator authenticates, authorizes and admits as an API server)."""
    policy, binding = chart_identity_policy()
    for document in (policy, binding):
        emulator.create_object(ADMISSION_PLURALS[document["kind"]], document)
    async with running_operator(emulator, fast_settings(runtime_identity="shared")):
        await desk.apply(paper("one"))
        await desk.apply(paper("two"))
        await wait_for(lambda: desk.phase("one") == "Running" and desk.phase("two") == "Running", timeout=30)
        own = emulator.issue_token("default", SHARED, pod="one-0")
        report = {"status": {"trading": {"fills": 3}}}

        status, body = await patch_status(emulator, "one", own, report)
        assert status == 200 and body["status"]["trading"]["fills"] == 3, body
        status, body = await patch_status(emulator, "two", own, report)
        assert status == 403 and body["reason"] == "Forbidden", body
        assert "may patch only the status of the strategy its pod runs" in body["message"], body
        assert (desk.status("two").get("trading") or {}).get("fills") != 3
        # a token bound to no pod (kubectl create token) says no pod: refused
        status, body = await patch_status(emulator, "one", emulator.issue_token("default", SHARED), report)
        assert status == 403, body
        # no reads at all (a policy never sees them); the runtime reads its halt record through an empty patch
        status, body = await patch_status(emulator, "one", own, {}, method="GET")
        assert status == 403, body
        version = desk.get("one")["metadata"]["resourceVersion"]
        status, body = await patch_status(emulator, "one", own, {})
        assert status == 200 and body["metadata"]["name"] == "one" and body["metadata"]["resourceVersion"] == version

        # the policy is what narrows the shared Role: unbound, the same patch goes through
        emulator.delete_object(ADMISSION_PLURALS["ValidatingAdmissionPolicyBinding"], binding["metadata"]["name"])
        status, body = await patch_status(emulator, "two", own, report)
        assert status == 200, body


def identity_parts(desk: Desk) -> dict[str, Any]:
    return {kind: desk.child(kind, SHARED) for kind in ("ServiceAccount", "Role", "RoleBinding")}


async def test_a_namespace_deleted_keeps_the_shared_identity_until_its_pods_are_gone_and_then_goes(
    emulator, desk: Desk, kubelet: Kubelet, caplog: pytest.LogCaptureFixture
):
    # Before Kubernetes 1.33 the namespace controller deletes everything at once: the pods and the identity they
    # report with. A pod halting must still read its halt record (a halt, not a restart) and push its last status:
    # the identity waits for it. (From 1.33 the pods go first, and the identity only once they are gone.)
    emulator.ordered_namespace_deletion = False
    caplog.set_level(logging.INFO, logger="livestrat.operator")
    team = desk.in_namespace("team")
    emulator.add_namespace("team")
    async with running_operator(emulator, fast_settings(runtime_identity="shared")):
        await team.apply(paper("one"))
        await team.apply(paper("two"))
        await wait_for(lambda: team.phase("one") == "Running" and team.phase("two") == "Running", timeout=30)
        kubelet.hold_stops()
        await desk.kubectl("delete", "namespace", "team", "--wait=false")
        await wait_for(lambda: any(p["metadata"].get("deletionTimestamp") for p in team.pods("one")), timeout=30)
        emulator.namespace_controller.drain()
        parts = identity_parts(team)
        assert all(part is not None and part["metadata"].get("deletionTimestamp") for part in parts.values()), parts

        kubelet.release_stops()
        await wait_for(lambda: emulator.read_object("v1/namespaces", "team") is None, timeout=30)
    # nothing may be created in a terminating namespace, Events neither: the operator tries none (kopf would retry
    # each four times, an ERROR each), and says in its log what it would have posted
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], errors
    assert any("no Event: the namespace is being deleted" in r.getMessage() for r in caplog.records)


def livestrat_holds(part: dict[str, Any] | None) -> bool:
    return part is not None and "livestrat.io/pod-identity" in (part["metadata"].get("finalizers") or [])


async def test_the_last_strategy_of_a_namespace_deleted_takes_the_finalizer_off_its_identity_and_the_next_puts_it_back(
    emulator, desk: Desk, kubelet: Kubelet
):
    # What is left for the strategies to come waits on nobody: a namespace deleted once the operator is uninstalled
    # is not held by a finalizer nobody would take off.
    team = desk.in_namespace("team")
    emulator.add_namespace("team")
    async with running_operator(emulator, fast_settings(runtime_identity="shared")):
        for name in ("one", "two"):
            await team.apply(paper(name))
        await wait_for(lambda: team.phase("one") == "Running" and team.phase("two") == "Running", timeout=30)
        assert all(livestrat_holds(part) for part in identity_parts(team).values())
        await team.delete("one")
        assert all(livestrat_holds(part) for part in identity_parts(team).values())  # "two" still runs as it
        await team.delete("two")
        parts = identity_parts(team)
        assert all(part is not None and not livestrat_holds(part) for part in parts.values()), parts

        await team.apply(paper("three"))
        await wait_for(lambda: team.phase("three") == "Running", timeout=30)
        assert all(livestrat_holds(part) for part in identity_parts(team).values())


async def test_a_namespace_whose_shared_identity_no_pod_uses_goes_when_deleted(emulator, desk: Desk, kubelet: Kubelet):
    # Held by the operator's finalizer with no strategy left (an operator stopped before it took it off): the
    # operator sees the namespace terminating and lets the identity go.
    from strategy_operator.build.manifests import build_shared_identity

    emulator.add_namespace("team")
    for part in build_shared_identity("team", fast_settings(runtime_identity="shared")):
        emulator.create_object(CHILD_RESOURCES[part["kind"]], part, namespace="team")
    assert all(livestrat_holds(part) for part in identity_parts(desk.in_namespace("team")).values())
    async with running_operator(emulator, fast_settings(runtime_identity="shared")):
        await desk.kubectl("delete", "namespace", "team", "--wait=false")
        await wait_for(lambda: emulator.read_object("v1/namespaces", "team") is None, timeout=30)


async def test_a_shared_identity_made_before_it_had_a_finalizer_gets_one_and_keeps_what_else_holds_it(
    emulator, desk: Desk, kubelet: Kubelet
):
    from strategy_operator.build.manifests import build_shared_identity

    for part in build_shared_identity("default", fast_settings(runtime_identity="shared")):
        part["metadata"]["finalizers"] = ["example.com/audit"]  # another controller's, and not livestrat's
        emulator.create_object(CHILD_RESOURCES[part["kind"]], part, namespace="default")
    async with running_operator(emulator, fast_settings(runtime_identity="shared")):
        await desk.apply(paper("one"))
        await wait_for(lambda: desk.phase("one") == "Running", timeout=30)
        for kind, part in identity_parts(desk).items():
            assert part["metadata"]["finalizers"] == ["example.com/audit", "livestrat.io/pod-identity"], kind
