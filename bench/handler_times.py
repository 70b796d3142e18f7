"""Where the runtime's own handlers spend the event loop's time during a replay (``runtime_bench.py --only handlers``).

Each handler below is wrapped, before the runtime is built, in a timer of ``perf_counter_ns`` (about 0.1 µs a call
on top of the handler's own cost), and the worker reports each one's total and calls over the replay. A profiler
would tell the same story with every call of the interpreter taxed instead: these are the handlers NautilusTrader
calls (the guard's price handler, the reporter's order handler, the guard's position handler) and, indented, parts
of them (nested: a part's time is inside its parent's). What they add up to, against the replay's seconds, is what
the runtime's own Python costs the replay; the rest of the gap to the bare node is elsewhere (the ledger's thread,
the interpreter slowed by a larger working set: docs/performance.md).
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

# (depth, class, method): depth 0 is what NautilusTrader calls; a deeper one is part of the one above it.
HANDLERS: tuple[tuple[int, str, str], ...] = (
    (0, "RiskGuard", "_on_price"),
    (1, "PnlWatch", "quiet"),
    (1, "PnlWatch", "check"),
    (0, "Reporter", "_on_order_event"),
    (1, "Reporter", "_record_fill"),
    (2, "Reporter", "_record_of"),
    (2, "Reporter", "_write"),
    (2, "RiskGuard", "on_fill"),
    (3, "PnlBook", "apply"),
    (0, "RiskGuard", "_on_position_event"),
    (1, "RiskGuard", "_recheck_pnl"),
    (0, "RiskGuard", "_on_order_event"),
    (0, "Reporter", "_on_position_event"),
    (0, "Reporter", "_on_account_event"),
)


def _classes() -> dict[str, type]:
    from strategy_runtime.pnl import PnlBook
    from strategy_runtime.report.reporter import Reporter
    from strategy_runtime.risk.guard import RiskGuard
    from strategy_runtime.risk.pnl_watch import PnlWatch

    return {"RiskGuard": RiskGuard, "PnlWatch": PnlWatch, "Reporter": Reporter, "PnlBook": PnlBook}


def install() -> dict[str, list[int]]:
    """Wrap every handler of ``HANDLERS`` in its class (before any instance binds it); the totals, filled as the
    replay runs: ``"Class.method" -> [nanoseconds, calls]``."""
    classes = _classes()
    totals: dict[str, list[int]] = {}
    for _, owner, name in HANDLERS:
        cls = classes[owner]
        totals[f"{owner}.{name}"] = slot = [0, 0]
        setattr(cls, name, _timed(getattr(cls, name), slot))
    return totals


def _timed(function: Callable[..., Any], slot: list[int]) -> Callable[..., Any]:
    clock = time.perf_counter_ns

    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = clock()
        try:
            return function(*args, **kwargs)
        finally:
            slot[0] += clock() - started
            slot[1] += 1

    return timed


def table(rows: list[dict[str, list[int]]], seconds: list[float]) -> list[str]:
    """Per handler, the median over the repeats: ms per replay, calls, µs a call, and share of the replay."""
    replay = statistics.median(seconds)
    title = "handler (indented: part of the one above)"
    lines = [f"  {title:48} {'ms/replay':>10} {'calls':>7} {'µs/call':>8} {'share':>6}"]
    top = 0.0
    for depth, owner, name in HANDLERS:
        key = f"{owner}.{name}"
        ms = statistics.median(row[key][0] / 1e6 for row in rows)
        calls = statistics.median(row[key][1] for row in rows)
        if depth == 0:
            top += ms
        label = "  " * depth + key
        per_call = ms * 1e3 / calls if calls else 0.0
        lines.append(f"  {label:48} {ms:10.1f} {calls:7.0f} {per_call:8.2f} {ms / 1e3 / replay:6.1%}")
    together = "the handlers NautilusTrader calls, together"
    lines.append(f"  {together:48} {top:10.1f} {'':7} {'':8} {top / 1e3 / replay:6.1%}")
    lines.append(f"  (of a replay of {replay:.2f} s, median; the timers' own cost included)")
    return lines
