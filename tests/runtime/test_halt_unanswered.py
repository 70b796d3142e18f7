"""A venue that never answers a cancel: the halt keeps asking, waits for it in between, and says it failed.

The venue is the one thing mocked (tests/support/venue_standin.py, with ``ignore_cancels``: an
unresponsive venue, or its API down); the live runtime, its node, the halt and the PostgreSQL
ledger are the real ones, in this process. Nothing here measures time: what the halt did is
counted (how often it looked at what is left), not clocked.
"""

from __future__ import annotations

import asyncio
from typing import Any

from livestrat.api.runtime_config import ENV_LEDGER_DSN
from strategy_runtime.halt import RESEND_SECONDS, STEP_DEADLINES
from strategy_runtime.ledger import PostgresLedger
from strategy_runtime.ledger.dsn import DsnParts
from strategy_runtime.ledger.reader import LedgerSource
from strategy_runtime.runtime import EXIT_HALT_INCOMPLETE, NodeState, RunOutcome, RuntimeOptions, StrategyRuntime
from tests.support.catalogs import flat, write_price_path
from tests.support.runtime_process import strategy_config
from tests.support.scripted import scripted_strategy
from tests.support.venue_standin import StandInVenue, live_spec

RESTING = {"bar": 2, "do": "limit", "side": "BUY", "quantity": "0.01", "offset": -0.2, "count": 3, "tag": "resting"}


async def test_a_venue_that_ignores_cancels_leaves_the_halt_incomplete_without_a_scan_loop(
    tmp_path, pg_database, monkeypatch
):
    closes: list[object] = []
    real_close = PostgresLedger.close

    async def counted_close(self, timeout=None):
        closes.append(self)
        await real_close(self, timeout)

    monkeypatch.setattr(PostgresLedger, "close", counted_close)
    catalog = write_price_path(tmp_path / "catalog", flat(10))
    StandInVenue(str(catalog), ignore_cancels=True).install(monkeypatch.setattr)
    spec = live_spec(scripted_strategy(str(tmp_path / "events.jsonl"), steps=[RESTING]))
    config, _ = strategy_config(tmp_path, spec, name="unanswered", catalog=catalog, ledger_kind="postgresql")
    runtime = StrategyRuntime(
        config,
        RuntimeOptions(
            serve_http=False, push_status=False, environ={ENV_LEDGER_DSN: pg_database}, fence_wait_seconds=0
        ),
    )
    outcome = await stopped_with_three_resting(runtime)

    # the venue never cancelled: the halt says so, in the exit code and the node state
    assert outcome.exit_code == EXIT_HALT_INCOMPLETE, outcome.reason
    assert runtime.node_state == NodeState.HALT_INCOMPLETE
    assert outcome.halt is not None and outcome.halt.orders_left == 3
    assert outcome.snapshot is not None and outcome.snapshot.trading.node_state == NodeState.HALT_INCOMPLETE
    # it asked again about once a second, and otherwise waited for an answer that never came:
    # one look per resend round (plus the events its own cancels raised), not one per poll
    rounds = config.halt_budget_seconds * STEP_DEADLINES["cancel"] / RESEND_SECONDS
    assert runtime.trading is not None
    assert runtime.trading.scans <= 2 * (rounds + 2), runtime.trading.scans
    # and the ledger was closed once, by the halt
    assert closes == [runtime.ledger]


class StatusApi:
    """The API server as the runtime pushes its status to it: the status as merged, patch after patch."""

    def __init__(self) -> None:
        self.trading: dict[str, object] = {}

    async def patch_status(self, patch: dict[str, Any]) -> None:
        self.trading.update((patch.get("status") or {}).get("trading") or {})

    async def read_own(self) -> dict[str, Any]:
        return {}

    async def read_namespace(self) -> dict[str, Any]:
        return {"status": {"phase": "Active"}}

    async def close(self) -> None:
        pass


async def test_a_fill_that_reaches_the_node_while_it_stops_is_in_the_status_as_in_the_ledger(
    tmp_path, pg_database, monkeypatch
):
    # The venue ignores the halt's cancels, then fills one of the resting orders as the node disconnects: after the
    # final status, in the halt's stop-node step. The ledger records it; the last status pushed must count it too.
    catalog = write_price_path(tmp_path / "catalog", flat(10))
    StandInVenue(str(catalog), ignore_cancels=True, fill_when_disconnecting=True).install(monkeypatch.setattr)
    spec = live_spec(scripted_strategy(str(tmp_path / "events.jsonl"), steps=[RESTING]))
    config, _ = strategy_config(
        tmp_path, spec, name="filled-late", catalog=catalog, ledger_kind="postgresql", report_status=True
    )
    api = StatusApi()
    runtime = StrategyRuntime(
        config,
        RuntimeOptions(
            serve_http=False,
            status_api=api,
            environ={ENV_LEDGER_DSN: pg_database},
            fence_wait_seconds=0,
        ),
    )
    outcome = await stopped_with_three_resting(runtime)

    assert outcome.strategy_key is not None
    in_ledger = await LedgerSource(postgres=DsnParts.parse(pg_database)).fills(outcome.strategy_key)
    assert [f.trade_id for f in in_ledger if "LATE-" in f.trade_id], in_ledger  # the venue's fill as the node stopped
    assert api.trading["fills"] == len(in_ledger)


async def stopped_with_three_resting(runtime: StrategyRuntime) -> RunOutcome:
    """Run ``runtime`` until its node holds the script's three resting orders, then stop it; its outcome."""
    run = asyncio.get_running_loop().create_task(runtime.run())
    deadline = asyncio.get_running_loop().time() + 60
    while runtime.node is None or runtime.node.kernel.cache.orders_open_count() < 3:
        assert not run.done(), (await run).reason
        assert asyncio.get_running_loop().time() < deadline, "no resting orders"
        await asyncio.sleep(0.02)
    runtime.request_stop("the test is over")
    return await run
