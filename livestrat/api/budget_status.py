"""``RiskBudget.status``: what the members add up to, against the limits, and the latched breach.

The operator writes all of it from the members' own status (``status.trading.positions[].notional``,
``status.risk.dailyPnl`` / ``drawdown``, ``status.trading.openOrders``): every total here is the sum
of the member rows shown beside it, so anyone can add them up again (docs/risk-budgets.md).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from livestrat.api.status import Condition, StatusModel


class BudgetState(StrEnum):
    ACTIVE = "Active"
    BREACHED = "Breached"


class BudgetConditionType(StrEnum):
    BREACHED = "Breached"
    MEMBERS_REPORTING = "MembersReporting"
    MEMBER_CONFLICT = "MemberConflict"
    INVALID_SPEC = "InvalidSpec"


class InstrumentExposure(StatusModel):
    """A member's, or all members', exposure in one instrument."""

    instrument: str = Field(description="Instrument ID.")
    notional: str = Field(description="Signed notional (a short's negative), `AMOUNT CCY`.")


class MemberFigures(StatusModel):
    """One member, as its runtime reports it."""

    name: str = Field(description="The LiveStrategy.")
    reporting: bool = Field(
        default=False,
        description="It exists and its runtime reports (status.trading): false counts it as nothing.",
    )
    phase: str | None = Field(default=None, description="Its status.phase.")
    weight: float | None = Field(default=None, description="Its weight under spec.allocation.")
    positions: list[InstrumentExposure] = Field(
        default_factory=list,
        description="Its signed notional per instrument (status.trading.positions: notional, side).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["instrument"]},
    )
    gross_exposure: str | None = Field(default=None, description="Σ|notional| of its positions, per currency.")
    daily_pnl: str | None = Field(default=None, description="Its status.risk.dailyPnl.")
    drawdown: str | None = Field(default=None, description="Its status.risk.drawdown.")
    open_orders: int = Field(default=0, ge=0, description="Its status.trading.openOrders.")
    halted: bool = Field(default=False, description="The budget's breach halts it.")
    note: str | None = Field(default=None, description="What of its report could not be counted, and why.")


class CurrencyTotals(StatusModel):
    """The members' figures added up in one currency."""

    currency: str = Field(description="Currency code.")
    gross_exposure: str = Field(description="Σ|notional| over members and instruments.")
    net_exposure: str = Field(description="|Σ signed notional| over members and instruments.")
    daily_pnl: str = Field(description="Σ of the members' daily PnL.")
    drawdown: str = Field(description="Σ of the members' drawdowns.")


class InstrumentTotals(StatusModel):
    """The members' exposure in one instrument, added up."""

    instrument: str = Field(description="Instrument ID.")
    gross_exposure: str = Field(description="Σ|notional| over the members, `AMOUNT CCY`.")
    net_exposure: str = Field(description="|Σ signed notional| over the members, `AMOUNT CCY`.")


class LimitUsage(StatusModel):
    """One limit: what is used of what is allowed."""

    limit: str = Field(
        description="The limit's path under spec.limits, for example maxDailyLoss or "
        "instruments[BTCUSDT.BINANCE].maxNetExposure."
    )
    used: str = Field(description="The figure counted against it (money `AMOUNT CCY`, or a count).")
    allowed: str = Field(description="The limit.")
    percent: int = Field(ge=0, description="used ÷ allowed, in whole percent (rounded down).")


class BudgetBreach(StatusModel):
    """The latched breach: it holds until the RiskBudget is annotated with its time."""

    limits: list[str] = Field(description="The limits that broke (spec.limits paths).")
    message: str = Field(description="What broke, by how much, and how to acknowledge it.")
    breached_at: str = Field(
        json_schema_extra={"format": "date-time"},
        description="When the operator saw it; acknowledge with "
        "`kubectl annotate riskbudget NAME livestrat.io/risk-acknowledged=THIS --overwrite`.",
    )
    on_breach: str = Field(description="The policy applied: HaltAll, HaltBreacher or ReduceOnly.")
    halted: list[str] = Field(default_factory=list, description="The members the breach halts.")


class RiskBudgetStatus(StatusModel):
    """Observed state, written by the operator."""

    observed_generation: int | None = Field(default=None, ge=0, description="The spec generation acted on.")
    state: BudgetState | None = Field(default=None, description="Active, or Breached (latched until acknowledged).")
    message: str | None = Field(default=None, description="One line explaining the state.")
    member_count: str | None = Field(default=None, description="Members reporting / members, e.g. `3/3`.")
    exposure: str | None = Field(
        default=None, description="Gross exposure in the budget's currency (the printer column)."
    )
    daily_pnl: str | None = Field(default=None, description="Daily PnL in the budget's currency (the printer column).")
    used: str | None = Field(default=None, description="The most used limit's percent, e.g. `83%`.")
    members: list[MemberFigures] = Field(
        default_factory=list,
        description="Each member's figures.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    totals: list[CurrencyTotals] = Field(
        default_factory=list,
        description="The members' figures added up, per currency.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["currency"]},
    )
    instruments: list[InstrumentTotals] = Field(
        default_factory=list,
        description="The members' exposure per instrument, in the budget's currency.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["instrument"]},
    )
    usage: list[LimitUsage] = Field(
        default_factory=list,
        description="Used vs allowed, per limit.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["limit"]},
    )
    breach: BudgetBreach | None = Field(default=None, description="The latched breach, until acknowledged.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="metav1.Condition list: Breached, MembersReporting, InvalidSpec, MemberConflict (a member "
        "another, older budget holds: it gets its share there, none here).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
