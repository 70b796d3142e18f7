"""The USD-M proof: NautilusTrader 1.231's own Binance futures clients, in a real TradingNode, trade against the emulator.

The node is a live USDT_FUTURES node changed only in its base URLs (``base_url_http``, and the
execution client's ``base_url_ws`` = the emulator's USD-M WebSocket API and ``base_url_ws_stream`` =
its private stream base). With an HMAC key the adapter manages a listen key over REST, with an
Ed25519 key over USD-M's WebSocket API (session.logon, userDataStream.start); either way it reads
ORDER_TRADE_UPDATE / ACCOUNT_UPDATE from the private stream. It reconciles a position the venue held before it started, opens and closes
exposure with a MARKET and a LIMIT order, cancels a third, and the venue's trades and position
equal what NautilusTrader reported.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal

import pytest
from aiohttp.test_utils import TestServer
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
    LoggingConfig,
    StrategyConfig,
    TradingNodeConfig,
)
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.enums import OrderSide, OrderStatus, TimeInForce
from nautilus_trader.model.events import OrderAccepted, OrderCanceled, OrderExpired, OrderFilled, OrderRejected
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy

from livestrat.venue_emulator.auth import ApiKey
from livestrat.venue_emulator.events import BookTop, SymbolRules
from livestrat.venue_emulator.market_api import market_routes
from livestrat.venue_emulator.server import Venue, build_app, build_venue, endpoints
from tests.venue_emulator.node_orders import assert_accepted_then_expired, submit_ioc_buy
from tests.venue_emulator.spot_venue import BTCUSDT as SPOT_BTCUSDT
from tests.venue_emulator.spot_venue import ED25519_KEY, HMAC_KEY, scenario

D = Decimal
PERP = InstrumentId.from_str("BTCUSDT-PERP.BINANCE")
PERP_RULES = SymbolRules(
    symbol="BTCUSDT",
    product="usdm",
    instrument_id="BTCUSDT-PERP.BINANCE",
    base_asset="BTC",
    quote_asset="USDT",
    price_precision=1,
    qty_precision=3,
    tick_size=D("0.1"),
    step_size=D("0.001"),
    min_qty=D("0.001"),
    max_qty=D("1000"),
    min_notional=D("5"),
    maker_fee=D("0.0002"),
    taker_fee=D("0.0005"),
    min_price=D("0.1"),
    max_price=D("1000000"),
)


def top(bid: str, ask: str) -> BookTop:
    return BookTop("BTCUSDT", D(bid), D("5"), D(ask), D("5"), time.time_ns() // 1_000_000, "usdm")


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


@dataclass
class Served:
    venue: Venue
    urls: dict[str, str]


@asynccontextmanager
async def served_usdm(**fields: object) -> AsyncIterator[Served]:
    rules = [SPOT_BTCUSDT, PERP_RULES]
    venue = build_venue(rules, scenario(**fields))
    server = TestServer(build_app(venue, market_routes(rules)), host="127.0.0.1")
    await server.start_server()
    try:
        yield Served(venue, endpoints(str(server.make_url("")).rstrip("/")))
    finally:
        await server.close()


@asynccontextmanager
async def running_node(urls: dict[str, str], key: ApiKey = HMAC_KEY) -> AsyncIterator[tuple[TradingNode, Recorder]]:
    common = {
        "api_key": key.api_key,
        "api_secret": key.secret,
        "account_type": BinanceAccountType.USDT_FUTURES,
        "environment": BinanceEnvironment.LIVE,
        "base_url_http": urls["http"],
        "instrument_provider": InstrumentProviderConfig(load_ids=frozenset([PERP])),
    }
    config = TradingNodeConfig(
        trader_id="EMULATOR-002",
        logging=LoggingConfig(log_level="WARNING", log_colors=False),
        exec_engine=LiveExecEngineConfig(reconciliation=True, open_check_interval_secs=None),
        data_clients={BINANCE: BinanceDataClientConfig(**common)},
        exec_clients={
            BINANCE: BinanceExecClientConfig(
                **common, base_url_ws=urls["ws_api_usdm"], base_url_ws_stream=urls["ws_private"], max_retries=0
            )
        },
        timeout_connection=20.0,
        timeout_reconciliation=10.0,
        timeout_disconnection=5.0,
        timeout_post_stop=1.0,
    )
    node = TradingNode(config=config, loop=asyncio.get_running_loop())
    node.kernel._setup_loop = lambda: None
    strategy = Recorder()
    node.trader.add_strategy(strategy)
    node.add_data_client_factory(BINANCE, BinanceLiveDataClientFactory)
    node.add_exec_client_factory(BINANCE, BinanceLiveExecClientFactory)
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


@pytest.mark.parametrize("key", [HMAC_KEY, ED25519_KEY], ids=["hmac-rest-listen-key", "ed25519-ws-api-listen-key"])
async def test_nautilus_binance_usdm_clients_trade_against_the_emulator_and_report_its_trades_and_position(key):
    """With HMAC the client keeps its listen key over REST; with Ed25519 through USD-M's WebSocket API."""
    held = [{"symbol": "BTCUSDT", "amount": "0.100", "entry_price": "100.0"}]
    async with served_usdm(usdm_wallet="10000", usdm_positions=held) as v:
        futures = v.venue.futures
        assert futures is not None and v.venue.futures_streams is not None
        futures.on_market(top("100.0", "100.5"))
        async with running_node(v.urls, key) as (node, strategy):
            # reconciled: the position the venue held is the node's
            [position] = node.kernel.cache.positions_open(instrument_id=PERP)
            assert position.signed_decimal_qty() == D("0.100")
            assert v.venue.futures_streams.connected == 1  # the listen key's private stream
            assert v.venue.futures_ws_api is not None
            assert v.venue.futures_ws_api.logged_on_sessions == (1 if key.key_type == "ed25519" else 0)

            instrument = node.kernel.cache.instrument(PERP)
            qty, px = instrument.make_qty, instrument.make_price
            factory = strategy.order_factory
            strategy.submit_order(factory.market(PERP, OrderSide.BUY, qty(D("0.500"))))
            await until(lambda: len(strategy.of(OrderFilled)) == 1, "the market order's fill")

            limit = factory.limit(PERP, OrderSide.SELL, qty(D("0.400")), px(D("101.0")))
            strategy.submit_order(limit)
            await until(lambda: any(e.client_order_id == limit.client_order_id for e in strategy.of(OrderAccepted)), "accepted")  # fmt: skip
            futures.on_market(top("101.2", "101.3"))  # the bid reaches the sell limit: maker at 101.0
            await until(lambda: len(strategy.of(OrderFilled)) == 2, "the limit order's fill")

            to_cancel = factory.limit(PERP, OrderSide.BUY, qty(D("0.200")), px(D("90.0")), TimeInForce.GTC)
            strategy.submit_order(to_cancel)
            await until(lambda: any(e.client_order_id == to_cancel.client_order_id for e in strategy.of(OrderAccepted)), "accepted")  # fmt: skip
            strategy.cancel_order(to_cancel)
            await until(lambda: len(strategy.of(OrderCanceled)) == 1, "the cancel")
            assert strategy.cache.order(to_cancel.client_order_id).status == OrderStatus.CANCELED

            venue_position = futures.account.position("BTCUSDT")
            # the node books the reconciled position apart (EXTERNAL) from the strategy's: their sum is the venue's
            net = sum(p.signed_decimal_qty() for p in node.kernel.cache.positions_open(instrument_id=PERP))
            assert net == venue_position.amount == D("0.200")

        trades = futures.trades()
        reported = strategy.of(OrderFilled)
        assert [(str(t.trade_id), t.price, t.qty, t.commission, t.is_maker) for t in trades] == [
            (f.trade_id.value, f.last_px.as_decimal(), f.last_qty.as_decimal(), f.commission.as_decimal(),
             f.liquidity_side.name == "MAKER")
            for f in reported
        ]  # fmt: skip
        assert [(t.price, t.is_maker) for t in trades] == [(D("100.5"), False), (D("101.0"), True)]
        # the sell closed 0.400 of a 0.600 long entered at (100.0 * 0.100 + 100.5 * 0.500) / 0.600
        entry = (D("100.0") * D("0.100") + D("100.5") * D("0.500")) / D("0.600")
        assert trades[1].realized_pnl == D("0.400") * (D("101.0") - entry)
        assert futures.open_orders() == []


async def test_a_fill_made_while_the_listen_key_is_expired_reaches_nautilus_after_it_makes_a_new_one():
    async with served_usdm(usdm_wallet="10000") as v:
        futures, streams = v.venue.futures, v.venue.futures_streams
        assert futures is not None and streams is not None
        futures.on_market(top("100.0", "100.5"))
        async with running_node(v.urls) as (node, strategy):
            instrument = node.kernel.cache.instrument(PERP)
            order = strategy.order_factory.limit(
                PERP, OrderSide.BUY, instrument.make_qty(D("0.300")), instrument.make_price(D("99.0"))
            )
            strategy.submit_order(order)
            await until(lambda: len(strategy.of(OrderAccepted)) == 1, "accepted")
            old_key = streams.listen_key.key if streams.listen_key else None

            assert streams.expire() == 1  # listenKeyExpired, the stream closes
            futures.on_market(top("98.0", "98.5"))  # fills while no stream is open
            [trade] = futures.trades()

            await until(lambda: len(strategy.of(OrderFilled)) == 1, "the fill made while the key was expired")
            [fill] = strategy.of(OrderFilled)
            assert (fill.trade_id.value, fill.last_px.as_decimal(), fill.last_qty.as_decimal()) == (
                str(trade.trade_id),
                trade.price,
                trade.qty,
            )
            await until(lambda: streams.connected == 1, "a stream on the new listen key")
            assert streams.listen_key is not None and streams.listen_key.key != old_key


async def test_an_ioc_that_expires_on_arrival_reaches_nautilus_as_accepted_then_expired():
    """USD-M reports an IOC that does not cross NEW, then EXPIRED (er 2): OrderAccepted, then OrderExpired, and the
    order is closed in the node (NautilusTrader 1.231 has no SUBMITTED -> EXPIRED transition)."""
    async with served_usdm(usdm_wallet="10000") as v:
        futures = v.venue.futures
        assert futures is not None
        futures.on_market(top("100.0", "100.5"))
        async with running_node(v.urls) as (node, strategy):
            order = submit_ioc_buy(node, strategy, PERP, "0.100", "99.0")
            await until(lambda: len(strategy.of(OrderExpired)) == 1, "the expiry")
            assert_accepted_then_expired(strategy, order)
            assert futures.open_orders() == []


async def test_an_ioc_the_margin_cannot_cover_reaches_nautilus_as_rejected_though_it_would_have_expired():
    """USD-M checks the margin on placement, before the book: an IOC buy that would not cross, needing more initial
    margin than the wallet has, is refused -2019 "Margin is insufficient.". NautilusTrader 1.231's RiskEngine does
    not look at a margin account's balance, so the venue's refusal is the only gate: an OrderRejected with the code
    and message, nothing at the venue."""
    async with served_usdm(usdm_wallet="10") as v:
        futures = v.venue.futures
        assert futures is not None
        futures.on_market(top("100.0", "100.5"))
        async with running_node(v.urls) as (node, strategy):
            order = submit_ioc_buy(node, strategy, PERP, "3.000", "99.0")  # 297 of notional, 14.85 of margin at 20x
            # (the wallet holds 10)
            await until(lambda: len(strategy.of(OrderRejected)) == 1, "the rejection")
            [rejected] = strategy.of(OrderRejected)
            assert "-2019" in rejected.reason and "Margin is insufficient." in rejected.reason
            assert strategy.cache.order(order.client_order_id).status == OrderStatus.REJECTED
            assert futures.every_order() == [] and futures.account.available() == D("10")
