"""A RiskBudget decided: its members' figures added up, each policy on a breach, the latch and its acknowledgement.

Pure: no API server, the time passed in. The aggregation is checked against a recomputation written
here from the members' own reports (signed notionals, daily PnL, drawdowns, open orders), over many
random fleets, and against the rows the status itself shows.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from livestrat.api.budget_spec import RiskBudgetSpec
from livestrat.api.budget_status import RiskBudgetStatus
from livestrat.api.status import RiskState, TradingState
from strategy_operator.decide.allocation import weights
from strategy_operator.decide.budget import BudgetObservation, decide_budget
from strategy_operator.decide.budget_figures import MemberReport, parse_money

NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
INSTRUMENTS = ["BTCUSDT.BINANCE", "ETHUSDT.BINANCE", "SOLUSDT.BINANCE"]


def member(
    name: str, positions=(), daily="0.00 USDT", drawdown="0.00 USDT", orders=0, total=None, day=None, replays=False
) -> MemberReport:
    """A member whose runtime reports ``positions``: (instrument, signed notional, currency); ``day``: the UTC day its
    ``dailyPnl`` is of (None: a runtime that does not say); ``replays``: a paper replay of history."""
    trading = TradingState.model_validate(
        {
            "positions": [
                {
                    "instrument": i,
                    "side": "SHORT" if n < 0 else "LONG",
                    "quantity": "1",
                    "notional": f"{abs(n):f} {c}",
                }
                for i, n, c in positions
            ],
            "openOrders": orders,
            "totalPnl": total or daily,
        }
    )
    risk = RiskState.model_validate({"dailyPnl": daily, "dailyPnlDay": day, "drawdown": drawdown})
    return MemberReport(name=name, phase="Running", trading=trading, risk=risk, replays=replays)


def spec(members, on_breach="HaltAll", **limits) -> RiskBudgetSpec:
    return RiskBudgetSpec.model_validate(
        {"members": members, "currency": "USDT", "limits": limits, "onBreach": on_breach}
    )


def observe(spec_, members, status=None, ack=None, halted=None, now=NOW) -> BudgetObservation:
    return BudgetObservation(
        name="account-a",
        namespace="trading",
        generation=1,
        spec=spec_,
        status=status or RiskBudgetStatus(),
        acknowledgement=ack,
        members=members,
        halted_by_this=halted or {},
        now=now,
    )


def amount(text: str, currency: str = "USDT") -> Decimal:
    found = parse_money(text)
    assert found is not None
    return found.get(currency, Decimal(0))


# ------------------------------------------------------------------------------------------------ aggregation


def random_fleet(rng: random.Random) -> list[MemberReport]:
    fleet = []
    for index in range(rng.randint(1, 6)):
        positions = [
            (
                instrument,
                Decimal(rng.randint(-5_000_000, 5_000_000)) / 100,
                rng.choice(["USDT", "USDT", "USDT", "USD"]),
            )
            for instrument in rng.sample(INSTRUMENTS, rng.randint(0, len(INSTRUMENTS)))
        ]
        positions = [p for p in positions if p[1] != 0]
        daily = Decimal(rng.randint(-300_000, 300_000)) / 100
        drawdown = Decimal(rng.randint(0, 400_000)) / 100
        fleet.append(
            member(
                f"m{index}",
                positions,
                daily=f"{daily:f} USDT",
                drawdown=f"{drawdown:f} USDT",
                orders=rng.randint(0, 9),
            )
        )
    return fleet


def recompute(fleet: list[MemberReport]) -> dict:
    """The figures, added up again from what each runtime reports (a short's notional negative)."""
    signed = [
        (p.instrument, Decimal(p.notional.split()[0]) * (-1 if p.side == "SHORT" else 1), p.notional.split()[1])
        for m in fleet
        for p in m.trading.positions
    ]
    in_usdt = [(i, n) for i, n, c in signed if c == "USDT"]
    per_instrument = {
        i: (sum(abs(n) for j, n in in_usdt if j == i), abs(sum(n for j, n in in_usdt if j == i)))
        for i in {i for i, _ in in_usdt}
    }
    return {
        "gross": sum((abs(n) for _, n in in_usdt), Decimal(0)),
        "net": abs(sum((n for _, n in in_usdt), Decimal(0))),
        "gross_usd": sum((abs(n) for _, n, c in signed if c == "USD"), Decimal(0)),
        "instruments": per_instrument,
        "daily": sum((amount(m.risk.daily_pnl) for m in fleet), Decimal(0)),
        "drawdown": sum((amount(m.risk.drawdown) for m in fleet), Decimal(0)),
        "orders": sum(m.trading.open_orders for m in fleet),
    }


@pytest.mark.parametrize("seed", range(200))
def test_the_totals_are_a_recomputation_of_the_members_reports(seed):
    rng = random.Random(seed)
    fleet = random_fleet(rng)
    budget = spec(
        [m.name for m in fleet],
        maxGrossExposure=1e9,
        maxNetExposure=1e9,
        maxDailyLoss=1e9,
        maxDrawdown=1e9,
        maxOpenOrders=100000,
        instruments=[{"instrument": i, "maxGrossExposure": 1e9, "maxNetExposure": 1e9} for i in INSTRUMENTS],
    )
    status = decide_budget(observe(budget, fleet)).status
    expected = recompute(fleet)
    usdt = next(t for t in status.totals if t.currency == "USDT")
    usage = {u.limit: u for u in status.usage}

    assert amount(usdt.gross_exposure) == amount(status.exposure) == expected["gross"]
    assert amount(usdt.net_exposure) == expected["net"]
    assert amount(usdt.daily_pnl) == amount(status.daily_pnl) == expected["daily"]
    assert amount(usdt.drawdown) == expected["drawdown"]
    usd = [t for t in status.totals if t.currency == "USD"]
    assert (amount(usd[0].gross_exposure, "USD") if usd else Decimal(0)) == expected["gross_usd"]
    assert {i.instrument: (amount(i.gross_exposure), amount(i.net_exposure)) for i in status.instruments} == expected[
        "instruments"
    ]
    assert amount(usage["maxGrossExposure"].used) == expected["gross"]
    assert amount(usage["maxNetExposure"].used) == expected["net"]
    assert amount(usage["maxDailyLoss"].used) == max(Decimal(0), -expected["daily"])
    assert amount(usage["maxDrawdown"].used) == expected["drawdown"]
    assert usage["maxOpenOrders"].used == str(expected["orders"])
    for instrument, (gross, net) in expected["instruments"].items():
        assert amount(usage[f"instruments[{instrument}].maxGrossExposure"].used) == gross
        assert amount(usage[f"instruments[{instrument}].maxNetExposure"].used) == net
    # and the totals are the sums of the member rows the status shows beside them
    assert sum((amount(m.gross_exposure or "") for m in status.members), Decimal(0)) == expected["gross"]
    assert sum((amount(m.daily_pnl or "") for m in status.members), Decimal(0)) == expected["daily"]
    assert sum(m.open_orders for m in status.members) == expected["orders"]
    assert status.member_count == f"{len(fleet)}/{len(fleet)}"
    assert status.state == "Active"


def test_used_is_the_most_used_limit_in_whole_percent():
    fleet = [member("a", [("BTCUSDT.BINANCE", Decimal("600.00"), "USDT")], daily="-249.99 USDT")]
    status = decide_budget(observe(spec(["a"], maxGrossExposure=1000.0, maxDailyLoss=500.0), fleet)).status
    assert {u.limit: u.percent for u in status.usage} == {"maxGrossExposure": 60, "maxDailyLoss": 49}
    assert status.used == "60%"


def test_a_member_that_does_not_report_counts_as_nothing_and_says_so():
    fleet = [member("a", [("BTCUSDT.BINANCE", Decimal("100.00"), "USDT")]), MemberReport("b", exists=False)]
    decision = decide_budget(observe(spec(["a", "b"], maxGrossExposure=1000.0), fleet))
    rows = {m.name: m for m in decision.status.members}
    assert rows["b"].reporting is False and "no such LiveStrategy" in rows["b"].note
    assert decision.status.member_count == "1/2"
    assert [e.reason for e in decision.events] == ["MembersNotReporting"]


def test_a_stale_member_counts_with_its_last_figures_and_the_budget_says_they_are_out_of_date():
    """A member whose runtime stopped reporting (its LiveStrategy ``Stale``) still holds what it reported last: its
    exposure and loss stay in the sums (dropping them would hide them), and the budget says the figures are old."""
    stale = dataclasses.replace(
        member("b", [("BTCUSDT.BINANCE", Decimal("700.00"), "USDT")], daily="-80.00 USDT"), stale=True
    )
    fleet = [member("a", [("BTCUSDT.BINANCE", Decimal("400.00"), "USDT")], daily="-30.00 USDT"), stale]
    decision = decide_budget(observe(spec(["a", "b"], maxGrossExposure=1000.0, maxDailyLoss=500.0), fleet))
    status = decision.status
    assert status.state == "Breached"  # 1100 of 1000: the stale member's 700 counts
    rows = {m.name: m for m in status.members}
    assert rows["b"].reporting is True and "out of date" in rows["b"].note
    assert amount(rows["b"].daily_pnl or "") == Decimal("-80.00")
    assert status.member_count == "2/2"
    reporting = next(c for c in status.conditions if c.type == "MembersReporting")
    assert reporting.status == "False" and reporting.reason == "MembersStale" and "b" in reporting.message
    assert "MembersStale" in [e.reason for e in decision.events]


# ------------------------------------------------------------------------------------------------ the UTC day

TODAY, YESTERDAY = NOW.date().isoformat(), (NOW - timedelta(days=1)).date().isoformat()


def test_a_live_member_s_daily_pnl_of_an_earlier_utc_day_is_not_today_s_loss():
    """A live member's ``dailyPnl`` is of the UTC day its runtime says (``dailyPnlDay``): a runtime halted yesterday,
    or quiet since midnight, still shows yesterday's. That is not today's loss: the budget counts it as nothing
    today, its row shows what it counted and says why."""
    fleet = [
        member("a", daily="-150.00 USDT", day=YESTERDAY),
        member("b", daily="-40.00 USDT", day=TODAY),
    ]
    status = decide_budget(observe(spec(["a", "b"], maxDailyLoss=100.0), fleet)).status
    assert status.state == "Active"
    rows = {m.name: m for m in status.members}
    assert amount(rows["a"].daily_pnl) == Decimal("0.00") and amount(rows["b"].daily_pnl) == Decimal("-40.00")
    assert f"-150.00 USDT is of {YESTERDAY}" in rows["a"].note and rows["b"].note is None
    assert amount(status.totals[0].daily_pnl) == Decimal("-40.00")  # the rows shown add up to the total
    assert amount(status.daily_pnl) == Decimal("-40.00")
    usage = next(u for u in status.usage if u.limit == "maxDailyLoss")
    assert usage.used == "40.00 USDT"


@pytest.mark.parametrize("day", [TODAY, (NOW + timedelta(days=1)).date().isoformat(), None])
def test_a_live_member_s_daily_pnl_of_today_or_of_a_day_it_does_not_say_counts(day):
    """Today's counts; so does a day ahead of the operator's clock (the venue's is the one that counts), and a
    figure without its day (a runtime older than ``dailyPnlDay``), as before."""
    fleet = [member("a", daily="-150.00 USDT", day=day)]
    status = decide_budget(observe(spec(["a"], maxDailyLoss=100.0), fleet)).status
    assert status.state == "Breached" and amount(status.members[0].daily_pnl) == Decimal("-150.00")


def test_a_paper_replay_s_daily_pnl_is_of_its_data_s_day_and_counts():
    """A paper strategy replaying history: its day is the replayed data's, never the operator's; counted as it is.
    (A paper strategy on a venue's live feed has the venue's day: as a live one, above.)"""
    fleet = [member("a", daily="-150.00 USDT", day="2024-05-01", replays=True)]
    status = decide_budget(observe(spec(["a"], maxDailyLoss=100.0), fleet)).status
    assert status.state == "Breached"


def test_a_daily_loss_breach_acknowledged_the_next_day_releases_the_halted_members():
    """docs/risk-budgets.md: after a daily-loss breach, wait for the UTC day to turn and acknowledge. The halted
    members' pods are down, so their status still shows yesterday's loss; the acknowledgement must release them,
    not breach again on yesterday's figures."""
    fleet = [member("alpha", daily="-100.00 USDT", day=TODAY), member("beta", daily="-50.00 USDT", day=TODAY)]
    budget = spec(["alpha", "beta"], maxDailyLoss=120.0)
    status = decide_budget(observe(budget, fleet)).status
    at = status.breach.breached_at
    assert status.state == "Breached"
    halted = {"alpha": at, "beta": at}
    same_day = decide_budget(observe(budget, fleet, status=status, ack=at, halted=halted))
    assert same_day.status.state == "Breached" and same_day.halt  # still over today: breaches again
    next_day = decide_budget(observe(budget, fleet, status=status, ack=at, halted=halted, now=NOW + timedelta(days=1)))
    assert next_day.status.state == "Active" and next_day.release == ["alpha", "beta"] and next_day.halt == {}
    assert [e.reason for e in next_day.events] == ["BudgetAcknowledged"]


# ------------------------------------------------------------------------------------------------ policies

# Two members long BTC, one short: gross 9000 over a limit of 8000.
FLEET = [
    member("alpha", [("BTCUSDT.BINANCE", Decimal("4000.00"), "USDT")], daily="-100.00 USDT"),
    member("beta", [("BTCUSDT.BINANCE", Decimal("3000.00"), "USDT")], daily="-50.00 USDT"),
    member("gamma", [("BTCUSDT.BINANCE", Decimal("-2000.00"), "USDT")], daily="20.00 USDT"),
]
NAMES = ["alpha", "beta", "gamma"]


def test_halt_all_halts_every_member_on_an_aggregate_breach():
    decision = decide_budget(observe(spec(NAMES, "HaltAll", maxGrossExposure=8000.0), FLEET))
    at = decision.status.breach.breached_at
    assert decision.status.state == "Breached"
    assert decision.halt == dict.fromkeys(NAMES, at)
    assert decision.status.breach.limits == ["maxGrossExposure"]
    assert [e.reason for e in decision.events] == ["BudgetBreached"]
    message = decision.events[0].message
    assert "maxGrossExposure 9000.00 USDT over 8000" in message
    assert f"kubectl annotate riskbudget account-a livestrat.io/risk-acknowledged={at}" in message
    assert all(m.halted for m in decision.status.members)


def test_no_single_member_breaks_the_limit_only_their_sum_does():
    for one in FLEET:
        alone = decide_budget(observe(spec([one.name], maxGrossExposure=8000.0), [one]))
        assert alone.status.state == "Active" and alone.halt == {}


@pytest.mark.parametrize(
    ("limits", "breacher"),
    [
        ({"maxGrossExposure": 8000.0}, "alpha"),  # the largest gross
        ({"maxNetExposure": 4000.0}, "alpha"),  # net 5000 long: the largest long
        ({"maxDailyLoss": 120.0}, "alpha"),  # the largest loss
        ({"instruments": [{"instrument": "BTCUSDT.BINANCE", "maxNetExposure": 4000.0}]}, "alpha"),
    ],
)
def test_halt_breacher_halts_the_member_with_the_largest_part_of_the_broken_figure(limits, breacher):
    decision = decide_budget(observe(spec(NAMES, "HaltBreacher", **limits), FLEET))
    assert decision.status.state == "Breached"
    assert list(decision.halt) == [breacher]
    assert [m.name for m in decision.status.members if m.halted] == [breacher]


def test_halt_breacher_on_a_short_net_halts_the_largest_short():
    fleet = [
        member("alpha", [("BTCUSDT.BINANCE", Decimal("-4000.00"), "USDT")]),
        member("beta", [("BTCUSDT.BINANCE", Decimal("1000.00"), "USDT")]),
        member("gamma", [("BTCUSDT.BINANCE", Decimal("-6000.00"), "USDT")]),
    ]
    decision = decide_budget(observe(spec(NAMES, "HaltBreacher", maxNetExposure=5000.0), fleet))
    assert list(decision.halt) == ["gamma"]


def test_reduce_only_halts_no_member():
    decision = decide_budget(observe(spec(NAMES, "ReduceOnly", maxGrossExposure=8000.0), FLEET))
    assert decision.status.state == "Breached" and decision.halt == {}
    assert "ReduceOnly" in decision.status.breach.message and decision.status.breach.halted == []


# ------------------------------------------------------------------------------------------------ the latch


def breached(on_breach="HaltAll") -> tuple[RiskBudgetSpec, RiskBudgetStatus, str]:
    budget = spec(NAMES, on_breach, maxGrossExposure=8000.0)
    status = decide_budget(observe(budget, FLEET)).status
    return budget, status, status.breach.breached_at


def test_a_breach_holds_when_the_figures_come_back_within_limits():
    budget, status, at = breached()
    calm = [member(m.name) for m in FLEET]  # flat, no loss: within every limit
    halted = dict.fromkeys(NAMES, at)
    later = decide_budget(observe(budget, calm, status=status, halted=halted, now=NOW + timedelta(minutes=5)))
    assert later.status.state == "Breached" and later.status.breach.breached_at == at
    assert later.halt == {} and later.release == []
    # a member's annotation removed by hand is put back while the breach holds
    again = decide_budget(observe(budget, calm, status=status, halted={"alpha": at, "beta": at}))
    assert again.halt == {"gamma": at}


def test_only_the_acknowledgement_of_the_breach_time_releases_the_members():
    budget, status, at = breached()
    calm = [member(m.name) for m in FLEET]
    halted = dict.fromkeys(NAMES, at)
    for wrong in ("2026-03-02T11:59:59Z", "yes", ""):
        decision = decide_budget(observe(budget, calm, status=status, ack=wrong, halted=halted))
        assert decision.status.state == "Breached" and decision.release == []
    released = decide_budget(observe(budget, calm, status=status, ack=at, halted=halted))
    assert released.status.state == "Active" and released.status.breach is None
    assert released.release == NAMES and released.halt == {}
    assert [e.reason for e in released.events] == ["BudgetAcknowledged"]


def test_a_breach_still_there_after_its_acknowledgement_is_a_new_breach():
    budget, status, at = breached()
    halted = dict.fromkeys(NAMES, at)
    decision = decide_budget(observe(budget, FLEET, status=status, ack=at, halted=halted, now=NOW))
    new = decision.status.breach
    assert decision.status.state == "Breached" and new.breached_at != at
    assert decision.halt == dict.fromkeys(NAMES, new.breached_at) and decision.release == []
    assert [e.reason for e in decision.events] == ["BudgetAcknowledged", "BudgetBreached"]


def test_a_lost_status_does_not_release_the_members():
    budget, _status, at = breached()
    calm = [member(m.name) for m in FLEET]
    decision = decide_budget(observe(budget, calm, status=RiskBudgetStatus(), halted=dict.fromkeys(NAMES, at)))
    assert decision.status.state == "Breached" and decision.status.breach.breached_at == at
    assert decision.release == []


# ------------------------------------------------------------------------------------------------ allocation


def test_allocation_rules():
    equal = spec(NAMES, maxDrawdown=1000.0)
    assert weights(equal, {}) == pytest.approx(dict.fromkeys(NAMES, 1 / 3))
    explicit = RiskBudgetSpec.model_validate(
        {
            "members": NAMES,
            "currency": "USDT",
            "limits": {"maxDrawdown": 1000.0},
            "allocation": {"rule": "Weights", "weights": {"alpha": 3, "beta": 1}},
        }
    )
    assert weights(explicit, {}) == {"alpha": 0.75, "beta": 0.25, "gamma": 0.0}
    performance = RiskBudgetSpec.model_validate(
        {
            "members": NAMES,
            "currency": "USDT",
            "limits": {"maxDrawdown": 1000.0},
            "allocation": {"rule": "Performance", "minWeight": 0.1},
        }
    )
    # 1 + pnl/1000: alpha 2.0, beta 1.0, gamma max(0.1, 1 - 2.5) = 0.1
    found = weights(performance, {"alpha": Decimal(1000), "beta": Decimal(0), "gamma": Decimal(-2500)})
    assert found == pytest.approx({"alpha": 2 / 3.1, "beta": 1 / 3.1, "gamma": 0.1 / 3.1})


def test_a_spec_that_does_not_read_halts_nothing_and_releases_nothing():
    _budget, status, at = breached()
    obs = observe(None, [], status=status, ack=at, halted=dict.fromkeys(NAMES, at))
    decision = decide_budget(dataclasses.replace(obs, problem="spec.currency: not a currency"))
    assert decision.halt == {} and decision.release == []
    assert decision.status.breach.breached_at == at  # the last breach holds
    invalid = next(c for c in decision.status.conditions if c.type == "InvalidSpec")
    assert invalid.status == "True" and "spec.currency" in invalid.message
    assert [e.reason for e in decision.events] == ["SpecInvalid"]
