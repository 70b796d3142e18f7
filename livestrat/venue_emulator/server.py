"""The emulator's aiohttp application: the venue's state, and every route composed onto one server.

One HTTP server carries Binance's REST (``/api/v3/...``, ``/sapi/v1/...``), the WebSocket API
(``/ws-api/v3``), the market streams (``/ws/...``, ``/stream``) and the admin API
(``/_emulator/...``): the adapter's base URLs all point at the same ``host:port``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from aiohttp import web

from livestrat.venue_emulator.auth import ApiKey, Authenticator
from livestrat.venue_emulator.events import SymbolRules
from livestrat.venue_emulator.exchange import Exchange
from livestrat.venue_emulator.spot_api import spot_routes
from livestrat.venue_emulator.ws_api import WS_API_PATH, WsApi


def wall_clock_ms() -> int:
    """Server time: the wall clock (signed requests are timed against it)."""
    return time.time_ns() // 1_000_000


@dataclass
class Venue:
    """Everything that answers for the venue: the books, the key check, the user-data sessions."""

    rules: list[SymbolRules]
    exchange: Exchange
    auth: Authenticator
    ws_api: WsApi


def build_venue(
    rules: list[SymbolRules],
    balances: dict[str, Decimal],
    keys: list[ApiKey],
    now_ms: Callable[[], int] = wall_clock_ms,
) -> Venue:
    spot = [r for r in rules if r.product == "spot"]
    exchange = Exchange(spot, balances, now_ms)
    auth = Authenticator(keys, now_ms)
    return Venue(rules=rules, exchange=exchange, auth=auth, ws_api=WsApi(exchange, auth, now_ms))


def build_app(venue: Venue, market_routes: Iterable[web.RouteDef] = ()) -> web.Application:
    """The application serving ``venue``'s trading side and the market side's ``market_routes``."""
    app = web.Application()
    app.add_routes(list(market_routes))
    app.add_routes(spot_routes(venue.exchange, venue.auth))
    app.add_routes(venue.ws_api.routes())
    return app


def endpoints(base_http: str) -> dict[str, str]:
    """The URLs the command prints, from the server's ``http://host:port``."""
    base_ws = base_http.replace("http://", "ws://", 1)
    return {
        "http": base_http,
        "ws_api": base_ws + WS_API_PATH,
        "ws_stream": base_ws,
        "admin": base_http + "/_emulator",
    }
