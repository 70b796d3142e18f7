"""A post-trade risk halt: latched where only the operator writes, released only by an acknowledgement."""

from __future__ import annotations

from dataclasses import dataclass

from livestrat.api.contract import RISK_ACK_ANNOTATION
from livestrat.api.spec import OnBreach
from livestrat.api.status import RiskState, RiskStateName
from strategy_operator.observe.observation import Observation, parse_time


@dataclass(frozen=True)
class RiskLatch:
    """A post-trade risk halt, and whether a human acknowledged it.

    The halt is latched in what only the operator writes (the ``livestrat.io/risk-halted-at``
    annotation, ``recorded``), not in ``status.risk``, which the runtime writes and may lose:
    a runtime that starts again without its ledger reports ``Active``, and that must not resume
    the strategy. Only ``livestrat.io/risk-acknowledged`` set to the breach's time releases it.
    """

    latched: bool = False
    acknowledged: bool = False
    limit: str | None = None
    reason: str | None = None
    breached_at: str | None = None
    reported_halted: bool = False  # the runtime's own status says it is halted
    record: str | None = None  # a breach time the operator has not recorded yet: write it


def same_instant(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    if a.strip() == b.strip():
        return True
    ta, tb = parse_time(a.strip()), parse_time(b.strip())
    return ta is not None and tb is not None and ta == tb


def _later(recorded: str | None, reported: str | None) -> str | None:
    """The later of two breach times (the reported one when they cannot be compared)."""
    if not recorded or not reported:
        return reported or recorded
    a, b = parse_time(recorded.strip()), parse_time(reported.strip())
    if a is not None and b is not None and a > b:
        return recorded
    return reported


def risk_latch(risk: RiskState | None, acknowledgement: str | None, recorded: str | None) -> RiskLatch:
    """Latched on the latest breach, the one the operator recorded or the one the runtime reports, until the
    acknowledgement annotation names its time."""
    risk = risk or RiskState()
    halted = risk.state == RiskStateName.HALTED
    reported = risk.breached_at if halted else None
    if halted and not reported:  # a halt without a time cannot be acknowledged nor recorded: it holds
        return RiskLatch(latched=True, limit=risk.breached_limit, reason=risk.reason, reported_halted=True)
    breach = _later(recorded, reported)
    if breach is None:
        return RiskLatch()
    acknowledged = same_instant(acknowledgement, breach)
    from_report = same_instant(breach, reported)
    return RiskLatch(
        latched=not acknowledged,
        acknowledged=acknowledged,
        limit=risk.breached_limit if from_report else None,
        reason=risk.reason if from_report else None,
        breached_at=breach,
        reported_halted=halted,
        record=breach if not same_instant(breach, recorded) else None,
    )


def latch_of(obs: Observation) -> RiskLatch:
    """The risk latch of an observation: the runtime's report, the user's acknowledgement, the operator's record."""
    return risk_latch(obs.status.risk, obs.acknowledgement, obs.risk_recorded)


def risk_message(obs: Observation, latch: RiskLatch) -> str:
    what = latch.limit or "a risk limit"
    why = f": {latch.reason}" if latch.reason else ""
    when = f" at {latch.breached_at}" if latch.breached_at else ""
    policy = obs.spec.risk.on_breach if obs.spec is not None else OnBreach.SCALE_TO_ZERO
    if policy == OnBreach.SCALE_TO_ZERO:
        effect = "the pod is stopped"
    elif latch.reported_halted:
        effect = "the pod stays up, not trading"
    else:
        effect = "its runtime no longer reports the halt (its state was lost with its pod?), so the pod is stopped"
    stamp = latch.breached_at or "<status.risk.breachedAt>"
    return (
        f"{what} breached{when}{why}; onBreach {policy}: {effect}. To resume, acknowledge this breach: "
        f"kubectl annotate livestrategy {obs.name} livestrat.io/risk-acknowledged={stamp} --overwrite"
    )


def budget_halt_message(obs: Observation) -> str:
    """Why a member of a breached RiskBudget is halted, and how it resumes (on the budget, not here)."""
    budgets = "; ".join(f"RiskBudget {budget} breached at {at}" for budget, at in obs.budget_halts)
    acks = " ".join(
        f"kubectl annotate riskbudget {budget} {RISK_ACK_ANNOTATION}={at or '<status.breach.breachedAt>'} --overwrite"
        for budget, at in obs.budget_halts
    )
    return (
        f"{budgets}: its onBreach halts this strategy as on its own risk breach (haltPolicy applies; the pod is "
        f"stopped). To resume, acknowledge the budget's breach: {acks}"
    )
