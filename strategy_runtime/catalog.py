"""The strategy's ParquetDataCatalog: open it, load the spec's instruments, write ``data.sample``.

``prepare_catalog(config)`` is what the runtime, ``livestrat run`` and ``livestrat backtest``
call first: it writes the deterministic sample when the spec asks for one and the catalog
holds nothing for the instruments, then loads every instrument of the spec (a clear
``CatalogError`` naming the instrument and the path when one is missing) and finds the
bar types the catalog holds for them.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nautilus_trader.model.instruments import Instrument
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.persistence.funcs import urisafe_identifier

from livestrat.api.runtime_config import RuntimeConfig
from livestrat.api.spec import ReplayDataType, SampleData
from strategy_runtime.sample_data import SampleDataError, generate_sample

logger = logging.getLogger("livestrat.catalog")


class CatalogError(Exception):
    """The catalog cannot give the strategy what its spec needs."""


@dataclass(frozen=True)
class StrategyCatalog:
    """The catalog opened for one strategy: its instruments and the bar types it holds for them."""

    path: str
    catalog: ParquetDataCatalog
    instruments: tuple[Instrument, ...]
    bar_types: tuple[str, ...]  # EXTERNAL bar types of the instruments, sorted
    sample_written: bool = False


def open_catalog(path: str | Path) -> ParquetDataCatalog:
    return ParquetDataCatalog(str(path))


def bar_types_in(catalog: ParquetDataCatalog, instrument_ids: Sequence[str]) -> list[str]:
    """The EXTERNAL bar types the catalog holds for the instruments (directory names under data/bar)."""
    bar_dir = Path(catalog.path) / "data" / "bar"
    if not bar_dir.is_dir():
        return []
    names = sorted(p.name for p in bar_dir.iterdir() if p.is_dir())
    found: list[str] = []
    for instrument_id in instrument_ids:
        # The directory name is the bar type with "/" removed (urisafe_identifier): rebuild
        # the real bar type from the instrument id and the specification that follows it.
        prefix = f"{urisafe_identifier(instrument_id)}-"
        found += [f"{instrument_id}-{n[len(prefix) :]}" for n in names if n.startswith(prefix)]
    # INTERNAL bars are aggregated by the node itself from ticks; only EXTERNAL ones are replayed.
    return sorted(b for b in found if b.endswith("-EXTERNAL"))


def _has_anything_for(catalog: ParquetDataCatalog, instrument_ids: Sequence[str]) -> bool:
    if bar_types_in(catalog, instrument_ids):
        return True
    try:
        return bool(catalog.instruments(instrument_ids=list(instrument_ids)))
    except FileNotFoundError:
        return False


def load_instruments(catalog: ParquetDataCatalog, instrument_ids: Sequence[str]) -> list[Instrument]:
    """The instruments in spec order, or CatalogError naming each missing one and the catalog path."""
    try:
        held = {str(i.id): i for i in catalog.instruments(instrument_ids=list(instrument_ids))}
    except FileNotFoundError:
        held = {}
    missing = [i for i in instrument_ids if i not in held]
    if missing:
        raise CatalogError(
            f"instrument(s) {', '.join(missing)} not found in the catalog at {catalog.path}: "
            "write their definitions into the catalog (ParquetDataCatalog.write_data([instrument])), "
            "fix spec.instruments, or, for a demo, set spec.data.sample on an empty catalog"
        )
    return [held[i] for i in instrument_ids]


def write_sample_catalog(
    path: str | Path, instrument_ids: Sequence[str], sample: SampleData, *, with_ticks: bool = False
) -> None:
    """Write the deterministic sample into the catalog at ``path``.

    The files are written in a scratch directory next to the catalog and then moved into
    place one directory at a time, instrument definitions last: a crash half-way leaves data
    without definitions, which the next start reports as a missing instrument instead of
    trading on a half-written sample.
    """
    target = Path(path)
    try:
        series = generate_sample(
            instrument_ids, bars=sample.bars, seed=sample.seed, start=sample.start, with_ticks=with_ticks
        )
    except SampleDataError as exc:
        raise CatalogError(str(exc)) from None
    try:
        target.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".livestrat-sample-", dir=target))
    except OSError as exc:
        raise CatalogError(
            f"cannot write data.sample into the catalog at {target}: {exc.strerror}; data.sample needs a "
            "writable catalog (catalog.emptyDir, or a read-write volume)"
        ) from None
    try:
        staged = open_catalog(scratch)
        for s in series:
            staged.write_data(s.bars)
            if s.quotes:
                staged.write_data(s.quotes)
                staged.write_data(s.trades)
        staged.write_data([s.instrument for s in series])
        leaves = sorted(
            (p for p in (scratch / "data").glob("*/*") if p.is_dir()),
            key=lambda p: (p.parent.name in _INSTRUMENT_DIRS, str(p)),
        )
        for leaf in leaves:
            destination = target / "data" / leaf.parent.name / leaf.name
            if destination.exists():
                raise CatalogError(
                    f"the catalog at {target} already holds {destination.relative_to(target)} although it "
                    "had no data for the instruments when the sample was started: remove the catalog "
                    "directory and start again"
                )
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(leaf, destination)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# Directory names (data/<name>/) of instrument definitions; everything else under data/ is market data.
_INSTRUMENT_DIRS = frozenset({"currency_pair", "crypto_perpetual", "crypto_future", "equity"})


def prepare_catalog(config: RuntimeConfig) -> StrategyCatalog:
    """The strategy's catalog, with ``data.sample`` written first when the spec asks for it and it is empty."""
    spec = config.spec
    instrument_ids = list(spec.instruments)
    catalog = open_catalog(config.catalog_path)
    sample_written = False
    if spec.data.sample is not None and not _has_anything_for(catalog, instrument_ids):
        replay = spec.data.replay
        data_types = replay.data_types if replay is not None else [ReplayDataType.BARS]
        with_ticks = ReplayDataType.QUOTES in data_types or ReplayDataType.TRADES in data_types
        sample = spec.data.sample
        logger.warning(
            "the catalog at %s holds no data for %s: writing a synthetic sample (%d one-minute bars per "
            "instrument%s, seed %d, from %s): THIS IS NOT MARKET DATA",
            config.catalog_path,
            ", ".join(instrument_ids),
            sample.bars,
            " with quotes and trades" if with_ticks else "",
            sample.seed,
            sample.start,
        )
        write_sample_catalog(config.catalog_path, instrument_ids, sample, with_ticks=with_ticks)
        catalog = open_catalog(config.catalog_path)  # re-open: the catalog caches what it listed
        sample_written = True
    instruments = load_instruments(catalog, instrument_ids)
    return StrategyCatalog(
        path=str(config.catalog_path),
        catalog=catalog,
        instruments=tuple(instruments),
        bar_types=tuple(bar_types_in(catalog, instrument_ids)),
        sample_written=sample_written,
    )
