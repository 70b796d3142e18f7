"""Paper on a live feed: the window it traded, recorded as a catalog, so that it can be backtested.

A paper replay is compared with the backtest of its catalog when it finishes (``backtest_agreement``); a paper
strategy on a live feed has no catalog of its own. ``WindowRecorder`` (an actor on the node) keeps the market data
the node receives for the spec's instruments, and ``flush()`` writes it, with the instrument definitions the data
client loaded (fees and precisions included), into ``window_catalog_path(config)`` with NautilusTrader's
``ParquetDataCatalog.write_data``: a catalog the backtest reads as it reads any other.

Why an actor and ``write_data`` rather than NautilusTrader's ``TradingNodeConfig.streaming`` (``StreamingConfig``
and ``ParquetDataCatalog.convert_stream_to_data``), which records a node's data too:

- its ``include_types`` match the exact class, and the Binance data client publishes ``BinanceBar`` (a ``Bar``
  subclass with Binance's extra columns), which it writes as a ``binance_bar`` table that a backtest of ``Bar``
  does not read; the recorder writes plain ``Bar``, ``QuoteTick`` and ``TradeTick``;
- it writes feather streams under a per-kernel instance id that must be converted before a backtest can read them,
  while the node is still writing them (the periodic check reads the window of a running node);
- it subscribes to every message on the bus (``trader.subscribe("*")``), events included, and filters afterwards.

What is recorded is what reached the node's message bus: exactly what the sandbox matched on and the strategy saw
(the recorder listens on the topics the sandbox does, ``paper.sandbox``), with the node's own ``ts_init`` (the time
the data client received it), so the backtest sees the data in the order, and at the times, the node did.
``window_backtest_config`` is the spec of that backtest: the same strategy and risk settings on the sandbox adapter,
simulating the venue the live feed's sandbox simulated (``paper.live_feed``), replaying the recorded data types.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nautilus_trader.common.actor import Actor
from nautilus_trader.core.data import Data
from nautilus_trader.model.data import Bar, QuoteTick, TradeTick
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from livestrat.api.promotion import BacktestAgreement
from livestrat.api.runtime_config import RuntimeConfig
from livestrat.api.spec import AccountType, Adapter, Mode, ReplayDataType, ReplaySettings
from strategy_runtime.paper.live_feed import live_feed
from strategy_runtime.paper.sandbox import venue_data_topics

logger = logging.getLogger("livestrat.window")

WINDOW_CATALOG_DIR = "window-catalog"
_KINDS: dict[type, ReplayDataType] = {Bar: ReplayDataType.BARS, QuoteTick: ReplayDataType.QUOTES}


def records_its_window(config: RuntimeConfig) -> bool:
    """A paper strategy on a live feed: the only kind whose window is not a catalog already."""
    return config.spec.mode == Mode.PAPER and config.spec.venue.adapter != Adapter.SANDBOX


def window_catalog_path(config: RuntimeConfig) -> Path:
    return Path(config.state_dir) / WINDOW_CATALOG_DIR


def _plain(data: Data) -> Data | None:
    """The data as the catalog stores it: a venue's subclass of ``Bar`` (``BinanceBar``) as a plain ``Bar``."""
    if isinstance(data, Bar):
        if not data.bar_type.is_externally_aggregated():
            return None  # the node's own aggregation of the feed's data: the backtest aggregates it again
        if type(data) is Bar:
            return data
        return Bar(data.bar_type, data.open, data.high, data.low, data.close, data.volume, data.ts_event, data.ts_init)
    if isinstance(data, QuoteTick | TradeTick):
        return data
    return None  # instrument updates, statuses: the backtest takes the instruments as recorded


class WindowRecorder(Actor):
    """Keeps the market data of ``instrument_ids`` that reaches the node's message bus; ``flush()`` writes it."""

    def __init__(self, path: Path, instrument_ids: list[str], venue: str) -> None:
        super().__init__()
        self.path = path
        self._instrument_ids = set(instrument_ids)
        self._venue = venue
        self._pending: list[Data] = []
        self._instruments_written: set[str] = set()
        self.last_ts_init: int | None = None  # of the last data point written: the window's end
        self.data_types: set[ReplayDataType] = set()
        self._closed = False
        # A paper start is a fresh simulated account and a run of its own: so is its window.
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, exist_ok=True)
        self._catalog = ParquetDataCatalog(str(path))

    def on_start(self) -> None:
        # The sandbox's own topics: what it matches on, no more. A subscription on the bus asks the data client for
        # nothing: what nobody subscribed to never arrives.
        for topic in venue_data_topics(self._venue):
            self.msgbus.subscribe(topic, handler=self._on_data)

    def on_stop(self) -> None:
        for topic in venue_data_topics(self._venue):
            self.msgbus.unsubscribe(topic, handler=self._on_data)

    def close(self) -> None:
        """The window ends here (the runtime halts): what arrives from now on is not recorded. The node keeps
        receiving data while it cancels and closes, with its trading stopped; a backtest would trade on it."""
        self._closed = True

    def _on_data(self, data: Data) -> None:
        if self._closed:
            return
        instrument_id = data.bar_type.instrument_id if isinstance(data, Bar) else getattr(data, "instrument_id", None)
        if instrument_id is None or instrument_id.value not in self._instrument_ids:
            return
        plain = _plain(data)
        if plain is not None:
            self._pending.append(plain)

    async def flush(self) -> int | None:
        """Write what arrived since the last flush (off the event loop); the window's last ``ts_init`` comes back."""
        pending, self._pending = self._pending, []
        # As the data client loaded them (fees, precisions, sizes), once each.
        loaded = (self.cache.instrument(InstrumentId.from_str(i)) for i in sorted(self._instrument_ids))
        instruments = [i for i in loaded if i is not None and i.id.value not in self._instruments_written]
        if pending:
            await asyncio.to_thread(self._write, pending, instruments)
        return self.last_ts_init

    def _write(self, pending: list[Data], instruments: list[Any]) -> None:
        if instruments:
            self._catalog.write_data(instruments)
            self._instruments_written.update(i.id.value for i in instruments)
        pending.sort(key=lambda d: d.ts_init)  # the catalog's files are ordered in ts_init
        for cls in {type(d) for d in pending}:
            # Two data points can share a ts_init across a flush (one receipt, one nanosecond): the files then touch
            # at that instant, which the catalog's disjoint-intervals check would refuse, losing the whole flush.
            self._catalog.write_data([d for d in pending if type(d) is cls], skip_disjoint_check=True)
            self.data_types.add(_KINDS.get(cls, ReplayDataType.TRADES))
        self.last_ts_init = pending[-1].ts_init


def window_backtest_config(
    config: RuntimeConfig, *, venue: str, account_type: str, data_types: set[ReplayDataType] | None = None
) -> RuntimeConfig:
    """The spec of the backtest of the recorded window: the same strategy, risk and balances on the sandbox adapter,
    simulating ``venue`` with ``account_type`` (CASH or MARGIN) as the live feed's sandbox did, over the window's
    catalog. Trades, if recorded, are replayed to the strategy but not matched on: the live feed's sandbox executes
    on bars and quotes only (``paper.venue``: trade execution follows ``data.replay.dataTypes``)."""
    spec = config.spec
    kinds = sorted(data_types or {ReplayDataType.BARS})
    options = {"trade_execution": "false"} if ReplayDataType.TRADES in kinds else None
    venue_spec = spec.venue.model_copy(
        update={
            "adapter": Adapter.SANDBOX,
            "name": venue,
            "account_type": AccountType(account_type.lower()),
            "options": options,
            "testnet": False,
        }
    )
    data = spec.data.model_copy(update={"replay": ReplaySettings(data_types=kinds), "sample": None})
    window_spec = spec.model_copy(update={"venue": venue_spec, "data": data})
    return config.model_copy(update={"spec": window_spec, "catalog_path": str(window_catalog_path(config))})


class WindowCheck:
    """The recorded window against its backtest: ``check()`` flushes the recorder and reports what ``run`` says of
    the backtest config and the window's end. ``every(seconds)`` runs it periodically (``window_check_seconds``)."""

    def __init__(
        self,
        config: RuntimeConfig,
        environ: Mapping[str, str],
        run: Callable[[RuntimeConfig, int | None, str], Any],
    ) -> None:
        feed = live_feed(config.spec, environ)
        self.config = config
        self.venue, self.account_type = feed.venue, feed.sandbox_account_type
        self.recorder = WindowRecorder(window_catalog_path(config), list(config.spec.instruments), feed.venue)
        self._run = run
        self._checked_until: int | None = None

    async def check(self) -> BacktestAgreement | None:
        until = await self.recorder.flush()
        if until is None or until == self._checked_until:
            return None  # nothing recorded, or nothing new since the last check
        window = window_backtest_config(
            self.config, venue=self.venue, account_type=self.account_type, data_types=self.recorder.data_types
        )
        result = await self._run(window, until, "the window's last recorded event")
        self._checked_until = until
        return result

    async def every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.check()
            except Exception as exc:  # the window could not be written: the next check tries again
                logger.warning("the window of the live feed could not be recorded for its backtest: %s", exc)
