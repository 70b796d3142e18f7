"""Clocks a paper replay runs on market time: the execution algorithms', whose timers must fire as a backtest's do.

In a live node every component's clock is the wall clock. A TWAP execution algorithm schedules its
slices on timers of its clock; in a replay that runs a day of market data in a second they would
fire after the replay is over (or never), while a backtest fires them at their market times.
``MarketClocks`` holds a ``TestClock`` per component and fires their timers as ``BacktestEngine``
1.231 does, the replay calling it around each new market time T:

- ``before(T)``: every timer due strictly before T fires, in time order, each with every clock set to
  its own time (the node settling in between, as the backtest settles its venues); then the clocks
  move to T;
- ``after(T)``: once T's events are handed over, the timers due at T itself fire.

**Ties.** Timers due at the same time fire in the order of their names (the backtest's queue orders
ties so). An execution algorithm commonly names a timer after the primary order's client order id
(TWAP does), and those ids carry the strategy clock's time (``O-20240101-002000-…``): market time in
a backtest, the wall clock's in a paper node (the pinned difference, docs/runtime.md). Names of that
form are therefore compared with the market time at which the timer was set in place of the
wall-clock stamp, which is the name the backtest's timer has.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from nautilus_trader.common.component import TestClock

# The clock's time inside a client order id: O-YYYYMMDD-HHMMSS-…
_ORDER_ID_STAMP = re.compile(r"^O-\d{8}-\d{6}-")


def backtest_name(name: str, set_at_ns: int) -> str:
    """``name`` as the backtest's timer would be called: a client order id stamped with ``set_at_ns``."""
    if not _ORDER_ID_STAMP.match(name):
        return name
    stamp = datetime.fromtimestamp(set_at_ns / 1e9, tz=UTC).strftime("O-%Y%m%d-%H%M%S-")
    return _ORDER_ID_STAMP.sub(stamp, name, count=1)


class MarketClocks:
    """See the module docstring. ``settle``: awaited after each timer fired (the replay's lockstep drain)."""

    def __init__(self, clocks: list[TestClock], settle: Callable[[], Awaitable[Any]]) -> None:
        self._clocks = list(clocks)
        self._settle = settle
        self._set_at: dict[tuple[int, str], int] = {}  # (clock, timer name) -> market time it was first seen
        self.now_ns = 0

    def __bool__(self) -> bool:
        return bool(self._clocks)

    def _note_timers(self) -> None:
        for n, clock in enumerate(self._clocks):
            for name in clock.timer_names:
                self._set_at.setdefault((n, name), self.now_ns)

    def _set_time(self, ts_ns: int) -> None:
        self.now_ns = ts_ns
        for clock in self._clocks:
            clock.set_time(ts_ns)

    async def _fire(self, until_ns: int) -> None:
        """Every timer due at or before ``until_ns``, in the backtest's order."""
        while True:
            self._note_timers()
            due = [
                (
                    handler.event.ts_event,
                    backtest_name(handler.event.name, self._set_at.get((n, handler.event.name), 0)),
                    handler,
                )
                for n, clock in enumerate(self._clocks)
                for handler in clock.advance_time(until_ns, set_time=False)
            ]
            if not due:
                return
            due.sort(key=lambda each: (each[0], each[1]))
            for ts_event, _, handler in due:
                self._set_time(ts_event)
                handler.handle()
                await self._settle()
                self._note_timers()
            # a callback may have set a timer that is due already: look again

    async def before(self, ts_ns: int) -> None:
        """The replay is about to hand over the events of market time ``ts_ns`` (later than the last)."""
        self._note_timers()  # set while the last market time's events were handled: at that time
        if ts_ns > 0:
            await self._fire(ts_ns - 1)
        self._set_time(ts_ns)

    async def after(self, ts_ns: int) -> None:
        """Every event of market time ``ts_ns`` has been handed over and settled."""
        await self._fire(ts_ns)
        self._set_time(ts_ns)
