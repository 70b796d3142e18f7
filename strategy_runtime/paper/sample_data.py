"""Deterministic synthetic market data for ``spec.data.sample``: same seed, same bytes.

One-minute bars from a seeded random walk for the instruments the generator knows how to
define (``SAMPLE_INSTRUMENTS``), plus, when asked, four quotes and four trades inside each
minute. Conventions the replay and the backtest both rely on:

- a bar's ``ts_event == ts_init`` is the bar's CLOSE time (NautilusTrader's convention), the
  first bar closing one minute after ``start``;
- every quote and trade of a minute lies strictly before that minute's bar, so ordering by
  ``ts_init`` never has to break a tie between a bar and a tick;
- bar volume is large (hundreds of lots) so that a strategy's order never exhausts the
  simulated top of book (the matching engine offers a quarter of a bar's volume per OHLC
  point), which would make fills depend on partial-fill details instead of the strategy.

Each instrument gets its own random generator seeded from ``(seed, crc32(instrument id))``:
adding an instrument to a spec does not change the data of the others.

``generator_fingerprint`` says what this generator writes for a spec's instruments, seed and start
without generating the whole sample (``paper.catalog`` stamps a written sample with it, and a
reused sample is checked against it): the generator's version and the digest of a short sample.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd
from nautilus_trader.model.currencies import BTC, ETH, USDT
from nautilus_trader.model.data import Bar, BarType, QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.identifiers import InstrumentId, Symbol, TradeId, Venue
from nautilus_trader.model.instruments import CryptoPerpetual, CurrencyPair, Instrument
from nautilus_trader.model.objects import Currency, Money, Price, Quantity

# Bump when a change here changes what the generator writes: a sample stamped with another version is
# written again. (The probe in ``generator_fingerprint`` catches most changes even without a bump.)
SAMPLE_GENERATOR_VERSION = 2
PROBE_BARS = 32  # the short sample whose digest stands for the generator's output
PROGRESS_EVERY_BARS = 10_000  # how often the generator reports its progress

# A progress report: (what is being done, bars done, bars in all).
SampleProgress = Callable[[str, int, int], None]

ONE_MINUTE_NS = 60_000_000_000
TICKS_PER_BAR = 4
HALF_SPREAD_TICKS = 50  # quotes straddle the walk by 50 price increments each side


class SampleDataError(ValueError):
    """The sample generator cannot make what the spec asks for."""


@dataclass(frozen=True)
class _Definition:
    make: Callable[[], Instrument]
    start_price: float
    volume: tuple[float, float]  # uniform range of one bar's volume, in base units


def _spot(symbol: str, base: Currency, price_precision: int, size_precision: int, venue: str = "BINANCE") -> Instrument:
    return CurrencyPair(
        instrument_id=InstrumentId(Symbol(symbol), Venue(venue)),
        raw_symbol=Symbol(symbol),
        base_currency=base,
        quote_currency=USDT,
        price_precision=price_precision,
        size_precision=size_precision,
        price_increment=Price(10.0**-price_precision, price_precision),
        size_increment=Quantity(10.0**-size_precision, size_precision),
        lot_size=None,
        max_quantity=Quantity(9000, size_precision),
        min_quantity=Quantity(10.0**-size_precision, size_precision),
        max_notional=None,
        min_notional=Money(10, USDT),
        max_price=Price(1_000_000, price_precision),
        min_price=Price(10.0**-price_precision, price_precision),
        margin_init=Decimal(0),
        margin_maint=Decimal(0),
        maker_fee=Decimal("0.001"),
        taker_fee=Decimal("0.001"),
        ts_event=0,
        ts_init=0,
    )


def _perpetual(symbol: str, base: Currency, price_precision: int) -> Instrument:
    return CryptoPerpetual(
        instrument_id=InstrumentId(Symbol(f"{symbol}-PERP"), Venue("BINANCE")),
        raw_symbol=Symbol(symbol),
        base_currency=base,
        quote_currency=USDT,
        settlement_currency=USDT,
        is_inverse=False,
        price_precision=price_precision,
        size_precision=3,
        price_increment=Price(10.0**-price_precision, price_precision),
        size_increment=Quantity(0.001, 3),
        max_quantity=Quantity(1000, 3),
        min_quantity=Quantity(0.001, 3),
        max_notional=None,
        min_notional=Money(10, USDT),
        max_price=Price(1_000_000, price_precision),
        min_price=Price(10.0**-price_precision, price_precision),
        margin_init=Decimal("0.05"),
        margin_maint=Decimal("0.025"),
        maker_fee=Decimal("0.0002"),
        taker_fee=Decimal("0.0005"),
        ts_event=0,
        ts_init=0,
    )


SAMPLE_INSTRUMENTS: dict[str, _Definition] = {
    "BTCUSDT.BINANCE": _Definition(lambda: _spot("BTCUSDT", BTC, 2, 6), 42_000.0, (200.0, 1200.0)),
    "ETHUSDT.BINANCE": _Definition(lambda: _spot("ETHUSDT", ETH, 2, 5), 2_300.0, (2_000.0, 12_000.0)),
    "BTCUSDT-PERP.BINANCE": _Definition(lambda: _perpetual("BTCUSDT", BTC, 1), 42_000.0, (200.0, 1200.0)),
    "ETHUSDT-PERP.BINANCE": _Definition(lambda: _perpetual("ETHUSDT", ETH, 2), 2_300.0, (2_000.0, 12_000.0)),
    # OKX's spot pair (tick 0.1, lot 1e-8, as OKX lists BTC-USDT), for the OKX venue emulator
    "BTC-USDT.OKX": _Definition(lambda: _spot("BTC-USDT", BTC, 1, 8, venue="OKX"), 42_000.0, (200.0, 1200.0)),
}


def sample_instrument(instrument_id: str) -> Instrument:
    """The definition the sample generator uses for ``instrument_id``, or SampleDataError."""
    definition = SAMPLE_INSTRUMENTS.get(instrument_id)
    if definition is None:
        raise SampleDataError(
            f"data.sample cannot make instrument {instrument_id!r}: the sample generator knows only "
            f"{', '.join(SAMPLE_INSTRUMENTS)}; use one of those, or drop data.sample and provide a "
            "catalog holding this instrument"
        )
    return definition.make()


def bar_type_for(instrument_id: str) -> BarType:
    """The bar type the sample writes: one-minute bars of last prices, aggregated outside the node."""
    return BarType.from_str(f"{instrument_id}-1-MINUTE-LAST-EXTERNAL")


@dataclass(frozen=True)
class SampleSeries:
    """Everything the sample holds for one instrument, each list ordered by ``ts_init``."""

    instrument: Instrument
    bars: list[Bar]
    quotes: list[QuoteTick]
    trades: list[TradeTick]


def generate_series(
    instrument_id: str,
    *,
    bars: int,
    seed: int,
    start: str,
    with_ticks: bool = False,
    progress: Callable[[int], None] | None = None,
) -> SampleSeries:
    """The synthetic series of one instrument (pure: no files); ``progress(bars made)`` now and then."""
    instrument = sample_instrument(instrument_id)
    definition = SAMPLE_INSTRUMENTS[instrument_id]
    rng = np.random.default_rng([seed, zlib.crc32(instrument_id.encode())])
    pp, sp = instrument.price_precision, instrument.size_precision
    increment = float(instrument.price_increment)

    # Log-returns with a slow sine drift: regimes long enough for trend-following examples to trade.
    returns = rng.normal(0.0, 0.0015, bars) + 0.0004 * np.sin(np.arange(bars) / 90.0)
    closes = definition.start_price * np.exp(np.cumsum(returns))
    opens = np.concatenate([[definition.start_price], closes[:-1]])
    highs = np.maximum(opens, closes) * (1 + np.abs(rng.normal(0, 0.0008, bars)))
    lows = np.minimum(opens, closes) * (1 - np.abs(rng.normal(0, 0.0008, bars)))
    volumes = rng.uniform(*definition.volume, bars)
    high_first = rng.random(bars) < 0.5

    bar_type = bar_type_for(instrument_id)
    t0 = pd.Timestamp(start).value
    out_bars: list[Bar] = []
    quotes: list[QuoteTick] = []
    trades: list[TradeTick] = []
    for i in range(bars):
        if progress is not None and i and i % PROGRESS_EVERY_BARS == 0:
            progress(i)
        o, c = round(opens[i], pp), round(closes[i], pp)
        h, low = max(round(highs[i], pp), o, c), min(round(lows[i], pp), o, c)
        ts_close = t0 + (i + 1) * ONE_MINUTE_NS
        out_bars.append(
            Bar(
                bar_type=bar_type,
                open=Price(o, pp),
                high=Price(h, pp),
                low=Price(low, pp),
                close=Price(c, pp),
                volume=Quantity(round(volumes[i], sp), sp),
                ts_event=ts_close,
                ts_init=ts_close,
            )
        )
        if not with_ticks:
            continue
        path = (o, h, low, c) if high_first[i] else (o, low, h, c)
        half_spread = HALF_SPREAD_TICKS * increment
        for k, px in enumerate(path):
            ts = ts_close - ONE_MINUTE_NS + (k + 1) * (ONE_MINUTE_NS // (TICKS_PER_BAR + 1))
            quotes.append(
                QuoteTick(
                    instrument_id=instrument.id,
                    bid_price=Price(round(px - half_spread, pp), pp),
                    ask_price=Price(round(px + half_spread, pp), pp),
                    bid_size=Quantity(round(volumes[i] / TICKS_PER_BAR, sp), sp),
                    ask_size=Quantity(round(volumes[i] / TICKS_PER_BAR, sp), sp),
                    ts_event=ts,
                    ts_init=ts,
                )
            )
            trades.append(
                TradeTick(
                    instrument_id=instrument.id,
                    price=Price(px, pp),
                    size=Quantity(round(volumes[i] / TICKS_PER_BAR, sp), sp),
                    aggressor_side=AggressorSide.BUYER if k % 2 == 0 else AggressorSide.SELLER,
                    trade_id=TradeId(f"S{i:08d}{k}"),
                    ts_event=ts + 1,
                    ts_init=ts + 1,
                )
            )
    return SampleSeries(instrument, out_bars, quotes, trades)


def generate_sample(
    instrument_ids: Sequence[str],
    *,
    bars: int,
    seed: int,
    start: str,
    with_ticks: bool = False,
    progress: SampleProgress | None = None,
) -> list[SampleSeries]:
    """The sample of every instrument, or SampleDataError naming the first one it cannot make."""
    for instrument_id in instrument_ids:
        sample_instrument(instrument_id)  # fail before generating anything
    total = bars * len(instrument_ids)
    series = []
    for n, instrument_id in enumerate(instrument_ids):

        def made(done: int, before: int = n * bars, what: str = f"sample: {instrument_id} bars generated") -> None:
            if progress is not None:
                progress(what, before + done, total)

        series.append(
            generate_series(instrument_id, bars=bars, seed=seed, start=start, with_ticks=with_ticks, progress=made)
        )
    return series


def generator_fingerprint(instrument_ids: Sequence[str], *, seed: int, start: str, with_ticks: bool) -> str:
    """What this generator writes for these instruments, seed and start, in a few milliseconds: its version and
    the digest of a ``PROBE_BARS`` sample. The digest changes with the instruments' definitions, the walk and the
    ticks, so a sample written by another generator is found even if nobody bumped ``SAMPLE_GENERATOR_VERSION``;
    the number of bars is not in it (the stamp records it beside)."""
    probe = generate_sample(instrument_ids, bars=PROBE_BARS, seed=seed, start=start, with_ticks=with_ticks)
    return f"v{SAMPLE_GENERATOR_VERSION}:{sample_fingerprint(probe)}"


def sample_fingerprint(series: Iterable[SampleSeries]) -> str:
    """A digest of the sample's content: instrument definitions, bars, quotes and trades, in order.

    The same for the series the generator makes and for the same series read back from a
    catalog, so a catalog can be checked against what the generator writes now.
    """
    digest = hashlib.sha256()
    for s in series:
        digest.update(repr(s.instrument).encode())
        for items in (s.bars, s.quotes, s.trades):
            digest.update(b"|")
            for item in items:
                digest.update(str(item).encode())
                digest.update(b"\n")
    return digest.hexdigest()
