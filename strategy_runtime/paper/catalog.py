"""The strategy's ParquetDataCatalog: open it, load the spec's instruments, write ``data.sample``.

``prepare_catalog(config)`` is what the runtime, ``livestrat run`` and ``livestrat backtest``
call first: it writes the deterministic sample when the spec asks for one and the catalog
holds nothing for the instruments, then loads every instrument of the spec (a clear
``CatalogError`` naming the instrument and the path when one is missing) and finds the
bar types the catalog holds for them.

A sample catalog is stamped (``livestrat-sample.json`` at its root: the settings, the
directories written, and ``generator_fingerprint``: the generator's version and the digest of
a short probe sample). A stamped sample whose settings or generator are not what the spec's
``data.sample`` asks of the generator now (another seed, ticks now asked for, another
generator version), or whose writing did not finish, is **stale**: it is removed and written
again, and the caller says so. The check reads the stamp and makes the probe (milliseconds);
it never generates or reads back the whole sample.

A catalog that holds data without a stamp is someone's: it is replayed as it is (the caller
says the sample was not written), never touched; and a sample is never written into a
catalog that holds data that is not the sample's, for other instruments either
(``CatalogError`` naming the catalog and what to do): real data is never mixed with, or
replaced by, a sample.
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
    SampleProgress,
    SampleSeries,
    generate_sample,
    generator_fingerprint,
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
    not_a_sample: bool = False  # the spec asks for data.sample, and the catalog holds someone's data instead

    def sample_notice(self, sample: SampleData | None) -> str | None:
        """What a local command prints when it wrote the sample, or did not because the catalog holds someone's
        data (None otherwise)."""
        if sample is not None and self.not_a_sample:
            return (
                f"the catalog at {self.path} holds data livestrat did not write as a sample: replaying that data, "
                "not spec.data.sample (for the sample, give an empty catalog directory: --catalog DIR)"
            )
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


def _generate(
    instrument_ids: Sequence[str], sample: SampleData, with_ticks: bool, progress: SampleProgress | None = None
) -> list[SampleSeries]:
    try:
        return generate_sample(
            instrument_ids,
            bars=sample.bars,
            seed=sample.seed,
            start=sample.start,
            with_ticks=with_ticks,
            progress=progress,
        )
    except SampleDataError as exc:
        raise CatalogError(str(exc)) from None


def _generator(instrument_ids: Sequence[str], sample: SampleData, with_ticks: bool) -> str:
    try:
        return generator_fingerprint(instrument_ids, seed=sample.seed, start=sample.start, with_ticks=with_ticks)
    except SampleDataError as exc:
        raise CatalogError(str(exc)) from None


def _settings(instrument_ids: Sequence[str], sample: SampleData, with_ticks: bool) -> dict:
    """What the stamp records of the spec's ``data.sample`` (and compares when the sample is reused)."""
    return {
        "instruments": list(instrument_ids),
        "bars": sample.bars,
        "seed": sample.seed,
        "start": sample.start,
        "withTicks": with_ticks,
    }


def write_sample_catalog(
    path: str | Path,
    instrument_ids: Sequence[str],
    sample: SampleData,
    *,
    with_ticks: bool = False,
    progress: SampleProgress | None = None,
) -> None:
    """Write the deterministic sample into the catalog at ``path``, and its stamp.

    The files are written in a scratch directory next to the catalog and then moved into
    place one directory at a time, instrument definitions last. The stamp goes first, marked
    incomplete, and is marked complete last: a write cut short (Ctrl-C, a crash) leaves a
    catalog that says it holds an unfinished sample, which the next start writes again, never
    one that looks like someone's data. ``progress`` hears how far it is (``SampleProgress``).
    """
    target = Path(path)
    generator = _generator(instrument_ids, sample, with_ticks)
    series = _generate(instrument_ids, sample, with_ticks, progress)
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
        total, done = sum(len(s.bars) for s in series), 0
        for s in series:
            staged.write_data(s.bars)
            if s.quotes:
                staged.write_data(s.quotes)
                staged.write_data(s.trades)
            done += len(s.bars)
            if progress is not None:
                progress("sample: bars written to the catalog", done, total)
        staged.write_data([s.instrument for s in series])
        leaves = sorted(
            (p for p in (scratch / "data").glob("*/*") if p.is_dir()),
            key=lambda p: (p.parent.name in _INSTRUMENT_DIRS, str(p)),
        )
        moves = [(leaf, target / "data" / leaf.parent.name / leaf.name) for leaf in leaves]
        for _, destination in moves:
            if destination.exists():
                raise CatalogError(
                    f"the catalog at {target} already holds {destination.relative_to(target)} although it "
                    "had no data for the instruments when the sample was started: remove the catalog "
                    "directory and start again"
                )
        written = sorted(str(destination.relative_to(target)) for _, destination in moves)
        settings = _settings(instrument_ids, sample, with_ticks)
        _write_stamp(target, settings, written, generator, complete=False)
        for leaf, destination in moves:
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(leaf, destination)
        _write_stamp(target, settings, written, generator, complete=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _read_stamp(path: Path) -> dict | None:
    try:
        stamp = json.loads((path / SAMPLE_STAMP).read_text())
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def stale_sample(
    path: str | Path, instrument_ids: Sequence[str], sample: SampleData, *, with_ticks: bool
) -> str | None:
    """Why the stamped sample in the catalog at ``path`` is not what the generator writes now for the spec's
    ``data.sample``; None if it is. From the stamp alone (settings and ``generator_fingerprint``): the sample is
    never generated or read back for it."""
    stamp = _read_stamp(Path(path)) or {}
    if stamp.get("complete") is not True:
        return "its writing did not finish" if stamp.get("complete") is False else "stamped by an older livestrat"
    if any(stamp.get(k) != v for k, v in _settings(instrument_ids, sample, with_ticks).items()):
        return "written for other data.sample settings or instruments"
    if stamp.get("generator") != _generator(instrument_ids, sample, with_ticks):
        return "written by another version of the sample generator"
    return None


def not_the_sample(path: str | Path) -> list[str]:
    """The catalog's data directories (``data/KIND/NAME``) that its sample stamp does not list: someone's data.
    Every one of them when the catalog has no stamp."""
    target = Path(path)
    stamp = _read_stamp(target) or {}
    written = stamp.get("written")
    ours = {str(w) for w in written} if isinstance(written, list) else set()
    return sorted(
        str(leaf.relative_to(target))
        for leaf in (target / "data").glob("*/*")
        if leaf.is_dir() and str(leaf.relative_to(target)) not in ours
    )


def refuse_real_data(path: str | Path) -> None:
    """CatalogError when the catalog at ``path`` holds data that is not a sample: a sample is never written into it."""
    foreign = not_the_sample(path)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise CatalogError(
            f"the catalog at {path} holds data that livestrat did not write as a sample ({shown}), and "
            "spec.data.sample is never written into a catalog that holds real data. To replay that data, list "
            "its instruments in spec.instruments and remove spec.data.sample; to run on the sample, give the run "
            "an empty catalog directory (livestrat run --catalog DIR, or the default WORKDIR/catalogs/NAME)"
        )


def _write_stamp(target: Path, settings: dict, written: list[str], generator: str, *, complete: bool) -> None:
    stamp = {**settings, "written": written, "generator": generator, "complete": complete}
    fd, staged = tempfile.mkstemp(prefix=".livestrat-stamp-", dir=target)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(stamp, indent=1, sort_keys=True) + "\n")
    os.replace(staged, target / SAMPLE_STAMP)


def remove_sample(path: str | Path) -> None:
    """Remove a stale sample: what its stamp says it wrote (nothing else), then the stamp."""
    target = Path(path)
    stamp = _read_stamp(target) or {}
    written = stamp.get("written")
    for leaf in (target / str(p) for p in (written if isinstance(written, list) else [])):
        if leaf.resolve().is_relative_to(target.resolve()):
            shutil.rmtree(leaf, ignore_errors=True)
    (target / SAMPLE_STAMP).unlink(missing_ok=True)


# Directory names (data/<name>/) of instrument definitions; everything else under data/ is market data.
_INSTRUMENT_DIRS = frozenset({"currency_pair", "crypto_perpetual", "crypto_future", "equity"})


def prepare_catalog(config: RuntimeConfig, *, progress: SampleProgress | None = None) -> StrategyCatalog:
    """The strategy's catalog, with ``data.sample`` written first when the spec asks for it and the catalog is empty
    (or holds a stale sample of livestrat's: stamped). A catalog holding data without a stamp is someone's: it is
    replayed as it is, and a sample is never written into it (CatalogError when it lacks the spec's instruments).
    ``progress`` hears how far writing the sample is."""
    spec = config.spec
    instrument_ids = list(spec.instruments)
    path = config.catalog_path
    catalog = open_catalog(path)
    sample_written = False
    stale: str | None = None
    not_a_sample = False
    sample = spec.data.sample
    replay = spec.data.replay
    data_types = replay.data_types if replay is not None else [ReplayDataType.BARS]
    with_ticks = ReplayDataType.QUOTES in data_types or ReplayDataType.TRADES in data_types
    if sample is not None:
        stamped = _read_stamp(Path(path)) is not None
        if stamped:
            stale = stale_sample(path, instrument_ids, sample, with_ticks=with_ticks)
            if stale is None and not _has_anything_for(catalog, instrument_ids):
                stale = "its data is gone"
        if stale is not None:
            refuse_real_data(path)  # the sample's own directories go; someone's added beside them would stay
            logger.warning("the sample catalog at %s is stale (%s): writing it again", path, stale)
            remove_sample(path)
            catalog = open_catalog(path)
        if not stamped and _has_anything_for(catalog, instrument_ids):
            not_a_sample = True
            logger.warning(
                "the catalog at %s holds data for %s that is not a livestrat sample: replaying it; data.sample is "
                "not written into it",
                path,
                ", ".join(instrument_ids),
            )
        elif not _has_anything_for(catalog, instrument_ids):
            refuse_real_data(path)
            logger.warning(
                "the catalog at %s holds no data for %s: writing a synthetic sample (%d one-minute bars per "
                "instrument%s, seed %d, from %s): THIS IS NOT MARKET DATA",
                path,
                ", ".join(instrument_ids),
                sample.bars,
                " with quotes and trades" if with_ticks else "",
                sample.seed,
                sample.start,
            )
            write_sample_catalog(path, instrument_ids, sample, with_ticks=with_ticks, progress=progress)
            catalog = open_catalog(path)  # re-open: the catalog caches what it listed
            sample_written = True
    instruments = load_instruments(catalog, instrument_ids)
    return StrategyCatalog(
        path=str(path),
        catalog=catalog,
        instruments=tuple(instruments),
        bar_types=tuple(bar_types_in(catalog, instrument_ids)),
        sample_written=sample_written,
        stale_sample=stale if sample_written else None,
        not_a_sample=not_a_sample,
    )
