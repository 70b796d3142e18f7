"""The whole story with a real ``livestrat runtime`` in the pod: apply, trade, halt, resume, delete.

The operator is the real kopf operator; the user is the real ``kubectl``; the pod's process is
the real runtime (a NautilusTrader node replaying the example's sample data), started by the
stand-in kubelet from the ConfigMap the operator rendered and reporting into the LiveStrategy's
status over HTTP, as it does in a cluster.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from livestrat.api.status import LiveStrategyStatus
from livestrat.kube_emulator.emulator import ADMIN_HEADERS
from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk, example, paper
from tests.support.kube import LIVESTRATEGIES, wait_for
from tests.support.operator import fast_settings, operator_writes, running_operator
from tests.support.runtime_process import ROOT
from tests.support.scripted import read_events, scripted_strategy
from tests.support.watch_gap import WatchGap

NAME = "ema-cross-btc"
pytestmark = pytest.mark.slow


def trading(desk: Desk) -> dict:
    return desk.status(NAME).get("trading") or {}


async def test_apply_the_paper_example_it_trades_halts_resumes_and_is_deleted(emulator, desk: Desk, kube_env, tmp_path):
    async with (
        Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kube_env, runtime=True) as kubelet,
        running_operator(emulator, fast_settings(stale_after_seconds=30)),
    ):
        await desk.apply(example("paper-ema-cross"))  # kubectl apply -f examples/paper-ema-cross.yaml
        await wait_for(lambda: desk.statefulset(NAME) is not None)
        for kind in ("ConfigMap", "ServiceAccount", "Role", "RoleBinding"):
            assert desk.child(kind, NAME) is not None, kind

        # The runtime starts, replays the sample, trades, and pushes fills and PnL into the status.
        await wait_for(lambda: desk.phase(NAME) == "Running", timeout=90)
        await wait_for(lambda: trading(desk).get("fills", 0) > 0 and trading(desk).get("totalPnl"), timeout=90)
        await wait_for(lambda: desk.is_true(NAME, "Trading"), timeout=30)
        assert desk.is_true(NAME, "Ready") and not desk.is_true(NAME, "Stale")
        status = desk.status(NAME)
        LiveStrategyStatus.model_validate(status)
        assert status["trading"]["lastFill"]["instrument"] == "BTCUSDT.BINANCE"
        assert status["risk"]["state"] == "Active"
        assert status["podName"] == f"{NAME}-0" and status["replicas"] == 1
        first_pod = kubelet.containers[("default", f"{NAME}-0")]
        # The runtime pushed all that as its pod's own ServiceAccount (the token the kubelet mounted), not as admin.
        pushes = [r for r in emulator.writes() if r.url.path.endswith(f"/livestrategies/{NAME}/status")]
        pod_users = {
            emulator.tokens.authenticate(r.headers["Authorization"]).username
            for r in pushes
            if r.headers.get("Authorization") != ADMIN_HEADERS["Authorization"]
        }
        assert pod_users == {f"system:serviceaccount:default:{NAME}"}

        # kubectl scale --replicas=0: the runtime halts (SIGTERM), exits cleanly, the pod is gone.
        await desk.scale(NAME, 0)
        await wait_for(lambda: desk.phase(NAME) == "Halted", timeout=60)
        assert desk.statefulset(NAME)["spec"]["replicas"] == 0 and desk.pods(NAME) == []
        assert first_pod.history == ["exit 0"]
        assert trading(desk)["nodeState"] == "Stopped" and trading(desk)["openOrders"] == 0
        assert desk.is_true(NAME, "Halted") and not desk.is_true(NAME, "Trading")

        # kubectl scale --replicas=1: running and trading again, one pod at a time.
        await desk.scale(NAME, 1)
        await wait_for(
            lambda: desk.phase(NAME) == "Running" and trading(desk).get("nodeState") == "Running", timeout=90
        )
        await wait_for(lambda: desk.is_true(NAME, "Trading"), timeout=30)
        assert kubelet.max_running == 1 and len(kubelet.started_pods) == 2
        second_pod = kubelet.containers[("default", f"{NAME}-0")]

        # A quiet moment: the replay is over, the runtime only sends its heartbeat; the operator writes nothing.
        await wait_for(lambda: trading(desk).get("replay", {}).get("finished"), timeout=90)
        since, heartbeat = len(emulator), trading(desk)["heartbeat"]
        await wait_for(lambda: trading(desk)["heartbeat"] != heartbeat, timeout=20)
        assert operator_writes(emulator, since) == []

        # kubectl delete: the finalizer halts the strategy first, then lets it go.
        await desk.delete(NAME)
        assert desk.get(NAME) is None
        assert second_pod.history == ["exit 0"]  # halted by SIGTERM before the LiveStrategy was released
        await wait_for(lambda: desk.statefulset(NAME) is None and desk.child("ConfigMap", NAME) is None)
        reasons = desk.events(NAME)
        for reason in ("Created", "Starting", "Running", "Halting", "Halted", "Deleting", "Deleted"):
            assert reason in reasons, reasons


async def test_a_strategy_class_that_does_not_exist_is_reported_by_the_runtime_and_shown_as_invalid(
    emulator, desk: Desk, kube_env, tmp_path
):
    broken = example("paper-ema-cross")
    broken["metadata"]["name"] = "no-such-class"
    broken["spec"]["strategy"]["strategyPath"] = "acme_strategies.momentum:Momentum"
    async with (
        Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kube_env, runtime=True),
        running_operator(emulator, fast_settings()),
    ):
        await desk.apply(broken)
        await wait_for(lambda: desk.phase("no-such-class") == "Invalid", timeout=60)
        invalid = desk.condition("no-such-class", "InvalidSpec")
        assert invalid["reason"] == "StrategyRejected"
        assert "acme_strategies" in invalid["message"], invalid["message"]
        await wait_for(lambda: "StrategyRejected" in desk.events("no-such-class"))


def halt_closes(events: Path) -> list[dict]:
    """The fills of the halt's closing orders, from the scripted strategy's event log."""
    rows = read_events(str(events)) if events.exists() else []
    return [e for e in rows if e.get("event") == "OrderFilled" and "LIVESTRAT_HALT" in e["tags"]]


def flatten_on_halt(name: str, events: Path) -> dict:
    """A paper strategy that buys at its second bar and holds, under haltPolicy: flatten (its events in ``events``)."""
    entry = {"bar": 2, "do": "market", "side": "BUY", "quantity": "0.02", "tag": "entry"}
    return paper(name, strategy=scripted_strategy(str(events), steps=[entry]), haltPolicy="flatten")


def runtime_pods(emulator, kube_env, tmp_path: Path) -> Kubelet:
    """A kubelet whose pods run the real runtime, with the scripted strategies importable."""
    return Kubelet(
        emulator, workdir=tmp_path / "pods", kubeconfig=kube_env, runtime=True, environ={"PYTHONPATH": str(ROOT)}
    )


def holding(desk: Desk, name: str) -> bool:
    """The strategy's runtime reports a position and a running node."""
    trading = desk.status(name).get("trading") or {}
    return bool(trading.get("positions")) and trading.get("nodeState") == "Running"


async def test_an_evicted_pod_keeps_its_position_and_only_a_halt_flattens(emulator, desk: Desk, kube_env, tmp_path):
    # haltPolicy: flatten, and a position open. A pod deleted by anyone but the operator's halt (an eviction,
    # a drain, Spot preemption) cancels its orders and leaves the position; scaling to 0 closes it.
    events = tmp_path / "events.jsonl"
    name = "flatten-on-halt"
    manifest = flatten_on_halt(name, events)

    pods = runtime_pods(emulator, kube_env, tmp_path)
    async with pods as kubelet, running_operator(emulator, fast_settings(stale_after_seconds=30)):
        await desk.apply(manifest)
        await wait_for(lambda: holding(desk, name), timeout=90)
        first = kubelet.containers[("default", f"{name}-0")]

        emulator.delete_object("v1/pods", f"{name}-0", namespace="default")  # evicted: not a halt
        await wait_for(lambda: first.history == ["exit 0"], timeout=60)
        assert halt_closes(events) == [], first.log.read_text() if first.log else ""
        assert "not a halt" in (first.log.read_text() if first.log else "")
        assert "halt" not in desk.status(name)  # the operator decided no halt: the StatefulSet starts a new pod

        await wait_for(lambda: len(kubelet.started_pods) == 2 and holding(desk, name), timeout=90)
        await desk.scale(name, 0)  # a halt: the operator records it, then the runtime flattens
        await wait_for(lambda: desk.phase(name) == "Halted", timeout=60)
        assert len(halt_closes(events)) == 1
        assert (desk.status(name).get("trading") or {}).get("positions") in (None, [])


async def test_a_strategy_deleted_while_the_operator_is_down_and_its_finalizer_taken_off_flattens(
    emulator, desk: Desk, kube_env, tmp_path
):
    # kubectl delete with the operator down hangs on the finalizer; the usual way out is to take the finalizer off.
    # The LiveStrategy is then gone at once, and the garbage collector stops the pod: a deletion, so a halt (the
    # runtime reads a 404 for its LiveStrategy), and haltPolicy: flatten closes the position no pod will take back.
    events = tmp_path / "events.jsonl"
    name = "deleted-by-hand"
    manifest = flatten_on_halt(name, events)

    pods = runtime_pods(emulator, kube_env, tmp_path)
    async with pods as kubelet:
        async with running_operator(emulator, fast_settings(stale_after_seconds=30)):
            await desk.apply(manifest)
            await wait_for(lambda: holding(desk, name), timeout=90)
        pod = kubelet.containers[("default", f"{name}-0")]
        # the operator is down: the deletion waits on its finalizer, until someone takes the finalizer off
        emulator.delete_object(LIVESTRATEGIES, name, namespace="default")
        assert desk.get(name) is not None
        emulator.patch_object(LIVESTRATEGIES, name, {"metadata": {"finalizers": None}}, namespace="default")
        assert desk.get(name) is None
        await wait_for(lambda: pod.history == ["exit 0"], timeout=60)
        log = pod.log.read_text() if pod.log else ""
        assert "the LiveStrategy no longer exists" in log, log
        assert len(halt_closes(events)) == 1, log


@pytest.mark.parametrize(
    ("pods_first", "identity", "operator_hears"),
    [
        pytest.param(True, "perStrategy", True, id="pods-first-perStrategy"),
        pytest.param(True, "shared", True, id="pods-first-shared"),
        pytest.param(False, "perStrategy", True, id="all-at-once-perStrategy"),
        pytest.param(False, "shared", True, id="all-at-once-shared"),
        pytest.param(True, "perStrategy", False, id="pods-first-operator-cut-off"),
    ],
)
async def test_deleting_the_namespace_of_a_strategy_holding_a_position_halts_it_and_the_namespace_goes(
    emulator, desk: Desk, kube_env, tmp_path, pods_first, identity, operator_hears
):
    # kubectl delete namespace: the namespace controller deletes the pod first and the rest once it is gone
    # (Kubernetes 1.33+: the LiveStrategy is not being deleted yet when the pod gets its SIGTERM, and no halt is
    # recorded: the pod reads its Namespace), or everything at once (1.32 and before: the pod's ServiceAccount with
    # it); nothing new may be created there. It is a deletion of the strategy, so a halt: haltPolicy: flatten closes
    # the position, and the namespace goes. "operator-cut-off": the operator's watch of namespaces is held until the
    # pod has its SIGTERM (the pod's decision does not wait on the operator).
    emulator.ordered_namespace_deletion = pods_first
    events = tmp_path / "events.jsonl"
    name = "doomed"
    team = desk.in_namespace("team")
    emulator.add_namespace("team")

    settings = fast_settings(stale_after_seconds=30, runtime_identity=identity)
    async with runtime_pods(emulator, kube_env, tmp_path) as kubelet, running_operator(emulator, settings) as operator:
        await team.apply(flatten_on_halt(name, events))
        await wait_for(lambda: holding(team, name), timeout=90)
        pod = kubelet.containers[("team", f"{name}-0")]

        gap = (
            contextlib.nullcontext() if operator_hears else WatchGap(emulator, user_agent="kopf/", plural="namespaces")
        )
        async with gap:
            await desk.kubectl("delete", "namespace", "team", "--wait=false")
            await wait_for(lambda: any(p["metadata"].get("deletionTimestamp") for p in team.pods(name)), timeout=30)
        await wait_for(lambda: emulator.read_object("v1/namespaces", "team") is None, timeout=90)
        log = pod.log.read_text() if pod.log else ""
        assert pod.history == ["exit 0"], log
        assert len(halt_closes(events)) == 1, log
        if operator_hears:
            assert operator.metric("livestrat_operator_reconcile_errors_total") == 0
