"""The one back-off both sides use: doubling from the first delay, never past the cap, jitter only shortens."""

from __future__ import annotations

from livestrat.backoff import Backoff, jittered


def test_a_backoff_doubles_from_its_first_delay_up_to_its_cap():
    backoff = Backoff(first=0.5, cap=30.0)
    assert [backoff.delay(n) for n in range(1, 9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff.delay(0) == 0.5  # before any failure: the first delay
    assert backoff.delay(10_000) == 30.0  # a long outage: no overflow


def test_jitter_never_lengthens_a_delay():
    delays = [jittered(4.0) for _ in range(200)]
    assert all(2.0 <= d <= 4.0 for d in delays) and len(set(delays)) > 1
