"""A position Binance USD-M closes itself (liquidation, auto-deleveraging) is closed in the node by its trade.

Binance closes a USD-M position with an order of its own: client order id ``autoclose-…`` (liquidation),
``adl_autoclose`` (ADL) or ``settlement_autoclose-…`` (delisting, delivery), execution type CALCULATED
(the USD-M user-data stream's "Event: Order Update"). NautilusTrader 1.231's USD-M client
(``BinanceFuturesOrderData.handle_order_trade_update``) hands the engine two reports for each such update: an
``OrderStatusReport`` (FILLED, without the position side), then a ``FillReport`` (the venue's trade id, commission and
``venue_position_id``). The engine (``LiveExecutionEngine._reconcile_order_report``) makes an order of the first,
claimed by the strategy that claims the instrument, and *infers* its fill from the status
(``_handle_fill_quantity_mismatch``): a made-up trade id, no commission, and, the status naming no position, the
position ``<instrument>-EXTERNAL`` (``create_inferred_order_filled_event``). Then it rejects the venue's own trade as
an overfill. The strategy's position (``<instrument>-BOTH``) stays open in the node, a SHORT as large opens beside it:
the strategy holds two positions the venue no longer has, and anything that closes "its" positions (a strategy, the
halt's flatten) sends orders the venue refuses (reduce-only, -2022). The ledger and the risk guard recover the fill
(``ledger.supersede``) but the node never does until it restarts.

``venue_closes_by_their_trades`` changes what the client sends for those orders only: the first status of one becomes
"accepted, nothing filled yet" (the order is made, as NautilusTrader does), and a later one is left out; the fill
report that follows each update then fills the order with the venue's trade, on the position the venue names: the
strategy's position closes, and the ledger records the venue's trade id once (a restart's reconciliation meets the
same trade id). ``adl_autoclose`` is every ADL order's client order id: each one's reports get
``adl_autoclose-<venue order id>`` so that a second ADL is not taken for the first (NautilusTrader would find the first,
FILLED, and drop the second).

The same holds for the order statuses a reconciliation asks (``allOrders``, the client's
``generate_order_status_reports``): two ADLs made while no runtime ran are two orders named ``adl_autoclose``, and
NautilusTrader 1.231's engine keeps one order per client order id of a mass status
(``LiveExecutionEngine._deduplicate_mass_status_orders``: "Deduplicating order: adl_autoclose (venue_order_id=3,
keeping first occurrence 2)"): the second ADL's trade was never applied nor recorded, the engine aligned the position
with the venue's by a fill it inferred on a position ``<instrument>-EXTERNAL``, and the strategy was left holding its
own position, and that SHORT beside it, while the venue was flat. The statuses get ``adl_autoclose-<venue order id>``
too, the name a running node gives the same order. Installed by the runtime's Binance factory on USD-M (and COIN-M)
clients; pinned by ``tests/live/test_usdm_liquidation.py``.
"""

from __future__ import annotations

import logging
from typing import Any

from nautilus_trader.execution.reports import FillReport, OrderStatusReport
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.objects import Quantity

logger = logging.getLogger("livestrat.venues")

# USD-M "Event: Order Update": the client order ids of the orders the venue places itself to close a position.
VENUE_CLOSE_PREFIXES = ("autoclose-", "adl_autoclose", "settlement_autoclose-")
ADL_CLIENT_ORDER_ID = "adl_autoclose"
# The client's methods the adapter's update handler calls (NautilusTrader 1.231, ExecutionClient).
SEND_STATUS_METHOD = "_send_order_status_report"
SEND_FILL_METHOD = "_send_fill_report"
# The client's method a reconciliation asks the order statuses by (``allOrders``): NautilusTrader's own mass status and
# the runtime's (live/reconciliation.py) both call it on the client.
STATUSES_METHOD = "generate_order_status_reports"
STATUS_METHOD = "generate_order_status_report"  # one order's (the engine's query of an order it misses at the venue)
FILLING = (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED)


def is_venue_close(client_order_id: ClientOrderId | None) -> bool:
    """Whether the venue placed this order itself to close a position."""
    return client_order_id is not None and client_order_id.value.startswith(VENUE_CLOSE_PREFIXES)


def _own_id(report: OrderStatusReport | FillReport) -> None:
    """``adl_autoclose`` names every ADL order: the venue order id makes it one order's."""
    if report.client_order_id is not None and report.client_order_id.value == ADL_CLIENT_ORDER_ID:
        report.client_order_id = ClientOrderId(f"{ADL_CLIENT_ORDER_ID}-{report.venue_order_id}")


def venue_closes_by_their_trades(client: Any) -> None:
    """Install the correction on ``client``, a Binance futures execution client (module docstring)."""
    send_status = getattr(client, SEND_STATUS_METHOD)
    send_fill = getattr(client, SEND_FILL_METHOD)
    cache = client._cache
    provider = client._instrument_provider

    def status(report: OrderStatusReport) -> None:
        if not is_venue_close(report.client_order_id):
            send_status(report)
            return
        _own_id(report)  # every report of it, whatever follows: the name the reconciliation's statuses give it too
        if (
            report.order_status not in FILLING
            # no fill report follows (NautilusTrader's handler asks its provider, not the cache): the adapter's way
            or provider.find(instrument_id=report.instrument_id) is None
        ):
            send_status(report)
            return
        if cache.order(report.client_order_id) is not None:
            return  # the fill report that follows fills it further
        logger.warning(
            "venue: the venue closed %s %s %s itself (order %s, %s): the position is closed by its trade",
            report.order_side.name,
            report.quantity,
            report.instrument_id,
            report.venue_order_id,
            report.client_order_id,
        )
        report.order_status = OrderStatus.ACCEPTED
        report.filled_qty = Quantity.zero(report.quantity.precision)
        report.leaves_qty = report.quantity
        report.avg_px = None
        send_status(report)

    def fill(report: FillReport) -> None:
        if is_venue_close(report.client_order_id):
            _own_id(report)
        send_fill(report)

    generate_statuses = getattr(client, STATUSES_METHOD)

    async def statuses(command: Any) -> list[OrderStatusReport]:
        reports = await generate_statuses(command)
        for report in reports:
            _own_id(report)
        return reports

    generate_one = getattr(client, STATUS_METHOD)

    async def one_status(command: Any) -> OrderStatusReport | None:
        report = await generate_one(command)
        if report is not None:
            _own_id(report)
        return report

    setattr(client, SEND_STATUS_METHOD, status)
    setattr(client, SEND_FILL_METHOD, fill)
    setattr(client, STATUSES_METHOD, statuses)
    setattr(client, STATUS_METHOD, one_status)
