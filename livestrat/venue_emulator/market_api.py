"""The public REST of the emulated venue: what NautilusTrader's Binance adapter asks before and while trading.

Spot under ``/api/v3/`` and USD-M futures under ``/fapi/v1/``, as Binance serves them (on one host
here, where Binance has two): ``ping``, ``time`` (the wall clock: signed requests are checked
against it) and ``exchangeInfo`` built from the catalog's instruments (``instruments.SymbolRules``),
in the shapes Binance documents (spot: rest-api.md "Exchange information" and filters.md; USD-M:
"Exchange Information" of the USDⓈ-M futures REST API) and the adapter's msgspec schemas decode
(``BinanceSpotExchangeInfo``, ``BinanceFuturesExchangeInfo``).

Errors are Binance's: HTTP 400 with ``{"code": ..., "msg": ...}`` (errors.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from aiohttp import web

from livestrat.venue_emulator.events import Product, SymbolRules
from livestrat.venue_emulator.instruments import SPOT_DECIMALS, price_text, qty_text

# The order types and times in force the emulated exchange accepts (exchangeInfo lists them).
SPOT_ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET"]
USDM_ORDER_TYPES = ["LIMIT", "MARKET"]
USDM_TIME_IN_FORCE = ["GTC", "IOC", "FOK", "GTX"]
# Binance's published limits (exchangeInfo rateLimits), spot and USD-M.
SPOT_RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
]
USDM_RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
]
ASSET_DECIMALS = 8  # baseAssetPrecision / quoteAssetPrecision: 8 for every asset Binance lists
PERPETUAL_DELIVERY_MS = 4133404800000  # a perpetual's deliveryDate on Binance (2100-12-25)

BASE_PATH: dict[Product, str] = {"spot": "/api/v3/", "usdm": "/fapi/v1/"}


def server_time_ms() -> int:
    return time.time_ns() // 1_000_000


def binance_error(code: int, msg: str, status: int = 400) -> web.Response:
    """An error answered as Binance answers it (errors.md): the HTTP status and ``{"code", "msg"}``."""
    return web.json_response({"code": code, "msg": msg}, status=status)


def invalid_symbol() -> web.Response:
    return binance_error(-1121, "Invalid symbol.")


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _spot_filters(r: SymbolRules) -> list[dict[str, Any]]:
    eight = Decimal(1).scaleb(-SPOT_DECIMALS)
    return [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": price_text(r, r.min_price),
            "maxPrice": price_text(r, r.max_price),
            "tickSize": price_text(r, r.tick_size),
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": qty_text(r, r.min_qty),
            "maxQty": qty_text(r, r.max_qty),
            "stepSize": qty_text(r, r.step_size),
        },
        {
            "filterType": "NOTIONAL",
            "minNotional": format(r.min_notional.quantize(eight), "f"),
            "applyMinToMarket": True,
            "maxNotional": format((r.max_notional or Decimal(9_000_000)).quantize(eight), "f"),
            "applyMaxToMarket": False,
            "avgPriceMins": 5,
        },
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
    ]


def _spot_symbol(r: SymbolRules) -> dict[str, Any]:
    return {
        "symbol": r.symbol,
        "status": "TRADING",
        "baseAsset": r.base_asset,
        "baseAssetPrecision": ASSET_DECIMALS,
        "quoteAsset": r.quote_asset,
        "quotePrecision": ASSET_DECIMALS,
        "quoteAssetPrecision": ASSET_DECIMALS,
        "baseCommissionPrecision": ASSET_DECIMALS,
        "quoteCommissionPrecision": ASSET_DECIMALS,
        "orderTypes": SPOT_ORDER_TYPES,
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": False,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "amendAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": _spot_filters(r),
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "NONE",
        "allowedSelfTradePreventionModes": ["NONE"],
    }


def _usdm_symbol(r: SymbolRules) -> dict[str, Any]:
    return {
        "symbol": r.symbol,
        "pair": r.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": PERPETUAL_DELIVERY_MS,
        "onboardDate": 1569398400000,
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": r.base_asset,
        "quoteAsset": r.quote_asset,
        "marginAsset": r.quote_asset,
        "pricePrecision": r.price_precision,
        "quantityPrecision": r.qty_precision,
        "baseAssetPrecision": ASSET_DECIMALS,
        "quotePrecision": ASSET_DECIMALS,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "filters": [
            {
                "minPrice": price_text(r, r.min_price),
                "maxPrice": price_text(r, r.max_price),
                "filterType": "PRICE_FILTER",
                "tickSize": price_text(r, r.tick_size),
            },
            {
                "stepSize": qty_text(r, r.step_size),
                "filterType": "LOT_SIZE",
                "maxQty": qty_text(r, r.max_qty),
                "minQty": qty_text(r, r.min_qty),
            },
            {
                "stepSize": qty_text(r, r.step_size),
                "filterType": "MARKET_LOT_SIZE",
                "maxQty": qty_text(r, r.max_qty),
                "minQty": qty_text(r, r.min_qty),
            },
            {"limit": 200, "filterType": "MAX_NUM_ORDERS"},
            {"limit": 10, "filterType": "MAX_NUM_ALGO_ORDERS"},
            {"notional": _plain(r.min_notional), "filterType": "MIN_NOTIONAL"},
        ],
        "orderTypes": USDM_ORDER_TYPES,
        "timeInForce": USDM_TIME_IN_FORCE,
    }


def _requested_symbols(request: web.Request) -> list[str] | None:
    """``symbol=X`` or ``symbols=["X","Y"]`` (rest-api.md: a JSON array, URL-encoded or not); None for all."""
    if "symbol" in request.query:
        return [request.query["symbol"]]
    if "symbols" in request.query:
        try:
            symbols = json.loads(request.query["symbols"])
        except ValueError:
            symbols = None
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            raise web.HTTPBadRequest(
                text=json.dumps({"code": -1100, "msg": "Illegal characters found in parameter 'symbols'."}),
                content_type="application/json",
            )
        return symbols
    return None


def _handler(fn: Callable[[web.Request], web.Response]) -> Callable[[web.Request], Any]:
    async def handle(request: web.Request) -> web.Response:
        return fn(request)

    return handle


def market_routes(rules: Sequence[SymbolRules]) -> list[web.RouteDef]:
    """The public REST routes for the given symbols (spot and USD-M alike; each product under its own path)."""
    by_product: dict[Product, dict[str, SymbolRules]] = {"spot": {}, "usdm": {}}
    for r in rules:
        by_product[r.product][r.symbol] = r

    def ping(_: web.Request) -> web.Response:
        return web.json_response({})

    def server_time(_: web.Request) -> web.Response:
        return web.json_response({"serverTime": server_time_ms()})

    def spot_exchange_info(request: web.Request) -> web.Response:
        symbols = by_product["spot"]
        wanted = _requested_symbols(request)
        if wanted is not None and any(s not in symbols for s in wanted):
            return invalid_symbol()
        listed = [symbols[s] for s in wanted] if wanted is not None else list(symbols.values())
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": server_time_ms(),
                "rateLimits": SPOT_RATE_LIMITS,
                "exchangeFilters": [],
                "symbols": [_spot_symbol(r) for r in listed],
            }
        )

    def usdm_exchange_info(_: web.Request) -> web.Response:
        # USD-M's exchangeInfo takes no parameters: every symbol, always.
        symbols = by_product["usdm"].values()
        assets = sorted({r.quote_asset for r in symbols} | {r.base_asset for r in symbols})
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": server_time_ms(),
                "futuresType": "U_MARGINED",
                "rateLimits": USDM_RATE_LIMITS,
                "exchangeFilters": [],
                "assets": [{"asset": a, "marginAvailable": True, "autoAssetExchange": "-100"} for a in assets],
                "symbols": [_usdm_symbol(r) for r in symbols],
            }
        )

    routes: list[web.RouteDef] = []
    for product, base in BASE_PATH.items():
        routes += [web.get(base + "ping", _handler(ping)), web.get(base + "time", _handler(server_time))]
        info = spot_exchange_info if product == "spot" else usdm_exchange_info
        routes.append(web.get(base + "exchangeInfo", _handler(info)))
    return routes
