"""A spot venue served on 127.0.0.1 for the trading side's tests: BTCUSDT, an HMAC and an Ed25519 key.

Until the market side's ``market_api`` is on this branch, ``exchange_info_stub`` answers ``/api/v3/time``
and ``/api/v3/exchangeInfo`` from the same SymbolRules (here, in the tests only), so NautilusTrader's
instrument provider can load BTCUSDT.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal

from aiohttp import web
from aiohttp.test_utils import TestServer

from livestrat.venue_emulator.auth import ApiKey, ed25519_private_key_pkcs8
from livestrat.venue_emulator.events import BookTop, SymbolRules
from livestrat.venue_emulator.scenario import Scenario
from livestrat.venue_emulator.server import Venue, build_app, build_venue

D = Decimal

BTCUSDT = SymbolRules(
    symbol="BTCUSDT",
    product="spot",
    instrument_id="BTCUSDT.BINANCE",
    base_asset="BTC",
    quote_asset="USDT",
    price_precision=2,
    qty_precision=5,
    tick_size=D("0.01"),
    step_size=D("0.00001"),
    min_qty=D("0.00001"),
    max_qty=D("9000"),
    min_notional=D("5"),
    maker_fee=D("0.001"),
    taker_fee=D("0.001"),
)
HMAC_KEY = ApiKey("h" * 32 + "K" * 32, "hmac-secret-for-the-emulator-tests")
ED25519_KEY = ApiKey("e" * 32 + "D" * 32, ed25519_private_key_pkcs8(bytes(range(1, 33))), "ed25519")
BALANCES = {"USDT": D("100000"), "BTC": D("2")}


def book_top(bid: str, ask: str) -> BookTop:
    return BookTop("BTCUSDT", D(bid), D("5"), D(ask), D("5"), time.time_ns() // 1_000_000, "spot")


def exchange_info_stub(rules: list[SymbolRules]) -> list[web.RouteDef]:
    """Just enough public REST for the instrument provider and the clock check (tests only)."""

    async def server_time(_request: web.Request) -> web.Response:
        return web.json_response({"serverTime": time.time_ns() // 1_000_000})

    async def exchange_info(_request: web.Request) -> web.Response:
        symbols = [
            {
                "symbol": r.symbol,
                "status": "TRADING",
                "baseAsset": r.base_asset,
                "baseAssetPrecision": 8,
                "quoteAsset": r.quote_asset,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
                "icebergAllowed": False,
                "ocoAllowed": False,
                "quoteOrderQtyMarketAllowed": False,
                "allowTrailingStop": False,
                "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00", "tickSize": "0.01"},
                    {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000", "stepSize": "0.00001"},
                    {"filterType": "NOTIONAL", "minNotional": "5", "maxNotional": "9000000"},
                ],
                "permissions": ["SPOT"],
            }
            for r in rules
        ]
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": time.time_ns() // 1_000_000,
                "rateLimits": [],
                "exchangeFilters": [],
                "symbols": symbols,
            }
        )

    return [web.get("/api/v3/time", server_time), web.get("/api/v3/exchangeInfo", exchange_info)]


@dataclass
class Served:
    venue: Venue
    http: str
    ws_api: str
    admin: str


def scenario(**fields: object) -> Scenario:
    keys = [{"api_key": k.api_key, "secret": k.secret, "key_type": k.key_type} for k in (HMAC_KEY, ED25519_KEY)]
    return Scenario.model_validate({"keys": keys, "balances": BALANCES} | fields)


@asynccontextmanager
async def served_venue(start: Scenario | None = None):
    venue = build_venue([BTCUSDT], start or scenario())
    server = TestServer(build_app(venue, exchange_info_stub([BTCUSDT])), host="127.0.0.1")
    await server.start_server()
    http = str(server.make_url("")).rstrip("/")
    try:
        yield Served(venue, http, http.replace("http://", "ws://") + "/ws-api/v3", http + "/_emulator")
    finally:
        await server.close()
