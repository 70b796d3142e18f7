"""NautilusTrader's Binance execution client as the runtime creates it: the adapter's own, with its corrections.

Both were found by running the real adapter against the venue emulator (``tests/live/``), and each is
pinned against the adapter's source (``tests/runtime/test_binance_reconciliation.py``,
``tests/runtime/test_binance_rate_limits.py``).

**Every instrument of the spec is reconciled.** NautilusTrader 1.231's Binance execution client builds
its start-up reconciliation (``allOrders`` for the order reports, ``myTrades`` for the fill reports)
from the symbols its cache holds an open order or a position in (``_get_cache_active_symbols``), plus
open orders and, for futures, open positions at the venue. A runtime process starts with an empty
cache (the pod keeps none), so after a restart the fills the venue made while it was away came back
as fills *inferred* from an order's status (under ids NautilusTrader makes up), or not at all when
none of its orders was still open: a ledger short of fills, or holding fills the venue never made.
The factory widens that set with the symbols of the instruments the spec loads, so every trade of
the strategy's instruments is reported under the venue's trade id. Binance answers ``myTrades``
without a start time with the most recent trades (500 by default), and ``allOrders`` with the last
1000 orders (the adapter's limit): a runtime away for longer than that many fills would still miss
the oldest.

**Retry-After is honoured** (``RetryAfter``). Binance answers a client over its limits 429 with a
``Retry-After`` header, and bans the IP (418, "from 2 minutes to 3 days") when it goes on sending
(rest-api.md, "LIMITS": "failing to back off after receiving 429s will result in an automated IP
ban"). NautilusTrader 1.231's HTTP client sends on regardless, so one 429 became a ban that blocked
even the halt's cancels; and its Rust HTTP response hands Python no headers at all (``headers`` is
always empty), so the client cannot even read Retry-After. The client's ``send_request`` is wrapped:
after a 429 no request leaves for the Retry-After given, or, as the header cannot be read, for
``BACKOFF_SECONDS`` (5 s), doubled at each 429 that follows (at most 60 s) until a request succeeds;
after a 418 until the time its message gives ("IP banned until <ms>"). A request made inside that
time waits for its end when the wait is short (``WAIT_AT_MOST``), and otherwise fails at once,
locally, with the venue's own answer (418/-1003, its message saying how long), sending nothing. The
data and execution clients share one HTTP client, and so one back-off (the limits are per IP).

**A termination during a reconnect does not end the user data stream for good** (spot): NautilusTrader
1.231's client skips re-subscribing when an ``eventStreamTerminated`` arrives while it is still finishing a
reconnect, and no order event reaches the node again; ``binance_user_stream`` subscribes again. Nor does a drop
while the client logs on again after a reconnect: 1.231 then gives the stream up for good; ``binance_user_stream``
leaves it to the newer reconnect.

**A position the venue closes itself is closed in the node by the venue's trade** (futures): a liquidation or an
ADL reached NautilusTrader 1.231's engine as a status it inferred a fill from, on a position of its own beside the
strategy's, which stayed open in the node; ``binance_venue_closes`` has the venue's trade close it, and gives each ADL
order (every one is ``adl_autoclose``) a name of its own, on the stream and at reconciliation, where the engine kept
only the first of two.

**Why it did not connect** is kept on the client (``connect_failure``): a venue refusing the keys
(-2014, -2015, -1022) otherwise showed only as "execution clients not connected" after the start's
timeouts, the venue's answer left in NautilusTrader's log. Its code and message are kept, never a
request (the venue never echoes a secret); a request that got no answer is named by its URL with the
signature masked (NautilusTrader's HTTP error names the signed URL), here and in the halt's hooks below.

**The halt's venue sweep** (``venue_sweep``): an order the venue placed although its answer was lost
(a 5xx: "the execution status is unknown", rest-api.md) is marked rejected by NautilusTrader and
stays open at the venue, out of the halt's sight. After cancelling what the node knows, the halt asks
the venue for the open orders of the spec's instruments and cancels those the node submitted (its
cache holds them) but does not hold open; nobody else's order is touched.

**What the venue holds of one order** (``venue_order``): the halt asks the venue, by client order id
(``GET /api/v3/order``, ``origClientOrderId``), about an order whose cancel was not acted on after a
resend interval: whether it is open there, or closed (its status), or unknown to it (-2013). The answer,
not a guess, decides whether the halt cancels it again or counts it as not open at the venue.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from nautilus_trader.adapters.binance import BinanceExecClientConfig, BinanceLiveExecClientFactory
from nautilus_trader.adapters.binance.common.credentials import is_ed25519_private_key
from nautilus_trader.adapters.binance.common.enums import BinanceKeyType
from nautilus_trader.adapters.binance.http.error import BinanceClientError, BinanceError
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus

from strategy_runtime.live.binance_user_stream import resubscribe_after_reconnect
from strategy_runtime.live.binance_venue_closes import venue_closes_by_their_trades
from strategy_runtime.live.client_hooks import (
    CONNECT_FAILURE_ATTRIBUTE,
    VENUE_ORDER_ATTRIBUTE,
    VENUE_SWEEP_ATTRIBUTE,
    VenueOrder,
)

logger = logging.getLogger("livestrat.halt")

TOO_MANY_REQUESTS = (429, 418)  # 418: the IP ban that follows 429s not backed off from
BACKOFF_SECONDS = 5.0  # a 429 whose Retry-After cannot be read: doubled at each 429 that follows
BACKOFF_AT_MOST = 60.0
WAIT_AT_MOST = 5.0  # a request waits out a back-off this short; a longer one (a ban) fails at once
TOO_MUCH_REQUEST_WEIGHT = -1003  # Binance's code for both (errors.md)
NO_SUCH_ORDER = -2013  # errors.md: "Order does not exist."
# enums.md "Order status": the statuses of an order the venue no longer holds open (it can no longer fill)
CLOSED_STATUSES = frozenset({"FILLED", "CANCELED", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH"})
_BANNED_UNTIL = re.compile(r"banned until (\d{10,})")
# A signed request's signature (an HMAC or Ed25519 signature of its query under the API secret), as NautilusTrader's
# HTTP errors show it in the URL they name ("error sending request for url (…&signature=…)").
_SIGNATURE = re.compile(r"(signature=)[^&\s)]+", re.IGNORECASE)


def _unsigned(text: str) -> str:
    """``text`` with the signature of any signed request it names masked (the rest of the URL kept: where it went)."""
    return _SIGNATURE.sub(r"\1***", text)


class VenueUnreachable(Exception):
    """A request to the venue that got no answer; its text names the request without its signature."""


def _unreachable(exc: BaseException) -> VenueUnreachable:
    return VenueUnreachable(_unsigned(f"{type(exc).__name__}: {exc}"))


def _retry_after(headers: Mapping[str, Any] | None) -> float | None:
    for name, value in (headers or {}).items():
        if str(name).lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


def _banned_for(message: Any, now_epoch: float) -> float | None:
    """The seconds left of a ban whose end a 418's message gives (``IP banned until 1796553824649.``)."""
    text = message.get("msg", "") if isinstance(message, Mapping) else str(message)
    match = _BANNED_UNTIL.search(text)
    return max(0.0, int(match.group(1)) / 1000 - now_epoch) if match else None


class RetryAfter:
    """No request to the venue inside the back-off of its last 429/418 (see the module docstring)."""

    _ATTRIBUTE = "_livestrat_retry_after"

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        wall: Callable[[], float] = time.time,
        wait_at_most: float = WAIT_AT_MOST,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._wall = wall
        self._wait_at_most = wait_at_most
        self.until = 0.0  # on ``clock``: no request before this
        self.status = 429
        self.backoffs = 0  # 429/418 answers seen
        self._in_a_row = 0  # 429s since the last request that succeeded

    def install(self, client: Any) -> RetryAfter:
        """Wrap ``client.send_request`` (a BinanceHttpClient's); the back-off already installed there, if any."""
        installed = getattr(client, self._ATTRIBUTE, None)
        if installed is not None:
            return installed
        send = client.send_request

        async def send_request(
            http_method: Any, url_path: str, payload: Any = None, ratelimiter_keys: Any = None
        ) -> bytes:
            await self._wait()
            try:
                answer = await send(http_method, url_path, payload=payload, ratelimiter_keys=ratelimiter_keys)
            except BinanceClientError as exc:
                if exc.status in TOO_MANY_REQUESTS:
                    self._back_off(exc)
                raise
            self._in_a_row = 0
            return answer

        client.send_request = send_request
        setattr(client, self._ATTRIBUTE, self)
        return self

    def _back_off(self, exc: BinanceClientError) -> None:
        self.backoffs += 1
        self.status = exc.status
        seconds = _retry_after(exc.headers)
        if seconds is None and exc.status == 418:
            seconds = _banned_for(exc.message, self._wall())
        if seconds is None:
            seconds = min(BACKOFF_AT_MOST, BACKOFF_SECONDS * 2**self._in_a_row)
            self._in_a_row += 1
        self.until = max(self.until, self._clock() + seconds)

    async def _wait(self) -> None:
        wait = self.until - self._clock()
        if wait <= 0:
            return
        if wait > self._wait_at_most:
            message = (
                f"not sent: Binance asked for no request for another {wait:.0f}s (Retry-After, after HTTP "
                f"{self.status}); sending now would extend an IP ban"
            )
            raise BinanceClientError(418, {"code": TOO_MUCH_REQUEST_WEIGHT, "msg": message}, {})
        await self._sleep(wait)


class BinanceExecClientFactory(BinanceLiveExecClientFactory):
    """The adapter's factory; its clients reconcile every instrument of ``config.instrument_provider.load_ids``
    and their HTTP client honours Retry-After."""

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: BinanceExecClientConfig,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> Any:
        client = BinanceLiveExecClientFactory.create(loop, name, config, msgbus, cache, clock)
        symbols = frozenset(i.symbol.value for i in (config.instrument_provider.load_ids or ()))
        in_cache = client._get_cache_active_symbols

        def active_symbols() -> set[str]:
            return in_cache() | symbols

        # The adapter's private attributes (NautilusTrader 1.231), pinned by test_binance_reconciliation.
        client._get_cache_active_symbols = active_symbols
        RetryAfter().install(client._http_client)
        if not config.account_type.is_futures:
            resubscribe_after_reconnect(client._ws_client)
        else:
            venue_closes_by_their_trades(client)
        connect = client._connect
        hint = _key_type_hint(config)

        async def connect_or_say_why() -> None:
            try:
                await connect()
            except Exception as exc:
                setattr(client, CONNECT_FAILURE_ATTRIBUTE, _refusal(exc) + (hint if _refused_the_key(exc) else ""))
                raise

        client._connect = connect_or_say_why

        async def sweep(ours: Callable[[str], bool]) -> int:
            left = 0
            for symbol in sorted(symbols):
                try:
                    orders = await client._http_account.query_open_orders(symbol)
                except BinanceError:
                    raise
                except Exception as exc:  # no answer: the error names the signed URL
                    raise _unreachable(exc) from None
                for order in orders:
                    if not ours(order.clientOrderId):
                        continue
                    logger.warning(
                        "halt: %s is open at the venue but not in the node (its answer was lost): cancelling it there",
                        order.clientOrderId,
                    )
                    try:
                        await client._http_account.cancel_order(symbol=symbol, orig_client_order_id=order.clientOrderId)
                    except BinanceError as exc:
                        left += 1
                        logger.error("halt: the venue did not cancel %s: %s", order.clientOrderId, exc.message)
            return left

        async def order_at_venue(symbol: str, client_order_id: str) -> VenueOrder:
            try:
                order = await client._http_account.query_order(symbol=symbol, orig_client_order_id=client_order_id)
            except BinanceError as exc:
                if isinstance(exc.message, Mapping) and exc.message.get("code") == NO_SUCH_ORDER:
                    return VenueOrder(open=False, status="unknown to the venue (-2013 Order does not exist)")
                raise
            except Exception as exc:  # no answer: the error names the signed URL
                raise _unreachable(exc) from None
            status = order.status.value if order.status is not None else "?"
            return VenueOrder(open=status not in CLOSED_STATUSES, status=status)

        setattr(client, VENUE_SWEEP_ATTRIBUTE, sweep)
        setattr(client, VENUE_ORDER_ATTRIBUTE, order_at_venue)
        return client


# Binance's answers to keys it does not take (errors.md): the user fixes them in the credentials Secret.
_CREDENTIAL_CODES = {-2014, -2015, -1022}


def _refusal(exc: BaseException) -> str:
    if isinstance(exc, BinanceError) and isinstance(exc.message, Mapping):
        code, msg = exc.message.get("code"), str(exc.message.get("msg") or "").rstrip(".")
        text = f"the venue answered HTTP {exc.status}, {code} {msg}"
        if code in _CREDENTIAL_CODES:
            text += ": check the API key and secret in the Secret named by spec.venue.credentialsSecret"
        return text
    return _unsigned(f"{type(exc).__name__}: {str(exc)[:300]}")


def _refused_the_key(exc: BaseException) -> bool:
    """The venue answered and refused the credentials (not a network error): a REST refusal, or a WebSocket API
    ``session.logon`` refused (NautilusTrader raises those as RuntimeError with the venue's message)."""
    if isinstance(exc, BinanceError) and isinstance(exc.message, Mapping):
        return exc.message.get("code") in _CREDENTIAL_CODES
    return isinstance(exc, RuntimeError) and "session.logon failed" in str(exc)


def _key_type_hint(config: BinanceExecClientConfig) -> str:
    """What to tell a spot or margin account whose secret is not an Ed25519 private key, should it not connect.

    Binance's spot WebSocket API takes ``session.logon`` from Ed25519 keys only ("Only Ed25519 keys are
    supported for this feature", web-socket-api "Session Authentication"), and NautilusTrader 1.231's spot
    and margin execution client logs on there for its user data stream whatever the key: with an HMAC (or
    RSA) key it never connects. Futures keep their listen key over REST with an HMAC key, and are fine.
    """
    if config.account_type.is_futures or config.key_type == BinanceKeyType.ED25519:
        return ""
    if is_ed25519_private_key(config.api_secret or ""):
        return ""
    return (
        "; the secret is not an Ed25519 private key, and Binance's spot WebSocket API (where NautilusTrader's "
        "spot and margin client subscribes to its user data) accepts only Ed25519 keys: register an Ed25519 key "
        "pair with Binance and put its API key in the credentials Secret's api-key and the private key (PEM, "
        'unencrypted) in its api-secret (docs/runtime.md, "Credentials")'
    )


def connect_failure(client: Any) -> str | None:
    """Why ``client`` (an execution client the runtime's factory made) could not connect, or None."""
    return getattr(client, CONNECT_FAILURE_ATTRIBUTE, None)
