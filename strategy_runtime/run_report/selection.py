"""Which fills a report is of, and what is known around them.

- ``livestrat report FILE``: a local paper run of the manifest, from its ledger (the SQLite file
  ``livestrat run`` writes under WORKDIR, or PostgreSQL), its latest run unless ``--strategy`` names
  one; the catalog's instruments, the spec's starting balances, and the backtest to compare with.
- ``livestrat report FILE --backtest``: the spec's backtest, run now.
- ``livestrat report --sqlite PATH | --ledger-file PATH``: a strategy's fills in any ledger (a live
  strategy's in a cluster): ``--strategy`` names it (needed when the ledger holds several).

The ledger is only read (``strategy_runtime.ledger.reader``): never its fence, never a write.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from nautilus_trader.model.instruments import Instrument
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from livestrat.api.contract import SQLITE_FILE_NAME
from livestrat.api.runtime_config import RuntimeConfig
from livestrat.api.spec import Adapter, Mode
from strategy_runtime.ledger.dsn import DsnParts
from strategy_runtime.ledger.errors import LedgerError, LedgerUnavailable
from strategy_runtime.ledger.reader import LedgerSource, pick_strategy
from strategy_runtime.ledger.records import RUN_MARK, FillRecord, strategy_of
from strategy_runtime.local.config import local_runtime_config, paper_only

DEFAULT_WORKDIR = Path(".livestrat")
NO_LEDGER = (
    "name what to report on: a manifest (livestrat report FILE: its local run; --backtest: its backtest), or a "
    "ledger: --sqlite PATH (livestrat run's is WORKDIR/state/NAME/ledger.sqlite), or a PostgreSQL DSN in "
    "LIVESTRAT_LEDGER_DSN or in a file (--ledger-file PATH)"
)


class Kind:
    PAPER_RUN = "paper run"
    BACKTEST = "backtest"
    LEDGER = "ledger"


@dataclass(frozen=True)
class ReportInput:
    kind: str
    strategy_key: str
    fills: list[FillRecord]
    ledger: str | None  # where the fills were read (host:port/database, never a password), None for a backtest
    starting_balances: dict[str, Decimal]
    instruments: dict[str, Instrument]  # the catalog's, when known
    config: RuntimeConfig | None  # the manifest's, when given
    output: Path  # the report's directory


def given_dsn(args: argparse.Namespace) -> tuple[str, str] | None:
    """The DSN and where it came from, as ``livestrat run`` takes it (never from argv)."""
    from strategy_runtime.local.run import given_dsn as run_given_dsn

    return run_given_dsn(args, dict(os.environ))


def ledger_source(args: argparse.Namespace, config: RuntimeConfig | None) -> LedgerSource:
    """The ledger the arguments name: --sqlite, a DSN, or the SQLite file of the manifest's local runs."""
    given = given_dsn(args)
    if args.sqlite and given:
        raise LedgerError(f"--sqlite and a PostgreSQL DSN ({given[1]}) both name a ledger: give one")
    if args.sqlite:
        return LedgerSource(sqlite=Path(args.sqlite))
    if given:
        return LedgerSource(postgres=DsnParts.parse(*given))
    if config is not None and config.ledger.sqlite_path:
        return LedgerSource(sqlite=Path(config.ledger.sqlite_path))
    raise LedgerError(NO_LEDGER)


def starting_balances(config: RuntimeConfig | None) -> dict[str, Decimal]:
    balances: dict[str, Decimal] = {}
    for text in (config.spec.venue.starting_balances or []) if config is not None else []:
        amount, currency = text.split()
        balances[currency] = balances.get(currency, Decimal(0)) + Decimal(amount)
    return balances


def catalog_instruments(config: RuntimeConfig | None) -> dict[str, Instrument]:
    """The spec's instruments as its catalog holds them ({} without a catalog: stand-ins then)."""
    if config is None or not Path(config.catalog_path).is_dir():
        return {}
    catalog = ParquetDataCatalog(config.catalog_path)
    try:
        found = catalog.instruments(instrument_ids=list(config.spec.instruments))
    except Exception:  # an empty or foreign directory: the report does without
        return {}
    return {i.id.value: i for i in found}


async def choose_key(source: LedgerSource, asked: str | None, name: str | None) -> str:
    """The ledger key to report on: ``asked`` (a key, or a name only one key has), else the latest run of the
    strategy ``name`` (a manifest's), else the ledger's only strategy. LookupError says what it holds."""
    held = await source.strategies()
    if asked is not None:
        try:
            return pick_strategy(held, asked)
        except LookupError as exc:
            if await source.ran(asked):
                return asked  # it ran, and has not traded (yet)
            if any(asked in (strategy_of(k), strategy_of(k).rsplit("/", 1)[-1]) for k in held):
                raise  # it names several
            raise LookupError(f"{exc}, and {asked!r} never ran on it (no fence of it either)") from None
    if name is not None:
        runs = [(key, epoch) for key, epoch, _ in await source.fences() if key.rsplit("/", 1)[-1] == name]
        if not runs:
            raise LookupError(f"{source.describe()} holds no run of {name}: run it first (livestrat run FILE)")
        key, epoch = runs[-1]  # the fence taken last
        return f"{key}{RUN_MARK}{epoch}"
    if len(held) == 1:
        return next(iter(held))
    if not held:
        raise LookupError(f"{source.describe()} holds no fills: name the strategy key with --strategy KEY")
    raise LookupError(f"{source.describe()} holds {len(held)} strategy keys: {', '.join(held)}; pass --strategy KEY")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "_"


def report_directory(workdir: Path, strategy_key: str) -> Path:
    """WORKDIR/reports/NAME/RUN: ``NAME`` the strategy's name, ``RUN`` the rest of its key (namespace, run)."""
    strategy = strategy_of(strategy_key)
    namespace, _, name = strategy.rpartition("/")
    run = strategy_key[len(strategy) :].replace(RUN_MARK, "-run-")
    return workdir / "reports" / _safe(name) / _safe(f"{namespace or 'default'}{run}")


def workdir_of(args: argparse.Namespace) -> Path:
    """--workdir, else the work directory of an SQLite ledger at WORKDIR/state/NAME/ledger.sqlite, else .livestrat."""
    if args.workdir:
        return Path(args.workdir)
    if args.sqlite:
        path = Path(args.sqlite)
        if path.name == SQLITE_FILE_NAME and path.parent.parent.name == "state":
            return path.parent.parent.parent
    return DEFAULT_WORKDIR


def manifest_config(args: argparse.Namespace, workdir: Path) -> RuntimeConfig:
    config = local_runtime_config(
        Path(args.file), workdir=workdir, catalog=Path(args.catalog) if args.catalog else None
    )
    if config.spec.mode == Mode.LIVE:
        # A live strategy's fills are in its PostgreSQL ledger: reported without its manifest.
        raise LedgerError(
            f"{paper_only(args.file, config, 'livestrat report FILE')}. A live strategy's report comes from its "
            "ledger: livestrat report --ledger-file PATH --strategy NAMESPACE/NAME"
        )
    return config


def ledger_input(args: argparse.Namespace) -> ReportInput:
    """A report of fills in a ledger: the manifest's local run, or any strategy of a ledger named."""
    workdir = workdir_of(args)
    config = manifest_config(args, workdir) if args.file else None
    source = ledger_source(args, config)
    try:
        key = asyncio.run(choose_key(source, args.strategy, config.strategy.name if config else None))
        fills = asyncio.run(source.fills(key))
    except LedgerUnavailable as exc:
        if config is not None and source.sqlite is not None and not source.sqlite.is_file():
            raise LedgerUnavailable(
                f"{exc}: {args.file} has not run here yet (livestrat run {args.file}"
                f"{'' if workdir == DEFAULT_WORKDIR else f' --workdir {workdir}'}), or name its ledger "
                "(--sqlite PATH, --ledger-file PATH)"
            ) from None
        raise
    return ReportInput(
        kind=Kind.PAPER_RUN if config is not None else Kind.LEDGER,
        strategy_key=key,
        fills=fills,
        ledger=source.describe(),
        starting_balances=starting_balances(config),
        instruments=catalog_instruments(config),
        config=config,
        output=Path(args.output) if args.output else report_directory(workdir, key),
    )


def backtest_input(args: argparse.Namespace) -> ReportInput:
    """A report of the manifest's backtest, run now over its catalog (written first if the spec samples)."""
    from strategy_runtime.local.backtest import run_backtest

    if not args.file:
        raise LedgerError("--backtest needs the manifest to backtest: livestrat report FILE --backtest")
    workdir = workdir_of(args)
    config = manifest_config(args, workdir)
    result = run_backtest(config)
    stamp = f"{datetime.now(UTC):%Y%m%d-%H%M%S}"
    key = f"{config.strategy.namespace}-backtest-{stamp}/{config.strategy.name}"
    return ReportInput(
        kind=Kind.BACKTEST,
        strategy_key=key,
        fills=list(result.fills),
        ledger=None,
        starting_balances=starting_balances(config),
        instruments=catalog_instruments(config),
        config=config,
        output=Path(args.output) if args.output else report_directory(workdir, key),
    )


def comparable(config: RuntimeConfig | None) -> str | None:
    """Why a paper run of ``config`` has no backtest to compare with, or None when it has one."""
    if config is None:
        return "no manifest: the backtest needs the spec (livestrat report FILE)"
    if config.spec.venue.adapter != Adapter.SANDBOX or config.spec.data.replay is None:
        return "paper on a venue's live market data: no catalog window to backtest"
    return None
