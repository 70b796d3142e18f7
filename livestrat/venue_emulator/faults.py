"""Faults on demand: what a test or a scenario asks the venue to do wrong, and the admin API that asks.

One pydantic model per fault (the admin API's ``POST /_emulator/faults`` body and a scenario's
``faults`` entries are the same models), applied by :func:`apply_fault`:

- ``http_error``: the next ``count`` requests of ``path`` answer ``status`` (5xx). With ``executed``
  the request is carried out first (an order is placed) and only the answer is lost: rest-api.md
  "HTTP Return Codes" says a 5xx leaves the execution status unknown.
- ``rate_limit``: the next ``count`` requests of ``path`` answer 429 with ``Retry-After`` (seconds).
  A client that goes on sending inside that window is banned: after ``ban_after`` such requests
  every REST request answers 418 with ``Retry-After`` until the ban ends (rest-api.md "IP Limits":
  "Repeatedly violating rate limits and/or failing to back off after receiving 429s will result
  in an automated IP ban (HTTP status 418)"; bans last "from 2 minutes to 3 days"). The same
  window and ban follow a 429 the venue's own limits give (:mod:`limits`).
- ``delay_ack``: the next ``count`` requests of ``path`` are carried out at once but answered
  ``seconds`` later (user-data events overtake the REST answer).
- ``reject_next_order``: the next new order is refused -2010 with ``msg``.
- ``partial_fill``: the next order's first fill is only ``fraction`` of it.
- ``drop_user_stream``: every WebSocket API connection and USD-M private stream is cut (no close
  handshake).
- ``silence_user_stream``: every spot WebSocket API connection is cut off from its client one way,
  silently (a network partition: no close, no reset): requests are still carried out, but the answers
  and user-data events sent on it are lost; after ``seconds`` the connections are cut, as Binance cuts
  one whose pongs stop (web-socket-api.md: "within a minute"). Orders go by REST and still work.
- ``expire_user_stream``: every spot user-data subscription ends with ``eventStreamTerminated``; the
  USD-M listen key expires (its streams get ``listenKeyExpired`` and close; keepalives answer -1125).
- ``drop_market_stream``: every market-stream connection is cut (the market side's ``drop_all``).
- ``fill_between``: the market trades through every open order of the account (``product``) between
  two of a client's queries: the next request of ``held`` waits until a request of ``answered`` has
  been answered since the fault was armed (at most ``seconds``), then every open order fills in full
  at its own price, as a maker, and only then is the held request carried out. What a reconciling
  client meets when it asks for the order statuses and the trades side by side (NautilusTrader 1.231's
  ``generate_mass_status``): an order reported FILLED whose trade the trade list it got did not hold.
  With ``only_after``, requests of ``held`` made before ``answered`` was answered pass untouched, and
  none waits: the first one made after meets the fill (a client that asks ``held`` at connect as well,
  as NautilusTrader's USD-M client asks the positions, meets the fill only between the two queries).
- ``liquidation``: the venue closes the USD-M account's position in ``symbol`` (``quantity`` of it; default: all)
  with an order of its own, at ``price`` (default: the mark price) or in one execution per price of ``prices``: a
  liquidation (client order id ``autoclose-<ms>``) or, with ``adl``, an auto-deleveraging (``adl_autoclose``); the
  user-data stream carries it as USD-M documents it (``Exchange.close_position_by_venue``), after expiring every open
  order of the account (``er`` 5, "Order has expired when the account was liquidated"). Answers the order id and the
  trade ids.

The admin API (never behind the faults) also answers ``GET /_emulator/trades``,
``/_emulator/orders[?open=true]`` (``&product=usdm`` for the USD-M account), ``/_emulator/balances``
(spot), ``/_emulator/positions`` (USD-M wallet and positions), ``/_emulator/state`` and
``/_emulator/listen_keys`` (every USD-M listen key issued, oldest first: what a leak test searches logs for).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Literal, Protocol

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from livestrat.venue_emulator import errors
from livestrat.venue_emulator.accounts import UsdmAccount
from livestrat.venue_emulator.exchange import Exchange
from livestrat.venue_emulator.futures_api import futures_order_json, futures_trade_json
from livestrat.venue_emulator.limits import DEFAULT_BAN_S, RateLimits
from livestrat.venue_emulator.spot_api import error_response, order_json, trade_json, wire

if TYPE_CHECKING:
    from livestrat.venue_emulator.server import Venue

ADMIN_PREFIX = "/_emulator"


class _Fault(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    after_s: float = Field(0.0, ge=0, description="in a scenario: seconds after the start to apply it")


class HttpError(_Fault):
    kind: Literal["http_error"] = "http_error"
    path: str
    count: int = Field(1, ge=1)
    status: int = Field(503, ge=500, le=599)
    executed: bool = False


class RateLimit(_Fault):
    kind: Literal["rate_limit"] = "rate_limit"
    path: str
    count: int = Field(1, ge=1)
    retry_after_s: int = Field(1, ge=1)
    ban_after: int = Field(3, ge=1, description="requests inside the Retry-After window that earn a 418 ban")
    ban_s: float = Field(DEFAULT_BAN_S, gt=0)


class DelayAck(_Fault):
    kind: Literal["delay_ack"] = "delay_ack"
    path: str
    count: int = Field(1, ge=1)
    seconds: float = Field(gt=0)


class RejectNextOrder(_Fault):
    kind: Literal["reject_next_order"] = "reject_next_order"
    msg: str = errors.INSUFFICIENT_BALANCE
    product: Literal["spot", "usdm"] = "spot"


class PartialFill(_Fault):
    kind: Literal["partial_fill"] = "partial_fill"
    fraction: Decimal = Field(gt=0, lt=1)
    product: Literal["spot", "usdm"] = "spot"


class DropUserStream(_Fault):
    kind: Literal["drop_user_stream"] = "drop_user_stream"


class SilenceUserStream(_Fault):
    kind: Literal["silence_user_stream"] = "silence_user_stream"
    seconds: float = Field(60.0, gt=0, description="until the silenced connections are cut")


class ExpireUserStream(_Fault):
    kind: Literal["expire_user_stream"] = "expire_user_stream"


class DropMarketStream(_Fault):
    kind: Literal["drop_market_stream"] = "drop_market_stream"


class FillBetween(_Fault):
    kind: Literal["fill_between"] = "fill_between"
    held: str = Field(description="the path whose next request waits, then meets the orders filled")
    answered: str = Field(description="the path whose answer the held request waits for")
    seconds: float = Field(5.0, gt=0, description="the longest the held request waits")
    product: Literal["spot", "usdm"] = "spot"
    only_after: bool = Field(
        False,
        description="requests of held made before answered was answered pass untouched (none waits); the first "
        "one made after meets the fill",
    )


class Liquidation(_Fault):
    kind: Literal["liquidation"] = "liquidation"
    symbol: str
    price: Decimal | None = Field(None, gt=0, description="the close's price; the mark price when unset")
    adl: bool = Field(False, description="an auto-deleveraging (adl_autoclose) rather than a liquidation")
    quantity: Decimal | None = Field(None, gt=0, description="how much of the position; all of it when unset")
    prices: list[Decimal] = Field(
        default_factory=list, description="one execution per price (instead of price), the quantity split evenly"
    )


Fault = Annotated[
    HttpError
    | RateLimit
    | DelayAck
    | RejectNextOrder
    | PartialFill
    | DropUserStream
    | SilenceUserStream
    | ExpireUserStream
    | DropMarketStream
    | FillBetween
    | Liquidation,
    Field(discriminator="kind"),
]
FAULT = TypeAdapter(Fault)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class MarketStreams(Protocol):
    async def drop_all(self) -> int: ...


@dataclass
class _PathRule:
    fault: HttpError | RateLimit | DelayAck
    left: int


@dataclass
class _FillBetweenRule:
    fault: FillBetween
    exchange: Exchange
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    taken: bool = False


@dataclass
class HttpFaults:
    """The REST faults armed now, in front of the venue's rate limits (which own the 429 window and the ban)."""

    limits: RateLimits = field(default_factory=RateLimits)
    rules: list[_PathRule] = field(default_factory=list)
    fills_between: list[_FillBetweenRule] = field(default_factory=list)

    def arm(self, fault: HttpError | RateLimit | DelayAck) -> None:
        self.rules.append(_PathRule(fault, fault.count))

    def arm_fill_between(self, fault: FillBetween, exchange: Exchange) -> None:
        self.fills_between.append(_FillBetweenRule(fault, exchange))

    async def _fill_between(self, path: str) -> None:
        """Before a request of ``path``: a ``fill_between`` that holds it waits for its other path's answer, then
        fills every open order (see the module docstring)."""
        for rule in [r for r in self.fills_between if r.fault.held == path and not r.taken]:
            if rule.fault.only_after and not rule.answered.is_set():
                continue
            rule.taken = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rule.answered.wait(), rule.fault.seconds)
            rule.exchange.trade_through_open_orders()
            self.fills_between.remove(rule)

    def _answered(self, path: str) -> None:
        for rule in self.fills_between:
            if rule.fault.answered == path:
                rule.answered.set()

    def _take(self, path: str) -> HttpError | RateLimit | DelayAck | None:
        for rule in self.rules:
            if rule.fault.path == path and rule.left > 0:
                rule.left -= 1
                if rule.left == 0:
                    self.rules.remove(rule)
                return rule.fault
        return None

    def middleware(self) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
        @web.middleware
        async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith(ADMIN_PREFIX) or request.headers.get("Upgrade", "").lower() == "websocket":
                return await handler(request)
            refused, headers = self.limits.admit(request)
            if refused is not None:
                return refused
            fault = self._take(request.path)
            if isinstance(fault, RateLimit):
                self.limits.refused_429(fault.retry_after_s, fault.ban_after, fault.ban_s)
                return error_response(
                    errors.too_many_requests("6000 request weight per 1 MINUTE"),
                    {"Retry-After": str(fault.retry_after_s)},
                )
            if isinstance(fault, HttpError):
                if fault.executed:
                    await handler(request)
                return error_response(errors.server_error(fault.status))
            await self._fill_between(request.path)
            response = await handler(request)
            self._answered(request.path)
            if isinstance(fault, DelayAck):
                await asyncio.sleep(fault.seconds)
            if isinstance(response, web.Response):
                response.headers.update(headers)
            return response

        return faults


def _exchange(venue: Venue, product: str) -> Exchange:
    if product == "usdm":
        if venue.futures is None:
            raise ValueError("this emulator lists no USD-M symbols")
        return venue.futures
    return venue.exchange


async def apply_fault(fault: Fault, venue: Venue) -> dict[str, object]:
    """Arm or carry out one fault; what it did, for the admin API's answer."""
    if isinstance(fault, HttpError | RateLimit | DelayAck):
        venue.http_faults.arm(fault)
        return {"armed": fault.kind, "path": fault.path, "count": fault.count}
    if isinstance(fault, FillBetween):
        venue.http_faults.arm_fill_between(fault, _exchange(venue, fault.product))
        return {"armed": fault.kind, "held": fault.held, "answered": fault.answered}
    if isinstance(fault, RejectNextOrder):
        _exchange(venue, fault.product).reject_next_order(fault.msg)
        return {"armed": fault.kind}
    if isinstance(fault, PartialFill):
        _exchange(venue, fault.product).fill_next_partially(fault.fraction)
        return {"armed": fault.kind}
    if isinstance(fault, Liquidation):
        try:
            trades = _exchange(venue, "usdm").close_position_by_venue(
                fault.symbol, fault.price, adl=fault.adl, quantity=fault.quantity, prices=fault.prices
            )
        except errors.BinanceError as exc:  # an unknown symbol
            raise ValueError(exc.msg) from exc
        return {"closed": fault.kind, "order_id": trades[0].order_id, "trade_ids": [t.trade_id for t in trades]}
    if isinstance(fault, DropUserStream):
        dropped = await venue.ws_api.drop_all()
        if venue.futures_ws_api is not None:
            dropped += await venue.futures_ws_api.drop_all()
        if venue.futures_streams is not None:
            dropped += await venue.futures_streams.drop_all()
        return {"dropped": dropped}
    if isinstance(fault, SilenceUserStream):
        return {"silenced": venue.ws_api.silence(fault.seconds)}
    if isinstance(fault, ExpireUserStream):
        ended = venue.ws_api.terminate_subscriptions()
        if venue.futures_streams is not None:
            ended += venue.futures_streams.expire()
        return {"terminated": ended}
    if venue.market_streams is None:
        raise ValueError("this emulator serves no market streams to drop")
    return {"dropped": await venue.market_streams.drop_all()}


def admin_routes(venue: Venue) -> list[web.RouteDef]:
    """``/_emulator/...``: the venue's state for tests, and faults on demand. ``?product=usdm`` asks the
    USD-M account instead of the spot one."""

    def exchange_of(request: web.Request) -> Exchange:
        return _exchange(venue, request.query.get("product", "spot"))

    async def trades(request: web.Request) -> web.Response:
        exchange = exchange_of(request)
        rows = exchange.trades(request.query.get("symbol"))
        if exchange.product == "usdm":
            return web.json_response([futures_trade_json(exchange, t) for t in rows])
        return web.json_response([trade_json(t) for t in rows])

    async def orders(request: web.Request) -> web.Response:
        exchange = exchange_of(request)
        if request.query.get("open", "").lower() == "true":
            rows = exchange.open_orders(request.query.get("symbol"))
        else:
            rows = exchange.every_order()
        if exchange.product == "usdm":
            return web.json_response([futures_order_json(exchange, o) for o in rows])
        return web.json_response([order_json(o) for o in rows])

    async def balances(_request: web.Request) -> web.Response:
        return web.json_response(
            {a: {"free": wire(b.free), "locked": wire(b.locked)} for a, b in venue.exchange.balances().items()}
        )

    async def positions(_request: web.Request) -> web.Response:
        futures = _exchange(venue, "usdm")
        account = futures.account
        assert isinstance(account, UsdmAccount)
        return web.json_response(
            {
                "wallet": wire(account.wallet),
                "positions": {
                    s: {"amount": f"{p.amount:f}", "entry_price": f"{p.entry_price:f}", "realized": wire(p.realized)}
                    for s, p in account.positions.items()
                },
            }
        )

    async def state(_request: web.Request) -> web.Response:
        futures = venue.futures
        return web.json_response(
            {
                "trades": len(venue.exchange.trades()),
                "open_orders": len(venue.exchange.open_orders()),
                "user_stream_subscriptions": venue.ws_api.subscribed_sessions,
                "usdm_trades": len(futures.trades()) if futures else 0,
                "usdm_open_orders": len(futures.open_orders()) if futures else 0,
                "usdm_private_streams": venue.futures_streams.connected if venue.futures_streams else 0,
            }
        )

    async def listen_keys(_request: web.Request) -> web.Response:
        _exchange(venue, "usdm")  # a venue without USD-M has no listen keys to ask for: 400
        streams = venue.futures_streams
        return web.json_response({"listen_keys": list(streams.issued) if streams is not None else []})

    async def inject(request: web.Request) -> web.Response:
        try:
            fault = FAULT.validate_json(await request.read())
            return web.json_response(await apply_fault(fault, venue))
        except (ValidationError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)

    def route(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except ValueError as exc:  # asked for the USD-M account of a venue without one
                return web.json_response({"error": str(exc)}, status=400)

        return guarded

    return [
        web.get(f"{ADMIN_PREFIX}/trades", route(trades)),
        web.get(f"{ADMIN_PREFIX}/orders", route(orders)),
        web.get(f"{ADMIN_PREFIX}/balances", route(balances)),
        web.get(f"{ADMIN_PREFIX}/positions", route(positions)),
        web.get(f"{ADMIN_PREFIX}/state", route(state)),
        web.get(f"{ADMIN_PREFIX}/listen_keys", route(listen_keys)),
        web.post(f"{ADMIN_PREFIX}/faults", inject),
    ]
