"""A strategy pod's runtime with its ledger on a real PostgreSQL server (started by the tests).

Real ``livestrat runtime`` processes, killed with SIGKILL, restarted, run twice at once;
nothing is mocked.
"""

from __future__ import annotations

import re

import asyncpg
import pytest

from strategy_runtime.ledger.postgres import DsnParts
from tests.support.catalogs import flat, write_price_path
from tests.support.runtime_process import RuntimeProcess, example_spec, paper_spec, strategy_config
from tests.support.scripted import scripted_strategy

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


async def test_kill_9_mid_run_then_a_restart_leaves_every_fill_exactly_once(tmp_path, pg_database):
    spec = example_spec()
    spec["data"]["replay"]["speed"] = 20000  # 3000 one-minute bars in about 9 s: the kill lands mid-replay
    config, path = strategy_config(tmp_path, spec, name="ema-cross-btc", ledger_kind="postgresql")
    first = RuntimeProcess.start(config, path, ledger_dsn=pg_database, tag="first")
    try:
        await first.wait_ready()
        await first.wait_until(lambda s: s["trading"]["fills"] >= 20, what="20 fills committed")
        first.kill()  # SIGKILL: no halt, no flush, no goodbye
    finally:
        first.kill()
    killed_at, _ = await stored(pg_database, config.strategy.key)

    # the replacement replays the catalog from the start: the same fills come again
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

    total, distinct = await stored(pg_database, config.strategy.key)
    complete_run = fills_seen(metrics)  # the replacement saw every fill of an uninterrupted run
    assert 0 < killed_at < complete_run, (killed_at, complete_run)
    assert state["trading"]["fills"] == complete_run  # the status counts what the ledger holds
    halt_close = 1 if state["trading"]["positions"] else 0  # haltPolicy flatten on SIGTERM
    assert total == distinct == complete_run + halt_close  # each once: none lost, none twice


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


async def test_a_lost_fence_stops_trading_at_once_and_exits(tmp_path, pg_dsn, pg_database):
    catalog = write_price_path(tmp_path / "catalog", flat(20))
    resting = {"bar": 2, "do": "limit", "side": "BUY", "quantity": "0.01", "offset": -0.2, "count": 2, "tag": "r"}
    spec = paper_spec(scripted_strategy(str(tmp_path / "events.jsonl"), steps=[resting]), haltPolicy="flatten")
    config, path = strategy_config(tmp_path, spec, catalog=catalog, ledger_kind="postgresql")
    runtime = RuntimeProcess.start(config, path, ledger_dsn=pg_database)
    try:
        await runtime.wait_ready()
        await runtime.wait_until(lambda s: s["trading"]["openOrders"] == 2, what="resting orders")
        admin = await asyncpg.connect(pg_dsn)
        try:  # the server ends the fencing session, as when it restarts or loses the pod
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name LIKE 'livestrat-fence%' AND datname = $1",
                DsnParts.parse(pg_database).database,
            )
        finally:
            await admin.close()
        code, _ = await runtime.wait_exit(30)
    finally:
        runtime.kill()
    assert code == 4, runtime.output()
    assert "fence was lost" in runtime.output()
    assert "halt: over in" in runtime.output()


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
                lambda s: s["trading"]["replay"]["finished"] and s["risk"]["state"] != "Reducing",
                what="the replay's end, and no halt half-way",
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
    assert restarted["trading"]["fills"] == 2  # the entry and the halt's close, from the first run only
    assert restarted["trading"]["lastFill"] is None  # this run filled nothing

    # a human acknowledged the halt (the operator renders the annotation into the configuration)
    resumed = await run("2026-01-02T10:00:00Z ops@desk", "acknowledged")
    assert resumed["risk"]["state"] == "Halted"  # it traded again, and broke the same limit again
    assert resumed["risk"]["breachedAt"] != breached["risk"]["breachedAt"]
    assert resumed["trading"]["fills"] == 2  # the deterministic replay's fills are the same ones
