"""The public REST of the emulated venue: what NautilusTrader's Binance adapter asks before and while trading.

Spot under ``/api/v3/`` and USD-M futures under ``/fapi/v1/``, as Binance serves them (on one host
here, where Binance has two): ``ping``, ``time`` (the wall clock: signed requests are checked
against it), ``exchangeInfo`` built from the catalog's instruments (``instruments.SymbolRules``),
``klines`` (the feed's history: never a bar it has not reached), ``ticker/bookTicker`` (the last
book top sent), ``depth`` (the book top as a one-level book), ``trades`` and ``aggTrades`` (the
trades sent so far), in the shapes Binance documents (spot: rest-api.md and filters.md; USD-M: the
USDⓈ-M futures REST API) and the adapter's msgspec schemas decode (``BinanceSpotExchangeInfo``,
``BinanceFuturesExchangeInfo``, ``BinanceKline``, ``BinanceTickerBook``, ``BinanceDepth``,
``BinanceTrade``, ``BinanceAggTrade``).

``add_market(app, feed)`` is the composition the emulator's server calls: these routes, and the
market WebSocket streams (``market_streams``) listening to the feed. ``market_routes(rules)`` alone
(exchangeInfo, time, ping) serves a test that needs no market.

Errors are Binance's: HTTP 400 with ``{"code": ..., "msg": ...}`` (errors.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from aiohttp import web

from livestrat.venue_emulator.events import Print, Product, SymbolRules
from livestrat.venue_emulator.feed import BINANCE_INTERVALS, MarketFeed
from livestrat.venue_emulator.instruments import SPOT_DECIMALS, price_text, qty_text
from livestrat.venue_emulator.market_streams import MarketStreams, kline_row

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
# klines' limit: default 500; at most 1000 (spot) or 1500 (USD-M)
KLINES_LIMIT: dict[Product, int] = {"spot": 1000, "usdm": 1500}


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


def _mandatory(name: str) -> web.Response:
    return binance_error(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def _int_param(request: web.Request, name: str) -> int | None:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps(
                {
                    "code": -1100,
                    "msg": f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
                }
            ),
            content_type="application/json",
        ) from None


def _by_product(rules: Sequence[SymbolRules]) -> dict[Product, dict[str, SymbolRules]]:
    by_product: dict[Product, dict[str, SymbolRules]] = {"spot": {}, "usdm": {}}
    for r in rules:
        by_product[r.product][r.symbol] = r
    return by_product


def market_routes(rules: Sequence[SymbolRules]) -> list[web.RouteDef]:
    """The routes that need only the symbols: ``ping``, ``time``, ``exchangeInfo`` (spot and USD-M)."""
    by_product = _by_product(rules)

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
        info = spot_exchange_info if product == "spot" else usdm_exchange_info
        routes += [
            web.get(base + "ping", _handler(ping)),
            web.get(base + "time", _handler(server_time)),
            web.get(base + "exchangeInfo", _handler(info)),
        ]
    return routes


def feed_routes(feed: MarketFeed) -> list[web.RouteDef]:
    """The routes that read the market: ``klines``, ``ticker/bookTicker``, ``trades`` and ``aggTrades``."""
    by_product = _by_product(feed.rules)

    def klines(product: Product) -> Callable[[web.Request], web.Response]:
        def answer(request: web.Request) -> web.Response:
            symbol, interval = request.query.get("symbol"), request.query.get("interval")
            if not symbol:
                return _mandatory("symbol")
            if not interval:
                return _mandatory("interval")
            rules = by_product[product].get(symbol)
            if rules is None:
                return invalid_symbol()
            if interval not in BINANCE_INTERVALS:
                return binance_error(-1120, "Invalid interval.")
            limit = _int_param(request, "limit") or 500
            candles = feed.history(
                product,
                symbol,
                interval,
                start_ms=_int_param(request, "startTime"),
                end_ms=_int_param(request, "endTime"),
                limit=min(limit, KLINES_LIMIT[product]),
            )
            return web.json_response([kline_row(rules, c) for c in candles])

        return answer

    def book_ticker(product: Product) -> Callable[[web.Request], web.Response]:
        def entry(r: SymbolRules) -> dict[str, Any]:
            top = feed.last_top(product, r.symbol)
            zero = Decimal(0)
            bid, bid_qty, ask, ask_qty = (top.bid, top.bid_qty, top.ask, top.ask_qty) if top else (zero,) * 4
            answer = {
                "symbol": r.symbol,
                "bidPrice": price_text(r, bid),
                "bidQty": qty_text(r, bid_qty),
                "askPrice": price_text(r, ask),
                "askQty": qty_text(r, ask_qty),
            }
            if product == "usdm":
                answer["time"] = top.ts_ms if top else feed.origin_ms
            return answer

        def answer(request: web.Request) -> web.Response:
            symbols = by_product[product]
            wanted = _requested_symbols(request) if product == "spot" or "symbol" in request.query else None
            if wanted is not None and any(s not in symbols for s in wanted):
                return invalid_symbol()
            if "symbol" in request.query:
                return web.json_response(entry(symbols[request.query["symbol"]]))
            listed = [symbols[s] for s in wanted] if wanted is not None else list(symbols.values())
            return web.json_response([entry(r) for r in listed])

        return answer

    def trades(product: Product, *, aggregate: bool) -> Callable[[web.Request], web.Response]:
        def row(r: SymbolRules, t: Print) -> dict[str, Any]:
            price, qty = price_text(r, t.price), qty_text(r, t.qty)
            if aggregate:  # one trade per aggregate: a = f = l
                row = {"a": t.trade_id, "p": price, "q": qty, "f": t.trade_id, "l": t.trade_id, "T": t.ts_ms}
                return row | {"m": t.buyer_is_maker} | ({"M": True} if product == "spot" else {})
            quote = t.price * t.qty
            row = {"id": t.trade_id, "price": price, "qty": qty}
            row |= {
                "quoteQty": format(quote.quantize(Decimal(1).scaleb(-SPOT_DECIMALS)), "f")
                if product == "spot"
                else _plain(quote)
            }
            row |= {"time": t.ts_ms, "isBuyerMaker": t.buyer_is_maker}
            return row | ({"isBestMatch": True} if product == "spot" else {})

        def answer(request: web.Request) -> web.Response:
            symbol = request.query.get("symbol")
            if not symbol:
                return _mandatory("symbol")
            rules = by_product[product].get(symbol)
            if rules is None:
                return invalid_symbol()
            limit = min(_int_param(request, "limit") or 500, 1000)
            selection = feed.trades(
                product,
                symbol,
                from_id=_int_param(request, "fromId") if aggregate else None,
                start_ms=_int_param(request, "startTime") if aggregate else None,
                end_ms=_int_param(request, "endTime") if aggregate else None,
                limit=limit,
            )
            return web.json_response([row(rules, t) for t in selection])

        return answer

    def depth(product: Product) -> Callable[[web.Request], web.Response]:
        def answer(request: web.Request) -> web.Response:
            symbol = request.query.get("symbol")
            if not symbol:
                return _mandatory("symbol")
            rules = by_product[product].get(symbol)
            if rules is None:
                return invalid_symbol()
            # The emulated book has one level a side: the last book top (none before the first).
            top = feed.last_top(product, symbol)
            bids = [[price_text(rules, top.bid), qty_text(rules, top.bid_qty)]] if top else []
            asks = [[price_text(rules, top.ask), qty_text(rules, top.ask_qty)]] if top else []
            answer: dict[str, Any] = {"lastUpdateId": feed.book_update_id(product, symbol)}
            if product == "usdm":
                when = top.ts_ms if top else server_time_ms()
                answer |= {"E": when, "T": when}
            return web.json_response(answer | {"bids": bids, "asks": asks})

        return answer

    routes: list[web.RouteDef] = []
    for product, base in BASE_PATH.items():
        routes += [
            web.get(base + "depth", _handler(depth(product))),
            web.get(base + "klines", _handler(klines(product))),
            web.get(base + "ticker/bookTicker", _handler(book_ticker(product))),
            web.get(base + "trades", _handler(trades(product, aggregate=False))),
            web.get(base + "aggTrades", _handler(trades(product, aggregate=True))),
        ]
    return routes


def add_market(app: web.Application, feed: MarketFeed) -> MarketStreams:
    """Serve the feed's market on ``app``: the public REST (``market_routes``) and the market WebSocket streams.

    The streams listen to the feed from now on, after any listener already there: make the exchange
    listen first (``feed.listen(exchange)``), so that matching sees an event before subscribers do, as
    ``events.MarketListener`` promises. Spot streams are at the application's root (the adapter's
    ``base_url_ws`` is ``ws://host:port``), USD-M ones under ``/fstream`` (``ws://host:port/fstream``);
    the paths ``/ws`` (without a stream) and ``/ws-api/...`` are left free for the user-data side.
    Returns the streams (``drop_all()`` is the fault "market connection lost"); they are closed when
    the application shuts down.
    """
    streams = MarketStreams(feed)
    feed.listen(streams)
    app.add_routes(market_routes(feed.rules) + feed_routes(feed))
    app.add_routes(streams.routes())

    async def close_streams(_: web.Application) -> None:
        await streams.close_all()

    app.on_shutdown.append(close_streams)
    return streams
