"""One strategy runtime: the composition both ``livestrat runtime`` (a pod) and ``livestrat run`` use.

``StrategyRuntime(config, options).run()`` goes through the same steps for both:

1. open the ledger and take the strategy's fence: another runtime holding it means this one
   refuses to trade (``EXIT_FENCED_OUT``, the ledger's message says who holds it); what the
   fill spool kept from an earlier run is committed first;
2. read the risk halt the ledger may hold (a halt survives restarts until acknowledged);
3. build the node (``strategy_runtime.node``) with the reporter and the risk guard as actors,
   our own SIGTERM/SIGINT handler and the node's shutdown requests routed to the halt;
4. serve HTTP and push status (pod), wait out a predecessor's fence lease if it did not release
   the fence, start the node, and wait for a reason to stop: a
   signal, a lost ledger fence, the node asking to shut down or dying, or (local runs
   only) the end of the replay; a pod whose replay ended stays up, idle and reporting,
   since exiting would make the StatefulSet restart it and replay again;
5. run the halt sequence (``strategy_runtime.halt``) within ``halt_budget_seconds`` and
   return the exit code. Only a halt applies ``haltPolicy`` (``strategy_runtime.stop_cause``):
   a pod's SIGTERM is one when its LiveStrategy says so at that moment (the operator's
   ``status.halt``, or a deletion); a failure, a lost fence or any other SIGTERM (a rollout, an
   eviction, a drain) cancels the orders and never flattens. In a local run the person at the
   terminal asked: Ctrl-C and the end of the replay are halts.

A risk breach on the way halts trading in place (cancel, flatten per policy, HALTED),
records the halt in the ledger and keeps reporting; the operator decides what happens to
the pod (``onBreach``).

This module is one concern, longer than most: the runtime's lifecycle, the order in which its
parts are opened, started, watched and halted, and what each step does when it fails. The parts
live elsewhere: the ledger (``ledger/``), the node (``node``), the reporter and what the runtime
reports when asked (``report/``, ``report/state.py``), the risk guard and what of a risk halt
outlives the pod (``risk/``, ``risk/persistence.py``), the halt (``halt``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from livestrat.api.contract import ExitCode
from livestrat.api.promotion import BacktestAgreement
from livestrat.api.runtime_config import LedgerKind, RuntimeConfig
from livestrat.api.spec import HaltPolicy, Mode
from livestrat.api.status import NodeState, ReplayProgress, RiskState, TradingState
from strategy_runtime import backtest_agreement, portfolio_view
from strategy_runtime.halt import STEP_DEADLINES, HaltReport, HaltSequence, TradingHalt
from strategy_runtime.ledger import (
    CommittedBatch,
    FencedOut,
    FillRecord,
    FillSpool,
    HaltRecord,
    Ledger,
    LedgerError,
    ledger_for,
    spool_directory,
)
from strategy_runtime.node import CONFIGURATION_ERRORS, StrategyNode, build_node
from strategy_runtime.paper.catalog import StrategyCatalog
from strategy_runtime.paper.sample_data import SampleDataError
from strategy_runtime.paper.window_recording import WindowCheck, records_its_window
from strategy_runtime.pnl import ContractTerms, to_decimal
from strategy_runtime.report.http_server import RuntimeHttpServer
from strategy_runtime.report.metrics import LoopLagMeter, RuntimeMetrics, new_registry
from strategy_runtime.report.reporter import Reporter, ReporterConfig
from strategy_runtime.report.state import runtime_metrics, state_document
from strategy_runtime.report.status_push import KubernetesStatusApi, StatusApi, StatusPusher, StatusSnapshot
from strategy_runtime.risk import persistence
from strategy_runtime.risk.breach import Breach
from strategy_runtime.risk.guard import RiskGuard, RiskGuardConfig
from strategy_runtime.risk.limits import PnlHistory
from strategy_runtime.risk.share import ShareUnreadable, read_share
from strategy_runtime.stop_cause import StopCause, ask_the_operator, halt, known, not_a_halt
from strategy_runtime.thread_switch import prompt_thread_switches

logger = logging.getLogger("livestrat.runtime")

# How long the push before the node starts may take (its answer brings the RiskBudget share); then it starts anyway.
FIRST_PUSH_SECONDS = 2.0

EXIT_OK = ExitCode.OK
EXIT_FAILED = ExitCode.FAILED  # the node failed or asked to shut down after an error
EXIT_INVALID = ExitCode.INVALID  # the spec cannot run (strategy, catalog, venue settings)
EXIT_FENCED_OUT = ExitCode.FENCED_OUT  # another runtime trades this strategy
EXIT_FENCE_LOST = ExitCode.FENCE_LOST  # the fence was lost while running: stopped trading at once
EXIT_HALT_INCOMPLETE = ExitCode.HALT_INCOMPLETE  # the halt left orders open at a venue (or, under flatten, a position)

# A risk halt that left orders open (or a position, under flatten) tries again this often.
RECONTAIN_SECONDS = 5.0
# A fill waiting longer than this for the ledger's commit makes the runtime not ready (the ledger is stalled).
LEDGER_UNREADY_AFTER_SECONDS = 5.0
# What of the fills' flush the halt keeps for itself: past it, what the spool holds is left for the next start.
HALT_FLUSH_MARGIN_SECONDS = 0.2
# What a user fixes in the spec or its data (reported as InvalidSpec by the operator).
SPEC_ERRORS = (*CONFIGURATION_ERRORS, SampleDataError)


def halt_record_window(halt_budget_seconds: float) -> float:
    """How long a SIGTERM's read of the halt record (``stop_cause.ask_the_operator``) may take, failed reads asked
    again: the cancel share of the halt budget (the cancels run meanwhile), leaving the flatten the rest of its."""
    return halt_budget_seconds * STEP_DEADLINES["cancel"]


@dataclass(frozen=True)
class RuntimeOptions:
    """How a runtime runs: as a pod (HTTP, status push, stays up after a replay) or locally."""

    serve_http: bool = True  # on the configuration's address and port (http_bind_host, http_port)
    push_status: bool = True
    stop_when_replay_finishes: bool = False
    fence_wait_seconds: float | None = None  # None: the configuration's (a pod waits for a predecessor)
    log_level: str | None = None
    # Holds the credentials and the ledger DSN: never in a repr (a log line or a traceback).
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)
    catalog: StrategyCatalog | None = None  # prepared by the caller (local runs report the sample)
    status_api: StatusApi | None = None  # default: the Kubernetes API (in-cluster or kubeconfig)
    keep_fills: bool = False  # read every fill back from the ledger before closing it (local summary)
    # Tests read the node's cache after the run; NautilusTrader 1.231's dispose() resets it, so a
    # caller that sets this disposes the node itself (StrategyNode.dispose) when it has read it.
    dispose_node: bool = True
    on_ledger_commit: Callable[[CommittedBatch], None] | None = None  # each committed batch (benchmarks)
    # The CLI keeps the halt's watchdog armed through the event loop's teardown and disarms it
    # (disarm_watchdog) once asyncio.run has returned; in-process users have it disarmed by run().
    keep_watchdog_armed: bool = False
    # A signal is the person at the terminal asking for a halt (livestrat run). In a pod a SIGTERM is a
    # halt only when the LiveStrategy says so (its status.halt, or its deletion), read at that moment.
    signals_halt: bool = False
    # A rehearsal (livestrat rehearse): a live spec against the venue emulator on this machine, where an
    # SQLite ledger is allowed (no real money, and the emulated account lives no longer than the run).
    rehearsal: bool = False


@dataclass
class RunOutcome:
    exit_code: int
    reason: str
    ledger_where: str | None = None
    strategy_key: str | None = None
    snapshot: StatusSnapshot | None = None
    pnl: portfolio_view.PnlView | None = None  # the one book's (strategy_runtime.book_view)
    halt: HaltReport | None = None
    ledger_fills: list[FillRecord] | None = None
    # What the node's own portfolio says at the end: a cross-check only (it can miss a fill it failed to apply).
    node_pnl: portfolio_view.PnlView | None = None
    node_positions: dict[str, Decimal] | None = None
    # The books' contract terms by instrument (recomputing the ledger's fills needs them: a spot pair's base)
    # and, per PnL currency, the commissions paid in a base valued at their fills (the node's PnL leaves them out).
    terms: dict[str, ContractTerms] = field(default_factory=dict)
    commission_values: dict[str, Decimal] = field(default_factory=dict)


class StrategyRuntime:
    """See the module docstring. One instance runs once."""

    def __init__(self, config: RuntimeConfig, options: RuntimeOptions | None = None) -> None:
        self.config = config
        self.options = options or RuntimeOptions()
        self.key = config.strategy.key
        self.node_state = NodeState.STARTING
        self.ledger: Ledger | None = None
        self.backtest: BacktestAgreement | None = None  # the replay's (or the live feed's window's) agreement
        self.window: WindowCheck | None = None  # paper on a live feed: its window, recorded for the backtest
        self.node: StrategyNode | None = None
        self.reporter: Reporter | None = None
        self.guard: RiskGuard | None = None
        self.trading: TradingHalt | None = None
        self.pusher: StatusPusher | None = None
        self._budget_seen: Any = None  # status.budget as last answered: read again only when it changes
        self.http: RuntimeHttpServer | None = None
        self.registry = new_registry(self.metrics)
        self.lag = LoopLagMeter(self.registry)
        self._stop = asyncio.Event()
        self._stop_reason = ""
        self._exit_code = EXIT_OK
        self._stop_cause: asyncio.Future[StopCause] | None = None  # whether the stop is a halt (or its lookup)
        self._status_api: StatusApi | None = None  # also reads the LiveStrategy at SIGTERM (its halt record)
        self._breach_task: asyncio.Task[None] | None = None
        self._persist_task: asyncio.Task[None] | None = None
        self._background: list[asyncio.Task[None]] = []
        # None: no risk halt; False while one is not (yet) recorded in the ledger; True once it is.
        self.halt_recorded: bool | None = None
        self._fills_read: list[FillRecord] | None = None
        self.halt_report: HaltReport | None = None
        self._halt_sequence: HaltSequence | None = None
        self.started_at = time.monotonic()
        self.ready_at: float | None = None

    # ------------------------------------------------------------------ stop requests
    def request_stop(
        self,
        reason: str,
        exit_code: int = EXIT_OK,
        *,
        cause: StopCause | asyncio.Future[StopCause] | None = None,
    ) -> None:
        """Stop and halt; ``cause`` says whether it is a halt (``haltPolicy`` applies), or is looking it up.
        None: a halt, asked for by the caller (in-process users; the end of a local run)."""
        if self._stop.is_set():
            logger.warning("runtime: %s, but already halting (%s)", reason, self._stop_reason)
            if isinstance(cause, asyncio.Future):
                cause.cancel()
            return
        if cause is None:
            cause = halt(reason)
        self._stop_reason, self._exit_code = reason, exit_code
        self._stop_cause = known(cause) if isinstance(cause, StopCause) else cause
        self._stop.set()

    def _on_signal(self, sig: signal.Signals) -> None:
        reason = f"received {sig.name}"
        if self.options.signals_halt:
            self.request_stop(reason, cause=halt(f"{reason} from the person running it"))
        elif self._status_api is None:
            self.request_stop(reason, cause=not_a_halt("no API server to read the halt record from"))
        else:
            # Asked now, beside the cancels every stop makes; only the flatten step waits for the answer.
            window = halt_record_window(self.config.halt_budget_seconds)
            api = self._status_api
            lookup = ask_the_operator(api.read_own, self.config.strategy.uid, window, read_namespace=api.read_namespace)
            self.request_stop(reason, cause=asyncio.ensure_future(lookup))

    def _on_shutdown_request(self, command: Any) -> None:
        why = getattr(command, "reason", None) or "no reason given"
        message = f"the node asked to shut down ({why})"
        self.request_stop(message, EXIT_FAILED, cause=not_a_halt(f"{message}: the pod restarts"))

    def _on_fence_lost(self, reason: str) -> None:
        # Another runtime may be trading this strategy now: not one more order, not even a close.
        message = f"the ledger fence was lost ({reason}): another runtime may trade this strategy"
        logger.error("runtime: %s; trading stops now", message)
        if self.trading is not None:
            self.trading.stop_trading_now(message)
        # Not a halt: the position may now be the other runtime's to manage.
        self.request_stop(message, EXIT_FENCE_LOST, cause=not_a_halt(message))

    def _on_breach(self, breach: Breach) -> None:
        # Called inside a message handler of the node: the gate is already shut. Containing the
        # trading and recording the halt (so that a restart does not trade) both start now.
        loop = asyncio.get_running_loop()
        first_round: asyncio.Future[None] = loop.create_future()
        self._breach_task = loop.create_task(self._contain_breach(breach, first_round), name="risk-halt")
        self._persist_task = loop.create_task(self._persist_halt(breach), name="risk-halt-record")
        replay = self.node.replay if self.node is not None else None
        if replay is not None:  # contained at the breach's market time, as the backtest does
            replay.hold(first_round)

    async def _contain_breach(self, breach: Breach, first_round: asyncio.Future[None] | None = None) -> None:
        """Cancel, flatten per policy, HALTED, with the halt's deadlines; again every few seconds until clean.
        ``first_round`` is done once the first containment is over (or abandoned)."""
        try:
            await self._keep_containing(breach, first_round)
        finally:
            if first_round is not None and not first_round.done():
                first_round.set_result(None)

    async def _keep_containing(self, breach: Breach, first_round: asyncio.Future[None] | None) -> None:
        policy = self.config.spec.halt_policy
        while True:
            left, flat = await self._contain(breach)
            if first_round is not None and not first_round.done():
                first_round.set_result(None)
            clean = left == 0 and (flat or policy != HaltPolicy.FLATTEN)
            logger.error(
                "runtime: risk halt (%s): %d order(s) left open, %s; trading stays halted until acknowledged",
                breach.limit,
                left,
                "flat" if flat else "positions open",
            )
            if clean or self._stop.is_set():
                return
            await asyncio.sleep(RECONTAIN_SECONDS)  # a venue slow to cancel: keep at it

    async def _persist_halt(self, breach: Breach) -> None:
        assert self.ledger is not None
        record = HaltRecord(
            breached_limit=breach.limit,
            reason=breach.reason,
            breached_at=breach.at,
            breached_at_market=breach.market_at,
            owner=self.ledger.owner,
            acknowledgement=self.config.risk_acknowledgement,
        )
        # Until it is recorded a restart would trade again: the gate stays shut, /readyz answers 503
        # and the status says haltRecorded: false, for as long as it takes (or until the process exits).
        self.halt_recorded = False
        await persistence.record_halt(self.ledger, record)
        self.halt_recorded = True

    async def _check_replay(self) -> None:
        replay = self.node.replay if self.node is not None else None
        until = replay.progress.market_time_ns if replay is not None else None
        await self._check_backtest(self.config, until, "the replay's last event")

    async def _check_backtest(self, config: RuntimeConfig, until: int | None, last_event: str) -> None:
        """The paper fills before ``until`` against the backtest of ``config`` (the same spec, over the replay's
        catalog or the live feed's recorded window: ``paper.window_recording``), a promotion's evidence
        (docs/promotion.md); a backtest that fails is reported as such, with no figures a promotion could pass on."""
        assert self.ledger is not None
        try:
            theirs = await backtest_agreement.backtest_fills(config, Path(self.config.state_dir) / "backtest")
            await self.ledger.flush()  # the last fills may still be on their way to the database
            self.backtest = backtest_agreement.compare(await self.ledger.fills(), theirs, until, last_event)
        except Exception as exc:  # reported, never fatal: the node keeps reporting
            logger.warning("runtime: the backtest up to %s could not be compared: %s", last_event, exc)
            return
        logger.info("runtime: the paper fills against their backtest: %s", self.backtest.message)

    async def _check_window(self, deadline: float) -> None:
        """The live feed's window backtested at a clean stop, within ``deadline``; else the last check stands."""
        if self.window is None:
            return
        try:
            await asyncio.wait_for(self.window.check(), deadline - time.monotonic())
        except TimeoutError:
            logger.warning("runtime: no time left in the halt to backtest the window; the last check stands")
        except Exception as exc:  # the window could not be written: never a reason for the halt to fail
            logger.warning("runtime: the window could not be recorded for its backtest: %s", exc)

    # ------------------------------------------------------------------ what it reports
    def replay_progress(self) -> ReplayProgress | None:
        replay = self.node.replay if self.node is not None else None
        if replay is None:
            return None
        progress = replay.progress
        return ReplayProgress(events=progress.events, total=progress.total or 0, finished=progress.finished)

    def _on_own_object(self, own: Mapping[str, Any]) -> None:
        """The LiveStrategy as the API server answered a status push: the operator's share of a RiskBudget
        (``status.budget``) goes to the guard, in force from the next order, without a restart."""
        budget = (own.get("status") or {}).get("budget")
        if budget == self._budget_seen or self.guard is None:
            return
        self._budget_seen = budget
        try:
            share = read_share(budget)
        except ShareUnreadable as exc:
            # Not a reason to trade without a share, nor to stop: the share read last stays in force.
            logger.error("runtime: %s; the share read last stays in force", exc)
            return
        self.guard.set_share(share)

    def _on_another_object(self, uid: str) -> None:
        """The LiveStrategy of this pod's name is another object (deleted and applied again while this pod ran): the
        one this pod runs for is gone, and its deletion asked it to stop. No new order from now on (the gate is shut:
        cancels and a halt's closes still pass); the garbage collector's SIGTERM stops it, a restart's stop
        (``stop_cause``: another object). Positions are kept, as that stop keeps them."""
        strategy = self.config.strategy
        reason = (
            f"the LiveStrategy {strategy.namespace}/{strategy.name} is another object now (uid {uid}; this pod runs "
            f"for uid {strategy.uid}, deleted): no new order from this pod"
        )
        logger.error("runtime: %s", reason)
        if self.guard is not None:
            self.guard.shut_gate(reason)

    def status_snapshot(self) -> StatusSnapshot:
        if self.reporter is None or self.guard is None or self.node is None:
            return StatusSnapshot(TradingState(node_state=self.node_state), RiskState())
        risk = self.guard.risk_state()
        if self.halt_recorded is not None:
            risk = risk.model_copy(update={"halt_recorded": self.halt_recorded})
        trading = self.reporter.trading_state(self.node_state, self.guard.book_pnl(), self.guard.book_positions())
        halt = self.halt_report or (self._halt_sequence.report if self._halt_sequence is not None else None)
        if halt is not None and halt.dust:
            trading = trading.model_copy(update={"halt_dust": "; ".join(d.text() for d in halt.dust)})
        if self.backtest is not None:
            trading = trading.model_copy(update={"backtest": self.backtest})
        return StatusSnapshot(trading, risk)

    def readiness(self) -> tuple[bool, str]:
        if self.node_state != NodeState.RUNNING:
            return False, f"not ready: the node is {self.node_state.lower()}"
        if self.ledger is None or not self.ledger.fence_held:
            return False, "not ready: the ledger fence is not held"
        if self.halt_recorded is False:
            return False, "not ready: the risk halt is not recorded in the ledger yet (a restart would trade)"
        lag = self.ledger.lag()
        if lag.writer_stopped:
            return False, f"not ready: the ledger cannot commit ({lag.last_error})"
        held = self.guard.orders_held if self.guard is not None else None
        if held is not None:
            return False, f"not ready: new orders are held: {held}"
        if lag.oldest_pending_seconds > LEDGER_UNREADY_AFTER_SECONDS:
            where = "all of them in the spool" if lag.not_durable == 0 else f"{lag.not_durable} not durable anywhere"
            return False, (
                f"not ready: the ledger is stalled: {lag.pending} fill(s) not committed, the oldest for "
                f"{lag.oldest_pending_seconds:.0f}s ({where}; last error: {lag.last_error or 'none'})"
            )
        return True, "ready"

    def metrics(self) -> RuntimeMetrics:
        return runtime_metrics(self)

    def state_document(self) -> dict[str, Any]:
        return state_document(self)

    @property
    def stop_cause_text(self) -> str | None:
        """Whether the stop is a halt (``haltPolicy`` applied) and why, once known; None while running or asking."""
        report = self._halt_sequence.report if self._halt_sequence is not None else None
        cause = report.cause if report is not None else None
        if cause is None:
            return None
        return f"{'a halt' if cause.halt else 'not a halt'}: {cause.why}"

    @property
    def stop_reason(self) -> str:
        """Why the runtime is halting or stopped (a signal, a lost fence, …); empty while it runs."""
        return self._stop_reason

    # ------------------------------------------------------------------ running
    async def run(self) -> RunOutcome:
        try:
            with prompt_thread_switches():  # the ledger's thread waits less for the loop's (``thread_switch``)
                return await self._run()
        finally:
            await self._shutdown_services()
            if not self.options.keep_watchdog_armed:
                self.disarm_watchdog()

    def disarm_watchdog(self) -> None:
        if self._halt_sequence is not None:
            self._halt_sequence.disarm()

    async def _run(self) -> RunOutcome:
        config, options = self.config, self.options
        self.lag.start()
        if options.serve_http:
            self.http = RuntimeHttpServer(self, config.http_bind_host, config.http_port)
            await self.http.start()

        if config.spec.mode == Mode.LIVE and config.ledger.kind == LedgerKind.SQLITE and not options.rehearsal:
            where = config.ledger.sqlite_path or "in its state directory"
            message = (
                f"{self.key} is a live strategy but its ledger is an SQLite file ({where}): a pod's disk is not "
                "a ledger for real money (it goes with the pod, and with it the risk halts and baselines kept "
                "there). Give it PostgreSQL: spec.ledger.dsnSecret names a Secret holding the DSN "
                '(docs/ledger.md, "Pointing a strategy at PostgreSQL")'
            )
            logger.error("runtime: %s", message)
            return RunOutcome(EXIT_INVALID, message, None, self.key)
        fence_wait = config.fence_wait_seconds if options.fence_wait_seconds is None else options.fence_wait_seconds
        # A database can be away; the pod's disk keeps what it has not committed (an SQLite ledger is that disk).
        spool = (
            FillSpool(spool_directory(config.state_dir, self.key))
            if config.ledger.kind == LedgerKind.POSTGRESQL
            else None
        )
        try:
            ledger = ledger_for(
                config,
                options.environ,
                on_fence_lost=self._on_fence_lost,
                fence_wait=fence_wait,
                on_commit=options.on_ledger_commit,
                spool=spool,
            )
        except LedgerError as exc:  # no DSN, or not one it can use (the message never holds the DSN)
            logger.error("runtime: %s", exc)
            return RunOutcome(EXIT_INVALID, str(exc), None, self.key)
        try:
            await ledger.open()
        except FencedOut as exc:
            logger.error("runtime: %s", exc)
            return RunOutcome(EXIT_FENCED_OUT, str(exc), ledger.describe(), self.key)
        except LedgerError as exc:
            message = f"cannot open the ledger, so this runtime will not trade: {exc}"
            logger.error("runtime: %s", ledger.redact(message))
            return RunOutcome(EXIT_FAILED, ledger.redact(message), ledger.describe(), self.key)
        self.ledger = ledger
        try:
            return await self._run_fenced(ledger)
        finally:
            # The halt closes the ledger (its close-ledger step); this is for the ways out before it.
            if ledger.is_open:
                with contextlib.suppress(Exception):
                    await ledger.close(timeout=5)

    async def _run_fenced(self, ledger: Ledger) -> RunOutcome:
        config, options = self.config, self.options
        restored, acknowledged = await persistence.restored_halt(ledger, config.risk_acknowledgement)
        history = None
        if config.spec.mode == Mode.LIVE:
            # The limits hold across restarts: the guard starts from every fill and the saved baseline.
            # ... and each inferred fill the venue's trades superseded as first recorded (ledger.supersede).
            superseded = [s.fill for s in await ledger.superseded()]
            history = PnlHistory(
                await ledger.fills(), await ledger.risk_baseline(), reset=acknowledged, superseded=superseded
            )
            fills_before = len(history.fills)  # read whole already: no count query on top
        else:
            fills_before = await ledger.count()
        # A paper start is a fresh simulated account: its fills are a run of their own (ledger.fills_key),
        # so the count, the status and the summary are this run's; a live strategy's are every run's.
        reporter_config = ReporterConfig(
            strategy_key=ledger.fills_key, instrument_ids=tuple(config.spec.instruments), fills_before=fills_before
        )
        self.reporter = Reporter(reporter_config, ledger=ledger, replay_progress=self.replay_progress)
        guard_config = RiskGuardConfig.from_spec(config.spec)
        guard = self.guard = RiskGuard(
            guard_config, on_breach=self._on_breach, history=history, fence=ledger.fence_refusal
        )
        if restored is not None:
            guard.restore(restored)
            self.halt_recorded = True
        try:
            if records_its_window(config):
                self.window = WindowCheck(config, options.environ, self._check_backtest)
            self.node = build_node(
                config,
                catalog=options.catalog,
                actors=[self.reporter, guard, *([self.window.recorder] if self.window else [])],
                environ=options.environ,
                signal_handler=self._on_signal,
                shutdown_handler=self._on_shutdown_request,
                log_level=options.log_level,
            )
        except SPEC_ERRORS as exc:
            logger.error("runtime: the strategy cannot run: %s", exc)
            return RunOutcome(EXIT_INVALID, str(exc), ledger.describe(), self.key)
        replay = self.node.replay  # a paper replay: the gate counts order rates on its market time
        guard.attach(
            self.node.kernel.exec_engine,
            front_doors=self.node.front_doors(),
            market_clock=replay.market_clock if replay is not None else None,
        )
        # Before the start: a live node reconciles with the venue (and publishes the fills that
        # happened while this strategy was down) before its trader, and so the reporter, starts.
        self.reporter.attach(self.node.kernel.exec_engine, events_handler=self.node.exec_events_handler)
        self.reporter.on_fill(guard.on_fill)
        self.reporter.book_position = guard.book_position
        self.reporter.arrivals = guard.gate.arrivals  # the gate records each order's arrival, the reporter its fills
        self.trading = TradingHalt(self.node.node, guard)
        if ledger.fence_lost_reason is not None:  # lost while we were building
            self.trading.stop_trading_now(ledger.fence_lost_reason)
        if options.push_status and config.report_status:
            self._status_api = options.status_api or KubernetesStatusApi(config.strategy, options.environ)
            self.pusher = StatusPusher(
                api=self._status_api,
                snapshot=self.status_snapshot,
                interval=config.report_interval_seconds,
                heartbeat_interval=config.heartbeat_interval_seconds,
                on_answer=self._on_own_object,
                strategy_uid=config.strategy.uid,
                on_another=self._on_another_object,
            )
            # One push before the node starts: its answer carries the RiskBudget share (status.budget), so the share
            # is in force before the strategy's first order. Not waited for long: an API server away delays no start.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.pusher.push_if_due(), FIRST_PUSH_SECONDS)
            self.pusher.start()

        loop = asyncio.get_running_loop()
        hold = persistence.hold_orders_while_behind(
            ledger, guard, config.ledger_hold_pending_fills, config.ledger_hold_lag_seconds
        )
        self._background.append(loop.create_task(hold, name="ledger-watch"))
        self._background.append(loop.create_task(persistence.save_baselines(ledger, guard), name="risk-baseline"))
        if await self._started(self.node):
            self.reporter.record_cached_fills()
            self.node_state = NodeState.RUNNING
            self.ready_at = time.monotonic()
            logger.info("runtime: %s is running (%.2fs after start)", self.key, self.ready_at - self.started_at)
            if self.window is not None:
                every = self.window.every(config.window_check_seconds)
                self._background.append(loop.create_task(every, name="window-check"))
            if restored is not None:  # whatever a venue still holds for us must not trade either
                self._breach_task = asyncio.get_running_loop().create_task(self._contain(restored))

        await self._wait_for_stop()
        return await self._halt(ledger, guard)

    async def _start_node(self, node: StrategyNode) -> None:
        assert self.ledger is not None
        await self.ledger.fence_usable()  # a predecessor that did not release the fence may trade until its lease ends
        await node.start()

    async def _started(self, node: StrategyNode) -> bool:
        """Start the node; False if it failed, or if a stop was asked for first (the halt must not wait
        for a live venue's connection and reconciliation, which can take longer than the grace period)."""
        starting = asyncio.get_running_loop().create_task(self._start_node(node), name="node-start")
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not starting.done():
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            logger.warning("runtime: stopping before the node finished starting (%s)", self._stop_reason)
            return False
        failure = starting.exception()
        if failure is not None:
            logger.error("runtime: %s", failure)
            message = f"the node did not start: {failure}"
            self.request_stop(message, EXIT_FAILED, cause=not_a_halt(message))
            return False
        return not self._stop.is_set()

    async def _contain(self, breach: Breach) -> tuple[int, bool]:
        """One containment of a risk halt, within the halt's cancel and flatten shares of the budget."""
        assert self.trading is not None
        started, budget = time.monotonic(), self.config.halt_budget_seconds
        return await self.trading.contain(
            f"{breach.limit}: {breach.reason}",
            self.config.spec.halt_policy,
            started + budget * STEP_DEADLINES["cancel"],
            started + budget * STEP_DEADLINES["flatten"],
        )

    async def _wait_for_stop(self) -> None:
        assert self.node is not None
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._stop.wait())]
        run_task = self.node.run_task
        if run_task is not None:
            waits.append(asyncio.ensure_future(asyncio.shield(run_task)))
        replay = self.node.replay
        if replay is not None:
            waits.append(asyncio.ensure_future(replay.finished.wait()))
        try:
            while not self._stop.is_set():
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if self._stop.is_set():
                    break
                if run_task is not None and run_task.done():
                    failure = run_task.exception() if not run_task.cancelled() else None
                    message = f"the node stopped by itself ({failure or 'no error'})"
                    self.request_stop(message, EXIT_FAILED, cause=not_a_halt(message))
                elif replay is not None and replay.finished.is_set():
                    waits = [w for w in waits if w not in done]
                    if replay.failure is not None:
                        message = f"the replay failed: {replay.failure}"
                        self.request_stop(message, EXIT_FAILED, cause=not_a_halt(message))
                    elif self.options.stop_when_replay_finishes:
                        self.request_stop("the replay finished")
                    else:
                        logger.info("runtime: the replay finished; the node stays up, idle, reporting")
                        self._background.append(asyncio.get_running_loop().create_task(self._check_replay()))
        finally:
            for wait in waits:
                wait.cancel()

    async def _halt(self, ledger: Ledger, guard: RiskGuard) -> RunOutcome:
        assert self.node is not None
        node = self.node
        self.node_state = NodeState.HALTING
        if node.replay is not None:
            node.replay.stop_replay()  # no more market data: nothing new to react to while cancelling
        if self.window is not None:
            self.window.recorder.close()  # the window a backtest may compare with ends where trading stops

        async def flush_ledger(deadline: float) -> None:
            # The fills, a risk halt still being recorded and the risk baseline: a restart must find them.
            await asyncio.gather(
                self._flush_fills(ledger, deadline),
                persistence.save_baseline(ledger, guard),
                *([self._persist_task] if self._persist_task else []),
            )

        async def final_status(deadline: float) -> None:
            # Nothing trades any more; the node is stopped next. Orders left open are said so.
            self.node_state = NodeState.HALT_INCOMPLETE if self._halt_incomplete() else NodeState.STOPPED
            if self._exit_code == EXIT_OK:  # a clean stop: the whole window against its backtest, if time allows
                # What is left of the step, less what the final push needs (a second, or a fifth of the rest).
                await self._check_window(deadline - max(1.0, (deadline - time.monotonic()) / 5))
            if self.pusher is not None:
                # A periodic push on its way (taken before the flatten's fill) is let land first, never after the
                # final one; half of what is left of the step at most, the other half is the final push's.
                now = time.monotonic()
                await self.pusher.stop(until=now + max(0.0, deadline - now) / 2)
                if not await self.pusher.final_push(deadline):
                    raise RuntimeError("the final status was not accepted")

        async def stop_node(_deadline: float) -> None:
            await node.stop()

        async def close_ledger(deadline: float) -> None:
            if self.options.keep_fills:
                self._fills_read = await ledger.fills()
            # What is left of the step, less what one more push needs (a second, or a fifth of the rest).
            push_from = deadline - min(1.0, max(0.0, deadline - time.monotonic()) / 5)
            try:
                await ledger.close(timeout=max(0.1, push_from - time.monotonic()))
            finally:
                if self.pusher is not None:
                    # A fill that reached the node while it stopped (after the final status: an order the halt
                    # could not cancel, filled as the node left) is in the ledger now: the status says so too.
                    await self.pusher.final_push(deadline, only_if_changed=True)

        sequence = self._halt_sequence = HaltSequence(
            trading=self.trading if node.run_task is not None else None,
            budget_seconds=self.config.halt_budget_seconds,
            flush_ledger=flush_ledger,
            final_status=final_status,
            stop_node=stop_node,
            close_ledger=close_ledger,
        )
        if self._breach_task is not None and not self._breach_task.done():
            # The risk halt is still cancelling: the halt's own containment takes over from here.
            self._breach_task.cancel()
            await asyncio.gather(self._breach_task, return_exceptions=True)
        for task in self._background:
            task.cancel()
        assert self._stop_cause is not None
        self.halt_report = await sequence.run(self._stop_reason, self.config.spec.halt_policy, cause=self._stop_cause)
        exit_code = self._exit_code
        if self._halt_incomplete():
            report = self.halt_report
            self.node_state = NodeState.HALT_INCOMPLETE
            if self._flatten_unseen(report):
                logger.critical(
                    "runtime: the halt is INCOMPLETE: the node never reconciled with the venue (the stop came while "
                    "it was starting), so the flatten could not see the positions the venue holds; check the venue "
                    "and close them by hand"
                )
            else:
                logger.critical(
                    "runtime: the halt is INCOMPLETE: %s order(s) left open%s; check the venue and close them by hand",
                    report.orders_left if report.orders_left is not None else "an unknown number of",
                    ", positions not flat" if report.flat is False and report.must_flatten else "",
                )
            if exit_code in (EXIT_OK, EXIT_FAILED):
                exit_code = EXIT_HALT_INCOMPLETE
        else:
            self.node_state = NodeState.STOPPED
        if self.halt_recorded is False:
            logger.critical("runtime: exiting with the risk halt NOT recorded in the ledger: a restart would trade")
        outcome = RunOutcome(
            exit_code=exit_code,
            reason=self._stop_reason,
            ledger_where=ledger.describe(),
            strategy_key=ledger.fills_key,
            snapshot=self.status_snapshot(),
            pnl=self._pnl_now(),
            halt=self.halt_report,
            ledger_fills=self._fills_read,
            node_pnl=self._node_pnl(),
            node_positions=self._node_positions(),
            **self._book_terms(),
        )
        if self.options.dispose_node:
            with contextlib.suppress(Exception):
                node.dispose()
        return outcome

    async def _flush_fills(self, ledger: Ledger, deadline: float) -> None:
        """Every fill durable first (the spool, at once), then committed as far as the step's time allows.

        A runtime whose fence is lost does not try: the ledger refuses its writes. Fills the database
        could not take in time stay in the spool for the next start (the ledger's close says so).
        """
        if self.reporter is not None:
            self.reporter.record_undelivered()  # fills the venue reported that the node's books never took
        await ledger.flush_durable()
        if not ledger.fence_held:
            return
        if ledger.spool_directory is None:
            await ledger.flush()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ledger.flush(), max(0.0, deadline - time.monotonic() - HALT_FLUSH_MARGIN_SECONDS))

    def _halt_incomplete(self) -> bool:
        """The halt's containment left orders open (or, when it was to flatten, a position)."""
        report = self.halt_report
        if report is None:
            # Still halting (the final status): what containment found so far is the best answer.
            report = self._halt_sequence.report if self._halt_sequence is not None else None
        if report is None or self.trading is None:
            return False
        return (
            bool(report.orders_left) or (report.must_flatten and report.flat is False) or self._flatten_unseen(report)
        )

    def _flatten_unseen(self, report: HaltReport) -> bool:
        """A halt under ``flatten`` of a live node that never finished starting: it never reconciled, so its cache
        holds none of the positions the venue does (a restart leaves them for the next start) and its flatten,
        finding nothing, proves nothing. A paper node's venue starts empty with it: nothing is unseen there."""
        return report.must_flatten and self.config.spec.mode == Mode.LIVE and self.ready_at is None

    def _book_terms(self) -> dict[str, Any]:
        """``RunOutcome.terms`` and ``commission_values`` from the guard's books."""
        books = self.guard.limits.books if self.guard is not None else {}
        values: dict[str, Decimal] = {}
        for book in books.values():
            if book.commission_value:
                code = book.currency or ""
                values[code] = values.get(code, Decimal(0)) + to_decimal(book.commission_value)
        return {"terms": {i: b.terms for i, b in books.items()}, "commission_values": values}

    def _node_pnl(self) -> portfolio_view.PnlView | None:
        if self.reporter is None or self.node is None:
            return None
        r = self.reporter
        return portfolio_view.pnl(r.portfolio, r.cache, r.instruments())

    def _node_positions(self) -> dict[str, Decimal] | None:
        if self.reporter is None or self.node is None:
            return None
        return portfolio_view.net_positions(self.reporter.portfolio, self.reporter.instruments())

    def _pnl_now(self) -> portfolio_view.PnlView | None:
        return self.guard.book_pnl() if self.guard is not None and self.node is not None else None

    async def _shutdown_services(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self.pusher is not None:
            with contextlib.suppress(Exception):
                await self.pusher.close()
        if self.http is not None:
            await self.http.stop()
        await self.lag.stop()
