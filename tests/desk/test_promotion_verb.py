"""``kubectl livestrat promote``: Alice promotes a paper strategy to live through the real kubectl, against the real
operator and the Kubernetes emulator; the operator refuses while the paper record falls short, then admits it and
records that Alice asked. A live strategy already running the paper strategy's strategy is promoted without a restart.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from livestrat.api.contract import PROMOTED_BY_ANNOTATION
from livestrat.kube_emulator.authn import UserInfo
from livestrat.kube_emulator.emulator import kubeconfig
from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk, example
from tests.support.desk_plugin import kubectl_livestrat
from tests.support.kube import wait_for
from tests.support.operator import fast_settings, running_operator

pytestmark = pytest.mark.slow

PAPER = "ema-cross-btc"
LIVE = "ema-cross-btc-live"
ALICE = "alice@desk.example"


@pytest.fixture
def desk(emulator, kube_env) -> Desk:
    return Desk(emulator, kube_env)


@pytest.fixture
def alice(emulator, tmp_path: Path) -> Path:
    """Alice's kubeconfig: her own token (the API server authenticates her by it)."""
    emulator.add_static_token("alice-token", UserInfo(ALICE, groups=("system:masters", "system:authenticated")))
    path = tmp_path / "alice.kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig(str(emulator.url).rstrip("/"), token="alice-token")))
    return path


def live_file(tmp_path: Path, *, min_fills: int) -> Path:
    live = example("live-ema-cross-promoted")
    del live["spec"]["strategy"], live["spec"]["instruments"]  # the paper strategy's are taken
    live["spec"]["promotion"]["criteria"] = {"minDurationSeconds": 0, "minFills": min_fills, "maxDrawdown": 1500}
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump(live))
    return path


def add_live_secrets(desk: Desk) -> None:
    for secret, keys in (("binance-testnet", ("api-key", "api-secret")), ("ledger-dsn", ("dsn",))):
        desk.emulator.create_object(
            "v1/secrets", {"metadata": {"name": secret}, "data": dict.fromkeys(keys, "eA==")}, namespace=desk.namespace
        )


async def test_alice_promotes_a_paper_strategy_to_live_and_the_operator_admits_it_on_its_record(
    emulator, desk: Desk, kube_env, alice: Path, tmp_path: Path
):
    add_live_secrets(desk)
    async with (
        Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kube_env),
        running_operator(emulator, fast_settings(live_namespaces=["default"], stale_after_seconds=120)),
    ):
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(PAPER) == "Running")
        desk.push_runtime_status(PAPER, fills=25, risk={"state": "Active", "maxDrawdown": "900.00 USDT"})
        await wait_for(lambda: desk.is_true(PAPER, "Trading"))

        # a live strategy that does not exist needs its live settings
        ran = await kubectl_livestrat("promote", PAPER, "--to", LIVE, "--yes", kubeconfig=alice)
        assert ran.returncode == 1 and "-f live.yaml" in ran.stderr and desk.get(LIVE) is None

        # not confirmed: nothing done
        live = live_file(tmp_path, min_fills=30)
        ran = await kubectl_livestrat("promote", PAPER, "--to", LIVE, "-f", str(live), kubeconfig=alice)
        assert ran.returncode == 3 and desk.get(LIVE) is None
        assert f"paper strategy {PAPER} now: phase Running, trading since" in ran.stdout
        assert "25 fills, largest drawdown 900.00 USDT" in ran.stdout

        ran = await kubectl_livestrat("promote", PAPER, "--to", LIVE, "-f", str(live), "--yes", kubeconfig=alice)
        assert ran.returncode == 0, ran.output
        assert f"created LiveStrategy {LIVE}, promoted from {PAPER} by {ALICE}" in ran.stdout
        created = desk.get(LIVE)
        assert created["metadata"]["annotations"][PROMOTED_BY_ANNOTATION] == ALICE
        assert created["spec"]["strategy"] == desk.get(PAPER)["spec"]["strategy"]

        # 25 fills of the 30 asked for: refused, no pod, and `status` says why
        await wait_for(lambda: (desk.status(LIVE).get("promotion") or {}).get("state") == "Refused")
        assert desk.pods(LIVE) == []
        status = await kubectl_livestrat("status", LIVE, "-o", "yaml", kubeconfig=alice)
        shown = yaml.safe_load(status.stdout)
        assert shown["promotion"]["state"] == "Refused" and shown["promotion"]["promotedBy"] == ALICE
        assert "has 25 fills, at least 30 needed" in shown["promotion"]["message"]

        desk.push_runtime_status(PAPER, fills=30, risk={"state": "Active", "maxDrawdown": "900.00 USDT"})
        await wait_for(lambda: desk.phase(LIVE) == "Running", timeout=30)
        record = desk.status(LIVE)["promotion"]
        assert (record["state"], record["promotedBy"], record["evidence"]["fills"]) == ("Accepted", ALICE, 30)
        await wait_for(lambda: desk.event_messages(LIVE, "PromotionAccepted"))
        status = await kubectl_livestrat("status", LIVE, kubeconfig=alice)
        assert f"promotion: Accepted at {record['decidedAt']}: promoted from paper strategy {PAPER} by {ALICE}" in (
            " ".join(status.stdout.split())
        )

        again = await kubectl_livestrat("promote", PAPER, "--to", LIVE, "--yes", kubeconfig=alice)
        assert again.returncode == 0 and "nothing to do: promoted from ema-cross-btc already" in again.stdout


async def test_promoting_onto_a_running_live_strategy_of_the_same_strategy_does_not_restart_it(
    emulator, desk: Desk, kube_env, alice: Path, tmp_path: Path
):
    add_live_secrets(desk)
    running = example("live-ema-cross-promoted")
    del running["spec"]["promotion"]  # live already, before promotions existed
    async with (
        Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kube_env),
        running_operator(emulator, fast_settings(live_namespaces=["default"], stale_after_seconds=120)),
    ):
        await desk.apply(example("paper-ema-cross"))
        await desk.apply(running)
        await wait_for(lambda: desk.phase(PAPER) == "Running" and desk.phase(LIVE) == "Running")
        [pod] = desk.pods(LIVE)
        desk.push_runtime_status(PAPER, fills=25, risk={"state": "Active", "maxDrawdown": "900.00 USDT"})
        await wait_for(lambda: desk.is_true(PAPER, "Trading"))

        ran = await kubectl_livestrat("promote", PAPER, "--to", LIVE, "--yes", kubeconfig=alice)
        assert ran.returncode == 0, ran.output
        assert f"{LIVE} runs {PAPER}'s strategy already: a running pod keeps running, unrestarted" in ran.stdout
        # the default criteria ask for a day of trading: refused, and the running pod is left as it is
        await wait_for(lambda: (desk.status(LIVE).get("promotion") or {}).get("state") == "Refused")
        assert "criteria.minDurationSeconds" in desk.status(LIVE)["promotion"]["message"]
        await desk.edit_spec(LIVE, {"promotion": {"from": PAPER, "criteria": {"minDurationSeconds": 0}}})
        await wait_for(lambda: (desk.status(LIVE).get("promotion") or {}).get("state") == "Accepted")
        assert desk.phase(LIVE) == "Running"
        assert [p["metadata"]["uid"] for p in desk.pods(LIVE)] == [pod["metadata"]["uid"]]
        assert desk.statefulset(LIVE)["spec"]["template"]["metadata"]["annotations"] == pod["metadata"]["annotations"]
