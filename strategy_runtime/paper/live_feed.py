"""Paper trading on a live feed: the venue's own data client, without keys, feeding the sandbox.

A ``mode: paper`` spec whose ``venue.adapter`` is a venue (``binance``; ``LIVE_FEED_ADAPTERS``)
rather than ``sandbox``, and without ``data.replay``: market data comes from NautilusTrader's data
client for that venue (public streams and REST: instruments, bars, quotes, trades), orders go to
the sandbox (``paper.sandbox``), which matches them on that data as it does on a replay.

``live_feed(spec, environ)`` builds the data client as the live path does (``live.venues``: account
type, ``testnet``, ``venue.options``, and the endpoints override ``LIVESTRAT_VENUE_ENDPOINTS`` that
points it at the venue emulator) and then takes the keys out of it: a paper strategy has none, and
NautilusTrader's Binance data factory uses the config's keys only (it never falls back to
``BINANCE_API_KEY``). Without keys the instruments come from the public exchangeInfo, and fees from
what the adapter assumes then: zero for spot (its fee query needs a key), Binance's tier 0 for
USD-M futures (0.02% maker, 0.05% taker).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import msgspec
from nautilus_trader.config import LiveDataClientConfig

from livestrat.api.runtime_config import ENV_API_KEY, ENV_API_PASSPHRASE, ENV_API_SECRET
from livestrat.api.spec import LIVE_FEED_ADAPTERS, AccountType, Adapter, LiveStrategySpec
from strategy_runtime.live.endpoints import ENV_VENUE_ENDPOINTS
from strategy_runtime.live.venues import VenueConfigError, live_venue

# live_venue builds both clients and needs keys to do so; the execution client is dropped and the
# data client's keys removed, so these never reach anything.
_NO_KEYS = {ENV_API_KEY: "paper-feed-no-key", ENV_API_SECRET: "paper-feed-no-key", ENV_API_PASSPHRASE: "none"}


@dataclass(frozen=True)
class LiveFeed:
    """The data client of a paper strategy on a live feed, and how the sandbox books the account."""

    name: str  # the data client's name (BINANCE)
    venue: str  # the venue the sandbox simulates (the instruments' venue)
    sandbox_account_type: str  # CASH (spot) or MARGIN
    data_config: LiveDataClientConfig
    data_factory: type


def live_feed(spec: LiveStrategySpec, environ: Mapping[str, str]) -> LiveFeed:
    """The keyless data client of the spec's venue; VenueConfigError when the adapter cannot feed paper."""
    if spec.venue.adapter not in LIVE_FEED_ADAPTERS:
        raise VenueConfigError(
            f"paper on a live feed takes its market data from {', '.join(LIVE_FEED_ADAPTERS)}, not "
            f"{spec.venue.adapter}: set venue.adapter to one of those, or use venue.adapter: sandbox with data.replay"
        )
    only = {name: environ[name] for name in (ENV_VENUE_ENDPOINTS,) if name in environ}
    clients = live_venue(spec, only | _NO_KEYS)
    data_config = msgspec.structs.replace(clients.data_config, api_key=None, api_secret=None)
    cash = spec.venue.adapter == Adapter.BINANCE and clients.account_type == AccountType.SPOT
    return LiveFeed(
        name=clients.name,
        venue=clients.venue,
        sandbox_account_type="CASH" if cash else "MARGIN",
        data_config=data_config,
        data_factory=clients.data_factory,
    )
