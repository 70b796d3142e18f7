"""The halt: stop trading safely, and (on SIGTERM/SIGINT) leave, all within a known time.

Two parts, shared by every way a strategy stops:

``contain(policy)`` stops the trading itself, in the only order NautilusTrader allows
(its HALTED state denies even reduce-only closes; only cancels pass):

1. the risk guard's order gate shuts (nothing new reaches a venue except the halt's own
   reduce-only closes) and the RiskEngine goes REDUCING;
2. every working order (``orders_view``: open, in flight, held by the OrderEmulator or an
   execution algorithm, on its way) is cancelled by the runtime itself, through its strategy
   (a graceful disconnect does not trigger a venue's cancel-on-disconnect), and
   re-cancelled every ``RESEND_SECONDS`` until none is left; in between the halt waits for
   the venue's answer (it listens to order and position events), it does not poll. Before a
   cancel is sent again, the venue is asked what it holds of that order, by client order id
   (``live.client_hooks.venue_order``): an order it holds closed (cancelled, filled, expired,
   rejected) or has never received is not open there, whatever the node last heard (its events
   may have been lost: a user-data stream down); only an order the venue holds open, or one it
   could not be asked about, is cancelled again and can leave the halt incomplete;
3. with ``haltPolicy: flatten``, and only when the stop is a halt (``strategy_runtime.stop_cause``:
   a rollout, an eviction or a drain is not), every open position is closed with a reduce-only
   market order, re-sent until the position is flat. A long spot position is sold only as far as
   the account holds it, on the symbol's step (``spot_close``: Binance takes a buy's commission
   in the base asset); what no order can sell is dust, reported (``HaltReport.dust``), not
   retried, and no reason for an incomplete halt. A close the venue refused
   ``CLOSE_REFUSALS_TOLERATED`` times with the same quantity is not sent again: the position is left
   open and the halt is incomplete (a refusal for the balance or a filter repeats; a passing one, a
   rate limit, gets its retries);
4. the RiskEngine goes HALTED.

A risk breach runs ``contain`` and keeps the node up (halted, reporting). ``HaltSequence.run``
is the whole pod halt, each step with a deadline at a fixed share of the budget
(``RuntimeConfig.halt_budget_seconds``, derived from the pod's grace period), counted from
the moment the halt began:

| step | ends at the latest at |
|---|---|
| cancel every order | 25 % |
| flatten (policy ``flatten``) | 50 % |
| flush the ledger | 65 % |
| push the final status | 75 % |
| stop the node | 90 % |
| close the ledger (release the fence); push the status again if it changed | 97 % |

A step that overruns its deadline is abandoned (logged at ERROR) and the next one starts;
the process still exits. Should the event loop itself be stuck, a watchdog thread ends the
process at 100 % of the budget (exit code ``EXIT_HALT_OVERRAN``), still inside the grace
period: the budget leaves a margin of a fifth of it (at least 5 s) before Kubernetes' SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import CancelOrder
from nautilus_trader.model.enums import OrderStatus, TradingState, TriggerType
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.orders import Order
from nautilus_trader.model.position import Position

from livestrat.api.contract import ExitCode
from livestrat.api.spec import HaltPolicy
from strategy_runtime.live.client_hooks import VenueOrder, venue_order, venue_sweep
from strategy_runtime.orders_view import working_orders
from strategy_runtime.risk.gate import EMULATOR_ENDPOINT, EXEC_ENDPOINT, HALT_TAG
from strategy_runtime.risk.guard import RiskGuard
from strategy_runtime.spot_close import Dust, closing_quantity
from strategy_runtime.stop_cause import StopCause, settled

logger = logging.getLogger("livestrat.halt")

# Cumulative share of the halt budget by which each step must be over.
STEP_DEADLINES: dict[str, float] = {
    "cancel": 0.25,
    "flatten": 0.50,
    "flush-ledger": 0.65,
    "final-status": 0.75,
    "stop-node": 0.90,
    "close-ledger": 0.97,
}
EXIT_HALT_OVERRAN = ExitCode.HALT_OVERRAN
# A cancel or close the venue has not acted on after this long is sent again. In between the
# halt waits for the venue's answer (an order or position event), never scanning the cache idly.
RESEND_SECONDS = 1.0
# A close the venue refused this many times with the same quantity is not sent again (the same order meets
# the same refusal: a balance, a filter); fewer, and it is re-sent like any close not acted on.
CLOSE_REFUSALS_TOLERATED = 3
# The message-bus topics whose events can change what the halt still has to do.
ORDER_EVENTS = "events.order.*"
POSITION_EVENTS = "events.position.*"


@dataclass
class StepOutcome:
    name: str
    started: float  # time.monotonic()
    ended: float
    outcome: str  # "done", "overran", "failed: ...", "skipped"


@dataclass
class HaltReport:
    reason: str
    policy: str
    started: float
    steps: list[StepOutcome] = field(default_factory=list)
    flat: bool | None = None
    orders_left: int | None = None
    cause: StopCause | None = None  # whether it was a halt (haltPolicy applied), once known
    dust: list[Dust] = field(default_factory=list)  # what of the positions no order could sell (flat regardless)

    @property
    def must_flatten(self) -> bool:
        """Whether this stop had to leave no position: a halt under ``haltPolicy: flatten``."""
        return self.policy == HaltPolicy.FLATTEN and self.cause is not None and self.cause.halt

    @property
    def ended(self) -> float:
        return self.steps[-1].ended if self.steps else self.started


class Containment:
    """What a halt cancels and closes, and how: the part a live node's halt (``TradingHalt``) and the
    backtest's (``strategy_runtime.local.backtest.BacktestHalt``) share. ``node``: anything with the
    ``kernel`` and ``trader`` of a TradingNode or a BacktestEngine."""

    def __init__(self, node: Any, guard: RiskGuard) -> None:
        self._node = node
        self._guard = guard
        self._kernel = node.kernel
        self.dust: dict[Any, Dust] = {}  # by position id: what a close could not sell
        self.refused: dict[Any, str] = {}  # by position id: why the venue refused the close that is not re-sent

    @property
    def cache(self) -> Any:
        return self._kernel.cache

    def open_orders(self) -> list[Order]:
        """Orders that are or may become live at a venue (``orders_view.working_orders``): open, in flight,
        held by the OrderEmulator or an execution algorithm, or still on their way.

        "On their way" are orders still INITIALIZED: they passed the RiskEngine and the gate
        before it shut and wait in the execution engine's queue; the venue will accept them
        in a moment, and the halt must then cancel them too. The gate keeps them
        (``RiskGuard.orders_on_their_way``): the cache has no index of INITIALIZED orders.
        """
        return working_orders(self.cache, self._guard.orders_on_their_way())

    def _strategy_of(self, strategy_id: Any) -> Any:
        return next((s for s in self._node.trader.strategies() if s.id == strategy_id), None)

    def _cancel(self, order: Order) -> None:
        strategy = self._strategy_of(order.strategy_id)
        if strategy is not None and not order.is_pending_cancel:
            strategy.cancel_order(order)
            return
        # An order of no running strategy (reconciled from the venue), or a cancel sent again (a
        # strategy refuses to cancel an order already PENDING_CANCEL): the command the strategy sends,
        # where the strategy sends it (the emulator, the algorithm holding it, or the execution engine).
        command = CancelOrder(
            trader_id=order.trader_id,
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            client_order_id=order.client_order_id,
            venue_order_id=order.venue_order_id,
            command_id=UUID4(),
            ts_init=self._kernel.clock.timestamp_ns(),
        )
        if order.is_emulated or order.emulation_trigger != TriggerType.NO_TRIGGER:
            endpoint = EMULATOR_ENDPOINT
        elif order.exec_algorithm_id is not None and order.is_active_local:
            endpoint = f"{order.exec_algorithm_id}.execute"
        else:
            endpoint = EXEC_ENDPOINT
        self._kernel.msgbus.send(endpoint, command)

    def _close(self, position: Position) -> bool:
        """Send the halt's reduce-only market close of ``position`` through its strategy; False if none was sent.

        The quantity is ``spot_close.closing_quantity``'s: a long spot position sells what the account
        holds, on the step; dust is recorded, not sent. A quantity the venue already refused
        ``CLOSE_REFUSALS_TOLERATED`` times for this position is not sent again (the same order meets the
        same refusal). The order is ``Strategy.close_position``'s, with that quantity."""
        strategy = self._strategy_of(position.strategy_id)
        if strategy is None:
            logger.error("halt: position %s belongs to no running strategy; it cannot be closed", position)
            return False
        quantity = closing_quantity(position, self.cache.instrument(position.instrument_id), self.cache)
        if isinstance(quantity, Dust):
            self.dust[position.id] = quantity
            logger.warning("halt: %s", quantity.text())
            return False
        refusals, why = self._refusals(position, quantity)
        if refusals >= CLOSE_REFUSALS_TOLERATED:
            self.refused[position.id] = why
            logger.error(
                "halt: the venue refused the close of %s %s %d times (%s); not sending it again: the position "
                "stays open",
                quantity,
                position.instrument_id,
                refusals,
                why,
            )
            return False
        if quantity != position.quantity:
            logger.warning(
                "halt: closing %s of the position's %s %s: on the symbol's step, no more than the account holds "
                "(a commission paid in the base)",
                quantity,
                position.quantity,
                position.instrument_id,
            )
        order = strategy.order_factory.market(
            instrument_id=position.instrument_id,
            order_side=Order.closing_side(position.side),
            quantity=quantity,
            reduce_only=True,
            tags=[HALT_TAG],
        )
        strategy.submit_order(order, position_id=position.id)
        return True

    def _refusals(self, position: Position, quantity: Any) -> tuple[int, str]:
        """How many of the halt's closes of ``quantity`` of ``position`` the venue rejected (or the RiskEngine
        denied), and the last one's reason."""
        refused = [
            o
            for o in self.cache.orders_for_position(position.id)
            if HALT_TAG in (o.tags or [])
            and o.status in (OrderStatus.REJECTED, OrderStatus.DENIED)
            and o.quantity == quantity
        ]
        why = str(getattr(refused[-1].last_event, "reason", "") or refused[-1].status_string()) if refused else ""
        return len(refused), why

    def unsold(self, positions: list[Position]) -> list[Position]:
        """``positions`` less those the halt gave up on: dust, or a close the venue refused."""
        return [p for p in positions if p.id not in self.dust and p.id not in self.refused]

    def _closing(self, position: Position) -> bool:
        """A close of the halt's is still working on ``position``, whatever its state: queued in the
        RiskEngine or the execution engine (INITIALIZED), in flight or open at the venue.

        ``submit_order(order, position_id=...)`` indexes the close under the position from the moment it is
        submitted.
        """
        return any(HALT_TAG in (o.tags or []) and not o.is_closed for o in self.cache.orders_for_position(position.id))


class TradingHalt(Containment):
    """``contain``: cancel, flatten per policy, HALTED. Needs the built node and the risk guard."""

    def __init__(self, node: Any, guard: RiskGuard) -> None:
        super().__init__(node, guard)
        self._lock = asyncio.Lock()  # a breach's containment and a SIGTERM's never interleave
        self.halted = False
        self._changed = asyncio.Event()  # an order or position event arrived since the last look
        self._listening = False
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self.scans = 0  # how many times the halt looked for what is left (each after an event or a resend)
        # By client order id: what the venue answered for an order it does not hold open, and the node's event
        # count for that order then (an event since, and the order counts as the node sees it again).
        self.not_open_at_venue: dict[ClientOrderId, tuple[int, VenueOrder]] = {}

    def open_orders(self) -> list[Order]:
        """The working orders (``Containment.open_orders``) less those the venue said it does not hold open."""
        return [o for o in super().open_orders() if not self._not_open_at_venue(o)]

    def _not_open_at_venue(self, order: Order) -> bool:
        answer = self.not_open_at_venue.get(order.client_order_id)
        return answer is not None and answer[0] == order.event_count

    def _asker(self, order: Order) -> Callable[[str, str], Awaitable[VenueOrder]] | None:
        """How to ask the venue about ``order``: None when it is not at a venue (held inside the node) or its
        client cannot be asked."""
        if order.status == OrderStatus.INITIALIZED or order.is_emulated:
            return None
        # Private in NautilusTrader 1.231 (the engine hands out no client); pinned by test_nautilus_pins.
        for client in self._kernel.exec_engine._clients.values():
            if client.venue == order.instrument_id.venue:
                return venue_order(client)
        return None

    async def ask_the_venue(self, orders: list[Order], deadline: float) -> int:
        """Ask the venue, by client order id, what it holds of each of ``orders``; those it does not hold open are
        set aside (``not_open_at_venue``). How many were set aside. An order the venue could not be asked about
        stays open for the halt."""
        asked = [(o, ask) for o in orders if (ask := self._asker(o)) is not None]
        if not asked:
            return 0
        timeout = max(0.1, deadline - time.monotonic())
        questions = (ask(o.instrument_id.symbol.value, o.client_order_id.value) for o, ask in asked)
        answers = await asyncio.gather(*(asyncio.wait_for(q, timeout) for q in questions), return_exceptions=True)
        set_aside = 0
        for (order, _), answer in zip(asked, answers, strict=True):
            if isinstance(answer, BaseException):
                logger.warning("halt: could not ask the venue about %s: %s", order.client_order_id, answer)
                continue
            if answer.open:
                continue
            self.not_open_at_venue[order.client_order_id] = (order.event_count, answer)
            set_aside += 1
            logger.warning(
                "halt: %s is not open at the venue (%s) although the node holds it %s (the venue's events for it "
                "did not reach the node, or it never reached the venue); not cancelled again, not left open",
                order.client_order_id,
                answer.status,
                order.status_string(),
            )
        return set_aside

    def stop_trading_now(self, because: str) -> None:
        """Synchronous: shut the gate and set HALTED at once (a lost fence: nothing may trade, not even a close)."""
        self._guard.shut_gate(because)
        self._kernel.risk_engine.set_trading_state(TradingState.HALTED)
        self.halted = True

    def leftovers(self) -> tuple[int, bool]:
        """What is still live now: (orders open, in flight or on their way; whether flat)."""
        return len(self.open_orders()), not self.cache.positions_open()

    async def contain(
        self,
        reason: str,
        policy: str,
        cancel_deadline: float,
        flatten_deadline: float,
        *,
        flatten_wanted: Callable[[], Awaitable[bool]] | None = None,
    ) -> tuple[int, bool]:
        """Run the containment; deadlines are ``time.monotonic()`` values. Returns (orders left, flat).

        ``flatten_wanted``: asked, once the orders are cancelled and only if the policy would flatten an open
        position, whether this stop may flatten (a halt); None: it may (a risk breach)."""
        self._guard.shut_gate(reason)
        async with self._lock:
            # Order and position events wake the waiting steps up, only while containing. A wildcard
            # subscription made this late receives topics published before it in NautilusTrader
            # 1.231 (1.221 missed them; tests/runtime/test_nautilus_pins.py keeps that fixed).
            msgbus = self._kernel.msgbus
            msgbus.subscribe(ORDER_EVENTS, self._on_event)
            msgbus.subscribe(POSITION_EVENTS, self._on_event)
            self._listening = True
            try:
                return await self._contain(policy, cancel_deadline, flatten_deadline, flatten_wanted)
            finally:
                self._listening = False
                msgbus.unsubscribe(ORDER_EVENTS, self._on_event)
                msgbus.unsubscribe(POSITION_EVENTS, self._on_event)

    def _on_event(self, _event: object) -> None:
        """Every order and position event: while containing, it wakes the waiting step up."""
        if not self._listening:
            return
        if threading.get_ident() == self._loop_thread:
            self._changed.set()
        else:  # an adapter publishing from a thread of its own: asyncio.Event is not thread-safe
            self._loop.call_soon_threadsafe(self._changed.set)

    async def _wait_for_change(self, until: float) -> None:
        """Until an order or position event arrives, or ``until`` (``time.monotonic()``)."""
        timeout = until - time.monotonic()
        if timeout > 0 and not self._changed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
        self._changed.clear()

    async def _contain(
        self,
        policy: str,
        cancel_deadline: float,
        flatten_deadline: float,
        flatten_wanted: Callable[[], Awaitable[bool]] | None,
    ) -> tuple[int, bool]:
        risk_engine = self._kernel.risk_engine
        if not self.halted:
            risk_engine.set_trading_state(TradingState.REDUCING)
        left = await self.cancel_all(cancel_deadline)
        left += await self.sweep_venue(cancel_deadline)
        flat = not self.cache.positions_open()
        if policy == HaltPolicy.FLATTEN and not flat and (flatten_wanted is None or await flatten_wanted()):
            if self.halted:  # only REDUCING lets a closing order through the RiskEngine
                risk_engine.set_trading_state(TradingState.REDUCING)
            flat = await self.flatten(flatten_deadline)
            left = await self.cancel_all(max(flatten_deadline, time.monotonic() + 0.2))
        risk_engine.set_trading_state(TradingState.HALTED)
        self.halted = True
        self._guard.mark_halted()
        return left, flat

    async def sweep_venue(self, deadline: float) -> int:
        """Cancel, at the venue itself, this node's orders the venue holds open and the node does not: an order
        placed although the venue's answer was lost (a 5xx leaves its status unknown; NautilusTrader marks it
        rejected). Only orders the node submitted (in its cache) are touched, through the adapter's own REST
        client (``live.binance.venue_sweep``); the number still open."""
        left = 0
        # Private in NautilusTrader 1.231 (the engine hands out no client); pinned by test_nautilus_pins.
        for client in self._kernel.exec_engine._clients.values():
            sweep = venue_sweep(client)
            if sweep is None:
                continue
            open_in_node = {o.client_order_id.value for o in self.open_orders()}

            def ours(client_order_id: str, _open: set[str] = open_in_node) -> bool:
                return client_order_id not in _open and self.cache.order(ClientOrderId(client_order_id)) is not None

            try:
                left += await asyncio.wait_for(sweep(ours), timeout=max(0.1, deadline - time.monotonic()))
            except Exception as exc:  # the venue unreachable: what it holds is the next start's to reconcile
                logger.error("halt: could not ask the venue for orders the node does not know: %s", exc)
        return left

    async def cancel_all(self, deadline: float) -> int:
        """Cancel every working order until none is left; the number left at the deadline.

        Between two looks it waits for an order event (the venue's answer), or for the moment a
        cancel the venue has not acted on is due again, whichever comes first. Before sending a cancel
        again it asks the venue what it holds of the order (``ask_the_venue``).
        """
        requested: dict[Any, float] = {}
        while True:
            self._changed.clear()
            self.scans += 1
            orders = self.open_orders()
            if not orders:
                return 0
            now = time.monotonic()
            if now >= deadline:
                logger.error("halt: %d order(s) still open at the cancel deadline: %s", len(orders), orders)
                return len(orders)
            unanswered = [o for o in orders if now - requested.get(o.client_order_id, now) >= RESEND_SECONDS]
            if unanswered and await self.ask_the_venue(unanswered, deadline):
                continue  # some are not open at the venue: look at what is left
            now = time.monotonic()
            queued = {o.client_order_id for o in self._guard.orders_on_their_way()}
            for order in orders:
                if order.status == OrderStatus.INITIALIZED and order.client_order_id in queued:
                    continue  # on its way to the venue: cancelled once it is there (its OrderSubmitted wakes us)
                # Anything else INITIALIZED is held inside the node (an emulated bracket's stop-loss and
                # take-profit, an execution algorithm's primary order): the node cancels it at once.
                if now - requested.get(order.client_order_id, -1e9) < RESEND_SECONDS:
                    continue
                requested[order.client_order_id] = now
                self._cancel(order)
            resend_at = min((requested.get(o.client_order_id, now) + RESEND_SECONDS for o in orders), default=deadline)
            await self._wait_for_change(min(deadline, max(resend_at, now)))

    async def flatten(self, deadline: float) -> bool:
        """Close every open position with reduce-only market orders until flat; False if not flat at the deadline,
        or if the venue refused a close. Dust (``self.dust``: what no order can sell) counts as flat."""
        requested: dict[Any, float] = {}
        while True:
            self._changed.clear()
            self.scans += 1
            positions: list[Position] = self.unsold(self.cache.positions_open())
            if not positions:
                return not self.refused
            now = time.monotonic()
            if now >= deadline:
                logger.error("halt: %d position(s) still open at the flatten deadline: %s", len(positions), positions)
                return False
            for position in positions:
                if now - requested.get(position.id, -1e9) < RESEND_SECONDS or self._closing(position):
                    continue
                requested[position.id] = now
                self._close(position)
            if not self.unsold(positions):
                continue  # every position left is dust or refused: look once more, then done
            resend_at = min((requested.get(p.id, now) + RESEND_SECONDS for p in positions), default=deadline)
            await self._wait_for_change(min(deadline, max(resend_at, now)))


Step = Callable[[float], Awaitable[Any]]  # takes the step's deadline (time.monotonic())


class HaltSequence:
    """The bounded pod halt: contain, then flush, report, stop and close; see the module docstring.

    The steps after containment are given as callables by the runtime (it owns the ledger,
    the status pusher and the node's run task); each receives its deadline.
    """

    def __init__(
        self,
        *,
        trading: TradingHalt | None,
        budget_seconds: float,
        flush_ledger: Step,
        final_status: Step,
        stop_node: Step,
        close_ledger: Step,
        hard_exit: Callable[[int], None] = os._exit,
    ) -> None:
        self._trading = trading
        self._budget = budget_seconds
        self._steps: list[tuple[str, Step]] = [
            ("flush-ledger", flush_ledger),
            ("final-status", final_status),
            ("stop-node", stop_node),
            ("close-ledger", close_ledger),
        ]
        self._hard_exit = hard_exit
        self._watchdog: threading.Timer | None = None
        self.report: HaltReport | None = None  # the halt under way (and, once over, how it went)

    def deadline(self, started: float, step: str) -> float:
        return started + self._budget * STEP_DEADLINES[step]

    def disarm(self) -> None:
        """The process is about to exit (or lives on, in-process): the watchdog is not needed any more.

        It stays armed after ``run`` on purpose: what follows the halt (closing the HTTP server,
        the event loop's own teardown, which waits for every task) must not outlive the budget either.
        """
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _arm_watchdog(self) -> None:
        def expired() -> None:
            # The loop is stuck (or a step ignores cancellation): leave before Kubernetes kills us.
            print(
                f"livestrat: the halt did not finish within its budget of {self._budget:.1f}s; exiting now",
                file=sys.stderr,
                flush=True,
            )
            self._hard_exit(EXIT_HALT_OVERRAN)

        self._watchdog = threading.Timer(self._budget, expired)
        self._watchdog.daemon = True
        self._watchdog.start()

    async def run(self, reason: str, policy: str, *, cause: Awaitable[StopCause]) -> HaltReport:
        """The whole halt; ``cause`` says (or is looking up) whether this stop is a halt: only a halt flattens."""
        started = time.monotonic()
        self._arm_watchdog()
        report = self.report = HaltReport(reason=reason, policy=policy, started=started)
        logger.info("halt: %s; policy %s, budget %.1fs", reason, policy, self._budget)
        flatten_deadline = self.deadline(started, "flatten")

        async def flatten_wanted() -> bool:
            report.cause = await settled(cause, flatten_deadline)
            return report.cause.halt

        if self._trading is not None:
            await self._contain(report, policy, started, flatten_wanted)
        if report.cause is None:  # not asked (nothing to flatten, or no node): known by now, or soon
            report.cause = await settled(cause, flatten_deadline)
        if report.cause.halt:
            logger.info("halt: a halt (%s): policy %s applies", report.cause.why, policy)
        else:
            logger.warning(
                "halt: not a halt (%s): orders cancelled, positions kept (policy %s not applied); the next start "
                "reconciles with the venue",
                report.cause.why,
                policy,
            )
        for name, step in self._steps:
            await self._run_step(report, name, step, self.deadline(started, name))
        logger.info(
            "halt: over in %.2fs (%s)",
            report.ended - started,
            ", ".join(f"{s.name} {s.ended - s.started:.2f}s {s.outcome}" for s in report.steps),
        )
        return report

    async def _contain(
        self, report: HaltReport, policy: str, started: float, flatten_wanted: Callable[[], Awaitable[bool]]
    ) -> None:
        assert self._trading is not None
        cancel_deadline = self.deadline(started, "cancel")
        flatten_deadline = self.deadline(started, "flatten")
        begun = time.monotonic()
        try:
            left, flat = await asyncio.wait_for(
                self._trading.contain(
                    report.reason, policy, cancel_deadline, flatten_deadline, flatten_wanted=flatten_wanted
                ),
                max(0.0, flatten_deadline - begun),
            )
            report.orders_left, report.flat = left, flat
            report.dust = list(self._trading.dust.values())
            outcome = "done" if left == 0 and (flat or not report.must_flatten) else "incomplete"
        except TimeoutError:
            outcome = "overran"
            logger.error("halt: cancelling and flattening overran the deadline; moving on")
            self._trading.stop_trading_now(report.reason)
            report.orders_left, report.flat = self._trading.leftovers()
        except Exception as exc:
            outcome = f"failed: {type(exc).__name__}: {exc}"
            logger.exception("halt: cancelling and flattening failed; moving on")
            self._trading.stop_trading_now(report.reason)
            report.orders_left, report.flat = self._trading.leftovers()
        report.steps.append(StepOutcome("cancel-and-flatten", begun, time.monotonic(), outcome))

    async def _run_step(self, report: HaltReport, name: str, step: Step, deadline: float) -> None:
        begun = time.monotonic()
        try:
            await asyncio.wait_for(step(deadline), max(0.0, deadline - begun))
            outcome = "done"
        except TimeoutError:
            if time.monotonic() < deadline:  # a timeout of the step's own, inside its share
                outcome = "failed: timed out"
                logger.error("halt: step %s timed out; moving on", name)
            else:
                outcome = "overran"
                logger.error("halt: step %s overran its deadline (%.2fs); moving on", name, deadline - begun)
        except Exception as exc:
            outcome = f"failed: {type(exc).__name__}: {exc}"
            logger.error("halt: step %s failed (%s); moving on", name, outcome)
        report.steps.append(StepOutcome(name, begun, time.monotonic(), outcome))
