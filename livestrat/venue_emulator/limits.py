"""Binance's rate limits, enforced: request weight per minute, order counts, 429 with Retry-After, then the 418 ban.

The limits are the ones the venue publishes in exchangeInfo (``market_api.SPOT_RATE_LIMITS`` /
``USDM_RATE_LIMITS``): spot 6000 request weight per minute, 100 orders per 10 seconds and 200000
per day; USD-M 2400 weight per minute, 300 orders per 10 seconds and 1200 per minute. Windows are
fixed intervals on the wall clock, as ``X-MBX-USED-WEIGHT-1M`` and ``X-MBX-ORDER-COUNT-10S`` count
them (rest-api.md "IP Limits", "Unfilled Order Count"); every REST answer carries the weight header,
every accepted order the order-count headers. Weights per endpoint are rest-api.md's (and USD-M's);
an endpoint not listed weighs 1.

Past a limit the venue answers 429 (-1003 for weight, -1015 for orders) with ``Retry-After``: the
seconds until the window ends. A client that goes on sending inside that window is banned after
``ban_after`` more requests (default 3; Binance does not publish the count): every REST request then
answers 418 "IP banned until ..." with ``Retry-After`` for ``ban_s`` seconds (default 120: "from 2
minutes to 3 days"). The ``rate_limit`` fault forces the same 429 on a path.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from livestrat.venue_emulator import errors
from livestrat.venue_emulator.market_api import SPOT_RATE_LIMITS, USDM_RATE_LIMITS

DEFAULT_BAN_AFTER = 3
DEFAULT_BAN_S = 120.0
_INTERVAL_S = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}
_LETTER = {"SECOND": "S", "MINUTE": "M", "HOUR": "H", "DAY": "D"}

# (method, path) -> weight; rest-api.md per endpoint, and USD-M's "Weight" lines
WEIGHTS: dict[tuple[str, str], int] = {
    ("GET", "/api/v3/account"): 20,
    ("GET", "/api/v3/order"): 4,
    ("GET", "/api/v3/allOrders"): 20,
    ("GET", "/api/v3/myTrades"): 20,
    ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/depth"): 5,
    ("GET", "/api/v3/klines"): 2,
    ("GET", "/api/v3/ticker/bookTicker"): 2,
    ("GET", "/fapi/v2/account"): 5,
    ("GET", "/fapi/v1/allOrders"): 5,
    ("GET", "/fapi/v1/userTrades"): 5,
    ("GET", "/fapi/v3/positionRisk"): 5,
    ("GET", "/fapi/v1/klines"): 5,
    ("GET", "/fapi/v1/commissionRate"): 20,
    ("GET", "/fapi/v1/positionSide/dual"): 30,
    ("GET", "/fapi/v1/symbolConfig"): 5,
}


def weight_of(method: str, path: str, query: dict[str, str]) -> int:
    if path == "/api/v3/openOrders" and method == "GET":
        return 6 if query.get("symbol") else 80
    if path == "/fapi/v1/openOrders" and method == "GET":
        return 1 if query.get("symbol") else 40
    if path == "/api/v3/myTrades" and query.get("orderId"):
        return 5
    if path == "/fapi/v1/order" and method == "POST":
        return 0  # USD-M: "Weight: 1 on 10s order rate limit(X-MBX-ORDER-COUNT-10S); 0 on IP rate limit"
    return WEIGHTS.get((method, path), 1)


@dataclass
class _Window:
    interval: str
    num: int
    limit: int
    start: float = 0.0
    used: int = 0

    @property
    def seconds(self) -> int:
        return _INTERVAL_S[self.interval] * self.num

    def roll(self, now: float) -> None:
        start = math.floor(now / self.seconds) * self.seconds
        if start != self.start:
            self.start, self.used = start, 0

    def header(self, kind: str) -> str:
        return f"X-MBX-{kind}-{self.num}{_LETTER[self.interval]}"


def _windows(published: list[dict], kind: str) -> list[_Window]:
    return [_Window(r["interval"], r["intervalNum"], r["limit"]) for r in published if r["rateLimitType"] == kind]


@dataclass
class RateLimits:
    """Counts and refuses; clock in seconds (wall time, so windows align as Binance's do)."""

    now_s: Callable[[], float] = time.time
    ban_after: int = DEFAULT_BAN_AFTER
    ban_s: float = DEFAULT_BAN_S
    weight: dict[str, list[_Window]] = field(
        default_factory=lambda: {
            "spot": _windows(SPOT_RATE_LIMITS, "REQUEST_WEIGHT"),
            "usdm": _windows(USDM_RATE_LIMITS, "REQUEST_WEIGHT"),
        }
    )
    orders: dict[str, list[_Window]] = field(
        default_factory=lambda: {
            "spot": _windows(SPOT_RATE_LIMITS, "ORDERS"),
            "usdm": _windows(USDM_RATE_LIMITS, "ORDERS"),
        }
    )
    window_until: float = 0.0  # a 429's Retry-After window: requests inside it count towards a ban
    window_requests: int = 0
    banned_until: float = 0.0

    def refused_429(self, retry_after_s: int, ban_after: int | None = None, ban_s: float | None = None) -> None:
        """A 429 was answered: open its Retry-After window (the ``rate_limit`` fault sets its own ban terms)."""
        self.window_until = self.now_s() + retry_after_s
        self.window_requests = 0
        self.ban_after = ban_after if ban_after is not None else DEFAULT_BAN_AFTER
        self.ban_s = ban_s if ban_s is not None else DEFAULT_BAN_S

    def admit(self, request: web.Request) -> tuple[web.Response | None, dict[str, str]]:
        """The 418/429 answer for ``request``, or None and the headers to add to its answer."""
        now = self.now_s()
        if now < self.banned_until:
            return self._banned(now), {}
        if now < self.window_until:
            self.window_requests += 1
            if self.window_requests >= self.ban_after:
                self.banned_until = now + self.ban_s
                self.window_until = 0.0
                return self._banned(now), {}
        product = "usdm" if request.path.startswith("/fapi/") else "spot"
        headers: dict[str, str] = {}
        weight = weight_of(request.method, request.path, dict(request.query))
        for window in self.weight[product]:
            window.roll(now)
            if window.used + weight > window.limit:
                return self._too_many(window, now, f"Too much request weight used; current limit is {window.limit} "
                                      f"request weight per {window.num} {window.interval}. Please use WebSocket "
                                      "Streams for live updates to avoid polling the API.", -1003), {}  # fmt: skip
            window.used += weight
            headers[window.header("USED-WEIGHT")] = str(window.used)
        if request.method == "POST" and request.path in ("/api/v3/order", "/fapi/v1/order"):
            for window in self.orders[product]:
                window.roll(now)
                if window.used + 1 > window.limit:
                    msg = (
                        f"Too many new orders; current limit is {window.limit} orders per "
                        f"{window.num} {window.interval}."
                    )
                    return self._too_many(window, now, msg, -1015), headers
            for window in self.orders[product]:
                window.used += 1
                headers[window.header("ORDER-COUNT")] = str(window.used)
        return None, headers

    def _too_many(self, window: _Window, now: float, msg: str, code: int) -> web.Response:
        retry_after = max(1, math.ceil(window.start + window.seconds - now))
        self.refused_429(retry_after)
        exc = errors.BinanceError(429, code, msg)
        return web.json_response(exc.body(), status=429, headers={"Retry-After": str(retry_after)})

    def _banned(self, now: float) -> web.Response:
        until_ms = int(self.banned_until * 1000)
        exc = errors.ip_banned(until_ms)
        retry_after = str(max(1, math.ceil(self.banned_until - now)))
        return web.json_response(exc.body(), status=418, headers={"Retry-After": retry_after})
