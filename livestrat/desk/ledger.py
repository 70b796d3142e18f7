"""A strategy's fills, read from its ledger by the desk (``fills``, ``status --ledger-file``, ``report --ledger-file``).

The runtime serves no fills over HTTP (its port has ``/state``, ``/metrics`` and the probes), and a paper strategy's
SQLite ledger lives on its pod's scratch volume: the desk reads a PostgreSQL ledger directly, read-only, with the
runtime's own reader (:mod:`strategy_runtime.ledger.reader`: never a write, never the strategy's fence), under the key
the status names (``status.trading.ledgerKey``). The DSN comes from a file or ``$LIVESTRAT_LEDGER_DSN``, never from
the command line; errors name ``host:port/database``, never the password.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livestrat.api.runtime_config import ENV_LEDGER_DSN
from livestrat.desk.cluster import DeskError
from livestrat.desk.fleet import StrategyRow


@dataclass(frozen=True)
class LedgerFills:
    key: str  # the ledger key read
    where: str  # host:port/database
    fills: list[Any]  # strategy_runtime.ledger.records.FillRecord, in the ledger's order


def ledger_key(row: StrategyRow) -> str:
    trading = row.status.trading
    return (trading.ledger_key if trading else None) or f"{row.namespace}/{row.name}"


def given_dsn(ledger_file: Path | None, environ: Mapping[str, str] = os.environ) -> tuple[str, str] | None:
    """(DSN, where it came from), or None when neither ``--ledger-file`` nor ``$LIVESTRAT_LEDGER_DSN`` gives one."""
    if ledger_file is not None:
        try:
            text = ledger_file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise DeskError(
                f"cannot read --ledger-file {ledger_file}: {getattr(exc, 'strerror', None) or 'not text'}"
            ) from None
        if not text.strip():
            raise DeskError(
                f"--ledger-file {ledger_file} is empty: write the ledger's DSN in it (postgresql://USER:PASSWORD@HOST/DB)"
            )
        return text, f"--ledger-file {ledger_file}"
    if environ.get(ENV_LEDGER_DSN):
        return environ[ENV_LEDGER_DSN], ENV_LEDGER_DSN
    return None


def no_dsn(row: StrategyRow) -> DeskError:
    return DeskError(
        f"the fills of {row.key} are in its ledger (key {ledger_key(row)!r}), which the desk reads directly: the "
        f"runtime serves no fills over HTTP. Give the ledger's PostgreSQL DSN in a file (--ledger-file PATH) or in "
        f"${ENV_LEDGER_DSN}; never on the command line. The status shows {row.fills} fill(s)"
    )


async def read_fills(row: StrategyRow, dsn: tuple[str, str]) -> LedgerFills:
    try:
        from strategy_runtime.ledger.dsn import DsnParts
        from strategy_runtime.ledger.errors import LedgerError
        from strategy_runtime.ledger.reader import LedgerSource
    except ImportError as exc:  # the desk extra alone has no PostgreSQL driver
        raise DeskError(
            f"reading a ledger needs livestrat's runtime extra (pip install 'livestrat[runtime]'): {exc}"
        ) from None
    key = ledger_key(row)
    try:
        source = LedgerSource(postgres=DsnParts.parse(*dsn))
        return LedgerFills(key, source.describe(), await source.fills(key))
    except LedgerError as exc:  # its messages name host:port/database, never the password
        raise DeskError(str(exc)) from None


def fill_rows(fills: list[Any]) -> list[dict[str, Any]]:
    from strategy_runtime.ledger.export import fill_to_json

    return [fill_to_json(fill) for fill in fills]


def csv_text(fills: list[Any]) -> str:
    from strategy_runtime.ledger.export import fills_csv

    return fills_csv(fills)


def json_text(fills: list[Any]) -> str:
    from strategy_runtime.ledger.export import fills_json

    return fills_json(fills)
