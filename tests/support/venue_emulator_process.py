"""The venue emulator as a real process for tests: ``livestrat venue-emulator`` on 127.0.0.1, asked through its admin API.

``async with venue_emulator(directory, catalog=..., instruments=[...], scenario={...}) as venue:``
starts it with a port of 0, waits for its ready line and stops it by its PID at the end (SIGTERM,
then SIGKILL), whatever the test did. ``venue.endpoints`` is what ``LIVESTRAT_VENUE_ENDPOINTS``
takes; ``venue.admin`` answers for the venue's own record (``trades()``, ``open_orders()``,
``orders()``, ``balances()``, ``state()``) and injects faults (``fault(kind, ...)``). The
process itself is ``strategy_runtime.local.emulated_venue.EmulatedVenue``, the one ``livestrat
rehearse`` starts: the tests use the product's harness rather than a copy of it.

``KEYS`` is the key pair a test's scenario gives the emulator and its runtime; ``scenario(...)``
writes the rest (balances, open orders at start, scripted faults).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from livestrat.api.runtime_config import ENV_API_KEY, ENV_API_SECRET
from livestrat.venue_emulator.auth import ed25519_private_key_pkcs8
from strategy_runtime.live.endpoints import ENV_VENUE_ENDPOINTS
from strategy_runtime.local.emulated_venue import EmulatedVenue, VenueAdmin, write_scenario
from strategy_runtime.local.rehearse import EmulatorKeys, scenario_for

# Recognisable (no word in them), in Binance's formats (a 64-character key, an Ed25519 PKCS#8 secret): any
# fragment of them found in an output is a leak.
KEYS = EmulatorKeys(
    api_key="vK3qZ8xW2mR7tB4nJ9pL5sD1fG6hY0cVkQ7xZ2mV9wR4tB8nJ3pL6sF5hD1gK8jQ",
    api_secret=ed25519_private_key_pkcs8(
        bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    ),
)


# USD-M futures: an HMAC pair (NautilusTrader's futures client keeps its listen key over REST with it).
HMAC_KEYS = EmulatorKeys(
    api_key="hM4cK3yZ8xW2mR7tB4nJ9pL5sD1fG6hY0cVkQ7xZ2mV9wR4tB8nJ3pL6sF5hD1gK",
    api_secret="qW8eR2tY6uI0oP4aS8dF2gH6jK0lZ4xC8vB2nM6qW0eR4tY8uI2oP6aS0dF4gH8j",
    key_type="hmac",
)


def scenario(
    balances: Mapping[str, Any],
    *,
    keys: EmulatorKeys = KEYS,
    product: str = "spot",
    **more: Any,
) -> dict[str, Any]:
    """A scenario: the key pair, the balances (USD-M: the USDT wallet), and ``more`` (``open_orders``,
    ``usdm_positions``, ``faults``...) as the emulator takes them (``livestrat.venue_emulator.scenario``)."""
    return scenario_for(keys, balances, product) | more


def runtime_environ(venue: EmulatedVenue, keys: EmulatorKeys = KEYS) -> dict[str, str]:
    """What a runtime trading at ``venue`` gets in its environment: the keys, and the endpoints override."""
    return {ENV_API_KEY: keys.api_key, ENV_API_SECRET: keys.api_secret, ENV_VENUE_ENDPOINTS: venue.endpoints}


@contextlib.asynccontextmanager
async def venue_emulator(
    directory: Path,
    *,
    catalog: Path | str,
    instruments: Sequence[str],
    scenario: Mapping[str, Any] | None = None,
    speed: float | None = None,
    extra_args: Sequence[str] = (),
) -> AsyncIterator[EmulatedVenue]:
    """The emulator, running for the block; stopped by its PID however the block ends."""
    path = write_scenario(directory / "scenario.json", scenario) if scenario is not None else None
    venue = await EmulatedVenue.start(
        directory, catalog=catalog, instruments=instruments, scenario=path, speed=speed, extra_args=extra_args
    )
    try:
        yield venue
    finally:
        await venue.stop_async()


__all__ = ["HMAC_KEYS", "KEYS", "EmulatedVenue", "VenueAdmin", "runtime_environ", "scenario", "venue_emulator"]
