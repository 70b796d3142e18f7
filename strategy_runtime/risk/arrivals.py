"""The orders this run sent on, and the market price each met then (its arrival price), until it closes.

The order gate (``risk.gate``) stands where every order leaves for a venue (``ExecEngine.execute``): an order
it lets through is *submitted* (``sent``), and the price it sees for the order's instrument at that moment
(the mid, else the last trade or bar: ``_Door._mark_price``) is the order's arrival price. The reporter looks
that price up for each fill of the order (``price_of``) and writes it with the fill into the ledger, then says
the fill happened (``filled``): an order's first fill counts it as *filled*, and an order that closed (filled
whole, cancelled, expired, rejected) is forgotten, so what is kept never outgrows the orders open.

Counted here rather than from NautilusTrader's cache: the cache also holds the orders the gate or the
RiskEngine denied (never sent), the orders a live node reconciled from the venue at start (sent by an earlier
run), and counting it means a pass over every order per status push; the gate sees exactly the orders this run
sent, once each, at the cost of an addition. Its counts and the cache's agree on a paper run
(tests/runtime/test_execution_quality.py).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from nautilus_trader.model.objects import Price


class Arrivals:
    """See the module docstring. Keys are NautilusTrader ``ClientOrderId`` objects, as the orders carry them."""

    __slots__ = ("_open", "_unfilled", "filled", "submitted")

    def __init__(self) -> None:
        self._open: dict[Any, Price | None] = {}  # the arrival price of each order sent and not closed
        self._unfilled: set[Any] = set()  # those of them with no fill yet
        self.submitted = 0
        self.filled = 0

    def sent(self, client_order_id: Any, price: Price | None) -> None:
        """The gate let an order through to the venue, the market at ``price`` (None: no price yet)."""
        self._open[client_order_id] = price
        self._unfilled.add(client_order_id)
        self.submitted += 1

    def price_of(self, client_order_id: Any) -> Decimal | None:
        """The arrival price of an order this run sent and that has not closed; None for any other."""
        price = self._open.get(client_order_id)
        return None if price is None else price.as_decimal()

    def filled_once(self, client_order_id: Any, closed: bool) -> None:
        """A fill of the order was recorded; ``closed``: the order is closed now (filled whole)."""
        unfilled = self._unfilled
        if client_order_id in unfilled:
            unfilled.discard(client_order_id)
            self.filled += 1
        if closed:
            self._open.pop(client_order_id, None)

    def closed(self, client_order_id: Any) -> None:
        """The order closed without (another) fill: cancelled, expired, rejected."""
        self._open.pop(client_order_id, None)
        self._unfilled.discard(client_order_id)

    def denied(self, client_order_id: Any) -> None:
        """An order the gate let through was denied after all (at the last look, by the execution engine): it
        never reached the venue, so it was not submitted."""
        if client_order_id in self._open:
            del self._open[client_order_id]
            self._unfilled.discard(client_order_id)
            self.submitted -= 1

    def __len__(self) -> int:
        return len(self._open)
