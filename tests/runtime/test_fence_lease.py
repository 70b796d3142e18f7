"""No order leaves a runtime whose ledger fence is not confirmed within its lease, and orders pass again once it is.

The order gate asks the ledger before every order (a clock read, no round trip) at the execution
engine's endpoint, and once more at the execution client, after the engine's command queue: an
order admitted just before the lease ran out must not be sent once it has. The runtime here is
the real one, in this process, on a paper replay and an SQLite ledger; what is arranged is only
the fence's confirmation (it "cannot reach" its database for a while) and, for the second look,
the moment the lease runs out (right after an order was queued).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from strategy_runtime.ledger.fencing import FenceCheck
from strategy_runtime.runtime import EXIT_OK, NodeState, RuntimeOptions, StrategyRuntime
from tests.support.catalogs import flat, write_price_path
from tests.support.runtime_process import paper_spec, strategy_config
from tests.support.scripted import read_events, scripted_strategy

pytestmark = pytest.mark.slow

PACED = {"catalog": {"emptyDir": {}}, "replay": {"speed": 600}}  # a one-minute bar every 0.1 s
UNREACHABLE = FenceCheck.unknown("the test's database does not answer")


async def until(condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := condition()):
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
    return result


async def test_orders_wait_while_the_fence_is_unconfirmed_even_one_admitted_before_its_lease_ran_out(tmp_path):
    events = tmp_path / "events.jsonl"
    catalog = write_price_path(tmp_path / "catalog", flat(3_000))
    spec = paper_spec(scripted_strategy(str(events), keep_trying_from=2), data=PACED)
    config, _ = strategy_config(tmp_path, spec, catalog=catalog)
    runtime = StrategyRuntime(config, RuntimeOptions(serve_http=False, push_status=False, environ={}))
    run = asyncio.get_running_loop().create_task(runtime.run())

    def rows(kind: str) -> list[dict]:
        return [e for e in read_events(str(events)) if e.get("event") == kind] if events.exists() else []

    try:
        await until(lambda: runtime.node_state == NodeState.RUNNING and len(rows("OrderFilled")) >= 3, "trading")
        ledger = runtime.ledger
        assert ledger is not None and runtime.node is not None

        # 1. The fence's session is gone and cannot be reached: the next order is denied at the gate.
        ledger._confirm_fence = lambda: _answer(UNREACHABLE)
        ledger._fence_suspect("the test ended the fencing session")
        denied = await until(lambda: rows("OrderDenied"), "an order denied")
        ready, why = runtime.readiness()
        held = runtime.state_document()["ledger"]["ordersHeld"]

        # 2. Confirmed again: orders pass, the runtime is ready.
        del ledger._confirm_fence
        filled = len(rows("OrderFilled"))
        await until(lambda: len(rows("OrderFilled")) >= filled + 3, "orders filled again")
        ready_again = runtime.readiness()

        # 3. The lease runs out while an admitted order waits in the execution engine's queue.
        engine = runtime.node.kernel.exec_engine
        queued: list[str] = []

        def execute_then_lose_the_lease(command: Any) -> None:
            engine.__class__.execute(engine, command)
            queued.append(command.order.client_order_id.value)
            ledger._confirm_fence = lambda: _answer(UNREACHABLE)
            ledger._lease.revoke()
            del engine.execute  # one order is enough

        engine.execute = execute_then_lose_the_lease
        await until(lambda: queued, "an order admitted")
        await until(lambda: any(e["order"] == queued[0] for e in rows("OrderDenied")), "the queued order denied")
        runtime.request_stop("the test is over")
        outcome = await asyncio.wait_for(run, 60)
    finally:
        if not run.done():
            runtime.request_stop("the test failed")
            await asyncio.wait_for(run, 60)

    assert "not confirmed" in denied[0]["reason"]
    assert not ready and "orders are held" in why and "not confirmed" in why
    assert held and "not confirmed" in held
    assert ready_again == (True, "ready")
    # the order admitted before the lease ran out never reached the venue: denied, never submitted
    of_queued = [e["event"] for e in read_events(str(events)) if e.get("order") == queued[0]]
    assert of_queued == ["OrderInitialized", "OrderDenied"], of_queued
    assert outcome.exit_code == EXIT_OK, outcome.reason
    # and the status counts it as no order sent: ordersSubmitted are the orders the venue got
    trading = outcome.snapshot.trading
    assert trading.orders_submitted == len({e["order"] for e in rows("OrderSubmitted")})
    assert trading.orders_filled == len({e["order"] for e in rows("OrderFilled")})


async def _answer(check: FenceCheck) -> FenceCheck:
    return check
