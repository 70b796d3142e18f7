"""The guard's PnL check on every price, with a shortcut while the price stays where it cannot matter.

While a position is open the guard checks ``maxDailyLoss`` and ``maxDrawdown`` on every price
update (``limits.LimitsTracker.check_pnl``): reprice the instrument, total the PnL per currency,
update the peak, the day's PnL and the drawdown. Between fills an instrument's PnL is a line in
its price (linear contracts: position × multiplier per unit of price), so after a full check the
watch knows the price band inside which total PnL stays below its peak, clear of both limits and
within the largest drawdown seen so far (``LimitsTracker.pnl_room``, less a margin for the currency's
rounding): a price inside it changes no figure a check would keep. A price inside the band,
on the same UTC day, is only remembered; the full check runs on a price outside it (a possible new
peak, a possible breach), on a new day, after a fill or a position event (``forget``), and before
anything reads the figures (``settle``: the guard's status, metrics and baseline). Settling
reprices at the last price remembered: the figures, the peak and the day's opening are then
exactly what checking every price would have left, and a breach (which a band never hides) comes
on the same price with the same sentence (tests/runtime/test_pnl_watch.py).

The guard asks ``quiet`` first, on every price: the band exists only while a position is open, so a
price inside it needs neither the cache's count of open positions nor anything else; ``check`` is
the full check of any other price of an instrument with a position open.

``reprice(instrument_id, price)`` is the guard's: it marks the instrument's unrealized PnL at
``price`` in the tracker and returns its line: the currency and the slope per unit of price, or
None when it is not a line the watch may rely on (inverse contracts).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from strategy_runtime.risk.breach import Breach
from strategy_runtime.risk.limits import LimitsTracker

# Marks are in the currency's money, rounded to its precision (a cent or finer): what a reprice
# can differ from the line, per position and in total, and then some for the floats.
ROUNDING_MARGIN = 0.02
RELATIVE_MARGIN = 1e-9

# An instrument's unrealized PnL as a line in its price: the currency, and PnL per unit of price.
Line = tuple[str, float]
Reprice = Callable[[Any, Any], Line | None]


class PnlWatch:
    """See the module docstring. ``shortcut`` False: every price is checked in full (the reference)."""

    def __init__(self, limits: LimitsTracker, reprice: Reprice, *, shortcut: bool = True) -> None:
        self.limits = limits
        self._reprice = reprice
        self._shortcut = shortcut
        # The instrument, its lowest and highest quiet price, and the end of the UTC day (ns) it holds for.
        self._band: tuple[Any, float, float, int] | None = None
        self._deferred: tuple[Any, Any] | None = None  # the last price taken without a check
        self.skipped = 0
        self.checked = 0

    def quiet(self, instrument_id: Any, price: Any, value: float, ts_ns: int) -> bool:
        """The shortcut: True if the price is inside the band of the last full check, on its day, and so taken
        without one (remembered for ``settle``). The band is only ever there while a position is open: any
        fill or position event takes it away (``forget``)."""
        band = self._band  # the hot path: a few comparisons, on most prices
        if band is None or not (band[1] < value < band[2] and ts_ns < band[3]) or band[0] != instrument_id:
            return False
        self.limits.advance_within_day(ts_ns)
        self._deferred = (instrument_id, price)
        self.skipped += 1
        return True

    def check(self, instrument_id: Any, price: Any, value: float, ts_ns: int, *, halted: bool) -> Breach | None:
        """The full check of a price outside the band (``quiet`` said False); the breach it makes."""
        breach = self.settle()
        self.checked += 1
        self.limits.advance(ts_ns)
        line = self._reprice(instrument_id, price)
        breach = self.limits.check_pnl(halted=halted) or breach
        self._band = None
        if self._shortcut and line is not None and breach is None and not halted:
            self._band = self._quiet_band(instrument_id, value, *line)
        return breach

    def settle(self) -> Breach | None:
        """Bring the figures to the last price seen, as checking every price would have left them."""
        deferred, self._deferred = self._deferred, None
        if deferred is None:
            return None
        self._reprice(*deferred)
        return self.limits.check_pnl()  # inside the band: never a breach (it is returned all the same)

    def forget(self) -> Breach | None:
        """A fill or a position event moves the line: settle, and check in full from the next price on."""
        breach = self.settle()
        self._band = None
        return breach

    def _quiet_band(
        self, instrument_id: Any, price: float, currency: str, slope: float
    ) -> tuple[Any, float, float, int] | None:
        total = self.limits.total(currency)
        low, high = self.limits.pnl_room(currency)
        margin = ROUNDING_MARGIN + RELATIVE_MARGIN * (abs(total) + abs(slope * price))
        low, high = low + margin, high - margin
        if not low < total < high:
            return None
        day_end = self.limits.day_end_ns
        if slope == 0:
            return instrument_id, -math.inf, math.inf, day_end
        ends = (price + (low - total) / slope, price + (high - total) / slope)
        return instrument_id, min(ends), max(ends), day_end
