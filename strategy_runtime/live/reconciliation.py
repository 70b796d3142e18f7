"""Start-up reconciliation keeps every fill the venue reports: none dropped to fit a position's last lifecycle.

NautilusTrader 1.231's live execution engine, before it reconciles a venue's mass status, "adjusts
fills for instruments with incomplete first lifecycles" (``LiveExecutionEngine._adjust_mass_status_fills``,
``live.reconciliation.adjust_fills_for_partial_window``): for every instrument the venue reports a
position for (futures), it keeps only the fills of the position's current lifecycle, since it was
last flat, and may put a synthetic fill in front of them. Fills of earlier lifecycles are dropped.
For a runtime those are real trades: a strategy killed while the venue filled its resting orders,
flat again by the time it restarts, would never record them (``tests/live/test_usdm_story.py`` lost
two of 37 fills over twenty ``kill -9``). The ledger must hold every trade of the venue, so a live
node skips the adjustment: every reported fill is applied, and the position the fills make is then
reconciled with the venue's report as before (a difference, such as a position older than the
trade history the venue returns, is closed by the engine's inferred fill, which the reporter records
under a marked id).
"""

from __future__ import annotations

from typing import Any

ADJUST_FILLS_METHOD = "_adjust_mass_status_fills"  # NautilusTrader 1.231, pinned by test_binance_reconciliation


def keep_every_reported_fill(exec_engine: Any) -> None:
    """Turn off the engine's adjustment of reported fills to the last position lifecycle (module docstring)."""

    def apply_every_fill(_mass_status: Any) -> None:
        return None

    setattr(exec_engine, ADJUST_FILLS_METHOD, apply_every_fill)
