"""Fills written out for people and spreadsheets: JSON (exact decimals as strings) and CSV (the ledger's columns).

One place for the shape of an exported fill, whoever exports: ``livestrat run --fills-json/--fills-csv``,
``livestrat backtest --fills-json``, ``livestrat fills``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from strategy_runtime.ledger.records import COLUMNS, DECIMAL_COLUMNS, FillRecord


def fill_to_json(fill: FillRecord) -> dict[str, Any]:
    row = asdict(fill)
    for key in DECIMAL_COLUMNS:
        row[key] = None if row[key] is None else str(row[key])
    row["side"] = fill.side.value
    return row


def fills_json(fills: Sequence[FillRecord]) -> str:
    return json.dumps([fill_to_json(f) for f in fills], indent=1) + "\n"


def fills_csv(fills: Sequence[FillRecord]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for fill in fills:
        row = fill_to_json(fill)
        writer.writerow(["" if row[c] is None else row[c] for c in COLUMNS])
    return out.getvalue()


def write_fills(path: str | Path, fills: Sequence[FillRecord], *, as_csv: bool) -> Path:
    """``fills`` into ``path`` (its directory made), as CSV or JSON; the path written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(fills_csv(fills) if as_csv else fills_json(fills))
    return target
