"""The proof: NautilusTrader 1.231's own Binance spot clients, in a real TradingNode, trade against the emulator.

Nothing of the adapter is swapped: the node is configured as a live Binance spot node whose only change
is its base URLs (REST, the WebSocket API for the execution client). It connects (instruments, account,
clock check, ``session.logon`` + ``userDataStream.subscribe``), reconciles an order the venue already
holds, submits a MARKET and a LIMIT order, learns their fills only from the user-data stream, cancels a
third order, and the emulator's trade history equals the fills NautilusTrader reported, field by field.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal

from nautilus_trader.adapters.binance import (
    BINANCE,
    BinanceAccountType,
    BinanceDataClientConfig,
    BinanceExecClientConfig,
    BinanceLiveDataClientFactory,
    BinanceLiveExecClientFactory,
)
from nautilus_trader.adapters.binance.common.enums import BinanceEnvironment
from nautilus_trader.config import (
    InstrumentProviderConfig,
    LiveExecEngineConfig,
    LiveRiskEngineConfig,
    LoggingConfig,
    StrategyConfig,
    TradingNodeConfig,
)
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.enums import OrderSide, OrderStatus, TimeInForce
from nautilus_trader.model.events import OrderAccepted, OrderCanceled, OrderExpired, OrderFilled, OrderRejected
from nautilus_trader.model.identifiers import ClientOrderId, InstrumentId, VenueOrderId
from nautilus_trader.trading.strategy import Strategy

from tests.venue_emulator.node_orders import assert_accepted_then_expired, submit_ioc_buy
from tests.venue_emulator.spot_venue import ED25519_KEY, HMAC_KEY, Served, book_top, served_venue

D = Decimal
BTCUSDT = InstrumentId.from_str("BTCUSDT.BINANCE")


class Recorder(Strategy):
    """Submits what the test asks and keeps every order event it is sent."""

    def __init__(self) -> None:
        super().__init__(StrategyConfig(strategy_id="RECORDER-001"))
        self.events: list[object] = []

    def on_order_event(self, event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


async def until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def node_config(http: str, ws_api: str, *, bypass_risk: bool = False) -> TradingNodeConfig:
    common = {
        "api_key": ED25519_KEY.api_key,
        "api_secret": ED25519_KEY.secret,
        "account_type": BinanceAccountType.SPOT,
        "environment": BinanceEnvironment.LIVE,
        "base_url_http": http,
        "instrument_provider": InstrumentProviderConfig(load_ids=frozenset([BTCUSDT])),
    }
    return TradingNodeConfig(
        trader_id="EMULATOR-001",
        logging=LoggingConfig(log_level="WARNING", log_colors=False),
        exec_engine=LiveExecEngineConfig(reconciliation=True, open_check_interval_secs=None),
        risk_engine=LiveRiskEngineConfig(bypass=bypass_risk),
        data_clients={BINANCE: BinanceDataClientConfig(**common)},
        exec_clients={BINANCE: BinanceExecClientConfig(**common, base_url_ws=ws_api, max_retries=0)},
        timeout_connection=20.0,
        timeout_reconciliation=10.0,
        timeout_disconnection=5.0,
        timeout_post_stop=1.0,
    )


@asynccontextmanager
async def running_node(
    v: Served, exec_factory: type = BinanceLiveExecClientFactory, *, bypass_risk: bool = False
) -> AsyncIterator[tuple[TradingNode, Recorder]]:
    """A live Binance spot TradingNode pointed at the served venue, running on the test's loop; its execution
    client made by ``exec_factory`` (the adapter's own, or the runtime's); with ``bypass_risk``, its RiskEngine
    lets every order through to the venue (NautilusTrader denies one a cash account's free balance cannot cover
    before sending it)."""
    node = TradingNode(config=node_config(v.http, v.ws_api, bypass_risk=bypass_risk), loop=asyncio.get_running_loop())
    node.kernel._setup_loop = lambda: None
    strategy = Recorder()
    node.trader.add_strategy(strategy)
    node.add_data_client_factory(BINANCE, BinanceLiveDataClientFactory)
    node.add_exec_client_factory(BINANCE, exec_factory)
    node.build()
    run = asyncio.create_task(node.run_async())
    try:
        await until(lambda: node.trader.is_running or run.done(), "the node to run")
        assert not run.done(), run.exception() if run.done() else None
        yield node, strategy
    finally:
        await node.stop_async()
        await asyncio.wait_for(run, 30)
        node.kernel.dispose()  # TradingNode.dispose would stop the test's loop


async def test_nautilus_binance_spot_clients_trade_against_the_emulator_and_report_its_trades():
    async with served_venue() as v:
        exchange = v.venue.exchange
        exchange.on_market(book_top("100.00", "100.50"))
        resting, _ = exchange.new_order("BTCUSDT", "SELL", "LIMIT", D("0.05"), D("150.00"), "GTC", "before-start")

        async with running_node(v) as (node, strategy):
            # reconciled: the order the venue held before the start is in the node's cache, open
            held = node.kernel.cache.order(ClientOrderId("before-start"))
            assert held is not None and held.status == OrderStatus.ACCEPTED
            assert held.venue_order_id == VenueOrderId(str(resting.order_id))

            factory = strategy.order_factory
            instrument = node.kernel.cache.instrument(BTCUSDT)  # as exchangeInfo gave it: spot precision 8
            qty, px = instrument.make_qty, instrument.make_price
            market = factory.market(BTCUSDT, OrderSide.BUY, qty(D("0.1")))
            strategy.submit_order(market)
            await until(lambda: len(strategy.of(OrderFilled)) == 1, "the market order's fill")

            limit = factory.limit(BTCUSDT, OrderSide.BUY, qty(D("0.2")), px(D("99")))
            strategy.submit_order(limit)
            await until(
                lambda: any(e.client_order_id == limit.client_order_id for e in strategy.of(OrderAccepted)), "accepted"
            )
            exchange.on_market(book_top("98.80", "98.90"))  # the ask reaches the limit: it fills at 99.00, maker
            await until(lambda: len(strategy.of(OrderFilled)) == 2, "the limit order's fill")

            to_cancel = factory.limit(BTCUSDT, OrderSide.SELL, qty(D("0.1")), px(D("130")), TimeInForce.GTC)
            strategy.submit_order(to_cancel)
            await until(
                lambda: any(e.client_order_id == to_cancel.client_order_id for e in strategy.of(OrderAccepted)),
                "accepted",
            )
            strategy.cancel_order(to_cancel)
            await until(lambda: len(strategy.of(OrderCanceled)) == 1, "the cancel")
            assert strategy.cache.order(to_cancel.client_order_id).status == OrderStatus.CANCELED
            assert strategy.cache.order(limit.client_order_id).status == OrderStatus.FILLED

        venue_trades = exchange.trades()
        reported = strategy.of(OrderFilled)
        assert [
            (str(t.trade_id), t.price, t.qty, t.commission, t.is_maker) for t in venue_trades
        ] == [
            (f.trade_id.value, f.last_px.as_decimal(), f.last_qty.as_decimal(), f.commission.as_decimal(),
             f.liquidity_side.name == "MAKER")
            for f in reported
        ]  # fmt: skip
        assert [(t.price, t.is_maker) for t in venue_trades] == [(D("100.50"), False), (D("99.00"), True)]
        assert [o.client_order_id for o in exchange.open_orders()] == ["before-start"]


async def test_a_fill_made_while_the_user_stream_is_down_reaches_nautilus_after_it_reconnects():
    async with served_venue() as v, running_node(v) as (node, strategy):
        exchange = v.venue.exchange
        exchange.on_market(book_top("100.00", "100.50"))
        instrument = node.kernel.cache.instrument(BTCUSDT)
        order = strategy.order_factory.limit(
            BTCUSDT, OrderSide.BUY, instrument.make_qty(D("0.3")), instrument.make_price(D("99"))
        )
        strategy.submit_order(order)
        await until(lambda: len(strategy.of(OrderAccepted)) == 1, "accepted")
        assert v.venue.ws_api.subscribed_sessions == 1

        assert await v.venue.ws_api.drop_all() == 1
        exchange.on_market(book_top("98.00", "98.50"))  # fills now: the executionReport goes nowhere
        [trade] = exchange.trades()

        # NautilusTrader reconnects, logs on, subscribes and reconciles: the fill comes back from myTrades
        await until(lambda: len(strategy.of(OrderFilled)) == 1, "the fill made during the drop", timeout=60)
        [fill] = strategy.of(OrderFilled)
        assert (fill.trade_id.value, fill.last_px.as_decimal(), fill.last_qty.as_decimal()) == (
            str(trade.trade_id),
            trade.price,
            trade.qty,
        )
        await until(lambda: v.venue.ws_api.subscribed_sessions == 1, "the resubscription")

        v.venue.ws_api.terminate_subscriptions()  # eventStreamTerminated: it subscribes again
        await until(lambda: v.venue.ws_api.subscribed_sessions == 1, "a subscription after the termination")
        assert strategy.cache.order(order.client_order_id).status == OrderStatus.FILLED


async def test_an_ioc_the_balance_cannot_cover_reaches_nautilus_as_rejected_though_it_would_have_expired():
    """The venue checks the balance before the book (faqs/market_orders_faq.md, errors.md -2010): an IOC buy that
    would not cross, for more than the USDT the account holds, is refused -2010, and the adapter turns the refusal
    into an OrderRejected with Binance's message; no order is left open anywhere."""
    async with served_venue() as v, running_node(v, bypass_risk=True) as (node, strategy):
        exchange = v.venue.exchange
        exchange.on_market(book_top("100.00", "100.50"))
        instrument = node.kernel.cache.instrument(BTCUSDT)
        order = strategy.order_factory.limit(
            BTCUSDT, OrderSide.BUY, instrument.make_qty(D("1100")), instrument.make_price(D("99")), TimeInForce.IOC
        )  # 108,900 USDT; the account holds 100,000
        strategy.submit_order(order)
        await until(lambda: len(strategy.of(OrderRejected)) == 1, "the rejection")
        [rejected] = strategy.of(OrderRejected)
        assert rejected.client_order_id == order.client_order_id
        assert (
            "-2010" in rejected.reason and "Account has insufficient balance for requested action." in rejected.reason
        )
        assert strategy.cache.order(order.client_order_id).status == OrderStatus.REJECTED
        assert exchange.every_order() == [] and exchange.balances()["USDT"].free == D("100000")


async def test_an_ioc_that_expires_on_arrival_reaches_nautilus_as_accepted_then_expired():
    """An IOC that does not cross is reported NEW, then EXPIRED (eR UNFILLED_IOC_QUANTITY_EXPIRED): the adapter
    makes them OrderAccepted and OrderExpired, and the order is closed in the node. NautilusTrader 1.231 has no
    SUBMITTED -> EXPIRED transition: a lone EXPIRED would leave the order SUBMITTED in the node for good."""
    async with served_venue() as v, running_node(v) as (node, strategy):
        v.venue.exchange.on_market(book_top("100.00", "100.50"))
        order = submit_ioc_buy(node, strategy, BTCUSDT, "0.1", "99")
        await until(lambda: len(strategy.of(OrderExpired)) == 1, "the expiry")
        assert_accepted_then_expired(strategy, order)
        assert v.venue.exchange.open_orders() == []


async def test_an_hmac_key_cannot_log_on_to_the_spot_websocket_api_so_the_execution_client_never_connects():
    """Binance takes session.logon only from Ed25519 keys; NautilusTrader 1.231's spot client sends it with
    any key, so with an HMAC key its user-data stream (and with it the execution client) never comes up."""
    async with served_venue() as v:
        config = node_config(v.http, v.ws_api)
        exec_config = config.exec_clients[BINANCE]
        hmac_exec = BinanceExecClientConfig(
            **{
                **{f: getattr(exec_config, f) for f in ("account_type", "environment", "base_url_http", "base_url_ws")},
                "api_key": HMAC_KEY.api_key,
                "api_secret": HMAC_KEY.secret,
                "instrument_provider": exec_config.instrument_provider,
                "max_retries": 0,
            }
        )
        config = TradingNodeConfig(
            trader_id="EMULATOR-003",
            logging=LoggingConfig(log_level="ERROR", log_colors=False),
            exec_engine=LiveExecEngineConfig(reconciliation=True, open_check_interval_secs=None),
            data_clients=config.data_clients,
            exec_clients={BINANCE: hmac_exec},
            timeout_connection=3.0,
            timeout_reconciliation=3.0,
            timeout_disconnection=3.0,
            timeout_post_stop=0.5,
        )
        node = TradingNode(config=config, loop=asyncio.get_running_loop())
        node.kernel._setup_loop = lambda: None
        node.add_data_client_factory(BINANCE, BinanceLiveDataClientFactory)
        node.add_exec_client_factory(BINANCE, BinanceLiveExecClientFactory)
        node.build()
        run = asyncio.create_task(node.run_async())
        try:
            # the REST calls of the connect succeed (HMAC signs REST); the logon is what fails
            await until(lambda: ("session.logon", -1022) in v.venue.ws_api.refusals, "the logon's refusal")
            assert not node.kernel.exec_engine.check_connected()
            assert not node.trader.is_running
            assert v.venue.ws_api.subscribed_sessions == 0
        finally:
            await node.stop_async()
            await asyncio.wait_for(run, 30)
            node.kernel.dispose()
