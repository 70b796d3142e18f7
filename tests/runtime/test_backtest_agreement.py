"""A paper replay against its backtest: what a promotion's ``criteria.maxBacktestMismatches`` reads.

The comparison is checked on fills built by hand (each kind of mismatch counted once); then a real
``livestrat runtime`` process replays the EMA-cross example to its end, runs the backtest of the same spec and
catalog in a child process, and reports the agreement in its state: the same fills, none differing.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from strategy_runtime.backtest_agreement import compare
from tests.support.ledger import trade
from tests.support.runtime_process import RuntimeProcess, example_spec, strategy_config


def fills(*trade_ids: int) -> list:
    return [
        trade(i, "BUY" if i % 2 else "SELL", "0.01", "42000", instrument="BTCUSDT.BINANCE", quote="USDT", ts=i)
        for i in trade_ids
    ]


def test_the_same_fills_agree_and_each_kind_of_mismatch_counts_once():
    same = compare(fills(1, 2, 3), fills(1, 2, 3))
    assert (same.paper_fills, same.backtest_fills, same.matched, same.mismatches) == (3, 3, 3, 0)
    assert same.message == "the same 3 fills at the same prices as the backtest"

    paper = fills(1, 2, 3, 4)
    paper[1] = dataclasses.replace(paper[1], price=Decimal("42000.5"))  # slipped
    differ = compare(paper, fills(1, 2, 3, 5))
    assert (differ.matched, differ.mismatches) == (3, 3)  # 4 only in paper, 5 only in the backtest, 2 differs
    assert "1 only in paper, 1 only in the backtest, 1 matched fills differ" in differ.message


def test_only_fills_before_the_replays_last_event_count_on_both_sides():
    # the backtest's stop closes the position at the last event's time; the running paper strategy has not
    window = compare(fills(1, 2), fills(1, 2, 3), before_ns=3)
    assert (window.paper_fills, window.backtest_fills, window.mismatches) == (2, 2, 0)
    assert "before 1970-01-01T00:00:00" in window.message
    # a paper run that stopped trading early is not hidden by the window
    assert compare(fills(1), fills(1, 2, 3), before_ns=3).mismatches == 1


@pytest.mark.slow
async def test_a_finished_paper_replay_reports_its_agreement_with_the_backtest_of_the_same_spec(tmp_path):
    config, path = strategy_config(tmp_path, example_spec(), name="ema-cross-btc")
    runtime = RuntimeProcess.start(config, path)
    try:
        await runtime.wait_ready()
        state = await runtime.wait_until(
            lambda s: (s.get("trading") or {}).get("backtest") is not None, timeout=180, what="the backtest's figures"
        )
    finally:
        runtime.kill()
    agreement = state["trading"]["backtest"]
    assert agreement["mismatches"] == 0, agreement
    assert agreement["paperFills"] == agreement["backtestFills"] == agreement["matched"] == state["trading"]["fills"]
    assert agreement["paperFills"] > 100  # the example trades: 178 fills over its 3000 bars
