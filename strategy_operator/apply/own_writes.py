"""The operator's memory of its own writes, which the watch's copy of an object may not show yet.

A kopf daemon's copy of a LiveStrategy, and the watch caches of its children, lag behind
what the operator has just written. Compared naively, a lagging copy would make the operator
act on, and tell, the same transition twice, or take the pod of a StatefulSet it has just
created for a rogue one. For at most :data:`CACHE_LAG_SECONDS` the operator trusts what it
wrote over what the copy shows. Times are monotonic seconds, passed in (the clock is the
caller's).
"""

from __future__ import annotations

import math
from typing import Any

CACHE_LAG_SECONDS = 10.0  # a write this recent is trusted over a copy that does not show it
OWN_WRITES_KEPT = 16


class OwnWrites:
    """Successive values of one field this operator wrote, which the watch's copy may not show yet.

    ``current(seen, now)``: the value the operator knows, from ``seen`` (the copy's). A copy showing
    one of the values before the operator's last write lags behind it: the last written value
    counts. A copy showing anything else (it caught up, someone else wrote, the operator's
    memory is new) counts as it is. After ``CACHE_LAG_SECONDS`` the copy counts anyway.
    """

    def __init__(self) -> None:
        self._chain: list[Any] = []
        self._written_at = -math.inf

    def current(self, seen: Any, now: float) -> Any:
        fresh = now - self._written_at < CACHE_LAG_SECONDS
        if fresh and self._chain and seen != self._chain[-1] and seen in self._chain[:-1]:
            return self._chain[-1]
        self._chain.clear()
        return seen

    def wrote(self, before: Any, after: Any, now: float) -> None:
        if not self._chain:
            self._chain.append(before)
        self._chain.append(after)
        del self._chain[:-OWN_WRITES_KEPT]
        self._written_at = now


class CreatedChildren:
    """Children this operator created moments ago, which the watch cache may not show yet (by kind)."""

    def __init__(self) -> None:
        self._bodies: dict[str, tuple[dict[str, Any], float]] = {}

    def remember(self, kind: str, body: dict[str, Any], now: float) -> None:
        self._bodies[kind] = (body, now)

    def seen(self, kinds: list[str]) -> None:
        """The cache shows these children now: it counts from here on (also once they are deleted)."""
        for kind in kinds:
            self._bodies.pop(kind, None)

    def kinds(self) -> list[str]:
        return list(self._bodies)

    def get(self, kind: str, now: float) -> dict[str, Any] | None:
        found = self._bodies.get(kind)
        if found is None or now - found[1] > CACHE_LAG_SECONDS:
            self._bodies.pop(kind, None)
            return None
        return found[0]
