"""``livestrat venue-emulator --venue okx``: the OKX venue served from a catalog's market.

Prints one JSON line ``{"http", "ws_public", "ws_private", "ws_business", "admin"}`` once it listens,
then serves until SIGTERM or SIGINT. The admin API (``/_emulator/trades``, ``/orders``,
``/balances``, ``/state``) answers in the Binance emulator's shapes, so a test asks both the same way;
``POST /_emulator/faults`` takes the shared fault models OKX can play (``reject_next_order``,
``partial_fill``, ``drop_user_stream``: the private connections, ``drop_market_stream``: the public
and business ones) and answers 400 for the others.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from pydantic import ValidationError

from livestrat.venue_emulator.exchange import Exchange
from livestrat.venue_emulator.faults import FAULT, DropMarketStream, DropUserStream, PartialFill, RejectNextOrder
from livestrat.venue_emulator.feed import MarketFeed
from livestrat.venue_emulator.instruments import InstrumentError
from livestrat.venue_emulator.okx.scenario import OkxScenario
from livestrat.venue_emulator.okx.venue import WS_PREFIX, OkxVenue
from livestrat.venue_emulator.spot_api import order_json, trade_json, wire
from livestrat.venue_emulator.state_file import StateFile, load_state, restore

VENUE = "OKX"
ADMIN_PREFIX = "/_emulator"


def admin_routes(venue: OkxVenue) -> list[web.RouteDef]:
    exchange = venue.exchange

    async def trades(request: web.Request) -> web.Response:
        return web.json_response([trade_json(t) for t in exchange.trades(request.query.get("symbol"))])

    async def orders(request: web.Request) -> web.Response:
        is_open = request.query.get("open", "").lower() == "true"
        rows = exchange.open_orders() if is_open else exchange.every_order()
        return web.json_response([order_json(o) for o in rows])

    async def balances(_request: web.Request) -> web.Response:
        return web.json_response(
            {a: {"free": wire(b.free), "locked": wire(b.locked)} for a, b in exchange.balances().items()}
        )

    async def state(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "trades": len(exchange.trades()),
                "open_orders": len(exchange.open_orders()),
                "private_sessions": venue.private_sessions,
            }
        )

    async def inject(request: web.Request) -> web.Response:
        """The shared fault models (``faults.py``) that OKX's venue can play; the others answer 400."""
        try:
            fault = FAULT.validate_json(await request.read())
        except ValidationError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if isinstance(fault, RejectNextOrder):
            exchange.reject_next_order(fault.msg)  # answered 51008 (the default) or 51000 with the message
        elif isinstance(fault, PartialFill):
            exchange.fill_next_partially(fault.fraction)
        elif isinstance(fault, DropUserStream):
            return web.json_response({"dropped": await venue.drop_all("private")})
        elif isinstance(fault, DropMarketStream):
            return web.json_response({"dropped": await venue.drop_all("public") + await venue.drop_all("business")})
        else:
            return web.json_response({"error": f"fault {fault.kind} is not emulated for OKX"}, status=400)
        return web.json_response({"armed": fault.kind})

    return [
        web.get(f"{ADMIN_PREFIX}/trades", trades),
        web.get(f"{ADMIN_PREFIX}/orders", orders),
        web.get(f"{ADMIN_PREFIX}/balances", balances),
        web.get(f"{ADMIN_PREFIX}/state", state),
        web.post(f"{ADMIN_PREFIX}/faults", inject),
    ]


def endpoints(base_http: str) -> dict[str, str]:
    base_ws = base_http.replace("http://", "ws://", 1) + WS_PREFIX
    return {
        "http": base_http,
        "ws_public": base_ws + "/public",
        "ws_private": base_ws + "/private",
        "ws_business": base_ws + "/business",
        "admin": base_http + ADMIN_PREFIX,
    }


async def serve(
    args: argparse.Namespace, scenario: OkxScenario, ready: Callable[[dict[str, str]], None], stop: asyncio.Event
) -> None:
    feed = MarketFeed(args.catalog, list(args.instrument), speed=args.speed, start=args.start, venue=VENUE)
    venue = OkxVenue(feed.rules, scenario.okx_keys(), dict(scenario.balances), feed=feed)
    # --state: the Binance emulator's state file, with the OKX venue's one (spot) exchange as its books
    books = _Books(venue.exchange)
    saved = load_state(Path(args.state)) if args.state else None
    if saved is not None:
        restore(books, saved)
    else:
        scenario.place_open_orders(venue.exchange)
    state_file = StateFile(Path(args.state), books) if args.state else None
    feed.listen(venue.exchange)  # matching first, then the public channels
    feed.listen(venue)
    app = venue.app()
    app.add_routes(admin_routes(venue))
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    host, port = site._server.sockets[0].getsockname()[:2]
    if state_file is not None:
        state_file.start()
    ready(endpoints(f"http://{host}:{port}"))
    task = asyncio.create_task(feed.run(), name="venue-feed")
    try:
        await stop.wait()
    finally:
        task.cancel()
        await runner.cleanup()
        if state_file is not None:
            await state_file.close()


@dataclass
class _Books:
    """What ``state_file`` keeps of a venue (it reads ``exchange`` and ``futures`` only): the OKX venue's
    spot exchange; there is no USD-M account here."""

    exchange: Exchange
    futures: None = None


def run_command(args: argparse.Namespace) -> int:
    try:
        scenario = OkxScenario.load(args.scenario)
    except (OSError, ValueError) as exc:
        print(f"livestrat venue-emulator: --scenario {args.scenario}: {exc}", file=sys.stderr)
        return 2

    def ready(urls: dict[str, str]) -> None:
        print(json.dumps(urls), flush=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(args, scenario, ready, stop)

    try:
        asyncio.run(main())
    except (InstrumentError, ValueError) as exc:
        print(f"livestrat venue-emulator: {exc}", file=sys.stderr)
        return 2
    return 0
