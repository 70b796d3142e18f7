"""The proof for OKX: NautilusTrader 1.231's own OKX clients, in a real TradingNode, trade against the emulator.

The node's client configs are the ones ``strategy_runtime/live/venues.py`` builds for a live OKX spot
manifest (instrument type SPOT, cash), with only their base URLs changed (REST, and the public / private WebSocket; the adapter
derives the business one). It connects (instruments, fee rate, balance, login, the orders and account
channels), submits a MARKET and a LIMIT order over the private WebSocket, learns their fills only from
the ``orders`` channel, cancels a third order, and the emulator's trades equal NautilusTrader's fills.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import msgspec
import pandas as pd
from aiohttp.test_utils import TestServer
from nautilus_trader.adapters.okx import (
    OKX,
    OKXLiveDataClientFactory,
    OKXLiveExecClientFactory,
)
from nautilus_trader.config import (
    LiveExecEngineConfig,
    LoggingConfig,
    StrategyConfig,
    TradingNodeConfig,
)
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import OrderSide, OrderStatus, TimeInForce
from nautilus_trader.model.events import OrderAccepted, OrderCanceled, OrderFilled, OrderRejected
from nautilus_trader.model.identifiers import ClientOrderId, InstrumentId, VenueOrderId
from nautilus_trader.trading.strategy import Strategy

from livestrat.api.runtime_config import ENV_API_KEY, ENV_API_PASSPHRASE, ENV_API_SECRET
from livestrat.api.validation import parse
from livestrat.venue_emulator.events import BookTop, Candle, Print, SymbolRules
from livestrat.venue_emulator.okx.venue import OkxKey, OkxVenue
from strategy_runtime.live.venues import live_venue
from tests.support.live_nodes import live_manifest

D = Decimal
BTC_USDT = InstrumentId.from_str("BTC-USDT.OKX")
RULES = SymbolRules(
    symbol="BTC-USDT",
    product="spot",
    instrument_id="BTC-USDT.OKX",
    base_asset="BTC",
    quote_asset="USDT",
    price_precision=1,
    qty_precision=8,
    tick_size=D("0.1"),
    step_size=D("0.00000001"),
    min_qty=D("0.00001"),
    max_qty=D("9000"),
    min_notional=D("0"),
    maker_fee=D("0.0008"),
    taker_fee=D("0.001"),
)
KEY = OkxKey("okx-emulator-key", "okx-emulator-secret", "okx-emulator-passphrase")


def book_top(bid: str, ask: str) -> BookTop:
    return BookTop("BTC-USDT", D(bid), D("5"), D(ask), D("5"), time.time_ns() // 1_000_000, "spot")


class Recorder(Strategy):
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


def node_config(
    http: str, ws: str, open_check_secs: float | None = None, open_check_open_only: bool = True
) -> TradingNodeConfig:
    # the client configs the live runtime builds for a spot OKX manifest (strategy_runtime/live/venues.py),
    # with only the base URLs replaced
    spec = parse(live_manifest("okx", "spot", str(BTC_USDT), testnet=False)).spec
    environ = {ENV_API_KEY: KEY.api_key, ENV_API_SECRET: KEY.secret, ENV_API_PASSPHRASE: KEY.passphrase}
    clients = live_venue(spec, environ)
    assert clients.nautilus_account_type == "CASH"
    urls = {"base_url_http": http, "max_retries": 1}
    data = msgspec.structs.replace(clients.data_config, **urls, base_url_ws=ws + "/public")
    execution = msgspec.structs.replace(clients.exec_config, **urls, base_url_ws=ws + "/private")
    return TradingNodeConfig(
        trader_id="EMULATOR-001",
        logging=LoggingConfig(log_level="WARNING", log_colors=False),
        exec_engine=LiveExecEngineConfig(
            reconciliation=True,
            open_check_interval_secs=open_check_secs,
            open_check_open_only=open_check_open_only,
            reconciliation_startup_delay_secs=1.0,
        ),
        data_clients={OKX: data},
        exec_clients={OKX: execution},
        timeout_connection=20.0,
        timeout_reconciliation=10.0,
        timeout_disconnection=5.0,
        timeout_post_stop=1.0,
    )


@asynccontextmanager
async def served() -> AsyncIterator[tuple[OkxVenue, str, str]]:
    venue = OkxVenue([RULES], [KEY], {"USDT": D("100000"), "BTC": D("2")})
    server = TestServer(venue.app(), host="127.0.0.1")
    await server.start_server()
    http = str(server.make_url("")).rstrip("/")
    try:
        yield venue, http, http.replace("http://", "ws://") + "/ws/v5"
    finally:
        await server.close()


@asynccontextmanager
async def running_node(http: str, ws: str, **engine: Any) -> AsyncIterator[tuple[TradingNode, Recorder]]:
    node = TradingNode(config=node_config(http, ws, **engine), loop=asyncio.get_running_loop())
    node.kernel._setup_loop = lambda: None
    strategy = Recorder()
    node.trader.add_strategy(strategy)
    node.add_data_client_factory(OKX, OKXLiveDataClientFactory)
    node.add_exec_client_factory(OKX, OKXLiveExecClientFactory)
    node.build()
    run = asyncio.create_task(node.run_async())
    try:
        await until(lambda: node.trader.is_running or run.done(), "the node to run")
        assert not run.done(), run.exception() if run.done() else None
        yield node, strategy
    finally:
        await node.stop_async()
        await asyncio.wait_for(run, 30)
        node.kernel.dispose()


async def test_nautilus_okx_clients_trade_against_the_emulator_and_report_its_trades():
    async with served() as (venue, http, ws):
        exchange = venue.exchange
        exchange.on_market(book_top("100.0", "100.5"))
        async with running_node(http, ws) as (node, strategy):
            instrument = node.kernel.cache.instrument(BTC_USDT)
            assert instrument is not None
            qty, px = instrument.make_qty, instrument.make_price
            factory = strategy.order_factory

            market = factory.market(BTC_USDT, OrderSide.BUY, qty(D("0.1")))
            strategy.submit_order(market)
            await until(lambda: len(strategy.of(OrderFilled)) == 1, "the market order's fill")

            limit = factory.limit(BTC_USDT, OrderSide.BUY, qty(D("0.2")), px(D("99")))
            strategy.submit_order(limit)
            await until(
                lambda: any(e.client_order_id == limit.client_order_id for e in strategy.of(OrderAccepted)), "accepted"
            )
            exchange.on_market(book_top("98.8", "98.9"))  # the ask reaches the limit: it fills at 99.0, maker
            await until(lambda: len(strategy.of(OrderFilled)) == 2, "the limit order's fill")

            to_cancel = factory.limit(BTC_USDT, OrderSide.SELL, qty(D("0.1")), px(D("130")), TimeInForce.GTC)
            strategy.submit_order(to_cancel)
            await until(
                lambda: any(e.client_order_id == to_cancel.client_order_id for e in strategy.of(OrderAccepted)),
                "accepted",
            )
            strategy.cancel_order(to_cancel)
            await until(lambda: len(strategy.of(OrderCanceled)) == 1, "the cancel")
            assert strategy.cache.order(to_cancel.client_order_id).status == OrderStatus.CANCELED
            assert strategy.cache.order(limit.client_order_id).status == OrderStatus.FILLED

            # the node's account is the venue's: the account pushes after each fill and cancel
            def node_balances() -> dict[str, tuple[Decimal, Decimal]]:
                account = node.kernel.cache.account_for_venue(BTC_USDT.venue)
                return {c.code: (b.total.as_decimal(), b.free.as_decimal()) for c, b in account.balances().items()}

            venue_balances = {a: (b.free + b.locked, b.free) for a, b in exchange.balances().items()}
            await until(lambda: node_balances() == venue_balances, f"the node's balances {venue_balances}")

        venue_trades = exchange.trades()
        reported = strategy.of(OrderFilled)
        assert [
            (str(t.trade_id), t.price, t.qty, t.commission, t.is_maker) for t in venue_trades
        ] == [
            (f.trade_id.value, f.last_px.as_decimal(), f.last_qty.as_decimal(), f.commission.as_decimal(),
             f.liquidity_side.name == "MAKER")
            for f in reported
        ]  # fmt: skip
        assert [(t.price, t.is_maker) for t in venue_trades] == [(D("100.5"), False), (D("99.0"), True)]
        assert exchange.open_orders() == []


class Watcher(Strategy):
    """Subscribes to the instrument's quotes, trades and 1-minute bars and keeps what arrives."""

    def __init__(self) -> None:
        super().__init__(StrategyConfig(strategy_id="WATCHER-001"))
        self.quotes: list = []
        self.trades: list = []
        self.bars: list = []

    def on_start(self) -> None:
        self.subscribe_quote_ticks(BTC_USDT)
        self.subscribe_trade_ticks(BTC_USDT)
        self.subscribe_bars(BarType.from_str("BTC-USDT.OKX-1-MINUTE-LAST-EXTERNAL"))

    def on_quote_tick(self, tick) -> None:
        self.quotes.append(tick)

    def on_trade_tick(self, tick) -> None:
        self.trades.append(tick)

    def on_bar(self, bar) -> None:
        self.bars.append(bar)


async def test_nautilus_okx_data_client_receives_the_venues_quotes_trades_and_bars():
    async with served() as (venue, http, ws):
        node = TradingNode(config=node_config(http, ws), loop=asyncio.get_running_loop())
        node.kernel._setup_loop = lambda: None
        watcher = Watcher()
        node.trader.add_strategy(watcher)
        node.add_data_client_factory(OKX, OKXLiveDataClientFactory)
        node.add_exec_client_factory(OKX, OKXLiveExecClientFactory)
        node.build()
        run = asyncio.create_task(node.run_async())
        try:
            await until(lambda: node.trader.is_running or run.done(), "the node to run")
            # the subscriptions reach the venue: the public bbo-tbt and trades, the business candle1m
            await until(lambda: venue.subscribed("bbo-tbt", "BTC-USDT") and venue.subscribed("trades", "BTC-USDT")
                        and venue.subscribed("candle1m", "BTC-USDT"), "the subscriptions")  # fmt: skip
            now = time.time_ns() // 1_000_000
            minute = now - now % 60_000
            venue.on_market(book_top("100.1", "100.3"))
            venue.on_market(Print("BTC-USDT", D("100.2"), D("0.5"), False, 77, now, "spot"))
            venue.on_market(Candle("BTC-USDT", "1m", minute - 60_000, minute - 1, D("100"), D("101"), D("99.5"),
                                   D("100.2"), D("12.5"), True, "spot"))  # fmt: skip
            await until(lambda: watcher.quotes and watcher.trades and watcher.bars, "the quote, trade and bar")
            [quote], [trade], [bar] = watcher.quotes, watcher.trades, watcher.bars
            assert (quote.bid_price.as_decimal(), quote.ask_price.as_decimal()) == (D("100.1"), D("100.3"))
            assert (trade.price.as_decimal(), trade.size.as_decimal(), trade.trade_id.value) == (
                D("100.2"),
                D("0.5"),
                "77",
            )
            assert (bar.open.as_decimal(), bar.high.as_decimal(), bar.low.as_decimal(), bar.close.as_decimal()) == (
                D("100"), D("101"), D("99.5"), D("100.2"))  # fmt: skip
            assert bar.volume.as_decimal() == D("12.5")
        finally:
            await node.stop_async()
            await asyncio.wait_for(run, 30)
            node.kernel.dispose()


async def test_an_order_held_before_the_start_is_reconciled_and_a_fill_made_during_a_drop_is_not_lost():
    """NautilusTrader 1.231's OKX execution client reconnects, logs in and subscribes again after a drop, but
    does not ask for what it missed, and OKX pushes nothing old on a new subscription; ``orders-pending``
    no longer lists a filled order. With the engine's default ``open_check_open_only=True`` (the live
    runtime's setting today) the engine skips orders missing from that list ("can't reliably resolve
    missing orders in open_only mode"): measured, the fill never reached the node in 60 s. With
    ``open_check_open_only=False`` the open check reads the order history, finds the order filled and
    infers the fill: the venue's price and quantity, a trade id of NautilusTrader's own (a UUID)."""
    async with served() as (venue, http, ws):
        exchange = venue.exchange
        exchange.on_market(book_top("100.0", "100.5"))
        held, _ = exchange.new_order("BTC-USDT", "SELL", "LIMIT", D("0.05"), D("150.0"), "GTC", "beforestart")
        async with running_node(http, ws, open_check_secs=1.0, open_check_open_only=False) as (node, strategy):
            order = node.kernel.cache.order(ClientOrderId("beforestart"))
            assert order is not None and order.status == OrderStatus.ACCEPTED
            assert order.venue_order_id == VenueOrderId(str(held.order_id))

            instrument = node.kernel.cache.instrument(BTC_USDT)
            limit = strategy.order_factory.limit(
                BTC_USDT, OrderSide.BUY, instrument.make_qty(D("0.3")), instrument.make_price(D("99"))
            )
            strategy.submit_order(limit)
            await until(
                lambda: any(e.client_order_id == limit.client_order_id for e in strategy.of(OrderAccepted)), "accepted"
            )
            assert await venue.drop_all() == 1
            exchange.on_market(book_top("98.0", "98.5"))  # fills now: the orders push goes nowhere
            [trade] = exchange.trades()
            await until(lambda: len(strategy.of(OrderFilled)) == 1, "the fill made during the drop", timeout=60)
            [fill] = strategy.of(OrderFilled)
            assert (fill.client_order_id, fill.last_px.as_decimal(), fill.last_qty.as_decimal()) == (
                limit.client_order_id, trade.price, trade.qty
            )  # fmt: skip
            assert fill.trade_id.value != str(trade.trade_id)  # inferred from the order's status, not from /fills
            assert strategy.cache.order(limit.client_order_id).status == OrderStatus.FILLED
            await until(lambda: venue.private_sessions == 1, "the private WebSocket's new login")


async def test_cancel_all_orders_reaches_the_venue_as_one_batch_cancel_and_cancels_every_open_order():
    """What a halt does (strategy_runtime's halt cancels every open order): each order ends CANCELED at the
    venue and in the node, sent as one ``batch-cancel-orders`` operation."""
    async with served() as (venue, http, ws):
        venue.exchange.on_market(book_top("100.0", "100.5"))
        async with running_node(http, ws) as (node, strategy):
            instrument = node.kernel.cache.instrument(BTC_USDT)
            qty, px = instrument.make_qty, instrument.make_price
            orders = [
                strategy.order_factory.limit(BTC_USDT, OrderSide.BUY, qty(D("0.1")), px(D("90"))),
                strategy.order_factory.limit(BTC_USDT, OrderSide.SELL, qty(D("0.1")), px(D("120"))),
            ]
            for order in orders:
                strategy.submit_order(order)
            # NautilusTrader 1.231 reports each OKX order accepted twice (the operation's answer, then the
            # orders push's status report, handled before the first event reached the order): count orders
            await until(lambda: len({e.client_order_id for e in strategy.of(OrderAccepted)}) == 2, "both accepted")
            strategy.cancel_all_orders(BTC_USDT)
            await until(lambda: len({e.client_order_id for e in strategy.of(OrderCanceled)}) == 2, "both canceled")
        assert venue.exchange.open_orders() == []
        assert [o.status for o in venue.exchange.every_order()] == ["CANCELED", "CANCELED"]
        assert venue.operations.count("batch-cancel-orders") == 1


async def test_an_order_the_venue_refuses_is_rejected_in_the_node_with_okxs_message():
    async with served() as (venue, http, ws):
        venue.exchange.on_market(book_top("100.0", "100.5"))
        async with running_node(http, ws) as (node, strategy):
            instrument = node.kernel.cache.instrument(BTC_USDT)
            # the node's risk engine denies what the cached balance cannot pay; the venue refuses the next
            # order whatever it is (the fault), as when the balance moved elsewhere
            venue.exchange.reject_next_order()
            too_big = strategy.order_factory.limit(
                BTC_USDT, OrderSide.BUY, instrument.make_qty(D("0.1")), instrument.make_price(D("99"))
            )
            strategy.submit_order(too_big)
            await until(lambda: strategy.of(OrderRejected), "the rejection")
            [rejected] = strategy.of(OrderRejected)
            assert rejected.reason == "Order failed. Insufficient USDT balance in account"  # sMsg (1.231 drops sCode)
            assert strategy.cache.order(too_big.client_order_id).status == OrderStatus.REJECTED
        assert venue.refusals == [("order", "51008")]
        assert venue.exchange.every_order() == []


class Warmer(Strategy):
    """Asks for the last hour of 1-minute bars at start, as a strategy with ``request_bars: true`` does."""

    def __init__(self) -> None:
        super().__init__(StrategyConfig(strategy_id="WARMER-001"))
        self.bars: list = []

    def on_start(self) -> None:
        self.request_bars(
            BarType.from_str("BTC-USDT.OKX-1-MINUTE-LAST-EXTERNAL"),
            start=self.clock.utc_now() - pd.Timedelta(hours=1),
        )

    def on_historical_data(self, data) -> None:
        self.bars.append(data)


async def test_a_strategys_bar_request_is_answered_from_the_feeds_candles():
    from tests.venue_emulator.test_okx_api import _Feed

    now = time.time_ns() // 1_000_000
    minute = now - now % 60_000
    opens = [minute - (10 - i) * 60_000 for i in range(5)]  # five closed minutes, ten to six minutes ago
    venue = OkxVenue([RULES], [KEY], {"USDT": D("1000")}, feed=_Feed(opens))
    server = TestServer(venue.app(), host="127.0.0.1")
    await server.start_server()
    http = str(server.make_url("")).rstrip("/")
    node = TradingNode(config=node_config(http, http.replace("http://", "ws://") + "/ws/v5"),
                       loop=asyncio.get_running_loop())  # fmt: skip
    node.kernel._setup_loop = lambda: None
    warmer = Warmer()
    node.trader.add_strategy(warmer)
    node.add_data_client_factory(OKX, OKXLiveDataClientFactory)
    node.add_exec_client_factory(OKX, OKXLiveExecClientFactory)
    node.build()
    run = asyncio.create_task(node.run_async())
    try:
        await until(lambda: len(warmer.bars) == 5, "the five bars")
        # NautilusTrader 1.231 stamps an OKX historical bar at its open (OKX's ts), not at its close as for Binance
        assert [b.ts_event // 1_000_000 for b in warmer.bars] == opens
        assert [b.close.as_decimal() for b in warmer.bars] == [D(100) + D("0.5") * i for i in range(5)]
    finally:
        await node.stop_async()
        await asyncio.wait_for(run, 30)
        node.kernel.dispose()
        await server.close()
