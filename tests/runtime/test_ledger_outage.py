"""When the ledger cannot keep up, trading waits for it; a risk halt it cannot record yet keeps the pod unready.

Real ``livestrat runtime`` processes on a real SQLite ledger file. The outage is another
process holding the file's write lock (a long transaction): the runtime's commits wait, then
fail and are retried, and nothing else changes: the fence (a lock file) stays held.
"""

from __future__ import annotations

import pytest
import yaml

from strategy_runtime.ledger import SqliteLedger, run_key
from tests.support.catalogs import flat, write_price_path
from tests.support.ledger import read_sqlite_fills, sqlite_write_lock
from tests.support.runtime_process import ROOT, RuntimeProcess, paper_spec, strategy_config
from tests.support.scripted import read_events, scripted_strategy

pytestmark = pytest.mark.slow

PACED = {"catalog": {"emptyDir": {}}, "replay": {"speed": 600}}  # a one-minute bar every 0.1 s


async def test_new_orders_wait_while_the_ledger_is_behind_and_no_fill_is_lost(tmp_path):
    events = tmp_path / "events.jsonl"
    catalog = write_price_path(tmp_path / "catalog", flat(600))
    spec = paper_spec(scripted_strategy(str(events), keep_trying_from=2), data=PACED)
    config, path = strategy_config(tmp_path, spec, catalog=catalog, ledger_hold_lag_seconds=1.0)
    runtime = RuntimeProcess.start(config, path)
    try:
        await runtime.wait_ready()
        await runtime.wait_until(lambda s: s["trading"]["fills"] >= 3, what="some fills committed")
        with sqlite_write_lock(config.ledger.sqlite_path):
            held = await runtime.wait_until(lambda s: s["ledger"]["ordersHeld"], what="new orders held")
        caught_up = await runtime.wait_until(
            lambda s: s["ledger"]["ordersHeld"] is None and s["ledger"]["pending"] == 0, what="the ledger to catch up"
        )
        await runtime.wait_until(lambda s: s["trading"]["fills"] >= caught_up["trading"]["fills"] + 3, what="trading")
        runtime.signal()
        code, _ = await runtime.wait_exit(30)
    finally:
        runtime.kill()
    assert code == 0, runtime.output()
    assert "the ledger is behind" in held["ledger"]["ordersHeld"]
    assert held["risk"]["state"] == "Active"  # a hold is not a breach

    rows = read_events(str(events))
    denied = [e for e in rows if e.get("event") == "OrderDenied"]
    assert denied and all("new orders are held: the ledger is behind" in e["reason"] for e in denied)
    # orders passed again after the hold: a fill after the first denial
    first_denial = rows.index(denied[0])
    assert any(e.get("event") == "OrderFilled" for e in rows[first_denial:])
    # no fill was dropped: every fill the strategy saw is in the ledger, once
    filled = {e["order"] for e in rows if e.get("event") == "OrderFilled"}
    stored = read_sqlite_fills(config.ledger.sqlite_path, run_key(config.strategy.key, 1))
    assert len(stored) == len(filled) == len({f.client_order_id for f in stored})


async def test_a_risk_halt_the_ledger_cannot_record_yet_keeps_the_runtime_unready_until_it_is(tmp_path):
    catalog = write_price_path(tmp_path / "catalog", flat(300))
    steps = [{"bar": 30, "do": "market", "side": "BUY", "quantity": "0.1", "tag": "entry"}]
    spec = paper_spec(
        scripted_strategy(str(tmp_path / "events.jsonl"), steps=steps),
        risk={"maxPosition": 0.05, "onBreach": "HaltInPlace"},
        haltPolicy="flatten",
        data=PACED,
    )
    config, path = strategy_config(tmp_path, spec, catalog=catalog, ledger_hold_lag_seconds=60)
    runtime = RuntimeProcess.start(config, path)
    try:
        await runtime.wait_ready()
        with sqlite_write_lock(config.ledger.sqlite_path):  # taken before the breach on bar 30
            unrecorded = await runtime.wait_until(
                lambda s: s["risk"]["breachedLimit"] and s["risk"]["haltRecorded"] is False,
                what="a breach the ledger cannot record",
            )
            readyz = await runtime.get("/readyz")
        recorded = await runtime.wait_until(lambda s: s["risk"]["haltRecorded"] is True, what="the halt recorded")
        ready_again = await runtime.get("/readyz")
        runtime.signal()
        code, _ = await runtime.wait_exit(30)
    finally:
        runtime.kill()
    assert code == 0, runtime.output()
    assert unrecorded["risk"]["breachedLimit"] == "maxPosition"
    assert unrecorded["ledger"]["haltRecorded"] is False
    assert readyz[0] == 503 and "risk halt is not recorded" in readyz[1]
    # once recorded, a risk-halted runtime is ready again (up and reporting, not trading)
    assert ready_again[0] == 200
    assert recorded["risk"]["state"] == "Halted"
    async with SqliteLedger(config.ledger.sqlite_path, config.strategy.key) as ledger:
        halt = await ledger.active_halt()
    assert halt is not None and halt.breached_limit == "maxPosition"


async def test_a_live_strategy_with_an_sqlite_ledger_is_refused(tmp_path):
    spec = yaml.safe_load((ROOT / "examples" / "live-binance-testnet.yaml").read_text())["spec"]
    config, path = strategy_config(tmp_path, spec, name="live-sqlite")  # ledger: the SQLite file
    runtime = RuntimeProcess.start(config, path)
    try:
        code, _ = await runtime.wait_exit(30)
    finally:
        runtime.kill()
    assert code == 2, runtime.output()
    assert "is a live strategy but its ledger is an SQLite file" in runtime.output()
    assert "spec.ledger.dsnSecret" in runtime.output()
