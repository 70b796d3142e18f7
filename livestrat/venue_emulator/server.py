"""The emulator's aiohttp application and the ``livestrat venue-emulator`` command.

One HTTP server carries Binance's REST (``/api/v3/...``, ``/sapi/v1/...``), the WebSocket API
(``/ws-api/v3``), the market streams (``/ws/...``, ``/stream``) and the admin API
(``/_emulator/...``): the adapter's base URLs all point at the same ``host:port``. The command::

    livestrat venue-emulator --catalog DIR --instrument BTCUSDT.BINANCE --scenario FILE \
        [--speed X] [--start TIME] [--host 127.0.0.1] [--port 0]

prints one JSON line ``{"http": ..., "ws_api": ..., "ws_stream": ..., "admin": ...}`` once it
listens, then serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from livestrat.venue_emulator.accounts import SpotAccount
from livestrat.venue_emulator.auth import Authenticator
from livestrat.venue_emulator.events import SymbolRules
from livestrat.venue_emulator.exchange import Exchange
from livestrat.venue_emulator.faults import Fault, HttpFaults, MarketStreams, admin_routes, apply_fault
from livestrat.venue_emulator.feed import MarketFeed
from livestrat.venue_emulator.futures_api import PRIVATE_STREAM_PATH, FuturesUserStreams, futures_routes
from livestrat.venue_emulator.instruments import InstrumentError
from livestrat.venue_emulator.market_api import add_market
from livestrat.venue_emulator.market_streams import STREAM_PREFIX
from livestrat.venue_emulator.scenario import Scenario
from livestrat.venue_emulator.spot_api import spot_routes
from livestrat.venue_emulator.state_file import StateFile, load_state, restore
from livestrat.venue_emulator.ws_api import FUTURES_WS_API_PATH, WS_API_PATH, WsApi


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
    futures: Exchange | None = None  # the USD-M account, when the venue lists USD-M symbols
    futures_streams: FuturesUserStreams | None = None
    futures_ws_api: WsApi | None = None  # USD-M's WebSocket API (listen keys for Ed25519 keys)
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
    usdm = [r for r in rules if r.product == "usdm"]
    exchange = Exchange(spot, SpotAccount(dict(scenario.balances)), now_ms)
    scenario.place_open_orders(exchange)
    futures = Exchange(usdm, scenario.usdm_account(), now_ms) if usdm else None
    if futures is not None:
        scenario.place_open_orders(futures)
    auth = Authenticator(scenario.api_keys(), now_ms)
    futures_streams = FuturesUserStreams(futures, now_ms) if futures is not None else None
    return Venue(
        rules=rules,
        scenario=scenario,
        exchange=exchange,
        auth=auth,
        ws_api=WsApi(exchange, auth, now_ms),
        http_faults=HttpFaults(),
        futures=futures,
        futures_streams=futures_streams,
        futures_ws_api=(
            WsApi(None, auth, now_ms, FUTURES_WS_API_PATH, listen_keys=futures_streams) if futures_streams else None
        ),
        market_streams=market_streams,
    )


def build_app(venue: Venue, market_routes: Iterable[web.RouteDef] = ()) -> web.Application:
    """The application serving ``venue``'s trading side, its admin API and the market side's ``market_routes``."""
    app = web.Application(middlewares=[venue.http_faults.middleware()])
    app.add_routes(list(market_routes))
    app.add_routes(spot_routes(venue.exchange, venue.auth))
    app.add_routes(venue.ws_api.routes())
    if venue.futures is not None and venue.futures_streams is not None:
        app.add_routes(futures_routes(venue.futures, venue.auth, venue.futures_streams))
    if venue.futures_ws_api is not None:
        app.add_routes(venue.futures_ws_api.routes())
    app.add_routes(admin_routes(venue))
    return app


def play_scenario_faults(venue: Venue) -> list[asyncio.Task[dict[str, object]]]:
    """Apply each of the scenario's faults ``after_s`` seconds from now (on the running loop)."""

    async def play(fault: Fault) -> dict[str, object]:
        await asyncio.sleep(fault.after_s)
        return await apply_fault(fault, venue)

    return [asyncio.get_running_loop().create_task(play(f)) for f in venue.scenario.faults]


def endpoints(base_http: str) -> dict[str, str]:
    """The URLs the command prints, from the server's ``http://host:port``."""
    base_ws = base_http.replace("http://", "ws://", 1)
    return {
        "http": base_http,
        "ws_api": base_ws + WS_API_PATH,
        "ws_api_usdm": base_ws + FUTURES_WS_API_PATH,
        "ws_stream": base_ws,
        "ws_stream_usdm": base_ws + STREAM_PREFIX["usdm"],
        "ws_private": base_ws + PRIVATE_STREAM_PATH.removesuffix("/ws"),
        "admin": base_http + "/_emulator",
    }


@dataclass(frozen=True)
class ServeOptions:
    """What ``livestrat venue-emulator`` is asked: the catalog and instruments, the pace, the scenario."""

    catalog: str
    instruments: list[str]
    scenario: Scenario
    speed: float = 1.0
    start: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    state: Path | None = None


async def serve(options: ServeOptions, ready: Callable[[dict[str, str]], None], stop: asyncio.Event) -> None:
    """Serve the venue until ``stop`` is set; ``ready`` gets the endpoints once the server listens.

    The feed starts with the server: matching sees each market event before any subscriber does.
    When the catalog ends the venue stays up, its books at the last prices.
    """
    feed = MarketFeed(options.catalog, options.instruments, speed=options.speed, start=options.start)
    venue = build_venue(feed.rules, options.scenario)
    saved = load_state(options.state) if options.state is not None else None
    if saved is not None:
        restore(venue, saved)
    state_file = StateFile(options.state, venue) if options.state is not None else None
    feed.listen(venue.exchange)  # matching first, then the market streams (add_market listens after)
    if venue.futures is not None:
        feed.listen(venue.futures)
    app = build_app(venue)
    venue.market_streams = add_market(app, feed)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, options.host, options.port)
    await site.start()
    host, port = site._server.sockets[0].getsockname()[:2]
    if state_file is not None:
        state_file.start()
    ready(endpoints(f"http://{host}:{port}"))
    tasks = [asyncio.create_task(feed.run(), name="venue-feed"), *play_scenario_faults(venue)]
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await runner.cleanup()
        if state_file is not None:
            await state_file.close()


def run_command(args: argparse.Namespace) -> int:
    """``livestrat venue-emulator``: one JSON line of endpoints on stdout when ready, then serve until
    SIGTERM/SIGINT. ``--venue okx`` serves OKX's protocol instead (:mod:`livestrat.venue_emulator.okx.server`)."""
    if getattr(args, "venue", "binance") == "okx":
        from livestrat.venue_emulator.okx.server import run_command as run_okx

        return run_okx(args)
    try:
        scenario = Scenario.load(args.scenario)
    except (OSError, ValueError) as exc:
        print(f"livestrat venue-emulator: --scenario {args.scenario}: {exc}", file=sys.stderr)
        return 2
    options = ServeOptions(
        catalog=args.catalog,
        instruments=list(args.instrument),
        scenario=scenario,
        speed=args.speed,
        start=args.start,
        host=args.host,
        port=args.port,
        state=Path(args.state) if args.state else None,
    )

    def ready(urls: dict[str, str]) -> None:
        print(json.dumps(urls), flush=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(options, ready, stop)

    try:
        asyncio.run(main())
    except (InstrumentError, ValueError) as exc:
        print(f"livestrat venue-emulator: {exc}", file=sys.stderr)
        return 2
    return 0
