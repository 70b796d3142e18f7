"""A RiskBudget's reconciliation, decided: its status, which members its breach halts or releases, its events.

Pure: everything comes in a :class:`BudgetObservation` (the time included), everything goes out in a
:class:`BudgetDecision`; :mod:`strategy_operator.apply.budget` carries it out.

A breach latches as a single strategy's risk halt does. It is recorded in the budget's status
(``status.breach``, which only the operator writes) and in an annotation on every member it halts
(``livestrat.io/budget-halt.BUDGET``: the breach time), which the member's own reconciler reads as a risk
halt (phase RiskHalted, the pod stopped, the member's ``haltPolicy`` applied). Only
``livestrat.io/risk-acknowledged`` on the budget, set to the breach's time, releases it: the members' annotations
are then removed. Should the budget's status be lost, the members' annotations still hold the breach. After an
acknowledgement the limits are checked again at once: still broken, it is a new breach (at a new time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from livestrat.api.budget_spec import ON_BREACH_EFFECTS, BudgetOnBreach, RiskBudgetSpec
from livestrat.api.budget_status import BudgetBreach, BudgetConditionType, BudgetState, RiskBudgetStatus
from livestrat.api.contract import RISK_ACK_ANNOTATION
from strategy_operator.decide import conditions
from strategy_operator.decide.allocation import weights
from strategy_operator.decide.budget_figures import (
    Figures,
    MemberReport,
    Usage,
    aggregate,
    instrument_rows,
    member_rows,
    money,
    total_rows,
)
from strategy_operator.decide.conditions import Verdict
from strategy_operator.decide.events import Event
from strategy_operator.decide.risk import same_instant
from strategy_operator.decide.shares import Conflict
from strategy_operator.observe.observation import parse_time


@dataclass(frozen=True)
class BudgetObservation:
    """Everything one reconciliation of a RiskBudget knows."""

    name: str
    namespace: str
    generation: int | None
    spec: RiskBudgetSpec | None  # None: the spec does not read (``problem`` says why)
    status: RiskBudgetStatus
    acknowledgement: str | None  # the budget's livestrat.io/risk-acknowledged annotation
    members: Sequence[MemberReport]  # one per spec.members entry, in the cache's view
    halted_by_this: Mapping[str, str]  # member -> the breach time its livestrat.io/budget-halt.NAME says
    now: datetime
    problem: str | None = None
    # member -> the other budget that holds it (a strategy belongs to one budget: decide.shares.claims)
    held_elsewhere: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BudgetDecision:
    status: RiskBudgetStatus
    halt: dict[str, str] = field(default_factory=dict)  # member -> breach time to write in its annotation
    release: list[str] = field(default_factory=list)  # members whose annotation for this budget goes
    events: list[Event] = field(default_factory=list)


def instant(moment: datetime) -> str:
    """A breach time: microseconds, so that a breach right after an acknowledgement never shares its time."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _after(moment: datetime, acknowledged: str | None) -> datetime:
    before = parse_time(acknowledged) if acknowledged else None
    if before is not None and moment <= before:
        return before + timedelta(microseconds=1)
    return moment


def _describe(usage: Sequence[Usage], currency: str) -> str:
    def text(u: Usage, value: Decimal) -> str:
        return money(value, currency) if u.money else f"{value:f}"

    return "; ".join(f"{u.limit} {text(u, u.used)} over {text(u, u.allowed)}" for u in usage)


def _halted_by_policy(policy: str, breaches: Sequence[Usage], existing: Sequence[str]) -> list[str]:
    if policy == BudgetOnBreach.HALT_ALL:
        return sorted(existing)
    if policy == BudgetOnBreach.HALT_BREACHER:
        return sorted({u.largest for u in breaches if u.largest is not None} & set(existing))
    return []


def breach_message(name: str, policy: str, at: str, what: str, halted: Sequence[str]) -> str:
    effect = ON_BREACH_EFFECTS[BudgetOnBreach(policy)]
    who = f": halting {', '.join(halted)}" if halted else ""
    return (
        f"{what} (breached at {at}); onBreach {policy}: {effect}{who}. Each halted member halts as on its own risk "
        f"breach (its haltPolicy; cancelOrders closes no position). To resume, acknowledge this breach: "
        f"kubectl annotate riskbudget {name} {RISK_ACK_ANNOTATION}={at} --overwrite"
    )


def decide_budget(obs: BudgetObservation) -> BudgetDecision:
    if obs.spec is None:
        return _unreadable(obs)
    spec = obs.spec
    figures = aggregate(spec, obs.members, obs.now.astimezone(UTC).date())
    existing = [r.name for r in obs.members if r.exists]
    pnl = {m.name: m.total_pnl.get(spec.currency, Decimal(0)) for m in figures.members}
    shares = weights(spec, pnl)

    events: list[Event] = []
    halt: dict[str, str] = {}
    release: list[str] = []
    breach = obs.status.breach
    if breach is None and obs.halted_by_this:  # the status was lost: the members' annotations still hold it
        at = min(obs.halted_by_this.values())
        breach = BudgetBreach(
            limits=[],
            message=breach_message(obs.name, spec.on_breach, at, "a limit", sorted(obs.halted_by_this)),
            breached_at=at,
            on_breach=spec.on_breach,
            halted=sorted(obs.halted_by_this),
        )
    if breach is not None and not same_instant(obs.acknowledgement, breach.breached_at):
        # Latched: each member it halts keeps its annotation (one removed by hand is put back).
        halt = {
            m: breach.breached_at
            for m in breach.halted
            if m in existing and obs.halted_by_this.get(m) != breach.breached_at
        }
    else:
        if breach is not None:
            release = sorted(obs.halted_by_this)
            events.append(
                Event(
                    "Normal",
                    "BudgetAcknowledged",
                    f"the breach at {breach.breached_at} was acknowledged; released: {', '.join(release) or 'none'}",
                )
            )
        breach = None
        if figures.breaches:
            at = instant(_after(obs.now, obs.acknowledgement))
            halted = _halted_by_policy(spec.on_breach, figures.breaches, existing)
            what = _describe(figures.breaches, spec.currency)
            breach = BudgetBreach(
                limits=[u.limit for u in figures.breaches],
                message=breach_message(obs.name, spec.on_breach, at, what, halted),
                breached_at=at,
                on_breach=spec.on_breach,
                halted=halted,
            )
            halt = dict.fromkeys(halted, at)
            release = [m for m in release if m not in halt]
            events.append(Event("Warning", "BudgetBreached", breach.message))

    status = _status(obs, spec, figures, shares, breach)
    events += _transition_events(obs.status, status)
    return BudgetDecision(status=status, halt=halt, release=release, events=events)


def _status(
    obs: BudgetObservation,
    spec: RiskBudgetSpec,
    figures: Figures,
    shares: Mapping[str, float],
    breach: BudgetBreach | None,
) -> RiskBudgetStatus:
    ccy = spec.currency
    totals = figures.totals.get(ccy, {})
    reporting = [m.name for m in figures.members if m.reporting]
    silent = [m.name for m in figures.members if not m.reporting]
    most = max(figures.usage, key=lambda u: u.percent, default=None)
    if breach is not None:
        message = breach.message
        breached = Verdict.true(BudgetConditionType.BREACHED, "LimitBreached", breach.message)
    else:
        message = f"within limits; the most used: {most.limit} at {most.percent}%" if most else "within limits"
        breached = Verdict.false(BudgetConditionType.BREACHED, "WithinLimits", message)
    stale = [m.name for m in figures.members if m.reporting and m.stale]
    if silent or stale:
        told = [f"not reporting, counted as nothing: {', '.join(silent)}"] if silent else []
        told += [f"reports out of date, their last figures counted: {', '.join(stale)}"] if stale else []
        listening = Verdict.false(
            BudgetConditionType.MEMBERS_REPORTING,
            "MembersNotReporting" if silent else "MembersStale",
            f"{'; '.join(told)} (see status.members[].note)",
        )
    else:
        listening = Verdict.true(BudgetConditionType.MEMBERS_REPORTING, "AllReporting", "")
    claimed = sorted(m for m in spec.members if m in obs.held_elsewhere)
    if claimed:
        named = "; ".join(
            Conflict(m, obs.held_elsewhere[m], (obs.name,)).message().removesuffix(" of all but one") for m in claimed
        )
        conflict = Verdict.true(BudgetConditionType.MEMBER_CONFLICT, "MemberOfAnotherBudget", f"{named} of all but one")
    else:
        conflict = Verdict.false(BudgetConditionType.MEMBER_CONFLICT, "NoConflict", "")
    return RiskBudgetStatus(
        observed_generation=obs.generation,
        state=BudgetState.BREACHED if breach is not None else BudgetState.ACTIVE,
        message=message,
        member_count=f"{len(reporting)}/{len(figures.members)}",
        exposure=money(totals.get("grossExposure", Decimal(0)), ccy),
        daily_pnl=money(totals.get("dailyPnl", Decimal(0)), ccy),
        used=f"{most.percent}%" if most is not None else None,
        members=member_rows(figures, obs.members, shares, breach.halted if breach is not None else []),
        totals=total_rows(figures),
        instruments=instrument_rows(figures, ccy),
        usage=[u.row(ccy) for u in figures.usage],
        breach=breach,
        conditions=conditions.merge(
            obs.status.conditions,
            [breached, listening, conflict, Verdict.false(BudgetConditionType.INVALID_SPEC, "SpecValid", "")],
            now=obs.now,
            generation=obs.generation,
        ),
    )


def _unreadable(obs: BudgetObservation) -> BudgetDecision:
    """A spec that does not read (stored past validation) stops nothing and releases nothing: the last breach holds."""
    message = f"the spec cannot be read: {obs.problem}; fix it (docs/api.md, RiskBudget)"
    invalid = Verdict.true(BudgetConditionType.INVALID_SPEC, "SpecInvalid", message)
    status = obs.status.model_copy(
        update={
            "message": message,
            "conditions": conditions.merge(obs.status.conditions, [invalid], now=obs.now, generation=obs.generation),
        }
    )
    events = [Event("Warning", "SpecInvalid", message)] if obs.status.message != message else []
    return BudgetDecision(status=status, events=events)


def _transition_events(old: RiskBudgetStatus, new: RiskBudgetStatus) -> list[Event]:
    before = conditions.find(old.conditions, BudgetConditionType.MEMBERS_REPORTING)
    after = conditions.find(new.conditions, BudgetConditionType.MEMBERS_REPORTING)
    if after is not None and after.status == "False" and (before is None or before.message != after.message):
        return [Event("Warning", after.reason, after.message)]
    return []
