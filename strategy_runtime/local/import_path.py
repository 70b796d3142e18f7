"""Where a local run finds the user's own strategy code: the manifest's directory, and ``--path DIR``.

A pod imports the strategy from its image; on a laptop the strategy is usually a ``.py`` file next
to the manifest (``strategyPath: my_strategy:MyStrategy``), so ``livestrat run`` and ``livestrat
backtest`` put the manifest's directory, then each ``--path DIR`` in order, on ``sys.path``.
They go after the installed packages: a file named like one of them (``logging.py``,
``nautilus_trader.py``) cannot shadow what livestrat and NautilusTrader import.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path


def strategy_directories(manifest: Path, paths: Sequence[str] = ()) -> list[str]:
    """The directories a local run imports the strategy from, besides the installed packages."""
    found: list[str] = []
    for directory in (manifest.absolute().parent, *(Path(p).absolute() for p in paths)):
        if str(directory) not in found:
            found.append(str(directory))
    return found


def add_strategy_directories(manifest: Path, paths: Sequence[str] = ()) -> None:
    """Append ``strategy_directories`` to ``sys.path`` (those not on it already)."""
    sys.path.extend(d for d in strategy_directories(manifest, paths) if d not in sys.path)
