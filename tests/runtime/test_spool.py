"""The fill spool: a fill the database cannot take yet is durable on the pod's disk, never before it is synced.

The writer runs here against a database that never answers (an insert that fails) and a real
spool directory; the spool's sync is the real ``fdatasync`` or, where a test must see the order of
events, one the test holds and releases.
"""

from __future__ import annotations

import asyncio
import errno
import os
import threading
from collections.abc import Sequence

import pytest

from strategy_runtime.ledger.records import FillRecord
from strategy_runtime.ledger.spool import FillSpool, SpoolBusy, decode, encode, spool_directory
from strategy_runtime.ledger.writer import WriteBehind, Written
from tests.support.ledger import KEY, make_fill


class Unreachable:
    """A database that never takes a batch (an outage), counting the attempts."""

    def __init__(self) -> None:
        self.attempts = 0

    async def __call__(self, fills: Sequence[FillRecord]) -> Written:
        self.attempts += 1
        raise ConnectionRefusedError("the database is away")


class HeldSync:
    """``fdatasync`` that waits for the test's go-ahead, so that the test can look at what came before it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.go = threading.Event()
        self.synced = 0

    def __call__(self, fd: int) -> None:
        self.entered.set()
        assert self.go.wait(10), "the test never let the sync finish"
        os.fdatasync(fd)
        self.synced += 1


def writer(spool: FillSpool, insert=None) -> WriteBehind:
    return WriteBehind(
        insert or Unreachable(),
        where=lambda: "the test's database",
        error_text=lambda exc: f"{type(exc).__name__}: {exc}",
        batch_size=500,
        retry_initial=0.01,
        retry_max=0.05,
        on_commit=None,
        on_fence_taken=lambda why: None,
        spool=spool,
    )


async def running(w: WriteBehind) -> list[asyncio.Task[None]]:
    return [asyncio.create_task(w.run()), asyncio.create_task(w.run_spool())]


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def test_a_fill_reads_back_from_its_line_exactly():
    fill = make_fill(3, position_id=None)
    assert decode(encode(fill)) == fill
    assert encode(fill).endswith(b"\n") and encode(fill).count(b"\n") == 1
    assert '"price":"64123.48"' in encode(fill).decode()  # exact decimal text, never a float


async def test_fills_are_acknowledged_durable_only_after_the_sync_returns(tmp_path):
    sync = HeldSync()
    spool = FillSpool(tmp_path / "spool", sync=sync)
    spool.open()
    w = writer(spool)
    tasks = await running(w)
    try:
        for i in range(3):
            w.append(make_fill(i))
        durable = asyncio.create_task(w.flush_durable())
        assert await asyncio.to_thread(sync.entered.wait, 10)
        # written, not yet synced: not durable, and nobody is told it is
        assert (w.not_durable, w.spooled) == (3, 0)
        await asyncio.sleep(0.05)
        assert not durable.done()

        sync.go.set()
        await asyncio.wait_for(durable, 10)
        assert (w.not_durable, w.spooled, sync.synced) == (0, 3, 1)  # one sync for the group
        assert w.pending and w.committed == 0  # still waiting for the database
    finally:
        await stop(tasks)
        spool.close()
    assert FillSpool(tmp_path / "spool").open().fills == [make_fill(i) for i in range(3)]


async def test_a_spool_that_cannot_write_leaves_fills_not_durable_and_retries(tmp_path):
    failing = {"left": 3}

    def full_disk(fd: int) -> None:
        if failing["left"]:
            failing["left"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        os.fdatasync(fd)

    spool = FillSpool(tmp_path / "spool", sync=full_disk)
    spool.open()
    w = writer(spool)
    tasks = await running(w)
    try:
        w.append(make_fill(0))
        while w.spool_failures < 2:
            await asyncio.sleep(0.005)
        assert w.not_durable == 1 and "No space left" in w.spool_error
        await asyncio.wait_for(w.flush_durable(), 10)
        assert w.not_durable == 0 and w.spool_error is None
    finally:
        await stop(tasks)
        spool.close()
    # the failed attempts left no partial line behind: the fill is there once
    assert FillSpool(tmp_path / "spool").open().fills == [make_fill(0)]


async def test_the_spool_empties_once_the_database_has_committed_its_fills(tmp_path):
    class Reachable:
        def __init__(self) -> None:
            self.up = asyncio.Event()

        async def __call__(self, fills: Sequence[FillRecord]) -> Written:
            await self.up.wait()
            return Written(len(fills))

    database = Reachable()
    spool = FillSpool(tmp_path / "spool", segment_fills=10)
    spool.open()
    w = writer(spool, database)
    tasks = await running(w)
    try:
        for i in range(25):
            w.append(make_fill(i))
        await asyncio.wait_for(w.flush_durable(), 10)
        segments = sorted(p.name for p in (tmp_path / "spool").glob("*.jsonl"))
        assert len(segments) >= 1 and w.spooled == 25

        database.up.set()  # the database is back
        await asyncio.wait_for(w.flush(), 10)
        while any(p.stat().st_size for p in (tmp_path / "spool").glob("*.jsonl")):
            await asyncio.sleep(0.01)
    finally:
        await stop(tasks)
        await spool.aclose()
    assert FillSpool(tmp_path / "spool").open().fills == []


def test_a_line_cut_short_by_a_crash_is_skipped_and_an_unreadable_one_kept_aside(tmp_path, caplog):
    directory = tmp_path / "spool"
    directory.mkdir()
    (directory / "000000000001.jsonl").write_bytes(encode(make_fill(0)) + encode(make_fill(1))[:40])
    (directory / "000000000002.jsonl").write_bytes(encode(make_fill(2)) + b"{not json}\n" + encode(make_fill(3)))
    spool = FillSpool(directory)
    leftovers = spool.open()
    assert leftovers.fills == [make_fill(0), make_fill(2), make_fill(3)]
    assert "cut short" in caplog.text and "cannot be read" in caplog.text
    spool.discard(leftovers)
    spool.close()
    assert sorted(p.name for p in directory.iterdir() if not p.name.startswith(".")) == [
        "000000000002.jsonl.unreadable"
    ]


def test_two_processes_never_share_a_spool(tmp_path):
    directory = spool_directory(tmp_path, KEY)
    first = FillSpool(directory)
    first.open()
    try:
        with pytest.raises(SpoolBusy, match="two runtimes share one state directory"):
            FillSpool(directory).open()
    finally:
        first.close()
    assert directory.parent.name == "ledger-spool" and directory.name.startswith("desk_ema-cross-")


async def test_a_commit_of_fills_the_spool_never_held_is_no_request_to_the_io_process(tmp_path):
    # Each request is a round trip to the ledger's I/O process (before it, a hand-off of the interpreter's lock to
    # the spool's thread and back, which the event loop's thread paid for: docs/performance.md, "seventh round"):
    # only a drop with something to drop makes one.
    class Switchable:
        def __init__(self) -> None:
            self.up = True

        async def __call__(self, fills: Sequence[FillRecord]) -> Written:
            if not self.up:
                raise ConnectionRefusedError("the database is away")
            return Written(len(fills))

    database = Switchable()
    spool = FillSpool(tmp_path / "spool")
    spool.open()
    releases: list[str] = []
    assert spool._io is not None
    request = spool._io.request

    async def counting(message):
        if message[0] != "append":
            releases.append(message[0])
        return await request(message)

    spool._io.request = counting  # type: ignore[method-assign]
    w = writer(spool, database)
    commits = asyncio.create_task(w.run())  # the spool's task not yet running: the database is first to every fill
    try:
        for i in range(5):
            w.append(make_fill(i))
        await asyncio.wait_for(w.flush(), 10)
        spooling = asyncio.create_task(w.run_spool())
        await asyncio.sleep(0.05)
        assert releases == []  # the spool holds none of the 5: nothing to release, no trip

        database.up = False  # now the spool is first: it holds the next fill until the database commits it
        w.append(make_fill(5))
        await asyncio.wait_for(w.flush_durable(), 10)
        assert w.spooled == 1 and any(p.stat().st_size for p in (tmp_path / "spool").glob("*.jsonl"))
        database.up = True
        await asyncio.wait_for(w.flush(), 10)
        while not releases:
            await asyncio.sleep(0.005)
        assert releases == ["truncate"]  # the one segment, emptied in place
        while any(p.stat().st_size for p in (tmp_path / "spool").glob("*.jsonl")):
            await asyncio.sleep(0.01)
    finally:
        await stop([commits, spooling])
        await spool.aclose()
