"""The market feed: the catalog's bars, quotes and trades in time order, restamped onto the wall clock, paced."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pandas as pd
import pytest
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from livestrat.venue_emulator.events import BookTop, Candle, MarketEvent, Print
from livestrat.venue_emulator.feed import MarketFeed
from tests.support.catalogs import write_price_path
from tests.venue_emulator.conftest import PERP, SPOT, START

ORIGIN_MS = 1_900_000_000_000
MINUTE_MS = 60_000


class FakeClock:
    """Wall time in milliseconds that moves only when the feed sleeps: pacing is read from what it asks for."""

    def __init__(self, now_ms: int = ORIGIN_MS) -> None:
        self.now = now_ms
        self.sleeps: list[float] = []

    def now_ms(self) -> int:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += round(seconds * 1000)
        await asyncio.sleep(0)


class Recorder:
    def __init__(self) -> None:
        self.events: list[MarketEvent] = []

    def on_market(self, event: MarketEvent) -> None:
        self.events.append(event)


async def run_feed(catalog, ids=(SPOT, PERP), speed=60.0, **kwargs) -> tuple[MarketFeed, Recorder, FakeClock]:
    clock = FakeClock()
    feed = MarketFeed(
        catalog, list(ids), speed=speed, origin_ms=ORIGIN_MS, now_ms=clock.now_ms, sleep=clock.sleep, **kwargs
    )
    recorder = Recorder()
    feed.listen(recorder)
    await asyncio.wait_for(feed.run(), timeout=60)
    assert feed.done.is_set()
    return feed, recorder, clock


def catalog_ns(catalog, instrument_id):
    c = ParquetDataCatalog(str(catalog))
    return (
        c.bars(instrument_ids=[instrument_id]),
        c.quote_ticks(instrument_ids=[instrument_id]),
        c.trade_ticks(instrument_ids=[instrument_id]),
    )


async def test_every_bar_quote_and_trade_once_in_time_order_each_named_by_product(sample_catalog):
    _, recorder, _ = await run_feed(sample_catalog)
    events = recorder.events
    assert [e.ts_ms for e in events] == sorted(e.ts_ms for e in events)
    for instrument_id, product in ((SPOT, "spot"), (PERP, "usdm")):
        bars, quotes, trades = catalog_ns(sample_catalog, instrument_id)
        mine = [e for e in events if e.product == product]
        assert all(e.symbol == "BTCUSDT" for e in mine)
        candles = [e for e in mine if isinstance(e, Candle)]
        tops = [e for e in mine if isinstance(e, BookTop)]
        prints = [e for e in mine if isinstance(e, Print)]
        assert [(c.open, c.high, c.low, c.close, c.volume) for c in candles] == [
            (b.open.as_decimal(), b.high.as_decimal(), b.low.as_decimal(), b.close.as_decimal(), b.volume.as_decimal())
            for b in bars
        ]
        assert all(c.closed and c.interval == "1m" for c in candles)
        assert [(t.bid, t.ask, t.bid_qty, t.ask_qty) for t in tops] == [
            (q.bid_price.as_decimal(), q.ask_price.as_decimal(), q.bid_size.as_decimal(), q.ask_size.as_decimal())
            for q in quotes
        ]
        assert [(p.price, p.qty, p.buyer_is_maker) for p in prints] == [
            (t.price.as_decimal(), t.size.as_decimal(), t.aggressor_side.name == "SELLER") for t in trades
        ]
        assert [p.trade_id for p in prints] == list(range(1, len(prints) + 1))


async def test_times_are_restamped_onto_the_wall_clock_at_the_speed(sample_catalog):
    _, recorder, clock = await run_feed(sample_catalog, speed=60.0)
    bars, quotes, _ = catalog_ns(sample_catalog, SPOT)
    t0 = quotes[0].ts_init  # the catalog's first event (a quote 12 s into the first minute)
    spot_candles = [e for e in recorder.events if isinstance(e, Candle) and e.product == "spot"]
    for bar, candle in zip(bars, spot_candles, strict=True):
        close_ms = ORIGIN_MS + (bar.ts_event - t0) // 60 // 1_000_000
        assert candle.close_ms == close_ms - 1  # Binance's T: the interval's last millisecond
        assert candle.open_ms == close_ms - MINUTE_MS // 60  # one minute of market time is one second here
        assert candle.ts_ms == close_ms
    first_top = next(e for e in recorder.events if isinstance(e, BookTop))
    assert first_top.ts_ms == ORIGIN_MS
    # The feed sleeps until each event's wall time and never ahead of it: the clock ends at the last event's time.
    assert clock.now == recorder.events[-1].ts_ms
    assert all(s >= 0 for s in clock.sleeps)


async def test_speed_scales_the_wall_time_the_feed_takes(sample_catalog):
    _, fast, fast_clock = await run_feed(sample_catalog, speed=600.0)
    _, slow, slow_clock = await run_feed(sample_catalog, speed=60.0)
    assert slow_clock.now - ORIGIN_MS == pytest.approx(10 * (fast_clock.now - ORIGIN_MS), abs=10)
    assert len(fast.events) == len(slow.events)


async def test_two_feeds_over_one_catalog_emit_the_same_sequence(sample_catalog):
    _, first, _ = await run_feed(sample_catalog)
    _, second, _ = await run_feed(sample_catalog)
    assert first.events == second.events
    assert len(first.events) == 2 * (30 + 120 + 120)


async def test_a_late_feed_catches_up_without_sleeping_and_keeps_the_stamps(sample_catalog):
    clock = FakeClock(now_ms=ORIGIN_MS + 10 * MINUTE_MS)  # started ten wall minutes after its origin
    feed = MarketFeed(sample_catalog, [SPOT], speed=60.0, origin_ms=ORIGIN_MS, now_ms=clock.now_ms, sleep=clock.sleep)
    recorder = Recorder()
    feed.listen(recorder)
    await feed.run()
    assert all(s == 0 for s in clock.sleeps)
    assert recorder.events[0].ts_ms == ORIGIN_MS


async def test_bars_only_give_a_book_top_at_each_close_and_history_serves_closed_candles(tmp_path):
    closes = [40_000.0 + 10 * i for i in range(20)]
    catalog = write_price_path(tmp_path / "bars", closes)
    # The live part starts half a minute after the tenth bar's close: the first ten bars are history.
    start = pd.Timestamp(START).value + 10 * 60_000_000_000 + 30_000_000_000
    clock = FakeClock()
    feed = MarketFeed(
        catalog, [SPOT], speed=60.0, start=start, origin_ms=ORIGIN_MS, now_ms=clock.now_ms, sleep=clock.sleep
    )
    recorder = Recorder()
    feed.listen(recorder)

    before = feed.history("spot", "BTCUSDT", "1m", start_ms=None, end_ms=None, limit=500)
    assert [c.close for c in before] == [Decimal(str(c)) for c in closes[:10]]
    assert all(c.close_ms < ORIGIN_MS for c in before)

    await feed.run()
    tops = [e for e in recorder.events if isinstance(e, BookTop)]
    candles = [e for e in recorder.events if isinstance(e, Candle)]
    assert [c.close for c in candles] == [Decimal(str(c)) for c in closes[10:]]
    assert [(t.bid, t.ask, t.ts_ms) for t in tops] == [(c.close, c.close, c.ts_ms) for c in candles]
    # Each bar's book top comes before its candle: matching has the price when the kline is sent.
    assert all(
        isinstance(a, BookTop) and isinstance(b, Candle)
        for a, b in zip(recorder.events[::2], recorder.events[1::2], strict=True)
    )

    after = feed.history("spot", "BTCUSDT", "1m", start_ms=None, end_ms=None, limit=500)
    assert [c.close for c in after] == [Decimal(str(c)) for c in closes]
    last_five = feed.history("spot", "BTCUSDT", "1m", start_ms=None, end_ms=None, limit=5)
    assert last_five == after[-5:]  # Binance: without startTime/endTime, the most recent klines
    window = feed.history("spot", "BTCUSDT", "1m", start_ms=after[3].open_ms, end_ms=after[6].open_ms, limit=500)
    assert window == after[3:7]  # startTime and endTime both inclusive, on the open time
    assert feed.history("usdm", "BTCUSDT", "1m", start_ms=None, end_ms=None, limit=500) == []


async def test_bars_of_two_intervals_give_one_book_top_per_close_of_the_finer(tmp_path):
    catalog_path = write_price_path(tmp_path / "bars", [40_000.0 + i for i in range(10)])
    catalog = ParquetDataCatalog(str(catalog_path))
    minute = catalog.bars(instrument_ids=[SPOT])
    five = BarType.from_str(f"{SPOT}-5-MINUTE-LAST-EXTERNAL")
    catalog.write_data(
        [Bar(five, b.open, b.high, b.low, b.close, b.volume, b.ts_event, b.ts_init) for b in minute[4::5]]
    )
    _, recorder, _ = await run_feed(catalog_path, ids=(SPOT,))
    tops = [e for e in recorder.events if isinstance(e, BookTop)]
    candles = [e for e in recorder.events if isinstance(e, Candle)]
    assert [c.interval for c in candles].count("5m") == 2
    assert len(tops) == len(minute)  # one per one-minute close, none repeated at the five-minute ones
