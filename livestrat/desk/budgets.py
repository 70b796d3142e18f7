"""The desk's view of RiskBudgets: one :class:`BudgetRow` per budget, read from the object as the API stores it.

Every figure comes from the budget's status, which the operator writes from its members' own reports
(:class:`livestrat.api.budget_status.RiskBudgetStatus`, parsed with the API's model): the desk adds nothing up
itself, so what it shows is what the operator acts on. Money is read by :func:`livestrat.desk.fleet.parse_money`,
the one parser of the desk. As in :mod:`livestrat.desk.fleet`, a budget that does not read still makes a row, and
:attr:`BudgetRow.problem` says what did not read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from livestrat.api.budget_spec import RiskBudgetSpec
from livestrat.api.budget_status import BudgetState, LimitUsage, MemberFigures, RiskBudgetStatus
from livestrat.api.contract import RISK_ACK_ANNOTATION
from livestrat.desk.fleet import Money, MoneyError, parse_money


@dataclass(frozen=True)
class MemberRow:
    """One member, with the figures the budget's status holds for it."""

    name: str
    reporting: bool
    phase: str
    weight: float | None
    gross_exposure: Money
    daily_pnl: Money
    drawdown: Money
    open_orders: int
    halted: bool
    note: str | None


@dataclass(frozen=True)
class BudgetRow:
    namespace: str
    name: str
    currency: str
    policy: str  # spec.onBreach
    members: str  # reporting/members, e.g. "2/3"
    state: str  # Active, Breached, or Unknown before the operator's first word
    exposure: Money
    daily_pnl: Money
    usage: tuple[LimitUsage, ...]
    member_rows: tuple[MemberRow, ...]
    message: str | None = None
    problem: str | None = None
    status: RiskBudgetStatus = field(default_factory=RiskBudgetStatus, repr=False, compare=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def breached(self) -> bool:
        return self.state == BudgetState.BREACHED

    @property
    def acknowledge_command(self) -> str | None:
        """The command that acknowledges the latched breach (docs/risk-budgets.md, "Acknowledging"), when breached."""
        breach = self.status.breach
        if breach is None:
            return None
        return (
            f"kubectl -n {self.namespace} annotate riskbudget {self.name} "
            f"{RISK_ACK_ANNOTATION}={breach.breached_at} --overwrite"
        )


def row(body: Mapping[str, Any]) -> BudgetRow:
    """One row from a RiskBudget as the API server returns it."""
    meta = body.get("metadata") or {}
    problems: list[str] = []
    try:
        status = RiskBudgetStatus.model_validate(body.get("status") or {})
    except ValidationError as exc:
        problems.append(f"status does not read: {exc.errors()[0].get('msg')}")
        status = RiskBudgetStatus()
    spec: RiskBudgetSpec | None
    try:
        spec = RiskBudgetSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        problems.append(f"spec does not read: {exc.errors()[0].get('msg')}")
        spec = None

    def money(text: str | None, where: str) -> dict[str, Decimal]:
        try:
            return parse_money(text)
        except MoneyError as exc:
            problems.append(f"{where}: {exc}")
            return {}

    def member(figures: MemberFigures) -> MemberRow:
        where = f"status.members[{figures.name}]"
        return MemberRow(
            name=figures.name,
            reporting=figures.reporting,
            phase=figures.phase or "-",
            weight=figures.weight,
            gross_exposure=money(figures.gross_exposure, f"{where}.grossExposure"),
            daily_pnl=money(figures.daily_pnl, f"{where}.dailyPnl"),
            drawdown=money(figures.drawdown, f"{where}.drawdown"),
            open_orders=figures.open_orders,
            halted=figures.halted,
            note=figures.note,
        )

    count = len(spec.members) if spec is not None else 0
    return BudgetRow(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        currency=spec.currency if spec is not None else "?",
        policy=str(spec.on_breach) if spec is not None else "?",
        members=status.member_count or (f"?/{count}" if count else "?"),
        state=str(status.state) if status.state is not None else "Unknown",
        exposure=money(status.exposure, "status.exposure"),
        daily_pnl=money(status.daily_pnl, "status.dailyPnl"),
        usage=tuple(status.usage),
        member_rows=tuple(member(each) for each in status.members),
        message=status.message,
        problem="; ".join(problems) or None,
        status=status,
    )
