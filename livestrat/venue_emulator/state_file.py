"""``--state FILE``: the venue's books kept in a file, so the emulator itself can be restarted.

The spot and USD-M books (orders, trades, balances, wallet, positions, leverage, the next order and
trade ids) are written as JSON shortly after each change (at most every ``interval_s``) and when the
server stops, atomically (a temporary file renamed over the old one). A start with an existing file
takes the books from it instead of the scenario's balances and open orders (keys and faults still
come from the scenario); ids go on from where they were, so they never repeat across restarts. What
is not kept: the market (the feed starts again from ``--start``), connections, listen keys, faults.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from livestrat.venue_emulator.server import Venue

STATE_VERSION = 1


def load_state(path: Path) -> dict[str, Any] | None:
    """The saved books, or None when the file does not exist yet."""
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    if data.get("version") != STATE_VERSION:
        raise ValueError(f"{path}: state version {data.get('version')!r}, this emulator reads {STATE_VERSION}")
    return data


def restore(venue: Venue, data: dict[str, Any]) -> None:
    venue.exchange.restore(data["spot"])
    if venue.futures is not None and data.get("usdm") is not None:
        venue.futures.restore(data["usdm"])


def snapshot(venue: Venue) -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "spot": venue.exchange.snapshot(),
        "usdm": venue.futures.snapshot() if venue.futures is not None else None,
    }


class StateFile:
    """Writes the venue's books to ``path`` after changes and on :meth:`close`."""

    def __init__(self, path: Path, venue: Venue, interval_s: float = 0.2) -> None:
        self.path = path
        self._venue = venue
        self._interval_s = interval_s
        self._dirty = asyncio.Event()
        for exchange in (venue.exchange, venue.futures):
            if exchange is not None:
                exchange.listen(lambda _event: self._dirty.set())
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.save()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="venue-state-file")

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            self.save()
            await asyncio.sleep(self._interval_s)

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(snapshot(self._venue)))
        os.replace(tmp, self.path)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.save()
