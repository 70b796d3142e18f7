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
import inspect

import pytest
from nautilus_trader.adapters.binance.execution import BinanceCommonExecutionClient
from nautilus_trader.adapters.binance.spot.execution import BinanceSpotExecutionClient

from tests.support.live_nodes import FAKE_CREDENTIALS, build_without_connecting, live_config, live_manifest


def exec_client(node):
    engine = node.kernel.exec_engine
    return engine._clients[engine.registered_clients[0]]


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


@pytest.mark.parametrize("account_type", ["spot", "usdtFutures"])
async def test_a_live_node_asks_the_venue_for_its_trades_then_its_order_statuses_not_side_by_side(account_type):
    from strategy_runtime.live.reconciliation import MASS_STATUS_METHOD

    instrument = "BTCUSDT.BINANCE" if account_type == "spot" else "BTCUSDT-PERP.BINANCE"
    node = await build_without_connecting(
        live_config(live_manifest("binance", account_type, instrument)), FAKE_CREDENTIALS
    )
    try:
        client = exec_client(node)
        asked: list[str] = []

        def recording(what: str, answer: list):
            async def ask(command):
                asked.append(what)
                await asyncio.sleep(0)  # side by side, the others would go now
                asked.append(f"{what} answered")
                return answer

            return ask

        client.generate_fill_reports = recording("trades", [])
        client.generate_order_status_reports = recording("statuses", [])
        client.generate_position_status_reports = recording("positions", [])
        status = await getattr(client, MASS_STATUS_METHOD)(None)
        assert status is not None
        assert asked == [
            "trades",
            "trades answered",
            "statuses",
            "statuses answered",
            "positions",
            "positions answered",
        ]
    finally:
        node.dispose()


def _trade(order: str, trade_id: str, qty: str):
    from types import SimpleNamespace

    from nautilus_trader.model.objects import Quantity

    return SimpleNamespace(venue_order_id=order, trade_id=trade_id, last_qty=Quantity.from_str(qty))


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
