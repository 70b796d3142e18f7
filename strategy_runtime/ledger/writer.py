"""The write-behind writer: fills wait in memory and are committed in batches, never dropped.

``append()`` is the whole cost of ``Ledger.record()``: an append to a queue. One task
(``run``) takes up to ``batch_size`` queued fills at a time and hands them to the backend's
insert, one transaction per batch; a fill leaves the queue only once its batch has committed.
A failed insert (an outage, or anything else) leaves the batch queued and is retried with
exponential backoff and jitter, for as long as it takes. ``flush()`` waits until everything
appended before the call has committed. See docs/ledger.md, "Batching and lag".
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
from strategy_runtime.ledger.records import FillRecord

logger = logging.getLogger("livestrat.ledger")


@dataclass(frozen=True)
class WriteResult:
    new: int = 0
    duplicates: int = 0

    def __add__(self, other: WriteResult) -> WriteResult:
        return WriteResult(self.new + other.new, self.duplicates + other.duplicates)


@dataclass(frozen=True)
class CommittedBatch:
    """Passed to ``on_commit`` after each batch commits (times from ``time.monotonic()``)."""

    fills: Sequence[FillRecord]
    enqueued_at: Sequence[float]
    committed_at: float
    result: WriteResult


class WriteBehind:
    """The queue between ``Ledger.record()`` and the database, and the task that drains it.

    ``insert`` commits a batch and returns how many rows were new; ``where`` says where the
    ledger is and ``error_text`` turns an exception into text safe to log (both the ledger's).
    """

    def __init__(
        self,
        insert: Callable[[Sequence[FillRecord]], Awaitable[int]],
        *,
        where: Callable[[], str],
        error_text: Callable[[BaseException], str],
        batch_size: int,
        retry_initial: float,
        retry_max: float,
        on_commit: Callable[[CommittedBatch], None] | None,
    ) -> None:
        self._insert = insert
        self._where = where
        self._error_text = error_text
        self._batch_size = batch_size
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._on_commit = on_commit
        self.pending: collections.deque[tuple[FillRecord, float]] = collections.deque()
        self._enqueued = 0
        self._committed = 0
        self._flush_waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()
        self._wakeup = asyncio.Event()
        self.totals = WriteResult()
        self.last_commit_at: datetime | None = None
        self.failures = 0
        self.last_error: str | None = None
        # Set when the task ended with an exception: a bug, not an outage; nothing commits any more.
        self.broken: str | None = None

    def append(self, fill: FillRecord) -> None:
        self.pending.append((fill, time.monotonic()))
        self._enqueued += 1
        self._wakeup.set()

    @property
    def caught_up(self) -> bool:
        """Everything appended so far is committed."""
        return self._committed >= self._enqueued

    @property
    def oldest_pending_seconds(self) -> float:
        return time.monotonic() - self.pending[0][1] if self.pending else 0.0

    async def flush(self) -> None:
        """Wait until every fill appended so far is committed; ``LedgerError`` if nothing will commit."""
        target = self._enqueued
        if self._committed >= target:
            return
        if self.broken is not None:
            raise LedgerError(f"the ledger cannot commit: {self.broken}")
        future = asyncio.get_running_loop().create_future()
        self._flush_waiters.append((target, future))
        await future

    async def run(self) -> None:
        """The writer task: commit batches for as long as the ledger is open."""
        while True:
            if not self.pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            size = min(len(self.pending), self._batch_size)
            batch = list(itertools.islice(self.pending, size))
            fills = [fill for fill, _ in batch]
            try:
                new = await self._insert(fills)
            except Exception as exc:  # whatever went wrong, the batch stays queued and is retried
                self.failures += 1
                self.last_error = self._error_text(exc)
                delay = Backoff(self._retry_initial, self._retry_max).delay(self.failures)
                logger.warning(
                    "ledger: writing %d fill(s) to %s failed (attempt %d, %d pending, retry in %.2fs): %s",
                    size,
                    self._where(),
                    self.failures,
                    len(self.pending),
                    delay,
                    self.last_error,
                )
                await asyncio.sleep(jittered(delay))
                continue
            self._committed_batch(batch, fills, new)

    def _committed_batch(self, batch: list[tuple[FillRecord, float]], fills: list[FillRecord], new: int) -> None:
        committed_at = time.monotonic()
        size = len(batch)
        for _ in range(size):
            self.pending.popleft()
        if self.failures:
            logger.info("ledger: %s reachable again after %d failed attempt(s)", self._where(), self.failures)
        self.failures = 0
        self._committed += size
        self.last_commit_at = datetime.now(UTC)
        result = WriteResult(new=new, duplicates=size - new)
        self.totals += result
        while self._flush_waiters and self._flush_waiters[0][0] <= self._committed:
            _, future = self._flush_waiters.popleft()
            if not future.done():
                future.set_result(None)
        if self._on_commit is not None:
            try:
                self._on_commit(CommittedBatch(fills, [t for _, t in batch], committed_at, result))
            except Exception:
                logger.exception("ledger: on_commit callback failed")

    def task_ended(self, task: asyncio.Task[None]) -> None:
        """The writer task's done callback: an exception means nothing will commit any more."""
        exc = None if task.cancelled() else task.exception()
        if exc is None:
            return
        # A bug, not an outage (outages are retried inside the loop): nothing will commit any more.
        self.broken = f"the writer stopped: {self._error_text(exc)}"
        logger.critical("ledger: %s", self.broken)
        while self._flush_waiters:
            _, future = self._flush_waiters.popleft()
            if not future.done():
                future.set_exception(LedgerError(f"the ledger cannot commit: {self.broken}"))

    def log_uncommitted(self, exc: BaseException) -> None:
        """What is still queued when the ledger closes short of committing it: the last place it exists is the log."""
        if not self.pending:
            return
        where = self._where()
        why = "the close timed out" if isinstance(exc, TimeoutError) else self._error_text(exc)
        logger.error(
            "ledger: %d fill(s) NOT committed to %s at close (%s); trade ids: %s",
            len(self.pending),
            where,
            why,
            ", ".join(f"{fill.instrument_id}/{fill.trade_id}" for fill, _ in self.pending),
        )
        for fill, _ in self.pending:  # no secret in a fill: ids, instrument, side, quantities, prices
            logger.error("ledger: fill NOT committed to %s before close: %r", where, fill)
