"""What the halt asks the venue about one order (``client_hooks.venue_order``), through the runtime's Binance client.

The runtime's factory leaves on its execution client a way to ask the venue, by client order id, what it
holds of an order: the halt asks before it sends a cancel again, and counts as "left open" only what the
venue holds open. The real adapter's REST client asks the emulator (``GET /api/v3/order``).
"""

from __future__ import annotations

from decimal import Decimal

from strategy_runtime.live.binance import BinanceExecClientFactory
from strategy_runtime.live.client_hooks import VenueOrder, venue_order
from tests.runtime.test_binance_user_stream import exec_client
from tests.venue_emulator.spot_venue import book_top, served_venue
from tests.venue_emulator.test_nautilus_spot import running_node

D = Decimal


async def test_the_venue_says_which_orders_it_holds_open_closed_or_never_had():
    async with served_venue() as v, running_node(v, BinanceExecClientFactory) as (node, _strategy):
        exchange = v.venue.exchange
        exchange.on_market(book_top("100.00", "100.50"))
        exchange.new_order("BTCUSDT", "BUY", "LIMIT", D("0.1"), D("90.00"), "GTC", "resting")
        exchange.new_order("BTCUSDT", "BUY", "LIMIT", D("0.1"), D("91.00"), "GTC", "cancelled")
        exchange.cancel_order("BTCUSDT", orig_client_order_id="cancelled")
        exchange.new_order("BTCUSDT", "BUY", "LIMIT", D("0.1"), D("101.00"), "GTC", "filled")  # crosses the ask
        ask = venue_order(exec_client(node))
        assert ask is not None
        answers = {coid: await ask("BTCUSDT", coid) for coid in ("resting", "cancelled", "filled", "never-sent")}
    assert answers == {
        "resting": VenueOrder(open=True, status="NEW"),
        "cancelled": VenueOrder(open=False, status="CANCELED"),
        "filled": VenueOrder(open=False, status="FILLED"),
        "never-sent": VenueOrder(open=False, status="unknown to the venue (-2013 Order does not exist)"),
    }
