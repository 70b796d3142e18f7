"""A live Binance USD-M futures strategy's story, through NautilusTrader's real adapter, against the venue emulator.

As tests/live/test_spot_story.py, on a ``usdtFutures`` account: an HMAC key (the futures client keeps
its listen key over REST), the emulator's USD-M account (a USDT wallet, positions) asked through its
admin API (``?product=usdm``). Every test prints the counts it checked.
"""

from __future__ import annotations

import asyncio
import signal
from decimal import Decimal

import pytest

from tests.support.kube import LIVESTRATEGIES
from tests.support.live_runtime import LiveStory, live_catalog, resting_grid, story_spec
from tests.support.scripted import read_events, scripted_strategy
from tests.support.venue_emulator_process import HMAC_KEYS, scenario, venue_emulator

pytestmark = pytest.mark.slow

PERP = "BTCUSDT-PERP.BINANCE"
SPEED = 120
WALLET = {"USDT": "1000000"}
HALT_RECORD = {"reason": "ScaledToZero", "message": "spec.replicas is 0", "since": "2026-12-06T07:00:00Z"}


def usdm_spec(strategy, **overrides):
    spec = story_spec(strategy, PERP, **overrides)
    spec["venue"] = spec["venue"] | {"accountType": "usdtFutures"}
    return spec


def usdm_story(tmp_path, venue, dsn, spec, **fields) -> LiveStory:
    return LiveStory.of(tmp_path, venue, dsn, spec, keys=HMAC_KEYS, product="usdm", **fields)


async def test_usdm_a_position_and_an_order_at_the_venue_before_start_are_reconciled_and_recorded_once(
    tmp_path, pg_database
):
    catalog = live_catalog(tmp_path / "catalog", PERP)
    held = {"symbol": "BTCUSDT", "side": "SELL", "quantity": "0.01", "price": "84000.0", "client_order_id": "held-ask"}
    venue_scenario = scenario(
        WALLET,
        keys=HMAC_KEYS,
        product="usdm",
        usdm_positions=[{"symbol": "BTCUSDT", "amount": "0.05", "entry_price": "42000"}],
        usdm_open_orders=[held],
    )
    async with venue_emulator(
        tmp_path / "venue", catalog=catalog, instruments=[PERP], scenario=venue_scenario, speed=SPEED
    ) as venue:
        steps = [{"bar": 1, "do": "limit", "side": "BUY", "quantity": "0.001", "offset": -0.5, "tag": "own"}]
        story = usdm_story(
            tmp_path,
            venue,
            pg_database,
            usdm_spec(scripted_strategy(str(tmp_path / "events.jsonl"), PERP, steps=steps)),
        )
        try:
            for attempt in range(3):  # every start reconciles the same venue: the position is recorded once
                runtime = story.start(tag=f"runtime-{attempt}")
                await runtime.wait_ready(timeout=90)
                state = await runtime.wait_until(
                    lambda s: s["trading"]["openOrders"] >= 1 and s["trading"]["positions"],
                    what="the venue's open order and position reconciled",
                )
                await asyncio.sleep(1)
                fills = await story.fills()
                positions = await venue.admin.positions()
                print(
                    f"USD-M start {attempt + 1}: venue position {positions['positions']}, runtime positions "
                    f"{[(p['side'], p['quantity']) for p in state['trading']['positions']]}, open orders "
                    f"{state['trading']['openOrders']}; ledger fills {[(f.trade_id, str(f.quantity)) for f in fills]}"
                )
                assert [(p["side"], p["quantity"]) for p in state["trading"]["positions"]] == [("LONG", "0.050")]
                assert len(fills) == 1 and fills[0].trade_id.startswith("INFERRED-"), "recorded once, marked"
                runtime.process.send_signal(signal.SIGKILL)
                await runtime.wait_exit()
        finally:
            story.kill_all()


@pytest.mark.parametrize("policy", ["cancelOrders", "flatten"])
async def test_usdm_a_halt_leaves_no_order_open_at_the_venue_and_flatten_a_flat_position(
    tmp_path, pg_database, emulator, kubeconfig_path, policy
):
    catalog = live_catalog(tmp_path / "catalog", PERP)
    events = tmp_path / "events.jsonl"
    steps = [
        {"bar": 2, "do": "market", "side": "BUY", "quantity": "0.02", "tag": "entry"},
        {"bar": 2, "do": "limit", "side": "BUY", "quantity": "0.01", "offset": -0.2, "count": 3, "tag": "resting"},
    ]
    venue_scenario = scenario(WALLET, keys=HMAC_KEYS, product="usdm")
    async with venue_emulator(
        tmp_path / "venue", catalog=catalog, instruments=[PERP], scenario=venue_scenario, speed=SPEED
    ) as venue:
        spec = usdm_spec(scripted_strategy(str(events), PERP, steps=steps), haltPolicy=policy)
        story = usdm_story(tmp_path, venue, pg_database, spec, name="halted", report_status=True)
        story.publish(emulator, spec)
        namespace = story.config.strategy.namespace
        try:
            runtime = story.start(env={"KUBECONFIG": str(kubeconfig_path)})
            await runtime.wait_ready(timeout=90)
            await runtime.wait_until(
                lambda s: s["trading"]["openOrders"] == 3 and s["trading"]["fills"] == 1, what="entry and resting"
            )
            before_open = await venue.admin.open_orders(product="usdm")
            before = await venue.admin.positions()
            emulator.patch_object(
                LIVESTRATEGIES, "halted", {"status": {"halt": HALT_RECORD}}, namespace=namespace, subresource="status"
            )
            runtime.signal(signal.SIGTERM)
            code, _ = await runtime.wait_exit(timeout=story.config.halt_budget_seconds + 10)
            after_open = await venue.admin.open_orders(product="usdm")
            after = await venue.admin.positions()
            reckoning = await story.reckoning()
        finally:
            story.kill_all()
    amount = {s: Decimal(p["amount"]) for s, p in after["positions"].items()}
    print(
        f"USD-M halt {policy}: open at the venue before {len(before_open)}, after {len(after_open)}; position before "
        f"{before['positions']}, after {after['positions']}; {reckoning.line('halt')}"
    )
    assert code == 0, runtime.output()[-3000:]
    assert len(before_open) == 3 and after_open == []
    if policy == "flatten":
        assert all(q == 0 for q in amount.values()), "flat at the venue"
    else:
        assert after["positions"] == before["positions"], "cancel only: the position stays"
        assert any(q != 0 for q in amount.values())
    assert (reckoning.lost, reckoning.unknown, reckoning.duplicated) == ((), (), 0)


async def test_usdm_a_halt_after_a_restart_flattens_the_position_the_strategy_opened_before_it(
    tmp_path, pg_database, emulator, kubeconfig_path
):
    """A strategy opens a position, is killed (``kill -9``) and started again, then halted under ``flatten``: the
    position reconciled at the restart is the strategy's (it claims its instruments), so the halt closes it through
    it. Reconciled as strategy EXTERNAL's, it belonged to no running strategy and could not be closed."""
    catalog = live_catalog(tmp_path / "catalog", PERP)
    events = tmp_path / "grid.jsonl"
    venue_scenario = scenario(WALLET, keys=HMAC_KEYS, product="usdm")
    async with venue_emulator(
        tmp_path / "venue", catalog=catalog, instruments=[PERP], scenario=venue_scenario, speed=SPEED
    ) as venue:
        spec = usdm_spec(resting_grid(PERP, str(events), levels=1), haltPolicy="flatten")
        story = usdm_story(tmp_path, venue, pg_database, spec, name="halted", report_status=True)
        story.publish(emulator, spec)
        env = {"KUBECONFIG": str(kubeconfig_path)}

        def bars_of(pid: int) -> list[dict]:
            rows = read_events(str(events)) if events.exists() else []
            return [r for r in rows if r["pid"] == pid and r["what"] == "bar"]

        try:
            first = story.start(tag="runtime-0", env=env)
            await first.wait_ready(timeout=90)

            async def opened() -> bool:
                seen = bars_of(first.process.pid)
                return bool(seen and Decimal(seen[-1]["own_position"]) and len(seen[-1]["own_open"]) == 1)

            await story.wait_for(opened, "the position opened and one order resting", timeout=90)
            first.process.send_signal(signal.SIGKILL)
            await first.wait_exit()
            before = await venue.admin.positions()

            second = story.start(tag="runtime-1", env=env)
            await second.wait_ready(timeout=90)

            async def trading() -> bool:
                return len(bars_of(second.process.pid)) >= 2

            await story.wait_for(trading, "two bars seen by the restarted strategy", timeout=90)
            emulator.patch_object(
                LIVESTRATEGIES,
                "halted",
                {"status": {"halt": HALT_RECORD}},
                namespace=story.config.strategy.namespace,
                subresource="status",
            )
            second.signal(signal.SIGTERM)
            code, _ = await second.wait_exit(timeout=story.config.halt_budget_seconds + 10)
            after = await venue.admin.positions()
            after_open = await venue.admin.open_orders(product="usdm")
        finally:
            story.kill_all()
    amount = {s: Decimal(p["amount"]) for s, p in after["positions"].items()}
    print(
        f"USD-M halt after a restart: position before the restart {before['positions']}, after the halt "
        f"{after['positions']}; open at the venue after {len(after_open)}; exit {code}"
    )
    assert any(Decimal(p["amount"]) for p in before["positions"].values()), "a position to flatten"
    assert code == 0, second.output()[-3000:]
    assert all(q == 0 for q in amount.values()), "flat at the venue"
    assert after_open == []
