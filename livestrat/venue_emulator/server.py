"""The emulator's aiohttp application: the venue's state, and every route composed onto one server.

One HTTP server carries Binance's REST (``/api/v3/...``, ``/sapi/v1/...``), the WebSocket API
(``/ws-api/v3``), the market streams (``/ws/...``, ``/stream``) and the admin API
(``/_emulator/...``): the adapter's base URLs all point at the same ``host:port``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

from livestrat.venue_emulator.auth import Authenticator
from livestrat.venue_emulator.events import SymbolRules
from livestrat.venue_emulator.exchange import Exchange
from livestrat.venue_emulator.faults import Fault, HttpFaults, MarketStreams, admin_routes, apply_fault
from livestrat.venue_emulator.scenario import Scenario
from livestrat.venue_emulator.spot_api import spot_routes
from livestrat.venue_emulator.ws_api import WS_API_PATH, WsApi


def wall_clock_ms() -> int:
    """Server time: the wall clock (signed requests are timed against it)."""
    return time.time_ns() // 1_000_000


@dataclass
class Venue:
    """Everything that answers for the venue: the books, the key check, the user-data sessions, the faults."""

    rules: list[SymbolRules]
    scenario: Scenario
    exchange: Exchange
    auth: Authenticator
    ws_api: WsApi
    http_faults: HttpFaults
    market_streams: MarketStreams | None = None


def build_venue(
    rules: list[SymbolRules],
    scenario: Scenario,
    now_ms: Callable[[], int] = wall_clock_ms,
    market_streams: MarketStreams | None = None,
) -> Venue:
    """The venue in the scenario's starting state (balances, resting orders); faults are played by
    :func:`play_scenario_faults` once the server runs."""
    spot = [r for r in rules if r.product == "spot"]
    exchange = Exchange(spot, dict(scenario.balances), now_ms)
    scenario.place_open_orders(exchange)
    auth = Authenticator(scenario.api_keys(), now_ms)
    return Venue(
        rules=rules,
        scenario=scenario,
        exchange=exchange,
        auth=auth,
        ws_api=WsApi(exchange, auth, now_ms),
        http_faults=HttpFaults(),
        market_streams=market_streams,
    )


def build_app(venue: Venue, market_routes: Iterable[web.RouteDef] = ()) -> web.Application:
    """The application serving ``venue``'s trading side, its admin API and the market side's ``market_routes``."""
    app = web.Application(middlewares=[venue.http_faults.middleware()])
    app.add_routes(list(market_routes))
    app.add_routes(spot_routes(venue.exchange, venue.auth))
    app.add_routes(venue.ws_api.routes())
    app.add_routes(admin_routes(venue.http_faults, venue.exchange, venue.ws_api, venue.market_streams))
    return app


def play_scenario_faults(venue: Venue) -> list[asyncio.Task[dict[str, object]]]:
    """Apply each of the scenario's faults ``after_s`` seconds from now (on the running loop)."""

    async def play(fault: Fault) -> dict[str, object]:
        await asyncio.sleep(fault.after_s)
        return await apply_fault(fault, venue.http_faults, venue.exchange, venue.ws_api, venue.market_streams)

    return [asyncio.get_running_loop().create_task(play(f)) for f in venue.scenario.faults]


def endpoints(base_http: str) -> dict[str, str]:
    """The URLs the command prints, from the server's ``http://host:port``."""
    base_ws = base_http.replace("http://", "ws://", 1)
    return {
        "http": base_http,
        "ws_api": base_ws + WS_API_PATH,
        "ws_stream": base_ws,
        "admin": base_http + "/_emulator",
    }
