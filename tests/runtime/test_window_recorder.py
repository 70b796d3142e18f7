"""What the window recorder of paper on a live feed keeps: the venue's own market data, as the catalog stores it.

The recorder listens on the node's message bus, where the data client publishes (``WindowRecorder``): a venue's bar
subclass (``BinanceBar``) is stored as a plain ``Bar``, the node's own aggregations and other instruments are not
stored, quotes make the window's data types, and the instrument definition is written once.
"""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.adapters.binance import BinanceBar
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import MessageBus, TestClock
from nautilus_trader.model.data import Bar, BarType, QuoteTick
from nautilus_trader.model.identifiers import TraderId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.portfolio.portfolio import Portfolio
from nautilus_trader.test_kit.providers import TestInstrumentProvider

from livestrat.api.spec import ReplayDataType
from strategy_runtime.paper.window_recording import WindowRecorder

MINUTE = 60_000_000_000
BTC = TestInstrumentProvider.btcusdt_binance()
ETH = TestInstrumentProvider.ethusdt_binance()


def recorder_on_a_bus(tmp_path):
    clock = TestClock()
    msgbus = MessageBus(TraderId("TESTER-001"), clock)
    cache = Cache()
    cache.add_instrument(BTC)
    cache.add_instrument(ETH)
    portfolio = Portfolio(msgbus, cache, clock)
    recorder = WindowRecorder(tmp_path / "window", [BTC.id.value], "BINANCE")
    recorder.register_base(portfolio, msgbus, cache, clock)
    recorder.start()
    return recorder, msgbus


def bar(bar_type: str, minute: int, cls: type = Bar) -> Bar:
    price = Price.from_str("42000.00")
    args = (BarType.from_str(bar_type), price, price, price, price)
    ts = minute * MINUTE
    volume = Quantity.from_str("1.00000")
    if cls is BinanceBar:
        return BinanceBar(*args, volume, Decimal(42000), 3, Decimal(0), Decimal(0), ts, ts + 1)
    return Bar(*args, volume, ts, ts + 1)


async def test_the_recorder_keeps_the_venues_bars_and_quotes_of_the_spec_and_the_instrument_once(tmp_path):
    recorder, msgbus = recorder_on_a_bus(tmp_path)
    external = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
    msgbus.publish(f"data.bars.{external}", bar(external, 1, BinanceBar))
    internal = "BTCUSDT.BINANCE-5-MINUTE-LAST-INTERNAL"
    msgbus.publish(f"data.bars.{internal}", bar(internal, 1))  # the node's own, from the feed's data
    other = "ETHUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
    msgbus.publish(f"data.bars.{other}", bar(other, 1))  # not the spec's
    quote = QuoteTick(
        BTC.id, Price.from_str("41999.99"), Price.from_str("42000.01"), Quantity.from_str("1.000000"),
        Quantity.from_str("1.000000"), 90 * 1_000_000_000, 90 * 1_000_000_000 + 1,
    )  # fmt: skip
    msgbus.publish("data.quotes.BINANCE.BTCUSDT", quote)

    assert await recorder.flush() == 90 * 1_000_000_000 + 1  # the window's end: its last ts_init
    msgbus.publish(f"data.bars.{external}", bar(external, 2, BinanceBar))
    assert await recorder.flush() == 2 * MINUTE + 1

    catalog = ParquetDataCatalog(str(tmp_path / "window"))
    bars = catalog.bars()
    assert [(type(b), str(b.bar_type), b.ts_event) for b in bars] == [
        (Bar, external, MINUTE),
        (Bar, external, 2 * MINUTE),
    ]
    assert len(catalog.quote_ticks()) == 1
    assert [i.id for i in catalog.instruments()] == [BTC.id]
    assert recorder.data_types == {ReplayDataType.BARS, ReplayDataType.QUOTES}
    assert await recorder.flush() == 2 * MINUTE + 1  # nothing new: the same end


async def test_the_window_ends_where_the_runtime_halts(tmp_path):
    recorder, msgbus = recorder_on_a_bus(tmp_path)
    external = "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
    msgbus.publish(f"data.bars.{external}", bar(external, 1, BinanceBar))
    recorder.close()  # the halt: the node still receives data, with its trading stopped
    msgbus.publish(f"data.bars.{external}", bar(external, 2, BinanceBar))

    assert await recorder.flush() == MINUTE + 1
    assert [b.ts_event for b in ParquetDataCatalog(str(tmp_path / "window")).bars()] == [MINUTE]
