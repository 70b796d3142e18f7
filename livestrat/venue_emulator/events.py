"""What the market feed hands to the exchange (for matching) and to the market streams (for subscribers).

One vocabulary for both, so matching sees exactly the prices a subscriber sees, in the same order.
Times are the venue's: milliseconds since the epoch on the wall clock (the feed restamps the
catalog's history onto it), as Binance's payloads carry them. Prices and sizes are Decimals at the
instrument's precision, rendered as Binance renders them (strings) only at the protocol edge.
Every event names its ``product`` as well as its symbol: Binance spells a spot pair and its USD-M
perpetual the same way (BTCUSDT), and one catalog can hold both.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol

Product = Literal["spot", "usdm"]


@dataclass(frozen=True, slots=True)
class BookTop:
    """The best bid and ask (Binance's bookTicker)."""

    symbol: str
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal
    ts_ms: int
    product: Product


@dataclass(frozen=True, slots=True)
class Print:
    """A trade printed by the market (not by the emulator's own users): Binance's trade/aggTrade."""

    symbol: str
    price: Decimal
    qty: Decimal
    buyer_is_maker: bool
    trade_id: int
    ts_ms: int
    product: Product


@dataclass(frozen=True, slots=True)
class Candle:
    """A kline; ``closed`` as Binance's ``x``: only closed klines are final."""

    symbol: str
    interval: str  # Binance's interval names: 1m, 5m, 1h ...
    open_ms: int
    close_ms: int  # Binance's kline close time ``T``: the interval's last millisecond (open_ms + interval - 1)
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    closed: bool
    product: Product

    @property
    def ts_ms(self) -> int:
        """When the kline closes (the feed sends a closed kline then): the millisecond after ``close_ms``."""
        return self.close_ms + 1


MarketEvent = BookTop | Print | Candle


class MarketListener(Protocol):
    def on_market(self, event: MarketEvent) -> None:
        """Called in the feed's order, on the event loop, before subscribers are sent the event."""


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """One tradable symbol as exchangeInfo describes it, and as the exchange enforces it (filters)."""

    symbol: str  # BTCUSDT
    product: Product
    instrument_id: str  # the catalog's NautilusTrader id: BTCUSDT.BINANCE, BTCUSDT-PERP.BINANCE
    base_asset: str
    quote_asset: str
    price_precision: int
    qty_precision: int
    tick_size: Decimal  # PRICE_FILTER
    step_size: Decimal  # LOT_SIZE
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal  # NOTIONAL (spot) / MIN_NOTIONAL (futures)
    maker_fee: Decimal
    taker_fee: Decimal
    # PRICE_FILTER's bounds; 0 disables a bound, as Binance documents (filters.md, PRICE_FILTER)
    min_price: Decimal = Decimal(0)
    max_price: Decimal = Decimal(0)
    # NOTIONAL's maxNotional (spot); None: no maximum enforced (exchangeInfo then shows Binance's BTCUSDT value)
    max_notional: Decimal | None = None
