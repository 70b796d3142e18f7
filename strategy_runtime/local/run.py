"""``livestrat run FILE``: a strategy run on this machine, in paper mode, through the pod's own runtime.

The manifest is validated as the API server would (``local_config``), live mode is refused,
and the strategy then runs through ``StrategyRuntime`` exactly as in a pod, without the
HTTP endpoints and the status push:

- the catalog defaults to ``WORKDIR/catalogs/NAME``; an empty one gets the spec's
  ``data.sample`` written first, and a stale sample (not what the generator writes now for the
  spec's ``data.sample``) is written again; the run says so either way;
- the ledger is an SQLite file under ``WORKDIR/state/NAME`` (no database server needed), or
  PostgreSQL with a DSN from ``--ledger-file PATH`` or, without it, ``LIVESTRAT_LEDGER_DSN`` from
  the environment (the variable a pod gets); never from the command line, where ``ps`` shows it
  to everyone (``--ledger DSN`` is refused). Every run is a fresh simulated account, so every run
  has a ledger key of its own, ``NAMESPACE-run-YYYYMMDD-HHMMSS-TAG/NAME`` (``own_key``: TAG is random, so two
  runs started in the same second differ too): runs never mix their fills;
- progress while replaying: a line at every quarter of the replay, or every few seconds
  when it is slow (``--quiet`` leaves only the summary);
- when the replay is over the run halts as a pod does (``haltPolicy`` applies) and prints a
  summary: fills, realized and unrealized PnL, final positions, risk state, where the ledger
  is, and the realized PnL recomputed from the ledger's own fills, independently of the node;
- Ctrl-C (or SIGTERM) halts it the same way, at any time;
- ``--desk`` shows the run in the desk's dashboard instead of the progress lines (``strategy_runtime.local.desk``),
  its halt key and Ctrl-C halting it as above; the summary is printed when the dashboard is closed;
- paper on a live feed (``venue.adapter: binance``, no ``data.replay``) reads no catalog and runs on
  the venue's market data until Ctrl-C (``LIVESTRAT_VENUE_ENDPOINTS`` in the environment points it at
  the venue emulator instead).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import secrets
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from livestrat.api.runtime_config import ENV_LEDGER_DSN, LedgerKind, LedgerTarget, RuntimeConfig, StrategyIdentity
from livestrat.api.spec import Adapter, Mode
from livestrat.api.status import Position
from livestrat.api.validation import InvalidManifest
from livestrat.exits import take_ctrl_c
from strategy_runtime.ledger import DsnParts, LedgerError
from strategy_runtime.ledger.export import write_fills
from strategy_runtime.local import figures
from strategy_runtime.local.config import halted_note, local_runtime_config, paper_only
from strategy_runtime.local.import_path import add_strategy_directories
from strategy_runtime.local.progress import ThrottledProgress
from strategy_runtime.paper.catalog import CatalogError, StrategyCatalog, prepare_catalog
from strategy_runtime.paper.sample_data import SampleDataError
from strategy_runtime.pnl import recompute_pnl
from strategy_runtime.run_report.hint import report_command_line
from strategy_runtime.runtime import EXIT_INVALID, RunOutcome, RuntimeOptions, StrategyRuntime

PROGRESS_STEP = 0.25  # a line at every quarter of the replay...
PROGRESS_EVERY_SECONDS = 5.0  # ...or this often when the replay is slower
LEDGER_ON_THE_COMMAND_LINE = (
    "--ledger is not taken: a DSN on the command line shows its password to every user of this machine "
    f"(ps, /proc/PID/cmdline) for the whole run. Give it in the environment ({ENV_LEDGER_DSN}=postgresql://…) "
    "or in a file only you can read (--ledger-file PATH)"
)


def configure_logging(level: str = "ERROR") -> None:
    # The runtime's warnings and errors, short (more with --log-level INFO or DEBUG); NautilusTrader's own log,
    # the strategy's among it, is at --log-level (ERROR unless asked).
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("livestrat: %(message)s"))
    root = logging.getLogger("livestrat")
    root.handlers[:] = [handler]
    root.setLevel(level if level in ("DEBUG", "INFO") else logging.WARNING)
    root.propagate = False
    # The run says itself, on stdout, when it writes the sample catalog.
    logging.getLogger("livestrat.catalog").setLevel(logging.ERROR)


def given_dsn(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The ledger DSN a run is given and where it comes from (``--ledger-file PATH``, else
    ``LIVESTRAT_LEDGER_DSN``); None for none (the SQLite file). LedgerError for a file it cannot read."""
    if args.ledger_file is None:
        dsn = environ.get(ENV_LEDGER_DSN)
        return (dsn, ENV_LEDGER_DSN) if dsn else None  # set but empty: the SQLite file
    source = f"--ledger-file {args.ledger_file}"
    try:
        dsn = Path(args.ledger_file).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise LedgerError(f"cannot read {source}: {getattr(exc, 'strerror', None) or 'not UTF-8 text'}") from None
    if not dsn.strip():
        raise LedgerError(f"{source} is empty: write the ledger's DSN in it (postgresql://USER:PASSWORD@HOST/DB)")
    return dsn, source


def manifest_config(args: argparse.Namespace, environ: dict[str, str], dsn: str | None) -> RuntimeConfig:
    """The manifest's spec with local paths, and the ledger: PostgreSQL when a ``dsn`` is given (it goes to the
    runtime in ``environ``, as a pod gets it), otherwise an SQLite file under the work directory."""
    ledger = None
    if dsn:
        ledger = LedgerTarget(kind=LedgerKind.POSTGRESQL)
        environ[ENV_LEDGER_DSN] = dsn
    else:
        environ.pop(ENV_LEDGER_DSN, None)
    return local_runtime_config(
        Path(args.file),
        workdir=Path(args.workdir),
        catalog=Path(args.catalog) if args.catalog else None,
        ledger=ledger,
        log_level=getattr(args, "log_level", "ERROR"),
    )


def own_key(config: RuntimeConfig, kind: str) -> StrategyIdentity:
    """A ledger key of this invocation's own (``NAMESPACE-KIND-STAMP/NAME``).

    The second and a random tag: two runs started within one second (a run of the example takes less)
    would otherwise share a key, and the second's fills be taken for the first's.
    """
    stamp = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    return StrategyIdentity(namespace=f"{config.strategy.namespace}-{kind}-{stamp}", name=config.strategy.name)


def local_config(args: argparse.Namespace, environ: dict[str, str], dsn: str | None) -> RuntimeConfig:
    """The run's configuration: ``manifest_config``, the replay at ``--speed``, and a ledger key for this run."""
    config = manifest_config(args, environ, dsn)
    spec = config.spec
    if args.speed is not None and spec.data.replay is not None:
        replay = spec.data.replay.model_copy(update={"speed": args.speed})
        spec = spec.model_copy(update={"data": spec.data.model_copy(update={"replay": replay})})
    return config.model_copy(update={"spec": spec, "strategy": own_key(config, "run")})


class ProgressLines:
    """Prints the replay's progress now and then: events, fills, PnL."""

    def __init__(self, runtime: StrategyRuntime) -> None:
        self._runtime = runtime
        self._next_step = PROGRESS_STEP
        self._last_line = time.monotonic()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            try:
                self.maybe_print()
            except BrokenPipeError:
                # Whoever read the output is gone (``livestrat run … | head``): nobody sees this run any more,
                # so it halts as on Ctrl-C, and the command ends quietly (livestrat.exits).
                self._runtime.request_stop("its output was closed")
                return

    def maybe_print(self) -> None:
        progress = self._runtime.replay_progress()
        if progress is None or not progress.total or self._runtime.reporter is None:
            return
        fraction = progress.events / progress.total
        now = time.monotonic()
        if fraction < self._next_step and now - self._last_line < PROGRESS_EVERY_SECONDS:
            return
        while self._next_step <= fraction:
            self._next_step += PROGRESS_STEP
        self._last_line = now
        trading = self._runtime.status_snapshot().trading
        guard = self._runtime.guard
        pnl = guard.book_pnl().total if guard is not None else {}  # exact, as the summary (status: cents)
        print(
            f"  replay {math.floor(fraction * 100):3d}%  {progress.events:,}/{progress.total:,} events  "
            f"fills {figures.count(trading.fills)}  PnL {figures.amounts(pnl, empty='-')}",
            flush=True,
        )


def print_summary(config: RuntimeConfig, outcome: RunOutcome, seconds: float, command: str = "livestrat run") -> None:
    name = config.strategy.name
    snapshot = outcome.snapshot
    print(f"\n{command}: {name} stopped after {figures.seconds(seconds)} ({outcome.reason})")
    if snapshot is None:
        return
    trading, risk = snapshot.trading, snapshot.risk
    if trading.replay is not None:
        print(f"  replayed:       {trading.replay.events:,} of {trading.replay.total:,} events")
        if trading.replay.total == 0:
            print("  WARNING:        nothing was replayed: the catalog holds no data in spec.data.replay's window for")
            print("                  what was replayed (livestrat validate --strict FILE says what is missing)")
    print(f"  fills:          {figures.count(trading.fills)}")
    pnl = outcome.pnl
    realized = pnl.realized if pnl is not None else {}
    print(f"  realized PnL:   {figures.amounts(realized)}")
    print(f"  unrealized PnL: {figures.amounts(pnl.unrealized) if pnl is not None and pnl.unrealized else 'none'}")
    if outcome.ledger_fills is not None:
        # The figures above are the one book's (strategy_runtime.book_view); the ledger, read back, must agree.
        recomputed: dict[str, Decimal] = {}
        for each in recompute_pnl(outcome.ledger_fills, outcome.terms).instruments.values():
            currency = each.currency or "?"
            recomputed[currency] = recomputed.get(currency, Decimal(0)) + each.net_realized_pnl
        agree = all(recomputed.get(c, Decimal(0)) == realized.get(c, Decimal(0)) for c in {*recomputed, *realized})
        print(
            f"  ledger PnL:     {figures.amounts(recomputed)} realized, recomputed from the ledger's "
            f"{figures.count(len(outcome.ledger_fills))} fills ({'agrees' if agree else 'DIFFERS: report it'})"
        )
    if trading.positions:
        for position in trading.positions:
            print(
                f"  position:       {position.side} {position.quantity} {position.instrument} "
                f"@ {position.avg_price} (unrealized {figures.money(position.unrealized_pnl)})"
            )
    else:
        print("  positions:      flat")
    disagreement = _node_disagrees(outcome, realized, trading.positions)
    if disagreement:
        print(
            f"  the node:       its own portfolio says {disagreement}: it did not apply every fill the venue "
            "executed (the figures above are the fills'); check the venue"
        )
    print(f"  open orders:    {trading.open_orders}")
    print(
        f"  risk:           {risk.state}"
        + (
            f" since {risk.breached_at} (market time {risk.breached_at_market or 'not recorded'}): "
            f"{risk.breached_limit}: {risk.reason}"
            if risk.breached_limit
            else ""
        )
    )
    print(f"  ledger:         {outcome.ledger_where} (strategy key {outcome.strategy_key})")


def _node_disagrees(outcome: RunOutcome, realized: Mapping[str, Decimal], positions: list[Position]) -> str | None:
    """What the node's portfolio says where it differs from the book of the fills (at its precision), or None."""
    node_pnl, node_positions = outcome.node_pnl, outcome.node_positions
    if node_pnl is None or node_positions is None:
        return None
    # A currency the book has no fill in is 0 there (a live account reports 0 realized before its first fill).
    # The node's realized PnL leaves out the commissions paid in a base (Binance spot's buys); the book prices them.
    as_the_node = {c: realized.get(c, Decimal(0)) + outcome.commission_values.get(c, Decimal(0)) for c in realized}
    at_its_precision = {c: as_the_node.get(c, Decimal(0)).quantize(a) for c, a in node_pnl.realized.items()}
    booked = {p.instrument: Decimal(p.quantity) * (-1 if p.side == "SHORT" else 1) for p in positions}
    net = {i: q for i, q in node_positions.items() if q}
    if at_its_precision == dict(node_pnl.realized) and booked == net:
        return None
    held = ", ".join(f"{q:+f} {i}" for i, q in sorted(net.items())) or "flat"
    return f"{figures.amounts(node_pnl.realized)} realized, {held}"


def run_local(args: argparse.Namespace) -> int:
    configure_logging(getattr(args, "log_level", "ERROR"))
    add_strategy_directories(Path(args.file), getattr(args, "path", ()))
    if args.ledger is not None:
        print(f"livestrat run: {LEDGER_ON_THE_COMMAND_LINE}", file=sys.stderr)
        return EXIT_INVALID
    environ = dict(os.environ)
    try:
        given = given_dsn(args, environ)
        where = DsnParts.parse(*given) if given else None
    except LedgerError as exc:  # the message never holds the DSN
        print(f"livestrat run: {exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        config = local_config(args, environ, given[0] if given else None)
    except InvalidManifest as exc:
        print(f"livestrat run: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if config.spec.mode == Mode.LIVE:
        print(f"livestrat run: {paper_only(args.file, config, 'livestrat run')}", file=sys.stderr)
        return EXIT_INVALID
    halted = halted_note(args.file, config, "livestrat run")
    if halted is not None:
        print(halted, flush=True)
    # Where the ledger is, safe to print: host:port/database, never the password.
    ledger = f"PostgreSQL {where} (from {given[1]})" if given else f"SQLite {config.ledger.sqlite_path}"
    catalog: StrategyCatalog | None = None
    if config.spec.venue.adapter != Adapter.SANDBOX:  # paper on a live feed: no catalog is read
        market = f"{config.spec.venue.adapter}'s live market data"
    else:
        try:
            catalog = prepare_catalog(config, progress=None if args.quiet else ThrottledProgress())
        except (CatalogError, SampleDataError) as exc:
            print(f"livestrat run: {exc}", file=sys.stderr)
            return EXIT_INVALID
        notice = catalog.sample_notice(config.spec.data.sample)
        if notice is not None:
            print(notice, flush=True)
        market = catalog.path
    print(
        f"running {config.strategy.name} in paper mode on {market}, ledger {ledger} (Ctrl-C halts it)",
        flush=True,
    )

    options = RuntimeOptions(
        serve_http=False,
        push_status=False,
        stop_when_replay_finishes=True,
        fence_wait_seconds=0.0,
        environ=environ,
        catalog=catalog,
        keep_fills=True,
        keep_watchdog_armed=True,
        signals_halt=True,  # Ctrl-C: the person at the terminal asks for a halt
    )
    started = time.monotonic()

    runtime = StrategyRuntime(config, options)

    async def main() -> RunOutcome:
        if args.desk:  # the dashboard instead of the progress lines
            from strategy_runtime.local.desk import run_with_desk

            return await run_with_desk(runtime, config)
        progress = ProgressLines(runtime)
        task = None if args.quiet else asyncio.get_running_loop().create_task(progress.run())
        try:
            return await runtime.run()
        finally:
            if task is not None:
                task.cancel()

    take_ctrl_c()  # until the node takes it (a halt): Ctrl-C while the ledger opens or the node builds stops at once
    outcome = asyncio.run(main())
    runtime.disarm_watchdog()
    print_summary(config, outcome, time.monotonic() - started)
    if outcome.strategy_key:  # how to make this run's report (strategy_runtime.run_report)
        hint = report_command_line(
            args.file,
            args.workdir,
            strategy_key=outcome.strategy_key,
            catalog=args.catalog,
            ledger_file=args.ledger_file,
        )
        print(f"  report:         {hint}")
    for path, as_csv in ((args.fills_json, False), (args.fills_csv, True)):
        if not path:
            continue
        if outcome.ledger_fills is None:
            print(f"livestrat run: the ledger could not be read back: no fills written to {path}", file=sys.stderr)
            continue
        written = write_fills(path, outcome.ledger_fills, as_csv=as_csv)
        print(f"  fills written:  {written} ({figures.count(len(outcome.ledger_fills))}, as the ledger holds them)")
    return outcome.exit_code
