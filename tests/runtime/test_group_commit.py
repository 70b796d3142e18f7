"""Group commit: an idle ledger commits a fill at once; a busy one gathers what comes in the meantime.

The ledger's writer starts a commit at most once per ``commit_interval`` while fills keep coming
(each commit is a hand-off to the database's thread and its locks, which the replay pays for in
the interpreter); whoever waits on a flush is never kept waiting for the interval.
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections.abc import Sequence

from strategy_runtime.ledger.records import FillRecord
from strategy_runtime.ledger.writer import WriteBehind, Written
from tests.support.ledger import Target, durable_acknowledged, make_fill, wait_for_line

LONG = 3600.0  # an interval no test waits out: anything committed early was committed on purpose


class Database:
    """Takes every batch, remembering its size."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    async def __call__(self, fills: Sequence[FillRecord]) -> Written:
        self.batches.append(len(fills))
        return Written(len(fills))


def writer(insert: Database, commit_interval: float) -> WriteBehind:
    return WriteBehind(
        insert,
        where=lambda: "the test's database",
        error_text=str,
        batch_size=500,
        retry_initial=0.01,
        retry_max=0.05,
        on_commit=None,
        on_fence_taken=lambda why: None,
        commit_interval=commit_interval,
    )


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_an_idle_ledger_commits_a_fill_at_once_and_a_busy_one_gathers_the_next_into_one_commit():
    database = Database()
    w = writer(database, LONG)
    task = asyncio.create_task(w.run())
    try:
        w.append(make_fill(0))
        await asyncio.wait_for(w.flush(), 10)  # idle: committed without waiting for the interval
        assert database.batches == [1]

        for i in range(1, 4):  # busy: a commit started less than an interval ago
            w.append(make_fill(i))
            await settle()
        assert database.batches == [1] and len(w.pending) == 3, "fills of a busy ledger wait for the next turn"

        await asyncio.wait_for(w.flush(), 10)  # somebody waits: the turn comes now, all three in one commit
        assert database.batches == [1, 3]
        assert w.committed == 4
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_flush_durable_does_not_wait_for_the_interval_either():
    database = Database()
    w = writer(database, LONG)
    task = asyncio.create_task(w.run())
    try:
        w.append(make_fill(0))
        await asyncio.wait_for(w.flush(), 10)
        w.append(make_fill(1))
        await settle()
        await asyncio.wait_for(w.flush_durable(), 10)
        assert database.batches == [1, 1] and w.not_durable == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_without_an_interval_every_turn_commits_what_is_queued_at_once():
    database = Database()
    w = writer(database, 0.0)
    task = asyncio.create_task(w.run())
    try:
        for i in range(3):
            w.append(make_fill(i))
            await settle()
        assert database.batches == [1, 1, 1]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# --------------------------------------------------------------------------- kill -9


KILLS = 4


async def test_kill_9_at_random_moments_loses_no_fill_acknowledged_durable_and_stores_none_twice(target):
    """A process records fills a few at a time (group commit gathering them) and is killed at random moments:
    every fill it was told was durable (a commit's acknowledgement, a flush that returned) is in the ledger,
    the stored fills are exactly the first ones recorded, each once."""
    moments = random.Random(15)
    for kill in range(KILLS):
        key = f"desk/kill-{kill}"  # each kill its own strategy: no fence of a dead process to wait out
        process = target.spawn("acked", key=key, owner=f"pod kill-{kill}", count=200_000)
        try:
            wait_for_line(process, "HOLDING")
            await asyncio.sleep(moments.uniform(0.05, 0.8))
        finally:
            process.send_signal(signal.SIGKILL)
            stdout, _ = process.communicate(timeout=30)
        acknowledged = durable_acknowledged(stdout)
        assert acknowledged > 0, "the kill must land after some fills were acknowledged"
        stored = await stored_fills(target, key)
        assert len(stored) >= acknowledged, f"kill {kill}: {acknowledged} acknowledged durable, {len(stored)} stored"
        assert stored == [make_fill(i, key) for i in range(len(stored))], f"kill {kill}: not the first fills, once"
        assert len(stored) < 200_000, "the kill must land mid-run"


async def stored_fills(target: Target, key: str) -> list[FillRecord]:
    """What the ledger holds for ``key``, read by a fresh ledger once the killed one's fence is free."""
    async with target.ledger(key, fence_wait=15) as ledger:
        return await ledger.fills()
