"""A spot user-data subscription ended while the client is still reconciling a reconnect: it must come back.

NautilusTrader 1.231's spot execution client, after its WebSocket API connection drops, reconnects, logs
on, subscribes (``userDataStream.subscribe``) and then reconciles with the venue over REST before it
releases the events it held; all of that runs in its ``_reconnect_task``. An ``eventStreamTerminated``
that arrives in that window (after the subscription was answered, before the reconciliation is over)
starts ``_resubscribe``, which sees the reconnect task still running, takes it for a reconnect under way
and returns without subscribing. The reconnect task then ends believing it is subscribed: no order event
reaches the node again, silently, until the process restarts. Under load (the reconciliation's REST
calls slow) the window is wide enough for a drop followed by an expiry to land in it
(tests/live/test_both_markets.py, a stop left "INCOMPLETE" with every later order unacknowledged).

The window is held open here by the venue's answer to ``allOrders`` (the reconciliation's call), held
until the client has seen the termination; nothing is timed. The real adapter talks to the emulator.

A drop while that task waits for the answer to its ``session.logon`` or ``userDataStream.subscribe`` loses the
answer; the task times out, marks the recovery failed and disconnects the client, and the newer reconnect's task,
waiting behind it, refuses to send: the stream is given up for good. Here the venue cuts the connection as it
carries out the reconnect's request, so the drop always lands in that window.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from nautilus_trader.adapters.binance import BinanceLiveExecClientFactory
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.events import OrderAccepted

from strategy_runtime.live.binance import BinanceExecClientFactory
from tests.venue_emulator.spot_venue import book_top, served_venue
from tests.venue_emulator.test_nautilus_spot import BTCUSDT, Recorder, running_node, until

D = Decimal


def exec_client(node: Any) -> Any:
    engine = node.kernel.exec_engine
    return engine._clients[engine.registered_clients[0]]


def accepted(strategy: Recorder, order: Any) -> bool:
    return any(e.client_order_id == order.client_order_id for e in strategy.of(OrderAccepted))


async def terminate_while_reconciling_a_reconnect(v, node, strategy: Recorder) -> Any:
    """Drop the connection, hold the reconnect's reconciliation, end the new subscription, let go; the ws client."""
    client = exec_client(node)
    ws = client._ws_client
    exchange = v.venue.exchange
    exchange.on_market(book_top("100.00", "100.50"))
    instrument = node.kernel.cache.instrument(BTCUSDT)
    resting = strategy.order_factory.limit(
        BTCUSDT, OrderSide.BUY, instrument.make_qty(D("0.1")), instrument.make_price(D("90"))
    )
    strategy.submit_order(resting)  # an open order: the reconciliation asks allOrders for its symbol
    await until(lambda: accepted(strategy, resting), "the resting order accepted")

    held, release = asyncio.Event(), asyncio.Event()
    all_orders = client._http_account.query_all_orders

    async def slow_all_orders(*args: Any, **kwargs: Any) -> Any:
        held.set()
        await release.wait()
        return await all_orders(*args, **kwargs)

    client._http_account.query_all_orders = slow_all_orders
    resubscribe = ws._resubscribe
    called: list[bool] = []
    handled: list[bool] = []

    async def recorded_resubscribe() -> None:
        called.append(True)
        try:
            await resubscribe()
        finally:
            handled.append(True)

    ws._resubscribe = recorded_resubscribe  # _handle_message looks it up when the termination arrives

    assert await v.venue.ws_api.drop_all() == 1
    await until(held.is_set, "the reconnect's reconciliation asking allOrders")
    assert v.venue.ws_api.subscribed_sessions == 1  # logged on and subscribed again, still reconciling
    assert v.venue.ws_api.terminate_subscriptions() == 1  # eventStreamTerminated, in the window
    await until(lambda: bool(called), "the client reading the termination")
    release.set()
    await until(lambda: ws._reconnect_task is not None and ws._reconnect_task.done(), "the reconnect task's end")
    await until(lambda: bool(handled), "the client's answer to the termination")
    client._http_account.query_all_orders = all_orders
    return ws


async def test_nautilus_1_231_stays_unsubscribed_after_a_termination_during_a_reconnect_s_reconciliation():
    """The upstream bug, pinned: when this fails, NautilusTrader fixed it and the runtime's correction can go."""
    async with served_venue() as v, running_node(v, BinanceLiveExecClientFactory) as (node, strategy):
        ws = await terminate_while_reconciling_a_reconnect(v, node, strategy)
        # the client believes it is subscribed; the venue holds no subscription: no order event will come
        assert ws.subscription_id is not None
        assert v.venue.ws_api.subscribed_sessions == 0


async def test_the_runtime_s_spot_client_subscribes_again_after_a_termination_during_a_reconnect_s_reconciliation():
    async with served_venue() as v, running_node(v, BinanceExecClientFactory) as (node, strategy):
        await terminate_while_reconciling_a_reconnect(v, node, strategy)
        await until(lambda: v.venue.ws_api.subscribed_sessions == 1, "a subscription after the termination")
        # and the venue's order events reach the node again
        instrument = node.kernel.cache.instrument(BTCUSDT)
        later = strategy.order_factory.limit(
            BTCUSDT, OrderSide.BUY, instrument.make_qty(D("0.1")), instrument.make_price(D("91"))
        )
        strategy.submit_order(later)
        await until(lambda: accepted(strategy, later), "an order placed after the termination accepted")


async def drop_while_the_reconnect_asks(v, node, method: str) -> Any:
    """Drop the connection, then drop the new one as soon as the reconnect's ``method`` request (``session.logon``
    or ``userDataStream.subscribe``) is carried out, its answer lost with it: a drop landing while the client
    logs on again. The reconnect task waits for that answer until its request times out; the ws client."""
    ws = exec_client(node)._ws_client
    api = v.venue.ws_api
    call = api._call
    cut: list[str] = []

    def cutting_call(session: Any, asked: str, params: dict[str, object]) -> object:
        result = call(session, asked, params)
        if asked == method and not cut:
            cut.append(asked)
            session.transport.abort()
        return result

    api._call = cutting_call
    assert await api.drop_all() == 1
    await until(lambda: bool(cut), f"the reconnect's {method} carried out and its connection cut")
    return ws


async def test_nautilus_1_231_gives_up_its_user_data_stream_after_a_drop_while_it_logs_on_again():
    """The upstream bug, pinned: the first reconnect's request times out, it marks the recovery failed and
    disconnects, and the second reconnect, waiting behind it, refuses to send anything. When this fails,
    NautilusTrader fixed it and the runtime's correction can go."""
    async with served_venue() as v, running_node(v, BinanceLiveExecClientFactory) as (node, _strategy):
        ws = await drop_while_the_reconnect_asks(v, node, "session.logon")
        await until(lambda: ws._is_recovery_failed, "the client giving the stream up")
        assert v.venue.ws_api.subscribed_sessions == 0


@pytest.mark.parametrize("method", ["session.logon", "userDataStream.subscribe"])
async def test_the_runtime_s_spot_client_subscribes_again_after_a_drop_while_it_logs_on_again(method: str):
    async with served_venue() as v, running_node(v, BinanceExecClientFactory) as (node, strategy):
        ws = await drop_while_the_reconnect_asks(v, node, method)
        await until(lambda: v.venue.ws_api.subscribed_sessions == 1, "a subscription on the newer connection")
        assert not ws._is_recovery_failed
        instrument = node.kernel.cache.instrument(BTCUSDT)
        later = strategy.order_factory.limit(
            BTCUSDT, OrderSide.BUY, instrument.make_qty(D("0.1")), instrument.make_price(D("91"))
        )
        strategy.submit_order(later)
        await until(lambda: accepted(strategy, later), "an order placed after the second drop accepted")
