"""Exponential back-off, the one way both the operator and the runtime space their retries.

``Backoff(first=0.5, cap=30).delay(n)`` is the wait before retry ``n`` (1-based): ``first``,
doubling, never more than ``cap``. :func:`jittered` spreads a delay so that many clients
failing together do not retry together.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

_MAX_DOUBLINGS = 64  # 2**64 times any first delay is past every cap: no overflow for long outages


@dataclass(frozen=True)
class Backoff:
    first: float
    cap: float
    factor: float = 2.0

    def delay(self, attempt: int) -> float:
        """The wait before retry ``attempt`` (1 for the first retry)."""
        return min(self.cap, self.first * self.factor ** min(max(attempt, 1) - 1, _MAX_DOUBLINGS))


def jittered(delay: float, low: float = 0.5) -> float:
    """``delay`` scaled by a random factor in ``[low, 1]``: never longer, sometimes shorter."""
    return delay * random.uniform(low, 1.0)
