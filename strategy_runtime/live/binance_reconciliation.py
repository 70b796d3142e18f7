"""What a Binance execution client asks the venue at start: every instrument of the spec, not only those in its cache.

NautilusTrader 1.231's Binance execution client builds its start-up reconciliation (``allOrders`` for
the order reports, ``myTrades`` for the fill reports) from the symbols its cache holds an open
order or a position in (``_get_cache_active_symbols``), plus open orders and, for futures, open
positions at the venue. A runtime process starts with an empty cache (the pod keeps none), so after
a restart the fills the venue made while it was away came back as fills *inferred* from an order's
status (under ids NautilusTrader makes up), or not at all when none of its orders was still open:
a ledger short of fills, or holding fills the venue never made. The factory here creates the
adapter's own client and widens that set with the symbols of the instruments the spec loads, so
every trade of the strategy's instruments is reported under the venue's trade id.

Binance answers ``myTrades`` without a start time with the most recent trades (500 by default), and
``allOrders`` with the last 1000 orders (the adapter's limit): fills older than those are not
reported again, which only a runtime away for longer than that many fills would miss.

``tests/runtime/test_binance_reconciliation.py`` pins the adapter's use of the method;
``tests/live/test_spot_story.py`` shows the difference against the venue emulator.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nautilus_trader.adapters.binance import BinanceExecClientConfig, BinanceLiveExecClientFactory
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus


class BinanceExecClientFactory(BinanceLiveExecClientFactory):
    """The adapter's factory, whose clients reconcile every instrument of ``config.instrument_provider.load_ids``."""

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: BinanceExecClientConfig,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> Any:
        client = BinanceLiveExecClientFactory.create(loop, name, config, msgbus, cache, clock)
        symbols = frozenset(i.symbol.value for i in (config.instrument_provider.load_ids or ()))
        in_cache = client._get_cache_active_symbols

        def active_symbols() -> set[str]:
            return in_cache() | symbols

        # The adapter's private method (NautilusTrader 1.231), pinned by test_binance_reconciliation.
        client._get_cache_active_symbols = active_symbols
        return client
