"""The ledger interface: what every backend shares.

``record()`` only enqueues: it is called from the node's event handlers, which must never
wait on a database. One writer task drains the queue in batches, one transaction per batch,
and a fill leaves the queue only once its batch has committed, so a database outage delays
fills but never drops one: the writer retries with backoff, and ``lag()`` says how far
behind it is. Writes are idempotent, which also makes a retry after an unknown outcome (the
connection dropped after COMMIT was sent) safe.

Fencing: ``open()`` takes an exclusive, per-strategy lock that the operating system or the
database server frees when this process dies. Losing it while running means another runtime
may now trade the same strategy: the ledger calls ``on_fence_lost`` and ``fence_held`` turns
False; the runtime must stop trading. It keeps recording fills (they are still real).

Risk halts: the ledger also keeps the strategy's risk halts (``record_halt``), because it
is the one store that outlives a pod and that the runtime must reach before it may trade.
A runtime that starts while a halt is active stays halted until the halt is cleared by an
acknowledgement (``clear_halt``); see docs/runtime.md, "Risk guard".
"""

from __future__ import annotations

import asyncio
import collections
import enum
import itertools
import logging
import os
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import TracebackType
from typing import ClassVar, Self

from livestrat.backoff import Backoff, jittered
from strategy_runtime.ledger.records import FillRecord

logger = logging.getLogger("livestrat.ledger")

FENCE_RETRY_SECONDS = 0.2


class LedgerError(Exception):
    """Base of every error the ledger raises."""


class LedgerUnavailable(LedgerError):
    """The ledger's database cannot be reached or opened."""


class LedgerSchemaError(LedgerError):
    """The database holds a ledger schema this runtime does not know."""


class LedgerClosed(LedgerError):
    """A fill was recorded on a ledger that is not open."""


class LedgerFlushTimeout(LedgerError):
    """``close()`` ran out of time with fills still uncommitted (each is logged at ERROR)."""

    def __init__(self, pending: int, where: str) -> None:
        super().__init__(
            f"{pending} fill(s) not committed to the ledger at {where} before the close timeout; "
            "each was logged at ERROR level: replay them (writes are idempotent) once the database is back"
        )
        self.pending = pending


@dataclass(frozen=True)
class FenceHolder:
    owner: str
    acquired_at: datetime


class FencedOut(LedgerError):
    """Another runtime holds this strategy's fence: this one must not trade."""

    def __init__(self, strategy_key: str, holder: FenceHolder | None, where: str) -> None:
        who = f"{holder.owner} (since {holder.acquired_at.isoformat()})" if holder else "another runtime"
        super().__init__(
            f"strategy {strategy_key!r} is already running: its ledger fence at {where} is held by {who}. "
            "This runtime will not trade. Stop the other runtime first; its lock is released as soon as its "
            "process (or database session) ends."
        )
        self.strategy_key = strategy_key
        self.holder = holder


@dataclass(frozen=True)
class HaltRecord:
    """A risk halt of a strategy, as the ledger keeps it until someone acknowledges it.

    ``acknowledgement`` is the risk acknowledgement that was in force when the halt was
    recorded: only a different one clears it (a restart with the same configuration does not).
    """

    breached_limit: str
    reason: str
    breached_at: datetime
    owner: str
    acknowledgement: str | None = None


@dataclass(frozen=True)
class RiskBaseline:
    """What the risk guard cannot derive from the fills alone, kept so that its limits hold across restarts.

    Both in "total PnL" (realized from every fill the ledger holds, plus the unrealized PnL of
    the open positions), per currency: ``day_open`` at the start of the UTC ``day``, and the
    highest ``peak`` it reached. See docs/runtime.md, "Risk guard".
    """

    day: date
    day_open: Mapping[str, float]
    peak: Mapping[str, float]


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


def pending_migrations(migrations: Sequence[Migration], current: int) -> list[Migration]:
    """The migrations to apply, in order, on a database at schema version ``current``."""
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise LedgerSchemaError(f"ledger migrations must be numbered 1, 2, 3, … in order, got {versions}")
    if current > len(migrations):
        raise LedgerSchemaError(
            f"the ledger database is at schema version {current}, newer than this runtime knows "
            f"({len(migrations)}): run a runtime image at least as new as the one that migrated it"
        )
    return list(migrations[current:])


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


@dataclass(frozen=True)
class LedgerLag:
    """How far the ledger is behind: for metrics and /readyz."""

    pending: int
    oldest_pending_seconds: float
    last_commit_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    fence_held: bool
    totals: WriteResult
    writer_stopped: bool = False  # nothing will commit any more (a bug, not an outage): see last_error


def default_owner() -> str:
    """Who holds a fence, for humans: in a pod the hostname is the pod name."""
    return f"{socket.gethostname()} pid {os.getpid()}"


class _State(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class Ledger(ABC):
    """The fills ledger of one strategy (``strategy_key`` = "namespace/name").

    Use ``async with ledger:`` or ``await ledger.open()`` … ``await ledger.close()``, on the
    event loop that will call ``record()``.
    """

    MIGRATIONS: ClassVar[tuple[Migration, ...]]

    def __init__(
        self,
        strategy_key: str,
        *,
        owner: str | None = None,
        fence_wait: float = 0.0,
        fence_check_interval: float = 2.0,
        batch_size: int = 500,
        retry_initial: float = 0.05,
        retry_max: float = 5.0,
        on_fence_lost: Callable[[str], None] | None = None,
        on_commit: Callable[[CommittedBatch], None] | None = None,
    ) -> None:
        self.strategy_key = strategy_key
        self.owner = owner or default_owner()
        self._fence_wait = fence_wait
        self._fence_check_interval = fence_check_interval
        self._batch_size = batch_size
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._on_fence_lost = on_fence_lost
        self._on_commit = on_commit

        self._state = _State.NEW
        self._pending: collections.deque[tuple[FillRecord, float]] = collections.deque()
        self._enqueued = 0
        self._committed = 0
        self._flush_waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()
        self._wakeup = asyncio.Event()
        self._loop_thread: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._totals = WriteResult()
        self._last_commit_at: datetime | None = None
        self._failures = 0
        self._last_error: str | None = None
        self._fence_held = False
        self._broken: str | None = None
        self.fence_lost_reason: str | None = None

    # ------------------------------------------------------------------ backend
    @abstractmethod
    def describe(self) -> str:
        """Where the ledger is, safe to log (never a password)."""

    @abstractmethod
    async def _connect(self) -> None:
        """Connect and bring the schema up to date (``MIGRATIONS``); raise ``LedgerUnavailable``."""

    @abstractmethod
    async def _try_fence(self) -> bool:
        """Take the strategy's lock without waiting and record the owner; False when another holds it."""

    @abstractmethod
    async def _fence_holder(self) -> FenceHolder | None:
        """Who holds the strategy's fence, as its holder recorded it."""

    @abstractmethod
    async def _check_fence(self) -> str | None:
        """None while the lock is still held, else why it is lost."""

    @abstractmethod
    async def _release_fence(self) -> None: ...

    @abstractmethod
    async def _disconnect(self) -> None: ...

    @abstractmethod
    async def _insert(self, fills: Sequence[FillRecord]) -> int:
        """Insert in one transaction, skipping rows already stored; return how many were new."""

    @abstractmethod
    async def _select(self, strategy_key: str) -> list[FillRecord]: ...

    @abstractmethod
    async def _count(self, strategy_key: str) -> int: ...

    @abstractmethod
    async def _save_halt(self, halt: HaltRecord) -> None:
        """Store ``halt`` as the strategy's active halt unless one is already active (the first reason stays)."""

    @abstractmethod
    async def _load_halt(self) -> HaltRecord | None:
        """The strategy's active (uncleared) halt."""

    @abstractmethod
    async def _clear_halt(self, acknowledgement: str) -> None:
        """Mark the active halt cleared by ``acknowledgement``."""

    @abstractmethod
    async def _save_baseline(self, baseline: RiskBaseline) -> None:
        """Store ``baseline`` as the strategy's risk baseline (replacing the one stored)."""

    @abstractmethod
    async def _load_baseline(self) -> RiskBaseline | None: ...

    # ------------------------------------------------------------------ lifecycle
    async def open(self) -> Self:
        """Connect, migrate, and take the fence (waiting up to ``fence_wait`` seconds); raise ``FencedOut``."""
        if self._state is not _State.NEW:
            raise LedgerError(f"ledger for {self.strategy_key!r} was already opened")
        loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        try:
            await self._connect()
            deadline = loop.time() + self._fence_wait
            while not await self._try_fence():
                if loop.time() >= deadline:
                    raise FencedOut(self.strategy_key, await self._fence_holder(), self.describe())
                await asyncio.sleep(FENCE_RETRY_SECONDS)
        except BaseException:
            await self._disconnect()
            self._state = _State.CLOSED
            raise
        self._fence_held = True
        self._state = _State.OPEN
        writer = asyncio.create_task(self._write_loop(), name=f"ledger-writer {self.strategy_key}")
        writer.add_done_callback(self._writer_ended)
        watchdog = asyncio.create_task(self._watch_fence(), name=f"ledger-fence {self.strategy_key}")
        watchdog.add_done_callback(self._watchdog_ended)
        self._tasks = [writer, watchdog]
        logger.info("ledger: %s, fence for %s taken by %s", self.describe(), self.strategy_key, self.owner)
        return self

    async def close(self, timeout: float | None = None) -> None:
        """Commit everything recorded (waiting at most ``timeout`` seconds), release the fence, disconnect."""
        if self._state is _State.NEW:
            self._state = _State.CLOSED
        if self._state is not _State.OPEN:
            return
        self._state = _State.CLOSING
        try:
            await asyncio.wait_for(self.flush(), timeout)
        except BaseException as exc:
            # Whatever stopped the flush (the timeout, a writer that died, a cancellation), the
            # uncommitted fills exist only here now: put them in the log, where they can be replayed.
            self._log_uncommitted(exc)
            if isinstance(exc, TimeoutError):
                raise LedgerFlushTimeout(len(self._pending), self.describe()) from None
            raise
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._state = _State.CLOSED
            try:
                if self._fence_held:
                    await self._release_fence()
            except Exception as exc:
                logger.warning(
                    "ledger: could not release the fence cleanly (%s); it ends with the session", self._error_text(exc)
                )
            finally:
                self._fence_held = False
                await self._disconnect()
            logger.info("ledger: closed %s (%s)", self.describe(), self._totals)

    def _log_uncommitted(self, exc: BaseException) -> None:
        if not self._pending:
            return
        why = "the close timed out" if isinstance(exc, TimeoutError) else self._error_text(exc)
        logger.error(
            "ledger: %d fill(s) NOT committed to %s at close (%s); trade ids: %s",
            len(self._pending),
            self.describe(),
            why,
            ", ".join(f"{fill.instrument_id}/{fill.trade_id}" for fill, _ in self._pending),
        )
        for fill, _ in self._pending:  # no secret in a fill: ids, instrument, side, quantities, prices
            logger.error("ledger: fill NOT committed to %s before close: %r", self.describe(), fill)

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()} strategy={self.strategy_key!r} {self._state.value}>"

    # ------------------------------------------------------------------ writing
    def record(self, fill: FillRecord) -> None:
        """Enqueue a fill for the writer; returns at once. Call it from the event loop's thread."""
        if self._state is not _State.OPEN:
            raise LedgerClosed(f"the ledger for {self.strategy_key!r} is {self._state.value}: fill {fill!r} refused")
        if fill.strategy_key != self.strategy_key:
            raise ValueError(f"fill of strategy {fill.strategy_key!r} recorded in the ledger of {self.strategy_key!r}")
        if threading.get_ident() != self._loop_thread:
            # asyncio.Event is not thread-safe: a wake-up from elsewhere could be missed.
            raise RuntimeError("Ledger.record() must be called from the thread running the ledger's event loop")
        self._pending.append((fill, time.monotonic()))
        self._enqueued += 1
        self._wakeup.set()

    async def flush(self) -> None:
        """Wait until every fill recorded so far is committed (forever, if the database stays away)."""
        target = self._enqueued
        if self._committed >= target:
            return
        if self._state not in (_State.OPEN, _State.CLOSING):
            raise LedgerClosed(f"the ledger for {self.strategy_key!r} is {self._state.value}")
        if self._broken is not None:
            raise LedgerError(f"the ledger cannot commit: {self._broken}")
        future = asyncio.get_running_loop().create_future()
        self._flush_waiters.append((target, future))
        await future

    def lag(self) -> LedgerLag:
        oldest = time.monotonic() - self._pending[0][1] if self._pending else 0.0
        return LedgerLag(
            pending=len(self._pending),
            oldest_pending_seconds=oldest,
            last_commit_at=self._last_commit_at,
            consecutive_failures=self._failures,
            last_error=self._broken or self._last_error,
            fence_held=self.fence_held,
            totals=self._totals,
            writer_stopped=self._broken is not None,
        )

    @property
    def is_open(self) -> bool:
        """Opened and not yet closed (nor closing): ``close()`` still has work to do."""
        return self._state is _State.OPEN

    @property
    def fence_held(self) -> bool:
        return self._fence_held and self.fence_lost_reason is None

    async def _write_loop(self) -> None:
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            size = min(len(self._pending), self._batch_size)
            batch = list(itertools.islice(self._pending, size))
            fills = [fill for fill, _ in batch]
            try:
                new = await self._insert(fills)
            except Exception as exc:  # whatever went wrong, the batch stays queued and is retried
                self._failures += 1
                self._last_error = self._error_text(exc)
                delay = Backoff(self._retry_initial, self._retry_max).delay(self._failures)
                logger.warning(
                    "ledger: writing %d fill(s) to %s failed (attempt %d, %d pending, retry in %.2fs): %s",
                    size,
                    self.describe(),
                    self._failures,
                    len(self._pending),
                    delay,
                    self._last_error,
                )
                await asyncio.sleep(jittered(delay))
                continue
            committed_at = time.monotonic()
            for _ in range(size):
                self._pending.popleft()
            if self._failures:
                logger.info("ledger: %s reachable again after %d failed attempt(s)", self.describe(), self._failures)
            self._failures = 0
            self._committed += size
            self._last_commit_at = datetime.now(UTC)
            result = WriteResult(new=new, duplicates=size - new)
            self._totals += result
            while self._flush_waiters and self._flush_waiters[0][0] <= self._committed:
                _, future = self._flush_waiters.popleft()
                if not future.done():
                    future.set_result(None)
            if self._on_commit is not None:
                try:
                    self._on_commit(CommittedBatch(fills, [t for _, t in batch], committed_at, result))
                except Exception:
                    logger.exception("ledger: on_commit callback failed")

    def _writer_ended(self, task: asyncio.Task[None]) -> None:
        exc = None if task.cancelled() else task.exception()
        if exc is None:
            return
        # A bug, not an outage (outages are retried inside the loop): nothing will commit any more.
        self._broken = f"the writer stopped: {self._error_text(exc)}"
        logger.critical("ledger: %s", self._broken)
        while self._flush_waiters:
            _, future = self._flush_waiters.popleft()
            if not future.done():
                future.set_exception(LedgerError(f"the ledger cannot commit: {self._broken}"))

    def _watchdog_ended(self, task: asyncio.Task[None]) -> None:
        exc = None if task.cancelled() else task.exception()
        if exc is not None:  # a fence nobody checks any more is as good as lost
            self._fence_lost(f"the fence check stopped: {self._error_text(exc)}")

    def redact(self, text: str) -> str:
        """``text`` with the backend's secrets (a DSN's password) masked: the one place they are removed.

        Every error text the ledger logs, raises or reports goes through it (``_error_text``), and
        so does any text about the ledger the runtime builds from an exception.
        """
        return text

    def _error_text(self, exc: BaseException) -> str:
        """An exception as text safe to log, raise or report (see ``redact``)."""
        return self.redact(f"{type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ fencing
    async def _watch_fence(self) -> None:
        while self.fence_lost_reason is None:
            await asyncio.sleep(self._fence_check_interval)
            reason = await self._check_fence()
            if reason is not None:
                self._fence_lost(reason)

    def _fence_lost(self, reason: str) -> None:
        if self._state is not _State.OPEN or self.fence_lost_reason is not None:
            return
        self.fence_lost_reason = reason
        logger.error(
            "ledger: fence for %s at %s LOST (%s): another runtime may take it, this one must stop trading",
            self.strategy_key,
            self.describe(),
            reason,
        )
        if self._on_fence_lost is not None:
            try:
                self._on_fence_lost(reason)
            except Exception:
                logger.exception("ledger: on_fence_lost callback failed")

    # ------------------------------------------------------------------ reading
    async def fills(self, strategy_key: str | None = None) -> list[FillRecord]:
        """Committed fills of a strategy (default: this one), ordered by ts_event, then trade id."""
        return await self._select(strategy_key or self.strategy_key)

    async def count(self, strategy_key: str | None = None) -> int:
        """Number of committed fills of a strategy (default: this one)."""
        return await self._count(strategy_key or self.strategy_key)

    # ------------------------------------------------------------------ risk halts
    def _require_open(self, doing: str) -> None:
        if self._state not in (_State.OPEN, _State.CLOSING):
            raise LedgerClosed(f"cannot {doing}: the ledger for {self.strategy_key!r} is {self._state.value}")

    async def record_halt(self, halt: HaltRecord) -> None:
        """Persist a risk halt (idempotent: while one is active, the first one is kept)."""
        self._require_open("record a risk halt")
        await self._save_halt(halt)
        logger.info("ledger: risk halt of %s recorded in %s (%s)", self.strategy_key, self.describe(), halt.reason)

    async def active_halt(self) -> HaltRecord | None:
        """The strategy's risk halt that nobody has acknowledged yet, if any."""
        self._require_open("read risk halts")
        return await self._load_halt()

    async def clear_halt(self, acknowledgement: str) -> None:
        """Clear the active risk halt: a human acknowledged it with ``acknowledgement``."""
        self._require_open("clear a risk halt")
        await self._clear_halt(acknowledgement)
        logger.info("ledger: risk halt of %s cleared by acknowledgement %r", self.strategy_key, acknowledgement)

    # ------------------------------------------------------------------ risk baselines
    async def risk_baseline(self) -> RiskBaseline | None:
        """The risk guard's baseline as last saved for this strategy (None if never saved)."""
        self._require_open("read the risk baseline")
        return await self._load_baseline()

    async def save_risk_baseline(self, baseline: RiskBaseline) -> None:
        """Replace the strategy's risk baseline (one row per strategy)."""
        self._require_open("save the risk baseline")
        await self._save_baseline(baseline)
