"""A paper run's fills against the backtest of the same spec over the same catalog: a promotion's evidence.

The backtest is the paper runtime's correctness oracle (docs/runtime.md, "Backtest oracle"): the same strategy
on the same data gives the same fills, with the same trade ids. When a paper replay finishes, the runtime runs
that backtest (``livestrat backtest``'s own :func:`~strategy_runtime.local.backtest.run_backtest`) in a child
process, so that a second NautilusTrader kernel never shares the running node's process, compares its fills with
the ledger's for the run (:func:`compare`), and reports the result in ``status.trading.backtest``, where the
operator reads it for ``spec.promotion.criteria.maxBacktestMismatches``. The figure is the runtime's, written
with the pod's own identity into its own status: no client supplies it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from livestrat.api.promotion import BacktestAgreement
from livestrat.api.runtime_config import RuntimeConfig
from strategy_runtime.ledger.records import FillRecord, fill_from_columns
from strategy_runtime.timestamps import utc_text, utc_text_from_ns

BACKTEST_TIMEOUT_SECONDS = 600.0


def _key(fill: FillRecord) -> tuple[str, str]:
    return fill.instrument_id, fill.trade_id


def compare(
    paper: Sequence[FillRecord],
    backtest: Sequence[FillRecord],
    before_ns: int | None = None,
    last_event: str = "the replay's last event",
) -> BacktestAgreement:
    """Fills matched by (instrument, trade id); a mismatch is a fill only in one of them, or a matched pair that
    differs in side, quantity or price.

    ``before_ns``: only fills before this market time count, on both sides: the last event of the data both ran on
    (``last_event`` says which: a replay's, or the recorded window's of a paper run on a live feed). A backtest
    ends by stopping its strategy at the last event's time (NautilusTrader's example strategies close their
    positions then), which a paper strategy that keeps running has not done: its fills at that time are no
    evidence either way."""
    window = [f for f in backtest if before_ns is None or f.ts_event < before_ns]
    theirs = {_key(f): f for f in window}
    ours = {_key(f): f for f in paper if before_ns is None or f.ts_event < before_ns}
    matched = [k for k in ours if k in theirs]
    differing = [
        k
        for k in matched
        if (ours[k].side, ours[k].quantity, ours[k].price) != (theirs[k].side, theirs[k].quantity, theirs[k].price)
    ]
    only_paper, only_backtest = len(ours) - len(matched), len(theirs) - len(matched)
    mismatches = only_paper + only_backtest + len(differing)
    if mismatches == 0:
        message = f"the same {len(matched)} fills at the same prices as the backtest"
    else:
        message = (
            f"paper {len(ours)} fills, backtest {len(theirs)}: {only_paper} only in paper, {only_backtest} only in "
            f"the backtest, {len(differing)} matched fills differ in side, quantity or price"
        )
    if before_ns is not None:
        message += f" (fills before {utc_text_from_ns(before_ns)}, {last_event})"
    return BacktestAgreement(
        checked_at=utc_text(),
        paper_fills=len(ours),
        backtest_fills=len(theirs),
        matched=len(matched),
        mismatches=mismatches,
        message=message,
    )


def _from_json(row: dict[str, object]) -> FillRecord:
    return fill_from_columns(row)


async def backtest_fills(config: RuntimeConfig, workdir: Path) -> list[FillRecord]:
    """The fills of the backtest of ``config``'s spec over its catalog, from a child process."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path, fills_path = workdir / "backtest-runtime.json", workdir / "backtest-fills.json"
    config_path.write_text(config.dumps())
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        str(config_path),
        str(fills_path),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), BACKTEST_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise RuntimeError(f"the backtest did not finish within {BACKTEST_TIMEOUT_SECONDS:.0f}s") from None
    except asyncio.CancelledError:  # the runtime stops: its child goes with it
        process.kill()
        raise
    if process.returncode != 0:
        last = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the backtest failed (exit {process.returncode}): {last}")
    return [_from_json(row) for row in json.loads(fills_path.read_text())]


def main(argv: Sequence[str]) -> int:
    """``python -m strategy_runtime.backtest_agreement RUNTIME_JSON FILLS_JSON``: the backtest, its fills as JSON."""
    from strategy_runtime.ledger.export import write_fills
    from strategy_runtime.local.backtest import run_backtest

    config_path, fills_path = argv
    result = run_backtest(RuntimeConfig.load(Path(config_path)))
    write_fills(fills_path, result.fills, as_csv=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
