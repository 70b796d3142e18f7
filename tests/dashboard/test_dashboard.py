"""The dashboard as a trader sees it, driven by Textual's own test pilot.

The strategies come from a :class:`MemorySource` holding LiveStrategies whose status is built with the API's
status models (what the runtime and the operator write); the actions go to controls that record what was done,
so each test can say whether the dialog's answer let the action through.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from rich.text import Text
from textual.widgets import DataTable, Static

from livestrat.api.status import HaltRecord, Phase, RiskState, RiskStateName
from livestrat.desk.dashboard import (
    ACK_RISK,
    HALT,
    RESUME,
    STALE_STYLE,
    ActionFailed,
    ActionUnavailable,
    ConfirmAction,
    Dashboard,
    MemorySource,
    Plan,
)
from tests.dashboard.fleet_bodies import (
    ago,
    condition,
    fill,
    plain,
    risk_halted,
    strategy,
    trading_btc,
)
from tests.support.budgets import budget_body, member_report, member_share
from tests.support.kube import wait_for

SIZE = (200, 50)


@dataclass
class RecordingControls:
    """Plans that record their doing; ``refuse`` makes an action unavailable, ``fail`` makes it fail."""

    done: list[tuple[str, str]] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    fail: dict[str, str] = field(default_factory=dict)

    async def plan(self, action, body):
        key = f"{body['metadata']['namespace']}/{body['metadata']['name']}"
        if action in self.refuse:
            raise ActionUnavailable(self.refuse[action])

        async def run() -> str:
            if action in self.fail:
                raise ActionFailed(self.fail[action])
            self.done.append((action, key))
            return f"{action} {key}: done"

        return Plan(action=action, strategy=key, will=f"will {action} {key} (a sentence from the controls)", run=run)


def fleet() -> MemorySource:
    return MemorySource(
        "three strategies",
        [
            strategy("ema-cross-btc", trading=trading_btc()),
            strategy(
                "mean-revert",
                namespace="desk-b",
                phase=Phase.RISK_HALTED,
                risk=risk_halted(),
                trading={"total_pnl": "-2100 USDT", "fills": 40},
            ),
            strategy("quiet", namespace="desk-b", replicas=0, phase=Phase.HALTED, heartbeat_seconds_ago=3600),
        ],
    )


def table(app: Dashboard) -> DataTable:
    return app.query_one("#fleet", DataTable)


def cell(app: Dashboard, key: str, column: str) -> str:
    value = table(app).get_cell(key, column)
    return value.plain if isinstance(value, Text) else str(value)


def detail_text(app: Dashboard) -> str:
    return plain(app.query_one("#detail", Static).content)


async def drawn(app: Dashboard, pilot, rows: int) -> None:
    await wait_for(lambda: table(app).row_count == rows, timeout=10)
    await pilot.pause()


async def test_the_fleet_table_has_a_row_per_strategy_with_its_heartbeat_phase_position_pnl_risk_and_last_fill():
    app = Dashboard(fleet(), RecordingControls())
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot, 3)
        assert [str(k.value) for k in table(app).rows] == [
            "default/ema-cross-btc",
            "desk-b/mean-revert",
            "desk-b/quiet",
        ]
        assert [str(c.label) for c in table(app).columns.values()] == [
            "STRATEGY",
            "HEARTBEAT",
            "MODE",
            "PHASE",
            "POSITION",
            "PNL",
            "RISK",
            "NEAREST LIMIT",
            "LAST FILL",
        ]
        running = "default/ema-cross-btc"
        assert cell(app, running, "mode") == "paper"
        assert cell(app, running, "phase") == "Running"
        assert cell(app, running, "position") == "+0.030 BTCUSDT.BINANCE"
        assert cell(app, running, "pnl") == "150.25 USDT"
        assert cell(app, running, "risk") == "Active"
        # 0.030 of maxPosition 0.05 is the limit nearest its breach (the day's loss and the drawdown are 0)
        assert cell(app, running, "limit") == "maxPosition 0.030/0.05 (60%)"
        assert cell(app, running, "fill") == "BUY 0.010 BTCUSDT.BINANCE @ 43210.50"

        halted = "desk-b/mean-revert"
        assert cell(app, halted, "phase") == "RiskHalted"
        assert cell(app, halted, "risk") == "Halted"
        assert cell(app, halted, "pnl") == "-2100 USDT"
        # after a breach, the limit that broke (the detail pane has its numbers)
        assert cell(app, halted, "limit") == "breached maxDailyLoss"
        assert cell(app, "desk-b/quiet", "position") == "flat"
        # Totals per currency, and how many are halted.
        totals = plain(app.query_one("#totals", Static).content)
        assert "3 strategies" in totals and "total PnL -1949.75 USDT" in totals and "2 halted" in totals


async def test_a_heartbeat_older_than_three_intervals_is_red_and_says_stale_but_a_halted_strategy_is_not_stale():
    source = MemorySource(
        "fleet",
        [
            strategy("fresh", heartbeat_seconds_ago=2),
            strategy("silent", heartbeat_seconds_ago=120),
            strategy("halted", replicas=0, phase=Phase.HALTED, heartbeat_seconds_ago=3600),
        ],
    )
    app = Dashboard(source, RecordingControls())
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot, 3)
        silent = table(app).get_cell("default/silent", "heartbeat")
        assert silent.plain.endswith("STALE") and silent.plain.startswith("2m")
        assert silent.style == STALE_STYLE
        fresh = table(app).get_cell("default/fresh", "heartbeat")
        assert "STALE" not in fresh.plain and fresh.style != STALE_STYLE
        # No pod is meant to report for a halted strategy: an old heartbeat is not a warning there.
        halted = table(app).get_cell("default/halted", "heartbeat")
        assert "STALE" not in halted.plain and halted.style != STALE_STYLE
        assert "1 stale" in plain(app.query_one("#totals", Static).content)


async def test_the_detail_pane_shows_the_selected_strategys_conditions_positions_limits_fills_and_halt_record():
    risk_halted_one = strategy(
        "mean-revert",
        namespace="desk-b",
        phase=Phase.RISK_HALTED,
        message="risk halt: maxDailyLoss",
        risk=risk_halted(),
        trading={**trading_btc(), "total_pnl": "-2100 USDT"},
        conditions=[
            condition("Ready", False, "Halted", "no pod runs"),
            condition("RiskHalted", True, "RiskLimitBreached", "maxDailyLoss: daily PnL -2100 USDT"),
        ],
        halt=HaltRecord(reason="RiskLimitBreached", message="onBreach ScaleToZero", since=ago(60)),
    )
    app = Dashboard(MemorySource("fleet", [strategy("ema-cross-btc"), risk_halted_one]), RecordingControls())
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot, 2)
        assert "default/ema-cross-btc" in detail_text(app)  # the first row is selected at start
        await pilot.press("down")
        await pilot.pause()
        text = detail_text(app)
        assert "desk-b/mean-revert" in text and "RiskHalted" in text and "risk halt: maxDailyLoss" in text
        # conditions, with reasons and ages
        assert "RiskLimitBreached" in text and "maxDailyLoss: daily PnL -2100 USDT" in text and "1m30s ago" in text
        # positions
        assert "BTCUSDT.BINANCE" in text and "LONG" in text and "43000.00" in text and "50.25 USDT" in text
        # each limit used against allowed
        for line in ("maxDailyLoss  2100 USDT  2000 USDT  105%", "maxDrawdown   2500 USDT  3000 USDT  83%"):
            assert " ".join(line.split()) in " ".join(text.split()), text
        assert "maxPosition" in text and "0.030" in text and "0.05" in text
        assert "breached maxDailyLoss at" in text
        # the last fill, and the halt record
        assert "BINANCE-1-12" in text
        assert "RiskLimitBreached since" in text and "onBreach ScaleToZero" in text


async def test_the_dashboard_redraws_when_a_strategy_changes_comes_and_goes():
    source = MemorySource("fleet", [strategy("ema-cross-btc", trading=trading_btc())])
    app = Dashboard(source, RecordingControls())
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot, 1)
        key = "default/ema-cross-btc"
        assert cell(app, key, "pnl") == "150.25 USDT"

        later = {**trading_btc(), "total_pnl": "-75.50 USDT", "fills": 13, "last_fill": fill("BINANCE-1-13", "SELL")}
        source.put(strategy("ema-cross-btc", trading=later))
        await wait_for(lambda: cell(app, key, "pnl") == "-75.50 USDT", timeout=10)
        assert cell(app, key, "fill").startswith("SELL 0.010")
        # the detail keeps the fills it saw go by, newest first
        await pilot.pause()
        text = detail_text(app)
        assert text.index("BINANCE-1-13") < text.index("BINANCE-1-12")

        source.put(strategy("newcomer", namespace="desk-a"))
        await drawn(app, pilot, 2)
        assert [str(k.value) for k in table(app).rows] == ["default/ema-cross-btc", "desk-a/newcomer"]
        source.remove("default", "ema-cross-btc")
        await drawn(app, pilot, 1)
        assert "desk-a/newcomer" in detail_text(app)


@pytest.mark.parametrize(("key", "action"), [("h", HALT), ("r", RESUME), ("a", ACK_RISK)])
async def test_each_action_key_asks_first_and_is_done_only_when_confirmed(key, action):
    controls = RecordingControls()
    app = Dashboard(fleet(), controls)
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot, 3)
        await pilot.press("down")  # desk-b/mean-revert
        await pilot.press(key)
        await wait_for(lambda: isinstance(app.screen, ConfirmAction), timeout=10)
        # The dialog names the action, the strategy and what will happen (in the controls' words).
        assert app.screen.plan.strategy == "desk-b/mean-revert"
        assert plain(app.screen.query_one("#will", Static).content).strip() == (
            f"will {action} desk-b/mean-revert (a sentence from the controls)"
        )
        await pilot.press("n")
        await wait_for(lambda: not isinstance(app.screen, ConfirmAction), timeout=10)
        await pilot.pause()
        assert controls.done == []  # cancelled: nothing done

        await pilot.press("escape")  # Escape on the table does nothing either
        await pilot.press(key)
        await wait_for(lambda: isinstance(app.screen, ConfirmAction), timeout=10)
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, ConfirmAction), timeout=10)
        await pilot.pause()
        assert controls.done == []

        await pilot.press(key)
        await wait_for(lambda: isinstance(app.screen, ConfirmAction), timeout=10)
        await pilot.press("y")
        await wait_for(lambda: controls.done == [(action, "desk-b/mean-revert")], timeout=10)


async def test_the_confirmation_dialog_can_be_answered_with_its_buttons():
    controls = RecordingControls()
    app = Dashboard(fleet(), controls)
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot, 3)
        await pilot.press("h")
        await wait_for(lambda: isinstance(app.screen, ConfirmAction), timeout=10)
        await pilot.press("enter")  # the focused button is Cancel: Enter does nothing by accident
        await wait_for(lambda: not isinstance(app.screen, ConfirmAction), timeout=10)
        await pilot.pause()
        assert controls.done == []
        await pilot.press("h")
        await wait_for(lambda: isinstance(app.screen, ConfirmAction), timeout=10)
        await pilot.click("#yes")
        await wait_for(lambda: controls.done == [(HALT, "default/ema-cross-btc")], timeout=10)


async def test_an_action_that_does_not_apply_says_why_and_opens_no_dialog_and_a_failed_one_says_what_failed():
    controls = RecordingControls(
        refuse={ACK_RISK: "no risk halt to acknowledge"}, fail={HALT: "the API server refused: forbidden"}
    )
    app = Dashboard(fleet(), controls)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await drawn(app, pilot, 3)
        await pilot.press("a")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmAction)
        messages = [n.message for n in app._notifications]
        assert "ack-risk default/ema-cross-btc: no risk halt to acknowledge" in messages

        await pilot.press("h")
        await wait_for(lambda: isinstance(app.screen, ConfirmAction), timeout=10)
        await pilot.press("y")
        await wait_for(
            lambda: (
                "halt default/ema-cross-btc failed: the API server refused: forbidden"
                in [n.message for n in app._notifications]
            ),
            timeout=10,
        )
        assert controls.done == []


async def test_risk_state_and_nearest_limit_of_a_strategy_reducing_its_position():
    reducing = RiskState(
        state=RiskStateName.REDUCING, reason="near maxPosition", daily_pnl="-1700 USDT", drawdown="0 USDT"
    )
    app = Dashboard(MemorySource("fleet", [strategy("near", risk=reducing)]), RecordingControls())
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot, 1)
        assert cell(app, "default/near", "risk") == "Reducing"
        limit = table(app).get_cell("default/near", "limit")
        assert limit.plain == "maxDailyLoss 1700/2000 USDT (85%)" and limit.style == "yellow"


async def test_s_sorts_the_fleet_as_kubectl_livestrat_list_does_and_the_selection_follows_its_strategy():
    app = Dashboard(fleet(), RecordingControls())
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot, 3)
        await pilot.press("down")  # desk-b/mean-revert, second by name
        await pilot.press("s", "s", "s")  # name -> namespace -> phase -> pnl: the largest |PnL| first
        await pilot.pause()
        assert [str(k.value) for k in table(app).rows] == [
            "desk-b/mean-revert",
            "default/ema-cross-btc",
            "desk-b/quiet",
        ]
        assert "sorted by pnl" in plain(app.query_one("#totals", Static).content)
        assert table(app).cursor_row == 0 and "desk-b/mean-revert" in detail_text(app)  # the cursor followed it
        await pilot.press("s")  # risk: a breach first, then the limit nearest its breach
        await pilot.pause()
        assert [str(k.value) for k in table(app).rows][:2] == ["desk-b/mean-revert", "default/ema-cross-btc"]


async def test_members_of_a_risk_budget_show_it_on_the_totals_line_and_their_share_in_the_detail_pane():
    budget = budget_body(
        "account-a", "default", [member_report("alpha", 3000), member_report("beta", -1000)], maxDailyLoss=500.0
    )
    alpha, beta = strategy("alpha"), strategy("beta")
    for body in (alpha, beta):
        body["status"]["budget"] = member_share(budget, 0.5)
    app = Dashboard(MemorySource("fleet", [alpha, beta, strategy("solo")]), RecordingControls())
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot, 3)
        assert "budgets: default/account-a 2 members" in plain(app.query_one("#totals", Static).content)
        assert "default/alpha" in detail_text(app)  # the first row is selected at start
        assert "budget: account-a, share 50%: maxDailyLoss 250.00 USDT" in " ".join(detail_text(app).split())


async def test_risk_budgets_in_view_have_a_panel_whose_breach_is_red_and_a_members_detail_shows_its_budget():
    calm = budget_body(
        "account-a", "default", [member_report("alpha", 3000), member_report("beta", -1000)], maxDailyLoss=500.0
    )
    breached = budget_body(
        "account-b",
        "default",
        [member_report("gamma", 2000, "-700.00 USDT")],
        on_breach="HaltBreacher",
        maxDailyLoss=500.0,
    )
    bodies = [strategy(name) for name in ("alpha", "beta", "gamma")]
    for body, budget in zip(bodies, (calm, calm, breached), strict=True):
        body["status"]["budget"] = member_share(budget, 1.0)
    source = MemorySource("fleet", [*bodies, calm])
    app = Dashboard(source, RecordingControls())
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot, 3)  # a RiskBudget is no row of the fleet table
        panel = app.query_one("#budgets", Static)
        assert panel.display and not panel.has_class("breached")
        shown = " ".join(plain(panel.content).split())
        assert "default account-a 2/2 Active HaltAll 4000.00 USDT" in shown, shown
        totals = plain(app.query_one("#totals", Static).content)
        assert "1 budget, 0 breached" in totals and "budgets: default/" not in totals  # the objects, not the shares

        source.put(breached)  # the operator latches a breach of account-b
        await wait_for(lambda: panel.has_class("breached"), timeout=10)
        shown = " ".join(plain(panel.content).split())
        assert "default account-b 1/1 Breached HaltBreacher" in shown
        assert (
            "default/account-b is breached: acknowledge with kubectl -n default annotate riskbudget account-b" in shown
        )
        assert "2 budgets, 1 breached" in plain(app.query_one("#totals", Static).content)

        await pilot.press("down", "down")  # gamma, the breached budget's member
        await pilot.pause()
        detail = " ".join(detail_text(app).split())
        assert "default/account-b members 1/1 Breached onBreach HaltBreacher" in detail, detail
        assert "breached maxDailyLoss at" in detail and "gamma" in detail

        source.remove("default", "account-b", kind="RiskBudget")
        source.remove("default", "account-a", kind="RiskBudget")
        await wait_for(lambda: not panel.display, timeout=10)
        # No RiskBudget objects in view (a local run): the members' own shares say which budgets there are.
        assert "budgets: default/account-a 2 members" in plain(app.query_one("#totals", Static).content)


async def test_a_redraw_or_a_new_set_while_the_dashboard_closes_does_nothing():
    # Closing, Textual removes the screen's widgets before it stops the app's timers and workers: the once-a-second
    # redraw, or the source's next set, may still come, and must not fail the desk on its way out.
    source = fleet()
    app = Dashboard(source, RecordingControls())
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot, 3)
        await app.screen.remove_children()
        app.redraw()
        app.show([source.get("default", "ema-cross-btc")])
