"""This strategy's share of its RiskBudget, as the operator hands it over in ``status.budget``.

The operator computes each member's share (``BudgetShare``: the budget's limits times the member's
weight) and writes it into the member's status; the runtime reads it back from the answer to each
status push (the API server answers a merge patch with the whole object: no ``get`` needed) and gives
it to the order gate (exposure, open orders, reduce-only) and to the limits tracker (daily loss and
drawdown: the tighter of the strategy's own limit and its share).

Money in the share is ``AMOUNT CCY`` in the budget's currency: a limit binds only figures in that
currency (an instrument quoted in another counts for nothing, as in the budget's own sums).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from livestrat.api.status import BudgetShare


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def __str__(self) -> str:
        return f"{self.amount:f} {self.currency}"


@dataclass(frozen=True)
class InstrumentCap:
    """One instrument's share: the most |notional| of the strategy's position in it (gross or net: one member's
    position in one instrument is one signed figure, so both limits bound the same number)."""

    gross: Money | None = None
    net: Money | None = None


@dataclass(frozen=True)
class Share:
    """``status.budget``, read: what the gate and the limits tracker hold the strategy within."""

    budget: str
    weight: float
    max_gross: Money | None = None
    max_net: Money | None = None
    instruments: Mapping[str, InstrumentCap] = field(default_factory=dict)
    max_daily_loss: Money | None = None
    max_drawdown: Money | None = None
    max_open_orders: int | None = None
    reduce_only: bool = False
    generation: int | None = None

    def describe(self) -> str:
        """One line for the log: which budget, which generation, what it allows."""
        parts = [f"weight {self.weight:.4f}"]
        for name, value in (
            ("maxGrossExposure", self.max_gross),
            ("maxNetExposure", self.max_net),
            ("maxDailyLoss", self.max_daily_loss),
            ("maxDrawdown", self.max_drawdown),
            ("maxOpenOrders", self.max_open_orders),
        ):
            if value is not None:
                parts.append(f"{name} {value}")
        parts += [f"{i} {c.gross or c.net}" for i, c in self.instruments.items()]
        if self.reduce_only:
            parts.append("reduce-only")
        return f"RiskBudget {self.budget} (generation {self.generation}): " + ", ".join(parts)


class ShareUnreadable(ValueError):
    """``status.budget`` does not read as a share (its text says which field and why)."""


def money(text: str | None, what: str) -> Money | None:
    if text is None:
        return None
    amount, _, currency = text.strip().partition(" ")
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise ShareUnreadable(f"status.budget.{what} {text!r} is not `AMOUNT CCY`") from None
    if not currency or not value.is_finite() or value < 0:
        raise ShareUnreadable(f"status.budget.{what} {text!r} is not `AMOUNT CCY` with a non-negative amount")
    return Money(value, currency.strip())


def read_share(budget: Mapping[str, Any] | None) -> Share | None:
    """The share in a LiveStrategy's ``status.budget`` (None: not a member of any budget)."""
    if not budget:
        return None
    try:
        wire = BudgetShare.model_validate(budget)
    except ValidationError as exc:
        raise ShareUnreadable(f"status.budget does not read: {exc.errors()[0].get('msg')}") from None
    instruments = {
        i.instrument: InstrumentCap(
            gross=money(i.max_gross_exposure, f"instruments[{i.instrument}].maxGrossExposure"),
            net=money(i.max_net_exposure, f"instruments[{i.instrument}].maxNetExposure"),
        )
        for i in wire.instruments
    }
    return Share(
        budget=wire.budget,
        weight=wire.weight,
        max_gross=money(wire.max_gross_exposure, "maxGrossExposure"),
        max_net=money(wire.max_net_exposure, "maxNetExposure"),
        instruments=instruments,
        max_daily_loss=money(wire.max_daily_loss, "maxDailyLoss"),
        max_drawdown=money(wire.max_drawdown, "maxDrawdown"),
        max_open_orders=wire.max_open_orders,
        reduce_only=wire.reduce_only,
        generation=wire.observed_generation,
    )
