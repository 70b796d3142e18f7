"""The venue closes a live USD-M strategy's position itself (a liquidation, an auto-deleveraging) while it runs.

Binance USD-M reduces a position with an order of its own: client order id ``autoclose-…`` (liquidation) or
``adl_autoclose`` (ADL), order type LIQUIDATION, execution CALCULATED (the emulator's ``liquidation`` fault,
docs/runtime.md "Venue emulator"). The strategy never placed that order. What a trader must see all the same, at
once and not at the next restart: the fill in the ledger under the venue's trade id, the position flat in the status
and in what the strategy holds as its own (the node's cache), the loss in the realized PnL and in the risk guard's
daily PnL; and the next start's reconciliation, which meets the same trade, records it no second time. Open orders
the venue ends first (every one of the account, EXPIRED) end in the node and for the strategy too.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from tests.live.test_usdm_story import PERP, SPEED, WALLET, usdm_spec, usdm_story
from tests.support.live_runtime import Reckoning, live_catalog, resting_grid
from tests.support.scripted import read_events
from tests.support.venue_emulator_process import HMAC_KEYS, scenario, venue_emulator

pytestmark = pytest.mark.slow

CENT = Decimal("0.01")
MASS_STATUS = "Reconciling ExecutionMassStatus"  # NautilusTrader's engine, at INFO


def amount(money: str | None) -> Decimal:
    assert money, "a figure is shown"
    return Decimal(money.split()[0])


def rows_of(events, pid: int, what: str) -> list[dict]:
    """What the strategy of process ``pid`` recorded as its own (``RestingGrid``): its ``start`` (after the start's
    reconciliation) or its ``bar`` rows."""
    rows = read_events(str(events)) if events.exists() else []
    return [r for r in rows if r["pid"] == pid and r["what"] == what]


@contextlib.asynccontextmanager
async def long_position(
    tmp_path, pg_database, events, *, levels: int = 0
) -> AsyncIterator[tuple[Any, Any, Any, dict, Decimal]]:
    """The venue emulator (USD-M) and a live runtime whose ``RestingGrid`` (recording to ``events``) has bought 0.020
    at market, with ``levels`` BUYs resting: the venue, the story, the runtime, the venue's position and a price 10 %
    under its entry (where the venue closes it). Every runtime of the story is killed at the end."""
    catalog = live_catalog(tmp_path / "catalog", PERP)
    venue_scenario = scenario(WALLET, keys=HMAC_KEYS, product="usdm")
    async with venue_emulator(
        tmp_path / "venue", catalog=catalog, instruments=[PERP], scenario=venue_scenario, speed=SPEED
    ) as venue:
        spec = usdm_spec(resting_grid(PERP, str(events), levels=levels, trade_size="0.020"))
        story = usdm_story(tmp_path, venue, pg_database, spec)
        try:
            runtime = story.start(tag="runtime-0")
            await runtime.wait_ready(timeout=90)
            await runtime.wait_until(
                lambda s: (
                    s["trading"]["fills"] == 1 and s["trading"]["positions"] and s["trading"]["openOrders"] == levels
                ),
                what=f"the entry filled and {levels} level(s) resting",
                timeout=90,
            )
            held = (await venue.admin.positions())["positions"]["BTCUSDT"]
            price = (Decimal(held["entry_price"]) * Decimal("0.9")).quantize(Decimal("0.1"))
            yield venue, story, runtime, held, price
        finally:
            story.kill_all()


async def killed_and_started_again(story, runtime, events, *, after_kill=None) -> dict:
    """``kill -9`` of ``runtime``, then a new one: the strategy's ``start`` row (after the start's reconciliation), two
    seconds on; with ``after_kill``, what it answered while no runtime ran (``at_kill``)."""
    runtime.process.send_signal(signal.SIGKILL)
    await runtime.wait_exit()
    at_kill = await after_kill() if after_kill is not None else None
    again = story.start(tag="runtime-1")
    await again.wait_ready(timeout=90)

    async def started() -> list[dict]:
        return rows_of(events, again.process.pid, "start")

    [restarted] = await story.wait_for(started, "the strategy started again", timeout=30)
    await asyncio.sleep(2)
    return {**restarted, "at_kill": at_kill}


@pytest.mark.parametrize(
    ("adl", "executions"),
    [(False, 1), (True, 1), (False, 3), (True, 2)],
    ids=["liquidation", "adl", "liquidation-in-3-executions", "adl-in-2-executions"],
)
async def test_usdm_a_position_the_venue_closes_itself_is_in_the_ledger_the_status_and_the_risk_guard_at_once(
    tmp_path, pg_database, adl, executions
):
    events = tmp_path / "grid.jsonl"
    # It buys 0.020 at market once, and places nothing else.
    async with long_position(tmp_path, pg_database, events, levels=0) as (venue, story, runtime, held, price):

        def bars_of(pid: int) -> list[dict]:
            return rows_of(events, pid, "bar")

        # One execution at ``price``, or several a dollar apart (USD-M "Event: Order Update": PARTIALLY_FILLED
        # then FILLED, each execution its own trade).
        prices = [str(price - i) for i in range(executions)]
        closed = await venue.admin.fault("liquidation", symbol="BTCUSDT", prices=prices, adl=adl)
        trade_ids = [str(t) for t in closed["trade_ids"]]
        seen_before = len(bars_of(runtime.process.pid))
        try:
            state = await runtime.wait_until(
                lambda s: s["trading"]["fills"] == 1 + executions and not s["trading"]["positions"],
                what="the venue's close seen",
                timeout=20,
            )
        except AssertionError:
            state = await runtime.state()  # asserted below, field by field

        async def two_bars_later() -> list[dict]:
            rows = bars_of(runtime.process.pid)
            return rows[seen_before + 1 :]

        own = (await story.wait_for(two_bars_later, "two bars seen by the strategy after the close", timeout=30))[-1]
        await asyncio.sleep(1)
        state = await runtime.state() if not state["trading"]["positions"] else state
        fills = await story.fills()
        trades = await venue.admin.trades(product="usdm")
        # reconciliation meets the venue's trades: recorded once
        restarted = await killed_and_started_again(story, runtime, events)
        after_restart = await story.reckoning()

    realized = sum((Decimal(t["realizedPnl"]) - Decimal(t["commission"]) for t in trades), Decimal(0))
    ours = [f for f in fills if f.trade_id in trade_ids]
    print(
        f"USD-M {'ADL' if adl else 'liquidation'} at {price} of a LONG 0.020 entered at {held['entry_price']}: "
        f"venue realized net {realized}; ledger fills {[(f.trade_id, f.side.value, str(f.quantity)) for f in fills]}; "
        f"status positions {state['trading']['positions']}, realizedPnl {state['trading'].get('realizedPnl')}, "
        f"risk dailyPnl {state['risk'].get('dailyPnl')}; the strategy's own positions open {own['own_positions']} "
        f"(net {own['own_position']}); {after_restart.line('after the restart')}, the restarted strategy's own "
        f"positions open {restarted['own_positions']} (net {restarted['own_position']})"
    )
    assert realized < 0, "the close is a loss"
    step = Decimal("0.001")  # BTCUSDT-PERP's size increment: the emulator splits evenly in steps
    split = [Decimal("0.020") / executions // step * step] * (executions - 1)
    split.append(Decimal("0.020") - sum(split, Decimal(0)))
    assert len(trade_ids) == executions
    assert sorted((f.trade_id, f.side, f.quantity) for f in ours) == sorted(
        zip(trade_ids, ["SELL"] * executions, split, strict=True)
    ), "the venue's fills, each under its trade id, once"
    assert state["trading"]["positions"] == [], "flat, as at the venue"
    assert (own["own_positions"], Decimal(own["own_position"])) == (0, 0), "the strategy holds no position any more"
    assert amount(state["trading"]["realizedPnl"]) == realized.quantize(CENT)
    assert float(amount(state["risk"]["dailyPnl"])) == pytest.approx(float(realized), abs=0.02)
    assert (after_restart.lost, after_restart.unknown, after_restart.duplicated) == ((), (), 0)
    assert (restarted["own_positions"], Decimal(restarted["own_position"])) == (0, 0), "flat after the restart too"


@pytest.mark.parametrize("first_while_running", [False, True], ids=["both-while-down", "the-first-while-running"])
async def test_usdm_two_adls_while_the_runtime_is_down_are_recorded_once_each_at_the_next_start(
    tmp_path, pg_database, first_while_running
):
    """The venue auto-deleverages the position in two steps, the second (or both) while no runtime runs: two orders,
    both ``adl_autoclose`` (USD-M's client order id for every ADL). The next start's reconciliation (``allOrders``,
    ``userTrades``, ``positionRisk``) meets both: each trade is in the ledger once, nothing inferred is left, the
    strategy holds no position once reconciled, the status agrees with the venue."""
    events = tmp_path / "grid.jsonl"
    # It buys 0.020 at market once, and places nothing else.
    async with long_position(tmp_path, pg_database, events, levels=0) as (venue, story, runtime, _held, price):
        if first_while_running:
            first = await venue.admin.fault(
                "liquidation", symbol="BTCUSDT", price=str(price), adl=True, quantity="0.008"
            )
            await runtime.wait_until(lambda s: s["trading"]["fills"] == 2, what="the first ADL seen", timeout=20)
        runtime.process.send_signal(signal.SIGKILL)
        await runtime.wait_exit()

        if not first_while_running:
            first = await venue.admin.fault(
                "liquidation", symbol="BTCUSDT", price=str(price), adl=True, quantity="0.008"
            )
        second = await venue.admin.fault("liquidation", symbol="BTCUSDT", price=str(price - 5), adl=True)
        adl_trades = [str(t) for t in first["trade_ids"] + second["trade_ids"]]
        trades = await venue.admin.trades(product="usdm")
        orders = await venue.admin.orders(product="usdm")

        again = story.start(tag="runtime-1")
        await again.wait_ready(timeout=90)

        async def started() -> list[dict]:
            return rows_of(events, again.process.pid, "start")

        [restarted] = await story.wait_for(started, "the strategy started", timeout=30)
        # Flat once reconciled, the strategy buys again on its next bar: the status is read once that fill is in.
        try:
            await again.wait_until(
                lambda s: s["trading"]["fills"] == len(trades) + 1, what="the new entry recorded", timeout=30
            )
            await asyncio.sleep(1)
            state, waited = await again.state(), ""
        except AssertionError as exc:
            state, waited = None, str(exc)[:400]
        fills = await story.fills()
        reckoning = await story.reckoning()
        at_venue = (await venue.admin.positions())["positions"]["BTCUSDT"]
        every_trade = await venue.admin.trades(product="usdm")

    ours = [f for f in fills if f.trade_id in adl_trades]
    realized = sum((Decimal(t["realizedPnl"]) - Decimal(t["commission"]) for t in every_trade), Decimal(0))
    trading, risk = (state["trading"], state["risk"]) if state else ({}, {})
    print(
        f"USD-M two ADLs, {'the second' if first_while_running else 'both'} while down ({[(o['orderId'], o['clientOrderId']) for o in orders[-2:]]}), trades "
        f"{adl_trades}; ledger fills {[(f.trade_id, f.side.value, str(f.quantity)) for f in fills]}; the restarted "
        f"strategy's own positions open {restarted['own_positions']} (net {restarted['own_position']}); "
        f"{reckoning.line('after the start')}; status after its next entry: positions {trading.get('positions')} "
        f"(venue {at_venue['amount']}), realizedPnl {trading.get('realizedPnl')} (venue net {realized}), "
        f"unrealizedPnl {trading.get('unrealizedPnl')}, risk dailyPnl {risk.get('dailyPnl')} {waited}"
    )
    assert [o["clientOrderId"] for o in orders[-2:]] == ["adl_autoclose", "adl_autoclose"], "two ADL orders, one id"
    assert sorted((f.trade_id, f.side, f.quantity) for f in ours) == sorted(
        zip(adl_trades, ["SELL", "SELL"], [Decimal("0.008"), Decimal("0.012")], strict=True)
    ), "each ADL's trade, once, under its id"
    assert (reckoning.lost, reckoning.unknown, reckoning.duplicated) == ((), (), 0)
    assert (restarted["own_positions"], Decimal(restarted["own_position"])) == (0, 0), "flat once reconciled"
    assert state is not None, waited
    assert trading["fills"] == len(every_trade)
    assert [(p["side"], Decimal(p["quantity"])) for p in trading["positions"]] == [
        ("LONG", Decimal(at_venue["amount"]))
    ]
    assert amount(trading["realizedPnl"]) == realized.quantize(CENT)
    daily = amount(trading["realizedPnl"]) + amount(trading["unrealizedPnl"])
    assert float(amount(risk["dailyPnl"])) == pytest.approx(float(daily), abs=0.02)


async def test_usdm_an_adl_seen_while_running_is_not_told_to_the_strategy_again_after_the_stream_s_resubscription(
    tmp_path, pg_database
):
    """NautilusTrader 1.231's USD-M client asks the venue for a whole mass status after every user-data
    resubscription (``_reconcile_after_resubscribe``: a dropped stream, an expired listen key). The venue lists the ADL
    order there under its own client order id, ``adl_autoclose``, which the node knows as
    ``adl_autoclose-<venue order id>`` (``binance_venue_closes``): unless the mass status names it the same, the engine
    takes it for an order it has never seen, claims it for the strategy and tells the strategy its fill a second time
    (a SELL that never happened, which a strategy could trade on)."""
    events = tmp_path / "grid.jsonl"
    # It buys 0.020 at market once, and places nothing else.
    async with long_position(tmp_path, pg_database, events, levels=0) as (venue, story, runtime, _held, price):
        closed = await venue.admin.fault("liquidation", symbol="BTCUSDT", prices=[str(price)], adl=True)
        [trade_id] = [str(t) for t in closed["trade_ids"]]
        await runtime.wait_until(
            lambda s: s["trading"]["fills"] == 2 and not s["trading"]["positions"], what="the ADL seen", timeout=20
        )
        mass_statuses = runtime.output().count(MASS_STATUS)  # the start's
        await venue.admin.fault("drop_user_stream")

        async def mass_status_after_resubscription() -> bool:
            return runtime.output().count(MASS_STATUS) > mass_statuses

        await story.wait_for(mass_status_after_resubscription, "the mass status after the drop", timeout=60)
        seen = len(rows_of(events, runtime.process.pid, "bar"))

        async def two_bars_later() -> bool:
            return len(rows_of(events, runtime.process.pid, "bar")) >= seen + 2

        await story.wait_for(two_bars_later, "two bars after the mass status", timeout=30)
        fills = await story.fills()
        output = runtime.output()

    told = [(r["order"], r["trade"]) for r in rows_of(events, runtime.process.pid, "filled")]
    adl_fills = [(order, trade) for order, trade in told if order.startswith("adl_autoclose")]
    print(f"the strategy was told of fills {told}; ledger {[f.trade_id for f in fills]}")
    assert "External order adl_autoclose for " not in output, "the ADL order taken for one the node never saw"
    assert adl_fills == [(f"adl_autoclose-{closed['order_id']}", trade_id)], "told of the ADL's fill once"
    assert sorted(f.trade_id for f in fills).count(trade_id) == 1


@pytest.mark.parametrize("adl", [False, True], ids=["liquidation", "adl"])
async def test_usdm_the_orders_the_venue_expires_when_it_closes_a_position_are_ended_everywhere_at_once(
    tmp_path, pg_database, adl
):
    """A grid with two BUYs resting when the venue liquidates (or auto-deleverages) its position: Binance cancels every
    open order of the account first (the emulator sends each as USD-M's EXPIRED, expiry reason 5, "Order has expired
    when the account was liquidated"). The strategy is told each of its orders ended, and holds none of them the
    moment the last one is told; the node's open orders and the status agree with the venue's, before and after the
    grid places its levels again on the next bar; the ledger holds each venue trade once; a restart takes back exactly
    the orders the venue still holds and records no trade twice."""
    events = tmp_path / "grid.jsonl"
    async with long_position(tmp_path, pg_database, events, levels=2) as (venue, story, runtime, _held, price):

        async def grid_at_venue() -> list[str]:
            return sorted(o["clientOrderId"] for o in await venue.admin.open_orders(product="usdm"))

        resting = await grid_at_venue()
        closed = await venue.admin.fault("liquidation", symbol="BTCUSDT", price=str(price), adl=adl)
        expired = sorted(
            o["clientOrderId"]
            for o in await venue.admin.orders(product="usdm")
            if o["status"] == "EXPIRED" and o["clientOrderId"] in resting
        )
        seen_before = len(rows_of(events, runtime.process.pid, "bar"))

        async def told_both_ended() -> list[dict]:
            rows = rows_of(events, runtime.process.pid, "ended")
            return rows if len(rows) >= len(resting) else []

        ended = await story.wait_for(told_both_ended, "the strategy told its orders ended", timeout=20)
        # Flat, and the levels the grid places again on its next bar are the venue's open orders: the same two
        # in the node's count and in what the strategy holds as its own.
        state = await runtime.wait_until(
            lambda s: s["trading"]["fills"] == 2 and not s["trading"]["positions"] and s["trading"]["openOrders"] == 2,
            what="flat, and two levels resting again",
            timeout=30,
        )

        async def two_bars_later() -> list[dict]:
            return rows_of(events, runtime.process.pid, "bar")[seen_before + 2 :]

        own = (await story.wait_for(two_bars_later, "two bars after the close", timeout=30))[-1]
        ended_by_then = rows_of(events, runtime.process.pid, "ended")  # none told twice since, either
        at_venue = await grid_at_venue()
        state = await runtime.state()
        fills_before = await story.fills()
        trades_before = await venue.admin.trades(product="usdm")
        restarted = await killed_and_started_again(story, runtime, events, after_kill=grid_at_venue)
        at_kill = restarted["at_kill"]
        after_restart = await story.reckoning()
        fills_after = await story.fills()

    told = [(r["order"], r["how"]) for r in ended]
    print(
        f"USD-M {'ADL' if adl else 'liquidation'} with {resting} resting: the venue expired {expired}; the strategy "
        f"was told {told}, holding {ended[-1]['own_open']} (position {ended[-1]['own_position']}) at the last; then "
        f"venue open {at_venue}, strategy's own {own['own_open']}, status openOrders {state['trading']['openOrders']} "
        f"positions {state['trading']['positions']}; ledger {[(f.trade_id, f.side.value, str(f.quantity)) for f in fills_before]}; "
        f"restart took back {restarted['own_open']} (venue {at_kill}), {after_restart.line('after the restart')}"
    )
    assert expired == resting, "the venue expired both levels"
    assert sorted(told) == [(order, "expired") for order in resting], "the strategy told each ended, once"
    assert [(r["order"], r["how"]) for r in ended_by_then] == told, "and never again, two bars on"
    assert ended[-1]["own_open"] == [], "none of them still its own once the last is told"
    assert state["trading"]["positions"] == [], "flat, as at the venue"
    assert (own["own_positions"], Decimal(own["own_position"])) == (0, 0)
    assert own["own_open"] == at_venue and not set(at_venue) & set(resting), "its own open orders are the venue's"
    assert state["trading"]["openOrders"] == len(at_venue) == 2
    assert Reckoning.of(trades_before, fills_before) == Reckoning(2, 2, (), (), 0), "each venue trade once"
    assert [str(t) for t in closed["trade_ids"]] == [f.trade_id for f in fills_before if f.side == "SELL"]
    assert restarted["own_open"] == at_kill, "the restart takes back the orders the venue holds, no more"
    assert (restarted["own_positions"], Decimal(restarted["own_position"])) == (0, 0)
    assert (after_restart.lost, after_restart.unknown, after_restart.duplicated) == ((), (), 0)
    before_ids = {f.trade_id for f in fills_before}
    new_ids = [f.trade_id for f in fills_after if f.trade_id not in before_ids]
    last_before = max(int(t["id"]) for t in trades_before)
    assert all(int(i) > last_before for i in new_ids), "nothing recorded again under a new name at the restart"
