"""The strategy's ParquetDataCatalog: open it, load the spec's instruments, write ``data.sample``.

``prepare_catalog(config)`` is what the runtime, ``livestrat run`` and ``livestrat backtest``
call first: it writes the deterministic sample when the spec asks for one and the catalog
holds nothing for the instruments, then loads every instrument of the spec (a clear
``CatalogError`` naming the instrument and the path when one is missing) and finds the
bar types the catalog holds for them.

A sample catalog is stamped (``livestrat-sample.json`` at its root: the settings, what was
written, and a digest of the content). A stamped catalog whose digest is not what the
generator writes now for the spec's ``data.sample`` (another generator version, another
seed, ticks now asked for) is **stale**: its sample is removed and written again, and the
caller says so. A catalog livestrat owns (``livestrat run``'s default
``WORKDIR/catalogs/NAME``) is checked by its content when it has no stamp (written before
stamps existed). Any other catalog that holds data is never touched: real data is never
mixed with, or replaced by, a sample.
"""

from __future__ import annotations

import json
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
from strategy_runtime.paper.sample_data import (
    SampleDataError,
    SampleSeries,
    bar_type_for,
    generate_sample,
    sample_fingerprint,
    sample_instrument,
)

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
    stale_sample: str | None = None  # why the sample found there was written again (it was stale)

    def sample_notice(self, sample: SampleData | None) -> str | None:
        """What a local command prints when it wrote the sample (None when it did not)."""
        if not self.sample_written or sample is None:
            return None
        what = f"{sample.bars:,} one-minute bars per instrument, seed {sample.seed} (not market data)"
        if self.stale_sample is not None:
            return f"the sample catalog at {self.path} was stale ({self.stale_sample}): wrote it again: {what}"
        return f"wrote a synthetic sample catalog to {self.path}: {what}"


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


SAMPLE_STAMP = "livestrat-sample.json"


def _generate(instrument_ids: Sequence[str], sample: SampleData, with_ticks: bool) -> list[SampleSeries]:
    try:
        return generate_sample(
            instrument_ids, bars=sample.bars, seed=sample.seed, start=sample.start, with_ticks=with_ticks
        )
    except SampleDataError as exc:
        raise CatalogError(str(exc)) from None


def write_sample_catalog(
    path: str | Path, instrument_ids: Sequence[str], sample: SampleData, *, with_ticks: bool = False
) -> None:
    """Write the deterministic sample into the catalog at ``path``, and its stamp.

    The files are written in a scratch directory next to the catalog and then moved into
    place one directory at a time, instrument definitions last: a crash half-way leaves data
    without definitions, which the next start reports as a missing instrument instead of
    trading on a half-written sample. The stamp comes last of all.
    """
    target = Path(path)
    series = _generate(instrument_ids, sample, with_ticks)
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
        written: list[str] = []
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
            written.append(str(destination.relative_to(target)))
        _write_stamp(target, instrument_ids, sample, with_ticks, sorted(written), sample_fingerprint(series))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _read_stamp(path: Path) -> dict | None:
    try:
        stamp = json.loads((path / SAMPLE_STAMP).read_text())
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def _read_back(catalog: ParquetDataCatalog, instrument_ids: Sequence[str], with_ticks: bool) -> list[SampleSeries]:
    """What the catalog holds for the sample's instruments, as the generator's series (for the digest)."""
    held = {str(i.id): i for i in catalog.instruments(instrument_ids=list(instrument_ids))}
    series = []
    for instrument_id in instrument_ids:
        instrument = held.get(instrument_id) or sample_instrument(instrument_id)
        bar_type = str(bar_type_for(instrument_id))
        bars = catalog.bars(bar_types=[bar_type]) if bar_type in bar_types_in(catalog, [instrument_id]) else []
        quotes = catalog.quote_ticks(instrument_ids=[instrument_id]) if with_ticks else []
        trades = catalog.trade_ticks(instrument_ids=[instrument_id]) if with_ticks else []
        series.append(SampleSeries(instrument, bars, quotes, trades))
    return series


def stale_sample(
    path: str | Path, instrument_ids: Sequence[str], sample: SampleData, *, with_ticks: bool, owned: bool
) -> str | None:
    """Why the sample in the catalog at ``path`` is not what the generator writes now; None if it is (or is
    not a sample: a catalog without a stamp that livestrat does not own holds someone's data)."""
    target = Path(path)
    stamp = _read_stamp(target)
    if stamp is None and not owned:
        return None
    expected = sample_fingerprint(_generate(instrument_ids, sample, with_ticks))
    if stamp is not None:
        if stamp.get("fingerprint") == expected:
            return None
        settings = {"instruments": list(instrument_ids), "bars": sample.bars, "seed": sample.seed}
        settings |= {"start": sample.start, "withTicks": with_ticks}
        if any(stamp.get(k) != v for k, v in settings.items()):
            return "written for other data.sample settings or instruments"
        return "written by another version of the sample generator"
    try:
        held = sample_fingerprint(_read_back(open_catalog(target), instrument_ids, with_ticks))
    except Exception:  # unreadable as a sample: it is not what the generator writes
        held = None
    if held == expected:  # written before stamps existed: stamp it now, and it is not read back again
        _write_stamp(target, instrument_ids, sample, with_ticks, _sample_leaves(target, instrument_ids), expected)
        return None
    return "its data is not what the sample generator writes now for this data.sample"


def _sample_leaves(target: Path, instrument_ids: Sequence[str]) -> list[str]:
    """The catalog's directories of the instruments' data and definitions (relative to the catalog)."""
    names = [urisafe_identifier(i) for i in instrument_ids]
    return sorted(
        str(leaf.relative_to(target))
        for leaf in (target / "data").glob("*/*")
        if leaf.is_dir() and any(leaf.name == n or leaf.name.startswith(f"{n}-") for n in names)
    )


def _write_stamp(
    target: Path,
    instrument_ids: Sequence[str],
    sample: SampleData,
    with_ticks: bool,
    written: list[str],
    fingerprint: str,
) -> None:
    stamp = {
        "instruments": list(instrument_ids),
        "bars": sample.bars,
        "seed": sample.seed,
        "start": sample.start,
        "withTicks": with_ticks,
        "written": written,
        "fingerprint": fingerprint,
    }
    fd, staged = tempfile.mkstemp(prefix=".livestrat-stamp-", dir=target)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(stamp, indent=1, sort_keys=True) + "\n")
    os.replace(staged, target / SAMPLE_STAMP)


def remove_sample(path: str | Path, instrument_ids: Sequence[str]) -> None:
    """Remove a stale sample: what its stamp says it wrote, or (no stamp) every directory of its instruments."""
    target = Path(path)
    stamp = _read_stamp(target)
    written = stamp.get("written") if stamp is not None else None
    if not isinstance(written, list):
        written = _sample_leaves(target, instrument_ids)
    leaves = [target / str(p) for p in written]
    # The stamp first: a crash half-way leaves an unstamped catalog, checked by content next time.
    (target / SAMPLE_STAMP).unlink(missing_ok=True)
    for leaf in leaves:
        if leaf.resolve().is_relative_to(target.resolve()):
            shutil.rmtree(leaf, ignore_errors=True)


# Directory names (data/<name>/) of instrument definitions; everything else under data/ is market data.
_INSTRUMENT_DIRS = frozenset({"currency_pair", "crypto_perpetual", "crypto_future", "equity"})


def prepare_catalog(config: RuntimeConfig, *, owned: bool = False) -> StrategyCatalog:
    """The strategy's catalog, with ``data.sample`` written first when the spec asks for it and it is empty
    (or holds a stale sample). ``owned``: the catalog directory is livestrat's own (``livestrat run``'s
    default), so a sample without a stamp is checked by its content too."""
    spec = config.spec
    instrument_ids = list(spec.instruments)
    catalog = open_catalog(config.catalog_path)
    sample_written = False
    stale: str | None = None
    sample = spec.data.sample
    replay = spec.data.replay
    data_types = replay.data_types if replay is not None else [ReplayDataType.BARS]
    with_ticks = ReplayDataType.QUOTES in data_types or ReplayDataType.TRADES in data_types
    if sample is not None and _has_anything_for(catalog, instrument_ids):
        stale = stale_sample(config.catalog_path, instrument_ids, sample, with_ticks=with_ticks, owned=owned)
        if stale is not None:
            logger.warning("the sample catalog at %s is stale (%s): writing it again", config.catalog_path, stale)
            remove_sample(config.catalog_path, instrument_ids)
            catalog = open_catalog(config.catalog_path)
    if sample is not None and not _has_anything_for(catalog, instrument_ids):
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
        stale_sample=stale if sample_written else None,
    )
