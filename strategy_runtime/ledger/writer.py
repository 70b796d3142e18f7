"""The write-behind writer: fills wait in memory, are made durable on disk, and are committed in batches.

``append()`` is the whole cost of ``Ledger.record()``: an append to a queue; each fill gets the
next sequence number. Two tasks drain the queue, side by side:

- ``run`` commits: it takes up to ``batch_size`` queued fills at a time and hands them to the
  backend's insert, one transaction per batch, at once when it has been idle for ``commit_interval``
  and otherwise at most once per ``commit_interval`` (group commit, ``pacing.Turns``: a busy ledger
  gathers the fills that come meanwhile into one commit); a fill leaves the queue only once its
  batch has committed. A failed insert (an outage, or anything else) leaves the batch queued and is
  retried with exponential backoff and jitter, for as long as it takes. An insert the fencing token
  refuses (``FenceTaken``: another runtime holds the fence now) ends it: nothing this runtime writes
  may reach the ledger any more.
- ``run_spool`` (when the ledger has a spool, ``spool.FillSpool``) makes durable: everything queued
  and not yet committed is appended to the spool and synced, in one write for all of it (group
  commit, on the same turns as the commits), retried with backoff if the disk fails; then it tells
  the spool which segments the database has since committed.

Both stages go through the same sequence of fills in order, so "durable" is a prefix of it: a
fill is durable once either stage has passed it (``durable``), never before the spool's sync
returned or the database committed. ``flush()`` waits until everything appended before the call
has committed; ``flush_durable()`` until it is durable. Both take the stage's turn at once: a
waiter is never kept waiting for the interval. See docs/ledger.md, "Batching and lag".
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from livestrat.backoff import Backoff, jittered
from strategy_runtime.ledger.errors import LedgerError
from strategy_runtime.ledger.fencing import FenceTaken
from strategy_runtime.ledger.pacing import Turns
from strategy_runtime.ledger.records import FillRecord
from strategy_runtime.ledger.spool import FillSpool
from strategy_runtime.ledger.supersede import Change

logger = logging.getLogger("livestrat.ledger")


@dataclass(frozen=True)
class WriteResult:
    """Rows the writes added to ``fills`` (``new``), fills already stored (``duplicates``), and inferred fills whose
    ``fills`` row the venue's own trades superseded whole (``superseded``: rows taken out again; see ``supersede``).
    The rows these writes leave in ``fills``: ``new - superseded``."""

    new: int = 0
    duplicates: int = 0
    superseded: int = 0

    def __add__(self, other: WriteResult) -> WriteResult:
        return WriteResult(self.new + other.new, self.duplicates + other.duplicates, self.superseded + other.superseded)

    @property
    def rows(self) -> int:
        """What these writes changed the number of rows in ``fills`` by."""
        return self.new - self.superseded


@dataclass(frozen=True)
class Written:
    """What storing one batch did: rows added, ``fills`` rows of inferred fills taken out (superseded whole), and
    every inferred fill whose counted quantity changed."""

    new: int
    changes: Sequence[Change] = ()

    @property
    def superseded(self) -> int:
        return sum(1 for change in self.changes if change.takes_the_row_out)


@dataclass(frozen=True)
class CommittedBatch:
    """Passed to ``on_commit`` after each batch commits (times from ``time.monotonic()``)."""

    fills: Sequence[FillRecord]
    enqueued_at: Sequence[float]
    committed_at: float
    result: WriteResult


class _Waiters:
    """Futures waiting for a counter to reach their target, woken in order."""

    def __init__(self) -> None:
        self._waiting: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    def __bool__(self) -> bool:
        return bool(self._waiting)

    async def wait(self, target: int) -> None:
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((target, future))
        await future

    def reached(self, count: int) -> None:
        while self._waiting and self._waiting[0][0] <= count:
            _, future = self._waiting.popleft()
            if not future.done():
                future.set_result(None)

    def fail(self, exc: BaseException) -> None:
        while self._waiting:
            _, future = self._waiting.popleft()
            if not future.done():
                future.set_exception(exc)


class WriteBehind:
    """The queue between ``Ledger.record()`` and the database, and the tasks that drain it.

    ``insert`` commits a batch and returns what it wrote (``Written``: how many rows were new, …); ``where``
    says where the ledger is and ``error_text`` turns an exception into text safe to log (both the ledger's);
    ``on_fence_taken`` hears why the token refused a write.
    """

    def __init__(
        self,
        insert: Callable[[Sequence[FillRecord]], Awaitable[Written]],
        *,
        where: Callable[[], str],
        error_text: Callable[[BaseException], str],
        batch_size: int,
        retry_initial: float,
        retry_max: float,
        on_commit: Callable[[CommittedBatch], None] | None,
        on_fence_taken: Callable[[str], None],
        spool: FillSpool | None = None,
        commit_interval: float = 0.0,
    ) -> None:
        self._insert = insert
        self._where = where
        self._error_text = error_text
        self.batch_size = batch_size
        self._backoff = Backoff(retry_initial, retry_max)
        self._on_commit = on_commit
        self._on_fence_taken = on_fence_taken
        self.spool = spool
        self.pending: collections.deque[tuple[FillRecord, float]] = collections.deque()  # from ``_committed`` on
        self._enqueued = 0
        self._committed = 0
        self._spooled = 0  # every fill before this sequence number is in the spool (or committed)
        self._released = 0  # the spool was told the database has every fill before this one
        self._committed_waiters = _Waiters()
        self._durable_waiters = _Waiters()
        self._wakeup = asyncio.Event()
        self._commit_turns = Turns(commit_interval)
        self._spool_turns = Turns(commit_interval)
        self._spool_wakeup = asyncio.Event()
        self.totals = WriteResult()
        self.last_commit_at: datetime | None = None
        self.failures = 0
        self.last_error: str | None = None
        self.spool_failures = 0
        self.spool_error: str | None = None
        # Set when the task ended with an exception: a bug, not an outage; nothing commits any more.
        self.broken: str | None = None
        # Set when the fencing token refused a write: this runtime may not write any more.
        self.fenced_out: str | None = None

    def append(self, fill: FillRecord) -> None:
        self.pending.append((fill, time.monotonic()))
        self._enqueued += 1
        self._wakeup.set()
        self._spool_wakeup.set()

    # ------------------------------------------------------------------ where it stands
    @property
    def caught_up(self) -> bool:
        """Everything appended so far is committed."""
        return self._committed >= self._enqueued

    @property
    def committed(self) -> int:
        """How many of the fills appended so far are committed."""
        return self._committed

    @property
    def durable(self) -> int:
        """How many of the fills appended so far are durable: committed, or synced to the spool."""
        return max(self._committed, self._spooled)

    @property
    def not_durable(self) -> int:
        return self._enqueued - self.durable

    @property
    def spooled(self) -> int:
        """Fills not committed yet but durable in the spool."""
        return max(0, self._spooled - self._committed)

    @property
    def oldest_pending_seconds(self) -> float:
        return time.monotonic() - self.pending[0][1] if self.pending else 0.0

    @property
    def oldest_not_durable_seconds(self) -> float:
        if not self.not_durable:
            return 0.0
        return time.monotonic() - self.pending[self.durable - self._committed][1]

    # ------------------------------------------------------------------ waiting
    async def flush(self) -> None:
        """Wait until every fill appended so far is committed; ``LedgerError`` if nothing will commit."""
        target = self._enqueued
        if self._committed >= target:
            return
        self._raise_if_stopped()
        self._commit_turns.hurry()
        await self._committed_waiters.wait(target)

    async def flush_durable(self) -> None:
        """Wait until every fill appended so far is durable (committed, or synced to the spool)."""
        target = self._enqueued
        if self.durable >= target:
            return
        if self.spool is None:
            self._raise_if_stopped()
        self._commit_turns.hurry()
        self._spool_turns.hurry()
        await self._durable_waiters.wait(target)

    def _raise_if_stopped(self) -> None:
        if self.broken is not None:
            raise LedgerError(f"the ledger cannot commit: {self.broken}")
        if self.fenced_out is not None:
            raise LedgerError(f"the ledger refuses this runtime's writes: {self.fenced_out}")

    def _durable_now(self) -> None:
        self._durable_waiters.reached(self.durable)

    # ------------------------------------------------------------------ committing
    async def run(self) -> None:
        """The commit task: commit batches for as long as the ledger is open (and the fence is this runtime's)."""
        while True:
            if not self.pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._commit_turns.take(hurried=bool(self._committed_waiters or self._durable_waiters))
            size = min(len(self.pending), self.batch_size)
            batch = list(itertools.islice(self.pending, size))
            fills = [fill for fill, _ in batch]
            try:
                written = await self._insert(fills)
            except FenceTaken as exc:
                self._fenced_out(self._error_text(exc))
                return
            except Exception as exc:  # whatever went wrong, the batch stays queued and is retried
                self.failures += 1
                self.last_error = self._error_text(exc)
                delay = self._backoff.delay(self.failures)
                logger.warning(
                    "ledger: writing %d fill(s) to %s failed (attempt %d, %d pending, %d of them in the spool, "
                    "retry in %.2fs): %s",
                    size,
                    self._where(),
                    self.failures,
                    len(self.pending),
                    self.spooled,
                    delay,
                    self.last_error,
                )
                await asyncio.sleep(jittered(delay))
                continue
            self._committed_batch(batch, fills, written)

    def _fenced_out(self, why: str) -> None:
        self.fenced_out = why
        logger.error(
            "ledger: %s; %d fill(s) not committed stay %s",
            why,
            len(self.pending),
            f"in the spool {self.spool.directory}" if self.spool is not None else "in memory only",
        )
        self._committed_waiters.fail(LedgerError(f"the ledger refuses this runtime's writes: {why}"))
        if self.spool is None:
            self._durable_waiters.fail(LedgerError(f"the ledger refuses this runtime's writes: {why}"))
        self._on_fence_taken(why)

    def _committed_batch(
        self, batch: list[tuple[FillRecord, float]], fills: list[FillRecord], written: Written
    ) -> None:
        committed_at = time.monotonic()
        size = len(batch)
        for _ in range(size):
            self.pending.popleft()
        if self.failures:
            logger.info("ledger: %s reachable again after %d failed attempt(s)", self._where(), self.failures)
        self.failures = 0
        self._committed += size
        self.last_commit_at = datetime.now(UTC)
        result = WriteResult(new=written.new, duplicates=size - written.new, superseded=written.superseded)
        self.totals += result
        self._committed_waiters.reached(self._committed)
        self._durable_now()
        self._spool_wakeup.set()  # segments the database now has can go
        if self._on_commit is not None:
            try:
                self._on_commit(CommittedBatch(fills, [t for _, t in batch], committed_at, result))
            except Exception:
                logger.exception("ledger: on_commit callback failed")

    # ------------------------------------------------------------------ spooling
    async def run_spool(self) -> None:
        """The durability task: sync what the database has not committed yet to the spool, in groups."""
        spool = self.spool
        assert spool is not None, "run_spool needs a spool"
        while True:
            if self._committed > self._released:
                committed = self._committed
                if spool.releasable(committed):
                    await spool.drop(committed)
                self._released = committed
            start = self.durable
            if start >= self._enqueued:
                self._spool_wakeup.clear()
                if self._committed > self._released:
                    continue
                await self._spool_wakeup.wait()
                continue
            await self._spool_turns.take(hurried=bool(self._durable_waiters))
            start = self.durable  # the database may have committed some while this stage waited its turn
            if start >= self._enqueued:
                continue
            fills = [fill for fill, _ in itertools.islice(self.pending, start - self._committed, None)]
            try:
                await spool.write(fills, start)
            except Exception as exc:  # a full disk, an I/O error: the fills are not durable yet, try again
                self.spool_failures += 1
                self.spool_error = self._error_text(exc)
                delay = self._backoff.delay(self.spool_failures)
                logger.error(
                    "ledger: spooling %d fill(s) to %s failed (attempt %d, retry in %.2fs): %s",
                    len(fills),
                    spool.directory,
                    self.spool_failures,
                    delay,
                    self.spool_error,
                )
                await asyncio.sleep(jittered(delay))
                continue
            if self.spool_failures:
                logger.warning(
                    "ledger: the spool %s works again after %d failure(s)", spool.directory, self.spool_failures
                )
            self.spool_failures, self.spool_error = 0, None
            self._spooled = max(self._spooled, start + len(fills))
            self._durable_now()

    # ------------------------------------------------------------------ the end
    def task_ended(self, task: asyncio.Task[None]) -> None:
        """The tasks' done callback: an exception means nothing will commit (or be spooled) any more."""
        exc = None if task.cancelled() else task.exception()
        if exc is None:
            return
        # A bug, not an outage (outages are retried inside the loops): nothing will commit any more.
        self.broken = f"the writer stopped: {self._error_text(exc)}"
        logger.critical("ledger: %s", self.broken)
        error = LedgerError(f"the ledger cannot commit: {self.broken}")
        self._committed_waiters.fail(error)
        self._durable_waiters.fail(error)

    def log_uncommitted(self, exc: BaseException) -> None:
        """What is still queued when the ledger closes short of committing it.

        Durable in the spool: a warning (the next start writes it). Not durable: the log is the last
        place it exists, every fill in full at ERROR.
        """
        if not self.pending:
            return
        where = self._where()
        why = "the close timed out" if isinstance(exc, TimeoutError) else self._error_text(exc)
        if self.spool is not None and self.not_durable == 0:
            logger.warning(
                "ledger: %d fill(s) not committed to %s at close (%s) are kept in the spool %s: the next runtime "
                "started with this state directory writes them to the ledger before it trades",
                len(self.pending),
                where,
                why,
                self.spool.directory,
            )
            for fill, _ in self.pending:  # a second copy, should the pod's volume go with the pod
                logger.warning("ledger: fill kept in the spool, not committed to %s yet: %r", where, fill)
            return
        logger.error(
            "ledger: %d fill(s) NOT committed to %s at close (%s), %d of them not in the spool either; trade ids: %s",
            len(self.pending),
            where,
            why,
            self.not_durable,
            ", ".join(f"{fill.instrument_id}/{fill.trade_id}" for fill, _ in self.pending),
        )
        for fill, _ in self.pending:  # no secret in a fill: ids, instrument, side, quantities, prices
            logger.error("ledger: fill NOT committed to %s before close: %r", where, fill)
