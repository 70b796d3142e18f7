"""The runtime pushes its trading state into its LiveStrategy's status, against the HTTP Kubernetes API emulator.

A real ``livestrat runtime`` process talks to the emulator (livestrat/kube_emulator/emulator.py)
through kubernetes_asyncio and a kubeconfig, as it would talk to an API server. What the
emulator stores is compared with what the ledger holds (read from the SQLite file).
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime
from decimal import Decimal

import pytest

from livestrat.api.runtime_config import StrategyIdentity
from strategy_runtime.ledger import run_key
from strategy_runtime.pnl import recompute_pnl
from tests.support.kube import LIVESTRATEGIES, wait_for
from tests.support.ledger import read_sqlite_fills
from tests.support.runtime_process import RuntimeProcess, example_spec, strategy_config
from tests.support.tcp_proxy import CuttableProxy

pytestmark = pytest.mark.slow

NAMESPACE = "desk"
NAME = "ema-cross-btc"
HEARTBEAT = 3.0
OPERATOR_STATUS = {
    "phase": "Running",
    "replicas": 1,
    "observedGeneration": 1,
    "conditions": [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Running",
            "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
    ],
}


def create_strategy(emulator, spec) -> None:
    """What the operator's side holds: the LiveStrategy, with the workload part of its status."""
    emulator.add_namespace(NAMESPACE)
    manifest = {"apiVersion": "livestrat.io/v1alpha1", "kind": "LiveStrategy", "metadata": {"name": NAME}, "spec": spec}
    emulator.create_object(LIVESTRATEGIES, manifest, namespace=NAMESPACE)
    emulator.patch_object(LIVESTRATEGIES, NAME, {"status": OPERATOR_STATUS}, namespace=NAMESPACE, subresource="status")


def status_of(emulator) -> dict:
    return (emulator.read_object(LIVESTRATEGIES, NAME, namespace=NAMESPACE) or {}).get("status", {})


def heartbeat_of(patch: dict) -> datetime:
    return datetime.fromisoformat(patch["status"]["trading"]["heartbeat"].replace("Z", "+00:00"))


def gaps(patches: list[dict]) -> list[float]:
    """Seconds between consecutive patches, by the heartbeat the pusher stamped on each."""
    stamps = [heartbeat_of(p) for p in patches]
    return [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)] or [float("inf")]


def heartbeat_only(patch: dict) -> bool:
    """A heartbeat: its time, and the uid of the LiveStrategy it is for when the runtime knows it."""
    trading = patch.get("status", {}).get("trading", {})
    return (
        trading.get("heartbeat") is not None
        and set(patch) == {"status"}
        and set(patch["status"]) == {"trading"}
        and set(trading) <= {"heartbeat", "strategyUid"}
    )


def at_least(count: int, patches: list[dict]) -> list[dict] | None:
    return patches if len(patches) >= count else None


def status_patches(emulator, since: int = 0) -> list[dict]:
    return [
        json.loads(r.body)
        for r in emulator.writes(since=since)
        if r.method.value == "PATCH" and r.subresource == "status" and r.name == NAME
    ]


async def test_the_status_shows_what_the_ledger_holds_and_a_quiet_strategy_sends_only_heartbeats(
    tmp_path, emulator, kubeconfig_path
):
    spec = example_spec()
    create_strategy(emulator, spec)
    uid = emulator.read_object(LIVESTRATEGIES, NAME, namespace=NAMESPACE)["metadata"]["uid"]
    config, path = strategy_config(
        tmp_path,
        spec,
        name=NAME,
        namespace=NAMESPACE,
        report_status=True,
        heartbeat_interval_seconds=HEARTBEAT,
        strategy=StrategyIdentity(namespace=NAMESPACE, name=NAME, uid=uid),
    )
    runtime = RuntimeProcess.start(config, path, env={"KUBECONFIG": str(kubeconfig_path)})
    try:
        await runtime.wait_ready()
        await runtime.wait_until(
            lambda s: s["trading"]["replay"]["finished"] and s["ledger"]["pending"] == 0, what="a finished replay"
        )
        fills = read_sqlite_fills(config.ledger.sqlite_path, run_key(config.strategy.key, 1))
        assert fills
        # what the runtime pushed catches up with what it holds: every fill and the replay's end
        await wait_for(
            lambda: (
                (trading := status_of(emulator).get("trading", {})).get("fills") == len(fills)
                and (trading.get("replay") or {}).get("finished")
            ),
            timeout=10,
        )

        # the status shows the fills and the PnL the ledger holds
        status = status_of(emulator)
        trading, risk = status["trading"], status["risk"]
        recomputed = recompute_pnl(fills).instruments["BTCUSDT.BINANCE"]
        amount, currency = trading["realizedPnl"].split()
        assert currency == "USDT"
        assert Decimal(amount) == recomputed.net_realized_pnl.quantize(Decimal("0.01"))
        assert trading["lastFill"]["tradeId"] == fills[-1].trade_id
        assert trading["replay"] == {"events": 3000, "total": 3000, "finished": True}
        assert trading["nodeState"] == "Running"
        assert trading["strategyUid"] == uid  # whose pod pushed it (every push, heartbeats too: below)
        assert risk["state"] == "Active"
        # the operator's fields are untouched: the runtime patched only trading and risk
        assert {k: status[k] for k in OPERATOR_STATUS} == OPERATOR_STATUS
        patches = status_patches(emulator)
        assert patches and all(set(p) == {"status"} and set(p["status"]) <= {"trading", "risk"} for p in patches)
        # coalesced, by the pusher's own clock (the heartbeat it stamps on every patch): never two
        # patches within one report interval, so far fewer patches than fills
        assert min(gaps(patches)) >= config.report_interval_seconds - 0.001
        assert len(patches) < len(fills) / 4

        # quiet: nothing changes any more once the finished replay has been checked against its backtest (a few
        # seconds after its end, longer on a loaded machine: docs/runtime.md), so once the pusher has nothing new
        # to say (its last patch a bare heartbeat), nothing is sent but the heartbeat, one per interval
        await wait_for(
            lambda: ((status_of(emulator).get("trading") or {}).get("backtest") or {}).get("checkedAt"), timeout=60
        )
        await wait_for(lambda: (sent := status_patches(emulator)) and heartbeat_only(sent[-1]), timeout=60)
        since = len(list(emulator))
        heard = await wait_for(lambda: at_least(2, status_patches(emulator, since=since)), timeout=60)
        assert all(heartbeat_only(p) and p["status"]["trading"]["strategyUid"] == uid for p in heard), heard
        assert min(gaps(heard)) >= HEARTBEAT - 0.001, heard

        # a halt pushes the final state once more
        since = len(list(emulator))
        runtime.signal()
        code, _ = await runtime.wait_exit(30)
    finally:
        runtime.kill()
    assert code == 0, runtime.output()
    final = status_patches(emulator, since=since)
    whole = [p for p in final if not heartbeat_only(p)]
    assert whole and whole[-1]["status"]["trading"]["nodeState"] == "Stopped"
    # after it, at most the halt's last look: one heartbeat, whose answer shows the final state is still there
    assert [heartbeat_only(p) for p in final[final.index(whole[-1]) + 1 :]] in ([], [True])
    assert status_of(emulator)["trading"]["nodeState"] == "Stopped"


async def test_losing_the_api_server_does_not_stop_trading_and_the_latest_state_arrives_later(
    tmp_path, emulator, kubeconfig_path
):
    spec = example_spec()
    spec["data"]["replay"]["speed"] = 20000  # about 9 s of replay, during which the API server is away
    create_strategy(emulator, spec)
    proxy = CuttableProxy("127.0.0.1", emulator.url.port)
    await proxy.start()
    kubeconfig = json.loads(kubeconfig_path.read_text())
    kubeconfig["clusters"][0]["cluster"]["server"] = f"http://127.0.0.1:{proxy.port}"
    kubeconfig_path.write_text(json.dumps(kubeconfig))
    config, path = strategy_config(tmp_path, spec, name=NAME, namespace=NAMESPACE, report_status=True)
    runtime = RuntimeProcess.start(config, path, env={"KUBECONFIG": str(kubeconfig_path)})
    try:
        await runtime.wait_ready()
        await wait_for(lambda: status_of(emulator).get("trading"), timeout=10)
        await proxy.cut()
        cut_state = await runtime.wait_until(
            lambda s: s["statusPush"]["failures"] >= 2, what="pushes failing while the API server is away"
        )
        # trading went on: more fills, recorded in the ledger, while nothing could be reported
        later = await runtime.wait_until(
            lambda s: s["trading"]["fills"] > cut_state["trading"]["fills"] + 10, what="trading to go on"
        )
        assert (await runtime.get("/readyz"))[0] == 200
        pushed = status_of(emulator)["trading"]["fills"]
        assert pushed < later["trading"]["fills"]

        await proxy.restore()
        final = await runtime.wait_until(
            lambda s: s["trading"]["replay"]["finished"] and s["ledger"]["pending"] == 0, what="a finished replay"
        )
        # back: the latest state arrives (within the retry backoff), not the one that failed
        await wait_for(lambda: status_of(emulator)["trading"]["fills"] == final["trading"]["fills"], timeout=40)
        runtime.signal()
        code, _ = await runtime.wait_exit(30)
    finally:
        runtime.kill()
        await proxy.stop()
    assert code == 0, runtime.output()
    assert "status: push failed" in runtime.output()
