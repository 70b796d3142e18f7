"""A market feed the test holds by the hand: each event waits on a gate, which can shut itself half-way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from livestrat.venue_emulator.events import MarketEvent
from livestrat.venue_emulator.feed import MarketFeed
from livestrat.venue_emulator.market_api import add_market

DAY_MS = 86_400_000


class Gate:
    """The feed's clock in these tests: every event waits on the gate; ``pause_at`` shuts it after that many events.

    It also records what the feed sent (it listens before the streams do).
    """

    def __init__(self, *, open_: bool = True) -> None:
        self.open = asyncio.Event()
        if open_:
            self.open.set()
        self.events: list[MarketEvent] = []
        self.pause_at: int | None = None

    def now_ms(self) -> int:
        return 0  # every event is "due later": the feed asks sleep() before each one

    async def sleep(self, _seconds: float) -> None:
        await self.open.wait()

    def on_market(self, event: MarketEvent) -> None:
        self.events.append(event)
        if len(self.events) == self.pause_at:
            self.open.clear()


def gated_feed(catalog, ids, gate: Gate) -> MarketFeed:
    # Stamped from a day ago: every event is in the node's past (request_bars drops klines not yet closed).
    origin_ms = time.time_ns() // 1_000_000 - DAY_MS
    feed = MarketFeed(catalog, ids, speed=60.0, origin_ms=origin_ms, now_ms=gate.now_ms, sleep=gate.sleep)
    feed.listen(gate)
    return feed


@dataclass
class ServedMarket:
    """The emulator's market over HTTP and WebSocket, fed by a gated feed (shut until the test opens the gate)."""

    gate: Gate
    feed: MarketFeed
    streams: Any  # the market's streams (add_market): subscriptions, connections, drop_all
    http: str
    bars: int  # one-minute bars of the catalog, for the instruments served

    def endpoints(self, stream_prefix: str = "") -> dict[str, str]:
        """The adapter's endpoints override (LIVESTRAT_VENUE_ENDPOINTS): REST, market streams, WebSocket API."""
        ws = self.http.replace("http://", "ws://")
        return {"http": self.http, "ws_stream": ws + stream_prefix, "ws_api": ws + "/ws-api/v3"}


async def served_market(
    serve: Callable[[web.Application], Awaitable[str]], catalog: Any, ids: Sequence[str]
) -> ServedMarket:
    gate = Gate(open_=False)
    feed = gated_feed(catalog, list(ids), gate)
    app = web.Application()
    streams = add_market(app, feed)
    bars = len(ParquetDataCatalog(str(catalog)).bars(instrument_ids=list(ids)))
    return ServedMarket(gate, feed, streams, await serve(app), bars)


async def wait_until(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None
