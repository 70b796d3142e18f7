"""A strategy pod's runtime with its ledger on a real PostgreSQL server (started by the tests).

Real ``livestrat runtime`` processes, killed with SIGKILL, restarted, run twice at once;
nothing is mocked.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from urllib.parse import urlsplit

import asyncpg
import pytest

from livestrat.kube_emulator.emulator import kubeconfig
from strategy_runtime.ledger import PostgresLedger
from strategy_runtime.ledger.dsn import DsnParts
from strategy_runtime.ledger.reader import LedgerSource
from strategy_runtime.pnl import recompute_pnl
from tests.support.catalogs import flat, write_price_path
from tests.support.kube import LIVESTRATEGIES
from tests.support.ledger import take_over_fence
from tests.support.runtime_process import RuntimeProcess, example_spec, paper_spec, strategy_config
from tests.support.scripted import read_events, scripted_strategy
from tests.support.tcp_proxy import CuttableProxy

pytestmark = pytest.mark.slow


def fills_seen(metrics: str) -> int:
    return int(float(re.search(r"^livestrat_fills_seen_total (\S+)$", metrics, re.MULTILINE).group(1)))


async def stored(dsn: str, key: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT (instrument_id, trade_id)) AS d FROM fills WHERE strategy_key = $1",
            key,
        )
        return row["n"], row["d"]
    finally:
        await conn.close()


async def test_kill_9_mid_run_then_a_restart_leaves_every_fill_exactly_once_each_run_apart(tmp_path, pg_database):
    spec = example_spec()
    spec["data"]["replay"]["speed"] = 20000  # 3000 one-minute bars in about 9 s: the kill lands mid-replay
    config, path = strategy_config(tmp_path, spec, name="ema-cross-btc", ledger_kind="postgresql")
    first = RuntimeProcess.start(config, path, ledger_dsn=pg_database, tag="first")
    try:
        await first.wait_ready()
        killed = await first.wait_until(lambda s: s["trading"]["fills"] >= 20, what="20 fills committed")
        first.kill()  # SIGKILL: no halt, no flush, no goodbye
    finally:
        first.kill()
    killed_key = killed["trading"]["ledgerKey"]
    killed_at, _ = await stored(pg_database, killed_key)

    # the replacement is a fresh simulated account replaying the catalog from the start: a run of its own
    second = RuntimeProcess.start(config, path, ledger_dsn=pg_database, tag="second")
    try:
        await second.wait_ready()
        await second.wait_until(lambda s: s["trading"]["replay"]["finished"], what="the replay's end")
        state = await second.wait_until(lambda s: s["ledger"]["pending"] == 0, what="the ledger to catch up")
        _, metrics = await second.get("/metrics")
        second.signal()
        code, _ = await second.wait_exit(30)
    finally:
        second.kill()
    assert code == 0, second.output()

    key = state["trading"]["ledgerKey"]
    assert (killed_key, key) == (f"{config.strategy.key}@run-1", f"{config.strategy.key}@run-2")
    total, distinct = await stored(pg_database, key)
    complete_run = fills_seen(metrics)  # the replacement saw every fill of an uninterrupted run
    assert 0 < killed_at < complete_run, (killed_at, complete_run)
    assert state["trading"]["fills"] == complete_run  # the status counts this run's fills, as the ledger holds them
    # each once: none lost, none twice; and no close of the halt's (haltPolicy flatten): a SIGTERM the operator
    # recorded no halt for (a rollout, an eviction, a drain) is not a halt and leaves the position
    assert total == distinct == complete_run
    assert await stored(pg_database, killed_key) == (killed_at, killed_at)  # the killed run's, untouched


async def test_a_second_runtime_for_the_same_strategy_is_refused_while_the_first_runs(tmp_path, pg_database):
    catalog = write_price_path(tmp_path / "catalog", flat(20))
    spec = paper_spec(scripted_strategy(str(tmp_path / "events.jsonl")))
    config, path = strategy_config(tmp_path / "a", spec, catalog=catalog, ledger_kind="postgresql")
    # the replacement pod: same strategy, same database, its own port; it waits 2 s for the fence
    config_b, path_b = strategy_config(
        tmp_path / "b", spec, catalog=catalog, ledger_kind="postgresql", fence_wait_seconds=2
    )
    first = RuntimeProcess.start(config, path, ledger_dsn=pg_database, tag="first")
    try:
        await first.wait_ready()
        second = RuntimeProcess.start(config_b, path_b, ledger_dsn=pg_database, tag="second")
        try:
            code, _ = await second.wait_exit(60)
        finally:
            second.kill()
        assert code == 3, second.output()
        assert "is already running" in second.output()
        assert f"pid {first.process.pid}" in second.output()  # the holder is named
        status, _ = await first.get("/readyz")
        assert status == 200  # the first one trades on, undisturbed
        first.signal()
        assert (await first.wait_exit(30))[0] == 0
    finally:
        first.kill()


async def test_a_lost_fence_stops_every_order_at_once_says_why_in_state_and_exits_4(tmp_path, pg_database, emulator):
    # Two resting orders, and a strategy that re-quotes the moment one is cancelled: when the halt
    # cancels them after the fence is lost, it tries to trade again at once.
    events = tmp_path / "events.jsonl"
    resting = {"bar": 2, "do": "limit", "side": "BUY", "quantity": "0.01", "offset": -0.2, "count": 2, "tag": "r"}
    strategy = scripted_strategy(str(events), steps=[resting], resubmit_on_cancel=True)
    catalog = write_price_path(tmp_path / "catalog", flat(20))
    spec = paper_spec(strategy, haltPolicy="flatten")
    # A budget long enough that the halt's last status push can be held back while the test reads /state.
    config, path = strategy_config(
        tmp_path, spec, catalog=catalog, ledger_kind="postgresql", report_status=True, halt_budget_seconds=60
    )
    emulator.add_namespace(config.strategy.namespace)
    manifest = {"apiVersion": "livestrat.io/v1alpha1", "kind": "LiveStrategy", "metadata": {"name": "scripted"}}
    emulator.create_object(LIVESTRATEGIES, {**manifest, "spec": spec}, namespace=config.strategy.namespace)
    api = urlsplit(str(emulator.url))
    proxy = CuttableProxy(api.hostname, api.port)  # the API server, as the runtime reaches it
    await proxy.start()
    kube = tmp_path / "kubeconfig.json"
    kube.write_text(json.dumps(kubeconfig(f"http://127.0.0.1:{proxy.port}")))
    runtime = RuntimeProcess.start(config, path, ledger_dsn=pg_database, env={"KUBECONFIG": str(kube)})
    try:
        await runtime.wait_ready()
        await runtime.wait_until(
            lambda s: s["trading"]["openOrders"] == 2 and s["trading"]["replay"]["finished"], what="resting orders"
        )
        await proxy.cut()  # the final status push waits for the API server: /state can be read meanwhile
        # another runtime takes the fence: the server ends this one's fencing session, the other takes the lock
        other = await take_over_fence(pg_database, config.strategy.key)
        # the halt: every order cancelled, then its final push held back (nodeState Stopped, the
        # process still up and serving until the API server is back or the push's deadline)
        state = await runtime.wait_until(
            lambda s: s["stopReason"] is not None and s["trading"]["openOrders"] == 0,
            what="the halt, with every order cancelled",
        )
        await proxy.restore()
        code, _ = await runtime.wait_exit(60)
        await other.close()
    finally:
        runtime.kill()
        await proxy.stop()
    assert code == 4, runtime.output()

    # /state says why: the fence is lost (and how), the gate refuses every order, the runtime halts
    assert state["nodeState"] in ("Halting", "Stopped")
    assert state["ledger"]["fenceHeld"] is False
    assert "held by another session" in state["ledger"]["fenceLostReason"]
    assert state["stopReason"].startswith("the ledger fence was lost")
    assert state["ordersRefused"].startswith("the ledger fence was lost")
    assert "another runtime may trade this strategy" in state["ordersRefused"]

    # the venue accepted only the two orders placed before the loss; every order tried after it was denied
    seen = read_events(str(events))
    accepted = {e["order"] for e in seen if e.get("event") == "OrderAccepted"}
    resting_orders = {e["submit"] for e in seen if e.get("tag") == "r"}
    after = [e["submit"] for e in seen if e.get("tag") == "after-cancel"]
    assert accepted == resting_orders and len(resting_orders) == 2
    last_event = {e["order"]: e["event"] for e in seen if "event" in e}
    assert {last_event[o] for o in resting_orders} == {"OrderCanceled"}
    assert len(after) == 2, seen  # the strategy re-quoted once per cancel
    assert {last_event[o] for o in after} == {"OrderDenied"}, seen
    # denied by the RiskEngine, HALTED the moment the loss was known (or by the gate, shut at the same moment)
    reasons = [e["reason"] for e in seen if e.get("order") in after and e.get("event") == "OrderDenied"]
    assert reasons and all("HALTED" in r or "fence was lost" in r for r in reasons), reasons
    assert all(e["event"] != "OrderAccepted" for e in seen if e.get("order") in after)
    assert not any(e.get("event") == "OrderFilled" for e in seen)
    async with PostgresLedger(pg_database, "reader") as reader:
        assert await reader.fills(config.strategy.key) == []

    # and the pushed status, once the API server was back: stopped, nothing open
    pushed = emulator.read_object(LIVESTRATEGIES, "scripted", namespace=config.strategy.namespace)["status"]
    assert pushed["trading"]["nodeState"] == "Stopped" and pushed["trading"]["openOrders"] == 0


async def test_a_risk_halt_survives_a_restart_until_it_is_acknowledged(tmp_path, pg_database):
    catalog = write_price_path(tmp_path / "catalog", flat(20))
    events = tmp_path / "events.jsonl"
    steps = [{"bar": 2, "do": "market", "side": "BUY", "quantity": "0.1", "tag": "entry"}]
    spec = paper_spec(
        scripted_strategy(str(events), steps=steps),
        risk={"maxPosition": 0.05, "onBreach": "HaltInPlace"},
        haltPolicy="flatten",
    )

    async def run(acknowledgement: str | None, tag: str) -> dict:
        config, path = strategy_config(
            tmp_path / tag, spec, catalog=catalog, ledger_kind="postgresql", risk_acknowledgement=acknowledgement
        )
        runtime = RuntimeProcess.start(config, path, ledger_dsn=pg_database, tag=tag)
        try:
            await runtime.wait_ready()
            state = await runtime.wait_until(
                lambda s: (
                    s["trading"]["replay"]["finished"]
                    and s["risk"]["state"] != "Reducing"
                    and s["ledger"]["pending"] == 0
                ),  # the halt's close committed: this run's fills count it
                what="the replay's end, no halt half-way, every fill committed",
            )
            runtime.signal()
            assert (await runtime.wait_exit(30))[0] == 0
        finally:
            runtime.kill()
        return state

    breached = await run(None, "breach")
    assert breached["risk"]["state"] == "Halted"
    assert breached["risk"]["breachedLimit"] == "maxPosition"

    # a restart with the same configuration (a crash, an evicted pod) trades nothing
    restarted = await run(None, "restart")
    assert restarted["risk"]["state"] == "Halted"
    assert restarted["risk"]["breachedAt"] == breached["risk"]["breachedAt"]
    assert restarted["risk"]["breachedAtMarket"] == breached["risk"]["breachedAtMarket"]  # both kept in the ledger
    assert breached["risk"]["breachedAtMarket"] < breached["risk"]["breachedAt"]  # the catalog's day, not today
    assert restarted["trading"]["fills"] == 0  # this run (a fresh account) filled nothing ...
    assert restarted["trading"]["lastFill"] is None
    assert restarted["trading"]["ledgerKey"] != breached["trading"]["ledgerKey"]  # ... the first run's 2 are its own
    assert await stored(pg_database, breached["trading"]["ledgerKey"]) == (2, 2)  # the entry and the halt's close

    # a human acknowledged the halt (the operator renders the annotation into the configuration)
    resumed = await run("2026-01-02T10:00:00Z ops@desk", "acknowledged")
    assert resumed["risk"]["state"] == "Halted"  # it traded again, and broke the same limit again
    assert resumed["risk"]["breachedAt"] != breached["risk"]["breachedAt"]
    assert resumed["trading"]["fills"] == 2  # the deterministic replay's fills are the same ones


async def test_a_restarted_paper_pod_records_each_run_apart_and_its_ledger_is_what_its_account_did(
    tmp_path, pg_database, emulator
):
    # The EMA-cross example (haltPolicy flatten), stopped gracefully at a different point of the replay
    # each time, on a venue that draws new trade ids at every start: each start is a fresh simulated
    # account replaying from the first bar, and each SIGTERM flattens where that run happened to be.
    spec = example_spec()
    assert spec["haltPolicy"] == "flatten"
    spec["data"]["replay"]["speed"] = 20000
    spec["venue"]["options"] = {"use_random_ids": "true"}
    config, path = strategy_config(tmp_path, spec, name="ema-cross-btc", ledger_kind="postgresql", report_status=True)
    namespace = config.strategy.namespace
    emulator.add_namespace(namespace)
    manifest = {"apiVersion": "livestrat.io/v1alpha1", "kind": "LiveStrategy", "metadata": {"name": "ema-cross-btc"}}
    emulator.create_object(LIVESTRATEGIES, {**manifest, "spec": spec}, namespace=namespace)
    kube = tmp_path / "kubeconfig.json"
    kube.write_text(json.dumps(kubeconfig(str(emulator.url))))
    ledger = LedgerSource(postgres=DsnParts.parse(pg_database))

    keys: list[str] = []
    for run, stop_after in enumerate((10, 25, 40)):
        runtime = RuntimeProcess.start(
            config, path, ledger_dsn=pg_database, env={"KUBECONFIG": str(kube)}, tag=f"r{run}"
        )
        try:
            await runtime.wait_ready()
            await runtime.wait_until(lambda s, n=stop_after: s["trading"]["fills"] >= n, what=f"{stop_after} fills")
            # a halt the operator recorded (status.halt, as for kubectl scale --replicas=0), then SIGTERM: the halt
            # flattens and the final status is pushed; the record goes before the next start, as the operator's does
            record = {"reason": "ScaledToZero", "message": "spec.replicas is 0", "since": "2026-12-06T07:00:00Z"}
            emulator.patch_object(
                LIVESTRATEGIES, "ema-cross-btc", {"status": {"halt": record}}, namespace=namespace, subresource="status"
            )
            runtime.signal()
            code, _ = await runtime.wait_exit(30)
        finally:
            runtime.kill()
        assert code == 0, runtime.output()
        emulator.patch_object(
            LIVESTRATEGIES, "ema-cross-btc", {"status": {"halt": None}}, namespace=namespace, subresource="status"
        )

        # what the account did, as the final status says (after the halt's flatten) ...
        final = emulator.read_object(LIVESTRATEGIES, "ema-cross-btc", namespace=namespace)["status"]["trading"]
        assert final["nodeState"] == "Stopped"
        key = final.get("ledgerKey", config.strategy.key)
        keys.append(key)
        # ... is what the ledger holds for this run: its fills, its position, its PnL
        fills = await ledger.fills(key)
        assert final["fills"] == len(fills) >= stop_after
        book = recompute_pnl(fills).instruments
        assert final["positions"] == [] and all(each.position == 0 for each in book.values()), (run, book)  # flat
        amount, currency = final["realizedPnl"].split()
        recomputed = sum((each.net_realized_pnl for each in book.values()), Decimal(0))
        assert {each.currency for each in book.values()} == {currency}
        assert recomputed.quantize(Decimal(amount)) == Decimal(amount), (run, recomputed, amount)

    # every run is its own, and nothing of an earlier run is counted in a later one
    assert len(set(keys)) == 3, keys
    assert all(key.startswith(f"{config.strategy.key}@run-") for key in keys), keys
    held = await ledger.strategies()
    assert set(held) == set(keys)
