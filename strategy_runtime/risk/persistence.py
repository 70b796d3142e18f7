"""What of the risk guard outlives its pod, kept in the ledger, and what the guard does while the ledger lags.

- ``record_halt``: a breach is recorded as the strategy's risk halt, retried (with backoff) for as
  long as it takes: until it is stored, a restart would trade again;
- ``restored_halt``: at start, the halt an earlier runtime recorded and nobody has acknowledged (the
  runtime starts halted), or the news that one was just acknowledged (cleared, and trading resumes);
- ``save_baseline`` / ``save_baselines``: the guard's risk baseline (the day's opening PnL and the
  peak) saved whenever it changed, so that a live strategy's loss limits hold across restarts;
- ``hold_orders_while_behind``: new orders held at the gate while the ledger is too far behind
  (fills not yet committed exist only in the process's memory), let through once it caught up.

See docs/runtime.md, "Risk guard", and docs/ledger.md for the tables.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC

from livestrat.api.contract import RISK_ACK_ANNOTATION
from livestrat.backoff import Backoff
from strategy_runtime.ledger import HaltRecord, Ledger, LedgerError
from strategy_runtime.risk.breach import Breach
from strategy_runtime.risk.guard import RiskGuard

logger = logging.getLogger("livestrat.runtime")

# Recording a risk halt is retried this often at most (with backoff from 0.2 s) until it succeeds.
HALT_RECORD_RETRY_MAX_SECONDS = 5.0
# How often a changed risk baseline is saved (a crash loses at most this much of a rising peak).
BASELINE_SAVE_SECONDS = 2.0
# How often the ledger's lag is compared with the configuration's hold thresholds.
LEDGER_WATCH_SECONDS = 0.25


async def record_halt(ledger: Ledger, record: HaltRecord) -> None:
    """Store ``record`` as the strategy's risk halt; returns only once it is stored (or when cancelled)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            await ledger.record_halt(record)
        except Exception as exc:  # whatever it is, the halt must be recorded: keep trying
            log = logger.critical if attempt % 10 == 1 else logger.error
            log(
                "runtime: the risk halt is NOT recorded in the ledger yet (attempt %d; a restart now would "
                "trade again): %s",
                attempt,
                ledger.redact(str(exc)),
            )
            await asyncio.sleep(Backoff(0.2, HALT_RECORD_RETRY_MAX_SECONDS).delay(attempt))
            continue
        if attempt > 1:
            logger.warning("runtime: the risk halt is recorded in the ledger after %d attempts", attempt)
        return


async def restored_halt(ledger: Ledger, acknowledgement: str | None) -> tuple[Breach | None, bool]:
    """The unacknowledged risk halt the ledger holds, and whether one was just acknowledged (and cleared)."""
    record = await ledger.active_halt()
    if record is None:
        return None, False
    key = ledger.strategy_key
    if acknowledgement and acknowledgement != record.acknowledgement:
        logger.warning(
            "runtime: the risk halt of %s (%s at %s) was acknowledged (%r): trading resumes",
            key,
            record.breached_limit,
            record.breached_at.isoformat(),
            acknowledgement,
        )
        await ledger.clear_halt(acknowledgement)
        return None, True
    logger.error(
        "runtime: %s is risk-halted since %s (%s: %s); it stays halted until the halt is acknowledged "
        f"(annotation {RISK_ACK_ANNOTATION})",
        key,
        record.breached_at.isoformat(),
        record.breached_limit,
        record.reason,
    )
    return Breach(record.breached_limit, record.reason, record.breached_at.astimezone(UTC)), False


async def save_baseline(ledger: Ledger, guard: RiskGuard) -> None:
    """Save the guard's risk baseline if it changed (offered again next time if saving fails)."""
    baseline = guard.take_baseline()
    if baseline is None:
        return
    try:
        await ledger.save_risk_baseline(baseline)
    except LedgerError as exc:
        guard.baseline_unsaved()
        logger.error("runtime: could not save the risk baseline (retried): %s", ledger.redact(str(exc)))


async def save_baselines(ledger: Ledger, guard: RiskGuard) -> None:
    """``save_baseline`` every ``BASELINE_SAVE_SECONDS``, until cancelled."""
    while True:
        await asyncio.sleep(BASELINE_SAVE_SECONDS)
        await save_baseline(ledger, guard)


async def hold_orders_while_behind(ledger: Ledger, guard: RiskGuard, max_pending: int, max_lag: float) -> None:
    """Hold new orders while the ledger is too far behind; let them pass once it has caught up (until cancelled).

    Fills are never dropped (the ledger retries for as long as it takes), but a process that
    dies holds its uncommitted fills in memory only: no more risk is taken until they are in.
    """
    while True:
        await asyncio.sleep(LEDGER_WATCH_SECONDS)
        lag = ledger.lag()
        if lag.writer_stopped:
            guard.hold(f"the ledger cannot commit ({lag.last_error})")
        elif lag.pending > max_pending or lag.oldest_pending_seconds > max_lag:
            guard.hold(
                f"the ledger is behind: {lag.pending} fill(s) not committed, the oldest for "
                f"{lag.oldest_pending_seconds:.0f}s (limits {max_pending} fills, {max_lag:g}s; "
                f"last error: {lag.last_error or 'none'})"
            )
        elif lag.pending <= max_pending / 2 and lag.oldest_pending_seconds <= max_lag / 2:
            guard.release()
