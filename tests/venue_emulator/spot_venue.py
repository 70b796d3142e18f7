"""A spot venue served on 127.0.0.1 for the trading side's tests: BTCUSDT, an HMAC and an Ed25519 key.

The market side's public REST (``market_api``: time, exchangeInfo) is served from the same rules, so
NautilusTrader's instrument provider loads BTCUSDT as it would from Binance; market events are handed to
the exchange directly (``exchange.on_market``) instead of by a catalog feed.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal

from aiohttp.test_utils import TestServer

from livestrat.venue_emulator.auth import ApiKey, ed25519_private_key_pkcs8
from livestrat.venue_emulator.events import BookTop, SymbolRules
from livestrat.venue_emulator.market_api import market_routes
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
    # Binance's BTCUSDT bounds; maxPrice 0 ("disabled", filters.md) makes NautilusTrader 1.231's provider
    # drop the instrument ("'max_price' not a positive real")
    min_price=D("0.01"),
    max_price=D("1000000"),
)
HMAC_KEY = ApiKey("h" * 32 + "K" * 32, "hmac-secret-for-the-emulator-tests")
ED25519_KEY = ApiKey("e" * 32 + "D" * 32, ed25519_private_key_pkcs8(bytes(range(1, 33))), "ed25519")
BALANCES = {"USDT": D("100000"), "BTC": D("2")}


def book_top(bid: str, ask: str) -> BookTop:
    return BookTop("BTCUSDT", D(bid), D("5"), D(ask), D("5"), time.time_ns() // 1_000_000, "spot")


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
    server = TestServer(build_app(venue, market_routes([BTCUSDT])), host="127.0.0.1")
    await server.start_server()
    http = str(server.make_url("")).rstrip("/")
    try:
        yield Served(venue, http, http.replace("http://", "ws://") + "/ws-api/v3", http + "/_emulator")
    finally:
        await server.close()
