"""RiskBudgets and their members as the operator writes them: the status from its own decision
(``strategy_operator.decide.budget``), each member's ``status.budget`` from its own share writer
(``strategy_operator.decide.shares``), so the desk's tests read what a cluster would hold."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from livestrat.api.budget_spec import RiskBudgetSpec
from livestrat.api.budget_status import RiskBudgetStatus
from livestrat.api.status import RiskState, TradingState
from strategy_operator.decide.budget import BudgetObservation, decide_budget
from strategy_operator.decide.budget_figures import MemberReport
from strategy_operator.decide.shares import BudgetView, share_of, wire

BUDGET_NOW = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)


def member_report(name: str, notional: float, daily: str = "0.00 USDT", orders: int = 0) -> MemberReport:
    """``name``'s runtime reports one BTC position of this signed notional (a short's negative)."""
    side = "SHORT" if notional < 0 else "LONG"
    trading = TradingState.model_validate(
        {
            "positions": [
                {
                    "instrument": "BTCUSDT.BINANCE",
                    "side": side,
                    "quantity": "0.1",
                    "notional": f"{abs(notional):.2f} USDT",
                }
            ],
            "openOrders": orders,
            "totalPnl": daily,
        }
    )
    risk = RiskState.model_validate({"state": "Active", "dailyPnl": daily, "drawdown": "0.00 USDT"})
    return MemberReport(name=name, phase="Running", trading=trading, risk=risk)


def budget_body(
    name: str, namespace: str, reports: list[MemberReport], on_breach: str = "HaltAll", **limits: Any
) -> dict[str, Any]:
    """A RiskBudget as stored, with the status the operator decides from these members' reports."""
    spec = {"members": [r.name for r in reports], "currency": "USDT", "limits": limits, "onBreach": on_breach}
    observation = BudgetObservation(
        name=name,
        namespace=namespace,
        generation=1,
        spec=RiskBudgetSpec.model_validate(spec),
        status=RiskBudgetStatus(),
        acknowledgement=None,
        members=reports,
        halted_by_this={},
        now=BUDGET_NOW,
    )
    status = decide_budget(observation).status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {
        "apiVersion": "livestrat.io/v1alpha1",
        "kind": "RiskBudget",
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": spec,
        "status": status,
    }


def member_share(budget: dict[str, Any], weight: float) -> dict[str, Any]:
    """The ``status.budget`` the operator writes on a member of ``budget`` with this weight."""
    return wire(share_of(BudgetView.read(budget), weight))
