"""How long the event loop was kept from running: what a strategy's node would feel."""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import TracebackType

TICK = 0.001


class StallMeter:
    """``async with StallMeter() as meter:`` … ``meter.longest``: the longest extra delay of a 1 ms tick, in seconds."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> StallMeter:
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _tick(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(TICK)
            self.longest = max(self.longest, time.perf_counter() - before - TICK)
