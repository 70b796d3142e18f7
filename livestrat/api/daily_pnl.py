"""Which UTC day a status's ``dailyPnl`` is of, and when that day is over for the strategy's loss limits.

The runtime reports ``status.risk.dailyPnlDay`` beside ``dailyPnl``: the day in market time. On a venue's live feed
(live, or paper with a venue's adapter) that is the venue's day, about everyone's: a day before today is over, and a
runtime still showing it (at rest since midnight, or stopped by scaling to zero) has lost nothing today. A paper
replay's day is its data's (history), never today's: its figure counts as shown. The operator's RiskBudget and the
desk read the figure by this one rule (docs/risk-budgets.md, docs/desk.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from livestrat.api.spec import Adapter


def replays_history(spec: Mapping[str, Any]) -> bool | None:
    """A paper strategy replaying a catalog's history (``venue.adapter: sandbox``), not on a venue's live feed; None
    when the spec does not say (its figures then count as shown: the conservative way for a loss limit)."""
    venue = spec.get("venue")
    adapter = venue.get("adapter") if isinstance(venue, Mapping) else None
    return adapter == Adapter.SANDBOX if isinstance(adapter, str) and adapter else None


def earlier_day(daily_pnl_day: str | None, today: date | None, *, replays: bool | None) -> date | None:
    """The day of a daily PnL when it is over: before ``today`` on a live feed. None when it counts as shown: today's
    (or later), a replay's, a spec that does not say, or a runtime that does not say the day (older than the field)."""
    if today is None or replays is not False or not daily_pnl_day:
        return None
    try:
        day = date.fromisoformat(daily_pnl_day)
    except ValueError:
        return None
    return day if day < today else None
