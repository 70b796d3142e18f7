"""The ledger's I/O process (``strategy_runtime.ledger.io_process``): an SQLite ledger's commits and the fill spool's
appends, in a child process.

Against real files and real child processes: a batch is stored by the child, never on a thread of the runtime's
process; a child that dies is started again and its batch stored once; the child ends with the ledger, and with
the runtime's process killed; it gets none of the runtime's environment; the spool's appends are durable when
acknowledged and a failed one leaves nothing half-written behind.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from strategy_runtime.ledger import FillSpool, SqliteLedger
from strategy_runtime.ledger.io_child import SpoolFiles
from strategy_runtime.ledger.io_process import IoProcess, IoProcessError
from strategy_runtime.ledger.spool import encode
from strategy_runtime.ledger.sqlite import fenced_insert_sql
from tests.support.ledger import KEY, Target, make_fill, sqlite_write_lock

SECRET = "Sup3r-S3cret-Ledger-Pw"


async def flushed(ledger, timeout: float = 60) -> None:
    await asyncio.wait_for(ledger.flush(), timeout)


def gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped yet counts: it runs nothing and holds no file)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in {"Z", "X"}
    except FileNotFoundError:
        return True


def wait_gone(pid: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not gone(pid):
        assert time.monotonic() < deadline, f"process {pid} still runs"
        time.sleep(0.02)


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


async def test_a_batch_is_stored_by_the_writer_process_not_by_a_thread_of_the_runtime(tmp_path, monkeypatch):
    def no_thread(self, fills):
        raise AssertionError("a batch that fits one statement went to the ledger's thread")

    monkeypatch.setattr(SqliteLedger, "_insert_large_sync", no_thread)
    target = Target("sqlite", str(tmp_path / "ledger.sqlite"))
    async with target.ledger() as ledger:
        statements: list[str] = []
        ledger._conn.set_trace_callback(statements.append)  # the runtime's own connection
        fills = [make_fill(i) for i in range(3)]
        for fill in fills:
            ledger.record(fill)
        await flushed(ledger)
        pid = ledger._inserts.pid
        assert pid is not None and pid != os.getpid() and not gone(pid)
        assert not [s for s in statements if "INSERT" in s.upper()], statements
        assert await ledger.fills() == fills
        assert await target.stored() == 3


async def test_one_request_per_batch_one_statement_that_checks_the_fence(tmp_path, monkeypatch):
    requests: list[tuple[str, int]] = []
    request = IoProcess.request

    async def recording(self, message):
        if message[0] == "insert":
            requests.append((message[1], len(message[2])))
        return await request(self, message)

    monkeypatch.setattr(IoProcess, "request", recording)
    async with Target("sqlite", str(tmp_path / "ledger.sqlite")).ledger() as ledger:
        for i in range(3):  # recorded without yielding to the loop: one batch
            ledger.record(make_fill(i))
        await flushed(ledger)
    row_values = len(make_fill(0).as_row()) + 1  # and the writer's epoch
    assert requests == [(fenced_insert_sql(3), row_values * 3 + 2)]  # and the fence's strategy key and epoch
    assert "WHERE EXISTS (SELECT 1 FROM fences" in requests[0][0]


async def test_a_killed_writer_process_is_started_again_and_its_batch_stored_once(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="livestrat.ledger")
    target = Target("sqlite", str(tmp_path / "ledger.sqlite"))
    async with target.ledger(retry_initial=0.01, retry_max=0.05) as ledger:
        first = [make_fill(i) for i in range(5)]
        for fill in first:
            ledger.record(fill)
        await flushed(ledger)
        pid = ledger._inserts.pid
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)

        second = [make_fill(i) for i in range(5, 10)]
        for fill in second:
            ledger.record(fill)
        await flushed(ledger)

        assert ledger._inserts.pid not in (None, pid)
        assert ledger._inserts.started == 2
        assert await ledger.fills() == first + second
        assert await target.stored() == 10
        assert ledger.lag().totals.new == 10
    assert "the ledger's I/O process ended (killed by signal 9)" in caplog.text


async def test_closing_the_ledger_ends_its_writer_process(tmp_path):
    ledger = Target("sqlite", str(tmp_path / "ledger.sqlite")).ledger()
    async with ledger:
        ledger.record(make_fill(0))
        await flushed(ledger)
        pid = ledger._inserts.pid
        assert pid is not None and not gone(pid)
    assert ledger._inserts.pid is None
    assert gone(pid)


@pytest.mark.slow  # a second runtime process
async def test_the_writer_process_ends_when_the_runtime_is_killed(tmp_path):
    target = Target("sqlite", str(tmp_path / "ledger.sqlite"))
    runtime = target.spawn("acked", owner="killed", count=10_000)
    try:
        line = ""
        while not line.startswith("DURABLE"):  # HOLDING (the fence), then DURABLE n as commits come back
            line = await asyncio.wait_for(asyncio.to_thread(runtime.stdout.readline), 60)
            assert line, runtime.stderr.read()
        writers = children(runtime.pid)
        assert writers, "the runtime committed fills without a writer process"
        runtime.send_signal(signal.SIGKILL)
        runtime.wait(timeout=10)
        for pid in writers:
            wait_gone(pid)
    finally:
        if runtime.poll() is None:
            runtime.kill()
            runtime.wait(timeout=10)
    assert await target.stored() > 0


async def test_the_writer_process_gets_none_of_the_runtimes_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVESTRAT_LEDGER_DSN", f"postgresql://trader:{SECRET}@db.internal/ledger")
    async with Target("sqlite", str(tmp_path / "ledger.sqlite")).ledger() as ledger:
        ledger.record(make_fill(0))
        await flushed(ledger)
        pid = ledger._inserts.pid
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    assert SECRET.encode() not in environ and b"LIVESTRAT" not in environ
    assert SECRET.encode() not in b" ".join(argv)
    assert argv[-3].endswith(b"io_child.py") and argv[-2:] == [b"sqlite", str(tmp_path / "ledger.sqlite").encode()]


async def test_a_ledger_file_gone_is_an_error_not_a_new_empty_ledger(tmp_path):
    database = tmp_path / "gone.sqlite"
    process = IoProcess(["sqlite", str(database)])
    try:
        with pytest.raises(IoProcessError, match="unable to open database file"):
            await process.request(("insert", fenced_insert_sql(1), [*make_fill(0).as_row(), 1, KEY, 1], KEY, 1))
    finally:
        await process.stop()
    assert not database.exists()


async def test_sqlites_error_comes_back_as_an_error_and_the_child_keeps_serving(tmp_path):
    database = tmp_path / "ledger.sqlite"
    sqlite3.connect(database).close()  # a file without the ledger's tables
    process = IoProcess(["sqlite", str(database)])
    try:
        with pytest.raises(IoProcessError, match="OperationalError: no such table: fills"):
            await process.request(("insert", fenced_insert_sql(1), [*make_fill(0).as_row(), 1, KEY, 1], KEY, 1))
        pid = process.pid
        with pytest.raises(IoProcessError, match="no such table"):
            await process.request(("insert", fenced_insert_sql(1), [*make_fill(0).as_row(), 1, KEY, 1], KEY, 1))
        assert process.pid == pid and process.started == 1
    finally:
        await process.stop()


async def test_a_ctrl_c_is_the_runtimes_the_writer_process_keeps_committing(tmp_path):
    async with Target("sqlite", str(tmp_path / "ledger.sqlite")).ledger() as ledger:
        ledger.record(make_fill(0))
        await flushed(ledger)
        pid = ledger._inserts.pid
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a terminal's, a service manager's
            os.kill(pid, signum)
        ledger.record(make_fill(1))
        await flushed(ledger)
        assert ledger._inserts.pid == pid and ledger._inserts.started == 1
        assert [fill.trade_id for fill in await ledger.fills()] == [make_fill(0).trade_id, make_fill(1).trade_id]


async def test_an_insert_cancelled_in_the_child_ends_that_child_and_the_next_one_stores_it_once(tmp_path):
    target = Target("sqlite", str(tmp_path / "ledger.sqlite"))
    async with target.ledger():
        pass  # the file and its tables; the fence taken once: epoch 1
    process = IoProcess(["sqlite", str(tmp_path / "ledger.sqlite")])
    params = [*make_fill(0).as_row(), 1, KEY, 1]
    try:
        with sqlite_write_lock(target.location):  # the child's INSERT waits for SQLite's lock
            insert = asyncio.create_task(process.request(("insert", fenced_insert_sql(1), params, KEY, 1)))
            await asyncio.sleep(0.5)
            assert not insert.done()
            pid = process.pid
            insert.cancel()
            with pytest.raises(asyncio.CancelledError):
                await insert
            wait_gone(pid)
        assert await process.request(("insert", fenced_insert_sql(1), params, KEY, 1)) == ("ok", 1)
        assert process.started == 2
        assert await process.request(("insert", fenced_insert_sql(1), params, KEY, 1)) == (
            "ok",
            0,
        )  # a duplicate, epoch 1
        stale = [*make_fill(1).as_row(), 2, KEY, 2]  # a writer whose epoch is not the fence's
        assert await process.request(("insert", fenced_insert_sql(1), stale, KEY, 2)) == ("fenced", 1)
    finally:
        await process.stop()
    assert await target.stored() == 1


# --------------------------------------------------------------------------- the fill spool's appends


async def test_a_spool_append_is_written_and_synced_by_the_io_process_not_by_a_thread(tmp_path, monkeypatch):
    def no_thread(self, fills, first_seq):
        raise AssertionError("the spool's append ran on its thread")

    monkeypatch.setattr(FillSpool, "append", no_thread)
    spool = FillSpool(tmp_path / "spool")
    spool.open()
    try:
        await spool.start()
        pid = spool._io.pid
        assert pid is not None and pid != os.getpid()
        await spool.write([make_fill(0), make_fill(1)], 0)
        await spool.write([make_fill(2)], 2)
        (segment,) = (tmp_path / "spool").glob("*.jsonl")
        assert segment.read_bytes() == b"".join(encode(make_fill(i)) for i in range(3))
        assert spool.releasable(3) and not spool.releasable(2)
        await spool.drop(3)
        assert segment.read_bytes() == b""
    finally:
        await spool.aclose()
    assert gone(pid)


async def test_a_spool_whose_io_process_dies_loses_no_acknowledged_fill_and_starts_a_new_segment(tmp_path):
    spool = FillSpool(tmp_path / "spool")
    spool.open()
    try:
        await spool.write([make_fill(0), make_fill(1)], 0)
        pid = spool._io.pid
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
        with pytest.raises(OSError, match="the ledger's I/O process ended"):
            await spool.write([make_fill(2)], 2)  # not acknowledged: the caller retries it
        await spool.write([make_fill(2)], 2)
        assert spool._io.pid not in (None, pid)
        assert len(list((tmp_path / "spool").glob("*.jsonl"))) == 2  # what reached the first one is not known
    finally:
        await spool.aclose()
    assert FillSpool(tmp_path / "spool").open().fills == [make_fill(0), make_fill(1), make_fill(2)]


def test_an_append_the_disk_refuses_is_reported_with_whether_the_segment_was_cut_back():
    files = SpoolFiles()
    try:
        outcome, text, cut_back = files.handle(("append", "/dev/full", b"a line\n", 0))
    finally:
        files.close()
    assert (outcome, cut_back) == ("failed", False) and "No space left on device" in text


def test_an_append_to_a_segment_not_of_the_size_the_runtime_knows_writes_nothing(tmp_path):
    # A truncate whose answer was lost (the child died after it) leaves the runtime a wrong size: a cut-back to it
    # after a failed append would keep a partial line, and the next acknowledged line would join it, unreadable.
    segment = tmp_path / "000000000001.jsonl"
    segment.write_bytes(b"")  # emptied by the truncate; the runtime still thinks 919 bytes
    files = SpoolFiles()
    try:
        outcome, text, cut_back = files.handle(("append", str(segment), encode(make_fill(0)), 919))
    finally:
        files.close()
    assert (outcome, cut_back) == ("failed", False) and "not written" in text
    assert segment.read_bytes() == b""


async def test_a_truncate_without_an_answer_gives_the_segment_up(tmp_path):
    spool = FillSpool(tmp_path / "spool")
    spool.open()
    try:
        await spool.write([make_fill(0)], 0)
        request = spool._io.request

        async def lost(message):
            if message[0] == "truncate":
                await request(message)  # done, and then the answer lost (the child died)
                raise IoProcessError("the ledger's I/O process ended (killed by signal 9)")
            return await request(message)

        spool._io.request = lost  # type: ignore[method-assign]
        await spool.drop(1)
        assert spool._active is None  # no more lines where the size is not known
        await spool.write([make_fill(1)], 1)
        spool._io.request = request  # type: ignore[method-assign]
        await spool.drop(1)  # the given-up segment, committed: removed
    finally:
        await spool.aclose()
    assert FillSpool(tmp_path / "spool").open().fills == [make_fill(1)]
