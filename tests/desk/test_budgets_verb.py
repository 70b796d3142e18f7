"""``kubectl livestrat budgets`` against what the API stores: a RiskBudget whose status the operator's decision wrote,
its members with their shares, read by a person holding only the chart's desk role (RBAC enforced by the emulator).
The plugin's own ``main()``, as kubectl runs it, with its output as the person reads it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from livestrat.desk import plugin, roles
from livestrat.kube_emulator.emulator import KubernetesEmulator
from tests.desk.test_actions import NS, user
from tests.desk.test_fleet import running
from tests.support.budgets import budget_body, member_report, member_share
from tests.support.desk import LIVESTRATEGIES, RISKBUDGETS, paper


@pytest.fixture
def desk_namespace(emulator: KubernetesEmulator) -> str:
    emulator.add_namespace(NS)
    return NS


def store_budget(emulator: KubernetesEmulator, body: dict) -> None:
    manifest = {k: body[k] for k in ("apiVersion", "kind", "spec")} | {"metadata": {"name": body["metadata"]["name"]}}
    emulator.create_object(RISKBUDGETS, manifest, namespace=NS)
    name = body["metadata"]["name"]
    emulator.patch_object(RISKBUDGETS, name, {"status": body["status"]}, namespace=NS, subresource="status")


def store_member(emulator: KubernetesEmulator, name: str, status: dict) -> None:
    emulator.create_object(LIVESTRATEGIES, paper(name), namespace=NS)
    emulator.patch_object(LIVESTRATEGIES, name, {"status": status}, namespace=NS, subresource="status")


async def run(capsys, kubeconfig: Path, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(plugin.main, ["--kubeconfig", str(kubeconfig), *argv])  # main runs its own loop
    out = capsys.readouterr()
    return code, out.out, out.err


async def test_a_desk_user_sees_budgets_their_members_and_each_members_share(
    emulator, desk_namespace, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "250")
    reports = [member_report("alpha", 6000, daily="-300.00 USDT", orders=1), member_report("beta", -3000)]
    body = budget_body("account-b", NS, reports, on_breach="HaltBreacher", maxGrossExposure=8000.0)
    store_budget(emulator, body)
    store_member(emulator, "alpha", running(totalPnl="-300.00 USDT") | {"budget": member_share(body, 0.5)})
    store_member(emulator, "beta", running(totalPnl="0.00 USDT") | {"budget": member_share(body, 0.5)})
    reader = user(emulator, tmp_path, "carol", roles.DESK)  # the desk role alone: get/list/watch riskbudgets

    code, out, err = await run(capsys, reader, "budgets")
    assert code == 0, err
    line = next(line for line in out.splitlines() if " account-b " in line)
    assert line.split()[:5] == [NS, "account-b", "2/2", "Breached", "HaltBreacher"]
    assert "9000.00 USDT" in line and "maxGrossExposure 9000.00 USDT/8000.00 USDT (112%)" in line
    at = emulator.read_object(RISKBUDGETS, "account-b", namespace=NS)["status"]["breach"]["breachedAt"]
    acknowledge = f"kubectl -n {NS} annotate riskbudget account-b livestrat.io/risk-acknowledged={at} --overwrite"
    assert acknowledge in out

    code, out, err = await run(capsys, reader, "budgets", "account-b")
    assert code == 0, err
    assert "HALTED" in next(line for line in out.splitlines() if line.startswith("alpha "))
    assert f"acknowledge: {acknowledge}" in out

    code, out, err = await run(capsys, reader, "budgets", "account-b", "-o", "json")
    document = json.loads(out)
    assert [(m["name"], m["dailyPnl"], m["openOrders"]) for m in document["memberRows"]] == [
        ("alpha", {"USDT": "-300.00"}, 1),
        ("beta", {"USDT": "0.00"}, 0),
    ]
    code, out, err = await run(capsys, reader, "budgets", "-o", "yaml")
    assert [b["name"] for b in yaml.safe_load(out)["budgets"]] == ["account-b"]

    code, out, err = await run(capsys, reader, "list")
    assert code == 0, err
    assert next(line for line in out.splitlines() if " alpha " in line).rstrip().endswith("account-b 50%")
    code, out, err = await run(capsys, reader, "status", "alpha")
    assert code == 0, err
    assert "budget: account-b, share 50%: maxGrossExposure 4000.00 USDT" in out

    code, out, err = await run(capsys, reader, "budgets", "nope")
    assert code == 1 and f"RiskBudget 'nope' in namespace '{NS}'" in err


async def test_without_the_desk_role_the_refusal_names_the_role_that_grants_budgets(
    emulator, desk_namespace, tmp_path, capsys
):
    stranger = user(emulator, tmp_path, "dave", roles.KILL_SWITCH)
    code, _, err = await run(capsys, stranger, "budgets")
    assert code == 1
    assert "you may not list riskbudgets" in err and "-desk" in err


async def test_all_namespaces_lists_every_budget(emulator, desk_namespace, kubeconfig_path, capsys):
    store_budget(emulator, budget_body("account-a", NS, [member_report("alpha", 100)], maxDailyLoss=500.0))
    emulator.add_namespace("desk-b")
    other = budget_body("account-b", "desk-b", [member_report("beta", 100)], maxDailyLoss=500.0)
    manifest = {k: other[k] for k in ("apiVersion", "kind", "spec")} | {"metadata": {"name": "account-b"}}
    emulator.create_object(RISKBUDGETS, manifest, namespace="desk-b")

    code, out, err = await run(capsys, kubeconfig_path, "budgets", "-A", "-o", "yaml")
    assert code == 0, err
    listed = [(b["namespace"], b["name"], b["state"]) for b in yaml.safe_load(out)["budgets"]]
    assert listed == [("desk-a", "account-a", "Active"), ("desk-b", "account-b", "Unknown")]  # no status yet
    code, out, err = await run(capsys, kubeconfig_path, "budgets", "-n", "desk-b")
    assert code == 0, err
    assert "account-b" in out and "account-a" not in out and "?/1" in out
