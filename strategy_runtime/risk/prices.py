"""The latest price of an instrument as NautilusTrader's ``Cache.price`` gives it, for the order gate.

``Cache.price`` falls back to the latest bar when there is no quote (bid, ask) or trade (last)
for the instrument, and finds that bar by filtering every bar type the cache holds and sorting
the matches by their interval, on every call: with bars only (a paper replay on bars), most of
what pricing a market order at the gate costs. ``LatestPrices`` gives the same price, keeping
the filtered, sorted bar types until the cache holds a different set of bar types.
"""

from __future__ import annotations

from typing import Any

from nautilus_trader.cache.cache import Cache
from nautilus_trader.model.enums import AggregationSource, PriceType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price


class LatestPrices:
    """``price(instrument_id, price_type)``: what ``cache.price`` returns (BID, ASK, MID or LAST)."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache
        # By (instrument, price type): the cache's bar types when looked up, and the matches in Cache.price's order.
        self._bar_types: dict[tuple[InstrumentId, PriceType], tuple[list[Any], list[Any]]] = {}

    def price(self, instrument_id: InstrumentId, price_type: PriceType) -> Price | None:
        cache = self._cache
        if price_type == PriceType.LAST:
            trade = cache.trade_tick(instrument_id)
            if trade is not None:
                return trade.price
        elif price_type in (PriceType.BID, PriceType.ASK, PriceType.MID):
            quote = cache.quote_tick(instrument_id)
            if quote is not None:
                return quote.extract_price(price_type)
        else:
            return cache.price(instrument_id, price_type)  # MARK and the rest: as the cache does it
        held = cache.bar_types()  # a list of the cache's keys: cheap, and different once a bar type is added
        key = (instrument_id, price_type)
        known = self._bar_types.get(key)
        if known is None or known[0] != held:
            known = self._bar_types[key] = (
                held,
                cache.bar_types(instrument_id, price_type, AggregationSource.EXTERNAL),
            )
        if known[1]:
            bar = cache.bar(known[1][0])  # the bar type with the shortest interval, as Cache.price picks
            if bar is not None:
                return bar.close
        return None
