"""What of the risk guard outlives its pod, kept in the ledger, and what the guard does while the ledger lags.

- ``record_halt``: a breach is recorded as the strategy's risk halt, retried (with backoff) for as
  long as it takes: until it is stored, a restart would trade again;
- ``restored_halt``: at start, the halt an earlier runtime recorded and nobody has acknowledged (the
  runtime starts halted), or the news that one was just acknowledged (cleared, and trading resumes);
- ``save_baseline`` / ``save_baselines``: the guard's risk baseline (the day's opening PnL and the
  peak) saved whenever it changed, so that a live strategy's loss limits hold across restarts;
- ``hold_orders_while_behind``: new orders held at the gate while fills cannot be made durable
  (neither committed nor in the spool: they exist only in the process's memory), let through
  once they are.

See docs/runtime.md, "Risk guard", and docs/ledger.md for the tables.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC

from livestrat.api.contract import RISK_ACK_ANNOTATION
from livestrat.backoff import Backoff
from strategy_runtime.ledger import FenceTaken, HaltRecord, Ledger, LedgerError
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
        except FenceTaken as exc:  # another runtime holds the strategy now: this one's halt is not its to record
            logger.critical("runtime: the risk halt cannot be recorded in the ledger: %s", ledger.redact(str(exc)))
            return
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
    market = record.breached_at_market.astimezone(UTC) if record.breached_at_market is not None else None
    return Breach(record.breached_limit, record.reason, record.breached_at.astimezone(UTC), market), False


async def save_baseline(ledger: Ledger, guard: RiskGuard) -> None:
    """Save the guard's risk baseline if it changed (offered again next time if saving fails)."""
    if not ledger.fence_held:
        return  # another runtime may hold the strategy: the ledger refuses this one's writes
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
    """Hold new orders while fills cannot be made durable; let them pass once they are again (until cancelled).

    A fill is durable once the database has committed it or the spool has synced it to the pod's
    disk. Fills are never dropped (both are retried for as long as it takes), but one that is
    neither lives in this process's memory only, and a process that dies loses it: no more risk is
    taken while more than ``max_pending`` of them wait, or the oldest has waited ``max_lag``
    seconds, or the spool and the database are both failing (a full disk during an outage).
    Orders pass again once under half of both limits and one of the two works.
    """
    while True:
        await asyncio.sleep(LEDGER_WATCH_SECONDS)
        lag = ledger.lag()
        if lag.writer_stopped:
            guard.hold(f"the ledger cannot commit ({lag.last_error})")
        elif lag.not_durable > max_pending or lag.oldest_not_durable_seconds > max_lag:
            spool = lag.spool_error or "no error" if ledger.spool_directory else "none"
            guard.hold(
                f"the ledger is behind: {lag.not_durable} fill(s) not durable (neither committed nor in the spool), "
                f"the oldest for {lag.oldest_not_durable_seconds:.0f}s (limits {max_pending} fills, {max_lag:g}s; "
                f"last error: {lag.last_error or 'none'}; spool: {spool})"
            )
        elif lag.spool_error is not None and lag.consecutive_failures:
            guard.hold(
                f"fills cannot be made durable: the spool fails ({lag.spool_error}) and so does the ledger "
                f"({lag.last_error})"
            )
        elif lag.not_durable <= max_pending / 2 and lag.oldest_not_durable_seconds <= max_lag / 2:
            guard.release()
