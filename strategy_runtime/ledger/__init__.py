"""The fills ledger: every fill of a strategy stored exactly once, and the fence that keeps a strategy single.

``ledger_for(config)`` picks the backend the runtime configuration names: PostgreSQL (DSN
from ``LIVESTRAT_LEDGER_DSN``) in a cluster, an SQLite file for local runs. See docs/ledger.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from livestrat.api.contract import SQLITE_FILE_NAME
from livestrat.api.runtime_config import ENV_LEDGER_DSN, LedgerKind, RuntimeConfig
from livestrat.api.spec import Mode
from strategy_runtime.ledger.base import Ledger, LedgerLag, Migration
from strategy_runtime.ledger.dsn import DsnParts, InvalidDsn
from strategy_runtime.ledger.errors import (
    LedgerClosed,
    LedgerError,
    LedgerFlushTimeout,
    LedgerSchemaError,
    LedgerUnavailable,
)
from strategy_runtime.ledger.fencing import FENCE_LEASE_SECONDS, FencedOut, FenceHolder, FenceTaken
from strategy_runtime.ledger.postgres import PostgresLedger
from strategy_runtime.ledger.records import (
    FillRecord,
    HaltRecord,
    RiskBaseline,
    Side,
    from_order_filled,
    run_key,
    strategy_of,
)
from strategy_runtime.ledger.spool import FillSpool, spool_directory
from strategy_runtime.ledger.sqlite import SqliteLedger
from strategy_runtime.ledger.writer import CommittedBatch, WriteResult

__all__ = [
    "FENCE_LEASE_SECONDS",
    "CommittedBatch",
    "DsnParts",
    "FenceHolder",
    "FenceTaken",
    "FencedOut",
    "FillRecord",
    "FillSpool",
    "HaltRecord",
    "InvalidDsn",
    "Ledger",
    "LedgerClosed",
    "LedgerError",
    "LedgerFlushTimeout",
    "LedgerLag",
    "LedgerSchemaError",
    "LedgerUnavailable",
    "Migration",
    "PostgresLedger",
    "RiskBaseline",
    "Side",
    "SqliteLedger",
    "WriteResult",
    "from_order_filled",
    "ledger_for",
    "run_key",
    "spool_directory",
    "strategy_of",
]


def ledger_for(config: RuntimeConfig, environ: Mapping[str, str] = os.environ, **options: Any) -> Ledger:
    """The (unopened) ledger the runtime configuration names; ``options`` go to the backend.

    A paper strategy's ledger records each start as a run of its own (``runs``, docs/ledger.md, "Runs"):
    every start is a fresh simulated account. A live strategy's account persists across restarts, and
    so does its one key.
    """
    key = config.strategy.key
    options.setdefault("runs", config.spec.mode == Mode.PAPER)
    if config.ledger.kind == LedgerKind.POSTGRESQL:
        dsn = environ.get(ENV_LEDGER_DSN)
        if not dsn:
            raise LedgerError(
                f"the ledger of {key!r} is PostgreSQL but {ENV_LEDGER_DSN} is not set: in a cluster the operator "
                "fills it from spec.ledger.dsnSecret; check that the Secret and its key exist"
            )
        try:
            where = DsnParts.parse(dsn, ENV_LEDGER_DSN)
        except InvalidDsn as exc:
            raise InvalidDsn(
                f"{exc}. In a cluster the operator fills {ENV_LEDGER_DSN} from the Secret spec.ledger.dsnSecret "
                "names: correct the DSN there"
            ) from None
        return PostgresLedger(where, key, **options)
    path = config.ledger.sqlite_path or Path(config.state_dir) / SQLITE_FILE_NAME
    return SqliteLedger(path, key, **options)
