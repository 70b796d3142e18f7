"""Promotion from paper to live, decided without any server or clock: each criterion refuses on its own, with its
figures, and all of them together admit the live strategy; an acceptance holds for the strategy it vouched for."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from livestrat.api.promotion import BacktestAgreement, PromotionState
from livestrat.api.resource import LiveStrategy
from livestrat.api.spec import LiveStrategySpec
from strategy_operator.decide.promotion import decide, granted
from strategy_operator.observe.paper_record import PaperTrackRecord
from tests.support.desk import example
from tests.support.observations import NOW, observe, pod, run

DAY = timedelta(days=1)


def live_spec(**criteria: object) -> LiveStrategySpec:
    doc = example("live-ema-cross-promoted")
    doc["spec"]["promotion"]["criteria"].update(criteria)
    return LiveStrategySpec.model_validate(doc["spec"])


def paper_spec() -> LiveStrategySpec:
    return LiveStrategySpec.model_validate(example("paper-ema-cross")["spec"])


def good_record(**changes: object) -> PaperTrackRecord:
    """A paper strategy that meets the example's criteria: two days of trading, 25 fills, a 900 USDT drawdown."""
    record = PaperTrackRecord(
        name="ema-cross-btc",
        found=True,
        spec=paper_spec(),
        trading_since=NOW - 2 * DAY,
        fills=25,
        max_drawdown="900.00 USDT",
    )
    return dataclasses.replace(record, **changes)


def refused_for(record: PaperTrackRecord, spec: LiveStrategySpec | None = None) -> str:
    decided = decide(spec or live_spec(), record, "alice", NOW)
    assert decided.state == PromotionState.REFUSED
    return decided.message


def test_every_criterion_holding_admits_the_live_strategy_with_its_evidence_and_who_asked():
    decided = decide(live_spec(), good_record(), "alice", NOW)
    assert decided.state == PromotionState.ACCEPTED
    assert decided.promoted_by == "alice" and decided.from_ == "ema-cross-btc"
    assert decided.decided_at == "2026-03-02T12:00:00Z"
    evidence = decided.evidence
    assert (evidence.duration_seconds, evidence.fills, evidence.max_drawdown, evidence.risk_halts) == (
        172800,
        25,
        "900.00 USDT",
        0,
    )
    assert evidence.running_since == "2026-02-28T12:00:00Z"
    assert "by alice" in decided.message and "25 fills" in decided.message


def test_too_short_a_track_record_is_refused_naming_the_duration_and_when_it_began():
    message = refused_for(good_record(trading_since=NOW - timedelta(hours=3)))
    assert "criteria.minDurationSeconds" in message
    assert "since 2026-03-02T09:00:00Z" in message and "at least 86400s" in message


def test_a_paper_strategy_that_is_not_trading_is_refused_with_why():
    message = refused_for(good_record(trading_since=None, not_trading="the strategy is Halted"))
    assert "criteria.minDurationSeconds" in message and "is not trading (the strategy is Halted)" in message


def test_too_few_fills_are_refused_with_the_count():
    message = refused_for(good_record(fills=19))
    assert "criteria.minFills: the paper strategy ema-cross-btc has 19 fills, at least 20 needed" in message


def test_a_drawdown_at_the_limit_is_refused_with_the_amount():
    message = refused_for(good_record(max_drawdown="1500.00 USDT"))
    assert "criteria.maxDrawdown" in message and "largest drawdown 1500.00 USDT is not below 1500" in message


def test_a_paper_strategy_that_does_not_watch_its_pnl_cannot_show_its_drawdown():
    message = refused_for(good_record(max_drawdown=None))
    assert "criteria.maxDrawdown" in message and "reports no largest drawdown" in message


def test_a_risk_halt_in_the_run_refuses_whatever_else_it_shows():
    message = refused_for(good_record(risk_halt="total PnL 100 USDT is 3100 below its peak"))
    assert "no risk halts" in message and "3100 below its peak" in message
    assert decide(live_spec(), good_record(risk_halt="x"), None, NOW).evidence.risk_halts == 1


def test_another_strategy_than_the_paper_one_ran_is_refused():
    doc = example("live-ema-cross-promoted")
    doc["spec"]["strategy"]["config"]["trade_size"] = "0.100"
    message = refused_for(good_record(), LiveStrategySpec.model_validate(doc["spec"]))
    assert "runs another strategy" in message


@pytest.mark.parametrize(
    ("record", "said"),
    [
        (PaperTrackRecord.missing("ema-cross-btc"), "does not exist"),
        (good_record(spec=LiveStrategySpec.model_validate(example("live-ema-cross-promoted")["spec"])), "not paper"),
    ],
)
def test_promotion_only_from_a_paper_strategy_that_exists(record, said):
    assert said in refused_for(record)


def test_several_failing_criteria_are_all_named():
    message = refused_for(good_record(fills=3, trading_since=NOW - timedelta(hours=1)))
    assert "criteria.minFills" in message and "criteria.minDurationSeconds" in message


def test_an_acceptance_holds_for_the_strategy_it_vouched_for_and_no_other():
    accepted = decide(live_spec(), good_record(), "alice", NOW)
    assert granted(live_spec(), accepted)
    assert not granted(live_spec(), decide(live_spec(), good_record(fills=0), "alice", NOW))
    doc = example("live-ema-cross-promoted")
    doc["spec"]["strategy"]["config"]["fast_ema_period"] = 5
    assert not granted(LiveStrategySpec.model_validate(doc["spec"]), accepted)
    doc = example("live-ema-cross-promoted")
    doc["spec"]["promotion"]["from"] = "another-paper"
    assert not granted(LiveStrategySpec.model_validate(doc["spec"]), accepted)


# --------------------------------------------------------------------------- in the plan


def live(**criteria: object) -> LiveStrategy:
    doc = example("live-ema-cross-promoted")
    doc["spec"]["promotion"]["criteria"].update(criteria)
    doc["metadata"].update(namespace="desk", uid="uid-1", generation=3)
    return LiveStrategy.model_validate(doc)


def test_a_refused_live_strategy_gets_no_pod_and_says_which_criterion_fails():
    obs = dataclasses.replace(observe(live(), sts=None), paper=good_record(fills=2), promoted_by="alice")
    plan, report = run(obs)
    assert plan.replicas == 0 and plan.hold.reason == "PromotionRefused"
    assert report.status.phase == "Pending"
    halted = next(c for c in report.status.conditions if c.type == "Halted")
    assert halted.reason == "PromotionRefused" and "criteria.minFills" in halted.message
    assert report.status.promotion.state == "Refused" and report.recheck_after == 5.0
    assert [(e.type, e.reason) for e in report.events] == [("Warning", "PromotionRefused")]


def test_an_admitted_live_strategy_runs_and_its_record_and_event_say_so():
    obs = dataclasses.replace(observe(live(), sts=None), paper=good_record(), promoted_by="alice")
    plan, report = run(obs)
    assert plan.replicas == 1 and plan.hold is None
    assert report.status.promotion.state == "Accepted" and report.status.promotion.promoted_by == "alice"
    assert ("Normal", "PromotionAccepted") in [(e.type, e.reason) for e in report.events]
    # once accepted, the paper strategy is not asked again: the acceptance holds
    later = dataclasses.replace(
        observe(live(), status=report.status.to_wire()), paper=good_record(fills=0), promoted_by="alice"
    )
    plan, report = run(later)
    assert plan.replicas == 1 and report.status.promotion.state == "Accepted"
    assert not [e for e in report.events if e.reason.startswith("Promotion")]


def test_a_refused_promotion_stops_nothing_that_runs_and_applies_nothing_new():
    obs = dataclasses.replace(observe(live(), pods=[pod()]), paper=good_record(fills=2), promoted_by="alice")
    plan, report = run(obs)
    assert plan.replicas == 1 and plan.hold is None and not plan.apply
    assert report.status.promotion.state == "Refused"


def test_the_same_refusal_is_not_written_again():
    obs = dataclasses.replace(observe(live(), sts=None), paper=good_record(fills=2))
    _, first = run(obs)
    again = dataclasses.replace(observe(live(), sts=None, status=first.status.to_wire()), paper=good_record(fills=2))
    _, second = run(dataclasses.replace(again, now=NOW + timedelta(seconds=30)))
    assert second.status.promotion == first.status.promotion
    assert not [e for e in second.events if e.reason.startswith("Promotion")]


def agreement(mismatches: int) -> BacktestAgreement:
    return BacktestAgreement(
        checked_at="2026-03-02T11:00:00Z",
        paper_fills=25,
        backtest_fills=25 + mismatches,
        matched=25,
        mismatches=mismatches,
        message=f"paper 25 fills, backtest {25 + mismatches}: 0 only in paper, {mismatches} only in the backtest",
    )


def test_fills_disagreeing_with_the_backtest_beyond_the_tolerance_are_refused_with_the_comparison():
    message = refused_for(good_record(backtest=agreement(2)), live_spec(maxBacktestMismatches=1))
    assert "criteria.maxBacktestMismatches" in message and "2 mismatches, at most 1 allowed" in message
    assert "paper 25 fills, backtest 27" in message
    accepted = decide(live_spec(maxBacktestMismatches=1), good_record(backtest=agreement(1)), None, NOW)
    assert accepted.state == PromotionState.ACCEPTED and accepted.evidence.backtest_mismatches == 1


def test_no_comparison_with_the_backtest_is_refused_when_the_criterion_asks_for_one():
    message = refused_for(good_record(), live_spec(maxBacktestMismatches=0))
    assert "criteria.maxBacktestMismatches" in message and "reports no comparison with its backtest" in message
