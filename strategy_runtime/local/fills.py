"""``livestrat fills``: a strategy's fills from any ledger, or the strategies a ledger holds.

Read-only (:mod:`strategy_runtime.ledger.reader`): it can be pointed at the ledger of a strategy that
trades right now without disturbing it. The DSN comes as it does for ``livestrat run``: from
``LIVESTRAT_LEDGER_DSN`` or a file (``--ledger-file``), never from the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from livestrat.api.contract import ExitCode
from strategy_runtime.ledger.dsn import DsnParts
from strategy_runtime.ledger.errors import LedgerError
from strategy_runtime.ledger.export import fills_csv, fills_json, write_fills
from strategy_runtime.ledger.reader import LedgerSource, pick_strategy
from strategy_runtime.local.run import given_dsn

NO_LEDGER = (
    "name a ledger: --sqlite PATH (livestrat run's is WORKDIR/state/NAME/ledger.sqlite), or a PostgreSQL DSN in "
    "LIVESTRAT_LEDGER_DSN or in a file (--ledger-file PATH)"
)


def source_of(args: argparse.Namespace) -> LedgerSource:
    """The ledger the arguments name (LedgerError when they name none, or two)."""
    given = given_dsn(args, os.environ)
    if args.sqlite and given:
        raise LedgerError(f"--sqlite and a PostgreSQL DSN ({given[1]}) both name a ledger: give one")
    if args.sqlite:
        return LedgerSource(sqlite=Path(args.sqlite))
    if given:
        return LedgerSource(postgres=DsnParts.parse(*given))
    raise LedgerError(NO_LEDGER)


def fills_command(args: argparse.Namespace) -> int:
    try:
        source = source_of(args)
        keys = asyncio.run(source.strategies())
        if args.strategy is None:
            if not keys:
                print(f"{source.describe()} holds no fills")
            for key, count in keys.items():
                print(f"{key}\t{count} fills")
            return 0
        key = pick_strategy(keys, args.strategy)
        fills = asyncio.run(source.fills(key))
    except (LedgerError, LookupError) as exc:  # never the DSN's password: the messages name host:port/db
        print(f"livestrat fills: {exc}", file=sys.stderr)
        return int(ExitCode.INVALID)
    as_csv = args.format == "csv"
    if args.output:
        path = write_fills(args.output, fills, as_csv=as_csv)
        print(f"{len(fills)} fills of {key} written to {path}", file=sys.stderr)
    else:
        sys.stdout.write(fills_csv(fills) if as_csv else fills_json(fills))
    return 0
