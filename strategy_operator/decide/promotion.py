"""Promotion from paper to live: may the live strategy run, on its paper strategy's track record?

:func:`decide` checks every criterion of ``spec.promotion`` against the paper strategy's record (observed,
:class:`~strategy_operator.observe.paper_record.PaperTrackRecord`) and returns the record the operator writes
into ``status.promotion``: Accepted, or Refused with each failing criterion and its figures. :func:`granted`
says whether an earlier acceptance still holds: for the same paper strategy and the same strategy (class,
config, instruments). An acceptance is not taken back by what the paper strategy does later: the live
strategy was admitted on the evidence of that moment, which the record keeps.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from livestrat.api.promotion import PromotionEvidence, PromotionRecord, PromotionSpec, PromotionState
from livestrat.api.spec import LiveStrategySpec, Mode
from strategy_operator.build.configuration import digest
from strategy_operator.decide import conditions
from strategy_operator.observe.paper_record import PaperTrackRecord


def strategy_hash(spec: LiveStrategySpec) -> str:
    """What a promotion vouches for: the strategy class, its config and the instruments it trades."""
    return digest({"strategy": spec.strategy.to_wire(), "instruments": list(spec.instruments)})


def granted(spec: LiveStrategySpec, record: PromotionRecord | None) -> bool:
    """No gate (no ``spec.promotion``), or an acceptance for this paper strategy and this very strategy."""
    if spec.promotion is None:
        return True
    return (
        record is not None
        and record.state == PromotionState.ACCEPTED
        and record.from_ == spec.promotion.from_
        and record.strategy_hash == strategy_hash(spec)
    )


def _amounts(text: str | None) -> list[tuple[Decimal, str]]:
    found = []
    for part in (text or "").split(","):
        amount, _, currency = part.strip().partition(" ")
        try:
            found.append((Decimal(amount), currency))
        except InvalidOperation:
            continue
    return found


def failures(promotion: PromotionSpec, live: LiveStrategySpec, paper: PaperTrackRecord, now: datetime) -> list[str]:
    """Each criterion the paper strategy's record does not meet, named by its field, with the figures."""
    name = f"paper strategy {paper.name}"
    if not paper.found:
        return [f"from: the {name} does not exist in this namespace"]
    if paper.spec is None:
        return [f"from: the {name}'s spec does not read"]
    if paper.spec.mode != Mode.PAPER:
        return [f"from: {paper.name} is mode {paper.spec.mode}, not paper: promote from a paper strategy"]
    failed = []
    if strategy_hash(paper.spec) != strategy_hash(live):
        failed.append(
            f"from: the {name} runs another strategy (class, config or instruments differ from this one's): "
            f"promote what it runs (kubectl livestrat promote {paper.name} --to NAME writes it)"
        )
    if paper.risk_halt is not None:
        failed.append(f"no risk halts: the {name} was risk halted in its current run: {paper.risk_halt}")
    criteria = promotion.criteria
    if paper.trading_since is None:
        failed.append(
            f"criteria.minDurationSeconds: the {name} is not trading ({paper.not_trading}); "
            f"it must trade for {criteria.min_duration_seconds}s"
        )
    else:
        trading = int((now - paper.trading_since).total_seconds())
        if trading < criteria.min_duration_seconds:
            # No running count in the words: the same finding is the same message, not written again every pass.
            until = paper.trading_since + timedelta(seconds=criteria.min_duration_seconds)
            since = conditions.timestamp(paper.trading_since)
            failed.append(
                f"criteria.minDurationSeconds: the {name} has traded since {since}, "
                f"at least {criteria.min_duration_seconds}s needed (until {conditions.timestamp(until)})"
            )
    if paper.fills < criteria.min_fills:
        failed.append(f"criteria.minFills: the {name} has {paper.fills} fills, at least {criteria.min_fills} needed")
    if criteria.max_drawdown is not None:
        amounts = _amounts(paper.max_drawdown)
        limit = Decimal(str(criteria.max_drawdown))
        if not amounts:
            failed.append(
                f"criteria.maxDrawdown: the {name} reports no largest drawdown (status.risk.maxDrawdown): "
                "give it risk.maxDrawdown or risk.maxDailyLoss so that its runtime watches its PnL"
            )
        elif any(amount >= limit for amount, _ in amounts):
            failed.append(
                f"criteria.maxDrawdown: the {name}'s largest drawdown {paper.max_drawdown} is not below "
                f"{criteria.max_drawdown:g}"
            )
    if criteria.max_backtest_mismatches is not None:
        allowed = criteria.max_backtest_mismatches
        if paper.backtest is None:
            failed.append(
                f"criteria.maxBacktestMismatches: the {name} reports no comparison with its backtest "
                "(status.trading.backtest: its runtime makes one when its replay finishes; on a live feed, every "
                "window_check_seconds of its runtime (an hour by default) and at a clean stop)"
            )
        elif paper.backtest.mismatches > allowed:
            failed.append(
                f"criteria.maxBacktestMismatches: the {name}'s fills disagree with its backtest: "
                f"{paper.backtest.message}; {paper.backtest.mismatches} mismatches, at most {allowed} allowed"
            )
    return failed


def decide(live: LiveStrategySpec, paper: PaperTrackRecord, promoted_by: str | None, now: datetime) -> PromotionRecord:
    """The promotion record for ``status.promotion`` (``live.promotion`` set): Accepted when every criterion holds."""
    promotion = live.promotion
    assert promotion is not None
    failed = failures(promotion, live, paper, now)
    evidence = None
    if paper.found:
        evidence = PromotionEvidence(
            running_since=conditions.timestamp(paper.trading_since) if paper.trading_since else None,
            duration_seconds=max(0, int((now - paper.trading_since).total_seconds())) if paper.trading_since else 0,
            fills=paper.fills,
            max_drawdown=paper.max_drawdown,
            risk_halts=1 if paper.risk_halt else 0,
            backtest_mismatches=paper.backtest.mismatches if paper.backtest is not None else None,
        )
    if failed:
        state = PromotionState.REFUSED
        message = f"promotion from {promotion.from_} refused: " + "; ".join(failed)
    else:
        state = PromotionState.ACCEPTED
        message = f"promoted from paper strategy {promotion.from_}" + (f" by {promoted_by}" if promoted_by else "")
        if evidence is not None:
            message += (
                f": traded {evidence.duration_seconds}s since {evidence.running_since}, {evidence.fills} fills, "
                f"largest drawdown {evidence.max_drawdown or 'not watched'}, no risk halt"
            )
    return PromotionRecord(
        state=state,
        from_=promotion.from_,
        message=message,
        promoted_by=promoted_by,
        decided_at=conditions.timestamp(now),
        strategy_hash=strategy_hash(live),
        evidence=evidence,
    )
