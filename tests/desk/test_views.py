"""What the desk prints, rendered by Rich as a terminal would show it (no colours), from rows of stored objects."""

from __future__ import annotations

import io
from datetime import timedelta

from rich.console import Console

from livestrat.desk import fleet, views
from tests.desk.test_fleet import NOW, running, stored


def shown(renderable) -> str:
    console = Console(file=io.StringIO(), width=220, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def test_the_fleet_marks_a_silent_runtime_stale_and_totals_each_currency_apart():
    silent = NOW - fleet.STALE_AFTER - timedelta(seconds=5)
    rows = [
        fleet.row(stored("fresh", status=running(totalPnl="10.00 USDT", realizedPnl="10.00 USDT"))),
        fleet.row(stored("silent", "desk-b", status=running(silent, totalPnl="0.002 BTC"))),
    ]
    text = shown(views.fleet_view(rows, NOW))
    fresh, silent_line = (line for line in text.splitlines() if " fresh " in line or " silent " in line)
    assert "STALE" in silent_line and "STALE" not in fresh
    assert "35s STALE" in silent_line
    assert "2 strategies, 2 running" in text
    totals = text.split("PnL by currency:")[1]
    assert "BTC       0.002 BTC" in totals and "USDT      10.00 USDT" in totals


def test_the_status_shows_conditions_with_ages_and_each_limit_used_vs_allowed():
    status = running(positions=[{"instrument": "BTCUSDT.BINANCE", "side": "LONG", "quantity": "0.040"}])
    status["risk"] = {
        "state": "Active",
        "dailyPnl": "-500.00 USDT",
        "dailyPnlDay": "2026-12-05",
        "drawdown": "1500.00 USDT",
    }
    status["conditions"] = [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Running",
            "message": "the node runs",
            "lastTransitionTime": (NOW - timedelta(minutes=3, seconds=12)).isoformat().replace("+00:00", "Z"),
        }
    ]
    body = stored("ema", status=status)
    body["metadata"]["annotations"] = {"livestrat.io/halt": "alice: maintenance"}
    text = shown(views.status_view(fleet.row(body), [], None, NOW))
    assert "Ready" in text and "Running" in text and "3m12s" in text
    limits = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.startswith("max")}
    assert limits["maxPosition"] == ["0.040", "0.05", "80%"]
    assert limits["maxDrawdown"] == ["1500.00", "USDT", "3000", "USDT", "50%"]
    assert limits["maxDailyLoss"] == ["500.00", "USDT", "2000", "USDT", "25%"]
    assert "daily PnL -500.00 USDT (UTC day 2026-12-05)" in text  # which day: a quiet or stopped runtime's is older
    assert "halt annotation: alice: maintenance" in text
    assert "no pod" in text and "Events" in text
