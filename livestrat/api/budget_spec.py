"""``RiskBudget.spec``: limits that span several LiveStrategies trading one venue account.

A budget names its members explicitly (LiveStrategy names in its namespace): the list says which
strategies the limits bind, paper ones included (a paper strategy has no credentials Secret to
select it by), and a strategy joins or leaves a budget by an edit anyone can review. The operator
adds up what the members' runtimes report (``status.trading.positions``, ``status.risk``) and acts
on a breach by ``onBreach``; docs/risk-budgets.md says how each figure is computed.

Every field's ``description`` is user documentation: the CRD's and a row of ``docs/api.md``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from livestrat.api import names
from livestrat.api.base import ApiModel, cel_rules
from livestrat.api.spec import INSTRUMENT_ID

CURRENCY = r"^[A-Z0-9]{2,12}$"
MAX_MEMBERS = 64
MAX_INSTRUMENT_LIMITS = 64

MemberName = Annotated[str, Field(min_length=1, max_length=names.NAME_MAX_LENGTH, pattern=names.NAME_PATTERN)]


class BudgetOnBreach(StrEnum):
    HALT_ALL = "HaltAll"
    HALT_BREACHER = "HaltBreacher"
    REDUCE_ONLY = "ReduceOnly"


# What each policy does; the field's description and docs/risk-budgets.md come from this table.
ON_BREACH_EFFECTS: dict[BudgetOnBreach, str] = {
    BudgetOnBreach.HALT_ALL: "halt every member",
    BudgetOnBreach.HALT_BREACHER: "halt the members that breached: for each broken limit, the member with the "
    "largest part of the figure that broke it (ties: the first by name)",
    BudgetOnBreach.REDUCE_ONLY: "halt no member; each member's share (status.budget) says reduceOnly, and its "
    "order gate then accepts only orders that reduce a position",
}


class AllocationRule(StrEnum):
    EQUAL = "Equal"
    WEIGHTS = "Weights"
    PERFORMANCE = "Performance"


# Each rule, what it means, and whether it takes `weights`: the CEL rules, their messages and the
# field's description are generated from this table.
ALLOCATION_RULES: dict[AllocationRule, tuple[str, bool]] = {
    AllocationRule.EQUAL: ("every member gets 1/N of each limit", False),
    AllocationRule.WEIGHTS: ("each member gets weight/Σweights of each limit, from allocation.weights", True),
    AllocationRule.PERFORMANCE: (
        "each member's weight is max(allocation.minWeight, 1 + totalPnl ÷ limits.maxDrawdown) from its own "
        "status.trading.totalPnl, normalised to sum to 1 (needs limits.maxDrawdown)",
        False,
    ),
}


def _allocation_rules() -> list[dict[str, str]]:
    rules = []
    for rule, (_meaning, takes_weights) in ALLOCATION_RULES.items():
        if takes_weights:
            rules.append(
                {
                    "rule": f"self.rule != '{rule}' || has(self.weights)",
                    "message": f"allocation.rule {rule} needs allocation.weights: a weight for each member",
                    "fieldPath": ".weights",
                    "reason": "FieldValueRequired",
                }
            )
        else:
            rules.append(
                {
                    "rule": f"self.rule != '{rule}' || !has(self.weights)",
                    "message": f"allocation.weights is for rule {AllocationRule.WEIGHTS}; rule {rule} computes the "
                    "weights itself: remove allocation.weights or set rule: Weights",
                    "fieldPath": ".weights",
                    "reason": "FieldValueForbidden",
                }
            )
    return rules


class InstrumentLimit(ApiModel):
    """Exposure limits on one instrument, across every member."""

    instrument: str = Field(
        pattern=INSTRUMENT_ID,
        max_length=128,
        description="Instrument ID, `SYMBOL.VENUE`.",
        examples=["BTCUSDT.BINANCE"],
    )
    max_gross_exposure: float | None = Field(
        default=None,
        gt=0,
        description="Most Σ|notional| of the members' positions in this instrument, in the budget's currency.",
    )
    max_net_exposure: float | None = Field(
        default=None,
        gt=0,
        description="Most |Σ signed notional| of the members' positions in this instrument (longs minus shorts), "
        "in the budget's currency.",
    )


# The limits, by wire name, with the unit each is in; the status's usage rows name them so.
MONEY_LIMITS = ("maxGrossExposure", "maxNetExposure", "maxDailyLoss", "maxDrawdown")
COUNT_LIMITS = ("maxOpenOrders",)


class BudgetLimits(ApiModel):
    """Limits across every member, in the budget's currency (money) or a count (orders)."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel_rules(
            {
                "rule": " || ".join(f"has(self.{name})" for name in (*MONEY_LIMITS, *COUNT_LIMITS, "instruments")),
                "message": "a budget needs at least one limit: "
                + ", ".join((*MONEY_LIMITS, *COUNT_LIMITS, "instruments")),
                "fieldPath": "",
                "reason": "FieldValueRequired",
            }
        )
    }

    max_gross_exposure: float | None = Field(
        default=None,
        gt=0,
        description="Most Σ|notional| of every member's position in every instrument (a long and a short both "
        "count), in the budget's currency.",
    )
    max_net_exposure: float | None = Field(
        default=None,
        gt=0,
        description="Most |Σ signed notional| over every member and instrument (longs minus shorts), in the "
        "budget's currency.",
    )
    instruments: list[InstrumentLimit] | None = Field(
        default=None,
        max_length=MAX_INSTRUMENT_LIMITS,
        description="Gross and net exposure limits per instrument.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["instrument"]},
    )
    max_daily_loss: float | None = Field(
        default=None,
        gt=0,
        description="Breach when the members' Σ status.risk.dailyPnl (UTC day) falls below minus this amount.",
    )
    max_drawdown: float | None = Field(
        default=None,
        gt=0,
        description="Breach when the members' Σ status.risk.drawdown (each from its own peak: at least the "
        "drawdown of their sum) exceeds this amount.",
    )
    max_open_orders: int | None = Field(
        default=None, ge=1, le=100000, description="Most Σ status.trading.openOrders across the members."
    )


class Allocation(ApiModel):
    """How each member's share of the limits is computed (status.budget of each member)."""

    model_config = ApiModel.model_config | {"json_schema_extra": cel_rules(*_allocation_rules())}

    rule: AllocationRule = Field(
        default=AllocationRule.EQUAL,
        description="; ".join(f"`{rule}`: {meaning}" for rule, (meaning, _w) in ALLOCATION_RULES.items()) + ".",
    )
    weights: dict[str, Annotated[float, Field(ge=0, le=1000000)]] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_MEMBERS,
        description="Rule Weights: member name → weight (any non-negative numbers; a member without one weighs 0).",
    )
    min_weight: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Rule Performance: the least weight a member keeps before normalising, so that a losing "
        "member is not starved to nothing.",
    )


class RiskBudgetSpec(ApiModel):
    """Limits across several strategies that trade one venue account, and what a breach does."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel_rules(
            {
                "rule": "!has(self.allocation.weights) || self.allocation.weights.all(k, k in self.members)",
                "message": "every key of allocation.weights must be a member (spec.members)",
                "fieldPath": ".allocation.weights",
                "reason": "FieldValueInvalid",
            },
            {
                "rule": f"self.allocation.rule != '{AllocationRule.PERFORMANCE}' || has(self.limits.maxDrawdown)",
                "message": "allocation.rule Performance scales weights by limits.maxDrawdown: set it",
                "fieldPath": ".limits.maxDrawdown",
                "reason": "FieldValueRequired",
            },
        )
    }

    members: list[MemberName] = Field(
        min_length=1,
        max_length=MAX_MEMBERS,
        description="The LiveStrategies (names, in this namespace) the limits bind. A member that does not exist "
        "or does not report counts as nothing and is listed in status.members as not reporting.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    currency: str = Field(
        pattern=CURRENCY,
        max_length=12,
        description="The currency of every money limit. Members' figures in another currency are shown per "
        "currency in status.totals and are not counted against the limits (no conversion is guessed).",
        examples=["USDT"],
    )
    limits: BudgetLimits = Field(description="Limits across every member.")
    on_breach: BudgetOnBreach = Field(
        default=BudgetOnBreach.HALT_ALL,
        description="What a breach does, latched until acknowledged: "
        + "; ".join(f"`{policy}`: {effect}" for policy, effect in ON_BREACH_EFFECTS.items())
        + ". A halted member halts as on its own risk breach (its spec.haltPolicy; cancelOrders never flattens).",
    )
    allocation: Allocation = Field(default_factory=Allocation, description="How members' shares are computed.")
