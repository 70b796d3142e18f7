"""A live Binance spot strategy's whole story, through NautilusTrader's real adapter, against the venue emulator.

Each test runs real ``livestrat runtime`` processes (the pod's entrypoint, pointed at the emulator by
``LIVESTRAT_VENUE_ENDPOINTS``, nothing else changed), the emulator as a process (Binance's protocol,
fed by a catalog, its own record asked through its admin API) and a real PostgreSQL ledger. What
each checks is asked of the venue, not of the runtime: its trades against the ledger's fills, the
orders it still holds. Every test prints the counts it checked.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from strategy_runtime.slippage import slippage_bps
from tests.support.live_runtime import SPOT, LiveStory, Reckoning, ladder, live_catalog, story_spec
from tests.support.scripted import scripted_strategy
from tests.support.secrets import fragments
from tests.support.venue_emulator_process import HMAC_KEYS, scenario, venue_emulator

pytestmark = pytest.mark.slow

SPEED = 120  # two one-minute bars a wall second
BALANCES = {"USDT": "1000000", "BTC": "100"}


async def settled(story: LiveStory, what: str, timeout: float = 60) -> Reckoning:
    """The venue's trades and the ledger's fills once the ledger has caught up with the venue (nothing lost)."""

    async def caught_up() -> Reckoning | None:
        reckoning = await story.reckoning()
        return reckoning if not reckoning.lost else None

    try:
        return await story.wait_for(caught_up, what, timeout=timeout, interval=0.5)
    except AssertionError:
        reckoning = await story.reckoning()
        raise AssertionError(f"{reckoning.line(what)}; lost {reckoning.lost[:10]}") from None


async def test_an_order_and_a_fill_at_the_venue_before_start_are_reconciled_and_recorded_once(tmp_path, pg_database):
    catalog = live_catalog(tmp_path / "catalog")
    held = [
        # Rests far above the market: open at the venue when the runtime starts, and still after.
        {"symbol": "BTCUSDT", "side": "SELL", "quantity": "0.01", "price": "84000.00", "client_order_id": "held-ask"},
        # Crosses the first book the feed makes: filled at the venue before the runtime connects.
        {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.02", "price": "84000.00", "client_order_id": "held-bid"},
    ]
    venue_scenario = scenario({"USDT": "100000", "BTC": "0.5"}, open_orders=held)
    async with venue_emulator(
        tmp_path / "venue", catalog=catalog, instruments=[SPOT], scenario=venue_scenario, speed=SPEED
    ) as venue:
        await asyncio.sleep(1)  # the feed's first bar fills held-bid while no client is connected
        assert len(await venue.admin.trades()) == 1
        steps = [{"bar": 1, "do": "limit", "side": "BUY", "quantity": "0.001", "offset": -0.5, "tag": "own"}]
        story = LiveStory.of(
            tmp_path, venue, pg_database, story_spec(scripted_strategy(str(tmp_path / "events.jsonl"), steps=steps))
        )
        try:
            for attempt in range(2):  # the second start reconciles the same venue again: nothing new, nothing twice
                runtime = story.start(tag=f"runtime-{attempt}")
                await runtime.wait_ready(timeout=90)
                state = await runtime.wait_until(
                    lambda s: s["trading"]["openOrders"] >= 1 and s["trading"]["fills"] >= 1,
                    what="the venue's open order and fill reconciled",
                )
                reckoning = await settled(story, "reconciled at start")
                venue_open = await venue.admin.open_orders()
                print(
                    f"{reckoning.line(f'start {attempt + 1}')}; open at the venue {len(venue_open)}, "
                    f"open in the runtime {state['trading']['openOrders']}"
                )
                assert (reckoning.at_venue, reckoning.in_ledger, reckoning.duplicated) == (1, 1, 0)
                assert not reckoning.unknown, "the fill is recorded under the venue's trade id"
                # This run sent one order (its own resting bid); the fill made before it started is not one of
                # this run's orders: no order filled, no arrival price, so no slippage to show.
                sent = await runtime.wait_until(
                    lambda s: s["trading"].get("ordersSubmitted") == 1, what="its own order sent"
                )
                assert sent["trading"]["ordersFilled"] == 0 and sent["trading"]["slippageBps"] is None, sent["trading"]
                held_ask = [o for o in venue_open if o["clientOrderId"] == "held-ask"]
                assert len(held_ask) == 1
                runtime.process.send_signal(signal.SIGKILL)  # a crash: nothing cancelled
                await runtime.wait_exit()
        finally:
            story.kill_all()


@dataclass(frozen=True)
class Stopped:
    """A runtime stopped (SIGTERM) after a fault: the venue's open orders before and after, every order it was sent."""

    at_venue: int
    code: int
    left: list[dict[str, Any]]
    placed: list[dict[str, Any]]
    output: str


async def stopped_after(tmp_path, pg_database, fault: Callable[[Any], Awaitable[None]]) -> Stopped:
    """A ladder that never fills trades at the venue; ``fault(venue)``; 3 s later, a stop (no halt)."""
    catalog = live_catalog(tmp_path / "catalog")
    async with venue_emulator(
        tmp_path / "venue", catalog=catalog, instruments=[SPOT], scenario=scenario(BALANCES), speed=SPEED
    ) as venue:
        story = LiveStory.of(tmp_path, venue, pg_database, story_spec(ladder(distance="0.05")))  # nothing fills
        try:
            runtime = story.start()
            await runtime.wait_ready(timeout=90)
            await fault(venue)
            await asyncio.sleep(3)
            at_venue = len(await venue.admin.open_orders())
            runtime.signal(signal.SIGTERM)
            code, _ = await runtime.wait_exit(timeout=60)
            left = await venue.admin.open_orders()
            placed = await venue.admin.orders()
        finally:
            story.kill_all()
    return Stopped(at_venue, code, left, placed, runtime.output())


async def test_orders_placed_although_the_venue_answered_5xx_are_cancelled_by_the_stop(tmp_path, pg_database):
    # Binance: a 5xx leaves an order's status unknown (rest-api.md "HTTP Return Codes"). NautilusTrader marks it
    # rejected; the venue holds it open. A stop must not leave it there.
    async def answer_5xx(venue: Any) -> None:
        await venue.admin.fault("http_error", path="/api/v3/order", count=2, status=503, executed=True)

    stopped = await stopped_after(tmp_path, pg_database, answer_5xx)
    left, code = stopped.left, stopped.code
    print(f"5xx x2 (executed): open at the venue before the stop {stopped.at_venue}, after {len(left)}; exit {code}")
    assert left == [], f"left open at the venue: {[o['clientOrderId'] for o in left]} (exit {code})"
    assert code == 0


async def test_a_stop_while_the_user_stream_is_silent_asks_the_venue_and_leaves_nothing_open(tmp_path, pg_database):
    # The WebSocket API connection partitioned (web-socket-api.md: cut only after a minute without pongs): orders
    # still go by REST and the venue places and cancels them, but no event comes back. The node's orders stay
    # SUBMITTED / PENDING_CANCEL; the stop must find out from the venue what it holds, cancel that, and not call
    # "left open" what the venue does not hold open.
    async def silence(venue: Any) -> None:
        await asyncio.sleep(2)
        await venue.admin.fault("silence_user_stream", seconds=120)

    stopped = await stopped_after(tmp_path, pg_database, silence)
    left, code, output = stopped.left, stopped.code, stopped.output
    print(
        f"user stream silent: orders placed {len(stopped.placed)}, open at the venue before the stop "
        f"{stopped.at_venue}, after {len(left)}; exit {code}"
    )
    assert left == [], f"left open at the venue: {[o['clientOrderId'] for o in left]} (exit {code})"
    assert code == 0, output[-3000:]
    assert "not open at the venue" in output


HALT_RECORD = {"reason": "ScaledToZero", "message": "spec.replicas is 0", "since": "2026-12-06T07:00:00Z"}


@pytest.mark.parametrize("policy", ["cancelOrders", "flatten"])
async def test_a_halt_leaves_no_order_open_at_the_venue_and_flatten_a_flat_position(
    tmp_path, pg_database, emulator, kubeconfig_path, policy
):
    from tests.support.kube import LIVESTRATEGIES

    catalog = live_catalog(tmp_path / "catalog")
    events = tmp_path / "events.jsonl"
    steps = [
        {"bar": 2, "do": "market", "side": "BUY", "quantity": "0.02", "tag": "entry"},
        {"bar": 2, "do": "limit", "side": "BUY", "quantity": "0.01", "offset": -0.2, "count": 3, "tag": "resting"},
    ]
    async with venue_emulator(
        tmp_path / "venue", catalog=catalog, instruments=[SPOT], scenario=scenario(BALANCES), speed=SPEED
    ) as venue:
        spec = story_spec(scripted_strategy(str(events), steps=steps), haltPolicy=policy)
        story = LiveStory.of(tmp_path, venue, pg_database, spec, name="halted", report_status=True)
        story.publish(emulator, spec)
        namespace = story.config.strategy.namespace
        try:
            runtime = story.start(env={"KUBECONFIG": str(kubeconfig_path)})
            await runtime.wait_ready(timeout=90)
            entered = await runtime.wait_until(
                lambda s: s["trading"]["openOrders"] == 3 and s["trading"]["fills"] == 1, what="entry and resting"
            )
            entry_fills = await story.fills()
            before = await venue.admin.open_orders()
            balances_before = await venue.admin.balances()
            emulator.patch_object(
                LIVESTRATEGIES, "halted", {"status": {"halt": HALT_RECORD}}, namespace=namespace, subresource="status"
            )
            runtime.signal(signal.SIGTERM)
            code, _ = await runtime.wait_exit(timeout=story.config.halt_budget_seconds + 10)
            after = await venue.admin.open_orders()
            balances = await venue.admin.balances()
            reckoning = await story.reckoning()
        finally:
            story.kill_all()
    print(
        f"halt {policy}: open at the venue before {len(before)}, after {len(after)}; BTC before "
        f"{balances_before['BTC']}, after {balances['BTC']}; {reckoning.line('halt')}"
    )
    assert code == 0, runtime.output()[-3000:]
    assert after == []
    if policy == "flatten":
        assert balances["BTC"]["free"] == BALANCES["BTC"] + ".00000000", "the position bought is sold back"
    else:
        assert balances["BTC"] == balances_before["BTC"], "cancel only: the position stays"
    assert (reckoning.lost, reckoning.unknown, reckoning.duplicated) == ((), (), 0)
    # Four orders sent, the entry filled: its slippage against the market it met, as the ledger's row recomputes it.
    assert (entered["trading"]["ordersSubmitted"], entered["trading"]["ordersFilled"]) == (4, 1), entered["trading"]
    assert len(entry_fills) == 1 and entry_fills[0].arrival_price is not None
    assert entered["trading"]["slippageBps"] == f"{slippage_bps(entry_fills):f}"


async def test_an_hmac_key_on_a_spot_account_stops_the_runtime_at_once_saying_binance_wants_ed25519(
    tmp_path, pg_database
):
    # Valid keys of the wrong type: Binance's spot WebSocket API refuses session.logon to an HMAC key, and
    # NautilusTrader's spot client never connects. The reason must say so (not "check the key"), and come
    # from the failed connect itself, not from the start's timeouts running out.
    catalog = live_catalog(tmp_path / "catalog")
    venue_scenario = scenario(BALANCES, keys=HMAC_KEYS)
    async with venue_emulator(
        tmp_path / "venue", catalog=catalog, instruments=[SPOT], scenario=venue_scenario, speed=SPEED
    ) as venue:
        story = LiveStory.of(tmp_path, venue, pg_database, story_spec(ladder()), keys=HMAC_KEYS)
        try:
            runtime = story.start()
            code, _ = await runtime.wait_exit(timeout=120)
        finally:
            story.kill_all()
        output = runtime.output() + venue.output()
    reason = next(line for line in output.splitlines() if "runtime: exiting with code" in line)
    print(f"hmac key on spot: exit {code}; {reason}")
    assert code != 0
    assert "could not connect" in reason and "not an Ed25519 private key" in reason
    assert "was not running after" not in reason, "the failed connect is the reason, not a timeout"
    assert not any(piece in output for piece in fragments(HMAC_KEYS.api_secret, 12))
