"""Risk limits hold across restarts: a crash loop does not hand a live strategy a fresh daily loss.

A live strategy loses some money, its process is killed (``kill -9``: a crash, an OOM kill, an
evicted pod) and restarted, and loses a bit more: ``maxDailyLoss`` breaks at the day's
cumulative loss, although the second process alone lost less than the limit; a human's
acknowledgement then starts the day's figures again. The venue is the
one thing mocked (tests/support/venue_standin.py: a simulated venue whose trade ids are unique
run after run, as a real venue's, and whose clock reads a fixed day, so that the runs share their
UTC day whenever the test runs: the risk guard's day is the venue's); the runtime processes and
their PostgreSQL ledger are real. The day rolling over at midnight is tested without a clock to
wait for in tests/runtime/test_risk_limits.py.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

from tests.support.catalogs import write_price_path
from tests.support.runtime_process import RuntimeProcess, strategy_config
from tests.support.scripted import scripted_strategy
from tests.support.venue_standin import StandInVenue, live_spec, standin_command

pytestmark = pytest.mark.slow

LIMIT = 100
# Buy 0.1 BTC at 40,000 on bar 2, sell it on bar 5 after the price fell 0.5 % a bar: about
# -60 USDT, -68 with commissions. Each process does the same on the same prices: -68 alone
# is inside the limit, twice that is not.
STEPS = [
    {"bar": 2, "do": "market", "side": "BUY", "quantity": "0.1", "tag": "entry"},
    {"bar": 5, "do": "market", "side": "SELL", "quantity": "0.1", "tag": "exit"},
]
CLOSES = [40_000.0, 40_000.0, *(40_000.0 * 0.995**i for i in range(1, 9))]


# The venue's day: its prices start at midnight, and its clock reads noon when each process starts.
DAY = "2024-03-04"


def amount(text: str | None) -> float:
    return float(text.split()[0]) if text else 0.0


async def test_a_daily_loss_spread_over_a_crash_and_a_restart_breaks_the_limit_until_acknowledged(
    tmp_path, pg_database
):
    catalog = write_price_path(tmp_path / "catalog", CLOSES, start=f"{DAY}T00:00:00+00:00")
    spec = live_spec(
        scripted_strategy(str(tmp_path / "events.jsonl"), steps=STEPS),
        risk={"maxDailyLoss": LIMIT, "maxPosition": 1, "maxNotionalPerOrder": 10_000, "onBreach": "HaltInPlace"},
        haltPolicy="flatten",
    )
    config, path = strategy_config(tmp_path, spec, name="carry", catalog=catalog, ledger_kind="postgresql")
    command = standin_command(path, StandInVenue(str(catalog), clock_start=f"{DAY}T12:00:00+00:00"))

    first = RuntimeProcess.start(config, path, ledger_dsn=pg_database, command=command, tag="first")
    try:
        await first.wait_ready()
        lost = await first.wait_until(
            lambda s: s["trading"]["fills"] == 2 and s["ledger"]["pending"] == 0 and not s["trading"]["positions"],
            what="the round trip committed",
        )
        first.kill()  # SIGKILL: no halt, nothing saved on the way out
    finally:
        first.kill()
    first_loss = amount(lost["trading"]["realizedPnl"])
    assert -LIMIT < first_loss < -LIMIT / 2, lost["trading"]
    assert lost["risk"]["state"] == "Active"

    second = RuntimeProcess.start(config, path, ledger_dsn=pg_database, command=command, tag="second")
    try:
        await second.wait_ready()
        halted = await second.wait_until(
            lambda s: s["risk"]["state"] == "Halted" and s["ledger"]["pending"] == 0, what="the daily loss halt"
        )
        second.signal()
        code, _ = await second.wait_exit(30)
    finally:
        second.kill()
    assert code == 0, second.output()

    risk = halted["risk"]
    assert risk["breachedLimit"] == "maxDailyLoss", risk
    day_pnl = float(re.search(r"the day's PnL (-[\d.]+) USDT", risk["reason"]).group(1))
    assert day_pnl < -LIMIT
    # when it broke, this process alone had lost less than the limit: the loss it carried over
    # from the first process is what broke it
    assert day_pnl - first_loss > -LIMIT
    assert halted["trading"]["fills"] == 4  # the first run's two fills; this run's entry and the halt's close
    assert halted["trading"]["positions"] == []
    assert pd.Timestamp(risk["breachedAt"]).date().isoformat() == DAY  # the venue's day
    assert risk["dailyPnlDay"] == DAY  # the day the loss is of, as a RiskBudget reads it

    # A human acknowledges the halt: the day's PnL and the peak start again from that moment
    # (otherwise the runtime would halt again at once), and the strategy trades.
    config, path = strategy_config(
        tmp_path, spec, name="carry", catalog=catalog, ledger_kind="postgresql", risk_acknowledgement="ops@desk"
    )
    third = RuntimeProcess.start(config, path, ledger_dsn=pg_database, command=command, tag="third")
    try:
        await third.wait_ready()
        resumed = await third.wait_until(
            lambda s: s["trading"]["fills"] == 6 and s["ledger"]["pending"] == 0 and not s["trading"]["positions"],
            what="a round trip after the acknowledgement",
        )
        third.signal()
        code, _ = await third.wait_exit(30)
    finally:
        third.kill()
    assert code == 0, third.output()
    assert resumed["risk"]["state"] == "Active"
    assert amount(resumed["risk"]["dailyPnl"]) == pytest.approx(first_loss, abs=0.02)
