"""A broken limit, and the RiskEngine's denials translated into one.

The limit names are the API's (``RiskState.breachedLimit``). NautilusTrader's RiskEngine
denies an order over ``maxNotionalPerOrder`` or over the submit rate (``OrderDenied``) and
rejects a modification over the modify rate (``OrderModifyRejected``); each of those is a
breach of the spec's limit. Other denials (a HALTED trading state, the free balance) are the
strategy's problem, not a limit of the spec, and so are the guard's own (``GATE_REASON_PREFIX``).
Pure functions of the events' text: no node needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# Limit names as the API spells them (RiskState.breachedLimit).
MAX_DAILY_LOSS = "maxDailyLoss"
MAX_DRAWDOWN = "maxDrawdown"
MAX_POSITION = "maxPosition"
MAX_NOTIONAL = "maxNotionalPerOrder"
MAX_SUBMIT_RATE = "maxOrderSubmitRate"
MAX_MODIFY_RATE = "maxOrderModifyRate"

# Denials the guard itself issues start with this, so they are never taken for new breaches.
GATE_REASON_PREFIX = "livestrat risk guard: "


@dataclass(frozen=True)
class Breach:
    """A broken limit: which one, a sentence a trader understands, and when: ``at`` on the wall clock (when
    the runtime saw it; the value a human acknowledges), ``market_at`` in market time (of the event that
    broke it: the replayed data's time in paper and in a backtest, the venue's latest event live; None
    when unknown, as for a halt recorded before market times were)."""

    limit: str
    reason: str
    at: datetime
    market_at: datetime | None = None


def from_denial(client_order_id: object, reason: str, at: datetime) -> Breach | None:
    """The breach an ``OrderDenied`` with ``reason`` stands for, if it is one."""
    if reason.startswith(GATE_REASON_PREFIX):
        return None
    if "NOTIONAL_EXCEEDS_MAX_PER_ORDER" in reason:
        limit = MAX_NOTIONAL
    elif "MAX_ORDER_SUBMIT_RATE" in reason:
        limit = MAX_SUBMIT_RATE
    else:
        return None  # e.g. TradingState.HALTED, free balance: the strategy's problem, not a limit of the spec
    return Breach(limit, f"order {client_order_id} denied by the RiskEngine: {reason}", at)


def from_modify_rejection(client_order_id: object, reason: str, at: datetime) -> Breach | None:
    """The breach an ``OrderModifyRejected`` with ``reason`` stands for, if it is one."""
    if "MAX_ORDER_MODIFY_RATE" not in reason:
        return None
    return Breach(MAX_MODIFY_RATE, f"modification of {client_order_id} rejected by the RiskEngine: {reason}", at)
