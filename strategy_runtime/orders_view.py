"""Which orders are working: the one definition the halt cancels and every open-order count shows.

An order works as long as it is not closed and is somewhere it can still trade:

- open or in flight at a venue (the cache's open and in-flight indexes);
- held by the node's ``OrderEmulator`` (``emulation_trigger``): the emulated order itself, EMULATED,
  and the contingent orders of an emulated bracket, INITIALIZED until their parent fills; the cache
  indexes both as emulated. They reach a venue the moment a price releases them;
- held by an execution algorithm (``exec_algorithm_id``): the primary order a TWAP keeps, INITIALIZED,
  while it sends slices of it; the cache indexes these per algorithm only;
- on its way: past the order gate and queued for the venue, still INITIALIZED (the gate keeps these,
  ``OrderGate.orders_on_their_way``; the cache has no index of them).

An emulated or algorithm-held order is an open order: ``status.trading.openOrders``, ``/state``, the
metrics and ``livestrat run``'s summary count it, and a halt cancels it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nautilus_trader.cache.cache import Cache
    from nautilus_trader.model.orders import Order


def held_by_algorithms(cache: Cache) -> list[Order]:
    """Orders an execution algorithm holds and has not sent on yet (INITIALIZED, EMULATED or RELEASED)."""
    return [
        order
        for algorithm_id in cache.exec_algorithm_ids()
        for order in cache.orders_for_exec_algorithm(algorithm_id)
        if order.is_active_local and not order.is_closed
    ]


def working_orders(cache: Cache, on_their_way: Iterable[Order] = ()) -> list[Order]:
    """Every working order (see the module docstring), each once, oldest index first."""
    seen: dict[object, Order] = {}
    for order in (
        *cache.orders_open(),
        *cache.orders_inflight(),
        *cache.orders_emulated(),
        *held_by_algorithms(cache),
        *on_their_way,
    ):
        if not order.is_closed:
            seen.setdefault(order.client_order_id, order)
    return list(seen.values())
