"""Progress lines on stderr for the long silent stretches of a local command: writing a sample, a backtest.

``ThrottledProgress`` takes every report (``SampleProgress``: what, done, total) and prints one
line at most every ``every`` seconds, so a 200,000-bar sample says how far it is a few times
rather than 20 times a second. stderr, not stdout: a command's stdout stays its result (the
summary a script reads), and a line there would not be throttled by a pipe's reader either.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

PROGRESS_EVERY_SECONDS = 2.0


class ThrottledProgress:
    """``(what, done, total)`` reports in, a line ``  {what}: {done:,}/{total:,} (NN%)`` out (just ``what`` when
    the total is not known yet), the first at once and then at most one every ``every`` seconds."""

    def __init__(
        self,
        *,
        stream: TextIO | None = None,
        every: float = PROGRESS_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._every, self._clock = every, clock
        self._last: float | None = None

    def __call__(self, what: str, done: int, total: int) -> None:
        now = self._clock()
        if self._last is not None and now - self._last < self._every:
            return
        self._last = now
        line = f"  {what}: {done:,}/{total:,} ({100 * done // total}%)" if total else f"  {what}"
        print(line, file=self._stream or sys.stderr, flush=True)
