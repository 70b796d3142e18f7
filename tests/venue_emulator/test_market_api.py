"""The emulator's public REST, read by NautilusTrader's own Binance HTTP client and instrument providers."""

from __future__ import annotations

from decimal import Decimal

import pytest
from aiohttp import ClientSession, web
from nautilus_trader.adapters.binance.common.enums import BinanceAccountType
from nautilus_trader.adapters.binance.futures.http.market import BinanceFuturesMarketHttpAPI
from nautilus_trader.adapters.binance.futures.providers import BinanceFuturesInstrumentProvider
from nautilus_trader.adapters.binance.http.client import BinanceHttpClient
from nautilus_trader.adapters.binance.spot.http.market import BinanceSpotMarketHttpAPI
from nautilus_trader.adapters.binance.spot.providers import BinanceSpotInstrumentProvider
from nautilus_trader.common.component import LiveClock
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Money

from livestrat.venue_emulator.instruments import catalog_rules
from livestrat.venue_emulator.market_api import market_routes
from strategy_runtime.paper.catalog import load_instruments, open_catalog
from tests.venue_emulator.conftest import PERP, SPOT


def app_for(catalog) -> web.Application:
    app = web.Application()
    app.add_routes(market_routes(catalog_rules(catalog, [SPOT, PERP])))
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
