"""Group commit's turn-taking: a stage starts at once when idle, at most once per interval when busy.

Each commit is a hand-off to the database's thread (SQLite) or a round trip (PostgreSQL), plus the
locks inside the driver; while a replay fills hundreds of times a second, committing every few fills
spends the interpreter's time on hand-offs that the replay's thread then waits for. Waiting until an
interval has passed since the last start gathers what comes meanwhile into one commit. A stage that
has been idle for an interval starts at once, so a quiet strategy's fill is committed as soon as
before, and whoever waits on a flush (``hurry``) is never kept waiting for the interval.
"""

from __future__ import annotations

import asyncio
import time


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Turns:
    """When a stage (the commit, the spool's sync) may start again; ``interval`` 0: at once, always."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last_start = -float("inf")
        self._waiting: asyncio.Future[None] | None = None

    async def take(self, hurried: bool = False) -> None:
        """Wait for this stage's turn (none if idle for an interval, or ``hurried``), then start it."""
        delay = self._last_start + self.interval - time.monotonic()
        if delay > 0 and not hurried:
            loop = asyncio.get_running_loop()
            self._waiting = future = loop.create_future()
            timer = loop.call_later(delay, _wake, future)
            try:
                await future
            finally:
                timer.cancel()
                self._waiting = None
        self._last_start = time.monotonic()

    def hurry(self) -> None:
        """Somebody waits for this stage: its turn is now."""
        if self._waiting is not None:
            _wake(self._waiting)
