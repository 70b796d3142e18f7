"""What a spec needs before it trades, checked without trading: ``livestrat validate --strict``, and the
warnings a paper run prints before it starts.

- **the strategy**: imported, its config built and checked (:func:`strategy_source.load_strategy`: unknown
  keys with a "did you mean", every missing field, a config class the strategy does not take);
- **the venue**: paper: the sandbox's settings and options; live: the adapter's client configs, built with
  placeholder credentials (no connection is made, the credentials are never read);
- **the data** (paper): the catalog holds the instruments, every bar type the strategy's config names (for
  an internally aggregated one, ``…-5-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL``, the bars it is built from),
  and data inside the replay window. A run with nothing to replay ends at once with 0 fills and exit 0,
  which reads as "the strategy found nothing to do": these are what make it say why instead.

With ``data.sample`` and no data in the catalog yet, the sample the pod would write is written to a scratch
directory and checked there: the checked data is the data the run would replay. A catalog that exists is
only read.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import pandas as pd
from nautilus_trader.model.data import Bar, BarType

from livestrat.api.runtime_config import ENV_API_KEY, ENV_API_PASSPHRASE, ENV_API_SECRET, RuntimeConfig
from livestrat.api.spec import Adapter, Mode, ReplayDataType
from strategy_runtime.live.venue_options import VenueOptionError
from strategy_runtime.live.venues import VenueConfigError, live_venue
from strategy_runtime.paper.catalog import (
    CatalogError,
    StrategyCatalog,
    bar_types_in,
    load_instruments,
    open_catalog,
    prepare_catalog,
    refuse_real_data,
)
from strategy_runtime.paper.live_feed import live_feed
from strategy_runtime.paper.venue import PaperVenueError, paper_venue
from strategy_runtime.strategy_source import StrategyLoadError, load_strategy

# Stand-ins for the credentials, so that the adapter's configs can be built offline. Never sent anywhere.
PLACEHOLDER_CREDENTIALS = {ENV_API_KEY: "validate-offline", ENV_API_SECRET: "validate-offline"}
PLACEHOLDER_CREDENTIALS[ENV_API_PASSPHRASE] = "validate-offline"
MAX_LISTED = 6  # bar types named as "the catalog holds"


class Severity(StrEnum):
    ERROR = "error"  # the strategy cannot run as written
    WARNING = "warning"  # it runs, but not as its author expects (nothing to replay, ...)


@dataclass(frozen=True)
class Finding:
    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


def _error(message: str) -> Finding:
    return Finding(Severity.ERROR, message)


def named_bar_types(config: Any, path: str = "spec.strategy.config") -> Iterator[tuple[str, BarType]]:
    """Every string in the strategy's config that is a bar type, with the field that holds it."""
    if isinstance(config, Mapping):
        for key, value in config.items():
            yield from named_bar_types(value, f"{path}.{key}")
    elif isinstance(config, list):
        for index, value in enumerate(config):
            yield from named_bar_types(value, f"{path}[{index}]")
    elif isinstance(config, str) and config.count("-") >= 4:
        bar_type = _bar_type(config)
        if bar_type is not None:
            yield path, bar_type


def _bar_type(text: str) -> BarType | None:
    try:
        return BarType.from_str(text)
    except ValueError:
        return None


def _window(config: RuntimeConfig) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    replay = config.spec.data.replay
    if replay is None:
        return None, None
    return (
        pd.Timestamp(replay.start) if replay.start else None,
        pd.Timestamp(replay.end) if replay.end else None,
    )


def _listed(names: list[str]) -> str:
    if not names:
        return "no bars of these instruments"
    return ", ".join(names[:MAX_LISTED]) + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


def data_findings(config: RuntimeConfig, catalog: StrategyCatalog) -> list[Finding]:
    """What the catalog lacks for the strategy's bar types and replay window (paper)."""
    replay = config.spec.data.replay
    data_types = replay.data_types if replay is not None else [ReplayDataType.BARS]
    held = list(catalog.bar_types)
    start, end = _window(config)
    found: list[Finding] = []
    sources: dict[str, str] = {}  # EXTERNAL bar type -> the field that needs it
    for field, bar_type in named_bar_types(config.spec.strategy.config):
        source = bar_type.composite() if bar_type.is_composite() else bar_type
        if source.is_internally_aggregated():
            if ReplayDataType.TRADES not in data_types and ReplayDataType.QUOTES not in data_types:
                found.append(
                    Finding(
                        Severity.WARNING,
                        f"{field} {bar_type} is aggregated from ticks, and spec.data.replay.dataTypes replays "
                        f"{', '.join(data_types)} only: the strategy will receive no such bars. Add trades (or quotes) "
                        "to dataTypes, or name bars the catalog holds",
                    )
                )
            continue
        if str(source) not in held:
            built = f" (the bars {bar_type} is aggregated from)" if bar_type.is_composite() else ""
            found.append(
                _error(
                    f"{field}: {source}{built} is not in the catalog at {catalog.path}, which holds "
                    f"{_listed(held)}: the strategy would receive no bars. Name a bar type the catalog holds, or "
                    "write these bars into it"
                )
            )
            continue
        sources.setdefault(str(source), field)
    # The bars the strategy names; when it names none (it reads ticks, or finds its bars itself), all there are.
    checked = (sources or dict.fromkeys(held, "")) if ReplayDataType.BARS in data_types else {}
    for name, field in checked.items():
        first = catalog.catalog.query_first_timestamp(Bar, identifier=name)
        last = catalog.catalog.query_last_timestamp(Bar, identifier=name)
        if first is None or last is None:
            continue
        if (start is not None and start > last) or (end is not None and end < first):
            asked = f"{start.isoformat() if start else 'its first'} to {end.isoformat() if end else 'its last'}"
            found.append(
                Finding(
                    Severity.WARNING if not field else Severity.ERROR,
                    f"spec.data.replay asks for {asked}, but the catalog's {name} bars run from {first.isoformat()} "
                    f"to {last.isoformat()}: nothing would be replayed (0 bars, 0 fills). Move spec.data.replay.start/"
                    "end inside that range",
                )
            )
    return found


def _catalog_for_check(config: RuntimeConfig, scratch: Path) -> StrategyCatalog:
    """The catalog the run would replay, read only: the sample written to ``scratch`` when the run would write
    it (data.sample and no data yet), else the catalog as it is."""
    spec = config.spec
    existing = open_catalog(config.catalog_path) if Path(config.catalog_path).is_dir() else None
    holds = existing is not None and bool(bar_types_in(existing, spec.instruments))
    if spec.data.sample is not None and not holds:
        if existing is not None:
            refuse_real_data(config.catalog_path)  # the run would refuse to write the sample beside real data
        return prepare_catalog(config.model_copy(update={"catalog_path": str(scratch)}))
    if existing is None:
        raise CatalogError(
            f"no catalog at {config.catalog_path}: pass --catalog DIR (a local copy of the catalog the pod "
            "mounts), or set spec.data.sample for synthetic data"
        )
    instruments = load_instruments(existing, spec.instruments)
    return StrategyCatalog(
        path=str(config.catalog_path),
        catalog=existing,
        instruments=tuple(instruments),
        bar_types=tuple(bar_types_in(existing, spec.instruments)),
    )


def preflight(config: RuntimeConfig) -> list[Finding]:
    """Everything that keeps the spec from trading as written, found without trading."""
    spec = config.spec
    found: list[Finding] = []
    try:
        load_strategy(spec.strategy, config.code_path)
    except StrategyLoadError as exc:
        found.append(_error(str(exc)))
    if spec.mode == Mode.PAPER and spec.venue.adapter != Adapter.SANDBOX:
        # Paper on a live feed: the venue's data client and the sandbox; no catalog is read.
        try:
            feed = live_feed(spec, {})
            paper_venue(spec, live_feed=(feed.venue, feed.sandbox_account_type))
        except (PaperVenueError, VenueConfigError, VenueOptionError) as exc:
            found.append(_error(str(exc)))
    elif spec.mode == Mode.PAPER:
        try:
            paper_venue(spec)
        except (PaperVenueError, VenueOptionError) as exc:
            found.append(_error(str(exc)))
        with tempfile.TemporaryDirectory(prefix="livestrat-validate-") as scratch:
            try:
                catalog = _catalog_for_check(config, Path(scratch))
            except CatalogError as exc:
                found.append(_error(str(exc)))
            else:
                found += data_findings(config, catalog)
    else:
        try:
            live_venue(spec, PLACEHOLDER_CREDENTIALS)
        except (VenueConfigError, VenueOptionError) as exc:
            found.append(_error(str(exc)))
    return found
