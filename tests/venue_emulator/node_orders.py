"""Orders a NautilusTrader node's strategy sends in the venue emulator's adapter tests, and how they end there."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from nautilus_trader.model.enums import OrderSide, OrderStatus, TimeInForce
from nautilus_trader.model.events import OrderAccepted, OrderExpired
from nautilus_trader.model.identifiers import InstrumentId


def submit_ioc_buy(node: Any, strategy: Any, instrument_id: InstrumentId, quantity: str, price: str) -> Any:
    """A LIMIT IOC buy of ``quantity`` at ``price``, submitted; the order."""
    instrument = node.kernel.cache.instrument(instrument_id)
    order = strategy.order_factory.limit(
        instrument_id,
        OrderSide.BUY,
        instrument.make_qty(Decimal(quantity)),
        instrument.make_price(Decimal(price)),
        TimeInForce.IOC,
    )
    strategy.submit_order(order)
    return order


def assert_accepted_then_expired(strategy: Any, order: Any) -> None:
    """The order's last two events are OrderAccepted, then OrderExpired, and the node holds it closed, EXPIRED."""
    events = [type(e) for e in strategy.events if e.client_order_id == order.client_order_id]
    assert events[-2:] == [OrderAccepted, OrderExpired], events
    assert strategy.cache.order(order.client_order_id).status == OrderStatus.EXPIRED
