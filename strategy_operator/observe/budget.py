"""What a RiskBudget's reconciliation observes: the budget, and its members as the operator's cache shows them.

The members come from a watch cache (a kopf index of every LiveStrategy, :func:`member_entry`): only
the part of each status a budget adds up, and the budget-halt annotations. No API call is made to
observe a budget, however often its members report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from livestrat.api.budget_spec import RiskBudgetSpec
from livestrat.api.budget_status import RiskBudgetStatus
from livestrat.api.contract import BUDGET_HALT_PREFIX, RISK_ACK_ANNOTATION
from livestrat.api.daily_pnl import replays_history
from livestrat.api.status import ConditionType, RiskState, TradingState, own_status
from strategy_operator.decide.budget import BudgetObservation
from strategy_operator.decide.budget_figures import MemberReport

# What a budget reads of a member's status: anything else changing there is no reason to keep it in memory.
_TRADING_FIELDS = ("positions", "openOrders", "totalPnl")
_RISK_FIELDS = ("dailyPnl", "dailyPnlDay", "drawdown")


def resource_version(meta: Mapping[str, Any]) -> int:
    text = str(meta.get("resourceVersion") or 0)
    return int(text) if text.isdigit() else 0


def budget_halts(body: Mapping[str, Any]) -> dict[str, str]:
    """RiskBudget -> breach time, from a LiveStrategy's livestrat.io/budget-halt.* annotations."""
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), Mapping) else {}
    return {
        str(k).removeprefix(BUDGET_HALT_PREFIX): v
        for k, v in annotations.items()
        if str(k).startswith(BUDGET_HALT_PREFIX) and isinstance(v, str)
    }


def member_entry(body: Mapping[str, Any]) -> dict[str, Any]:
    """The cache's entry for one LiveStrategy: what a budget reads of it."""
    meta = body.get("metadata") or {}
    status = own_status(body)  # not what a pod of an earlier object of its name pushed into it
    status = status if isinstance(status, Mapping) else {}
    spec = body.get("spec") if isinstance(body.get("spec"), Mapping) else {}
    trading, risk = status.get("trading"), status.get("risk")
    return {
        "phase": status.get("phase"),
        "replays": replays_history(spec),  # its day is the replayed data's; on a live feed, the operator's (about)
        "trading": {k: trading[k] for k in _TRADING_FIELDS if k in trading} if isinstance(trading, Mapping) else None,
        "risk": {k: risk[k] for k in _RISK_FIELDS if k in risk} if isinstance(risk, Mapping) else None,
        "halts": budget_halts(body),
        "stale": _stale(status),
        "resourceVersion": resource_version(meta),
    }


def _stale(status: Mapping[str, Any]) -> bool:
    """The operator's own ``Stale`` condition on the member: its runtime's last report is out of date."""
    found = status.get("conditions")
    return isinstance(found, list) and any(
        isinstance(c, Mapping) and c.get("type") == ConditionType.STALE and c.get("status") == "True" for c in found
    )


def member_report(name: str, entry: Mapping[str, Any] | None) -> MemberReport:
    if entry is None:
        return MemberReport(name, exists=False)
    try:
        trading = TradingState.model_validate(entry["trading"]) if entry.get("trading") is not None else None
        risk = RiskState.model_validate(entry["risk"]) if entry.get("risk") is not None else None
    except ValidationError:
        trading, risk = None, None  # a report that does not read counts as none (the member's own status says so)
    phase = entry.get("phase")
    return MemberReport(
        name,
        exists=True,
        phase=phase if isinstance(phase, str) else None,
        trading=trading,
        risk=risk,
        stale=entry.get("stale") is True,
        replays=entry.get("replays") if isinstance(entry.get("replays"), bool) else None,
    )


def read_budget(
    body: Mapping[str, Any], entries: Mapping[str, Mapping[str, Any] | None], now: datetime
) -> BudgetObservation:
    """``entries``: member name -> its cache entry (None: no such LiveStrategy)."""
    meta = body.get("metadata") or {}
    name = str(meta.get("name"))
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), Mapping) else {}
    spec: RiskBudgetSpec | None = None
    problem: str | None = None
    try:
        spec = RiskBudgetSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        problem = "; ".join(
            f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)
        )
    try:
        status = RiskBudgetStatus.model_validate(body.get("status") or {})
    except ValidationError:
        status = RiskBudgetStatus()  # rewritten whole: the operator is its only writer
    names: Iterable[str] = spec.members if spec is not None else ()
    halted = {
        member: entry["halts"][name]
        for member, entry in entries.items()
        if entry is not None and name in entry.get("halts", {})
    }
    ack = annotations.get(RISK_ACK_ANNOTATION)
    return BudgetObservation(
        name=name,
        namespace=str(meta.get("namespace")),
        generation=meta.get("generation") if isinstance(meta.get("generation"), int) else None,
        spec=spec,
        status=status,
        acknowledgement=ack if isinstance(ack, str) else None,
        members=[member_report(m, entries.get(m)) for m in names],
        halted_by_this=halted,
        now=now,
        problem=problem,
    )
