"""The market feed: a catalog's history replayed as the emulated venue's live market, on the wall clock.

``MarketFeed(catalog, instrument_ids, speed=S)`` reads the instruments' bars, quotes and trades with
NautilusTrader's ``ParquetDataCatalog``, turns them into the venue's events (``events``: a quote is a
``BookTop``, a trade a ``Print``, a bar a closed ``Candle`` at its close) and merges them in time
order (ties: book tops, then prints, then candles; then the order of ``instrument_ids``).

- **Restamping.** The catalog's ``start`` (default: its first event) is ``origin_ms`` on the wall
  clock (default: when the feed is made) and market time runs ``speed`` times faster:
  ``ts_ms = origin_ms + floor((ts - start) / speed)`` (in ms). A kline's open and close are restamped
  the same way, so at speed 60 a one-minute kline spans one wall second; its ``close_ms`` is the last
  millisecond of that span, as Binance's ``T`` is.
- **Pacing.** ``await feed.run()`` hands each event to every listener (``feed.listen``), in the
  order they listened, when its restamped time comes: it sleeps until then, never ahead, and sends at
  once what is already due (a feed started late catches up, stamps unchanged). ``feed.done`` is set
  at the end. The stamps depend only on the catalog, ``origin_ms`` and ``speed``: two feeds over one
  catalog emit the same sequence.
- **Bars without quotes.** An instrument whose catalog holds no quotes gets a ``BookTop`` at each
  close of its finest bars, bid = ask = the close price, sized by the bar's volume, just before the
  candle, so the exchange always has a price to match against.
- **History.** Bars before ``start`` are not sent; they are kline history, as are the candles sent
  so far: ``history(...)`` answers ``/klines`` and ``request_bars`` and never shows a bar the feed has
  not reached; ``trades(...)`` answers ``/trades`` and ``/aggTrades`` with the trades sent so far.
  Quotes and trades before ``start`` are dropped.
- **Trade ids** are Binance's: integers numbering the symbol's catalog trades from 1 (those before
  ``start`` included, so ids do not depend on where the feed starts; the catalog's
  ``TradeId`` strings are not numbers). A trade without an aggressor is sent as a buyer's
  (``m: false``).

The whole selection is held in memory (a year of one-minute bars is half a million candles).
Bars are EXTERNAL time bars of last prices at Binance's intervals (1s ... 1M); other bar types are
ignored.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pandas as pd
from nautilus_trader.model.data import Bar, QuoteTick, TradeTick
from nautilus_trader.model.enums import AggregationSource, AggressorSide, BarAggregation, PriceType
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from livestrat.venue_emulator.events import BookTop, Candle, MarketEvent, MarketListener, Print, Product, SymbolRules
from livestrat.venue_emulator.instruments import VENUE, catalog_rules

# Binance's kline intervals (rest-api.md "Kline/Candlestick data") by NautilusTrader bar aggregation.
INTERVAL_UNITS = {
    BarAggregation.SECOND: "s",
    BarAggregation.MINUTE: "m",
    BarAggregation.HOUR: "h",
    BarAggregation.DAY: "d",
    BarAggregation.WEEK: "w",
    BarAggregation.MONTH: "M",
}
BINANCE_INTERVALS = {
    "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M",
}  # fmt: skip
_RANK = {BookTop: 0, Print: 1, Candle: 2}


def binance_interval(bar: Bar) -> str | None:
    """The Binance kline interval of the bar's type, or None when Binance has no such kline."""
    bar_type = bar.bar_type
    spec = bar_type.spec
    if bar_type.aggregation_source != AggregationSource.EXTERNAL or spec.price_type != PriceType.LAST:
        return None
    unit = INTERVAL_UNITS.get(spec.aggregation)
    interval = f"{spec.step}{unit}" if unit else None
    return interval if interval in BINANCE_INTERVALS else None


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class _Item:
    """One catalog record on the market clock, before restamping."""

    ts_ns: int
    rank: int
    instrument: int  # position in instrument_ids
    seq: int  # position within its kind in the catalog
    event: Callable[[Callable[[int], int]], MarketEvent]  # builds the event from the restamp function


class MarketFeed:
    """A catalog replayed as the venue's market; see the module docstring."""

    def __init__(
        self,
        catalog_path: str | Path,
        instrument_ids: Sequence[str],
        *,
        speed: float,
        start: int | str | None = None,
        origin_ms: int | None = None,
        now_ms: Callable[[], int] = wall_clock_ms,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        venue: str = VENUE,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"the feed's speed must be positive (1 is real time), got {speed}")
        self.rules: list[SymbolRules] = catalog_rules(catalog_path, instrument_ids, venue)
        self.speed = speed
        self._speed = Fraction(speed).limit_denominator(1_000_000)
        self._now_ms = now_ms
        self._sleep = sleep
        self._listeners: list[MarketListener] = []
        self.done = asyncio.Event()
        self.sent = 0  # events handed to the listeners so far

        items = self._read(ParquetDataCatalog(str(catalog_path)), instrument_ids)
        items.sort(key=lambda i: (i.ts_ns, i.rank, i.instrument, i.seq))
        start_ns = pd.Timestamp(start).value if isinstance(start, str) else start
        if start_ns is None:
            start_ns = items[0].ts_ns if items else 0
        self.start_ns: int = start_ns
        self.origin_ms: int = now_ms() if origin_ms is None else origin_ms
        self._position_ms = self.origin_ms
        # Kline history per (product, symbol, interval), ascending by open time.
        self._candles: dict[tuple[Product, str, str], list[Candle]] = {}
        self._tops: dict[tuple[Product, str], BookTop] = {}
        self._prints: dict[tuple[Product, str], list[Print]] = {}
        self._book_ids: dict[tuple[Product, str], int] = {}
        history = [i for i in items if i.ts_ns < start_ns]
        for item in history:
            event = item.event(self.restamp)
            if isinstance(event, Candle):
                self._remember(event)
        self._pending = [i for i in items if i.ts_ns >= start_ns]
        self.total = len(self._pending)

    # -- reading the catalog --------------------------------------------------------------------

    def _read(self, catalog: ParquetDataCatalog, instrument_ids: Sequence[str]) -> list[_Item]:
        items: list[_Item] = []
        for n, (instrument_id, rules) in enumerate(zip(instrument_ids, self.rules, strict=True)):
            quotes = _read_or_empty(catalog.quote_ticks, instrument_id)
            trades = _read_or_empty(catalog.trade_ticks, instrument_id)
            bars = [b for b in _read_or_empty(catalog.bars, instrument_id) if binance_interval(b) is not None]
            items += [_Item(q.ts_init, 0, n, k, _top_maker(rules, q)) for k, q in enumerate(quotes)]
            items += [_Item(t.ts_init, 1, n, k, _print_maker(rules, t, k + 1)) for k, t in enumerate(trades)]
            items += [_Item(b.ts_init, 2, n, k, _candle_maker(rules, b)) for k, b in enumerate(bars)]
            if not quotes and bars:
                # A book top at each close of the finest bars only: a coarser bar closes on one of them.
                finest = min(b.bar_type.spec.timedelta for b in bars)
                closes = [b for b in bars if b.bar_type.spec.timedelta == finest]
                items += [_Item(b.ts_init, 0, n, k, _close_top_maker(rules, b)) for k, b in enumerate(closes)]
        return items

    # -- the clock ------------------------------------------------------------------------------

    def restamp(self, ts_ns: int) -> int:
        """The wall-clock millisecond of a catalog time (ns): ``origin_ms + floor((ts - start) / speed)``."""
        return self.origin_ms + math.floor(Fraction(ts_ns - self.start_ns) / self._speed / 1_000_000)

    @property
    def position_ms(self) -> int:
        """How far the feed has come, on the wall clock: the last sent event's time (before any: the origin)."""
        return self._position_ms

    # -- listening and running ------------------------------------------------------------------

    def listen(self, listener: MarketListener) -> None:
        """``listener.on_market(event)`` for every event from now on, after the listeners already there."""
        self._listeners.append(listener)

    async def run(self) -> None:
        """Send every event at its time; returns at the end of the catalog (``done`` set)."""
        try:
            for item in self._pending:
                event = item.event(self.restamp)
                delay_ms = event.ts_ms - self._now_ms()
                if delay_ms > 0:
                    await self._sleep(delay_ms / 1000)
                self._position_ms = event.ts_ms
                if isinstance(event, Candle):
                    self._remember(event)
                elif isinstance(event, BookTop):
                    key = (event.product, event.symbol)
                    self._tops[key] = event
                    self._book_ids[key] = self._book_ids.get(key, 0) + 1
                else:
                    self._prints.setdefault((event.product, event.symbol), []).append(event)
                self.sent += 1
                for listener in self._listeners:
                    listener.on_market(event)
        finally:
            self.done.set()

    # -- what the REST endpoints ask ------------------------------------------------------------

    def _remember(self, candle: Candle) -> None:
        self._candles.setdefault((candle.product, candle.symbol, candle.interval), []).append(candle)

    def history(
        self, product: Product, symbol: str, interval: str, *, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[Candle]:
        """Closed klines the market has had, as Binance's ``klines`` selects them (rest-api.md "Kline/Candlestick
        data"): open time within ``[start_ms, end_ms]`` (both inclusive); the first ``limit`` from ``start_ms``,
        or without it the last ``limit`` up to ``end_ms`` (the most recent ones when neither is given)."""
        candles = self._candles.get((product, symbol, interval), [])
        opens = [c.open_ms for c in candles]
        lo = bisect.bisect_left(opens, start_ms) if start_ms is not None else 0
        hi = bisect.bisect_right(opens, end_ms) if end_ms is not None else len(candles)
        window = candles[lo:hi]
        return window[:limit] if start_ms is not None else window[-limit:] if limit else []

    def trades(
        self,
        product: Product,
        symbol: str,
        *,
        from_id: int | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int,
    ) -> list[Print]:
        """The market's trades sent so far, as Binance's ``trades``/``aggTrades`` select them (rest-api.md
        "Compressed/Aggregate trades list"): from ``from_id`` or from ``start_ms`` (inclusive), the first
        ``limit``, up to ``end_ms`` (inclusive); with neither, the ``limit`` most recent."""
        prints = self._prints.get((product, symbol), [])
        if from_id is not None:
            window = prints[bisect.bisect_left([p.trade_id for p in prints], from_id) :]
        else:
            times = [p.ts_ms for p in prints]
            lo = bisect.bisect_left(times, start_ms) if start_ms is not None else 0
            hi = bisect.bisect_right(times, end_ms) if end_ms is not None else len(prints)
            window = prints[lo:hi]
        if from_id is None and start_ms is None:
            return window[-limit:] if limit else []
        return window[:limit]

    def book_update_id(self, product: Product, symbol: str) -> int:
        """The symbol's order book update id: how many book tops have been sent (0 before the first)."""
        return self._book_ids.get((product, symbol), 0)

    def last_top(self, product: Product, symbol: str) -> BookTop | None:
        """The last book top sent for the symbol (None before the first)."""
        return self._tops.get((product, symbol))


def _read_or_empty(read: Callable[..., list], instrument_id: str) -> list:
    try:
        return read(instrument_ids=[instrument_id])
    except FileNotFoundError:
        return []


def _dec(value: object) -> Decimal:
    return value.as_decimal()  # type: ignore[attr-defined]


def _top_maker(rules: SymbolRules, q: QuoteTick) -> Callable[[Callable[[int], int]], MarketEvent]:
    def make(restamp: Callable[[int], int]) -> MarketEvent:
        return BookTop(
            rules.symbol,
            _dec(q.bid_price),
            _dec(q.bid_size),
            _dec(q.ask_price),
            _dec(q.ask_size),
            restamp(q.ts_init),
            rules.product,
        )

    return make


def _print_maker(rules: SymbolRules, t: TradeTick, trade_id: int) -> Callable[[Callable[[int], int]], MarketEvent]:
    def make(restamp: Callable[[int], int]) -> MarketEvent:
        buyer_is_maker = t.aggressor_side == AggressorSide.SELLER
        return Print(
            rules.symbol, _dec(t.price), _dec(t.size), buyer_is_maker, trade_id, restamp(t.ts_init), rules.product
        )

    return make


def _candle_maker(rules: SymbolRules, b: Bar) -> Callable[[Callable[[int], int]], MarketEvent]:
    def make(restamp: Callable[[int], int]) -> MarketEvent:
        interval_ns = b.bar_type.spec.timedelta.value
        return Candle(
            rules.symbol,
            binance_interval(b) or "",
            restamp(b.ts_event - interval_ns),
            restamp(b.ts_event) - 1,
            _dec(b.open),
            _dec(b.high),
            _dec(b.low),
            _dec(b.close),
            _dec(b.volume),
            True,
            rules.product,
        )

    return make


def _close_top_maker(rules: SymbolRules, b: Bar) -> Callable[[Callable[[int], int]], MarketEvent]:
    def make(restamp: Callable[[int], int]) -> MarketEvent:
        close, volume = _dec(b.close), _dec(b.volume)
        return BookTop(rules.symbol, close, volume, close, volume, restamp(b.ts_init), rules.product)

    return make
