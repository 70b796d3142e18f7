"""Each member's share of its RiskBudget (``LiveStrategyStatus.budget``), and who belongs to which budget.

Pure: :func:`decide_shares` takes the RiskBudgets of one namespace and what its LiveStrategies hold now
(``status.budget``, ``status.trading.totalPnl``) and returns the writes to make: a member's share where it
differs from what its status holds, ``None`` (remove it) for a strategy that holds a share but belongs to no
budget any more. Nothing to write at rest.

**The share** is each limit of the budget times the member's weight (:mod:`~strategy_operator.decide.allocation`),
in the budget's currency, rounded down to the cent (money) or to a whole order (``maxOpenOrders``), so the shares
never add up to more than the limit. ``reduceOnly`` while the budget's breach under ``onBreach: ReduceOnly`` is
latched (``status.breach``, not acknowledged). ``observedGeneration``: the budget's ``metadata.generation``.

Under the ``Performance`` rule weights follow each member's total PnL; they are rounded to a percentage point, so
a share is rewritten when a weight moves by one, not on every price.

**One budget per strategy.** A strategy listed by two budgets belongs to the older one (``creationTimestamp``,
then name): the other gives it no share, and :func:`claims` reports the conflict, naming both, for the budget's
status and an event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from pydantic import ValidationError

from livestrat.api.budget_spec import AllocationRule, BudgetOnBreach, RiskBudgetSpec
from livestrat.api.contract import RISK_ACK_ANNOTATION
from livestrat.api.status import BudgetShare, InstrumentShare, own_status
from strategy_operator.decide.allocation import weights
from strategy_operator.decide.budget_figures import money, parse_money
from strategy_operator.decide.risk import same_instant

CENT = Decimal("0.01")
WEIGHT_PLACES = 6
PERFORMANCE_WEIGHT_PLACES = 2


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class BudgetView:
    """What the share writer reads of one RiskBudget."""

    name: str
    created: str  # metadata.creationTimestamp (RFC 3339: sorts as text)
    generation: int | None
    spec: RiskBudgetSpec | None  # None: the spec does not read (it then hands out nothing and takes nothing away)
    reduce_only: bool = False  # its breach under onBreach ReduceOnly is latched

    @property
    def follows_pnl(self) -> bool:
        """Its weights follow the members' total PnL (rule Performance)."""
        return self.spec is not None and self.spec.allocation.rule == AllocationRule.PERFORMANCE

    @classmethod
    def read(cls, body: Mapping[str, Any]) -> BudgetView:
        meta = _mapping(body.get("metadata"))
        try:
            spec: RiskBudgetSpec | None = RiskBudgetSpec.model_validate(body.get("spec") or {})
        except ValidationError:
            spec = None
        breach = _mapping(_mapping(body.get("status")).get("breach"))
        acknowledged = _mapping(meta.get("annotations")).get(RISK_ACK_ANNOTATION)
        generation = meta.get("generation")
        latched = bool(breach.get("breachedAt")) and not same_instant(acknowledged, breach.get("breachedAt"))
        return cls(
            name=str(meta.get("name") or ""),
            created=str(meta.get("creationTimestamp") or ""),
            generation=generation if isinstance(generation, int) else None,
            spec=spec,
            reduce_only=latched and breach.get("onBreach") == BudgetOnBreach.REDUCE_ONLY,
        )


@dataclass(frozen=True)
class MemberView:
    """What the share writer reads of one LiveStrategy."""

    name: str
    budget: Mapping[str, Any] | None  # its status.budget as stored
    total_pnl: str | None = None  # its status.trading.totalPnl

    @classmethod
    def read(cls, body: Mapping[str, Any]) -> MemberView:
        """Whatever the object holds (one stored past validation may hold anything): what does not read is absent."""
        # own_status: a totalPnl the pod of an earlier object of its name pushed is not this member's
        status, meta = _mapping(own_status(body)), _mapping(body.get("metadata"))
        budget, pnl = status.get("budget"), _mapping(status.get("trading")).get("totalPnl")
        return cls(
            name=str(meta.get("name") or ""),
            budget=budget if isinstance(budget, Mapping) else None,
            total_pnl=pnl if isinstance(pnl, str) else None,
        )


@dataclass(frozen=True)
class Conflict:
    """A strategy listed by more than one budget: ``holder`` keeps it, ``others`` give it no share."""

    member: str
    holder: str
    others: tuple[str, ...]

    def message(self) -> str:
        return (
            f"LiveStrategy {self.member} is listed by RiskBudgets {self.holder} and {', '.join(self.others)}; "
            f"a strategy belongs to one budget only: {self.holder} (the older) holds it and gives it its share, "
            f"{', '.join(self.others)} gives it none and does not count it. Remove it from spec.members of all but one"
        )


@dataclass(frozen=True)
class ShareDecision:
    writes: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # member -> status.budget (None: remove)
    conflicts: list[Conflict] = field(default_factory=list)


def claims(budgets: Sequence[BudgetView]) -> tuple[dict[str, str], list[Conflict]]:
    """member -> the budget that holds it; and every strategy listed by more than one budget."""
    holder: dict[str, str] = {}
    listed: dict[str, list[str]] = {}
    for view in sorted((b for b in budgets if b.spec is not None), key=lambda b: (b.created, b.name)):
        assert view.spec is not None
        for member in view.spec.members:
            holder.setdefault(member, view.name)
            listed.setdefault(member, []).append(view.name)
    conflicts = [Conflict(m, names[0], tuple(names[1:])) for m, names in sorted(listed.items()) if len(names) > 1]
    return holder, conflicts


def held_elsewhere(name: str, budgets: Sequence[BudgetView]) -> dict[str, str]:
    """For the budget ``name``'s status (``BudgetObservation.held_elsewhere``): each strategy another budget holds."""
    holder, _ = claims(budgets)
    return {member: other for member, other in holder.items() if other != name}


def _part(limit: float | None, weight: Decimal, currency: str) -> str | None:
    if limit is None:
        return None
    return money((Decimal(str(limit)) * weight).quantize(CENT, rounding=ROUND_DOWN), currency)


def share_of(view: BudgetView, weight: float) -> BudgetShare:
    """The share of ``view``'s limits a member of this ``weight`` gets."""
    assert view.spec is not None
    spec, w = view.spec, Decimal(str(weight))
    limits, ccy = spec.limits, spec.currency
    return BudgetShare(
        budget=view.name,
        weight=weight,
        max_gross_exposure=_part(limits.max_gross_exposure, w, ccy),
        max_net_exposure=_part(limits.max_net_exposure, w, ccy),
        instruments=[
            InstrumentShare(
                instrument=i.instrument,
                max_gross_exposure=_part(i.max_gross_exposure, w, ccy),
                max_net_exposure=_part(i.max_net_exposure, w, ccy),
            )
            for i in limits.instruments or []
        ],
        max_daily_loss=_part(limits.max_daily_loss, w, ccy),
        max_drawdown=_part(limits.max_drawdown, w, ccy),
        max_open_orders=int(limits.max_open_orders * w) if limits.max_open_orders is not None else None,
        reduce_only=view.reduce_only,
        observed_generation=view.generation,
    )


def _weights(view: BudgetView, members: Mapping[str, MemberView]) -> dict[str, float]:
    assert view.spec is not None
    spec = view.spec
    pnl: dict[str, Decimal] = {}
    for name in spec.members:
        found = members.get(name)
        amounts = parse_money(found.total_pnl) if found is not None else None
        pnl[name] = (amounts or {}).get(spec.currency, Decimal(0))
    places = PERFORMANCE_WEIGHT_PLACES if spec.allocation.rule == AllocationRule.PERFORMANCE else WEIGHT_PLACES
    return {m: round(w, places) for m, w in weights(spec, pnl).items()}


def wire(share: BudgetShare) -> dict[str, Any]:
    """``status.budget`` as the API stores it (absent fields left out, as a merge patch would leave them)."""
    return share.model_dump(mode="json", by_alias=True, exclude_none=True)


def decide_shares(budgets: Sequence[BudgetView], members: Sequence[MemberView]) -> ShareDecision:
    """The writes that bring every strategy's ``status.budget`` of one namespace in line with its budgets."""
    by_name = {m.name: m for m in members}
    holder, conflicts = claims(budgets)
    unreadable = {b.name for b in budgets if b.spec is None}
    desired: dict[str, dict[str, Any]] = {}
    for view in budgets:
        if view.spec is None:
            continue
        shares = _weights(view, by_name)
        for member in view.spec.members:
            if holder.get(member) == view.name and member in by_name:
                desired[member] = wire(share_of(view, shares[member]))
    writes: dict[str, dict[str, Any] | None] = {}
    for member in by_name.values():
        want = desired.get(member.name)
        if want is not None:
            if member.budget != want:
                writes[member.name] = want
        elif member.budget is not None and member.budget.get("budget") not in unreadable:
            writes[member.name] = None  # it left its budget (or the budget is gone); one that does not read keeps it
    return ShareDecision(writes=writes, conflicts=conflicts)
