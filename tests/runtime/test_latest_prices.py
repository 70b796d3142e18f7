"""The gate's prices: NautilusTrader's ``Cache.price`` answers, as the cache's data changes."""

from __future__ import annotations

from nautilus_trader.cache.cache import Cache
from nautilus_trader.model.data import Bar, BarType, QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide, PriceType
from nautilus_trader.model.identifiers import InstrumentId, TradeId
from nautilus_trader.model.objects import Price, Quantity

from strategy_runtime.risk.prices import LatestPrices

INSTRUMENT = InstrumentId.from_str("BTCUSDT.BINANCE")
OTHER = InstrumentId.from_str("ETHUSDT.BINANCE")
PRICE_TYPES = (PriceType.BID, PriceType.ASK, PriceType.MID, PriceType.LAST, PriceType.MARK)


def bar(spec: str, close: str, ts: int) -> Bar:
    price = Price.from_str(close)
    return Bar(BarType.from_str(spec), price, price, price, price, Quantity.from_int(1), ts, ts)


def agrees(cache: Cache, prices: LatestPrices) -> None:
    for instrument in (INSTRUMENT, OTHER):
        for price_type in PRICE_TYPES:
            assert prices.price(instrument, price_type) == cache.price(instrument, price_type), (instrument, price_type)


def test_the_latest_price_is_the_caches_as_bars_quotes_and_trades_arrive() -> None:
    cache = Cache()
    prices = LatestPrices(cache)
    agrees(cache, prices)
    cache.add_bar(bar("BTCUSDT.BINANCE-5-MINUTE-LAST-EXTERNAL", "100.0", 1))
    agrees(cache, prices)
    cache.add_bar(bar("BTCUSDT.BINANCE-5-MINUTE-LAST-EXTERNAL", "101.0", 2))
    agrees(cache, prices)
    # A shorter bar type arrives after the answer was kept: the cache now prices from it.
    cache.add_bar(bar("BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL", "102.0", 3))
    agrees(cache, prices)
    assert prices.price(INSTRUMENT, PriceType.LAST) == Price.from_str("102.0")
    cache.add_bar(bar("BTCUSDT.BINANCE-1-MINUTE-LAST-INTERNAL", "150.0", 4))  # internal bars: never a price
    cache.add_bar(bar("BTCUSDT.BINANCE-1-MINUTE-ASK-EXTERNAL", "103.0", 5))
    cache.add_bar(bar("ETHUSDT.BINANCE-1-MINUTE-BID-EXTERNAL", "10.0", 5))
    agrees(cache, prices)
    cache.add_bar(bar("BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL", "104.0", 6))
    agrees(cache, prices)
    cache.add_quote_tick(
        QuoteTick(
            INSTRUMENT,
            Price.from_str("99.5"),
            Price.from_str("100.5"),
            Quantity.from_int(1),
            Quantity.from_int(2),
            7,
            7,
        )
    )
    agrees(cache, prices)
    cache.add_trade_tick(
        TradeTick(INSTRUMENT, Price.from_str("100.1"), Quantity.from_int(1), AggressorSide.BUYER, TradeId("1"), 8, 8)
    )
    agrees(cache, prices)
    cache.reset()
    agrees(cache, prices)
