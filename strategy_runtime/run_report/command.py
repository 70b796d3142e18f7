"""``livestrat report``: render a run's report into a directory and print where its files are.

``livestrat run`` and ``livestrat backtest`` do not render one (they end as soon as they are over): their
summaries print the command that does (``hint``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from decimal import Decimal

from livestrat.api.contract import ExitCode
from livestrat.api.validation import InvalidManifest
from strategy_runtime.ledger.errors import LedgerError
from strategy_runtime.local.backtest import BacktestError, run_backtest
from strategy_runtime.local.run import LEDGER_ON_THE_COMMAND_LINE
from strategy_runtime.node import CONFIGURATION_ERRORS
from strategy_runtime.paper.catalog import CatalogError
from strategy_runtime.paper.sample_data import SampleDataError
from strategy_runtime.run_report.analysis import analyse
from strategy_runtime.run_report.comparison import PaperVsBacktest, compare
from strategy_runtime.run_report.render import amounts, slippage_text, write_report
from strategy_runtime.run_report.selection import (
    Kind,
    ReportInput,
    backtest_input,
    comparable,
    ledger_input,
)


def paper_vs_backtest(
    report: ReportInput, realized: Mapping[str, Decimal]
) -> tuple[PaperVsBacktest | None, str | None]:
    """The comparison with the backtest of the same spec and window (over the catalog as ``livestrat
    backtest`` reads it), or why there is none."""
    why_not = comparable(report.config)
    if why_not is not None or report.config is None:
        return None, f"not compared: {why_not}"
    result = run_backtest(report.config)
    return compare(report.fills, result.fills, realized, result.summary.realized_pnl), None


def report_command(args: argparse.Namespace) -> int:
    if args.ledger is not None:  # argparse would echo an unknown option's DSN; this names none of it
        print(f"livestrat report: {LEDGER_ON_THE_COMMAND_LINE}", file=sys.stderr)
        return int(ExitCode.INVALID)
    try:
        report = backtest_input(args) if args.backtest else ledger_input(args)
        figures = analyse(report.fills, report.starting_balances, report.instruments)
        comparison, note = None, None
        if report.kind == Kind.PAPER_RUN:
            if args.no_compare:
                note = "not compared (--no-compare)"
            else:
                comparison, note = paper_vs_backtest(report, figures.realized_pnl)
        written = write_report(report, figures, comparison, note)
    except (
        LedgerError,
        LookupError,
        InvalidManifest,
        BacktestError,
        CatalogError,
        SampleDataError,
        *CONFIGURATION_ERRORS,
    ) as exc:  # never a DSN's password: the ledger's messages name host:port/database
        print(f"livestrat report: {exc}", file=sys.stderr)
        return int(ExitCode.INVALID)
    where = f", {report.ledger}" if report.ledger else ""
    print(f"report of {report.strategy_key} ({report.kind}{where}):")
    if not figures.fills:
        print(f"  {report.strategy_key}: no fills")
    else:
        print(f"  fills:          {figures.fills} ({figures.trades} positions)")
        print(f"  realized PnL:   {amounts(figures.realized_pnl)}")
        print(f"  commissions:    {amounts(figures.commissions)}")
        print(f"  slippage:       {slippage_text(figures)}")
    if figures.final_equity:
        print(f"  final equity:   {amounts(figures.final_equity)}")
    if comparison is not None:
        print(f"  backtest:       {comparison.verdict()}")
    elif note:
        print(f"  backtest:       {note}")
    for name, path in written.files.items():
        print(f"  {name + ':':<15} {path}")
    return 0
