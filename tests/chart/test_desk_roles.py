"""The chart's desk roles: exactly the rights ``kubectl livestrat`` needs, and each verb works with its role alone.

The ClusterRoles are rendered by the real helm from the chart, stored in the emulator (whose API authorizes every
request with RBAC), and bound in one namespace to a person's ServiceAccount; the person runs the real kubectl with the
installed ``kubectl-livestrat`` and a kubeconfig of their own. The operator is the real one; the pods are the stand-in
kubelet's imaginary containers (these stories are about rights, not trading: tests/desk/test_plugin_story.py trades).
"""

from __future__ import annotations

import json

import pytest
import yaml

from livestrat.api.contract import (
    HALT_ANNOTATION,
    KILL_SWITCH_ANNOTATION,
    PROMOTED_BY_ANNOTATION,
    RISK_ACK_ANNOTATION,
)
from livestrat.desk import roles
from livestrat.kube_emulator.kubelet import Kubelet
from livestrat.kube_emulator.rbac import triples
from tests.support.desk import Desk, example
from tests.support.desk_plugin import kubectl_livestrat
from tests.support.desk_users import desk_user
from tests.support.helm import RELEASE, find, render, template_result
from tests.support.k8s_schemas import manifest_errors
from tests.support.kube import wait_for
from tests.support.operator import fast_settings, running_operator

# Every test here runs a process (helm, kubectl, the plugin): the slow tier (tests/support/tiers.py).
pytestmark = pytest.mark.slow

NAME = "ema-cross-btc"
LIVE = "ema-cross-btc-live"
ENABLED = {"rbac.deskRoles.enabled": True}


def desk_roles(values: dict | None = None) -> dict[str, dict]:
    docs = render(None, {**ENABLED, **(values or {})})
    return {role: find(docs, "ClusterRole", f"{RELEASE}-{role}")[0] for role in roles.ROLES}


def rights(rules: list[dict]) -> set[tuple[str, str, str]]:
    return triples(rules)


def test_each_role_grants_exactly_what_the_plugin_needs_of_it():
    rendered = desk_roles()
    for role in roles.ROLES:
        wanted = {(r.verb, r.group, r.resource) for r in roles.rights_of(role)}
        assert rights(rendered[role]["rules"]) == wanted, role


def test_the_promoter_role_holds_exactly_what_promote_does_and_nothing_of_the_desk_or_the_trader():
    (promoter,) = [d for name, d in desk_roles().items() if name == roles.PROMOTER]
    assert rights(promoter["rules"]) == {
        ("get", "livestrat.io", "livestrategies"),  # the paper strategy, the live one, and the live one after
        ("create", "livestrat.io", "livestrategies"),
        ("patch", "livestrat.io", "livestrategies"),
        ("create", "authentication.k8s.io", "selfsubjectreviews"),  # who asks (kubectl auth whoami)
    }
    assert roles.VERB_ROLES["promote"] == roles.PROMOTER


def test_no_desk_role_reads_secrets():
    for role, cluster_role in desk_roles().items():
        assert not any("secrets" in rule.get("resources", []) for rule in cluster_role["rules"]), role
        assert not any("*" in rule.get(key, []) for rule in cluster_role["rules"] for key in ("resources", "verbs"))


def test_the_roles_are_off_by_default_and_bindings_are_rendered_per_namespace():
    ours = tuple(f"-{role}" for role in roles.ROLES)
    assert [d for d in render(None, {}) if d["metadata"]["name"].endswith(ours)] == []
    binding = {
        "name": "traders",
        "namespace": "trading-live",
        "role": "trader",
        "subjects": [{"kind": "Group", "name": "traders"}],
    }
    docs = render(None, {**ENABLED, "rbac.deskRoles.bindings": [binding]})
    (bound,) = find(docs, "RoleBinding", f"{RELEASE}-trader-traders")
    assert bound["metadata"]["namespace"] == "trading-live"
    assert bound["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": f"{RELEASE}-trader",
    }
    assert bound["subjects"] == [{"kind": "Group", "name": "traders"}]


def test_the_roles_and_bindings_are_valid_kubernetes_objects():
    binding = {
        "name": "oncall",
        "namespace": "trading-live",
        "role": "kill-switch",
        "subjects": [{"kind": "User", "name": "sam"}],
    }
    docs = render(None, {**ENABLED, "rbac.deskRoles.bindings": [binding]})
    ours = [d for d in docs if d["metadata"]["name"].startswith(tuple(f"{RELEASE}-{role}" for role in roles.ROLES))]
    assert len(ours) == len(roles.ROLES) + 1  # the ClusterRoles and the binding
    for doc in ours:
        assert manifest_errors(doc) == [], doc["metadata"]["name"]


def test_a_binding_to_a_role_the_chart_does_not_have_is_refused():
    wrong = {"name": "x", "namespace": "a", "role": "admin", "subjects": [{"kind": "User", "name": "eve"}]}
    result = template_result(None, {**ENABLED, "rbac.deskRoles.bindings": [wrong]})
    allowed = ", ".join(f"'{role}'" for role in roles.ROLES)
    assert result.returncode != 0 and f"value must be one of {allowed}" in result.output, result.output


@pytest.fixture
def desk(emulator, kube_env) -> Desk:
    return Desk(emulator, kube_env)


def install(desk: Desk) -> None:
    for cluster_role in desk_roles().values():
        desk.emulator.create_object(
            "rbac.authorization.k8s.io/v1/clusterroles",
            {"metadata": {"name": cluster_role["metadata"]["name"]}, "rules": cluster_role["rules"]},
        )


def person(desk: Desk, tmp_path, who: str, *role_names: str):
    return desk_user(desk.emulator, tmp_path, who, [f"{RELEASE}-{r}" for r in role_names], [desk.namespace])


async def test_the_desk_role_reads_everything_and_is_refused_a_halt_with_what_to_ask_for(
    emulator, desk: Desk, kube_env, tmp_path
):
    install(desk)
    reader = person(desk, tmp_path, "reader", roles.DESK)
    async with (
        Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kube_env),
        running_operator(emulator, fast_settings()),
    ):
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Running", timeout=30)
        desk.push_runtime_status(NAME, fills=3, total_pnl="12.50 USDT")
        await desk.apply_budget(
            {
                "apiVersion": "livestrat.io/v1alpha1",
                "kind": "RiskBudget",
                "metadata": {"name": "account-a"},
                "spec": {"members": [NAME], "currency": "USDT", "limits": {"maxDailyLoss": 1000.0}},
            }
        )
        await wait_for(lambda: desk.budget_status("account-a").get("state") == "Active", timeout=30)

        budgets = await kubectl_livestrat("budgets", "-o", "json", kubeconfig=reader)
        assert budgets.returncode == 0, budgets.output
        (budget,) = json.loads(budgets.stdout)["budgets"]
        assert (budget["name"], budget["members"], budget["state"]) == ("account-a", "1/1", "Active")

        listed = await kubectl_livestrat("list", "-o", "json", kubeconfig=reader)
        assert listed.returncode == 0, listed.output
        (row,) = json.loads(listed.stdout)["strategies"]
        assert (row["name"], row["phase"], row["fills"], row["totalPnl"]) == (NAME, "Running", 3, {"USDT": "12.50"})

        for verb in (
            ["list"],
            ["top"],
            ["status", NAME],
            ["budgets", "account-a"],
            ["logs", NAME],
            ["report", NAME, "--dir", str(tmp_path / "r")],
        ):
            ran = await kubectl_livestrat(*verb, kubeconfig=reader)
            assert ran.returncode == 0, (verb, ran.output)
        assert (
            "not included"
            not in (await kubectl_livestrat("report", NAME, "--dir", str(tmp_path / "r2"), kubeconfig=reader)).stdout
        )

        # every namespace at once is more than a RoleBinding gives: refused, saying which right and which role
        everywhere = await kubectl_livestrat("list", "-A", kubeconfig=reader)
        assert everywhere.returncode == 1 and "you may not list livestrategies in all namespaces" in everywhere.stderr

        refused = await kubectl_livestrat("halt", NAME, "--yes", kubeconfig=reader)
        assert refused.returncode == 1
        assert "you may not patch livestrategies/scale in namespace 'default'" in refused.stderr
        assert f"--clusterrole={RELEASE}-trader" in refused.stderr and "Traceback" not in refused.stderr
        assert desk.get(NAME)["spec"]["replicas"] == 1


async def test_the_trader_role_halts_resumes_and_acknowledges_but_cannot_pull_the_kill_switch(
    emulator, desk: Desk, kube_env, tmp_path
):
    install(desk)
    trader = person(desk, tmp_path, "trader", roles.TRADER)
    breach = {
        "state": "Halted",
        "reason": "daily loss",
        "breachedLimit": "maxDailyLoss",
        "breachedAt": "2026-03-02T10:15:00.123Z",
    }
    async with (
        Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kube_env),
        running_operator(emulator, fast_settings()),
    ):
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Running", timeout=30)

        halted = await kubectl_livestrat("halt", NAME, "--yes", "--wait", "--timeout", "60", kubeconfig=trader)
        assert halted.returncode == 0, halted.output
        assert "done: scaled to 0 replicas" in halted.stdout and "now: phase Halted" in halted.stdout
        resumed = await kubectl_livestrat("resume", NAME, "--yes", "--wait", "--timeout", "60", kubeconfig=trader)
        assert resumed.returncode == 0 and "now: phase Running" in resumed.stdout, resumed.output

        noted = await kubectl_livestrat("halt", NAME, "--note", "trader: venue maintenance", "--yes", kubeconfig=trader)
        assert noted.returncode == 0, noted.output
        assert desk.get(NAME)["metadata"]["annotations"][HALT_ANNOTATION] == "trader: venue maintenance"
        await wait_for(lambda: desk.phase(NAME) == "Halted", timeout=30)
        assert (await kubectl_livestrat("resume", NAME, "--yes", kubeconfig=trader)).returncode == 0
        await wait_for(lambda: desk.phase(NAME) == "Running", timeout=30)

        desk.push_runtime_status(NAME, risk=breach)
        await wait_for(lambda: desk.phase(NAME) == "RiskHalted", timeout=30)
        acked = await kubectl_livestrat("ack-risk", NAME, "--yes", "--wait", "--timeout", "60", kubeconfig=trader)
        assert acked.returncode == 0, acked.output
        assert desk.get(NAME)["metadata"]["annotations"][RISK_ACK_ANNOTATION] == breach["breachedAt"]
        assert "now: phase Running" in acked.stdout

        refused = await kubectl_livestrat("kill-switch", "on", "--yes", kubeconfig=trader)
        assert refused.returncode == 1 and f"--clusterrole={RELEASE}-kill-switch" in refused.stderr, refused.output


async def test_the_kill_switch_role_halts_the_namespace(emulator, desk: Desk, kube_env, tmp_path):
    install(desk)
    on_call = person(desk, tmp_path, "oncall", roles.DESK, roles.KILL_SWITCH)
    async with (
        Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kube_env),
        running_operator(emulator, fast_settings()),
    ):
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Running", timeout=30)
        unconfirmed = await kubectl_livestrat("kill-switch", "on", kubeconfig=on_call)  # no terminal to answer y
        assert unconfirmed.returncode == 3 and "EVERY strategy in default" in unconfirmed.stdout
        assert "not done" in unconfirmed.stderr
        engaged = await kubectl_livestrat("kill-switch", "on", "--yes", kubeconfig=on_call)
        assert engaged.returncode == 0, engaged.output
        assert (
            emulator.read_object("v1/namespaces", "default")["metadata"]["annotations"][KILL_SWITCH_ANNOTATION]
            == "true"
        )
        await wait_for(lambda: desk.phase(NAME) == "Halted", timeout=30)
        assert desk.condition(NAME, "Halted")["reason"] == "KillSwitch"
        lifted = await kubectl_livestrat("kill-switch", "off", "--yes", kubeconfig=on_call)
        assert lifted.returncode == 0 and "nothing resumes by itself" in lifted.stdout, lifted.output


async def test_the_promoter_role_alone_promotes_and_a_promote_refused_names_the_promoter_role(
    emulator, desk: Desk, tmp_path
):
    # No operator: promote only writes the request (the operator's decision is tests/desk/test_promotion_verb.py).
    install(desk)
    pat = person(desk, tmp_path, "pat", roles.PROMOTER)
    reader = person(desk, tmp_path, "reader", roles.DESK)
    trader = person(desk, tmp_path, "trader", roles.TRADER)
    nobody = person(desk, tmp_path, "nobody")
    await desk.apply(example("paper-ema-cross"))
    live = example("live-ema-cross-promoted")
    del live["spec"]["strategy"], live["spec"]["instruments"]  # the paper strategy's are taken
    manifest = tmp_path / "live.yaml"
    manifest.write_text(yaml.safe_dump(live))
    promote = ("promote", NAME, "--to", LIVE, "-f", str(manifest), "--yes")

    # Creating the live strategy: neither the desk role nor the trader role may, and each is told which role does.
    for who, missing in (
        (reader, "create livestrategies"),
        (trader, "create livestrategies"),
        (nobody, "get livestrategies"),  # the paper strategy, first
    ):
        refused = await kubectl_livestrat(*promote, kubeconfig=who)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.output
        assert f"you may not {missing} in namespace 'default'" in refused.stderr, refused.output
        assert f"--clusterrole={RELEASE}-promoter" in refused.stderr, refused.output
        assert desk.get(LIVE) is None

    created = await kubectl_livestrat(*promote, kubeconfig=pat)
    assert created.returncode == 0, created.output
    made = desk.get(LIVE)
    assert made["spec"]["promotion"]["from"] == NAME
    assert made["metadata"]["annotations"][PROMOTED_BY_ANNOTATION] == "system:serviceaccount:desk-users:pat"

    # Asking again with other criteria patches it; the desk role is refused that patch, told it is the promoter's.
    live["spec"]["promotion"]["criteria"] = {"minDurationSeconds": 0, "minFills": 7}
    manifest.write_text(yaml.safe_dump(live))
    refused = await kubectl_livestrat(*promote, kubeconfig=reader)
    assert refused.returncode == 1, refused.output
    assert "you may not patch livestrategies in namespace 'default'" in refused.stderr
    assert f"--clusterrole={RELEASE}-promoter" in refused.stderr and f"{RELEASE}-trader" not in refused.stderr
    updated = await kubectl_livestrat(*promote, kubeconfig=pat)
    assert updated.returncode == 0, updated.output
    assert desk.get(LIVE)["spec"]["promotion"]["criteria"]["minFills"] == 7

    # Least privilege: the promoter neither lists the fleet nor halts.
    listed = await kubectl_livestrat("list", kubeconfig=pat)
    assert listed.returncode == 1 and f"--clusterrole={RELEASE}-desk" in listed.stderr, listed.output
    halted = await kubectl_livestrat("halt", NAME, "--yes", kubeconfig=pat)
    assert halted.returncode == 1 and f"--clusterrole={RELEASE}-trader" in halted.stderr, halted.output
