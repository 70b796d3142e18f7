"""What a RiskBudget reads of its members, from objects as etcd may hold them: a member whose object does not read
counts as not reporting, and never stops the budget's reconciliation (nor the halt of the members that do read)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from livestrat.api.contract import BUDGET_HALT_PREFIX
from strategy_operator.decide.budget import decide_budget
from strategy_operator.observe.budget import member_entry, member_report, read_budget
from tests.support.malformed import malformations, paper_strategy

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
POSITION = {"instrument": "BTCUSDT.BINANCE", "side": "LONG", "quantity": "0.1", "notional": "5000.00 USDT"}


def reporting(name: str, halted: bool = False) -> dict:
    body = paper_strategy(name)
    body["status"] = {
        "phase": "Running",
        "trading": {"positions": [POSITION], "openOrders": 1, "totalPnl": "3.00 USDT"},
        "risk": {"state": "Active", "dailyPnl": "-5.00 USDT", "drawdown": "1.00 USDT"},
    }
    body["metadata"]["annotations"] = {"other": "x"}
    if halted:  # the budget "account"'s breach marks it
        body["metadata"]["annotations"][BUDGET_HALT_PREFIX + "account"] = "2026-03-02T11:00:00.000000Z"
    return body


def budget_body(members: list[str]) -> dict:
    return {
        "apiVersion": "livestrat.io/v1alpha1",
        "kind": "RiskBudget",
        "metadata": {"name": "account", "namespace": "default", "generation": 2},
        "spec": {"members": members, "currency": "USDT", "limits": {"maxGrossExposure": 8000.0}},
    }


def test_a_member_entry_keeps_what_a_budget_reads_and_nothing_else():
    entry = member_entry(reporting("alpha", halted=True))
    assert entry["trading"] == {"positions": [POSITION], "openOrders": 1, "totalPnl": "3.00 USDT"}
    assert entry["risk"] == {"dailyPnl": "-5.00 USDT", "drawdown": "1.00 USDT"}
    assert entry["halts"] == {"account": "2026-03-02T11:00:00.000000Z"}
    report = member_report("alpha", entry)
    assert report.exists and report.trading.positions[0].notional == "5000.00 USDT"
    assert not report.stale


def test_a_member_s_report_pushed_by_the_pod_of_an_earlier_object_of_its_name_counts_as_none():
    body = reporting("alpha")
    body["metadata"]["uid"] = "uid-alpha"
    body["status"]["trading"]["strategyUid"] = "uid-an-earlier-alpha"
    entry = member_entry(body)
    assert entry["trading"] is None and entry["risk"] is None and entry["phase"] == "Running"
    assert member_report("alpha", entry).trading is None
    body["status"]["trading"]["strategyUid"] = "uid-alpha"  # its own pod's
    assert member_entry(body)["risk"] == {"dailyPnl": "-5.00 USDT", "drawdown": "1.00 USDT"}


def test_a_member_on_a_live_feed_read_from_its_object_has_yesterday_s_daily_pnl_left_out():
    """The entry keeps whether the member replays history and the day of its daily PnL (``status.risk.dailyPnlDay``):
    a member on a live feed halted yesterday still shows yesterday's loss, which the budget does not count today."""
    body = reporting("alpha")
    assert member_entry(body)["replays"] is True  # the paper example replays a catalog: its day is the data's
    body["spec"]["venue"] = {"adapter": "binance", "name": "BINANCE"}  # paper on the venue's live feed, or live
    body["status"]["risk"]["dailyPnlDay"] = "2026-03-01"
    entry = member_entry(body)
    assert entry["replays"] is False and entry["risk"]["dailyPnlDay"] == "2026-03-01"
    status = decide_budget(read_budget(budget_body(["alpha"]), {"alpha": entry}, NOW)).status
    assert status.members[0].daily_pnl == "0.00 USDT" and "is of 2026-03-01" in status.members[0].note
    for venue in ({"adapter": 7}, "binance", None):  # a spec stored past validation: not known to be a live feed
        odd = {**body, "spec": {**body["spec"], "venue": venue}}
        status = decide_budget(read_budget(budget_body(["alpha"]), {"alpha": member_entry(odd)}, NOW)).status
        assert status.members[0].daily_pnl == "-5.00 USDT", venue  # counted as shown: the conservative way
    body["status"]["risk"]["dailyPnlDay"] = "2026-03-02"
    status = decide_budget(read_budget(budget_body(["alpha"]), {"alpha": member_entry(body)}, NOW)).status
    assert status.members[0].daily_pnl == "-5.00 USDT" and status.members[0].note is None


def test_a_member_the_operator_marked_stale_is_read_as_stale():
    body = reporting("alpha")
    body["status"]["conditions"] = [
        {"type": "Ready", "status": "True", "reason": "Running"},
        {"type": "Stale", "status": "True", "reason": "HeartbeatTooOld", "message": "no heartbeat for 45 s"},
    ]
    assert member_report("alpha", member_entry(body)).stale
    body["status"]["conditions"][1]["status"] = "False"
    assert not member_report("alpha", member_entry(body)).stale


@pytest.mark.parametrize(
    "case", [c for c in malformations() if c.path[0] in ("status", "metadata")], ids=lambda c: c.name
)
def test_a_member_stored_past_validation_never_stops_the_budget(case):
    broken = case.applied_to(reporting("broken"))
    entries = {"alpha": member_entry(reporting("alpha")), "broken": member_entry(broken)}
    obs = read_budget(budget_body(["alpha", "broken"]), entries, NOW)
    decision = decide_budget(obs)
    trading = member_report("broken", entries["broken"]).trading
    counted = trading is not None
    # alpha alone (5000) is within 8000; with the broken member's position counted (if its report shows it), over it
    assert decision.status.state == ("Breached" if counted and trading.positions else "Active")
    assert decision.status.member_count == ("2/2" if counted else "1/2")
    assert {m.name for m in decision.status.members} == {"alpha", "broken"}
