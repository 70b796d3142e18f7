"""What the runtime's factories leave on a live execution client for the runtime to ask: why it did not connect,
how to sweep the venue for orders the node lost track of, and what the venue holds of one order. Apart from the
adapters' modules, so that the node and the halt can ask any client without importing an adapter (a client without
them answers None).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

CONNECT_FAILURE_ATTRIBUTE = "livestrat_connect_failure"
VENUE_SWEEP_ATTRIBUTE = "livestrat_venue_sweep"
VENUE_ORDER_ATTRIBUTE = "livestrat_venue_order"


@dataclass(frozen=True)
class VenueOrder:
    """What the venue answered about one order, asked by its client order id."""

    open: bool  # the venue holds it open (it may still fill)
    status: str  # in the venue's words: NEW, CANCELED, FILLED, ... or why it has none


def venue_order(client: Any) -> Callable[[str, str], Awaitable[VenueOrder]] | None:
    """``ask(symbol, client_order_id)``: the venue's own record of that order (it raises when the venue cannot be
    asked). None for a client the runtime's factory did not make."""
    return getattr(client, VENUE_ORDER_ATTRIBUTE, None)


def venue_sweep(client: Any) -> Callable[[Callable[[str], bool]], Awaitable[int]] | None:
    """``sweep(ours)``: cancel at the venue the open orders whose client order id ``ours`` claims; how many are left
    open. None for a client the runtime's factory did not make (another adapter, the sandbox)."""
    return getattr(client, VENUE_SWEEP_ATTRIBUTE, None)


def connect_failure(client: Any) -> str | None:
    """Why ``client`` could not connect, as the venue answered (``live.binance``), or None."""
    return getattr(client, CONNECT_FAILURE_ATTRIBUTE, None)
