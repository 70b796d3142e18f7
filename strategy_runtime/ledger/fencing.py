"""The fence: one runtime per strategy, held as a lock the operating system or the database frees when it dies.

The backends take the lock (``Ledger._try_fence``: an advisory lock in PostgreSQL, ``flock`` on
a file for SQLite); this module holds what they share: who holds a fence (``FenceHolder``, for
humans), the refusal when another runtime does (``FencedOut``), and taking it within a wait
(``acquire``). Watching the fence while running is the ledger's (``Ledger._watch_fence``). See
docs/ledger.md, "Fencing".
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from strategy_runtime.ledger.errors import LedgerError

FENCE_RETRY_SECONDS = 0.2


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


def default_owner() -> str:
    """Who holds a fence, for humans: in a pod the hostname is the pod name."""
    return f"{socket.gethostname()} pid {os.getpid()}"


async def acquire(
    try_fence: Callable[[], Awaitable[bool]],
    holder: Callable[[], Awaitable[FenceHolder | None]],
    *,
    wait: float,
    strategy_key: str,
    where: str,
) -> None:
    """Take the fence, trying again for up to ``wait`` seconds; ``FencedOut`` naming the holder otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while not await try_fence():
        if loop.time() >= deadline:
            raise FencedOut(strategy_key, await holder(), where)
        await asyncio.sleep(FENCE_RETRY_SECONDS)
