"""The real operator against the emulator, story by story (pods without a process: see test_full_flow for trading)."""

from __future__ import annotations

import aiohttp
import jsonschema
import pytest

from livestrat.api.crd import build_crd
from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.clock import ShiftedClock
from tests.support.desk import Desk, example, paper
from tests.support.k8s_schemas import manifest_errors
from tests.support.kube import wait_for
from tests.support.operator import (
    OperatorThread,
    fast_settings,
    is_operator_request,
    operator_writes,
    peering_crd,
    running_operator,
)
from tests.support.pss import check_manifest

NAME = "ema-cross-btc"
LIVESTRATEGIES = "livestrat.io/v1alpha1/livestrategies"


# status.risk as a runtime pushes it when its maxDailyLoss halts it.
DAILY_LOSS_BREACH = {
    "state": "Halted",
    "reason": "daily PnL -2100.00 USDT is below -2000",
    "breachedLimit": "maxDailyLoss",
    "breachedAt": "2026-03-02T10:15:00.123Z",
}


TRANSITIONS = ("Created", "Updated", "Starting", "Restarting", "Running", "Halting", "Halted", "RiskHalted")


def transitions(desk: Desk, name: str) -> list[str]:
    """The lifecycle events of a strategy, oldest first."""
    return [reason for reason in desk.events(name) if reason in TRANSITIONS]


def transitions_queued(operator: OperatorThread) -> int:
    """The lifecycle events the operator has handed to kopf, which posts them asynchronously."""
    return int(sum(operator.metric("livestrat_operator_events_total", reason=reason) for reason in TRANSITIONS))


def asked_at_most_one_pod(emulator, name: str) -> bool:
    """The operator created the strategy's StatefulSet once and never asked it for more than one pod."""
    writes = [
        r
        for r in operator_writes(emulator)
        if "/statefulsets" in r.url.path and isinstance(r.data, dict) and r.method.value in ("POST", "PATCH")
    ]
    created = [r for r in writes if r.method.value == "POST" and r.data["metadata"]["name"] == name]
    patched = [r for r in writes if r.method.value == "PATCH" and r.url.path.endswith(f"/statefulsets/{name}")]
    asked = [(r.data.get("spec") or {}).get("replicas") for r in created + patched]
    return len(created) == 1 and {replicas for replicas in asked if replicas is not None} <= {0, 1}


async def test_apply_the_paper_example_then_halt_resume_and_delete_it(emulator, desk: Desk, kubelet: Kubelet):
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Running")
        strategy = desk.get(NAME)
        uid = strategy["metadata"]["uid"]
        for kind in ("ConfigMap", "ServiceAccount", "Role", "RoleBinding", "StatefulSet"):
            child = desk.child(kind, NAME)
            assert child is not None, kind
            assert child["metadata"]["labels"]["livestrat.io/strategy"] == NAME
            assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "livestrat-operator"
            [owner] = child["metadata"]["ownerReferences"]
            assert owner["uid"] == uid and owner["controller"] is True
        status = desk.status(NAME)
        assert status["replicas"] == 1 and status["podName"] == f"{NAME}-0"
        assert status["selector"] == f"livestrat.io/strategy={NAME}"
        assert status["observedGeneration"] == strategy["metadata"]["generation"]
        assert desk.is_true(NAME, "Ready") and not desk.is_true(NAME, "Halted")

        await desk.scale(NAME, 0)
        await wait_for(lambda: desk.phase(NAME) == "Halted")
        assert desk.statefulset(NAME)["spec"]["replicas"] == 0
        assert desk.pods(NAME) == []
        assert desk.condition(NAME, "Halted")["reason"] == "ScaledToZero"
        assert desk.status(NAME)["replicas"] == 0 and "podName" not in desk.status(NAME)

        await desk.scale(NAME, 1)
        await wait_for(lambda: desk.phase(NAME) == "Running")
        assert kubelet.started_pods == [f"default/{NAME}-0", f"default/{NAME}-0"]
        assert asked_at_most_one_pod(emulator, NAME)
        # each transition told once, however many watch events arrived while the operator's copy lagged
        await operator.processed(emulator, NAME)
        await wait_for(lambda: len(transitions(desk, NAME)) >= transitions_queued(operator))  # kopf posted them
        assert transitions(desk, NAME) == ["Created", "Starting", "Running", "Halting", "Halted", "Starting", "Running"]

        await desk.delete(NAME)  # kubectl waits for the finalizer
        assert desk.get(NAME) is None
        await wait_for(lambda: not desk.pods(NAME) and desk.statefulset(NAME) is None)
        for reason in ("Created", "Starting", "Running", "Halting", "Halted"):
            await wait_for(lambda reason=reason: reason in desk.events(NAME))


async def test_apply_the_halted_example_no_pod_starts_until_it_is_scaled_to_one(emulator, desk: Desk, kubelet: Kubelet):
    # what the example's comment says happens
    async with running_operator(emulator, fast_settings()):
        await desk.apply(example("halted"))
        name = "ema-cross-halted"
        await wait_for(lambda: desk.phase(name) == "Halted")
        assert desk.statefulset(name)["spec"]["replicas"] == 0
        assert desk.pods(name) == [] and kubelet.started_pods == []
        assert desk.condition(name, "Halted")["reason"] == "ScaledToZero"

        await desk.scale(name, 1)
        await wait_for(lambda: desk.phase(name) == "Running")
        assert kubelet.started_pods == [f"default/{name}-0"]


def write_of(request) -> str:
    """A write as ``VERB resource[/subresource]``; a patch of the LiveStrategy itself by the metadata it sets."""
    parts = request.url.path.strip("/").split("/")
    parts = parts[parts.index("namespaces") + 2 :]
    what = f"{request.method.value} {parts[0]}" + (f"/{parts[2]}" if len(parts) > 2 else "")
    if what == "PATCH livestrategies":  # a merge patch, or kopf's JSON patch (of /metadata/... paths)
        data = request.data
        keys = {op["path"].split("/")[2] for op in data} if isinstance(data, list) else (data.get("metadata") or {})
        what += " " + ",".join(sorted(key for key in keys if key != "resourceVersion"))
    return what


@pytest.mark.parametrize(
    "identity, children",
    [
        ("perStrategy", ["configmaps", "poddisruptionbudgets", "rolebindings", "roles", "serviceaccounts"]),
        ("shared", ["configmaps", "poddisruptionbudgets"]),
    ],
)
async def test_a_new_strategy_costs_its_children_its_status_and_the_finalizer_and_nothing_else(
    emulator, desk: Desk, kubelet: Kubelet, identity, children
):
    """What a strategy costs the API server as it starts: every write is one a user can name (docs/performance.md).
    With the shared identity (issue 15: at most six writes besides Events), a second strategy of the namespace costs
    exactly what the first one does, less the namespace's identity the first made."""
    async with running_operator(emulator, fast_settings(runtime_identity=identity)) as operator:
        if identity == "shared":  # the namespace's identity, made for its first strategy
            await desk.apply(paper("first"))
            await wait_for(lambda: desk.phase("first") == "Running")
            await operator.processed(emulator, "first")
            made = sorted(write_of(r) for r in operator_writes(emulator) if "/events" not in r.url.path)
            assert [w for w in made if w.endswith(("serviceaccounts", "roles", "rolebindings"))] == [
                "POST rolebindings",
                "POST roles",
                "POST serviceaccounts",
            ]
        since = len(emulator)
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Running")
        await operator.processed(emulator, NAME)
        writes = sorted(write_of(r) for r in operator_writes(emulator, since) if "/events" not in r.url.path)
    assert writes == sorted(
        [
            *[f"POST {plural}" for plural in children],
            "PATCH livestrategies finalizers",  # kopf's finalizer: a deletion halts first
            # (not "Starting, waiting for the StatefulSet to create its pod": deferred until the pod is there)
            "PATCH livestrategies/status",  # Starting: its pod made (podName, replicas), not ready yet
            "PATCH livestrategies/status",  # Running
            "POST statefulsets",
        ]
    ), writes
    if identity == "shared":
        # the finalizer and three children, and the status as the phase goes Starting → Running: six (five when the
        # pod is ready by the time the operator first sees it)
        assert len(writes) == 6


async def test_a_strategy_at_rest_costs_no_writes_even_while_its_runtime_reports(
    emulator, desk: Desk, kubelet: Kubelet
):
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(example("paper-ema-cross"))
        await desk.apply(example("halted"))
        await wait_for(lambda: desk.phase(NAME) == "Running" and desk.phase("ema-cross-halted") == "Halted")
        desk.push_runtime_status(NAME, fills=1)
        await wait_for(lambda: desk.is_true(NAME, "Trading"))
        await operator.processed(emulator, NAME, "ema-cross-halted")
        since = len(emulator)
        for fills in range(2, 8):  # the runtime keeps reporting: fills and heartbeats
            desk.push_runtime_status(NAME, fills=fills)
            await operator.processed(emulator, NAME)  # each report looked at
        assert operator_writes(emulator, since) == []
        assert desk.status(NAME)["trading"]["fills"] == 7


async def test_restarting_the_operator_mid_flow_duplicates_nothing_and_loses_no_status(
    emulator, desk: Desk, kube_env, tmp_path
):
    def children_posted(since: int) -> list:
        return [r for r in operator_writes(emulator, since) if r.method.value == "POST" and "events" not in r.url.path]

    # A runtime that is still halting (cancel orders, flatten) while the operator restarts.
    async with Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kube_env) as kubelet:
        async with running_operator(emulator, fast_settings()):
            await desk.apply(example("paper-ema-cross"))
            await wait_for(lambda: desk.phase(NAME) == "Running")
            desk.push_runtime_status(NAME, fills=3, total_pnl="12.50 USDT")
            await wait_for(lambda: desk.is_true(NAME, "Trading"))
        before = {kind: desk.child(kind, NAME)["metadata"]["uid"] for kind in ("ConfigMap", "StatefulSet", "Role")}
        status_before = desk.status(NAME)

        since = len(emulator)
        async with running_operator(emulator, fast_settings()) as operator:  # nothing changed: not one write
            await operator.processed(emulator, NAME)
            assert operator_writes(emulator, since) == []
            assert desk.status(NAME) == status_before

            kubelet.hold_stops()
            await desk.scale(NAME, 0)
            await wait_for(lambda: desk.phase(NAME) == "Halting" and desk.pods(NAME))
            # kopf posts Events in the background and drops those still queued when it stops (docs/operator.md,
            # "Events"): this story restarts the operator on purpose, so it lets the Halting Event out first.
            await wait_for(lambda: transitions(desk, NAME)[-1:] == ["Halting"])
        assert desk.pods(NAME), "the operator was to restart while the pod was still halting"

        since = len(emulator)
        async with running_operator(emulator, fast_settings()) as operator:  # mid-transition
            await operator.processed(emulator, NAME)
            assert desk.phase(NAME) == "Halting" and desk.pods(NAME)
            kubelet.release_stops()
            await wait_for(lambda: desk.phase(NAME) == "Halted", timeout=30)
            await wait_for(lambda: transitions(desk, NAME)[-1:] == ["Halted"])  # out before this operator stops
        assert children_posted(since) == []

        await desk.scale(NAME, 1)  # while no operator runs
        since = len(emulator)
        async with running_operator(emulator, fast_settings()) as operator:
            await wait_for(lambda: desk.phase(NAME) == "Running", timeout=30)
            await operator.processed(emulator, NAME)
            await wait_for(lambda: transitions(desk, NAME)[-1:] == ["Running"])
        assert children_posted(since) == []
        assert asked_at_most_one_pod(emulator, NAME)
    assert {kind: desk.child(kind, NAME)["metadata"]["uid"] for kind in before} == before
    assert len(emulator.list_objects("apps/v1/statefulsets", "default")) == 1
    status = desk.status(NAME)
    assert status["trading"]["fills"] == 3 and status["trading"]["totalPnl"] == "12.50 USDT"  # the runtime's part kept
    # each transition told once across three operators
    assert transitions(desk, NAME) == ["Created", "Starting", "Running", "Halting", "Halted", "Starting", "Running"]


async def test_the_kill_switch_halts_every_strategy_of_the_namespace_whatever_its_state_until_each_is_resumed(
    emulator, desk: Desk, kubelet: Kubelet
):
    emulator.add_namespace("desk-a")
    emulator.add_namespace("desk-b")
    a, b = desk.in_namespace("desk-a"), desk.in_namespace("desk-b")
    kubelet.unready.add("desk-a/starting-0")
    kubelet.broken_images.add("registry.invalid/broken:1")
    breach = {"state": "Halted", "breachedLimit": "maxDailyLoss", "breachedAt": "2026-03-02T10:15:00Z"}
    states = {
        "one": "Running",
        "two": "Running",
        "starting": "Starting",
        "risky": "RiskHalted",
        "drifting": "Running",
        "failed": "Failed",
        "unreadable": "Running",  # an edit the operator cannot read stops nothing
    }
    async with running_operator(emulator, fast_settings()) as operator:
        for name in ("one", "two", "starting", "risky"):
            await a.apply(paper(name))
        await a.apply(paper("drifting", updatePolicy="Manual"))
        await a.apply(paper("failed", pod={"image": "registry.invalid/broken:1"}))
        await a.apply(paper("unreadable"))
        await b.apply(paper("elsewhere"))
        await wait_for(lambda: a.phase("risky") == "Running" and a.phase("drifting") == "Running")
        a.push_runtime_status("risky", risk=breach)
        await a.edit_spec("drifting", {"risk": {"maxDailyLoss": 900}})
        # only possible past the API server's validation (an old CRD, a bug)
        emulator.patch_object(LIVESTRATEGIES, "unreadable", {"spec": {"mode": "yolo"}}, namespace="desk-a")
        await wait_for(lambda: all(a.phase(n) == phase for n, phase in states.items()), timeout=30)
        await wait_for(lambda: a.is_true("drifting", "ConfigDrift") and b.phase("elsewhere") == "Running")
        await wait_for(lambda: a.condition("unreadable", "InvalidSpec").get("reason") == "SpecInvalid")

        desk.set_namespace_annotation("livestrat.io/kill-switch", "true", namespace="desk-a")
        await wait_for(lambda: all(a.is_true(n, "Halted") and not a.pods(n) for n in states), timeout=30)
        for name in states:
            # sticky: the switch left the desk's halt on each resource, and rewrote no spec
            assert "kill switch" in a.get(name)["metadata"]["annotations"]["livestrat.io/halt"], name
            assert a.get(name)["spec"]["replicas"] == 1, name
            assert a.statefulset(name)["spec"]["replicas"] == 0 and a.pods(name) == []
            await wait_for(lambda name=name: "KillSwitchEngaged" in a.events(name), timeout=30)
        for name in ("one", "two", "starting", "drifting", "failed"):
            assert a.phase(name) == "Halted" and a.condition(name, "Halted")["reason"] == "KillSwitch", name
        assert a.is_true("risky", "RiskHalted") and a.phase("unreadable") == "Invalid"
        assert b.phase("elsewhere") == "Running"

        await a.annotate("one", "livestrat.io/halt", None)  # undone while the switch is engaged
        await wait_for(lambda: "livestrat.io/halt" in (a.get("one")["metadata"].get("annotations") or {}))
        await operator.processed(emulator, "one", namespace="desk-a")
        assert a.phase("one") == "Halted" and a.pods("one") == []

        desk.set_namespace_annotation("livestrat.io/kill-switch", None, namespace="desk-a")
        # lifting the switch resumes nothing: the same reconciliation that drops its reason keeps the pods at 0
        await wait_for(lambda: a.condition("one", "Halted").get("reason") == "HaltRequested", timeout=30)
        await wait_for(lambda: a.condition("two", "Halted").get("reason") == "HaltRequested", timeout=30)
        assert a.phase("one") == "Halted" and a.phase("two") == "Halted"
        assert a.statefulset("one")["spec"]["replicas"] == 0 and a.pods("one") == []
        await a.annotate("two", "livestrat.io/halt", None)
        await wait_for(lambda: a.phase("two") == "Running")
        assert a.phase("one") == "Halted"


async def test_live_trading_runs_only_in_a_namespace_the_operator_allows(emulator, desk: Desk, kubelet: Kubelet):
    live = example("live-binance-testnet")
    name = live["metadata"]["name"]
    emulator.add_namespace("live-desk")
    allowed = desk.in_namespace("live-desk")
    for where in (desk, allowed):
        for secret, keys in (("binance-testnet", ("api-key", "api-secret")), ("ledger-dsn", ("dsn",))):
            where.emulator.create_object(
                "v1/secrets",
                {"metadata": {"name": secret}, "data": dict.fromkeys(keys, "eA==")},
                namespace=where.namespace,
            )
    async with running_operator(emulator, fast_settings(live_namespaces=["live-desk"])):
        await desk.apply(live)
        await allowed.apply(live)
        await wait_for(lambda: desk.phase(name) == "Invalid" and allowed.phase(name) == "Running")
        invalid = desk.condition(name, "InvalidSpec")
        assert invalid["status"] == "True" and invalid["reason"] == "LiveTradingNotAllowed"
        assert "live-desk" in invalid["message"]
        assert desk.pods(name) == [] and desk.statefulset(name)["spec"]["replicas"] == 0
        await wait_for(lambda: "LiveTradingNotAllowed" in desk.events(name))
        assert allowed.condition(name, "InvalidSpec")["status"] == "False"


async def test_a_missing_secret_keeps_the_pod_from_starting_until_it_exists(emulator, desk: Desk, kubelet: Kubelet):
    strategy = paper("needs-ledger", ledger={"dsnSecret": {"name": "ledger-dsn", "key": "dsn"}})
    async with running_operator(emulator, fast_settings()):
        await desk.apply(strategy)
        await wait_for(lambda: desk.phase("needs-ledger") == "Pending")
        condition = desk.condition("needs-ledger", "InvalidSpec")
        assert condition["reason"] == "SecretNotFound" and "ledger-dsn" in condition["message"]
        assert desk.pods("needs-ledger") == [] and desk.statefulset("needs-ledger")["spec"]["replicas"] == 0
        await wait_for(lambda: "SecretNotFound" in desk.events("needs-ledger"))

        emulator.create_object(
            "v1/secrets", {"metadata": {"name": "ledger-dsn"}, "data": {"other": "eA=="}}, namespace="default"
        )
        await wait_for(
            lambda: desk.condition("needs-ledger", "InvalidSpec").get("reason") == "SecretKeyNotFound", timeout=10
        )
        emulator.patch_object("v1/secrets", "ledger-dsn", {"data": {"dsn": "eA=="}}, namespace="default")
        await wait_for(lambda: desk.phase("needs-ledger") == "Running", timeout=20)
        env = desk.statefulset("needs-ledger")["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {
            "name": "LIVESTRAT_LEDGER_DSN",
            "valueFrom": {"secretKeyRef": {"name": "ledger-dsn", "key": "dsn"}},
        } in env


def _pod_hash(desk: Desk, name: str) -> str | None:
    pods = [p for p in desk.pods(name) if not p["metadata"].get("deletionTimestamp")]
    return pods[0]["metadata"]["annotations"]["livestrat.io/config-hash"] if pods else None


def _template_hash(desk: Desk, name: str) -> str:
    return desk.statefulset(name)["spec"]["template"]["metadata"]["annotations"]["livestrat.io/config-hash"]


async def test_auto_update_restarts_the_pod_with_the_new_configuration_never_two_at_once(
    emulator, desk: Desk, kubelet: Kubelet
):
    async with running_operator(emulator, fast_settings()):
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Running")
        first = _pod_hash(desk, NAME)
        await desk.edit_spec(NAME, {"risk": {"maxDailyLoss": 1500}})
        await wait_for(
            lambda: (
                desk.phase(NAME) == "Running"
                and _pod_hash(desk, NAME) not in (None, first)
                and not desk.is_true(NAME, "ConfigDrift")
            )
        )
        assert '"maxDailyLoss": 1500' in desk.child("ConfigMap", NAME)["data"]["runtime.json"]
        assert _pod_hash(desk, NAME) == _template_hash(desk, NAME)
        assert len(kubelet.started_pods) == 2 and asked_at_most_one_pod(emulator, NAME)
        await wait_for(lambda: "Restarting" in desk.events(NAME))

        since = len(kubelet.started_pods)
        await desk.scale(NAME, 0)  # scaling is not a configuration change: the ConfigMap stays as it is
        await wait_for(lambda: desk.phase(NAME) == "Halted")
        await desk.scale(NAME, 1)
        await wait_for(lambda: desk.phase(NAME) == "Running")
        assert '"generation": 2' in desk.child("ConfigMap", NAME)["data"]["runtime.json"]
        assert len(kubelet.started_pods) == since + 1


async def test_manual_update_policy_leaves_the_running_strategy_alone_and_reports_the_drift(
    emulator, desk: Desk, kubelet: Kubelet
):
    strategy = paper("manual", updatePolicy="Manual")
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(strategy)
        await wait_for(lambda: desk.phase("manual") == "Running")
        running_hash, config = _pod_hash(desk, "manual"), desk.child("ConfigMap", "manual")["data"]

        await desk.edit_spec("manual", {"risk": {"maxDailyLoss": 900}, "haltPolicy": "cancelOrders"})
        await wait_for(lambda: desk.is_true("manual", "ConfigDrift"))
        drift = desk.condition("manual", "ConfigDrift")
        assert drift["reason"] == "SpecChanged"
        assert "spec.risk.maxDailyLoss" in drift["message"] and "spec.haltPolicy" in drift["message"]
        assert "restartNonce" in drift["message"]
        await operator.processed(emulator, "manual")
        assert _pod_hash(desk, "manual") == running_hash and len(kubelet.started_pods) == 1
        assert desk.child("ConfigMap", "manual")["data"] == config  # the pod's configuration is untouched
        assert desk.phase("manual") == "Running"
        await wait_for(lambda: "ConfigDrift" in desk.events("manual"))

        await desk.edit_spec("manual", {"restartNonce": "apply-1"})
        await wait_for(
            lambda: (
                desk.phase("manual") == "Running"
                and _pod_hash(desk, "manual") not in (None, running_hash)
                and not desk.is_true("manual", "ConfigDrift")
            )
        )
        assert '"maxDailyLoss": 900' in desk.child("ConfigMap", "manual")["data"]["runtime.json"]
        assert asked_at_most_one_pod(emulator, "manual")

        # Halting and resuming applies what is pending, too.
        applied = _pod_hash(desk, "manual")
        await desk.edit_spec("manual", {"risk": {"maxDailyLoss": 800}})
        await wait_for(lambda: desk.is_true("manual", "ConfigDrift"))
        await desk.scale("manual", 0)
        await wait_for(lambda: desk.phase("manual") == "Halted" and not desk.is_true("manual", "ConfigDrift"))
        await desk.scale("manual", 1)
        await wait_for(lambda: desk.phase("manual") == "Running" and _pod_hash(desk, "manual") not in (None, applied))
        assert '"maxDailyLoss": 800' in desk.child("ConfigMap", "manual")["data"]["runtime.json"]


async def test_a_rogue_pod_of_a_halted_strategy_is_deleted_and_said_so(emulator, desk: Desk, kubelet: Kubelet):
    async with running_operator(emulator, fast_settings()):
        await desk.apply(example("halted"))
        await wait_for(lambda: desk.phase("ema-cross-halted") == "Halted")
        emulator.create_object(
            "v1/pods",
            {
                "metadata": {"name": "copied-by-hand", "labels": {"livestrat.io/strategy": "ema-cross-halted"}},
                "spec": {"containers": [{"name": "strategy", "image": "livestrat-runtime:test"}]},
            },
            namespace="default",
        )
        await wait_for(lambda: desk.pods("ema-cross-halted") == [])
        await wait_for(lambda: "RoguePodDeleted" in desk.events("ema-cross-halted"))
        assert "copied-by-hand" in desk.event_messages("ema-cross-halted", "RoguePodDeleted")[0]
        await wait_for(lambda: desk.phase("ema-cross-halted") == "Halted")  # Halting while it still ran


async def test_a_risk_halt_stops_the_pod_until_the_breach_is_acknowledged(emulator, desk: Desk, kubelet: Kubelet):
    breach = DAILY_LOSS_BREACH
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Running")
        desk.push_runtime_status(NAME, risk=breach)
        await wait_for(lambda: desk.phase(NAME) == "RiskHalted")
        assert desk.pods(NAME) == [] and desk.statefulset(NAME)["spec"]["replicas"] == 0
        assert desk.get(NAME)["spec"]["replicas"] == 1  # ScaleToZero holds the pod at 0; the spec stays
        risk = desk.condition(NAME, "RiskHalted")
        assert risk["status"] == "True" and risk["reason"] == "RiskLimitBreached"
        assert (
            "maxDailyLoss" in risk["message"]
            and "livestrat.io/risk-acknowledged=2026-03-02T10:15:00.123Z" in risk["message"]
        )
        await wait_for(lambda: "RiskHalted" in desk.events(NAME))

        await desk.scale(NAME, 0)  # halting and resuming is not an acknowledgement
        await desk.scale(NAME, 1)
        await desk.annotate(NAME, "livestrat.io/risk-acknowledged", "2026-03-01T00:00:00Z")  # not this breach
        await operator.processed(emulator, NAME)
        assert desk.phase(NAME) == "RiskHalted" and desk.pods(NAME) == []
        # the runtime's status is not what holds it: a pod (or anything with its token) reporting Active does not
        desk.push_runtime_status(NAME, risk={"state": "Active"})
        await operator.processed(emulator, NAME)
        assert desk.phase(NAME) == "RiskHalted" and desk.pods(NAME) == []
        assert desk.statefulset(NAME)["spec"]["replicas"] == 0
        assert desk.get(NAME)["metadata"]["annotations"]["livestrat.io/risk-halted-at"] == breach["breachedAt"]

        await desk.annotate(NAME, "livestrat.io/risk-acknowledged", "2026-03-02T10:15:00.123Z")
        await wait_for(lambda: desk.phase(NAME) == "Running")
        risk = desk.condition(NAME, "RiskHalted")
        assert risk["status"] == "False" and "2026-03-02T10:15:00.123Z was acknowledged" in risk["message"]
        await wait_for(lambda: "RiskAcknowledged" in desk.events(NAME))
        desk.push_runtime_status(NAME, risk={"state": "Active"})  # the new runtime starts with the ack
        await wait_for(lambda: desk.condition(NAME, "RiskHalted").get("reason") == "WithinLimits")

        desk.push_runtime_status(NAME, risk={**breach, "breachedAt": "2026-03-02T11:00:00Z"})  # a new breach
        await wait_for(lambda: desk.phase(NAME) == "RiskHalted")  # the old acknowledgement does not cover it


async def test_a_risk_halt_pushed_by_the_pod_of_an_earlier_object_of_the_name_halts_nothing_and_is_removed(
    emulator, desk: Desk, kubelet: Kubelet
):
    """A LiveStrategy deleted with its finalizer taken off by hand and applied again at once: the old pod still runs
    (the garbage collector takes its time) and pushes into the LiveStrategy of its name, which is the new object.
    Its risk halt is not the new strategy's: the operator acts on nothing it pushed and removes it."""
    breach = DAILY_LOSS_BREACH
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Running")
        uid = desk.get(NAME)["metadata"]["uid"]
        desk.push_runtime_status(NAME, fills=3, total_pnl="12.50 USDT", strategy_uid=uid)
        await operator.processed(emulator, NAME)
        assert desk.get(NAME)["status"]["trading"]["fills"] == 3  # its own pod's: kept

        desk.push_runtime_status(NAME, fills=40, total_pnl="-2100.00 USDT", risk=breach, strategy_uid="an-earlier-uid")
        await wait_for(lambda: "trading" not in desk.get(NAME)["status"] and "risk" not in desk.get(NAME)["status"])
        await operator.processed(emulator, NAME)
        assert desk.phase(NAME) == "Running" and desk.statefulset(NAME)["spec"]["replicas"] == 1
        assert desk.condition(NAME, "RiskHalted").get("status") != "True"
        assert "livestrat.io/risk-halted-at" not in (desk.get(NAME)["metadata"].get("annotations") or {})
        assert "RiskHalted" not in desk.events(NAME) and "StatusFromEarlierObject" in desk.events(NAME)

        # the control: the same breach from its own pod halts it
        desk.push_runtime_status(NAME, risk=breach, strategy_uid=uid)
        await wait_for(lambda: desk.phase(NAME) == "RiskHalted")


async def test_halt_in_place_keeps_the_pod_but_reports_the_risk_halt_and_holds_a_pod_that_forgot_it(
    emulator, desk: Desk, kubelet: Kubelet
):
    strategy = paper("in-place")  # paper, no PostgreSQL: its ledger (and the halt in it) lives on the pod's scratch
    strategy["spec"]["risk"]["onBreach"] = "HaltInPlace"
    at = "2026-03-02T10:15:00Z"
    async with running_operator(emulator, fast_settings()):
        await desk.apply(strategy)
        await wait_for(lambda: desk.phase("in-place") == "Running")
        desk.push_runtime_status("in-place", risk={"state": "Halted", "breachedLimit": "maxPosition", "breachedAt": at})
        await wait_for(lambda: desk.phase("in-place") == "RiskHalted")
        assert len(desk.pods("in-place")) == 1 and desk.statefulset("in-place")["spec"]["replicas"] == 1
        assert not desk.is_true("in-place", "Trading")

        # The pod is replaced (a node lost): the new runtime has a fresh ledger and reports Active.
        emulator.delete_object("v1/pods", "in-place-0", namespace="default")
        await wait_for(lambda: any(not p["metadata"].get("deletionTimestamp") for p in desk.pods("in-place")))
        desk.push_runtime_status("in-place", risk={"state": "Active"})
        await wait_for(lambda: desk.statefulset("in-place")["spec"]["replicas"] == 0, timeout=30)
        await wait_for(lambda: desk.pods("in-place") == [] and desk.phase("in-place") == "RiskHalted", timeout=30)
        # The pod is stopped first; the condition's sentence follows in the status the operator writes next.
        await wait_for(lambda: "no longer reports the halt" in desk.condition("in-place", "RiskHalted")["message"])

        # Acknowledged: it resumes, with the acknowledgement in its configuration.
        await desk.annotate("in-place", "livestrat.io/risk-acknowledged", at)
        await wait_for(lambda: desk.phase("in-place") == "Running", timeout=30)
        assert f'"riskAcknowledgement": "{at}"' in desk.child("ConfigMap", "in-place")["data"]["runtime.json"]
        await wait_for(lambda: "RiskAcknowledged" in desk.events("in-place"))


async def test_a_silent_runtime_turns_the_strategy_stale(emulator, desk: Desk, kubelet: Kubelet):
    async with running_operator(emulator, fast_settings(stale_after_seconds=5)):
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Running")
        desk.push_runtime_status(NAME)
        await wait_for(lambda: desk.is_true(NAME, "Trading"))
        await wait_for(lambda: desk.is_true(NAME, "Stale"), timeout=30)
        stale = desk.condition(NAME, "Stale")
        assert stale["reason"] == "HeartbeatTooOld"
        assert desk.condition(NAME, "Trading")["status"] == "Unknown"
        await wait_for(lambda: "Stale" in desk.events(NAME))
        desk.push_runtime_status(NAME)
        await wait_for(lambda: not desk.is_true(NAME, "Stale") and desk.is_true(NAME, "Trading"))
        await wait_for(lambda: "HeartbeatResumed" in desk.events(NAME))


async def test_a_pod_that_never_gets_ready_fails_the_start_with_a_reason(emulator, desk: Desk, kube_env, tmp_path):
    async with (
        Kubelet(emulator, workdir=tmp_path, ready_delay=3600),
        running_operator(emulator, fast_settings(start_timeout_seconds=2)),
    ):
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Starting")
        await wait_for(lambda: desk.phase(NAME) == "Failed", timeout=30)
        ready = desk.condition(NAME, "Ready")
        assert ready["reason"] == "StartTimeout" and f"{NAME}-0" in ready["message"]
        await wait_for(lambda: "StartTimeout" in desk.events(NAME))


async def test_deleting_waits_for_the_pod_to_exit_but_not_forever(emulator, desk: Desk, kubelet: Kubelet):
    async with running_operator(emulator, fast_settings(halt_timeout_margin_seconds=1)):
        await desk.apply(example("halted"))
        await wait_for(lambda: desk.phase("ema-cross-halted") == "Halted")
        stuck_pod(emulator, "ema-cross-halted")
        await wait_for(lambda: all(p["metadata"].get("deletionTimestamp") for p in desk.pods("ema-cross-halted")))
        # The spec's grace period is 60 s; shorten it in the stored object (bypassing the schema's minimum).
        emulator.patch_object(
            "livestrat.io/v1alpha1/livestrategies",
            "ema-cross-halted",
            {"spec": {"pod": {"terminationGracePeriodSeconds": 1}}},
            namespace="default",
        )
        await desk.delete("ema-cross-halted")
        assert desk.get("ema-cross-halted") is None
        await wait_for(lambda: "DeletionTimeout" in desk.events("ema-cross-halted"))


async def test_of_two_operator_replicas_only_one_acts(emulator, desk: Desk, kubelet: Kubelet):
    emulator.add_crd(peering_crd(clusterwide=True))
    emulator.create_object("kopf.dev/v1/clusterkopfpeerings", {"metadata": {"name": "livestrat"}})
    high = OperatorThread(fast_settings(peering="livestrat", priority=100), name="high")
    low = OperatorThread(fast_settings(peering="livestrat", priority=50), name="low")
    async with low:
        async with high:
            peers = lambda: emulator.read_object("kopf.dev/v1/clusterkopfpeerings", "livestrat").get("status") or {}  # noqa: E731
            await wait_for(lambda: len(peers()) == 2)
            await desk.apply(example("paper-ema-cross"))
            await wait_for(lambda: desk.phase(NAME) == "Running")
            await high.processed(emulator, NAME)
            assert high.context.reconciler.phases and not low.context.reconciler.phases
            # the standby reads nothing but the peering object (whether it acts), and says it stands by
            requests = [s for s in _series(low.context.metrics, "livestrat_operator_api_requests_total")]
            assert {s.labels["resource"] for s in requests if s.value} <= {"clusterkopfpeerings"}
            await wait_for(lambda: low.metric("livestrat_operator_paused", reason="HigherPriorityPeer") == 1)
            assert low.metric("livestrat_operator_acting") == 0 and high.metric("livestrat_operator_acting") == 1
        # the active replica has left: the other one takes over
        await desk.scale(NAME, 0)
        await wait_for(lambda: desk.phase(NAME) == "Halted", timeout=15)
        assert low.context.reconciler.phases


def _operator_reads(emulator, since: int, path: str) -> list:
    return [
        r
        for r in list(emulator)[since:]
        if r.method.value == "GET" and r.url.path.endswith(path) and is_operator_request(r)
    ]


def stuck_pod(emulator, strategy: str) -> None:
    """A pod of the strategy whose node is gone: it never finishes terminating (its finalizer is never removed)."""
    emulator.create_object(
        "v1/pods",
        {
            "metadata": {
                "name": "stuck",
                "labels": {"livestrat.io/strategy": strategy},
                "finalizers": ["tests.livestrat.io/unreachable-node"],
            },
            "spec": {"containers": [{"name": "strategy", "image": "x"}], "terminationGracePeriodSeconds": 1},
        },
        namespace="default",
    )


def _series(metrics, name: str) -> list:
    return [s for family in metrics.registry.collect() for s in family.samples if s.name == name]


async def test_the_operator_serves_liveness_and_metrics(emulator, desk: Desk, kubelet: Kubelet):
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(example("paper-ema-cross"))
        await desk.apply(example("halted"))
        await wait_for(lambda: desk.phase(NAME) == "Running" and desk.phase("ema-cross-halted") == "Halted")
        async with aiohttp.ClientSession() as session:
            async with session.get(operator.liveness_url) as response:
                assert response.status == 200 and (await response.json())["strategies"] == 2
            async with session.get(operator.metrics_url) as response:
                text = await response.text()
        assert 'livestrat_operator_strategies{phase="Running"} 1.0' in text
        assert 'livestrat_operator_strategies{phase="Halted"} 1.0' in text
        assert 'livestrat_operator_reconciles_total{result="ok"}' in text
        assert 'livestrat_operator_api_requests_total{code="201",resource="statefulsets",verb="create"} 2.0' in text
        assert "livestrat_operator_reconcile_duration_seconds_bucket" in text


async def test_an_operator_for_one_namespace_leaves_the_others_alone(emulator, desk: Desk, kubelet: Kubelet):
    emulator.add_namespace("mine")
    emulator.add_namespace("theirs")
    mine, theirs = desk.in_namespace("mine"), desk.in_namespace("theirs")
    since = len(emulator)
    async with running_operator(emulator, fast_settings(), namespaces=["mine"]) as operator:
        await theirs.apply(paper("b"))
        await mine.apply(paper("a"))
        await wait_for(lambda: mine.phase("a") == "Running")
        await operator.processed(emulator, "a", namespace="mine")
        assert theirs.status("b") == {} and theirs.statefulset("b") is None
        assert ("theirs", "b") not in operator.context.reconciler.memories
        # it never even looked: every request it made was about its own namespace or cluster-wide kinds
        assert not [r for r in list(emulator)[since:] if is_operator_request(r) and "/namespaces/theirs/" in r.url.path]


async def test_everything_the_operator_sends_is_valid_kubernetes(emulator, desk: Desk, kubelet: Kubelet):
    for venue_secret in ("binance-testnet", "deribit-testnet"):
        emulator.create_object(
            "v1/secrets",
            {"metadata": {"name": venue_secret}, "data": {"api-key": "eA==", "api-secret": "eA=="}},
            namespace="default",
        )
    emulator.create_object(
        "v1/secrets", {"metadata": {"name": "ledger-dsn"}, "data": {"dsn": "eA=="}}, namespace="default"
    )
    names = {
        "paper-ema-cross": "Running",
        "gcs-fuse-catalog": "Running",
        "halted": "Halted",
        "live-binance-testnet": "Running",
        "live-deribit-testnet": "Running",
    }
    async with running_operator(emulator, fast_settings(live_namespaces=["default"])):
        for name in names:
            await desk.apply(example(name))
        expected = {example(n)["metadata"]["name"]: phase for n, phase in names.items()}
        await wait_for(lambda: all(desk.phase(n) == p for n, p in expected.items()))
        await wait_for(lambda: all("Running" in desk.events(n) or "Halted" in desk.events(n) for n in expected))
    sent = []
    for request in operator_writes(emulator):
        if request.method.value == "POST" and isinstance(request.data, dict):
            body = dict(request.data)
            if request.url.path.endswith("/events"):  # kopf posts events without apiVersion/kind
                body = {"apiVersion": "v1", "kind": "Event", **body}
            sent.append(body)
    assert {"ConfigMap", "ServiceAccount", "Role", "RoleBinding", "StatefulSet", "Event"} <= {b["kind"] for b in sent}
    for body in sent:
        assert manifest_errors(body, strict=True) == [], (body["kind"], manifest_errors(body))
        if body["kind"] == "StatefulSet":
            assert check_manifest(body, level="restricted") == []
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    for name in expected:
        jsonschema.Draft7Validator(schema).validate(desk.status(name))


async def test_a_name_taken_by_someone_elses_object_is_reported_not_taken_over(emulator, desk: Desk, kubelet: Kubelet):
    emulator.create_object(
        "v1/configmaps", {"metadata": {"name": NAME}, "data": {"theirs": "yes"}}, namespace="default"
    )
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Invalid" and "NameConflict" in desk.events(NAME))
        assert desk.condition(NAME, "InvalidSpec")["reason"] == "NameConflict"
        assert desk.child("ConfigMap", NAME)["data"] == {"theirs": "yes"} and desk.pods(NAME) == []
        await operator.processed(emulator, NAME)
        since = len(emulator)
        # it looks at the foreign object again (every 5 s): reported once, not retried in a loop
        await wait_for(lambda: _operator_reads(emulator, since, f"/configmaps/{NAME}"), timeout=30)
        await operator.processed(emulator, NAME)
        assert operator_writes(emulator, since) == []
        assert desk.events(NAME).count("NameConflict") == 1
        emulator.delete_object("v1/configmaps", NAME, namespace="default")
        await wait_for(lambda: desk.phase(NAME) == "Running", timeout=15)  # it looks again by itself


async def test_a_running_strategy_whose_spec_becomes_unreadable_keeps_running_until_it_is_halted(
    emulator, desk: Desk, kubelet: Kubelet
):
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Running")
        applied = desk.statefulset(NAME)["spec"]
        # Only possible past the API server's validation (an old CRD, a bug). An edit the operator cannot read
        # stops nothing and changes nothing that runs (decision 11); it is told, once.
        emulator.patch_object(
            "livestrat.io/v1alpha1/livestrategies", NAME, {"spec": {"mode": "yolo"}}, namespace="default"
        )
        await wait_for(lambda: desk.is_true(NAME, "InvalidSpec"))
        invalid = desk.condition(NAME, "InvalidSpec")
        assert invalid["reason"] == "SpecInvalid" and "spec.mode" in invalid["message"]
        assert "The running pod keeps the configuration it was started with" in invalid["message"]
        await wait_for(lambda: "SpecInvalid" in desk.events(NAME))
        await operator.processed(emulator, NAME)
        assert desk.phase(NAME) == "Running" and desk.pods(NAME) and desk.statefulset(NAME)["spec"] == applied
        assert desk.events(NAME).count("SpecInvalid") == 1

        # Halts still act, whatever else in the spec does not read.
        await desk.edit_spec(NAME, {"replicas": 0})
        await wait_for(lambda: desk.statefulset(NAME)["spec"]["replicas"] == 0 and not desk.pods(NAME))
        await wait_for(lambda: desk.phase(NAME) == "Invalid")
        # Nothing starts from a spec that does not read; once it reads again, it runs.
        await desk.edit_spec(NAME, {"replicas": 1})
        await operator.processed(emulator, NAME)
        assert desk.statefulset(NAME)["spec"]["replicas"] == 0 and desk.phase(NAME) == "Invalid"
        assert "No pod runs until it can be read" in desk.condition(NAME, "InvalidSpec")["message"]
        await desk.edit_spec(NAME, {"mode": "paper"})
        await wait_for(lambda: desk.phase(NAME) == "Running")
        assert not desk.is_true(NAME, "InvalidSpec")


async def test_an_edit_the_operator_refuses_leaves_a_running_strategy_on_its_last_applied_spec(
    emulator, desk: Desk, kubelet: Kubelet
):
    # updatePolicy Auto: a change it accepts restarts the pod; one it refuses stops nothing (decision 11).
    async with running_operator(emulator, fast_settings(allowed_image_prefixes=["livestrat/"])) as operator:
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Running")
        [pod] = desk.pods(NAME)
        applied = desk.statefulset(NAME)["spec"]
        configuration = desk.child("ConfigMap", NAME)["data"]
        for edit, reason in (
            ({"pod": {"image": "elsewhere.example/runtime:1"}}, "ImageNotAllowed"),
            ({"pod": {"image": None}, "ledger": {"dsnSecret": {"name": "ledger-dsn", "key": "dsn"}}}, "SecretNotFound"),
        ):
            await desk.edit_spec(NAME, edit)
            await wait_for(lambda reason=reason: desk.condition(NAME, "InvalidSpec").get("reason") == reason)
            await operator.processed(emulator, NAME)
            invalid = desk.condition(NAME, "InvalidSpec")
            assert "The running pod keeps the configuration it was started with" in invalid["message"], invalid
            assert desk.phase(NAME) == "Running" and desk.statefulset(NAME)["spec"] == applied
            assert desk.child("ConfigMap", NAME)["data"] == configuration
            assert [p["metadata"]["uid"] for p in desk.pods(NAME)] == [pod["metadata"]["uid"]]
            await wait_for(lambda reason=reason: reason in desk.events(NAME))

        # Halts still act; nothing starts again from the refused spec; once it can run, it does.
        await desk.scale(NAME, 0)
        await wait_for(lambda: desk.statefulset(NAME)["spec"]["replicas"] == 0 and not desk.pods(NAME))
        await desk.scale(NAME, 1)
        await operator.processed(emulator, NAME)
        assert desk.statefulset(NAME)["spec"]["replicas"] == 0 and desk.phase(NAME) == "Pending"
        await desk.edit_spec(NAME, {"ledger": None})
        await wait_for(lambda: desk.phase(NAME) == "Running")
        assert not desk.is_true(NAME, "InvalidSpec")


async def test_a_pending_change_needing_a_missing_secret_leaves_a_manual_strategy_running(
    emulator, desk: Desk, kubelet: Kubelet
):
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(paper("manual", updatePolicy="Manual"))
        await wait_for(lambda: desk.phase("manual") == "Running")
        [pod] = desk.pods("manual")

        # staged, not applied: it names a Secret that does not exist
        await desk.edit_spec("manual", {"ledger": {"dsnSecret": {"name": "ledger-dsn", "key": "dsn"}}})
        await wait_for(lambda: desk.condition("manual", "InvalidSpec").get("reason") == "SecretNotFound", timeout=30)
        await operator.processed(emulator, "manual")
        assert desk.phase("manual") == "Running" and desk.statefulset("manual")["spec"]["replicas"] == 1
        assert [p["metadata"]["uid"] for p in desk.pods("manual")] == [pod["metadata"]["uid"]]
        assert "pending configuration" in desk.condition("manual", "InvalidSpec")["message"]
        drift = desk.condition("manual", "ConfigDrift")
        assert drift["status"] == "True" and "ledger-dsn" in drift["message"], drift
        await wait_for(lambda: "SecretNotFound" in desk.events("manual"))

        # the Secret is created: the report clears, nothing restarts until the user says so
        emulator.create_object(
            "v1/secrets", {"metadata": {"name": "ledger-dsn"}, "data": {"dsn": "eA=="}}, namespace="default"
        )
        await wait_for(lambda: desk.condition("manual", "InvalidSpec").get("status") == "False", timeout=30)
        assert [p["metadata"]["uid"] for p in desk.pods("manual")] == [pod["metadata"]["uid"]]
        await desk.edit_spec("manual", {"restartNonce": "apply-it"})
        await wait_for(
            lambda: desk.phase("manual") == "Running" and not desk.is_true("manual", "ConfigDrift"), timeout=30
        )
        env = desk.statefulset("manual")["spec"]["template"]["spec"]["containers"][0]["env"]
        assert any(e["name"] == "LIVESTRAT_LEDGER_DSN" for e in env)


async def test_a_secret_rotated_while_a_change_is_pending_halts_nothing(emulator, desk: Desk, kubelet: Kubelet):
    for secret, keys in (("ledger-dsn", ("dsn",)), ("venue-keys", ("api-key", "api-secret"))):
        emulator.create_object(
            "v1/secrets", {"metadata": {"name": secret}, "data": dict.fromkeys(keys, "eA==")}, namespace="default"
        )
    strategy = paper("rotating", updatePolicy="Manual", ledger={"dsnSecret": {"name": "ledger-dsn", "key": "dsn"}})
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(strategy)
        await wait_for(lambda: desk.phase("rotating") == "Running")
        await desk.edit_spec("rotating", {"risk": {"maxDailyLoss": 900}})
        await wait_for(lambda: desk.is_true("rotating", "ConfigDrift"))
        # the ledger Secret is being rotated (deleted, to be recreated) when another change is staged
        emulator.delete_object("v1/secrets", "ledger-dsn", namespace="default")
        venue = {"credentialsSecret": {"name": "venue-keys"}}
        await desk.edit_spec("rotating", {"venue": {**strategy["spec"]["venue"], **venue}})
        await wait_for(lambda: desk.condition("rotating", "InvalidSpec").get("reason") == "SecretNotFound", timeout=30)
        await operator.processed(emulator, "rotating")
        assert desk.phase("rotating") == "Running" and len(desk.pods("rotating")) == 1
        assert desk.statefulset("rotating")["spec"]["replicas"] == 1 and len(kubelet.started_pods) == 1


async def test_a_pod_that_loses_its_readiness_is_reported_so_not_as_a_failed_start(
    emulator, desk: Desk, kube_env, tmp_path
):
    clock = ShiftedClock()  # the operator's and the node's
    async with (
        Kubelet(emulator, workdir=tmp_path, kubeconfig=kube_env, clock=clock) as kubelet,
        running_operator(emulator, fast_settings(start_timeout_seconds=2), clock=clock) as operator,
    ):
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Running")
        await operator.processed(emulator, NAME)
        clock.advance(2.5)  # ready for longer than the start timeout
        kubelet.set_ready("default", f"{NAME}-0", False)
        await wait_for(lambda: desk.condition(NAME, "Ready").get("reason") == "PodNotReady", timeout=30)
        assert desk.phase(NAME) == "Starting"
        await wait_for(lambda: "PodNotReady" in desk.events(NAME))
        # not ready for the whole start timeout, counted from when it lost readiness
        await wait_for(lambda: desk.phase(NAME) == "Failed", timeout=30)
        ready = desk.condition(NAME, "Ready")
        assert ready["reason"] == "PodNotReady" and "has not been ready since" in ready["message"]
        assert "StartTimeout" not in desk.events(NAME)
        kubelet.set_ready("default", f"{NAME}-0", True)
        await wait_for(lambda: desk.phase(NAME) == "Running", timeout=30)


async def test_a_deletion_seen_after_a_long_operator_outage_still_waits_for_the_pod(
    emulator, desk: Desk, kubelet: Kubelet
):
    async with running_operator(emulator, fast_settings(halt_timeout_margin_seconds=1)):
        await desk.apply(example("halted"))
        await wait_for(lambda: desk.phase("ema-cross-halted") == "Halted")
    stuck_pod(emulator, "ema-cross-halted")
    # The spec's grace period is 60 s; shorten it in the stored object (bypassing the schema's minimum).
    emulator.patch_object(
        LIVESTRATEGIES, "ema-cross-halted", {"spec": {"pod": {"terminationGracePeriodSeconds": 1}}}, namespace="default"
    )
    await desk.kubectl("delete", "livestrategy/ema-cross-halted", "--wait=false")
    clock = ShiftedClock()
    clock.advance(3)  # the operator is down longer than the bound (1 s grace + 1 s margin)

    async with running_operator(emulator, fast_settings(halt_timeout_margin_seconds=1), clock=clock):
        await wait_for(lambda: "DeletionTimeout" in desk.events("ema-cross-halted"), timeout=30)
        assert desk.get("ema-cross-halted") is None or desk.get("ema-cross-halted")["metadata"].get("deletionTimestamp")
    reasons = desk.events("ema-cross-halted")
    # it halted first and waited its bound, from when it saw the deletion, before letting go
    assert reasons.index("Deleting") < reasons.index("DeletionTimeout"), reasons
    deleting, timeout = (_event_time(emulator, r) for r in ("Deleting", "DeletionTimeout"))
    assert (timeout - deleting).total_seconds() >= 1.5, (deleting, timeout)


def _event_time(emulator, reason: str):
    from datetime import datetime

    [event] = [e for e in emulator.list_objects("v1/events", "default") if e.get("reason") == reason]
    stamp = event.get("lastTimestamp") or event.get("eventTime") or event["metadata"]["creationTimestamp"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


async def test_a_new_strategy_whose_pod_does_not_come_still_shows_its_first_status_at_once(emulator, desk: Desk):
    """The first status of a new strategy waits for its pod (one write less), but not longer than a second: with no
    StatefulSet controller here, no pod ever comes, and the status says what it waits for."""
    async with running_operator(emulator, fast_settings()) as operator:
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.statefulset(NAME) is not None)
        await wait_for(lambda: desk.phase(NAME) == "Starting", timeout=10)
        assert "waiting for the StatefulSet to create pod ema-cross-btc-0" in desk.status(NAME)["message"]
        await operator.processed(emulator, NAME)
        assert desk.pods(NAME) == []
