"""``binance_venue_closes`` on a client stand-in: which of the USD-M client's reports it changes, and which it leaves.

The whole path (the real adapter against the venue emulator) is in tests/live/test_usdm_liquidation.py; here the
cases the emulator does not reach: a venue close on an instrument the client's provider does not hold.
"""

from __future__ import annotations

from nautilus_trader.cache.cache import Cache
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.reports import OrderStatusReport
from nautilus_trader.model.enums import OrderSide, OrderStatus, OrderType, TimeInForce
from nautilus_trader.model.identifiers import AccountId, ClientOrderId, VenueOrderId
from nautilus_trader.model.objects import Quantity
from nautilus_trader.test_kit.providers import TestInstrumentProvider

from strategy_runtime.live.binance_venue_closes import venue_closes_by_their_trades

PERP = TestInstrumentProvider.btcusdt_perp_binance()


class Provider:
    def __init__(self, *held) -> None:
        self.held = {i.id: i for i in held}

    def find(self, instrument_id):
        return self.held.get(instrument_id)


class Client:
    """What the wrapper touches of NautilusTrader 1.231's ``BinanceFuturesExecutionClient``."""

    def __init__(self, cache: Cache, provider: Provider) -> None:
        self._cache = cache
        self._instrument_provider = provider
        self.statuses: list[OrderStatusReport] = []
        self.fills: list = []
        self.listed: list[OrderStatusReport] = []  # what the venue lists (allOrders, one order's query)

    def _send_order_status_report(self, report: OrderStatusReport) -> None:
        self.statuses.append(report)

    def _send_fill_report(self, report) -> None:
        self.fills.append(report)

    async def generate_order_status_reports(self, command) -> list[OrderStatusReport]:
        return list(self.listed)

    async def generate_order_status_report(self, command) -> OrderStatusReport | None:
        return self.listed[0] if self.listed else None


def liquidated(
    quantity: str = "0.020", client_order_id: str = "autoclose-1700000000000", status: OrderStatus = OrderStatus.FILLED
) -> OrderStatusReport:
    return OrderStatusReport(
        account_id=AccountId("BINANCE-001"),
        instrument_id=PERP.id,
        venue_order_id=VenueOrderId("7"),
        order_side=OrderSide.SELL,
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.IOC,
        order_status=status,
        quantity=Quantity.from_str(quantity),
        filled_qty=Quantity.from_str(quantity if status == OrderStatus.FILLED else "0"),
        report_id=UUID4(),
        ts_accepted=0,
        ts_last=0,
        ts_init=0,
        client_order_id=ClientOrderId(client_order_id),
    )


def test_a_venue_close_is_taken_as_accepted_when_its_fill_report_follows():
    cache = Cache()
    cache.add_instrument(PERP)
    client = Client(cache, Provider(PERP))
    venue_closes_by_their_trades(client)
    client._send_order_status_report(liquidated())
    [sent] = client.statuses
    assert (sent.order_status, sent.filled_qty.as_decimal()) == (OrderStatus.ACCEPTED, 0)


def test_a_venue_close_on_an_instrument_the_client_does_not_load_is_left_as_the_adapter_sends_it():
    # NautilusTrader's handler sends no fill report when its instrument provider lacks the instrument (the status
    # alone, for the engine to reconcile); the node's cache may still hold it (every instrument of the catalog).
    # Taken as "accepted, nothing filled", the order would stay open until the open-order check inferred its fill.
    cache = Cache()
    cache.add_instrument(PERP)
    client = Client(cache, Provider())
    venue_closes_by_their_trades(client)
    client._send_order_status_report(liquidated())
    [sent] = client.statuses
    assert sent.order_status == OrderStatus.FILLED


async def test_an_adl_is_named_the_same_on_the_stream_and_in_what_the_venue_lists_whatever_the_client_loads():
    # Every ADL order's client order id is adl_autoclose: the runtime names each adl_autoclose-<venue order id>, on
    # the stream and in the reconciliation's statuses (one order's query included). On an instrument the client's
    # provider does not load, the stream's reports went out unnamed (the status alone, NEW then FILLED) while a
    # resubscription's mass status listed the same order named: the engine took them for two orders, two fills.
    cache = Cache()
    cache.add_instrument(PERP)
    for provider in (Provider(PERP), Provider()):
        client = Client(cache, provider)
        venue_closes_by_their_trades(client)
        client._send_order_status_report(liquidated(client_order_id="adl_autoclose", status=OrderStatus.ACCEPTED))
        client._send_order_status_report(liquidated(client_order_id="adl_autoclose"))
        client.listed = [liquidated(client_order_id="adl_autoclose")]
        listed = await client.generate_order_status_reports(None)
        one = await client.generate_order_status_report(None)
        names = {r.client_order_id.value for r in [*client.statuses, *listed, one]}
        assert names == {"adl_autoclose-7"}, (provider.held, names)
