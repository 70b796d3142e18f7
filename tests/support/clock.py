"""Clocks a test moves by hand: time passes when the test says so, never by sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class ManualClock:
    """The operator's :class:`~strategy_operator.clock.Clock`, at a fixed time until ``advance``."""

    def __init__(self, start: datetime = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)) -> None:
        self._now = start
        self._monotonic = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._monotonic += seconds


class ShiftedClock:
    """The system's clock, moved forward by hand: for the real operator (and the stand-in kubelet, sharing it)
    when a test needs time to have passed. What keeps its own time (the emulator, kopf) is not moved."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset)

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
