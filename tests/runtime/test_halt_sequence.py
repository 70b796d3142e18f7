"""The halt's bound, step by step: an overrunning step is abandoned, a stuck process is ended.

In-process with stand-in steps (the real steps run in tests/runtime/test_halt.py): what is
tested here is the sequencing, which the real steps are too quick to exercise. Nothing here
asserts on how long anything took: the outcomes and the order of events say it all.
"""

from __future__ import annotations

import asyncio
import itertools
import time

from strategy_runtime.halt import EXIT_HALT_OVERRAN, STEP_DEADLINES, HaltSequence
from strategy_runtime.stop_cause import halt as a_halt
from strategy_runtime.stop_cause import known

STEPS = ["flush-ledger", "final-status", "stop-node", "close-ledger"]


def sequence(budget: float, *, slow: str | None = None, stuck: str | None = None):
    """A halt whose steps record what they do, in order, in ``ran`` (the watchdog's exit included)."""
    ran: list[str] = []

    def step(name: str):
        async def run(deadline: float) -> None:
            ran.append(name)
            if name == slow:
                try:
                    await asyncio.sleep(3600)  # a database or an API server that never answers
                except asyncio.CancelledError:
                    ran.append(f"{name} abandoned")
                    raise
            if name == stuck:
                time.sleep(budget * 3)  # the event loop itself held: nothing async can interrupt it
                ran.append(f"{name} unstuck")

        return run

    halt = HaltSequence(
        trading=None,
        budget_seconds=budget,
        flush_ledger=step("flush-ledger"),
        final_status=step("final-status"),
        stop_node=step("stop-node"),
        close_ledger=step("close-ledger"),
        hard_exit=lambda code: ran.append(f"exit {code}"),
    )
    return halt, ran


async def test_a_step_that_overruns_its_share_is_abandoned_and_the_others_still_run():
    halt, ran = sequence(1.0, slow="final-status")
    report = await halt.run("test", "cancelOrders", cause=known(a_halt("test")))
    halt.disarm()

    # the slow step was cancelled at its deadline, then the remaining steps ran, in order
    assert ran == ["flush-ledger", "final-status", "final-status abandoned", "stop-node", "close-ledger"]
    assert [s.name for s in report.steps] == STEPS
    outcomes = {s.name: s.outcome for s in report.steps}
    assert outcomes == {"flush-ledger": "done", "final-status": "overran", "stop-node": "done", "close-ledger": "done"}
    # each step started after the one before it ended
    assert all(a.ended <= b.started for a, b in itertools.pairwise(report.steps))


async def test_a_stuck_event_loop_is_ended_by_the_watchdog_within_the_budget():
    halt, ran = sequence(0.2, stuck="stop-node")
    await halt.run("test", "cancelOrders", cause=known(a_halt("test")))
    halt.disarm()
    # the watchdog thread ended the process while the loop was still held by the stuck step
    # (in a real process: os._exit(70), so nothing after it would run)
    assert ran[: ran.index("stop-node unstuck")] == [
        "flush-ledger",
        "final-status",
        "stop-node",
        f"exit {EXIT_HALT_OVERRAN}",
    ]


def test_the_step_deadlines_leave_the_exit_inside_the_budget():
    shares = list(STEP_DEADLINES.values())
    assert shares == sorted(shares) and shares[-1] < 1.0


async def test_a_stop_whose_cause_never_comes_is_no_halt_and_the_steps_still_run():
    # The GET of the halt record hangs (a partition): at the flatten deadline the stop is taken for no halt.
    halt, ran = sequence(0.4)
    never: asyncio.Future = asyncio.get_running_loop().create_future()
    report = await halt.run("test", "flatten", cause=never)
    halt.disarm()
    assert report.cause is not None and not report.cause.halt and "not read in time" in report.cause.why
    assert not report.must_flatten
    assert ran == STEPS
