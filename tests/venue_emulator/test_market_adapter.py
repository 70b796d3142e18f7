"""NautilusTrader's own Binance data client against the emulated market: what a live node subscribes to, it receives.

A TradingNode with only the Binance data client (BinanceLiveDataClientFactory, base URLs pointed at the
emulator) and a small actor that subscribes to one-minute bars, quotes and trades and asks for the bars'
history. The actor must receive exactly the catalog's sequence, for the spot pair and for the perpetual,
also when every market connection is cut half-way: the client reconnects, subscribes again and the data
flows on.
"""

from __future__ import annotations

import asyncio
import time

import pandas as pd
import pytest
from aiohttp import web
from nautilus_trader.adapters.binance.common.enums import BinanceAccountType
from nautilus_trader.adapters.binance.config import BinanceDataClientConfig
from nautilus_trader.adapters.binance.factories import BinanceLiveDataClientFactory
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.config import InstrumentProviderConfig, LoggingConfig
from nautilus_trader.live.config import TradingNodeConfig
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.data import Bar, BarType, QuoteTick, TradeTick
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from livestrat.venue_emulator.market_api import add_market
from livestrat.venue_emulator.market_streams import STREAM_PREFIX
from tests.venue_emulator.conftest import PERP, SPOT
from tests.venue_emulator.gated import Gate, gated_feed, wait_until


class RecorderConfig(ActorConfig, frozen=True):
    instrument_id: str
    bar_type: str


class Recorder(Actor):
    """Subscribes to bars, quotes and trades of one instrument and keeps what arrives."""

    def __init__(self, config: RecorderConfig) -> None:
        super().__init__(config)
        self.instrument_id = InstrumentId.from_str(config.instrument_id)
        self.bar_type = BarType.from_str(config.bar_type)
        self.bars: list[Bar] = []
        self.quotes: list[QuoteTick] = []
        self.trades: list[TradeTick] = []
        self.history: list[Bar] = []

    def on_start(self) -> None:
        self.subscribe_bars(self.bar_type)
        self.subscribe_quote_ticks(self.instrument_id)
        self.subscribe_trade_ticks(self.instrument_id)

    def on_bar(self, bar: Bar) -> None:
        self.bars.append(bar)

    def on_quote_tick(self, tick: QuoteTick) -> None:
        self.quotes.append(tick)

    def on_trade_tick(self, tick: TradeTick) -> None:
        self.trades.append(tick)

    def on_historical_data(self, data) -> None:
        if isinstance(data, Bar):
            self.history.append(data)


def quote_key(q: QuoteTick):
    return (q.bid_price, q.ask_price, q.bid_size, q.ask_size)


def trade_key(t: TradeTick):
    return (t.price, t.size, t.aggressor_side)


def bar_key(b: Bar):
    return (b.open, b.high, b.low, b.close, b.volume)


@pytest.mark.slow  # about 10 s each: a TradingNode started and stopped
@pytest.mark.parametrize(
    ("instrument_id", "account_type"), [(SPOT, BinanceAccountType.SPOT), (PERP, BinanceAccountType.USDT_FUTURES)]
)
async def test_the_data_client_receives_the_catalogs_sequence_and_again_after_the_market_drops(
    sample_catalog, serve, instrument_id, account_type
):
    catalog = ParquetDataCatalog(str(sample_catalog))
    bars = catalog.bars(instrument_ids=[instrument_id])
    quotes = catalog.quote_ticks(instrument_ids=[instrument_id])
    trades = catalog.trade_ticks(instrument_ids=[instrument_id])

    gate = Gate(open_=False)
    feed = gated_feed(sample_catalog, [instrument_id], gate)
    gate.pause_at = len(bars) * 9 // 2  # half-way through the catalog (9 events a minute)
    app = web.Application()
    streams = add_market(app, feed)
    http = await serve(app)
    product = "spot" if account_type.is_spot else "usdm"
    ws = http.replace("http://", "ws://") + STREAM_PREFIX[product]

    bar_type = f"{instrument_id}-1-MINUTE-LAST-EXTERNAL"
    node = TradingNode(
        config=TradingNodeConfig(
            trader_id="TESTER-001",
            logging=LoggingConfig(log_level="ERROR"),
            data_clients={
                "BINANCE": BinanceDataClientConfig(
                    account_type=account_type,
                    base_url_http=http,
                    base_url_ws=ws,
                    instrument_provider=InstrumentProviderConfig(load_ids=frozenset([instrument_id])),
                )
            },
        )
    )
    recorder = Recorder(RecorderConfig(instrument_id=instrument_id, bar_type=bar_type))
    node.trader.add_actor(recorder)
    node.add_data_client_factory("BINANCE", BinanceLiveDataClientFactory)
    node.build()
    run = asyncio.create_task(node.run_async())
    try:
        symbol = "btcusdt"
        trade_stream = f"{symbol}@trade" if product == "spot" else f"{symbol}@aggTrade"
        wanted = {f"{symbol}@kline_1m", f"{symbol}@bookTicker", trade_stream}

        def subscribed() -> bool:
            return {s for _, names in streams.subscriptions() for s in names} == wanted

        await wait_until(subscribed, what="the data client's subscriptions")
        gate.open.set()
        feed_task = asyncio.create_task(feed.run())
        half = gate.pause_at
        await wait_until(lambda: len(gate.events) == half, what="half of the catalog")
        sent_bars = sum(1 for e in gate.events[:half] if type(e).__name__ == "Candle")
        await wait_until(lambda: len(recorder.bars) == sent_bars, what="the first half's bars at the actor")

        connections, opened = streams.connections, streams.opened
        assert connections >= 2  # spot: trades and klines on one connection, quotes on another
        assert await streams.drop_all() == connections
        dropped_at = time.monotonic()
        await wait_until(
            lambda: streams.opened >= opened + connections and subscribed(),
            timeout=60,
            what="the client to reconnect and subscribe again",
        )
        reconnected_in = time.monotonic() - dropped_at
        gate.open.set()
        await asyncio.wait_for(feed_task, 60)

        await wait_until(lambda: len(recorder.bars) == len(bars), what="every bar")
        await wait_until(lambda: len(recorder.quotes) == len(quotes), what="every quote")
        await wait_until(lambda: len(recorder.trades) == len(trades), what="every trade")
        assert [bar_key(b) for b in recorder.bars] == [bar_key(b) for b in bars]
        assert [quote_key(q) for q in recorder.quotes] == [quote_key(q) for q in quotes]
        assert [trade_key(t) for t in recorder.trades] == [trade_key(t) for t in trades]
        assert all(str(b.bar_type) == bar_type for b in recorder.bars)

        # request_bars: the history the venue has, as a strategy's warm-up asks for it
        start = pd.Timestamp(feed.restamp(bars[0].ts_event) - 3_600_000, unit="ms", tz="UTC")
        recorder.request_bars(BarType.from_str(bar_type), start=start.to_pydatetime())
        await wait_until(lambda: len(recorder.history) == len(bars), what="the requested history")
        assert [bar_key(b) for b in recorder.history] == [bar_key(b) for b in bars]
        print(
            f"{instrument_id}: {len(recorder.bars)} bars, {len(recorder.quotes)} quotes, {len(recorder.trades)} "
            f"trades received of {len(bars)}/{len(quotes)}/{len(trades)}; {connections} connections cut, "
            f"subscribed again in {reconnected_in:.1f}s; {len(recorder.history)} bars of history"
        )
    finally:
        await node.stop_async()
        await asyncio.wait_for(run, 30)
        node.kernel.dispose()  # TradingNode.dispose would stop the test's event loop


class BookWatcherConfig(ActorConfig, frozen=True):
    instrument_id: str


class BookWatcher(Actor):
    """Subscribes to order book deltas (an L2 book the data engine keeps) and counts what arrives."""

    def __init__(self, config: BookWatcherConfig) -> None:
        super().__init__(config)
        self.instrument_id = InstrumentId.from_str(config.instrument_id)
        self.deltas = 0

    def on_start(self) -> None:
        self.subscribe_order_book_deltas(self.instrument_id)

    def on_order_book_deltas(self, deltas) -> None:
        self.deltas += 1


@pytest.mark.slow  # a TradingNode started and stopped
@pytest.mark.parametrize(
    ("instrument_id", "account_type"),
    [(SPOT, BinanceAccountType.SPOT), (PERP, BinanceAccountType.USDT_FUTURES)],
)
async def test_an_order_book_subscription_gets_the_snapshot_and_the_diffs_of_the_book_top(
    sample_catalog, serve, instrument_id, account_type
):
    quotes = ParquetDataCatalog(str(sample_catalog)).quote_ticks(instrument_ids=[instrument_id])
    gate = Gate(open_=False)
    feed = gated_feed(sample_catalog, [instrument_id], gate)
    gate.pause_at = 9 * 3  # three minutes in: the snapshot then has a book to give
    app = web.Application()
    streams = add_market(app, feed)
    http = await serve(app)
    product = "spot" if account_type.is_spot else "usdm"
    node = TradingNode(
        config=TradingNodeConfig(
            trader_id="TESTER-002",
            logging=LoggingConfig(log_level="ERROR"),
            data_clients={
                "BINANCE": BinanceDataClientConfig(
                    account_type=account_type,
                    base_url_http=http,
                    base_url_ws=http.replace("http://", "ws://") + STREAM_PREFIX[product],
                    instrument_provider=InstrumentProviderConfig(load_ids=frozenset([instrument_id])),
                )
            },
        )
    )
    watcher = BookWatcher(BookWatcherConfig(instrument_id=instrument_id))
    node.trader.add_actor(watcher)
    node.add_data_client_factory("BINANCE", BinanceLiveDataClientFactory)
    node.build()
    gate.open.set()
    feed_task = asyncio.create_task(feed.run())
    await wait_until(lambda: len(gate.events) == gate.pause_at, what="three minutes of market")
    run = asyncio.create_task(node.run_async())
    try:
        diff = "btcusdt@depth@100ms" if product == "spot" else "btcusdt@depth@0ms"
        await wait_until(
            lambda: diff in {s for _, names in streams.subscriptions() for s in names}, what="the depth stream"
        )
        await wait_until(lambda: watcher.deltas >= 1, what="the snapshot")
        gate.open.set()
        await asyncio.wait_for(feed_task, 60)
        book = node.cache.order_book(InstrumentId.from_str(instrument_id))
        last = quotes[-1]
        await wait_until(
            lambda: book.best_bid_price() == last.bid_price and book.best_ask_price() == last.ask_price,
            what="the book's top to be the last quote",
        )
        assert (book.best_bid_size(), book.best_ask_size()) == (last.bid_size, last.ask_size)
        assert len(book.bids()) == len(book.asks()) == 1  # one level each side: a diff removes the old top
        assert watcher.deltas == 1 + len(quotes) - 3 * 4  # the snapshot, then one diff per later quote
    finally:
        await node.stop_async()
        await asyncio.wait_for(run, 30)
        node.kernel.dispose()
