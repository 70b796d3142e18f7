"""Fills that happened while a live strategy was down reach the ledger when it starts again.

A live node reconciles with its venue before its trader starts: the venue reports the orders
it filled in the meantime (resting orders filled after a ``kill -9``, say), and
NautilusTrader publishes their fills then. The venue is the one thing mocked here
(tests/support/venue_standin.py: a simulated venue answering reconciliation with scripted
reports); the live runtime, its node with reconciliation on, the reporter and the PostgreSQL
ledger are the real ones, run in this process.
"""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal

from livestrat.api.runtime_config import ENV_LEDGER_DSN
from strategy_runtime.ledger import PostgresLedger
from strategy_runtime.runtime import EXIT_OK, NodeState, RuntimeOptions, StrategyRuntime
from tests.support.catalogs import flat, write_price_path
from tests.support.runtime_process import strategy_config
from tests.support.scripted import scripted_strategy
from tests.support.venue_standin import StandInVenue, VenueOrder, VenueTrade, live_spec

D = Decimal
BTC = "BTCUSDT.BINANCE"
T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z

# Filled while the runtime was away: one order with both of its trades reported, one the venue
# reports as filled without its trades (NautilusTrader infers a fill for it).
WITH_TRADES = VenueOrder(
    "V-1001",
    "O-20240101-000000-001-000-1",
    BTC,
    "BUY",
    "0.010",
    "39990.00",
    T0 + 60_000_000_000,
    trades=(VenueTrade("T-5001", "0.004", "0.04"), VenueTrade("T-5002", "0.006", "0.06")),
)
WITHOUT_TRADES = VenueOrder(
    "V-1002", "O-20240101-000000-001-000-2", BTC, "SELL", "0.010", "40100.00", T0 + 120_000_000_000
)


async def start_and_stop(config, dsn: str) -> StrategyRuntime:
    """Start the runtime as a pod would, wait until it runs (reconciled), then halt it."""
    runtime = StrategyRuntime(
        config, RuntimeOptions(serve_http=False, push_status=False, environ={ENV_LEDGER_DSN: dsn}, fence_wait_seconds=0)
    )
    run = asyncio.get_running_loop().create_task(runtime.run())
    deadline = asyncio.get_running_loop().time() + 60
    while runtime.node_state != NodeState.RUNNING:
        assert not run.done(), (await run).reason
        assert asyncio.get_running_loop().time() < deadline, "the runtime did not start"
        await asyncio.sleep(0.02)
    # what reconciliation recorded (all of it, once the node runs) is committed
    await asyncio.wait_for(runtime.ledger.flush(), timeout=30)
    runtime.request_stop("the test is over")
    outcome = await run
    assert outcome.exit_code == EXIT_OK, outcome.reason
    return runtime


async def stored_trade_ids(dsn: str, key: str) -> list[str]:
    async with PostgresLedger(dsn, f"{key}-reader") as ledger:
        return [f.trade_id for f in await ledger.fills(key)]


async def test_fills_reconciled_at_start_are_in_the_ledger_once_however_often_it_restarts(
    tmp_path, pg_database, monkeypatch
):
    catalog = write_price_path(tmp_path / "catalog", flat(5))
    StandInVenue(str(catalog), reconcile=(WITH_TRADES, WITHOUT_TRADES)).install(monkeypatch.setattr)
    spec = live_spec(scripted_strategy(str(tmp_path / "events.jsonl")))
    config, _ = strategy_config(tmp_path, spec, name="reconciled", catalog=catalog, ledger_kind="postgresql")

    first = await start_and_stop(config, pg_database)

    # the venue's own trades under their ids, and the fill NautilusTrader inferred under a
    # deterministic, marked id (its own is a fresh UUID at every start)
    expected = ["T-5001", "T-5002", "INFERRED-V-1002-0.01"]
    assert await stored_trade_ids(pg_database, config.strategy.key) == expected
    assert first.reporter.fills_inferred == 1

    # a restart reconciles the same venue state again: nothing new, nothing twice
    second = await start_and_stop(config, pg_database)
    assert await stored_trade_ids(pg_database, config.strategy.key) == expected
    assert second.reporter.fills_seen == 3
    assert second.ledger.lag().totals.new == 0 and second.ledger.lag().totals.duplicates == 3


async def test_the_venue_s_trades_of_an_order_filled_without_them_at_an_earlier_start_count_once(
    tmp_path, pg_database, monkeypatch
):
    # The first start meets V-1002 filled and no trade of it (the venue's trade list lagged its status): the fill
    # is inferred. Later starts meet its trades, first one of the two, then both: each is stored, and the ledger,
    # the book and the status count the order's 0.010 once.
    catalog = write_price_path(tmp_path / "catalog", flat(5))
    spec = live_spec(scripted_strategy(str(tmp_path / "events.jsonl")))
    config, _ = strategy_config(tmp_path, spec, name="superseded", catalog=catalog, ledger_kind="postgresql")
    key = config.strategy.key
    partly = dataclasses.replace(WITHOUT_TRADES, trades=(VenueTrade("T-6001", "0.004", "0.16"),))
    whole = dataclasses.replace(partly, trades=(*partly.trades, VenueTrade("T-6002", "0.006", "0.24")))
    seen = []
    for venue_order in (WITHOUT_TRADES, partly, whole, whole):
        StandInVenue(str(catalog), reconcile=(venue_order,)).install(monkeypatch.setattr)
        runtime = await start_and_stop(config, pg_database)
        async with PostgresLedger(pg_database, f"{key}-reader") as ledger:
            fills = await ledger.fills(key)
            superseded = await ledger.superseded(key)
        assert runtime.guard is not None
        seen.append((fills, superseded, runtime.guard.book_position(BTC), runtime.reporter.fills_in_ledger))

    (inferred_only, _, book, counted), (after_one, audit_one, book_one, counted_one) = seen[:2]
    assert [(f.trade_id, f.quantity) for f in inferred_only] == [("INFERRED-V-1002-0.01", D("0.010"))]
    assert (book, counted) == (D("-0.010"), 1)
    # one trade of two: the inferred fill counts the rest
    assert sorted((f.trade_id, f.quantity) for f in after_one) == [
        ("INFERRED-V-1002-0.01", D("0.006")),
        ("T-6001", D("0.004")),
    ]
    assert [(s.fill.quantity, s.counted, s.by) for s in audit_one] == [(D("0.010"), D("0.006"), ("T-6001",))]
    assert (book_one, counted_one) == (D("-0.010"), 2)
    for fills, superseded, book, counted in seen[2:]:  # every trade of the order: the inferred fill counts nothing
        assert sorted((f.trade_id, f.quantity) for f in fills) == [("T-6001", D("0.004")), ("T-6002", D("0.006"))]
        assert [(s.counted, s.by) for s in superseded] == [(D(0), ("T-6001", "T-6002"))]
        assert (book, counted) == (D("-0.010"), 2)


async def test_a_position_reconciled_at_start_beyond_max_position_is_a_breach_at_once(
    tmp_path, pg_database, monkeypatch
):
    # The venue filled 0.010 BTC while the runtime was away; the limit is 0.005: the guard, which
    # hears the order and position events of reconciliation from before the trader starts, finds
    # the position too big as soon as it starts, without waiting for the strategy's next trade.
    catalog = write_price_path(tmp_path / "catalog", flat(5))
    StandInVenue(str(catalog), reconcile=(WITH_TRADES,)).install(monkeypatch.setattr)
    risk = {
        "maxDailyLoss": 1_000_000,
        "maxPosition": 0.005,
        "maxNotionalPerOrder": 10_000_000,
        "onBreach": "HaltInPlace",
    }
    spec = live_spec(scripted_strategy(str(tmp_path / "events.jsonl")), risk=risk)
    config, _ = strategy_config(tmp_path, spec, name="oversized", catalog=catalog, ledger_kind="postgresql")

    runtime = await start_and_stop(config, pg_database)

    assert runtime.guard is not None and runtime.guard.breach is not None
    assert runtime.guard.breach.limit == "maxPosition"
    assert "net position 0.010000 BTCUSDT.BINANCE exceeds maxPosition 0.005" in runtime.guard.breach.reason
