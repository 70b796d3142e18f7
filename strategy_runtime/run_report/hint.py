"""The ``livestrat report`` command a run or a backtest prints in its summary, to make its report.

Kept apart from the report's code (matplotlib, plotly, the analyzer): printing the hint imports nothing.
"""

from __future__ import annotations

import shlex
from pathlib import Path

DEFAULT_WORKDIR = Path(".livestrat")


def report_command_line(
    file: str,
    workdir: str | Path,
    *,
    strategy_key: str | None = None,
    catalog: str | None = None,
    ledger_file: str | None = None,
    backtest: bool = False,
) -> str:
    """``livestrat report FILE …`` for the run of ``strategy_key`` (its catalog, and the DSN where the run took
    it), or for the backtest."""
    words = ["livestrat", "report", file]
    if Path(workdir) != DEFAULT_WORKDIR:
        words += ["--workdir", str(workdir)]
    if catalog:
        words += ["--catalog", catalog]
    if backtest:
        words.append("--backtest")
    if ledger_file:
        words += ["--ledger-file", ledger_file]
    if strategy_key:
        words += ["--strategy", strategy_key]
    return shlex.join(words)
