"""The fleet's rows, read from LiveStrategies as the API server returns them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from livestrat.api.runtime_config import HEARTBEAT_INTERVAL_SECONDS
from livestrat.desk import fleet
from tests.support.desk import paper

NOW = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)


def stored(name: str, namespace: str = "desk-a", *, status: dict | None = None, **spec) -> dict:
    """A LiveStrategy as the API server returns it: the paper example with its metadata and a status."""
    body = paper(name, **spec)
    body["metadata"] = {"name": name, "namespace": namespace, "uid": f"uid-{name}"}
    body["status"] = status or {}
    return body


def running(heartbeat: datetime = NOW, **trading) -> dict:
    return {
        "phase": "Running",
        "replicas": 1,
        "trading": {"heartbeat": heartbeat.isoformat().replace("+00:00", "Z"), "nodeState": "Running", **trading},
        "risk": {"state": "Active"},
    }


def test_money_reads_the_runtimes_text_once():
    assert fleet.parse_money("-12.50 USDT") == {"USDT": Decimal("-12.50")}
    assert fleet.parse_money("1.5 USDT, -0.01 BTC") == {"USDT": Decimal("1.5"), "BTC": Decimal("-0.01")}
    assert fleet.parse_money(None) == {}
    with pytest.raises(fleet.MoneyError, match="AMOUNT CCY"):
        fleet.parse_money("twelve USDT")
    with pytest.raises(fleet.MoneyError):
        fleet.parse_money("12.5")  # no currency: an amount alone means nothing on a desk of many currencies


def test_a_running_strategy_reads_into_one_row():
    body = stored(
        "ema",
        status=running(
            fills=7,
            openOrders=2,
            realizedPnl="-12.50 USDT",
            unrealizedPnl="2.25 USDT",
            totalPnl="-10.25 USDT",
            positions=[{"instrument": "BTCUSDT.BINANCE", "side": "LONG", "quantity": "0.020"}],
            lastFill={
                "time": "2026-12-06T11:59:00Z",
                "instrument": "BTCUSDT.BINANCE",
                "side": "BUY",
                "quantity": "0.010",
                "price": "50000.0",
                "tradeId": "T-7",
            },
        ),
    )
    row = fleet.row(body, NOW)
    assert (row.namespace, row.name, row.mode, row.venue, row.phase) == ("desk-a", "ema", "paper", "BINANCE", "Running")
    assert (row.replicas, row.fills, row.open_orders) == (1, 7, 2)
    assert row.total_pnl == {"USDT": Decimal("-10.25")}
    assert row.realized_pnl == {"USDT": Decimal("-12.50")}
    assert row.last_fill is not None and row.last_fill.trade_id == "T-7"
    assert row.heartbeat == NOW and row.problem is None


def test_what_the_pod_of_an_earlier_object_of_the_name_pushed_is_not_shown_as_the_strategy_s():
    """Deleted and applied again while its old pod still ran: that pod's push (stamped with the old uid) lands in the
    new object until the operator removes it. The desk shows the row as not reporting, not the old run's figures."""
    body = stored("ema", status=running(fills=40, totalPnl="-2100.00 USDT", strategyUid="uid-an-earlier-ema"))
    body["status"]["risk"] = {"state": "Halted", "reason": "maxDailyLoss", "dailyPnl": "-2100.00 USDT"}
    row = fleet.row(body, NOW)
    assert (row.fills, row.total_pnl, row.risk_state, row.heartbeat) == (0, {}, "Active", None)  # as unreported
    assert row.phase == "Running"  # the operator's part is this object's
    body["status"]["trading"]["strategyUid"] = "uid-ema"  # its own pod's: shown
    row = fleet.row(body, NOW)
    assert (row.fills, row.total_pnl, row.risk_state) == (40, {"USDT": Decimal("-2100.00")}, "Halted")


def test_stale_means_several_heartbeats_missed_not_one():
    one_missed = NOW - timedelta(seconds=HEARTBEAT_INTERVAL_SECONDS * 1.5)
    long_silent = NOW - timedelta(seconds=HEARTBEAT_INTERVAL_SECONDS * fleet.MISSED_HEARTBEATS + 1)
    assert not fleet.row(stored("a", status=running(one_missed))).stale(NOW)
    late = fleet.row(stored("b", status=running(long_silent)))
    assert late.stale(NOW)
    assert late.heartbeat_age(NOW) == NOW - long_silent


def test_a_halted_strategy_is_never_stale():
    halted = {"phase": "Halted", "replicas": 0, "trading": {"heartbeat": "2026-12-01T00:00:00Z"}}
    assert not fleet.row(stored("a", status=halted)).stale(NOW)


def test_a_running_pod_that_never_reported_is_stale():
    assert fleet.row(stored("a", status={"phase": "Starting", "replicas": 1})).stale(NOW)


def test_the_nearest_limit_is_the_one_closest_to_breach():
    # the paper example: maxDailyLoss 2000, maxDrawdown 3000, maxPosition 0.05
    status = running(positions=[{"instrument": "BTCUSDT.BINANCE", "side": "SHORT", "quantity": "0.010"}])
    status["risk"] = {"state": "Active", "dailyPnl": "-1500.00 USDT", "drawdown": "600.00 USDT"}
    row = fleet.row(stored("a", status=status))
    uses = {use.limit: use for use in row.limits}
    assert uses["maxDailyLoss"].fraction == pytest.approx(0.75)
    assert uses["maxDrawdown"].fraction == pytest.approx(0.2)
    assert uses["maxPosition"].fraction == pytest.approx(0.2)
    assert row.nearest_limit == uses["maxDailyLoss"]
    assert row.nearest_limit.text() == "maxDailyLoss 1500.00/2000 USDT (75%)"


def test_a_gain_uses_none_of_the_daily_loss_limit():
    status = running()
    status["risk"] = {"state": "Active", "dailyPnl": "800.00 USDT", "drawdown": "0.00 USDT"}
    uses = {use.limit: use for use in fleet.row(stored("a", status=status)).limits}
    assert uses["maxDailyLoss"].used == 0


def test_a_daily_loss_of_an_earlier_day_uses_none_of_todays_limit_on_a_live_feed_and_all_of_it_in_a_replay():
    # A runtime at rest since midnight, or stopped by scaling to zero, keeps yesterday's dailyPnl in its status; on a
    # venue's live feed that day is over (as the operator's RiskBudget counts it, docs/risk-budgets.md). A replay's
    # day is its data's: counted as it is.
    status = running()
    status["risk"] = {
        "state": "Active",
        "dailyPnl": "-1500.00 USDT",
        "dailyPnlDay": "2026-12-05",
        "drawdown": "0.00 USDT",
    }
    on_feed = fleet.row(stored("feed", status=status, venue={"name": "BINANCE", "adapter": "binance"}), NOW)
    daily = next(use for use in on_feed.limits if use.limit == "maxDailyLoss")
    assert daily.used == 0
    assert daily.of_day == "2026-12-05"  # what the status showed is of that day
    assert daily.text() == "maxDailyLoss 0/2000 USDT (0%; 1500.00 on 2026-12-05)"
    replay = fleet.row(stored("replay", status=status), NOW)  # the example: venue.adapter sandbox
    assert next(use for use in replay.limits if use.limit == "maxDailyLoss").used == Decimal("1500.00")
    status["risk"]["dailyPnlDay"] = "2026-12-06"  # today's
    today = fleet.row(stored("feed", status=status, venue={"name": "BINANCE", "adapter": "binance"}), NOW)
    assert next(use for use in today.limits if use.limit == "maxDailyLoss").used == Decimal("1500.00")


def test_a_figure_that_does_not_read_is_a_problem_of_the_row_not_a_crash_of_the_desk():
    status = running()
    status["risk"] = {"state": "Active", "dailyPnl": "-15", "drawdown": "lots"}  # no currency; no amount
    row = fleet.row(stored("a", status=status), NOW)
    assert "status.risk.dailyPnl" in row.problem and "status.risk.drawdown" in row.problem
    assert {use.limit for use in row.limits} == {"maxPosition"}


def test_totals_never_add_two_currencies():
    rows = [
        fleet.row(stored("a", status=running(totalPnl="10.00 USDT"))),
        fleet.row(stored("b", status=running(totalPnl="-2.50 USDT, 0.001 BTC"))),
        fleet.row(stored("c", status={"phase": "Pending"})),
    ]
    assert fleet.totals_by_currency(rows) == {"BTC": Decimal("0.001"), "USDT": Decimal("7.50")}


def test_sorting_by_pnl_and_by_risk():
    big_loss = fleet.row(stored("loser", status=running(totalPnl="-900.00 USDT")))
    small_gain = fleet.row(stored("winner", status=running(totalPnl="50.00 USDT")))
    breached_status = running(totalPnl="1.00 USDT")
    breached_status["risk"] = {"state": "Halted", "reason": "daily loss", "breachedLimit": "maxDailyLoss"}
    breached = fleet.row(stored("breached", status=breached_status))
    assert [r.name for r in fleet.sort_rows([small_gain, big_loss, breached], "pnl")] == ["loser", "winner", "breached"]
    assert fleet.sort_rows([small_gain, big_loss, breached], "risk")[0].name == "breached"
    with pytest.raises(ValueError, match="choose one of"):
        fleet.sort_rows([], "colour")


def test_filters_by_namespace_mode_phase_and_risk():
    rows = [
        fleet.row(stored("a", "desk-a", status=running())),
        fleet.row(stored("b", "desk-b", status={"phase": "Halted"})),
    ]
    assert [r.name for r in fleet.select(rows, fleet.Filters(namespace="desk-b"))] == ["b"]
    assert [r.name for r in fleet.select(rows, fleet.Filters(phase="running"))] == ["a"]
    assert [r.name for r in fleet.select(rows, fleet.Filters(mode="live"))] == []
    assert [r.name for r in fleet.select(rows, fleet.Filters(risk="Active"))] == ["a", "b"]


def test_an_object_that_does_not_read_still_makes_a_row_that_says_so():
    body = stored("odd", status=running(totalPnl="lots"))
    body["status"]["replicas"] = "one"  # stored past validation
    row = fleet.row(body)
    assert row.name == "odd"
    assert "status does not read" in row.problem and "replicas" in row.problem
