"""The replay data client: every event of the catalog once, in time order, paced, in lockstep with the node."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from strategy_runtime.node import build_node
from strategy_runtime.paper.catalog import prepare_catalog
from strategy_runtime.paper.replay import REPLAY_FINISHED_TOPIC, ReplayFinished, ReplayPacer
from tests.support.runtime import paper_manifest, replay_to_end, runtime_config

MINUTE_NS = 60_000_000_000


class FakeClock:
    """Wall time that moves only when the replay sleeps: pacing is checked by what it asks for, not by timing."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def test_the_pacer_keeps_market_time_speed_times_faster_than_wall_time():
    clock = FakeClock()
    pacer = ReplayPacer(speed=60, now=clock.time)
    assert pacer.delay(0) == 0.0  # the first event sets the origin
    assert pacer.delay(MINUTE_NS) == pytest.approx(1.0)
    clock.now += 1.0
    assert pacer.delay(2 * MINUTE_NS) == pytest.approx(1.0)
    # Late by 5 s (a slow event): no wait, and the schedule does not slip
    clock.now += 6.0
    assert pacer.delay(3 * MINUTE_NS) == 0.0
    assert pacer.delay(10 * MINUTE_NS) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        ReplayPacer(speed=0)


@pytest.fixture
def small_catalog(tmp_path):
    def make(bars=100, replay=None):
        config = runtime_config(paper_manifest(bars=bars, replay=replay), tmp_path / "catalog")
        return config, prepare_catalog(config)

    return make


async def test_a_paced_replay_waits_between_events_by_their_market_time_gap(small_catalog):
    config, catalog = small_catalog(bars=100, replay={"speed": 600})
    node = build_node(config, catalog=catalog)
    clock = FakeClock()
    node.replay.now, node.replay.sleep = clock.time, clock.sleep
    try:
        await replay_to_end(node)
    finally:
        node.dispose()
    # One-minute bars at 600x: 0.1 s of wall time between consecutive bars, none before the first.
    assert clock.sleeps == pytest.approx([0.1] * 99)
    assert node.replay.progress.events == 100


async def test_an_unpaced_replay_never_sleeps(small_catalog):
    config, catalog = small_catalog(bars=100, replay={"speed": 0})
    node = build_node(config, catalog=catalog)
    clock = FakeClock()
    node.replay.sleep = clock.sleep
    try:
        await replay_to_end(node)
    finally:
        node.dispose()
    assert clock.sleeps == []


async def test_progress_counts_each_event_as_the_node_processes_it(small_catalog):
    config, catalog = small_catalog(bars=100)
    node = build_node(config, catalog=catalog)
    seen: list[tuple[int, int]] = []
    finished: list[ReplayFinished] = []
    node.kernel.msgbus.subscribe("data.bars.*", lambda bar: seen.append((bar.ts_init, node.replay.progress.events)))
    node.kernel.msgbus.subscribe(REPLAY_FINISHED_TOPIC, finished.append)
    assert node.replay.progress.total is None and not node.replay.progress.finished
    try:
        await replay_to_end(node)
    finally:
        node.dispose()
    # Lockstep: bar i is processed before bar i+1 is handed over, so progress says exactly i+1.
    assert [events for _, events in seen] == list(range(1, 101))
    assert [ts for ts, _ in seen] == sorted(ts for ts, _ in seen)
    progress = node.replay.progress
    assert (progress.events, progress.total, progress.finished, progress.fraction) == (100, 100, True, 1.0)
    assert progress.market_time_ns == seen[-1][0]
    assert node.replay.finished.is_set()
    assert len(finished) == 1 and finished[0].events == 100 and not finished[0].stopped_early


async def test_the_replay_window_is_honoured(small_catalog):
    start, end = "2024-01-01T00:11:00Z", "2024-01-01T00:30:00Z"  # bars 11..30 close in this window
    config, catalog = small_catalog(bars=100, replay={"speed": 0, "start": start, "end": end})
    node = build_node(config, catalog=catalog)
    seen: list[int] = []
    node.kernel.msgbus.subscribe("data.bars.*", lambda bar: seen.append(bar.ts_init))
    try:
        await replay_to_end(node)
    finally:
        node.dispose()
    assert len(seen) == 20 == node.replay.progress.total
    assert seen[0] == pd.Timestamp(start).value and seen[-1] == pd.Timestamp(end).value


async def test_quotes_and_trades_are_interleaved_with_bars_in_time_order(small_catalog):
    config, catalog = small_catalog(bars=100, replay={"speed": 0, "dataTypes": ["bars", "quotes", "trades"]})
    node = build_node(config, catalog=catalog)
    seen: list[tuple[str, int]] = []
    for kind in ("bars", "quotes", "trades"):
        node.kernel.msgbus.subscribe(f"data.{kind}.*", lambda d, kind=kind: seen.append((kind, d.ts_init)))
    try:
        await replay_to_end(node)
    finally:
        node.dispose()
    assert node.replay.progress.total == 100 * 9
    assert [k for k, _ in seen].count("quotes") == [k for k, _ in seen].count("trades") == 400
    assert [ts for _, ts in seen] == sorted(ts for _, ts in seen)
    assert seen[-1][0] == "bars"
    # The simulated exchange trades on trades when trades are replayed (as the backtest would).
    assert node.config.spec.venue.name == "BINANCE"
    assert node.sandbox is not None


async def test_stopping_the_replay_hands_over_nothing_more(small_catalog):
    config, catalog = small_catalog(bars=100)
    node = build_node(config, catalog=catalog)
    seen: list[int] = []
    finished: list[ReplayFinished] = []

    def on_bar(bar):
        seen.append(bar.ts_init)
        if len(seen) == 10:
            node.replay.stop_replay()

    node.kernel.msgbus.subscribe("data.bars.*", on_bar)
    node.kernel.msgbus.subscribe(REPLAY_FINISHED_TOPIC, finished.append)
    try:
        await replay_to_end(node)
    finally:
        node.dispose()
    assert len(seen) == 10
    assert node.replay.progress.events == 10 and node.replay.progress.total == 100
    assert finished[0].stopped_early


async def test_history_requests_are_answered_from_the_catalog_but_never_from_the_future(small_catalog):
    config, catalog = small_catalog(bars=100)
    node = build_node(config, catalog=catalog)
    strategy = node.strategy
    answers: list[list[int]] = []

    seen15 = []

    def on_bar(bar):
        if len(answers) == 0 and node.replay.progress.events == 15:
            seen15.append(bar.ts_init)
            strategy.request_bars(
                bar.bar_type,
                start=pd.Timestamp("2024-01-01T00:00:00Z"),
                callback=lambda _: answers.append([b.ts_init for b in node.kernel.cache.bars(bar.bar_type)]),
            )

    node.kernel.msgbus.subscribe("data.bars.*", on_bar)
    try:
        await replay_to_end(node)
    finally:
        node.dispose()
    assert node.replay.progress.events == 100
    # After the answer the cache holds the 15 bars seen so far, none from later in the catalog.
    # (NautilusTrader 1.231's cache keeps a bar the replay delivered and the same bar from the
    # history answer side by side: 15 distinct bars, each twice.)
    assert len(answers) == 1
    assert max(answers[0]) == seen15[0] and sorted(set(answers[0])) == sorted(answers[0])[::2]
    assert len(set(answers[0])) == 15


def test_a_timer_named_after_a_client_order_id_is_ordered_by_the_market_time_it_was_set():
    from strategy_runtime.paper.market_clocks import backtest_name

    set_at = 1_704_067_260_000_000_000  # 2024-01-01T00:01:00Z
    # the paper node's id carries the wall clock's time; the backtest's the market time
    assert backtest_name("O-20261206-081000-001-000-9", set_at) == "O-20240101-000100-001-000-9"
    assert backtest_name("my-timer", set_at) == "my-timer"
