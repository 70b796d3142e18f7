"""The operator's clock, injected wherever a decision depends on time.

Decisions read the time from a :class:`Clock` handed to them, never from the system
directly, so a test moves time forward instead of sleeping (``tests/support/clock.py``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The wall-clock time, in UTC (what timestamps in the API are compared with)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for intervals and back-offs)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK = SystemClock()
