"""The fills ledger, against a real PostgreSQL server and a real SQLite file.

Every fill a strategy makes is stored exactly once, whatever happens to the process or the
database, and only one runtime at a time may trade a strategy.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import signal
import sqlite3
import threading
import time
import traceback
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest

from livestrat.api.runtime_config import ENV_LEDGER_DSN, LedgerTarget, RuntimeConfig, StrategyIdentity
from livestrat.api.spec import LiveStrategySpec
from livestrat.manifests import load_one_strategy
from strategy_runtime.ledger import (
    FencedOut,
    FenceTaken,
    FillSpool,
    HaltRecord,
    LedgerClosed,
    LedgerError,
    LedgerSchemaError,
    LedgerUnavailable,
    Migration,
    PostgresLedger,
    Side,
    SqliteLedger,
    ledger_for,
)
from strategy_runtime.ledger.io_process import IoProcess
from strategy_runtime.ledger.postgres import DsnParts
from strategy_runtime.ledger.sqlite import fenced_insert_sql
from strategy_runtime.runtime import EXIT_INVALID, RuntimeOptions, StrategyRuntime
from tests.support.ledger import FENCED_OUT_EXIT, KEY, ROOT, Target, make_fill, wait_for_line
from tests.support.tcp_proxy import CuttableProxy

PASSWORD = "Sup3r-S3cret-Ledger-Pw"
ALL_VERSIONS = [m.version for m in SqliteLedger.MIGRATIONS]
NEXT_VERSION = len(ALL_VERSIONS) + 1


async def flushed(ledger, timeout: float = 60) -> None:
    await asyncio.wait_for(ledger.flush(), timeout)


async def eventually(condition, timeout: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def kill_9(process) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


# --------------------------------------------------------------------------- recording


async def test_fills_read_back_exactly_as_recorded_in_time_order(target):
    fills = [
        make_fill(2, quantity=Decimal("0.00000001"), price=Decimal("123456789.123456789")),
        make_fill(0, price=Decimal("1.50"), commission=Decimal("-0.0025")),  # a maker rebate
        make_fill(1, position_id=None, account_id=None, quote_currency=None),
        make_fill(3, ts_event=make_fill(1).ts_event, trade_id="T-0000000b"),  # same time: trade id decides
    ]
    async with target.ledger() as ledger:
        for fill in fills:
            ledger.record(fill)
        await flushed(ledger)
        stored = await ledger.fills()
        assert await ledger.count() == 4

    expected = sorted(fills, key=lambda f: (f.ts_event, f.trade_id))
    assert stored == expected
    # exact, scale included: "1.50" stays "1.50", nothing passed through a float
    assert [(str(f.quantity), str(f.price), str(f.commission)) for f in stored] == [
        (str(f.quantity), str(f.price), str(f.commission)) for f in expected
    ]


async def test_a_duplicated_or_replayed_fill_is_stored_once(target):
    first, second = make_fill(0), make_fill(1)
    async with target.ledger() as ledger:
        ledger.record(first)
        ledger.record(first)  # duplicated within one batch
        await flushed(ledger)
        ledger.record(first)  # replayed after it committed
        ledger.record(second)
        await flushed(ledger)
        assert ledger.lag().totals.new == 2
        assert ledger.lag().totals.duplicates == 2

    async with target.ledger() as restarted:  # a restart replays everything it knows
        restarted.record(first)
        restarted.record(second)
        await flushed(restarted)
        assert restarted.lag().totals.new == 0
        assert restarted.lag().totals.duplicates == 2
        assert await restarted.fills() == [first, second]


async def test_the_same_trade_id_on_another_instrument_is_another_fill(target):
    # Binance and OKX number trades per instrument: the key includes the instrument.
    btc = make_fill(0)
    eth = make_fill(0, instrument_id="ETHUSDT-PERP.BINANCE")
    async with target.ledger() as ledger:
        ledger.record(btc)
        ledger.record(eth)
        await flushed(ledger)
        assert await ledger.count() == 2


async def test_a_burst_of_fills_is_queued_without_blocking_and_committed_by_flush(target, monkeypatch):
    # Structural, not timed: record() is a plain function that only enqueues, the writer commits
    # in batches of at most 500, and SQLite's commits run in the ledger's writer process, never on
    # the event loop's thread nor on another thread of the runtime's process.
    assert not inspect.iscoroutinefunction(SqliteLedger.record)
    assert not inspect.iscoroutinefunction(PostgresLedger.record)
    burst = [make_fill(i) for i in range(20_000)]
    batches: list[int] = []
    ledger = target.ledger(on_commit=lambda batch: batches.append(len(batch.fills)))
    commit_threads: set[str] = set()
    if target.kind == "sqlite":
        insert = SqliteLedger._insert_large_sync

        def insert_on_a_thread(self, fills):
            commit_threads.add(threading.current_thread().name)
            return insert(self, fills)

        monkeypatch.setattr(SqliteLedger, "_insert_large_sync", insert_on_a_thread)
    async with ledger:
        returned = {ledger.record(fill) for fill in burst}
        assert returned == {None}
        # record() never yielded to the loop, so the writer cannot have taken anything yet
        assert ledger.lag().pending == 20_000
        assert batches == []

        await flushed(ledger)

        assert ledger.lag().pending == 0
        assert ledger.lag().totals.new == 20_000
        assert await ledger.count() == 20_000
        assert await ledger.fills() == burst
        if target.kind == "sqlite":
            assert ledger._inserts.pid not in (None, os.getpid())
    assert sum(batches) == 20_000
    assert max(batches) <= 500 and len(batches) >= 40
    assert not commit_threads, commit_threads


async def test_an_sqlite_batch_commits_in_one_statement_that_checks_the_fence(tmp_path, monkeypatch):
    # The sqlite3 module gives up the interpreter's lock around every statement it steps and takes it back
    # after: BEGIN, the fence's SELECT, the INSERT and COMMIT were four statements per commit, each a wait on a
    # thread for the event loop's. One INSERT that checks the epoch itself, in SQLite's own implicit
    # transaction, is one request to the ledger's I/O process (``io_process``); a stale token still
    # stores nothing (the test above), and a batch of duplicates only, with the fence still this runtime's,
    # is told from one (the epoch read after it, in the same process).
    requests: list[str] = []
    request = IoProcess.request

    async def recording(self, message):
        if message[0] == "insert":
            requests.append(message[1])
        return await request(self, message)

    monkeypatch.setattr(IoProcess, "request", recording)
    target = Target("sqlite", str(tmp_path / "ledger.sqlite"))
    async with target.ledger() as ledger:
        statements: list[str] = []
        ledger._conn.set_trace_callback(statements.append)
        for i in range(3):  # recorded without yielding to the loop: one batch
            ledger.record(make_fill(i))
        await flushed(ledger)
        ledger.record(make_fill(0))  # a batch of duplicates only, the fence still this runtime's
        await flushed(ledger)
        ledger._conn.set_trace_callback(None)
        assert ledger.lag().totals.new == 3 and ledger.lag().totals.duplicates == 1
        assert requests == [fenced_insert_sql(3), fenced_insert_sql(1)]
        assert statements == []  # nothing of it on the runtime's own connection


async def test_an_sqlite_batch_larger_than_one_statement_takes_commits_whole_in_one_fenced_transaction(tmp_path):
    # SQLite before 3.32 takes 999 parameters a statement: 58 fills. A larger batch is several INSERTs inside one
    # BEGIN IMMEDIATE … COMMIT whose SELECT checks the fence, so that it commits whole or not at all.
    target = Target("sqlite", str(tmp_path / "ledger.sqlite"))
    async with target.ledger() as ledger:
        ledger._conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
        ledger._max_rows = ledger._rows_per_statement(ledger._conn, extra=2)  # as a connection to such a SQLite
        statements: list[str] = []
        ledger._conn.set_trace_callback(statements.append)
        fills = [make_fill(i) for i in range(100)]
        for fill in fills:
            ledger.record(fill)
        await flushed(ledger)
        ledger._conn.set_trace_callback(None)
        assert [statement.split()[0] for statement in statements] == ["BEGIN", "SELECT", "INSERT", "INSERT", "COMMIT"]
        assert await ledger.fills() == fills


async def test_record_refuses_fills_it_must_not_take(target):
    ledger = target.ledger()
    with pytest.raises(LedgerClosed):
        ledger.record(make_fill(0))  # not open: not fenced, so not trading
    async with ledger:
        with pytest.raises(ValueError, match="other/strategy"):
            ledger.record(make_fill(0, key="other/strategy"))
    with pytest.raises(LedgerClosed):
        ledger.record(make_fill(1))


def test_a_fill_must_be_exact_and_complete():
    with pytest.raises(TypeError, match="Decimal"):
        make_fill(0, price=64123.45)
    with pytest.raises(ValueError, match="positive"):
        make_fill(0, quantity=Decimal(0))
    with pytest.raises(ValueError, match="finite"):
        make_fill(0, price=Decimal("NaN"))
    with pytest.raises(ValueError, match="trade_id"):
        make_fill(0, trade_id="")
    assert make_fill(0, side="SELL").side is Side.SELL


# --------------------------------------------------------------------------- schema


async def test_opening_twice_and_concurrently_migrates_once(target):
    async with target.ledger():
        pass
    async with target.ledger():
        pass
    assert await target.schema_versions() == ALL_VERSIONS


async def test_runtimes_starting_together_on_a_new_database_migrate_once(target):
    ledgers = [target.ledger(f"desk/strategy-{i}") for i in range(4)]
    await asyncio.gather(*(ledger.open() for ledger in ledgers))
    await asyncio.gather(*(ledger.close() for ledger in ledgers))
    assert await target.schema_versions() == ALL_VERSIONS


async def test_a_newer_migration_is_applied_at_start_and_a_newer_schema_is_refused(target):
    async with target.ledger() as ledger:
        ledger.record(make_fill(0))

    base = type(target.ledger())
    upgraded = type(
        "UpgradedLedger",
        (base,),
        {
            "MIGRATIONS": (
                *base.MIGRATIONS,
                Migration(NEXT_VERSION, "fills by order", ("CREATE INDEX ix ON fills (client_order_id)",)),
            )
        },
    )
    new_runtime = upgraded(target.location, KEY)
    async with new_runtime:
        assert await new_runtime.fills() == [make_fill(0)]
    assert await target.schema_versions() == [*ALL_VERSIONS, NEXT_VERSION]

    with pytest.raises(LedgerSchemaError, match=f"schema version {NEXT_VERSION}, newer than this runtime knows"):
        await target.ledger().open()


async def test_a_postgres_migration_longer_than_the_command_timeouts_completes(pg_database):
    # Migrations 7 and 8 build indexes on the shared fills table: on a large ledger that takes longer than the
    # pool's command timeout, or a statement_timeout the database sets for its sessions. A migration that timed out
    # was rolled back and the runtime exited: a pod that never starts. A migration here outlasts both.
    async with PostgresLedger(pg_database, KEY) as ledger:
        ledger.record(make_fill(0))
    conn = await asyncpg.connect(pg_database)
    try:
        database = await conn.fetchval("SELECT current_database()")
        await conn.execute(f"ALTER DATABASE \"{database}\" SET statement_timeout = '1s'")
    finally:
        await conn.close()
    slow = Migration(NEXT_VERSION, "a slow index build", ("SELECT pg_sleep(2)",))
    upgraded = type("UpgradedLedger", (PostgresLedger,), {"MIGRATIONS": (*PostgresLedger.MIGRATIONS, slow)})
    async with upgraded(pg_database, KEY, command_timeout=1.0) as ledger:
        assert await ledger.fills() == [make_fill(0)]
    assert await Target("postgresql", pg_database).schema_versions() == [*ALL_VERSIONS, NEXT_VERSION]


@pytest.mark.parametrize("module", ["sqlite", "postgres"])
def test_every_migration_is_literal_text_so_a_fresh_and_an_upgraded_database_stay_alike(module):
    # A migration built from a live constant (the fills columns, say) would create, after a later change to it,
    # a table on a fresh database unlike the one an upgraded database got when the migration first ran.
    import ast

    source = inspect.getsource(importlib.import_module(f"strategy_runtime.ledger.{module}"))
    (migrations,) = [
        node.value
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "MIGRATIONS" for t in node.targets)
    ]
    built = [
        f"migration {call.args[0].value}: {ast.unparse(value)[:80]}"
        for call in migrations.elts
        for statements in call.args[2:]
        for value in ast.walk(statements)
        if isinstance(value, ast.FormattedValue | ast.Name)
    ]
    assert built == []


# --------------------------------------------------------------------------- risk halts


async def test_a_risk_halt_outlives_the_runtime_until_a_new_acknowledgement_clears_it(target):
    breached_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    first = HaltRecord("maxDailyLoss", "daily PnL -2100 USDT below -2000", breached_at, "pod-0", "ack-1")
    async with target.ledger() as ledger:
        assert await ledger.active_halt() is None
        await ledger.record_halt(first)
        # a second breach while halted keeps the first reason
        await ledger.record_halt(HaltRecord("maxDrawdown", "later", breached_at.replace(minute=9), "pod-0", "ack-1"))

    async with target.ledger() as restarted:
        assert await restarted.active_halt() == first
        await restarted.clear_halt("ack-2")
        assert await restarted.active_halt() is None
        assert await restarted.count() == 0  # halts are not fills

    async with target.ledger("desk/another-strategy") as other:  # per strategy
        assert await other.active_halt() is None


async def test_a_risk_halt_keeps_the_market_time_of_its_breach_beside_the_wall_time(target):
    wall, market = datetime(2026, 12, 6, 8, 30, 1, 250000, tzinfo=UTC), datetime(2024, 1, 1, 5, 11, tzinfo=UTC)
    halt = HaltRecord("maxNotionalPerOrder", "order too big", wall, "pod-0", None, breached_at_market=market)
    async with target.ledger() as ledger:
        await ledger.record_halt(halt)
    async with target.ledger() as restarted:
        assert await restarted.active_halt() == halt


# --------------------------------------------------------------------------- fencing


async def test_a_second_runtime_for_the_same_strategy_is_fenced_out_until_the_first_dies(target):
    holder = target.spawn("hold", owner="pod ema-cross-0 (first)")
    try:
        wait_for_line(holder, "HOLDING")

        second = target.spawn("hold", owner="pod ema-cross-0 (second)")
        refusal = wait_for_line(second, "FENCED_OUT")
        assert second.wait(timeout=30) == FENCED_OUT_EXIT
        assert "pod ema-cross-0 (first)" in refusal

        with pytest.raises(FencedOut) as refused:
            await target.ledger(owner="in-test").open()
        assert refused.value.holder.owner == "pod ema-cross-0 (first)"
        assert "desk/ema-cross" in str(refused.value)

        async with target.ledger("desk/another-strategy") as other:  # other strategies are not fenced
            assert other.fence_held

        kill_9(holder)
        # kill -9 runs no cleanup: the OS (SQLite) or the server (PostgreSQL) frees the lock
        async with target.ledger(owner="replacement", fence_wait=15) as replacement:
            assert replacement.fence_held
    finally:
        if holder.poll() is None:
            kill_9(holder)


async def test_a_runtime_that_waited_for_the_fence_may_trade_once_its_predecessors_lease_ran_out(target):
    holder = target.spawn("hold", owner="pod ema-cross-0 (killed)")
    try:
        wait_for_line(holder, "HOLDING")
        waiting = asyncio.create_task(target.ledger(owner="replacement", fence_wait=20, fence_lease=1.0).open())
        await asyncio.sleep(2.5)  # waiting for the lock for longer than its own lease
        assert not waiting.done()
        kill_9(holder)
        replacement = await asyncio.wait_for(waiting, 20)
    finally:
        if holder.poll() is None:
            kill_9(holder)
    try:
        # PostgreSQL: the killed holder did not release the fence, its lease (6 s) runs first; SQLite: its flock
        # ended with it. Either way the lease counts from the moment the fence was taken, not from the wait.
        await asyncio.wait_for(replacement.fence_usable(), 10)
        assert replacement.fence_refusal() is None
    finally:
        await replacement.close()


async def test_the_fence_is_reported_lost_when_its_lock_file_goes_away(tmp_path):
    lost: list[str] = []
    target = Target("sqlite", str(tmp_path / "ledger.sqlite"))
    async with target.ledger(fence_check_interval=0.05, on_fence_lost=lost.append) as ledger:
        assert ledger.fence_held
        os.remove(next((ledger.path.parent / f"{ledger.path.name}.fences").iterdir()))

        await eventually(async_true(lambda: lost), what="on_fence_lost")
        assert not ledger.fence_held
        assert not ledger.lag().fence_held
        assert "lock file" in ledger.fence_refusal()
        ledger.record(make_fill(0))  # fills already made are still recorded: nobody else took the fence
        await flushed(ledger)
    assert len(lost) == 1


def async_true(condition):
    async def check() -> bool:
        return bool(condition())

    return check


async def terminate_fencing_sessions(admin_dsn: str, dsn: str) -> None:
    """The server ends the fencing sessions of ``dsn``'s database, as when it restarts or loses the client."""
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name LIKE 'livestrat-fence%' AND datname = $1",
            DsnParts.parse(dsn).database,
        )
    finally:
        await admin.close()


async def test_a_fence_whose_session_ended_is_taken_again_when_nobody_else_took_it(pg_database, pg_dsn, caplog):
    lost: list[str] = []
    async with PostgresLedger(pg_database, KEY, fence_check_interval=0.05, on_fence_lost=lost.append) as ledger:
        epoch = ledger.lag().fence_epoch
        ledger.record(make_fill(0))
        await flushed(ledger)
        await terminate_fencing_sessions(pg_dsn, pg_database)

        # the session (and its lock) is gone: not lost, but unconfirmed until taken again on a new session
        def taken_again() -> bool:
            return any("taken again on a new session" in r.getMessage() for r in caplog.records)

        await eventually(async_true(taken_again), what="the fence taken again")
        await eventually(async_true(lambda: ledger.fence_refusal() is None), what="the fence confirmed again")
        assert ledger.fence_held and not lost
        assert ledger.lag().fence_epoch == epoch  # nobody else held it: the same token
        ledger.record(make_fill(1))
        await flushed(ledger)
        assert await ledger.count() == 2
        with pytest.raises(FencedOut):  # and it is locked again
            await PostgresLedger(pg_database, KEY, owner="another").open()


async def take_the_token(target: Target) -> None:
    """What another runtime taking the fence does to the ledger: the strategy's epoch goes up."""
    if target.kind == "sqlite":
        with sqlite3.connect(target.location) as conn:
            conn.execute("UPDATE fences SET epoch = epoch + 1 WHERE strategy_key = ?", (KEY,))
        return
    conn = await asyncpg.connect(target.location)
    try:
        await conn.execute("UPDATE fences SET epoch = epoch + 1 WHERE strategy_key = $1", KEY)
    finally:
        await conn.close()


async def test_a_write_under_a_stale_fencing_token_stores_nothing_and_the_fence_is_lost(target):
    lost: list[str] = []
    ledger = await target.ledger(on_fence_lost=lost.append).open()
    ledger.record(make_fill(0))
    await flushed(ledger)
    await take_the_token(target)  # another runtime took the fence: this one's view is stale

    ledger.record(make_fill(1))
    await eventually(async_true(lambda: lost), what="on_fence_lost")
    assert "taken by another runtime" in lost[0]
    assert not ledger.fence_held
    with pytest.raises(LedgerError, match="refuses this runtime's writes"):
        await flushed(ledger)
    with pytest.raises(FenceTaken):  # nor a risk halt or baseline
        await ledger.record_halt(HaltRecord("maxPosition", "too big", datetime.now(UTC), "pod-0"))
    with pytest.raises(LedgerError):  # without a spool the refused fill exists in memory (and the log) only
        await ledger.close(timeout=5)
    assert await target.stored() == 1  # the stale write stored nothing


async def test_a_runtime_cut_off_while_another_takes_its_fence_loses_it_when_the_database_returns(
    pg_database, tmp_path
):
    server = DsnParts.parse(pg_database)
    host, port = server.address.rsplit(":", 1)
    proxy = CuttableProxy(host, int(port))
    await proxy.start()
    lost: list[str] = []
    cut_off = PostgresLedger(
        f"postgresql://postgres@127.0.0.1:{proxy.port}/{server.database}",
        KEY,
        owner="cut-off",
        fence_lease=1.5,
        connect_timeout=2,
        retry_max=0.2,
        spool=FillSpool(tmp_path / "spool"),
        on_fence_lost=lost.append,
    )
    try:
        await cut_off.open()
        cut_off.record(make_fill(0))
        await flushed(cut_off)

        await proxy.cut()  # its sessions end: the lock is free; it cannot tell whether someone takes it
        await eventually(async_true(lambda: cut_off.fence_refusal()), what="orders refused")
        async with PostgresLedger(pg_database, KEY, owner="replacement", fence_wait=10) as replacement:
            # the cut-off runtime did not release the fence: its lease must run out before the replacement trades
            assert "waiting out the previous holder's lease" in replacement.fence_refusal()
            await asyncio.wait_for(replacement.fence_usable(), 10)
            assert replacement.fence_refusal() is None
            cut_off.record(make_fill(1))  # filled before it knew: it may not write it, but keeps it in its spool
            await asyncio.wait_for(cut_off.flush_durable(), 10)

            await proxy.restore()
            await eventually(async_true(lambda: lost), timeout=20, what="the cut-off runtime's fence lost")
            assert "another" in lost[0]
            assert not cut_off.fence_held and cut_off.fence_refusal()
            replacement.record(make_fill(2))
            await flushed(replacement)
            assert [f.trade_id for f in await replacement.fills()] == ["T-0000000", "T-0000002"]
            await cut_off.close(timeout=5)  # nothing is lost: the refused fill stays in the spool
    finally:
        await cut_off.close(timeout=5)
        await proxy.stop()

    # the cut-off pod starts again on its volume: what its spool kept reaches the ledger before it trades
    async with PostgresLedger(pg_database, KEY, spool=FillSpool(tmp_path / "spool")) as restarted:
        assert restarted.drained.new == 1
        assert [f.trade_id for f in await restarted.fills()] == ["T-0000000", "T-0000001", "T-0000002"]


# --------------------------------------------------------------------------- crash safety


async def test_kill_9_mid_run_then_a_replay_leaves_every_fill_exactly_once(target):
    total = 20_000
    runtime = target.spawn("record", owner="pod ema-cross-0", count=total)
    try:
        wait_for_line(runtime, "HOLDING")

        async def some_committed() -> bool:
            return await target.stored() >= 2_000

        await eventually(some_committed, timeout=60, what="the first fills to commit")
        kill_9(runtime)
    finally:
        if runtime.poll() is None:
            kill_9(runtime)
    before_restart = await target.stored()
    assert 2_000 <= before_restart < total, "the kill must land mid-run"

    # the restarted runtime replays every fill it was given, then the rest
    async with target.ledger(fence_wait=15) as restarted:
        for i in range(total):
            restarted.record(make_fill(i))
        await flushed(restarted)
        assert restarted.lag().totals.duplicates == before_restart
        assert restarted.lag().totals.new == total - before_restart
        assert await restarted.fills() == [make_fill(i) for i in range(total)]


# --------------------------------------------------------------------------- database outage and secrets


async def test_fills_wait_in_memory_while_the_database_is_unreachable(pg_database, caplog):
    caplog.set_level(logging.DEBUG)
    server = DsnParts.parse(pg_database)
    host, port = server.address.rsplit(":", 1)
    proxy = CuttableProxy(host, int(port))
    await proxy.start()
    dsn = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{proxy.port}/{server.database}"
    direct = Target("postgresql", pg_database)
    lost: list[str] = []
    ledger = PostgresLedger(dsn, KEY, retry_initial=0.02, retry_max=0.2, connect_timeout=2, on_fence_lost=lost.append)
    try:
        await ledger.open()
        for i in range(100):
            ledger.record(make_fill(i))
        await flushed(ledger)
        committed_at = ledger.lag().last_commit_at

        await proxy.cut()
        for i in range(100, 600):
            ledger.record(make_fill(i))  # the node keeps trading; record() keeps accepting

        async def failing() -> bool:
            return ledger.lag().consecutive_failures >= 3

        await eventually(failing, what="the writer to fail and retry")
        lag = ledger.lag()
        assert lag.pending == lag.not_durable == 500  # no spool: in this process's memory only
        assert lag.oldest_pending_seconds > 0
        assert lag.last_commit_at == committed_at
        assert lag.last_error and PASSWORD not in lag.last_error
        # its fencing session ended: no order until the fence is confirmed again, but not lost (nobody took it)
        assert ledger.fence_refusal() and lag.fence_unconfirmed
        assert not lost and ledger.fence_held
        assert await direct.stored() == 100

        await proxy.restore()
        await flushed(ledger, timeout=30)
        lag = ledger.lag()
        assert (lag.pending, lag.consecutive_failures, lag.totals.new) == (0, 0, 600)
        assert lag.last_commit_at > committed_at
        assert await ledger.fills() == [make_fill(i) for i in range(600)]
        await eventually(async_true(lambda: ledger.fence_refusal() is None), what="the fence confirmed again")
        assert not lost
    finally:
        await ledger.close(timeout=10)
        await proxy.stop()

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "writing" in logged and "failed" in logged
    assert PASSWORD not in logged


async def test_the_dsn_password_never_appears_in_errors_or_logs(caplog):
    caplog.set_level(logging.DEBUG)
    closed_port = 9  # discard: nothing listens there
    dsn = f"postgresql://trader:{PASSWORD}@127.0.0.1:{closed_port}/ledger"
    ledger = PostgresLedger(dsn, KEY, connect_timeout=2)
    assert PASSWORD not in repr(ledger)
    assert PASSWORD not in ledger.describe()

    with pytest.raises(LedgerUnavailable) as unavailable:
        await ledger.open()
    text = "".join(traceback.format_exception(unavailable.value))
    assert "127.0.0.1:9/ledger" in str(unavailable.value)
    assert PASSWORD not in text
    assert PASSWORD not in repr(unavailable.value)
    assert PASSWORD not in "\n".join(r.getMessage() for r in caplog.records)

    with pytest.raises(LedgerError, match="is not a PostgreSQL URI") as not_a_uri:
        PostgresLedger(f"host=db password={PASSWORD}", KEY)
    assert PASSWORD not in str(not_a_uri.value)


def test_a_percent_encoded_password_is_redacted_in_every_form():
    parts = DsnParts.parse("postgresql://trader:p%40ss%2Fw0rd@db.internal:5433/ledger")
    assert str(parts) == "db.internal:5433/ledger"
    assert parts.redact("failed for p@ss/w0rd and p%40ss%2Fw0rd") == "failed for *** and ***"


def test_every_error_text_of_a_postgresql_ledger_goes_through_its_one_redaction():
    dsn = "postgresql://trader:p%40ss%2Fw0rd@db.internal:5433/ledger?sslpassword=second-secret"  # a client key's
    ledger = PostgresLedger(dsn, KEY)
    # what the ledger logs and raises (_error_text), and what the runtime builds about it (redact)
    failure = ConnectionError(f"could not reach {dsn} as trader/p@ss/w0rd (also tried second-secret)")
    for text in (ledger._error_text(failure), ledger.redact(str(failure))):
        assert "p@ss/w0rd" not in text and "p%40ss%2Fw0rd" not in text and "second-secret" not in text
        assert "db.internal:5433" in text  # where it failed stays readable


# --------------------------------------------------------------------------- wiring


def runtime_config(tmp_path, kind: str) -> RuntimeConfig:
    manifest = load_one_strategy(ROOT / "examples" / "paper-ema-cross.yaml")
    return RuntimeConfig(
        strategy=StrategyIdentity(namespace="desk", name="ema-cross-btc"),
        spec=LiveStrategySpec.model_validate(manifest["spec"]),
        ledger=LedgerTarget(kind=kind),
        state_dir=str(tmp_path),
        halt_budget_seconds=20,
    )


def test_the_runtime_configuration_chooses_the_ledger(tmp_path):
    local = ledger_for(runtime_config(tmp_path, "sqlite"), environ={})
    assert isinstance(local, SqliteLedger)
    assert local.path == tmp_path / "ledger.sqlite"
    assert local.strategy_key == "desk/ema-cross-btc"

    dsn = f"postgresql://ledger:{PASSWORD}@ledger-db.trading:5432/fills"
    cluster = ledger_for(runtime_config(tmp_path, "postgresql"), environ={ENV_LEDGER_DSN: dsn})
    assert isinstance(cluster, PostgresLedger)
    assert cluster.describe() == "PostgreSQL ledger-db.trading:5432/fills"

    with pytest.raises(LedgerError, match=f"{ENV_LEDGER_DSN} is not set.*spec.ledger.dsnSecret"):
        ledger_for(runtime_config(tmp_path, "postgresql"), environ={})


async def test_a_runtime_without_a_usable_ledger_dsn_refuses_to_start_as_misconfigured(tmp_path):
    for environ, says in (({}, f"{ENV_LEDGER_DSN} is not set"), ({ENV_LEDGER_DSN: f"password={PASSWORD}"}, "URI")):
        options = RuntimeOptions(serve_http=False, push_status=False, environ=environ)
        outcome = await StrategyRuntime(runtime_config(tmp_path, "postgresql"), options).run()
        assert outcome.exit_code == EXIT_INVALID
        assert says in outcome.reason and PASSWORD not in outcome.reason


async def test_a_broken_writer_fails_flush_instead_of_hanging(tmp_path):
    class BrokenWriter(SqliteLedger):
        async def _write_loop(self) -> None:
            raise RuntimeError("a bug in the writer")

    async with BrokenWriter(tmp_path / "ledger.sqlite", KEY) as ledger:
        ledger.record(make_fill(0))
        with pytest.raises(LedgerError, match="a bug in the writer"):
            await flushed(ledger)
        assert "a bug in the writer" in ledger.lag().last_error
        with pytest.raises(LedgerError, match="a bug in the writer"):
            await ledger.close(timeout=0.5)
