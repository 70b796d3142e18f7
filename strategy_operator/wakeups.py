"""Waking a strategy's reconciler when something it depends on changed.

Watch events (of the LiveStrategy, its children, its pods, its namespace) ``poke`` the
strategy's key; the reconciler waiting on it runs again. Pokes that arrive while a
reconciliation runs coalesce into one more run.

A runtime's heartbeat (``status.trading.heartbeat``, every 10 s) is the one change that wakes
nothing (:class:`Heartbeats`): the reconciler already looks again when the heartbeat would turn
stale (its deadline), and reads the LiveStrategy as it is then; at rest a heartbeat only cost a
reconciliation that found nothing to do (3.4 ms each, 17 % of a core at N = 500).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from livestrat.api.status import ConditionStatus, ConditionType

Key = tuple[str, str]  # (namespace, name)


class Heartbeats:
    """Tells a LiveStrategy's watch event that changed nothing but its runtime's heartbeat from any other.

    Compared with the strategy's previous event, leaving out the heartbeat and what the API server changes on
    every write (``resourceVersion``, ``managedFields``): the same, with another heartbeat. Always a change: the
    first event of a strategy, an event that changed nothing at all (as before: it is looked at), and any event
    while its ``Stale`` condition is True (a heartbeat then resumes it, at once)."""

    def __init__(self) -> None:
        self._last: dict[Key, tuple[bytes, Any]] = {}

    def only_heartbeat(self, key: Key, body: Mapping[str, Any]) -> bool:
        essence, heartbeat = _essence(body), _heartbeat(body)
        previous, self._last[key] = self._last.get(key), (essence, heartbeat)
        return previous is not None and previous[0] == essence and previous[1] != heartbeat and not _stale(body)

    def forget(self, key: Key) -> None:
        self._last.pop(key, None)


def _essence(body: Mapping[str, Any]) -> bytes:
    copy = dict(body)
    meta = copy.get("metadata")
    if isinstance(meta, Mapping):
        copy["metadata"] = {k: v for k, v in meta.items() if k not in ("resourceVersion", "managedFields")}
    status = copy.get("status")
    if isinstance(status, Mapping) and isinstance(status.get("trading"), Mapping):
        trading = {k: v for k, v in status["trading"].items() if k != "heartbeat"}
        copy["status"] = {**status, "trading": trading}
    text = json.dumps(copy, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def _heartbeat(body: Mapping[str, Any]) -> Any:
    status = body.get("status")
    trading = status.get("trading") if isinstance(status, Mapping) else None
    return trading.get("heartbeat") if isinstance(trading, Mapping) else None


def _stale(body: Mapping[str, Any]) -> bool:
    status = body.get("status")
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    return isinstance(conditions, list) and any(
        isinstance(c, Mapping) and c.get("type") == ConditionType.STALE and c.get("status") == ConditionStatus.TRUE
        for c in conditions
    )


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
