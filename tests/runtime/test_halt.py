"""Halting a strategy pod: SIGTERM cancels every order, applies the halt policy and exits 0 within the bound.

Real processes (``livestrat runtime``), a real NautilusTrader node and its sandbox venue;
nothing is mocked. The bound is the configuration's ``halt_budget_seconds`` (derived from
the pod's grace period), held by the runtime's own watchdog: a halt that outlives it is cut short with
a message and a non-zero exit, which the tests read (no test clock: on a loaded machine it measures the machine).
"""

from __future__ import annotations

import asyncio
import json

import pytest
import yaml

from livestrat.api.runtime_config import ENV_API_KEY, ENV_API_SECRET
from livestrat.kube_emulator.emulator import kubeconfig
from strategy_runtime.ledger import SqliteLedger, run_key
from strategy_runtime.pnl import recompute_pnl
from tests.support.catalogs import flat, write_price_path
from tests.support.kube import LIVESTRATEGIES
from tests.support.runtime_process import ROOT, RuntimeProcess, paper_spec, strategy_config
from tests.support.scripted import read_events, scripted_strategy
from tests.support.tcp_proxy import CuttableProxy

pytestmark = pytest.mark.slow

# What the runtime's halt watchdog says when the halt outlives its budget (strategy_runtime/halt.py), before it
# exits non-zero. The tests read the runtime's own verdict: a wall clock in a test on a loaded machine measures
# the machine (a halt "took" 10.04 s of a 10 s budget once, interpreter exit included).
OVERRAN = "the halt did not finish within its budget"
RESTING = {"bar": 2, "do": "limit", "side": "BUY", "quantity": "0.01", "offset": -0.2, "count": 3, "tag": "resting"}
ENTRY = {"bar": 2, "do": "market", "side": "BUY", "quantity": "0.02", "tag": "entry"}


def record_halt(emulator, name: str, namespace: str, record: dict) -> None:
    """The operator's ``status.halt`` on the LiveStrategy, as it writes it before it stops the pod."""
    emulator.patch_object(LIVESTRATEGIES, name, {"status": {"halt": record}}, namespace=namespace, subresource="status")


async def run_until_sigterm(
    tmp_path, emulator, kubeconfig_path, steps, halt_policy, *, halt_record=None, partition=False, deleted=False
):
    """Run the scripted strategy until its orders rest, then SIGTERM; ``halt_record``: the operator's
    ``status.halt`` stored on the LiveStrategy before the signal (None: a stop that is no halt); ``partition``:
    the runtime reaches the API server through a proxy that goes silent just before the signal; ``deleted``: the
    LiveStrategy is deleted, and gone (no finalizer holds it), before the signal."""
    proxy = CuttableProxy(emulator.url.host, emulator.url.port)
    if partition:
        await proxy.start()
        kubeconfig_path = tmp_path / "kubeconfig-through-proxy.json"
        kubeconfig_path.write_text(json.dumps(kubeconfig(f"http://127.0.0.1:{proxy.port}")))
    events = tmp_path / "events.jsonl"
    catalog = write_price_path(tmp_path / "catalog", flat(20))
    spec = paper_spec(scripted_strategy(str(events), steps=steps), haltPolicy=halt_policy)
    config, path = strategy_config(tmp_path, spec, catalog=catalog, report_status=True)
    emulator.add_namespace(config.strategy.namespace)
    manifest = {"apiVersion": "livestrat.io/v1alpha1", "kind": "LiveStrategy", "metadata": {"name": "scripted"}}
    emulator.create_object(LIVESTRATEGIES, {**manifest, "spec": spec}, namespace=config.strategy.namespace)
    runtime = RuntimeProcess.start(config, path, env={"KUBECONFIG": str(kubeconfig_path)})
    try:
        await runtime.wait_ready()
        before = await runtime.wait_until(
            lambda s: s["trading"]["openOrders"] == 3 and s["trading"].get("replay", {}).get("finished"),
            what="three resting orders",
        )
        if halt_record is not None:
            record_halt(emulator, "scripted", config.strategy.namespace, halt_record)
        if partition:
            proxy.blackhole("both", new_connections=False)
        if deleted:
            emulator.delete_object(LIVESTRATEGIES, "scripted", namespace=config.strategy.namespace)
        runtime.signal()
        code, _ = await runtime.wait_exit(timeout=config.halt_budget_seconds + 10)
    finally:
        runtime.kill()
        await proxy.stop()
    if deleted:
        return config, runtime, before, code, read_events(str(events)), None
    stored = emulator.read_object(LIVESTRATEGIES, "scripted", namespace=config.strategy.namespace)
    return config, runtime, before, code, read_events(str(events)), stored["status"].get("trading")


def final_status_of(events):
    return {e["order"]: e["event"] for e in events if "event" in e}


async def test_sigterm_cancels_every_resting_order_and_exits_0_within_the_bound(tmp_path, emulator, kubeconfig_path):
    _config, runtime, before, code, events, pushed = await run_until_sigterm(
        tmp_path, emulator, kubeconfig_path, [RESTING], "cancelOrders"
    )

    assert before["trading"]["openOrders"] == 3
    assert code == 0, runtime.output()
    assert OVERRAN not in runtime.output()  # within its budget, by the runtime's own watchdog (not a test clock)
    # every order the strategy placed ended canceled by the runtime itself, none is left open
    resting = [e["submit"] for e in events if e.get("tag") == "resting" and "submit" in e]
    assert len(resting) == 3
    final = final_status_of(events)
    assert {final[o] for o in resting} == {"OrderCanceled"}
    assert "halt: over in" in runtime.output()
    # the final status was pushed: stopped, nothing open
    assert pushed["nodeState"] == "Stopped"
    assert pushed["openOrders"] == 0


HALT_RECORD = {"reason": "ScaledToZero", "message": "spec.replicas is 0", "since": "2026-12-06T07:00:00Z"}


async def test_a_halt_the_operator_recorded_flattens_under_flatten(tmp_path, emulator, kubeconfig_path):
    # kubectl scale --replicas=0: the operator records status.halt, then scales the StatefulSet to 0
    config, runtime, before, code, events, pushed = await run_until_sigterm(
        tmp_path, emulator, kubeconfig_path, [RESTING, ENTRY], "flatten", halt_record=HALT_RECORD
    )

    assert before["trading"]["positions"][0]["quantity"] == "0.020000"
    assert code == 0, runtime.output()
    assert OVERRAN not in runtime.output()  # within its budget, by the runtime's own watchdog (not a test clock)
    final = final_status_of(events)
    assert {final[e["submit"]] for e in events if e.get("tag") == "resting" and "submit" in e} == {"OrderCanceled"}
    # the halt's own reduce-only close filled; the ledger, read independently, says flat
    closes = [e for e in events if e.get("event") == "OrderFilled" and "LIVESTRAT_HALT" in e["tags"]]
    assert len(closes) == 1
    async with SqliteLedger(config.ledger.sqlite_path, config.strategy.key) as ledger:
        fills = await ledger.fills(run_key(config.strategy.key, 1))  # the paper runtime's first (and only) run
    assert len(fills) == 2
    assert recompute_pnl(fills).instruments["BTCUSDT.BINANCE"].position == 0
    assert pushed["nodeState"] == "Stopped"
    assert pushed["positions"] == [] and pushed["openOrders"] == 0 and pushed["fills"] == 2


async def test_a_stop_without_a_halt_record_cancels_every_order_and_never_flattens(tmp_path, emulator, kubeconfig_path):
    # An eviction, a drain, Spot preemption, an Auto rollout or a restartNonce: SIGTERM, and no halt record.
    config, runtime, before, code, events, pushed = await run_until_sigterm(
        tmp_path, emulator, kubeconfig_path, [RESTING, ENTRY], "flatten"
    )

    assert before["trading"]["positions"][0]["quantity"] == "0.020000"
    assert code == 0, runtime.output()
    assert OVERRAN not in runtime.output()  # within its budget, by the runtime's own watchdog (not a test clock)
    final = final_status_of(events)
    assert {final[e["submit"]] for e in events if e.get("tag") == "resting" and "submit" in e} == {"OrderCanceled"}
    # no close was sent: the position stays for the next start to reconcile
    assert [e for e in events if "LIVESTRAT_HALT" in (e.get("tags") or [])] == []
    async with SqliteLedger(config.ledger.sqlite_path, config.strategy.key) as ledger:
        fills = await ledger.fills(run_key(config.strategy.key, 1))  # the paper runtime's first (and only) run
    assert recompute_pnl(fills).instruments["BTCUSDT.BINANCE"].position != 0
    assert pushed["nodeState"] == "Stopped" and pushed["openOrders"] == 0
    assert pushed["positions"][0]["quantity"] == "0.020000"
    assert "not a halt" in runtime.output()


async def test_a_stop_whose_halt_record_cannot_be_read_never_flattens(tmp_path, emulator, kubeconfig_path):
    # A partition: the API server does not answer at SIGTERM. Flattening nobody asked for is the worse error.
    config, runtime, _, code, events, _ = await run_until_sigterm(
        tmp_path, emulator, kubeconfig_path, [RESTING, ENTRY], "flatten", halt_record=HALT_RECORD, partition=True
    )

    assert code == 0, runtime.output()
    assert OVERRAN not in runtime.output()  # within its budget, by the runtime's own watchdog (not a test clock)
    assert [e for e in events if "LIVESTRAT_HALT" in (e.get("tags") or [])] == []
    async with SqliteLedger(config.ledger.sqlite_path, config.strategy.key) as ledger:
        fills = await ledger.fills(run_key(config.strategy.key, 1))  # the paper runtime's first (and only) run
    assert recompute_pnl(fills).instruments["BTCUSDT.BINANCE"].position != 0
    assert "could not be read" in runtime.output()


async def test_a_strategy_deleted_and_gone_before_its_pod_stops_flattens_under_flatten(
    tmp_path, emulator, kubeconfig_path
):
    # kubectl delete livestrategy, its finalizer taken off by hand (the operator was down): the object is gone
    # before the garbage collector stops the pod. A deletion is a halt, and no pod will take the position back.
    config, runtime, before, code, events, _ = await run_until_sigterm(
        tmp_path, emulator, kubeconfig_path, [RESTING, ENTRY], "flatten", deleted=True
    )

    assert before["trading"]["positions"][0]["quantity"] == "0.020000"
    assert OVERRAN not in runtime.output()  # within its budget, by the runtime's own watchdog (not a test clock)
    final = final_status_of(events)
    assert {final[e["submit"]] for e in events if e.get("tag") == "resting" and "submit" in e} == {"OrderCanceled"}
    closes = [e for e in events if e.get("event") == "OrderFilled" and "LIVESTRAT_HALT" in e["tags"]]
    assert len(closes) == 1, runtime.output()
    async with SqliteLedger(config.ledger.sqlite_path, config.strategy.key) as ledger:
        fills = await ledger.fills(run_key(config.strategy.key, 1))  # the paper runtime's first (and only) run
    assert recompute_pnl(fills).instruments["BTCUSDT.BINANCE"].position == 0
    assert "the LiveStrategy no longer exists" in runtime.output()
    assert code == 0, runtime.output()


async def sigterm_while_connecting(tmp_path, pg_database, name, *, env=None, before_start=None, before_signal=None):
    """A live Binance testnet node whose way to Binance never answers: a proxy that accepts the connection and
    says nothing (a black hole, as a firewall that drops packets), so the client is still connecting when
    SIGTERM comes. (A refused connection fails the connect at once, and the runtime stops by itself with the
    reason: tests/live.) The venue's network is what cannot exist here; nothing is mocked. ``before_start(config,
    spec)`` and ``before_signal(config)`` run before the runtime starts and just before the signal; ``env`` is
    added to the runtime's environment (``KUBECONFIG``: it reports its status and reads its halt record)."""
    manifest = yaml.safe_load((ROOT / "examples" / "live-binance-testnet.yaml").read_text())
    spec = manifest["spec"]
    spec["pod"] = {"terminationGracePeriodSeconds": 15}
    config, path = strategy_config(
        tmp_path, spec, name=name, ledger_kind="postgresql", report_status=bool(env and "KUBECONFIG" in env)
    )
    if before_start is not None:
        before_start(config, spec)
    held: list[asyncio.StreamWriter] = []

    async def black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # never answered, never closed until the test ends

    server = await asyncio.start_server(black_hole, "127.0.0.1", 0)
    proxy = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    environ = {ENV_API_KEY: "k" * 16, ENV_API_SECRET: "s" * 16, "HTTPS_PROXY": proxy, "HTTP_PROXY": "", **(env or {})}
    runtime = RuntimeProcess.start(config, path, ledger_dsn=pg_database, env=environ)
    try:
        await runtime.wait_until(lambda s: s["nodeState"] == "Starting" and "ledger" in s, what="a starting node")
        await asyncio.sleep(1.0)  # the node is building and dialling the venue
        if before_signal is not None:
            before_signal(config)
        runtime.signal()
        code, _ = await runtime.wait_exit(timeout=config.halt_budget_seconds + 10)
    finally:
        runtime.kill()
        for writer in held:
            writer.close()
        server.close()
    assert held, "the client dialled the venue through the black hole"
    assert OVERRAN not in runtime.output()  # within its budget, by the runtime's own watchdog (not a test clock)
    assert "stopping before the node finished starting" in runtime.output()
    return runtime, code


async def test_sigterm_while_a_live_venue_is_still_connecting_exits_within_the_bound(tmp_path, pg_database):
    runtime, code = await sigterm_while_connecting(tmp_path, pg_database, "live-unreachable")
    assert code == 0, runtime.output()


async def test_a_halt_under_flatten_before_a_live_node_has_reconciled_is_incomplete(
    tmp_path, pg_database, emulator, kubeconfig_path
):
    # The operator records a halt (spec.replicas 0) while a replacement pod of a live strategy is still connecting:
    # its node never reconciled, so it cannot know what the venue holds (the position the pod before it left, by
    # design, for the next start). A flatten it could not even look at is not a clean halt: exit 5, said so.
    def create(config, spec):
        assert spec["haltPolicy"] == "flatten"
        emulator.add_namespace(config.strategy.namespace)
        manifest = {"apiVersion": "livestrat.io/v1alpha1", "kind": "LiveStrategy", "metadata": {"name": "live-halted"}}
        emulator.create_object(LIVESTRATEGIES, {**manifest, "spec": spec}, namespace=config.strategy.namespace)

    def halt(config):
        record_halt(emulator, "live-halted", config.strategy.namespace, HALT_RECORD)

    runtime, code = await sigterm_while_connecting(
        tmp_path,
        pg_database,
        "live-halted",
        env={"KUBECONFIG": str(kubeconfig_path)},
        before_start=create,
        before_signal=halt,
    )
    assert code == 5, runtime.output()  # ExitCode.HALT_INCOMPLETE
    assert "never reconciled" in runtime.output()
