"""The ledger interface: what every backend shares, and the lifecycle that ties its parts together.

``record()`` only enqueues: it is called from the node's event handlers, which must never
wait on a database. The write-behind writer (``writer.WriteBehind``) drains the queue in
batches, one transaction per batch, and a fill leaves the queue only once its batch has
committed, so a database outage delays fills but never drops one: the writer retries with
backoff, and ``lag()`` says how far behind it is. Writes are idempotent, which also makes a
retry after an unknown outcome (the connection dropped after COMMIT was sent) safe.

Fencing (``fencing``): ``open()`` takes an exclusive, per-strategy lock that the operating system or the
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
import enum
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import ClassVar, Self

from strategy_runtime.ledger import fencing
from strategy_runtime.ledger.errors import LedgerClosed, LedgerError, LedgerFlushTimeout, LedgerSchemaError
from strategy_runtime.ledger.fencing import FenceHolder, default_owner
from strategy_runtime.ledger.records import FillRecord, HaltRecord, RiskBaseline
from strategy_runtime.ledger.writer import CommittedBatch, WriteBehind, WriteResult

logger = logging.getLogger("livestrat.ledger")


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
        self._on_fence_lost = on_fence_lost
        self._writer = WriteBehind(
            self._insert,
            where=self.describe,
            error_text=self._error_text,
            batch_size=batch_size,
            retry_initial=retry_initial,
            retry_max=retry_max,
            on_commit=on_commit,
        )

        self._state = _State.NEW
        self._loop_thread: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._fence_held = False
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
        self._loop_thread = threading.get_ident()
        try:
            await self._connect()
            await fencing.acquire(
                self._try_fence,
                self._fence_holder,
                wait=self._fence_wait,
                strategy_key=self.strategy_key,
                where=self.describe(),
            )
        except BaseException:
            await self._disconnect()
            self._state = _State.CLOSED
            raise
        self._fence_held = True
        self._state = _State.OPEN
        writer = asyncio.create_task(self._write_loop(), name=f"ledger-writer {self.strategy_key}")
        writer.add_done_callback(self._writer.task_ended)
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
            self._writer.log_uncommitted(exc)
            if isinstance(exc, TimeoutError):
                raise LedgerFlushTimeout(len(self._writer.pending), self.describe()) from None
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
            logger.info("ledger: closed %s (%s)", self.describe(), self._writer.totals)

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
        self._writer.append(fill)

    async def flush(self) -> None:
        """Wait until every fill recorded so far is committed (forever, if the database stays away)."""
        if self._writer.caught_up:
            return
        if self._state not in (_State.OPEN, _State.CLOSING):
            raise LedgerClosed(f"the ledger for {self.strategy_key!r} is {self._state.value}")
        await self._writer.flush()

    def lag(self) -> LedgerLag:
        writer = self._writer
        return LedgerLag(
            pending=len(writer.pending),
            oldest_pending_seconds=writer.oldest_pending_seconds,
            last_commit_at=writer.last_commit_at,
            consecutive_failures=writer.failures,
            last_error=writer.broken or writer.last_error,
            fence_held=self.fence_held,
            totals=writer.totals,
            writer_stopped=writer.broken is not None,
        )

    @property
    def is_open(self) -> bool:
        """Opened and not yet closed (nor closing): ``close()`` still has work to do."""
        return self._state is _State.OPEN

    @property
    def fence_held(self) -> bool:
        return self._fence_held and self.fence_lost_reason is None

    async def _write_loop(self) -> None:
        await self._writer.run()

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
