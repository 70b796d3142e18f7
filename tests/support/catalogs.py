"""Tiny catalogs with a price path chosen by the test: a loss, a drawdown, a flat market.

The instrument definitions are the sample generator's (``strategy_runtime.paper.sample_data``);
the bars follow ``closes`` exactly: one-minute bars of last prices, each opening at the
previous close, with volume enough that no test order exhausts the simulated book.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from nautilus_trader.model.data import Bar
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from strategy_runtime.paper.sample_data import ONE_MINUTE_NS, bar_type_for, sample_instrument

START = "2024-01-01T00:00:00Z"


def write_price_path(
    path: Path, closes: Sequence[float], instrument_id: str = "BTCUSDT.BINANCE", start: str = START
) -> Path:
    instrument = sample_instrument(instrument_id)
    bar_type = bar_type_for(instrument_id)
    t0 = pd.Timestamp(start).value
    precision = instrument.price_precision
    bars = []
    previous = closes[0]
    for i, close in enumerate(closes):
        ts = t0 + (i + 1) * ONE_MINUTE_NS
        high, low = max(previous, close) * 1.0001, min(previous, close) * 0.9999
        bars.append(
            Bar(
                bar_type,
                Price(previous, precision),
                Price(high, precision),
                Price(low, precision),
                Price(close, precision),
                Quantity(5000, instrument.size_precision),
                ts,
                ts,
            )
        )
        previous = close
    catalog = ParquetDataCatalog(str(path))
    catalog.write_data(bars)
    catalog.write_data([instrument])
    return path


def flat(bars: int, price: float = 40_000.0) -> list[float]:
    return [price] * bars


def falling(bars: int, start: float = 40_000.0, step: float = 0.005) -> list[float]:
    """Down ``step`` (a fraction) every bar after the second."""
    return [start if i < 2 else start * (1 - step) ** (i - 1) for i in range(bars)]


def up_then_down(bars: int, start: float = 40_000.0, step: float = 0.005, turn: int = 10) -> list[float]:
    """Up ``step`` a bar until bar ``turn``, then down ``step`` a bar."""
    path = []
    price = start
    for i in range(bars):
        if i >= 2:
            price *= (1 + step) if i < turn else (1 - step)
        path.append(price)
    return path
