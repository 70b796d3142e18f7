"""Waking a strategy's reconciler when something it depends on changed.

Watch events (of the LiveStrategy, its children, its pods, its namespace) ``poke`` the
strategy's key; the reconciler waiting on it runs again. Pokes that arrive while a
reconciliation runs coalesce into one more run.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

Key = tuple[str, str]  # (namespace, name)


class Wakeups:
    def __init__(self) -> None:
        self._waiters: dict[Key, set[asyncio.Event]] = defaultdict(set)

    def subscribe(self, key: Key) -> asyncio.Event:
        event = asyncio.Event()
        event.set()  # the first run needs no poke
        self._waiters[key].add(event)
        return event

    def unsubscribe(self, key: Key, event: asyncio.Event) -> None:
        waiters = self._waiters.get(key)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[key]

    def poke(self, key: Key) -> None:
        for event in self._waiters.get(key, ()):
            event.set()

    def poke_all(self) -> None:
        for key in list(self._waiters):
            self.poke(key)

    def poke_namespace(self, namespace: str) -> None:
        for key in [k for k in self._waiters if k[0] == namespace]:
            self.poke(key)


async def wait(event: asyncio.Event, stop: asyncio.Future[object] | None, timeout: float | None) -> None:
    """Until ``event`` is set, ``stop`` is done, or ``timeout`` seconds pass (whichever comes first)."""
    poked = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait(
            [poked, *([stop] if stop is not None else [])], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        poked.cancel()
