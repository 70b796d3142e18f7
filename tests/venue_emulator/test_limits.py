"""The venue's own rate limits: weight and order counts per Binance's published limits, 429 then the 418 ban."""

from __future__ import annotations

import json

from aiohttp.test_utils import make_mocked_request

from livestrat.venue_emulator.limits import RateLimits


class Clock:
    def __init__(self) -> None:
        self.s = 1_700_000_020.0  # 40 s into a minute, 0 s into a 10-second window

    def __call__(self) -> float:
        return self.s


def admit(limits: RateLimits, method: str, path: str):
    refused, headers = limits.admit(make_mocked_request(method, path))
    body = json.loads(refused.body) if refused is not None else None
    return (refused.status if refused is not None else 200), body, (refused.headers if refused is not None else headers)


def test_request_weight_is_counted_per_minute_and_the_limit_answers_429_until_the_minute_ends():
    clock = Clock()
    limits = RateLimits(now_s=clock)
    answers = [admit(limits, "GET", "/api/v3/account") for _ in range(300)]  # 300 x 20 = 6000
    assert answers[-1][0] == 200 and answers[-1][2]["X-MBX-USED-WEIGHT-1M"] == "6000"
    status, body, headers = admit(limits, "GET", "/api/v3/account")
    assert (status, body["code"], headers["Retry-After"]) == (429, -1003, "20")
    assert "current limit is 6000 request weight per 1 MINUTE" in body["msg"]
    clock.s += 20  # a new minute: the window is fresh, and the client waited as told
    assert admit(limits, "GET", "/api/v3/account")[0] == 200


def test_orders_are_counted_per_ten_seconds_and_not_backing_off_earns_a_ban():
    clock = Clock()
    limits = RateLimits(now_s=clock)
    for _ in range(100):
        assert admit(limits, "POST", "/api/v3/order")[0] == 200
    status, body, headers = admit(limits, "POST", "/api/v3/order")
    assert (status, body["code"], headers["Retry-After"]) == (429, -1015, "10")
    assert body["msg"] == "Too many new orders; current limit is 100 orders per 10 SECOND."
    assert admit(limits, "GET", "/api/v3/openOrders")[0] == 200  # one and two inside the window ...
    assert admit(limits, "GET", "/api/v3/openOrders")[0] == 200
    status, body, headers = admit(limits, "GET", "/api/v3/openOrders")  # ... three: banned
    assert (status, body["code"], headers["Retry-After"]) == (418, -1003, "120")
    clock.s += 60
    assert admit(limits, "GET", "/api/v3/time")[0] == 418  # still banned
    clock.s += 61
    assert admit(limits, "GET", "/api/v3/time")[0] == 200


def test_usdm_counts_apart_and_its_order_placement_weighs_nothing():
    limits = RateLimits(now_s=Clock())
    for _ in range(300):
        assert admit(limits, "POST", "/fapi/v1/order")[0] == 200
    status, body, _ = admit(limits, "POST", "/fapi/v1/order")
    assert (status, body["code"]) == (429, -1015)
    assert admit(limits, "POST", "/api/v3/order")[2]["X-MBX-ORDER-COUNT-10S"] == "1"  # spot's own count
