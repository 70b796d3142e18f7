"""What a Binance node reconciles at start: the venue's trades of every instrument of the spec, and no invented fill.

NautilusTrader 1.231's Binance execution client asks the venue for orders and trades only of the
symbols its cache holds an open order or position in: a freshly started process holds none, so the
fills made while it was down (a ``kill -9``, a resting order filled meanwhile) came back as fills
inferred from the order's status, under made-up trade ids, or not at all when no order was still
open. And a spot account has no positions at Binance: the client reports every instrument flat, and
the engine "corrected" the position the fills built with an invented SELL. These tests build the
node (no connection) and look at what it would ask and do; tests/live/test_spot_story.py shows both
against the emulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nautilus_trader.adapters.binance.execution import BinanceCommonExecutionClient
from nautilus_trader.adapters.binance.spot.execution import BinanceSpotExecutionClient

from tests.support.live_nodes import FAKE_CREDENTIALS, build_without_connecting, live_config, live_manifest


def exec_client(node):
    engine = node.kernel.exec_engine
    return engine._clients[engine.registered_clients[0]]


@contextlib.asynccontextmanager
async def usdm_node() -> AsyncIterator[Any]:
    """A USD-M live node built without connecting, disposed of afterwards."""
    node = await build_without_connecting(
        live_config(live_manifest("binance", "usdtFutures", "BTCUSDT-PERP.BINANCE")), FAKE_CREDENTIALS
    )
    try:
        yield node
    finally:
        node.dispose()


@pytest.mark.parametrize(
    ("account_type", "instrument", "symbol"),
    [("spot", "BTCUSDT.BINANCE", "BTCUSDT"), ("usdtFutures", "BTCUSDT-PERP.BINANCE", "BTCUSDT-PERP")],
)
async def test_a_fresh_node_asks_the_venue_about_every_instrument_of_the_spec(account_type, instrument, symbol):
    node = await build_without_connecting(
        live_config(live_manifest("binance", account_type, instrument)), FAKE_CREDENTIALS
    )
    try:
        # The cache is empty (no order, no position): the spec's instruments are asked about all the same.
        assert exec_client(node)._get_cache_active_symbols() == {symbol}
    finally:
        node.dispose()


@pytest.mark.parametrize(("account_type", "instrument", "invents"), [("spot", "BTCUSDT.BINANCE", False)])
async def test_a_spot_node_never_invents_a_fill_to_match_positions_binance_does_not_report(
    account_type, instrument, invents
):
    node = await build_without_connecting(
        live_config(live_manifest("binance", account_type, instrument)), FAKE_CREDENTIALS
    )
    try:
        assert node.node._config.exec_engine.generate_missing_orders is invents
    finally:
        node.dispose()


async def test_a_futures_node_still_reconciles_its_positions_with_the_venue_s():
    node = await build_without_connecting(
        live_config(live_manifest("binance", "usdtFutures", "BTCUSDT-PERP.BINANCE")), FAKE_CREDENTIALS
    )
    try:
        assert node.node._config.exec_engine.generate_missing_orders is True
    finally:
        node.dispose()


def test_the_adapter_asks_trades_and_orders_of_the_cache_s_symbols_and_reports_no_spot_position():
    # Pins of NautilusTrader 1.231 the widening in strategy_runtime.live.binance.py relies on.
    fills = inspect.getsource(BinanceCommonExecutionClient.generate_fill_reports)
    assert "active_symbols = self._get_cache_active_symbols()" in fills
    orders = inspect.getsource(BinanceCommonExecutionClient._build_active_symbols)
    assert "active_symbols = self._get_cache_active_symbols()" in orders
    positions = inspect.getsource(BinanceSpotExecutionClient._get_binance_position_status_reports)
    assert "return []" in positions


async def test_a_venue_refusing_the_keys_is_why_the_node_did_not_start_without_the_secret():
    from nautilus_trader.adapters.binance.http.error import BinanceClientError

    node = await build_without_connecting(
        live_config(live_manifest("binance", "spot", "BTCUSDT.BINANCE")), FAKE_CREDENTIALS
    )
    try:
        client = exec_client(node)

        async def refused() -> None:
            raise BinanceClientError(401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}, {})

        async def loaded() -> None:
            return None

        client._instrument_provider.initialize = loaded
        client._update_account_state = refused  # the first signed request of the client's _connect
        with pytest.raises(BinanceClientError):
            await client._connect()
        why = node._why_not_running(75)
        assert "execution client BINANCE could not connect: the venue answered HTTP 401, -2015 Invalid API-key" in why
        assert "check the API key and secret in the Secret named by spec.venue.credentialsSecret" in why
        assert not any(value in why for value in FAKE_CREDENTIALS.values())
    finally:
        node.dispose()


def test_the_engine_adjusts_reported_fills_to_the_position_s_last_lifecycle_before_reconciling():
    # Pin of NautilusTrader 1.231 (strategy_runtime/live/reconciliation.py turns it off for live nodes).
    from nautilus_trader.live.execution_engine import LiveExecutionEngine

    from strategy_runtime.live.reconciliation import ADJUST_FILLS_METHOD

    method = getattr(LiveExecutionEngine, ADJUST_FILLS_METHOD)
    assert list(inspect.signature(method).parameters) == ["self", "mass_status"]
    source = inspect.getsource(LiveExecutionEngine._reconcile_execution_mass_status)
    assert f"self.{ADJUST_FILLS_METHOD}(mass_status)" in source


async def test_a_live_node_reconciles_every_fill_the_venue_reports_not_only_the_position_s_last_lifecycle():
    from nautilus_trader.execution.reports import ExecutionMassStatus

    node = await build_without_connecting(
        live_config(live_manifest("binance", "usdtFutures", "BTCUSDT-PERP.BINANCE")), FAKE_CREDENTIALS
    )
    try:
        engine = node.kernel.exec_engine
        status = ExecutionMassStatus.__new__(ExecutionMassStatus)
        status._fill_reports = {"V-1": ["a fill of an earlier lifecycle"]}
        engine._adjust_mass_status_fills(status)
        assert status._fill_reports == {"V-1": ["a fill of an earlier lifecycle"]}
    finally:
        node.dispose()


def order_status(client, venue_order_id: str, filled: str, ts_last: int):
    """A real report: the venue's order SELL 0.003 BTCUSDT, filled to ``filled``, last changed at ``ts_last``."""
    from nautilus_trader.core.uuid import UUID4
    from nautilus_trader.execution.reports import OrderStatusReport
    from nautilus_trader.model.enums import OrderSide, OrderStatus, OrderType, TimeInForce
    from nautilus_trader.model.identifiers import AccountId, InstrumentId, VenueOrderId
    from nautilus_trader.model.objects import Quantity

    return OrderStatusReport(
        account_id=AccountId("BINANCE-001"),
        instrument_id=InstrumentId.from_str("BTCUSDT.BINANCE"),
        venue_order_id=VenueOrderId(venue_order_id),
        order_side=OrderSide.SELL,
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.GTC,
        order_status=OrderStatus.FILLED if filled == "0.003" else OrderStatus.PARTIALLY_FILLED,
        quantity=Quantity.from_str("0.003"),
        filled_qty=Quantity.from_str(filled),
        report_id=UUID4(),
        ts_accepted=ts_last,
        ts_last=ts_last,
        ts_init=ts_last,
    )


def fill_report(venue_order_id: str, trade_id: str, ts: int):
    """A real report: a trade of 0.001 of the venue's order ``venue_order_id``."""
    from nautilus_trader.core.uuid import UUID4
    from nautilus_trader.execution.reports import FillReport
    from nautilus_trader.model.enums import LiquiditySide, OrderSide
    from nautilus_trader.model.identifiers import AccountId, InstrumentId, TradeId, VenueOrderId
    from nautilus_trader.model.objects import Money, Price, Quantity

    return FillReport(
        account_id=AccountId("BINANCE-001"),
        instrument_id=InstrumentId.from_str("BTCUSDT.BINANCE"),
        venue_order_id=VenueOrderId(venue_order_id),
        trade_id=TradeId(trade_id),
        order_side=OrderSide.SELL,
        last_qty=Quantity.from_str("0.001"),
        last_px=Price.from_str("40000.00"),
        commission=Money.from_str("0.04 USDT"),
        liquidity_side=LiquiditySide.TAKER,
        report_id=UUID4(),
        ts_event=ts,
        ts_init=ts,
    )


class Venue:
    """What the client's three questions answer, in turn; each question recorded with its instrument."""

    def __init__(self, client, statuses, trades, again=None, later_statuses=()) -> None:
        self.asked: list[str] = []
        self.trade_answers = [trades, again if again is not None else trades]
        # the statuses, then what each later question of them answers (the last one from then on)
        self.status_answers = [statuses, *later_statuses]
        client.generate_fill_reports = self.fill_reports
        client.generate_order_status_reports = self.answer("statuses", self.next_statuses)
        client.generate_position_status_reports = self.answer("positions", lambda: [])

    def answer(self, what: str, reports):
        async def ask(command):
            self.asked.append(what)
            await asyncio.sleep(0)  # side by side, the others would go now
            self.asked.append(f"{what} answered")
            return reports()

        return ask

    def next_statuses(self):
        return self.status_answers.pop(0) if len(self.status_answers) > 1 else self.status_answers[0]

    async def fill_reports(self, command):
        self.asked.append(f"trades of {command.instrument_id or 'every instrument'}")
        await asyncio.sleep(0)
        self.asked.append("trades answered")
        answer = self.trade_answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.mark.parametrize("account_type", ["spot", "usdtFutures"])
async def test_a_live_node_asks_the_venue_for_its_trades_then_its_order_statuses_then_its_positions_in_turn(
    account_type,
):
    from strategy_runtime.live.reconciliation import MASS_STATUS_METHOD

    instrument = "BTCUSDT.BINANCE" if account_type == "spot" else "BTCUSDT-PERP.BINANCE"
    node = await build_without_connecting(
        live_config(live_manifest("binance", account_type, instrument)), FAKE_CREDENTIALS
    )
    try:
        client = exec_client(node)
        now = client._clock.timestamp_ns()
        # V-1 filled while the trades were asked: its status is ahead of them
        venue = Venue(client, [order_status(client, "V-1", "0.003", now + 1)], [], again=[])
        status = await getattr(client, MASS_STATUS_METHOD)(None)
        assert status is not None
        # the positions right after the statuses; where the venue reports positions (USD-M), the statuses once
        # more (a fill landing between them would put the positions ahead of the statuses: asked again until they
        # hold still); then the trades once more, of every instrument (Binance's client asks every symbol whatever
        # it is given)
        again = ["statuses", "statuses answered"] if account_type == "usdtFutures" else []
        assert venue.asked == [
            "trades of every instrument",
            "trades answered",
            "statuses",
            "statuses answered",
            "positions",
            "positions answered",
            *again,
            "trades of every instrument",
            "trades answered",
        ]
    finally:
        node.dispose()


async def test_the_trades_are_asked_again_only_for_a_status_that_changed_after_they_were_asked_and_never_fail_it():
    from strategy_runtime.live.reconciliation import MASS_STATUS_METHOD

    node = await build_without_connecting(
        live_config(live_manifest("binance", "spot", "BTCUSDT.BINANCE")), FAKE_CREDENTIALS
    )
    try:
        client = exec_client(node)
        now = client._clock.timestamp_ns()
        hour = 3_600_000_000_000
        # V-1 filled an hour ago, beyond the trade list's reach (its 500 trades): asking again finds nothing new
        old = order_status(client, "V-1", "0.003", now - hour)
        listed = [fill_report("V-2", "T-21", now - hour)]
        venue = Venue(client, [old, order_status(client, "V-2", "0.001", now - hour)], listed)
        status = await getattr(client, MASS_STATUS_METHOD)(None)
        assert status is not None
        assert venue.asked.count("trades answered") == 1
        assert [r.trade_id.value for fills in status.fill_reports.values() for r in fills] == ["T-21"]

        # V-3 filled just now, and the venue fails the second question: reconciliation goes on with what it has
        venue = Venue(
            client, [old, order_status(client, "V-3", "0.003", now + hour)], listed, again=OSError("HTTP 503")
        )
        status = await getattr(client, MASS_STATUS_METHOD)(None)
        assert status is not None
        assert venue.asked.count("trades answered") == 2
        assert [r.trade_id.value for fills in status.fill_reports.values() for r in fills] == ["T-21"]
        assert {r.venue_order_id.value for r in status.order_reports.values()} == {"V-1", "V-3"}
    finally:
        node.dispose()


def _trade(order: str, trade_id: str, qty: str, ts_event: int = 0):
    from types import SimpleNamespace

    from nautilus_trader.model.objects import Quantity

    return SimpleNamespace(venue_order_id=order, trade_id=trade_id, last_qty=Quantity.from_str(qty), ts_event=ts_event)


def _status(order: str, filled: str):
    from types import SimpleNamespace

    from nautilus_trader.model.objects import Quantity

    return SimpleNamespace(venue_order_id=order, filled_qty=Quantity.from_str(filled), instrument_id="BTCUSDT.BINANCE")


def test_asked_again_an_order_keeps_only_the_trades_its_status_accounts_for():
    from strategy_runtime.live.reconciliation import behind, catch_up

    # V-1's status says 0.003 filled, the trade list gave 0.001 of it; V-2 agrees with its trades
    statuses = [_status("V-1", "0.003"), _status("V-1", "0.001"), _status("V-2", "0.002")]
    listed = [_trade("V-1", "1", "0.001"), _trade("V-2", "2", "0.002")]
    (ahead,) = behind(statuses, listed)  # one per order: the furthest status
    assert (ahead.venue_order_id, str(ahead.filled_qty)) == ("V-1", "0.003")
    # asked again: two more trades of V-1 the status accounts for, and a later one it does not (left for the
    # stream or the next start: taking it would put the trades ahead of the status)
    again = [*listed, _trade("V-1", "3", "0.001"), _trade("V-1", "4", "0.001"), _trade("V-1", "5", "0.001")]
    added = catch_up(ahead, [t for t in listed if t.venue_order_id == "V-1"], again)
    assert [t.trade_id for t in added] == ["3", "4"]


def test_a_client_with_its_own_mass_status_is_left_to_it():
    # Some adapters write their own generate_mass_status (Interactive Brokers in 1.231): asking in turn replaces
    # only NautilusTrader's own, which asks side by side.
    from nautilus_trader.live.execution_client import LiveExecutionClient

    from strategy_runtime.live.reconciliation import MASS_STATUS_METHOD, ask_in_order

    class OwnMassStatus(LiveExecutionClient):
        async def generate_mass_status(self, lookback_mins=None):
            return None

    class Stock(LiveExecutionClient):
        pass

    own, stock = OwnMassStatus.__new__(OwnMassStatus), Stock.__new__(Stock)  # no venue needed: never called
    assert ask_in_order(own) is False
    assert MASS_STATUS_METHOD not in vars(own)
    assert ask_in_order(stock) is True
    assert MASS_STATUS_METHOD in vars(stock)


def test_asked_again_an_order_s_trades_are_taken_oldest_first_whatever_order_they_come_in():
    from strategy_runtime.live.reconciliation import catch_up

    # the status accounts for one more trade: the older one, by time, then by the venue's numeric trade id
    status = _status("V-1", "0.002")
    known = [_trade("V-1", "8", "0.001")]
    listed = [_trade("V-1", "10", "0.001", ts_event=5), _trade("V-1", "9", "0.001", ts_event=5)]
    assert [t.trade_id for t in catch_up(status, known, listed)] == ["9"]
    later_first = [_trade("V-1", "9", "0.001", ts_event=7), _trade("V-1", "11", "0.001", ts_event=6)]
    assert [t.trade_id for t in catch_up(status, known, later_first)] == ["11"]


async def test_a_fill_between_the_statuses_and_the_positions_has_both_asked_again_until_they_agree():
    """USD-M: an order the venue fills after its status was answered and before the positions are: the positions
    would run ahead of the statuses (the engine aligns the node's position with a made-up fill, and the order's
    trade then counts a second time). The statuses are asked again after the positions; when they moved, the
    positions and the statuses once more, and the pair that held still is reconciled."""
    from strategy_runtime.live.reconciliation import MASS_STATUS_METHOD

    async with usdm_node() as node:
        client = exec_client(node)
        now = client._clock.timestamp_ns()
        resting = order_status(client, "V-1", "0", now - 1)
        filled = order_status(client, "V-1", "0.003", now + 1)
        venue = Venue(client, [resting], [], again=[], later_statuses=([filled], [filled]))
        status = await getattr(client, MASS_STATUS_METHOD)(None)
        assert status is not None
        assert venue.asked == [
            "trades of every instrument",
            "trades answered",
            "statuses",
            "statuses answered",
            "positions",
            "positions answered",
            "statuses",  # moved: V-1 filled meanwhile
            "statuses answered",
            "positions",
            "positions answered",
            "statuses",  # held still: these positions are those of these statuses
            "statuses answered",
            "trades of every instrument",  # V-1's status is ahead of the trades listed before it filled
            "trades answered",
        ]
        assert [str(r.filled_qty) for r in status.order_reports.values()] == ["0.003"]


async def test_after_the_start_a_mass_status_asks_no_positions():
    """A mass status asked while the node trades (NautilusTrader 1.231's Binance client asks one after every
    resubscription of its user-data stream) leaves the positions out: the node's position is made of the fills it
    meets on the stream, and a position report taken meanwhile races them (an alignment of the node's position
    with a made-up fill, and then the same trade again from the stream: the ledger held fills the venue never
    made). Only the start's reconciliation, before the strategy runs, aligns positions."""
    from strategy_runtime.live.reconciliation import MASS_STATUS_METHOD

    async with usdm_node() as node:
        client = exec_client(node)
        engine = node.kernel.exec_engine
        venue = Venue(client, [], [])
        assert await engine.reconcile_execution_state(timeout_secs=5.0)
        assert "positions" in venue.asked
        venue = Venue(client, [], [])
        status = await getattr(client, MASS_STATUS_METHOD)(None)  # what _reconcile_after_resubscribe asks
        assert status is not None
        assert "positions" not in venue.asked and venue.asked.count("statuses") == 1
        assert status.position_reports == {}


async def test_a_second_look_at_the_statuses_that_lacks_an_order_is_not_taken_over_the_first():
    """NautilusTrader 1.231's Binance client answers a failed status question (a 429, a 5xx) with no statuses at
    all: a second look that lacks an order the first answer held is a failed or partial answer, not news. The
    first statuses are reconciled with the positions (as before the second look existed), never an empty list that
    would leave the resting orders out of the node (and the strategy placing them again)."""
    from strategy_runtime.live.reconciliation import MASS_STATUS_METHOD

    async with usdm_node() as node:
        client = exec_client(node)
        now = client._clock.timestamp_ns()
        resting = order_status(client, "V-1", "0", now - 1)
        venue = Venue(client, [resting], [], later_statuses=([], []))
        status = await getattr(client, MASS_STATUS_METHOD)(None)
        assert status is not None
        assert [r.venue_order_id.value for r in status.order_reports.values()] == ["V-1"]
        assert venue.asked.count("statuses") == 2 and venue.asked.count("positions") == 1


async def test_a_venue_that_cannot_be_reached_is_why_the_node_did_not_start_without_the_request_s_signature():
    """NautilusTrader's HTTP error names the request's URL, and a signed request's query ends ``&signature=…``
    (an HMAC of the request under the API secret): it must not reach the start's error (a log line, then the
    pod's termination message, the LiveStrategy's conditions and Events)."""
    import json
    import re

    from strategy_runtime.live.endpoints import ENV_VENUE_ENDPOINTS
    from tests.support.runtime_process import free_port

    closed = free_port()  # nothing listens: the signed request fails to connect, locally
    nowhere = {"http": f"http://127.0.0.1:{closed}", "ws_stream": f"ws://127.0.0.1:{closed}"}
    nowhere["ws_api"] = nowhere["ws_stream"]
    node = await build_without_connecting(
        live_config(live_manifest("binance", "spot", "BTCUSDT.BINANCE")),
        {**FAKE_CREDENTIALS, ENV_VENUE_ENDPOINTS: json.dumps(nowhere)},
    )
    try:
        client = exec_client(node)

        async def loaded() -> None:
            return None

        client._instrument_provider.initialize = loaded
        with pytest.raises(Exception) as failed:
            await client._connect()  # its first signed request: the account (GET /api/v3/account?…&signature=…)
        signature = re.search(r"signature=([0-9A-Za-z%+/=_-]{16,})", str(failed.value))
        assert signature, f"the adapter's error no longer names a signed URL: {failed.value}"
        why = node._why_not_running(75)
        assert f"127.0.0.1:{closed}" in why  # where it could not connect is still said
        assert signature.group(1) not in why, why
        assert not any(value in why for value in FAKE_CREDENTIALS.values())
        # the halt's questions to the venue (signed too) fail the same way, into its log and its report
        from strategy_runtime.live.client_hooks import venue_order, venue_sweep

        raised = []
        for ask in (venue_order(client)("BTCUSDT", "O-1"), venue_sweep(client)(lambda _: True)):
            with pytest.raises(Exception) as unanswered:
                await ask
            raised.append(str(unanswered.value))
        assert all(f"127.0.0.1:{closed}" in text and "signature=***" in text for text in raised), raised
        assert not any(re.search(r"signature=(?!\*\*\*)", text) for text in raised), raised
    finally:
        node.dispose()
