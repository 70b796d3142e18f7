"""A live strategy's whole story on this machine: the emulated venue, real ``livestrat runtime`` processes, PostgreSQL.

Nothing of the runtime or of NautilusTrader's Binance adapter is swapped: the runtime process is the
pod's entrypoint with the pod's environment (the venue's keys, the ledger's DSN) plus the endpoints
override that points the adapter at the emulator (``LIVESTRAT_VENUE_ENDPOINTS``). ``LiveStory``
holds one strategy's pieces: its configuration, the emulator, the ledger, and every runtime process
it started (ended by PID at the end of the test).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livestrat.api.runtime_config import RuntimeConfig
from livestrat.api.spec import SampleData
from strategy_runtime.ledger import FillRecord, PostgresLedger
from strategy_runtime.local.emulated_venue import EmulatedVenue
from strategy_runtime.local.rehearse import EmulatorKeys
from strategy_runtime.paper.catalog import write_sample_catalog
from tests.support.runtime_process import RuntimeProcess, strategy_config
from tests.support.venue_emulator_process import KEYS, runtime_environ

SPOT = "BTCUSDT.BINANCE"


def live_catalog(path: Path, instrument: str = SPOT, *, bars: int = 3000, seed: int = 11) -> Path:
    """A catalog of one-minute bars (the sample generator's random walk) the emulator replays."""
    write_sample_catalog(str(path), [instrument], SampleData(bars=bars, seed=seed), with_ticks=False)
    return path


def story_spec(strategy: Mapping[str, Any], instrument: str = SPOT, **overrides: Any) -> dict[str, Any]:
    """A live Binance spot spec as a desk writes it (testnet, a credentials Secret, a PostgreSQL ledger)."""
    spec: dict[str, Any] = {
        "mode": "live",
        "strategy": dict(strategy),
        "venue": {"adapter": "binance", "accountType": "spot", "testnet": True, "credentialsSecret": {"name": "keys"}},
        "instruments": [instrument],
        "data": {"catalog": {"emptyDir": {}}},
        "risk": {"maxDailyLoss": 1_000_000, "maxPosition": 1_000, "maxNotionalPerOrder": 10_000_000},
        "ledger": {"dsnSecret": {"name": "ledger-dsn"}},
        "pod": {"terminationGracePeriodSeconds": 20},
    }
    spec.update(overrides)
    return spec


def ladder(instrument: str = SPOT, **config: Any) -> dict[str, Any]:
    """``spec.strategy`` of ``tests.support.strategies:QuoteLadder`` (a resting BUY and SELL on every bar)."""
    return {
        "strategyPath": "tests.support.strategies:QuoteLadder",
        "configPath": "tests.support.strategies:QuoteLadderConfig",
        "config": {
            "instrument_id": instrument,
            "bar_type": f"{instrument}-1-MINUTE-LAST-EXTERNAL",
            "trade_size": "0.001",
            **config,
        },
    }


def resting_grid(instrument: str, events_path: str, **config: Any) -> dict[str, Any]:
    """``spec.strategy`` of ``tests.support.strategies:RestingGrid`` (one position and ``levels`` resting BUYs of
    its own, what it sees as its own appended to ``events_path``)."""
    return {
        "strategyPath": "tests.support.strategies:RestingGrid",
        "configPath": "tests.support.strategies:RestingGridConfig",
        "config": {
            "instrument_id": instrument,
            "bar_type": f"{instrument}-1-MINUTE-LAST-EXTERNAL",
            "trade_size": "0.001",
            "events_path": events_path,
            **config,
        },
    }


async def ledger_fills(dsn: str, key: str) -> list[FillRecord]:
    async with PostgresLedger(dsn, f"{key}-reader") as ledger:
        return await ledger.fills(key)


@dataclass(frozen=True)
class Reckoning:
    """The venue's trades against the ledger's fills, by (symbol, trade id)."""

    at_venue: int
    in_ledger: int
    lost: tuple[str, ...]  # at the venue, not in the ledger
    unknown: tuple[str, ...]  # in the ledger, not at the venue (an inferred fill, a phantom)
    duplicated: int

    @classmethod
    def of(cls, trades: list[dict[str, Any]], fills: list[FillRecord]) -> Reckoning:
        venue = [f"{t['symbol']}#{t['id']}" for t in trades]
        ledger = [f"{f.instrument_id.rsplit('.', 1)[0].removesuffix('-PERP')}#{f.trade_id}" for f in fills]
        return cls(
            at_venue=len(venue),
            in_ledger=len(ledger),
            lost=tuple(sorted(set(venue) - set(ledger))),
            unknown=tuple(sorted(set(ledger) - set(venue))),
            duplicated=len(ledger) - len(set(ledger)),
        )

    def line(self, what: str) -> str:
        return (
            f"{what}: fills at the venue {self.at_venue}, in the ledger {self.in_ledger}, lost {len(self.lost)}, "
            f"duplicated {self.duplicated}, unknown to the venue {len(self.unknown)}"
        )


@dataclass
class LiveStory:
    """One live strategy at the emulated venue, with its PostgreSQL ledger and the runtime processes it ran."""

    directory: Path
    venue: EmulatedVenue
    dsn: str
    config: RuntimeConfig
    config_path: Path
    keys: EmulatorKeys = KEYS
    product: str = "spot"  # the emulator's account: spot or usdm
    processes: list[RuntimeProcess] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        directory: Path,
        venue: EmulatedVenue,
        dsn: str,
        spec: Mapping[str, Any],
        name: str = "live",
        *,
        keys: EmulatorKeys = KEYS,
        product: str = "spot",
        **fields: Any,
    ) -> LiveStory:
        config, path = strategy_config(directory, spec, name=name, ledger_kind="postgresql", **fields)
        return cls(directory, venue, dsn, config, path, keys, product)

    def start(self, tag: str = "runtime", env: Mapping[str, str] | None = None) -> RuntimeProcess:
        process = RuntimeProcess.start(
            self.config,
            self.config_path,
            ledger_dsn=self.dsn,
            env=runtime_environ(self.venue, self.keys) | dict(env or {}),
            tag=tag,
        )
        self.processes.append(process)
        return process

    def publish(self, emulator: Any, spec: Mapping[str, Any]) -> None:
        """The LiveStrategy this runtime reports its status to, stored in the API emulator (its namespace first)."""
        namespace, name = self.config.strategy.namespace, self.config.strategy.name
        emulator.add_namespace(namespace)
        body = {"apiVersion": "livestrat.io/v1alpha1", "kind": "LiveStrategy", "metadata": {"name": name}}
        emulator.create_object(
            "livestrat.io/v1alpha1/livestrategies", {**body, "spec": dict(spec)}, namespace=namespace
        )

    def kill_all(self) -> None:
        for process in self.processes:
            process.kill()

    async def fills(self) -> list[FillRecord]:
        return await ledger_fills(self.dsn, self.config.strategy.key)

    async def reckoning(self) -> Reckoning:
        return Reckoning.of(await self.venue.admin.trades(product=self.product), await self.fills())

    async def wait_for(
        self, condition: Callable[[], Any], what: str, timeout: float = 60.0, interval: float = 0.1
    ) -> Any:
        """Poll the async ``condition()`` until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while True:
            value = await condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(interval)
