"""What the order gate keeps of the orders it sends on: their arrival prices while they are open, and two counts.

An order filled in parts counts once as filled; an order closed (filled whole, cancelled) is forgotten, so
what is kept is the open orders and never grows with the run; an order denied after the gate let it through
never reached a venue and is not counted as submitted.
"""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.objects import Price

from strategy_runtime.risk.arrivals import Arrivals


def test_an_order_filled_in_parts_counts_once_and_is_forgotten_once_filled_whole():
    arrivals, order = Arrivals(), ClientOrderId("O-1")
    arrivals.sent(order, Price.from_str("42000.50"))
    for closed in (False, False, True):
        assert arrivals.price_of(order) == Decimal("42000.50")  # each part's arrival: the order's
        arrivals.filled_once(order, closed=closed)
    assert (arrivals.submitted, arrivals.filled, len(arrivals)) == (1, 1, 0)
    assert arrivals.price_of(order) is None


def test_what_is_kept_is_the_open_orders_however_many_were_sent():
    arrivals = Arrivals()
    for n in range(10_000):
        order = ClientOrderId(f"O-{n}")
        arrivals.sent(order, Price.from_str("100.0"))
        if n % 3 == 0:
            arrivals.filled_once(order, closed=True)
        elif n % 3 == 1:
            arrivals.closed(order)  # cancelled, expired or rejected without a fill
    assert (arrivals.submitted, arrivals.filled) == (10_000, 3_334)
    assert len(arrivals) == 3_333  # the n % 3 == 2 orders, still open


def test_an_order_denied_after_the_gate_let_it_through_was_not_submitted():
    arrivals, sent, denied = Arrivals(), ClientOrderId("O-1"), ClientOrderId("O-2")
    arrivals.sent(sent, None)  # no price yet: sent all the same, its fills without an arrival price
    arrivals.sent(denied, Price.from_str("1.0"))
    arrivals.denied(denied)  # the fence's last look, say
    arrivals.denied(ClientOrderId("O-3"))  # one the gate itself denied: never counted
    arrivals.filled_once(sent, closed=True)
    assert (arrivals.submitted, arrivals.filled, len(arrivals)) == (1, 1, 0)
    assert arrivals.price_of(denied) is None


def test_a_fill_of_an_order_this_run_did_not_send_has_no_arrival_and_counts_nothing():
    arrivals, reconciled = Arrivals(), ClientOrderId("held-bid")  # open at the venue when the runtime started
    assert arrivals.price_of(reconciled) is None
    arrivals.filled_once(reconciled, closed=True)
    assert (arrivals.submitted, arrivals.filled) == (0, 0)
