"""``kubectl livestrat`` verbs as a person types them, against what the API stores (no operator, no pods: the
statuses are written as the operator and the runtime write them). Real kubectl, the installed plugin."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import yaml

from livestrat.kube_emulator.emulator import KubernetesEmulator
from tests.support.desk import LIVESTRATEGIES, now_text, paper
from tests.support.desk_plugin import kubectl_livestrat, spawn

pytestmark = pytest.mark.slow  # runs kubectl and the plugin


def store(emulator: KubernetesEmulator, name: str, namespace: str = "default", **status) -> None:
    emulator.create_object(LIVESTRATEGIES, paper(name), namespace=namespace)
    patch_status(emulator, name, namespace, **status)


def patch_status(emulator: KubernetesEmulator, name: str, namespace: str = "default", **status) -> None:
    emulator.patch_object(LIVESTRATEGIES, name, {"status": status}, namespace=namespace, subresource="status")


def running(total: str, *, daily: str = "0.00 USDT") -> dict:
    return {
        "phase": "Running",
        "replicas": 1,
        "trading": {"heartbeat": now_text(), "fills": 4, "totalPnl": total, "realizedPnl": total},
        "risk": {"state": "Active", "dailyPnl": daily, "drawdown": "0.00 USDT"},
    }


async def test_top_sorts_by_risk_or_pnl_and_list_filters(emulator, kubeconfig_path):
    store(emulator, "calm", **running("500.00 USDT"))
    store(emulator, "near-limit", **running("-1800.00 USDT", daily="-1800.00 USDT"))  # 90% of maxDailyLoss 2000
    store(emulator, "halted", phase="Halted", replicas=0)

    by_risk = await kubectl_livestrat("top", kubeconfig=kubeconfig_path)
    assert by_risk.returncode == 0, by_risk.output
    order = [line.split()[1] for line in by_risk.stdout.splitlines()[1:4]]
    assert order[0] == "near-limit", by_risk.stdout
    assert "maxDailyLoss 1800.00/2000 USDT (90%)" in by_risk.stdout

    by_pnl = await kubectl_livestrat("top", "--sort", "pnl", "--limit", "2", kubeconfig=kubeconfig_path)
    assert [line.split()[1] for line in by_pnl.stdout.splitlines()[1:3]] == ["near-limit", "calm"]
    assert "2 strategies" in by_pnl.stdout

    only_running = await kubectl_livestrat("list", "--phase", "running", "-o", "yaml", kubeconfig=kubeconfig_path)
    document = yaml.safe_load(only_running.stdout)
    assert sorted(s["name"] for s in document["strategies"]) == ["calm", "near-limit"]
    assert document["totalsByCurrency"] == {"USDT": "-1300.00"}


async def test_top_watch_redraws_when_a_strategy_changes(emulator, kubeconfig_path):
    store(emulator, "ema", **running("10.00 USDT"))
    process = await spawn("top", "-w", kubeconfig=kubeconfig_path)
    assert process.stdout is not None
    try:

        async def until(text: str) -> str:
            seen = ""
            deadline = time.monotonic() + 30
            while text not in seen:
                line = await asyncio.wait_for(process.stdout.readline(), max(deadline - time.monotonic(), 0.1))
                assert line, f"top -w ended before showing {text!r}: {seen}"
                seen += line.decode()
            return seen

        await until("10.00 USDT")
        patch_status(emulator, "ema", trading={"totalPnl": "-25.50 USDT", "heartbeat": now_text()})
        frame = await until("-25.50 USDT")
        assert "ema" in frame
    finally:
        process.terminate()
        await process.wait()


async def test_status_as_yaml_has_conditions_events_and_the_pod(emulator, kubeconfig_path):
    store(emulator, "ema", **running("1.00 USDT"))
    patch_status(
        emulator,
        "ema",
        conditions=[
            {"type": "Ready", "status": "True", "reason": "Running", "message": "", "lastTransitionTime": now_text()}
        ],
    )
    emulator.create_object(
        "v1/events",
        {
            "metadata": {"name": "ema.1"},
            "involvedObject": {"kind": "LiveStrategy", "name": "ema", "namespace": "default"},
            "reason": "Running",
            "message": "the strategy runs",
            "type": "Normal",
            "lastTimestamp": now_text(),
        },
        namespace="default",
    )
    shown = await kubectl_livestrat("status", "ema", "-o", "yaml", kubeconfig=kubeconfig_path)
    assert shown.returncode == 0, shown.output
    document = yaml.safe_load(shown.stdout)
    assert document["conditions"][0]["reason"] == "Running"
    assert [e["message"] for e in document["events"]] == ["the strategy runs"]
    assert document["pod"] is None  # no pod was ever made here: the desk says so instead of failing
    assert document["totalPnl"] == {"USDT": "1.00"} and not document["stale"]
    as_json = json.loads((await kubectl_livestrat("status", "ema", "-o", "json", kubeconfig=kubeconfig_path)).stdout)
    assert as_json == document | {"heartbeatAgeSeconds": as_json["heartbeatAgeSeconds"]}


async def test_mistakes_are_told_in_words_without_a_traceback(emulator, kubeconfig_path, tmp_path):
    store(emulator, "ema", phase="Halted", replicas=0)
    missing = await kubectl_livestrat("status", "nope", kubeconfig=kubeconfig_path)
    assert missing.returncode == 1 and "LiveStrategy 'nope' in namespace 'default'" in missing.stderr
    no_pod = await kubectl_livestrat("logs", "ema", kubeconfig=kubeconfig_path)
    assert no_pod.returncode == 1 and "has no pod ema-0 (phase Halted)" in no_pod.stderr
    nowhere = await kubectl_livestrat("list", "--kubeconfig", str(tmp_path / "none"), kubeconfig=kubeconfig_path)
    assert nowhere.returncode == 1 and f"no kubeconfig at {tmp_path / 'none'}" in nowhere.stderr
    usage = await kubectl_livestrat("list", "--sort", "colour", kubeconfig=kubeconfig_path)
    assert usage.returncode == 2 and "invalid choice" in usage.stderr
    for ran in (missing, no_pod, nowhere, usage):
        assert "Traceback" not in ran.stderr
