"""The fence: one runtime per strategy, a lock the operating system or the database frees when it dies,
a lease the runtime must keep confirming, and a token every ledger write is checked against.

The backends take the lock (``Ledger._try_fence``: an advisory lock in PostgreSQL, ``flock`` on
a file for SQLite) and, in the same step, raise the strategy's **epoch** in the ``fences`` table:
the fencing token. Every ledger write checks, in its own transaction, that the epoch is still
the writer's (``FenceTaken`` otherwise), so a runtime whose fence was taken cannot write again,
however stale its view.

The **lease** (``FenceLease``) is what the order path checks: the fence counts as held only for
``FENCE_LEASE_SECONDS`` after the last confirmation the runtime received (a query on the fencing
session that found the lock and the epoch still its own), measured on this host's clock from the
moment the confirming query was *sent*. Checking it is a clock read, no round trip. A runtime
frozen, partitioned or cut from its database stops placing orders once the lease runs out, whether
or not it has learnt anything; a successor that takes the fence from a holder that did not release
it waits out the holder's lease before it trades (``FenceGrant.wait_seconds``), so the two never
trade at once.

This module holds what the backends share: who holds a fence (``FenceHolder``, for humans), what
taking it gave (``FenceGrant``), the refusal when another runtime holds it (``FencedOut``), a write
refused by the token (``FenceTaken``), the lease, what a confirmation found (``FenceCheck``), and
taking the fence within a wait (``acquire``). Keeping the lease confirmed is the ledger's
(``Ledger._keep_fence``). See docs/ledger.md, "Fencing".
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from strategy_runtime.ledger.errors import LedgerError

FENCE_RETRY_SECONDS = 0.2
# How long a confirmation of the fence is good for; renewed every third of it, each confirmation
# query bounded by a third of it too (docs/ledger.md, "The lease").
FENCE_LEASE_SECONDS = 6.0


def lease_clock() -> float:
    """Seconds on a clock that never goes back and keeps counting while the host is suspended.

    ``CLOCK_BOOTTIME`` on Linux (``time.monotonic`` stops while a VM or laptop is suspended, so a
    lease would outlive the suspension); ``time.monotonic`` elsewhere.
    """
    return time.clock_gettime(time.CLOCK_BOOTTIME) if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic()


@dataclass(frozen=True)
class FenceHolder:
    owner: str
    acquired_at: datetime


@dataclass(frozen=True)
class FenceGrant:
    """What taking the fence gave: the token, and how long to wait before trading.

    ``wait_seconds`` is the previous holder's lease when it did not release the fence (it died,
    or lost its session, and may not know yet): it could trade until its lease runs out.
    """

    epoch: int
    wait_seconds: float = 0.0


@dataclass(frozen=True)
class FenceCheck:
    """What one confirmation found: ``held`` True (confirmed), False (lost for sure), None (could not tell)."""

    held: bool | None
    reason: str | None = None

    @classmethod
    def confirmed(cls) -> FenceCheck:
        return cls(True)

    @classmethod
    def lost(cls, reason: str) -> FenceCheck:
        return cls(False, reason)

    @classmethod
    def unknown(cls, reason: str) -> FenceCheck:
        return cls(None, reason)


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


class FenceTaken(LedgerError):
    """A write refused by the fencing token: another runtime took this strategy's fence since (a newer epoch)."""

    def __init__(self, strategy_key: str, epoch: int, current: int | None, where: str) -> None:
        now = f"epoch {current}" if current is not None else "no fence row"
        super().__init__(
            f"the ledger fence of {strategy_key!r} at {where} was taken by another runtime (this runtime's "
            f"epoch {epoch}, the ledger's {now}): this runtime may not write to the ledger any more"
        )
        self.epoch = epoch
        self.current = current


class FenceLease:
    """The fence as the order path sees it: held only within ``seconds`` of the last confirmation.

    ``confirm(sent_at)`` renews it from the moment the confirming query was sent (the lock was
    held at some point after that); ``revoke`` ends it at once (the session is known to be gone);
    ``not_before`` is when a predecessor's lease has run out. ``refusal()`` is the check the order
    gate makes before every order: a clock read and two comparisons.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = lease_clock) -> None:
        if seconds <= 0:
            raise ValueError(f"the fence lease must be positive, got {seconds}")
        self.seconds = seconds
        self.clock = clock
        self.confirmed_at: float | None = None
        self.not_before = 0.0

    def start(self, sent_at: float, wait_seconds: float) -> None:
        """The fence was just taken (the taking query sent at ``sent_at``); trade after ``wait_seconds``."""
        self.confirmed_at = sent_at
        self.not_before = self.clock() + wait_seconds

    def confirm(self, sent_at: float) -> None:
        if self.confirmed_at is None or sent_at > self.confirmed_at:
            self.confirmed_at = sent_at

    def revoke(self) -> None:
        self.confirmed_at = None

    def age(self) -> float | None:
        """Seconds since the last confirmation was sent; None if there is none in force."""
        return None if self.confirmed_at is None else self.clock() - self.confirmed_at

    def refusal(self) -> str | None:
        """Why the fence cannot be relied on right now; None while it can."""
        now = self.clock()
        if now < self.not_before:
            return (
                f"waiting out the previous holder's lease ({self.not_before - now:.1f}s left): it did not release "
                "the fence and may not know yet that it lost it"
            )
        if self.confirmed_at is None:
            return "the ledger fence is not confirmed (its database session ended or cannot be reached)"
        age = now - self.confirmed_at
        if age >= self.seconds:
            return (
                f"the ledger fence was last confirmed {age:.1f}s ago, longer than its lease of {self.seconds:g}s: "
                "another runtime may hold it"
            )
        return None


def default_owner() -> str:
    """Who holds a fence, for humans: in a pod the hostname is the pod name."""
    return f"{socket.gethostname()} pid {os.getpid()}"


async def acquire(
    try_fence: Callable[[], Awaitable[FenceGrant | None]],
    holder: Callable[[], Awaitable[FenceHolder | None]],
    *,
    wait: float,
    strategy_key: str,
    where: str,
) -> FenceGrant:
    """Take the fence, trying again for up to ``wait`` seconds; ``FencedOut`` naming the holder otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while (grant := await try_fence()) is None:
        if loop.time() >= deadline:
            raise FencedOut(strategy_key, await holder(), where)
        await asyncio.sleep(FENCE_RETRY_SECONDS)
    return grant
