"""What a runtime says about itself when asked: the ``/state`` document and the metrics snapshot.

Both are computed from the runtime's parts at the moment they are asked for (an HTTP request, a
Prometheus scrape), never per event: the trading and risk state as pushed into the status
(``StrategyRuntime.status_snapshot``), the ledger's lag, the status push's statistics, why the
runtime stops or refuses orders. See docs/runtime.md, "HTTP endpoints and metrics".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strategy_runtime import book_view
from strategy_runtime.orders_view import working_orders
from strategy_runtime.report.metrics import RuntimeMetrics

if TYPE_CHECKING:
    from strategy_runtime.runtime import StrategyRuntime


def runtime_metrics(runtime: StrategyRuntime) -> RuntimeMetrics:
    """The metrics snapshot a scrape turns into Prometheus text (``report.metrics``)."""
    m = RuntimeMetrics(strategy=runtime.key, mode=str(runtime.config.spec.mode), ready=runtime.readiness()[0])
    if runtime.ledger is not None:
        lag = runtime.ledger.lag()
        m.ledger_pending = lag.pending
        m.ledger_oldest_pending_seconds = lag.oldest_pending_seconds
        m.ledger_write_failures = lag.consecutive_failures
        m.ledger_fence_held = lag.fence_held
        m.ledger_fence_confirmed = lag.fence_held and lag.fence_unconfirmed is None
        m.ledger_not_durable, m.ledger_spooled = lag.not_durable, lag.spooled
    if runtime.pusher is not None:
        m.status_pushes, m.status_push_failures = runtime.pusher.stats.pushes, runtime.pusher.stats.failures
    progress = runtime.replay_progress()
    if progress is not None:
        m.replay_events, m.replay_total = progress.events, progress.total
    if runtime.reporter is not None and runtime.guard is not None and runtime.node is not None:
        r, g = runtime.reporter, runtime.guard
        pnl = g.book_pnl()  # the one book (strategy_runtime.book_view), as the status shows it
        m.fills_in_ledger, m.fills_seen, m.fills_not_recorded, m.fills_superseded = (
            r.fills_in_ledger,
            r.fills_seen,
            r.fills_not_recorded,
            r.fills_superseded,
        )
        m.pnl = {"realized": pnl.realized, "unrealized": pnl.unrealized, "total": pnl.total}
        m.positions = book_view.net_positions(g.limits.books)
        m.open_orders = len(working_orders(r.cache))
        m.order_events = dict(r.order_events)
        m.risk_state, m.daily_pnl, m.drawdown = g.limit_state, g.daily_pnl, g.drawdown
        m.denied_by_guard = g.denied_by_gate
        m.orders_held = g.orders_held is not None
    return m


def state_document(runtime: StrategyRuntime) -> dict[str, Any]:
    """``GET /state``: the status as pushed, and why the runtime stops, refuses orders or is not ready."""
    snapshot = runtime.status_snapshot()
    document: dict[str, Any] = {
        "strategy": runtime.key,
        "mode": runtime.config.spec.mode,
        "nodeState": runtime.node_state,
        # Why the runtime is halting or stopped (a signal, a lost fence, …); None while it runs.
        "stopReason": runtime.stop_reason or None,
        "stopCause": runtime.stop_cause_text,
        # Why the order gate refuses every new order for good (a risk breach, a lost fence); None if open.
        "ordersRefused": runtime.guard.gate_shut_because if runtime.guard is not None else None,
        **snapshot.body(),
    }
    gate = runtime.guard.gate if runtime.guard is not None else None
    if gate is not None and gate.share is not None:
        # The RiskBudget share the gate holds orders within (from the last status push's answer).
        document["budgetShare"] = {
            "inForce": gate.share.describe(),
            "observedGeneration": gate.share.generation,
            "ordersDenied": gate.share_denied,
            "lastDenial": gate.share_denial,
        }
    if runtime.ledger is not None:
        lag = runtime.ledger.lag()
        document["ledger"] = {
            "where": runtime.ledger.describe(),
            "fenceHeld": lag.fence_held,
            "fenceLostReason": runtime.ledger.fence_lost_reason,
            # Why the fence cannot be relied on right now (its lease ran out, …): orders wait; None if it can.
            "fenceUnconfirmed": lag.fence_unconfirmed,
            "fenceEpoch": lag.fence_epoch,
            "fenceLeaseSeconds": runtime.ledger.fence_lease_seconds,
            "pending": lag.pending,
            "oldestPendingSeconds": round(lag.oldest_pending_seconds, 3),
            "notDurable": lag.not_durable,
            "spooled": lag.spooled,
            "spool": runtime.ledger.spool_directory,
            "spoolError": lag.spool_error,
            "lastCommitAt": lag.last_commit_at.isoformat() if lag.last_commit_at else None,
            "consecutiveFailures": lag.consecutive_failures,
            "lastError": lag.last_error,
            "writerStopped": lag.writer_stopped,
            "ordersHeld": runtime.guard.orders_held if runtime.guard is not None else None,
            "haltRecorded": runtime.halt_recorded,
        }
    if runtime.pusher is not None:
        stats = runtime.pusher.stats
        document["statusPush"] = {
            "pushes": stats.pushes,
            "heartbeats": stats.heartbeats,
            "failures": stats.failures,
            "lastError": stats.last_error,
            "lastPushAt": stats.last_push_at.isoformat() if stats.last_push_at else None,
            "restored": stats.restored,
        }
    return document
