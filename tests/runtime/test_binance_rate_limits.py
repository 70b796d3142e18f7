"""Binance's 429 and 418 answers are honoured: nothing is sent to the venue before its Retry-After has passed.

Binance (rest-api.md, "LIMITS"): a 429 carries ``Retry-After`` (seconds); "repeatedly violating rate
limits and/or failing to back off after receiving 429s will result in an automated IP ban (HTTP status
418)". NautilusTrader 1.231's Binance HTTP client ignores the header and sends on. The runtime's
``RetryAfter`` wraps the client's ``send_request``: a short wait is waited out, then the request goes;
a long one (a ban) fails at once, locally, as the venue would answer it, without sending anything.
tests/live/test_spot_story.py shows it against the venue emulator.
"""

from __future__ import annotations

import pytest
from nautilus_trader.adapters.binance.http.error import BinanceClientError

from strategy_runtime.live.binance import RetryAfter

TOO_MANY = {"code": -1003, "msg": "Too much request weight used"}


class FakeClient:
    """A BinanceHttpClient's ``send_request``: answers what the test queues, records what was sent."""

    def __init__(self, *answers: BaseException | bytes) -> None:
        self.answers = list(answers)
        self.sent: list[str] = []

    async def send_request(self, http_method, url_path, payload=None, ratelimiter_keys=None) -> bytes:
        self.sent.append(url_path)
        answer = self.answers.pop(0) if self.answers else b"{}"
        if isinstance(answer, BaseException):
            raise answer
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_after_a_429_the_next_request_waits_out_retry_after_then_goes():
    client, clock = FakeClient(BinanceClientError(429, TOO_MANY, {"retry-after": "2"})), Clock()
    RetryAfter(clock=clock, sleep=clock.sleep).install(client)
    with pytest.raises(BinanceClientError):
        await client.send_request("POST", "/api/v3/order")
    clock.now += 0.5
    assert await client.send_request("POST", "/api/v3/order") == b"{}"
    assert clock.slept == [1.5] and client.sent == ["/api/v3/order", "/api/v3/order"]


async def test_a_ban_fails_at_once_without_sending_and_names_the_wait():
    banned = BinanceClientError(418, {"code": -1003, "msg": "IP banned until 1796553824649."}, {"Retry-After": "120"})
    client, clock = FakeClient(banned), Clock()
    RetryAfter(clock=clock, sleep=clock.sleep).install(client)
    with pytest.raises(BinanceClientError):
        await client.send_request("GET", "/api/v3/openOrders")
    with pytest.raises(BinanceClientError) as caught:
        await client.send_request("DELETE", "/api/v3/order")
    assert client.sent == ["/api/v3/openOrders"], "nothing sent during the ban"
    assert caught.value.status == 418 and caught.value.message["code"] == -1003
    assert (
        "not sent: Binance asked for no request for another 120s (Retry-After, after HTTP 418)"
        in (caught.value.message["msg"])
    )
    clock.now += 121
    assert await client.send_request("DELETE", "/api/v3/order") == b"{}"


async def test_a_429_without_a_readable_retry_after_backs_off_longer_each_time_until_a_request_succeeds():
    # NautilusTrader 1.231's HTTP responses carry no headers: the back-off cannot read Retry-After.
    client, clock = FakeClient(*(BinanceClientError(429, TOO_MANY, {}) for _ in range(2))), Clock()
    RetryAfter(clock=clock, sleep=clock.sleep, wait_at_most=30).install(client)
    for _ in range(2):
        with pytest.raises(BinanceClientError):
            await client.send_request("POST", "/api/v3/order")
    await client.send_request("POST", "/api/v3/order")  # succeeds: the next 429 starts from 5 s again
    client.answers.append(BinanceClientError(429, TOO_MANY, {}))
    with pytest.raises(BinanceClientError):
        await client.send_request("POST", "/api/v3/order")
    await client.send_request("POST", "/api/v3/order")
    assert clock.slept == [5.0, 10.0, 5.0]


async def test_a_ban_without_retry_after_lasts_until_the_time_its_message_gives():
    banned = BinanceClientError(
        418, {"code": -1003, "msg": "Way too much request weight used; IP banned until 1000090000."}, {}
    )
    client, clock = FakeClient(banned), Clock()
    RetryAfter(clock=clock, sleep=clock.sleep, wall=lambda: 1_000_000.0).install(client)
    with pytest.raises(BinanceClientError):
        await client.send_request("GET", "/api/v3/openOrders")
    with pytest.raises(BinanceClientError) as caught:
        await client.send_request("GET", "/api/v3/openOrders")
    assert "for another 90s" in caught.value.message["msg"] and len(client.sent) == 1


async def test_the_adapter_s_http_responses_carry_no_headers_so_retry_after_cannot_be_read():
    # Why the default back-off exists. When this fails, NautilusTrader hands the headers over: Retry-After is then
    # used as the venue gives it, and the default matters only for a 429 without one.
    from aiohttp import web
    from nautilus_trader.core.nautilus_pyo3 import HttpClient, HttpMethod

    async def too_many(_request: web.Request) -> web.Response:
        return web.json_response(TOO_MANY, status=429, headers={"Retry-After": "2"})

    app = web.Application()
    app.router.add_get("/api/v3/order", too_many)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        response = await HttpClient().request(HttpMethod.GET, f"http://127.0.0.1:{port}/api/v3/order", headers={})
    finally:
        await runner.cleanup()
    assert response.status == 429 and response.headers == {}


async def test_installing_twice_wraps_once():
    client, clock = FakeClient(), Clock()
    first = RetryAfter(clock=clock, sleep=clock.sleep)
    assert first.install(client) is first and RetryAfter(clock=clock, sleep=clock.sleep).install(client) is first
