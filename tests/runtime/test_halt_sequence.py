"""The halt's bound, step by step: an overrunning step is abandoned, a stuck process is ended.

In-process with stand-in steps (the real steps run in tests/runtime/test_halt.py): what is
tested here is the sequencing and the clock, which the real steps are too quick to exercise.
"""

from __future__ import annotations

import asyncio
import time

from strategy_runtime.halt import EXIT_HALT_OVERRAN, STEP_DEADLINES, HaltSequence


def sequence(budget: float, *, slow: str | None = None, stuck: str | None = None, exits: list[int] | None = None):
    ran: list[str] = []

    def step(name: str):
        async def run(deadline: float) -> None:
            ran.append(name)
            if name == slow:
                await asyncio.sleep(3600)  # a database or an API server that never answers
            if name == stuck:
                time.sleep(budget * 1.5)  # the event loop itself held: nothing async can interrupt it

        return run

    halt = HaltSequence(
        trading=None,
        budget_seconds=budget,
        flush_ledger=step("flush-ledger"),
        final_status=step("final-status"),
        stop_node=step("stop-node"),
        close_ledger=step("close-ledger"),
        hard_exit=(exits if exits is not None else []).append,
    )
    return halt, ran


async def test_a_step_that_overruns_its_share_is_abandoned_and_the_others_still_run():
    halt, ran = sequence(1.0, slow="final-status")
    started = time.monotonic()
    report = await halt.run("test", "cancelOrders")
    halt.disarm()
    took = time.monotonic() - started

    assert ran == ["flush-ledger", "final-status", "stop-node", "close-ledger"]
    outcomes = {s.name: s.outcome for s in report.steps}
    assert outcomes["final-status"] == "overran"
    assert outcomes["stop-node"] == outcomes["close-ledger"] == "done"
    # the slow step ended at its deadline (75 % of the budget), not later
    final = next(s for s in report.steps if s.name == "final-status")
    assert final.ended - report.started <= STEP_DEADLINES["final-status"] * 1.0 + 0.05
    assert took < 1.0


async def test_a_stuck_event_loop_is_ended_by_the_watchdog_within_the_budget():
    exits: list[int] = []
    halt, _ = sequence(0.4, stuck="stop-node", exits=exits)
    started = time.monotonic()
    await halt.run("test", "cancelOrders")
    halt.disarm()
    assert exits == [EXIT_HALT_OVERRAN]  # in a real process: os._exit(70) at 0.4 s
    assert time.monotonic() - started >= 0.4


def test_the_step_deadlines_leave_the_exit_inside_the_budget():
    shares = list(STEP_DEADLINES.values())
    assert shares == sorted(shares) and shares[-1] < 1.0
