"""The emulator's public REST, read by NautilusTrader's own Binance HTTP client and instrument providers."""

from __future__ import annotations

from decimal import Decimal

import pytest
from aiohttp import ClientSession, web
from nautilus_trader.adapters.binance.common.enums import BinanceAccountType, BinanceKlineInterval
from nautilus_trader.adapters.binance.futures.http.market import BinanceFuturesMarketHttpAPI
from nautilus_trader.adapters.binance.futures.providers import BinanceFuturesInstrumentProvider
from nautilus_trader.adapters.binance.http.client import BinanceHttpClient
from nautilus_trader.adapters.binance.spot.http.market import BinanceSpotMarketHttpAPI
from nautilus_trader.adapters.binance.spot.providers import BinanceSpotInstrumentProvider
from nautilus_trader.common.component import LiveClock
from nautilus_trader.core.datetime import millis_to_nanos
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Money
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from livestrat.venue_emulator.feed import MarketFeed
from livestrat.venue_emulator.instruments import catalog_rules
from livestrat.venue_emulator.market_api import feed_routes, market_routes
from strategy_runtime.paper.catalog import load_instruments, open_catalog
from tests.venue_emulator.conftest import PERP, SPOT

ORIGIN_MS = 1_900_000_000_000


def app_for(catalog, feed: MarketFeed | None = None) -> web.Application:
    app = web.Application()
    feed = feed or MarketFeed(catalog, [SPOT, PERP], speed=60.0)
    app.add_routes(market_routes(feed.rules) + feed_routes(feed))
    return app


def public_client(base_url: str) -> BinanceHttpClient:
    return BinanceHttpClient(clock=LiveClock(), api_key=None, api_secret=None, base_url=base_url)


@pytest.mark.parametrize(
    ("instrument_id", "provider_class", "account_type"),
    [
        (SPOT, BinanceSpotInstrumentProvider, BinanceAccountType.SPOT),
        (PERP, BinanceFuturesInstrumentProvider, BinanceAccountType.USDT_FUTURES),
    ],
)
async def test_the_adapters_instrument_provider_loads_the_catalogs_instrument(
    sample_catalog, serve, instrument_id, provider_class, account_type
):
    base_url = await serve(app_for(sample_catalog))
    provider = provider_class(client=public_client(base_url), clock=LiveClock(), account_type=account_type)
    await provider.load_ids_async([InstrumentId.from_str(instrument_id)])

    loaded = provider.find(InstrumentId.from_str(instrument_id))
    [expected] = load_instruments(open_catalog(sample_catalog), [instrument_id])
    assert loaded is not None, f"the provider did not load {instrument_id}"
    assert type(loaded) is type(expected)
    if account_type.is_futures:
        # USD-M writes a tick with the symbol's pricePrecision ("0.1"): the provider's precisions are the catalog's.
        assert (loaded.price_precision, loaded.size_precision) == (expected.price_precision, expected.size_precision)
    else:
        # Spot writes every price and quantity with 8 decimals ("0.01000000"), and the provider takes its
        # precision from that string: 8, as NautilusTrader loads BTCUSDT from the real venue.
        assert (loaded.price_precision, loaded.size_precision) == (8, 8)
    for field in (  # Price and Quantity compare by value, whatever their precision
        "id",
        "raw_symbol",
        "base_currency",
        "quote_currency",
        "price_increment",
        "size_increment",
        "min_quantity",
        "max_quantity",
        "min_notional",
        "min_price",
        "max_price",
    ):
        assert getattr(loaded, field) == getattr(expected, field), field
    if account_type.is_futures:
        assert loaded.settlement_currency == expected.settlement_currency
        # Without keys the futures provider prices fees at Binance's tier 0, which the sample also uses.
        assert (loaded.maker_fee, loaded.taker_fee) == (expected.maker_fee, expected.taker_fee)
    else:
        # Spot's NOTIONAL filter carries a maximum, which the catalog's pair leaves open: Binance's BTCUSDT value.
        assert loaded.max_notional == Money(9_000_000, expected.quote_currency)


async def test_spot_exchange_info_for_one_symbol_and_an_unknown_one(sample_catalog, serve):
    base_url = await serve(app_for(sample_catalog))
    market = BinanceSpotMarketHttpAPI(public_client(base_url), BinanceAccountType.SPOT)
    info = await market.query_spot_exchange_info(symbol="BTCUSDT")
    assert [s.symbol for s in info.symbols] == ["BTCUSDT"]
    async with ClientSession() as http:
        # rest-api.md, Exchange information: an unknown symbol is an error, not an empty list
        async with http.get(f"{base_url}/api/v3/exchangeInfo", params={"symbol": "NOPEUSDT"}) as response:
            assert response.status == 400
            assert await response.json() == {"code": -1121, "msg": "Invalid symbol."}
        async with http.get(f"{base_url}/api/v3/ping") as response:
            assert await response.json() == {}


@pytest.mark.parametrize(
    ("market_api", "account_type"),
    [
        (BinanceSpotMarketHttpAPI, BinanceAccountType.SPOT),
        (BinanceFuturesMarketHttpAPI, BinanceAccountType.USDT_FUTURES),
    ],
)
async def test_server_time_is_the_wall_clock(sample_catalog, serve, market_api, account_type):
    base_url = await serve(app_for(sample_catalog))
    clock = LiveClock()
    before = clock.timestamp_ms()
    server_time = await market_api(public_client(base_url), account_type).request_server_time()
    assert before <= server_time <= clock.timestamp_ms()
    await market_api(public_client(base_url), account_type).ping()


def test_rules_follow_the_catalog_instrument(sample_catalog):
    spot, perp = catalog_rules(sample_catalog, [SPOT, PERP])
    assert (spot.symbol, spot.product, spot.base_asset, spot.quote_asset) == ("BTCUSDT", "spot", "BTC", "USDT")
    assert (perp.symbol, perp.product, perp.instrument_id) == ("BTCUSDT", "usdm", PERP)
    assert (spot.tick_size, spot.step_size, spot.min_notional) == (Decimal("0.01"), Decimal("0.000001"), Decimal(10))
    assert (perp.tick_size, perp.step_size, perp.maker_fee, perp.taker_fee) == (
        Decimal("0.1"),
        Decimal("0.001"),
        Decimal("0.0002"),
        Decimal("0.0005"),
    )


class Clock:
    def __init__(self) -> None:
        self.now = ORIGIN_MS

    def now_ms(self) -> int:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += round(seconds * 1000)


async def test_klines_are_the_bars_the_feed_has_reached_as_the_adapter_reads_them(sample_catalog, serve):
    clock = Clock()
    feed = MarketFeed(
        sample_catalog, [SPOT, PERP], speed=60.0, origin_ms=ORIGIN_MS, now_ms=clock.now_ms, sleep=clock.sleep
    )
    base_url = await serve(app_for(sample_catalog, feed))
    spot = BinanceSpotMarketHttpAPI(public_client(base_url), BinanceAccountType.SPOT)
    perp = BinanceFuturesMarketHttpAPI(public_client(base_url), BinanceAccountType.USDT_FUTURES)
    assert await spot.query_klines("BTCUSDT", BinanceKlineInterval.MINUTE_1) == []  # nothing reached yet
    await feed.run()

    for market, instrument_id in ((spot, SPOT), (perp, PERP)):
        bar_type = BarType.from_str(f"{instrument_id}-1-MINUTE-LAST-EXTERNAL")
        catalog_bars = ParquetDataCatalog(str(sample_catalog)).bars(instrument_ids=[instrument_id])
        # request_binance_bars pages by open time with a limit, as the data client's request_bars does
        bars = await market.request_binance_bars(bar_type, BinanceKlineInterval.MINUTE_1, limit=7, start_time=0)
        assert [(b.open, b.high, b.low, b.close, b.volume) for b in bars] == [
            (b.open, b.high, b.low, b.close, b.volume) for b in catalog_bars
        ]
        assert [b.ts_event for b in bars] == [
            millis_to_nanos(feed.restamp(b.ts_event) - 1) for b in catalog_bars
        ]  # the kline's close time T, restamped

    async with ClientSession() as http:
        for params, error in (
            ({"interval": "1m"}, -1102),
            ({"symbol": "NOPE", "interval": "1m"}, -1121),
            ({"symbol": "BTCUSDT", "interval": "7m"}, -1120),
        ):
            async with http.get(f"{base_url}/api/v3/klines", params=params) as response:
                assert response.status == 400
                assert (await response.json())["code"] == error


async def test_book_ticker_is_the_last_book_top_sent(sample_catalog, serve):
    clock = Clock()
    feed = MarketFeed(
        sample_catalog, [SPOT, PERP], speed=60.0, origin_ms=ORIGIN_MS, now_ms=clock.now_ms, sleep=clock.sleep
    )
    base_url = await serve(app_for(sample_catalog, feed))
    await feed.run()
    quotes = ParquetDataCatalog(str(sample_catalog)).quote_ticks(instrument_ids=[SPOT])
    spot = BinanceSpotMarketHttpAPI(public_client(base_url), BinanceAccountType.SPOT)
    [ticker] = await spot.query_ticker_book(symbol="BTCUSDT")
    assert (ticker.bidPrice, ticker.askPrice) == (
        f"{quotes[-1].bid_price.as_decimal():.8f}",
        f"{quotes[-1].ask_price.as_decimal():.8f}",
    )
    perp = BinanceFuturesMarketHttpAPI(public_client(base_url), BinanceAccountType.USDT_FUTURES)
    [perp_ticker] = await perp.query_ticker_book(symbol="BTCUSDT")
    assert perp_ticker.time == feed.last_top("usdm", "BTCUSDT").ts_ms


async def test_recent_and_aggregate_trades_are_the_prints_the_feed_sent(sample_catalog, serve):
    # Stamped a day ago: the adapter's paging by time stops at its own clock's now.
    clock = Clock()
    clock.now = origin = LiveClock().timestamp_ms() - 86_400_000
    feed = MarketFeed(
        sample_catalog, [SPOT, PERP], speed=60.0, origin_ms=origin, now_ms=clock.now_ms, sleep=clock.sleep
    )
    base_url = await serve(app_for(sample_catalog, feed))
    await feed.run()
    spot = BinanceSpotMarketHttpAPI(public_client(base_url), BinanceAccountType.SPOT)
    perp = BinanceFuturesMarketHttpAPI(public_client(base_url), BinanceAccountType.USDT_FUTURES)
    for market, instrument_id in ((spot, SPOT), (perp, PERP)):
        trades = ParquetDataCatalog(str(sample_catalog)).trade_ticks(instrument_ids=[instrument_id])
        expected = [(t.price, t.size, t.aggressor_side) for t in trades]
        iid = InstrumentId.from_str(instrument_id)
        recent = await market.request_trade_ticks(iid, limit=10)  # the most recent ten
        assert [(t.price, t.size, t.aggressor_side) for t in recent] == expected[-10:]
        # The whole window by time, in pages of 7, as the data client asks for aggregate trades
        # Within an hour: over a longer window with an hour holding no trade, NautilusTrader 1.231's paging
        # never advances (it restarts from the last trade's time), whatever the venue answers.
        start, end = origin - 1, origin + 1_800_000
        paged = await market.request_agg_trade_ticks(iid, limit=7, start_time=start, end_time=end)
        assert [(t.price, t.size, t.aggressor_side) for t in paged] == expected
        assert [t.trade_id.value for t in paged] == [str(i) for i in range(1, len(trades) + 1)]
        from_id = await market.query_agg_trades("BTCUSDT", limit=3, from_id=5)
        assert [a.a for a in from_id] == [5, 6, 7]
