"""The ledger interface: what every backend shares, and the lifecycle that ties its parts together.

``record()`` only enqueues: it is called from the node's event handlers, which must never
wait on a database. The write-behind writer (``writer.WriteBehind``) drains the queue in
batches, one transaction per batch, and a fill leaves the queue only once its batch has
committed, so a database outage delays fills but never drops one: the writer retries with
backoff, and ``lag()`` says how far behind it is. Writes are idempotent, which also makes a
retry after an unknown outcome (the connection dropped after COMMIT was sent) safe.

Fencing (``fencing``): ``open()`` takes an exclusive, per-strategy lock that the operating system or the
database server frees when this process dies, and raises the strategy's epoch (the fencing token)
in the same step. Every write checks the token in its own transaction (``FenceTaken`` once another
runtime took the fence). A task keeps the fence's lease confirmed (``_keep_fence``); the order gate
reads ``fence_refusal()`` before every order: a clock read, no round trip. Losing the fence for
sure (the lock or the epoch is another runtime's) means another runtime may now trade the same
strategy: the ledger calls ``on_fence_lost`` and ``fence_held`` turns False; the runtime must stop
trading. Not being able to confirm it (the database is away) only lets the lease run out: orders
wait, and trading resumes if the database comes back with the fence still this runtime's.

Durability (``spool``): with a spool, every fill the database has not committed yet is synced to
the pod's disk; fills an earlier run left there are committed by ``open()`` before it returns.

Inferred fills superseded (``supersede``): a batch that holds an inferred fill, or a fill of a venue order the
ledger holds an inferred fill of, is stored by ``_insert_superseding``: in the same transaction, every inferred
fill of those orders is made to count only what the venue's own trades of the order do not cover (the rest moves
to ``superseded_fills``, with the trade ids that superseded it). Every other batch takes the plain ``_insert``.

Risk halts: the ledger also keeps the strategy's risk halts (``record_halt``), because it
is the one store that outlives a pod and that the runtime must reach before it may trade.
A runtime that starts while a halt is active stays halted until the halt is cleared by an
acknowledgement (``clear_halt``); see docs/runtime.md, "Risk guard".
"""

from __future__ import annotations

import asyncio
import contextlib
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
from strategy_runtime.ledger.errors import (
    LedgerClosed,
    LedgerError,
    LedgerFlushTimeout,
    LedgerSchemaError,
    LedgerUnavailable,
)
from strategy_runtime.ledger.fencing import (
    FENCE_LEASE_SECONDS,
    FenceCheck,
    FenceGrant,
    FenceHolder,
    FenceLease,
    default_owner,
    lease_clock,
)
from strategy_runtime.ledger.records import FillRecord, HaltRecord, RiskBaseline, run_key
from strategy_runtime.ledger.spool import FillSpool
from strategy_runtime.ledger.supersede import Change, OrderKey, Supersession, is_inferred, order_key
from strategy_runtime.ledger.writer import CommittedBatch, WriteBehind, WriteResult, Written

logger = logging.getLogger("livestrat.ledger")

# The writer's retries: 50 ms doubling to 5 s (with jitter), for as long as it takes.
RETRY_INITIAL_SECONDS = 0.05
RETRY_MAX_SECONDS = 5.0
# Group commit (``pacing.Turns``): a busy ledger starts a commit at most this often; an idle one at once.
COMMIT_INTERVAL_SECONDS = 0.02


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
    not_durable: int = 0  # fills neither committed nor synced to the spool: in this process's memory only
    oldest_not_durable_seconds: float = 0.0
    spooled: int = 0  # fills not committed yet, durable in the spool
    spool_error: str | None = None  # the spool's last write failed (a full disk?): see spool_failures
    fence_unconfirmed: str | None = None  # why the fence cannot be relied on now (its lease ran out, …)
    fence_epoch: int | None = None  # the fencing token this runtime writes under


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
        fence_lease: float = FENCE_LEASE_SECONDS,
        fence_check_interval: float | None = None,
        lease_clock: Callable[[], float] = lease_clock,
        batch_size: int = 500,
        retry_initial: float = RETRY_INITIAL_SECONDS,
        retry_max: float = RETRY_MAX_SECONDS,
        spool: FillSpool | None = None,
        commit_interval: float = COMMIT_INTERVAL_SECONDS,
        on_fence_lost: Callable[[str], None] | None = None,
        on_commit: Callable[[CommittedBatch], None] | None = None,
        runs: bool = False,
    ) -> None:
        self.strategy_key = strategy_key  # the fence, the risk halts and the baseline are the strategy's
        # Where this opening records and counts fills: the strategy key, or with ``runs`` (paper
        # strategies: each start is a fresh simulated account) a run of its own, ``run_key``, known once
        # the fence is taken (its epoch numbers the run).
        self.fills_key = strategy_key
        self._runs = runs
        self.owner = owner or default_owner()
        self._fence_wait = fence_wait
        self._lease = FenceLease(fence_lease, lease_clock)
        # Renewed every third of the lease, each confirmation bounded by a third of it: two may fail
        # (or the event loop may be late) before orders wait.
        self._fence_check_interval = fence_check_interval or fence_lease / 3
        self._fence_confirm_timeout = fence_lease / 3
        self._on_fence_lost = on_fence_lost
        self._spool = spool
        self._writer = WriteBehind(
            self._write,
            where=self.describe,
            error_text=self._error_text,
            batch_size=batch_size,
            retry_initial=retry_initial,
            retry_max=retry_max,
            on_commit=on_commit,
            on_fence_taken=self._fence_lost,
            spool=spool,
            commit_interval=commit_interval,
        )

        self._state = _State.NEW
        self._loop_thread: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._fence_held = False
        self._epoch = 0  # the fencing token, from the moment the fence is taken
        self._fence_wakeup = asyncio.Event()
        self.fence_lost_reason: str | None = None
        self.fence_doubt: str | None = None  # why the last confirmation failed (None: it succeeded)
        self.drained = WriteResult()  # what open() committed from the spool an earlier run left
        # The venue orders (ledger key, instrument, venue order id) the ledger holds an inferred fill of: a batch
        # with a fill of one of them is stored by ``_insert_superseding``. Loaded at open; one writer per strategy.
        self._inferred_orders: set[OrderKey] = set()

    # ------------------------------------------------------------------ backend
    @abstractmethod
    def describe(self) -> str:
        """Where the ledger is, safe to log (never a password)."""

    @abstractmethod
    async def _connect(self) -> None:
        """Connect and bring the schema up to date (``MIGRATIONS``); raise ``LedgerUnavailable``."""

    @abstractmethod
    async def _try_fence(self) -> FenceGrant | None:
        """Take the strategy's lock without waiting, record the owner, raise the epoch; None if another holds it."""

    @abstractmethod
    async def _fence_holder(self) -> FenceHolder | None:
        """Who holds the strategy's fence, as its holder recorded it."""

    @abstractmethod
    async def _confirm_fence(self) -> FenceCheck:
        """Whether the lock and the epoch are still this runtime's, within ``_fence_confirm_timeout`` seconds
        (a backend that lost its session may take the lock again, if the epoch shows nobody else had it)."""

    @abstractmethod
    async def _release_fence(self) -> None: ...

    @abstractmethod
    async def _disconnect(self) -> None: ...

    @abstractmethod
    async def _insert(self, fills: Sequence[FillRecord]) -> int:
        """Insert in one transaction that checks the token (``FenceTaken``), skipping rows already stored;
        return how many were new."""

    @abstractmethod
    async def _insert_superseding(self, fills: Sequence[FillRecord], orders: set[OrderKey]) -> Written:
        """As ``_insert``, and in the same transaction: an inferred fill ``superseded_fills`` holds already is not
        stored again, and every inferred fill of ``orders`` is made to follow ``supersede``'s rule (the ``fills``
        row reduced or deleted, the fill as first recorded kept in ``superseded_fills``)."""

    @abstractmethod
    async def _inferred_order_keys(self) -> set[OrderKey]:
        """The venue orders the ledger holds an inferred fill of (in ``fills``), of every key this opening writes; and
        those with an inferred fill superseded (in ``superseded_fills``) and a trade of theirs after it in ``fills``
        (an earlier runtime may have let that trade supersede it: ``_supersede_stored`` puts it back)."""

    @abstractmethod
    async def _select_superseded(self, strategy_key: str) -> list[Supersession]: ...

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
        """Connect, migrate, take the fence (waiting up to ``fence_wait`` seconds; ``FencedOut``), and commit
        what the spool holds from an earlier run."""
        if self._state is not _State.NEW:
            raise LedgerError(f"ledger for {self.strategy_key!r} was already opened")
        self._loop_thread = threading.get_ident()
        sent = self._lease.clock()

        async def try_fence() -> FenceGrant | None:
            nonlocal sent
            sent = self._lease.clock()  # the lease counts from the attempt that took the fence
            return await self._try_fence()

        try:
            await self._connect()
            grant = await fencing.acquire(
                try_fence,
                self._fence_holder,
                wait=self._fence_wait,
                strategy_key=self.strategy_key,
                where=self.describe(),
            )
            self._epoch = grant.epoch
            if self._runs:
                self.fills_key = run_key(self.strategy_key, self._epoch)
            self._lease.start(sent, grant.wait_seconds)
            self._fence_held = True
            self._inferred_orders = await self._inferred_order_keys()
            await self._supersede_stored()
            await self._drain_spool()
        except BaseException:
            self._fence_held = False
            await self._disconnect()
            if self._spool is not None:
                await self._spool.aclose()
            self._state = _State.CLOSED
            raise
        self._state = _State.OPEN
        tasks = [
            asyncio.create_task(self._write_loop(), name=f"ledger-writer {self.strategy_key}"),
            *(
                [asyncio.create_task(self._writer.run_spool(), name=f"ledger-spool {self.strategy_key}")]
                if self._spool is not None
                else []
            ),
        ]
        for task in tasks:
            task.add_done_callback(self._writer.task_ended)
        keeper = asyncio.create_task(self._keep_fence(), name=f"ledger-fence {self.strategy_key}")
        keeper.add_done_callback(self._keeper_ended)
        self._tasks = [*tasks, keeper]
        logger.info(
            "ledger: %s, fence for %s taken by %s (epoch %d, lease %gs%s)%s",
            self.describe(),
            self.strategy_key,
            self.owner,
            self._epoch,
            self._lease.seconds,
            f"; the previous holder did not release it: no order for {grant.wait_seconds:g}s"
            if grant.wait_seconds
            else "",
            f"; this run's fills are recorded as {self.fills_key}" if self._runs else "",
        )
        return self

    async def _supersede_stored(self) -> None:
        """Make every venue order the ledger holds an inferred fill of follow ``supersede``'s rule, in one fenced
        transaction, each change logged: a ledger written before migration 7 can hold an inferred fill next to
        the venue's trades of its order (both counted), which no later batch may touch; one written by a runtime
        before trades after the status were told apart (``supersede``) can have let such a trade supersede an
        inferred fill, which counts again. Run at every open, before
        the count and the history are read: after the first it finds nothing to change.

        An order stays in ``_inferred_orders`` while any inferred fill of it still counts: the set is read again
        from ``fills`` after a change took one out (another inferred fill of the same order may still count, and
        its order's next trade must still reach it)."""
        if not self._inferred_orders:
            return
        written = await self._insert_superseding((), self._inferred_orders)
        for change in written.changes:
            self._log_change(change)
        if any(c.supersession.counted == 0 for c in written.changes):
            self._inferred_orders = await self._inferred_order_keys()

    async def _drain_spool(self) -> None:
        """Commit what an earlier run left in the spool (before anything trades), then forget it."""
        spool = self._spool
        if spool is None:
            return
        leftovers = await spool.call(spool.open)
        await spool.start()
        if not leftovers.fills and not leftovers.segments:
            return
        result = WriteResult()
        size = self._writer.batch_size
        for start in range(0, len(leftovers.fills), size):
            batch = leftovers.fills[start : start + size]
            try:
                written = await self._write(batch)
            except LedgerError:
                raise
            except Exception as exc:
                raise LedgerUnavailable(
                    f"cannot commit the {len(leftovers.fills)} fill(s) the spool {spool.directory} holds from an "
                    f"earlier run to {self.describe()}: {self._error_text(exc)}"
                ) from None
            result += WriteResult(written.new, len(batch) - written.new, written.superseded)
        await spool.call(spool.discard, leftovers)
        self.drained = result
        logger.warning(
            "ledger: committed %d fill(s) an earlier run left in the spool %s (%d new, %d already stored)",
            len(leftovers.fills),
            spool.directory,
            result.new,
            result.duplicates,
        )

    async def fence_usable(self) -> None:
        """Return once the fence may be used to trade: a predecessor that did not release it is past its lease."""
        wait = self._lease.not_before - self._lease.clock()
        if wait > 0:
            logger.warning(
                "ledger: the previous holder of %s's fence did not release it: waiting %.1fs (its lease) before "
                "trading",
                self.strategy_key,
                wait,
            )
            await asyncio.sleep(wait)

    async def close(self, timeout: float | None = None) -> None:
        """Commit everything recorded (waiting at most ``timeout`` seconds), release the fence, disconnect.

        What cannot be committed in time but is durable in the spool stays there for the next start
        (a warning); what is not durable anywhere is logged in full and ``LedgerFlushTimeout`` raised.
        A runtime whose fence is lost only waits for its fills to be durable: the ledger refuses its writes.
        """
        if self._state is _State.NEW:
            self._state = _State.CLOSED
        if self._state is not _State.OPEN:
            return
        self._state = _State.CLOSING
        try:
            flush = self.flush() if self.fence_held else self.flush_durable()
            await asyncio.wait_for(flush, timeout)
        except BaseException as exc:
            # Whatever stopped the flush (the timeout, a writer that died, a cancellation), the
            # uncommitted fills are only in the spool, or only here: say so, in the log.
            self._writer.log_uncommitted(exc)
            kept = self._spool is not None and self._writer.not_durable == 0
            if not (kept and isinstance(exc, (TimeoutError, LedgerError))):
                if isinstance(exc, TimeoutError):
                    raise LedgerFlushTimeout(self._writer.not_durable, self.describe()) from None
                raise
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._state = _State.CLOSED
            try:
                if self.fence_held:
                    await asyncio.wait_for(self._release_fence(), self._fence_confirm_timeout)
            except Exception as exc:
                logger.warning(
                    "ledger: could not release the fence cleanly (%s); it ends with the session", self._error_text(exc)
                )
            finally:
                self._fence_held = False
                try:
                    await self._disconnect()
                finally:
                    if self._spool is not None:
                        try:
                            await self._spool.drop(self._writer.committed)
                        finally:  # whatever happened, its I/O process ends and its lock is let go
                            await self._spool.aclose()
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
    async def _write(self, fills: Sequence[FillRecord]) -> Written:
        """Store one batch in one transaction: ``_insert``, or ``_insert_superseding`` when the batch touches a
        venue order with an inferred fill (an inferred fill itself, or a trade of an order that has one)."""
        known = self._inferred_orders
        orders = {key for f in fills if (key := order_key(f)) in known or is_inferred(f)}
        if not orders:
            return Written(await self._insert(fills))
        written = await self._insert_superseding(fills, orders)
        known.update(key for key in orders if any(is_inferred(f) and order_key(f) == key for f in fills))
        for change in written.changes:
            self._log_change(change)
        return written

    def _log_change(self, change: Change) -> None:
        # A WARNING when what the fill counts went down; only more trades superseding it (counted 0 already): INFO.
        level = logging.WARNING if change.counts_less else logging.INFO
        kept = "back in fills whole" if change.supersession.whole else "kept in superseded_fills"
        logger.log(level, "ledger: %s (%s; %s)", change.describe(), self.describe(), kept)

    def record(self, fill: FillRecord) -> None:
        """Enqueue a fill for the writer; returns at once. Call it from the event loop's thread."""
        if self._state is not _State.OPEN:
            raise LedgerClosed(f"the ledger for {self.strategy_key!r} is {self._state.value}: fill {fill!r} refused")
        if fill.strategy_key != self.fills_key:
            raise ValueError(f"fill of {fill.strategy_key!r} recorded in the ledger of {self.fills_key!r}")
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

    async def flush_durable(self) -> None:
        """Wait until every fill recorded so far is durable: committed, or synced to the spool."""
        if self._writer.not_durable == 0:
            return
        if self._state not in (_State.OPEN, _State.CLOSING):
            raise LedgerClosed(f"the ledger for {self.strategy_key!r} is {self._state.value}")
        await self._writer.flush_durable()

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
            not_durable=writer.not_durable,
            oldest_not_durable_seconds=writer.oldest_not_durable_seconds,
            spooled=writer.spooled,
            spool_error=writer.spool_error,
            fence_unconfirmed=self.fence_refusal() if self.fence_held else None,
            fence_epoch=self._epoch or None,
        )

    @property
    def spool_directory(self) -> str | None:
        return str(self._spool.directory) if self._spool is not None else None

    @property
    def is_open(self) -> bool:
        """Opened and not yet closed (nor closing): ``close()`` still has work to do."""
        return self._state is _State.OPEN

    @property
    def fence_held(self) -> bool:
        return self._fence_held and self.fence_lost_reason is None

    async def _write_loop(self) -> None:
        await self._writer.run()

    def _keeper_ended(self, task: asyncio.Task[None]) -> None:
        exc = None if task.cancelled() else task.exception()
        if exc is not None:  # a fence nobody confirms any more is as good as lost
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
    def fence_refusal(self) -> str | None:
        """Why this runtime must not send an order now (None: it may): the fence is lost, not yet usable, or
        not confirmed within its lease. A clock read: the order gate calls it before every order."""
        if self.fence_lost_reason is not None:
            return f"the ledger fence was lost ({self.fence_lost_reason})"
        if not self._fence_held:
            return "the ledger fence is not held"
        return self._lease.refusal()

    @property
    def fence_lease_seconds(self) -> float:
        return self._lease.seconds

    async def _keep_fence(self) -> None:
        """Confirm the fence every ``_fence_check_interval`` (at once when its session is known to be gone)."""
        while self.fence_lost_reason is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._fence_wakeup.wait(), self._fence_check_interval)
            self._fence_wakeup.clear()
            sent = self._lease.clock()
            check = await self._confirm_fence()
            if check.held is True:
                self._lease.confirm(sent)
                if self.fence_doubt is not None:
                    logger.warning(
                        "ledger: fence for %s confirmed again (after: %s)", self.strategy_key, self.fence_doubt
                    )
                    self.fence_doubt = None
            elif check.held is False:
                self._fence_lost(check.reason or "the fence is another runtime's")
            else:
                if self.fence_doubt is None:
                    logger.error(
                        "ledger: cannot confirm the fence for %s (%s): new orders wait once its lease of %gs runs out",
                        self.strategy_key,
                        check.reason,
                        self._lease.seconds,
                    )
                self.fence_doubt = check.reason

    def _fence_suspect(self, reason: str) -> None:
        """The fence's session is known to be gone: no order from now on, and confirm (or take it again) at once."""
        if self._state is not _State.OPEN or self.fence_lost_reason is not None:
            return
        logger.error(
            "ledger: %s: no new order for %s until the fence is confirmed again (taken again if nobody else took it)",
            reason,
            self.strategy_key,
        )
        self._lease.revoke()
        self._fence_wakeup.set()

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
        """Committed fills of a ledger key (default: this one's, ``fills_key``), ordered by ts_event, then trade id."""
        return await self._select(strategy_key or self.fills_key)

    async def count(self, strategy_key: str | None = None) -> int:
        """Number of committed fills of a ledger key (default: this one's, ``fills_key``)."""
        return await self._count(strategy_key or self.fills_key)

    async def superseded(self, strategy_key: str | None = None) -> list[Supersession]:
        """The inferred fills of a ledger key the venue's own trades superseded, whole or in part: each as first
        recorded, what of it still counts (in ``fills``) and the trades that superseded the rest (``supersede``)."""
        return await self._select_superseded(strategy_key or self.fills_key)

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
