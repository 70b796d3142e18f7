"""The work queue of a stand-in controller: work falls due ``delay`` seconds after a request made it due, and is done
in the event loop, apart from the requests, as kube-controller-manager's controllers work from their informers.

Tests wait for the documented end state (a bounded ``wait_for``), never for a time: :meth:`DelayedWork.paused` holds
the work back to make a race deterministic, :meth:`DelayedWork.drain` does at once all that is queued. An emulator
built outside an event loop keeps its work until one runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Hashable, Iterator


class DelayedWork:
    """Items to look at, each when its time comes; a subclass says what looking at one does (``_process``)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._queue: dict[Hashable, float] = {}  # item -> when it is due
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._paused = 0

    def _process(self, item: Hashable) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Nothing is done inside: work that falls due waits, and is done after (its delay counted again)."""
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1
            if not self._paused:
                self._queue = dict.fromkeys(self._queue, self._now() + self.delay)
                self._schedule()

    def drain(self) -> None:
        """Do at once everything queued, and what that makes due, until nothing is left."""
        while self._queue:
            queue, self._queue = self._queue, {}
            for item in queue:
                self._process(item)
        self._schedule()

    def _now(self) -> float:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return 0.0  # no loop yet: due as soon as one runs

    def _enqueue(self, item: Hashable) -> None:
        if item in self._queue:
            return  # already due: looked at once, in its current state
        self._queue[item] = self._now() + self.delay
        self._schedule()

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # kept until work is queued from a running loop
        if self._paused or not self._queue:
            return
        due = min(self._queue.values())
        if self._timer is not None and self._timer_loop is loop and not self._timer.cancelled():
            if self._timer.when() <= due:
                return
            self._timer.cancel()
        # in an empty context: not in the request that queued the work (nor as its user)
        self._timer = loop.call_at(due, self._run, context=contextvars.Context())
        self._timer_loop = loop

    def _run(self) -> None:
        self._timer = None
        if self._paused:
            return
        now = self._now()
        due = [item for item, when in self._queue.items() if when <= now]
        for item in due:
            del self._queue[item]
        for item in due:
            self._process(item)
        self._schedule()
