"""The reporting component: a NautilusTrader actor that records every fill and knows the trading state.

It listens on the message bus to what the execution engine and the portfolio publish for
every strategy of the node:

- ``events.order.*``: every order event; each ``OrderFilled`` goes to the ledger
  (``Ledger.record`` only enqueues, so the node never waits on a database), to the fill
  listeners (the risk guard's PnL book) and becomes the last fill; the events are counted by
  kind for the metrics;
- ``events.position.*`` and ``events.account.*``: counted, and they tell the status that
  positions or balances moved.

**Fills as the venue reports them.** NautilusTrader applies a fill to the order, then to the account,
and publishes it only then; when the account refuses it (a short sale on a CASH account:
``AccountBalanceNegative``) the node stops and the event never reaches ``events.order.*``. The venue
executed it all the same. ``attach(..., events_handler=...)`` therefore stands in front of the
execution engine's event endpoint (``ExecEngine.process``) and keeps each ``OrderFilled`` that
arrives until the bus delivers it. One the engine fails on (it raises through the endpoint in a
paper node), and any still undelivered when the runtime flushes the ledger at its halt
(``record_undelivered``), is recorded then: the same event object, completed by the engine as far
as it got (its position id is set before the account is touched). A fill of an order this run filled
by inference is recorded as it reaches the endpoint: during a run the open-order check can meet a
status ahead of a trade the user-data stream delivers late, and NautilusTrader then rejects that
trade as an overfill (``ExecutionEngine._check_overfill``, 1.231: logged, never published); the
ledger's rule lets it supersede the inferred fill at once rather than at the halt. A fill recorded
that way is not recorded again when the bus delivers it late; the rest (listeners, last fill,
counts) happens then.

**Fills from start-up reconciliation.** A live node reconciles with the venue *before* its
trader (and so this actor) starts: fills that happened while the pod was down (resting
orders filled after a ``kill -9``) are published then. ``attach(exec_engine)`` therefore
subscribes right after the node is built, before it starts; ``record_cached_fills()`` after the
start sweeps the cache for any fill that reached it without passing the bus (the ledger's
idempotent key makes the overlap harmless). A fill NautilusTrader *inferred* from an order
status report (the venue said "filled" without reporting the trades) carries a random trade id
that changes at every restart; it is recorded under a deterministic, marked id instead
(``ledger.records.inferred_trade_id``, ``INFERRED-<venue order id>-<cumulative quantity>``). A fill made up to
align the node's position with the venue's is recorded as what the ledger's book lacks of that position
(``_aligning``); its order is known by NautilusTrader's tag or, when the strategy claims the instrument (which
drops the tag), as one the engine generated for an alignment (``ORDER_GENERATION_METHOD``).
When the venue's own trades of such an order come (the next start, or this run: a reconciliation
report that lists them, which NautilusTrader then skips as "predating" its inferred fill), they are
recorded as well (as the reconciliation listed them, ``live.reconciliation.LISTED_TRADES_TOPIC``, or reconciled
them, ``reports.execution.*``), and the ledger and the risk guard's book let them
supersede the inferred fill (``ledger.supersede``): the execution counts once. The trades listed are held
until the node runs (``record_cached_fills``), then let go.

``trading_state()`` turns the node's cache and portfolio into the API's ``TradingState``
whenever the status pusher, ``/state`` or ``/metrics`` asks: nothing is computed per event
beyond the ledger record.

The subscriptions end in ``on_dispose``, not ``on_stop``: the trader stops actors before
strategies, and the fills of a strategy's own closing orders on stop arrive afterwards.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.execution.reports import ExecutionMassStatus, FillReport
from nautilus_trader.model.events import OrderCanceled, OrderDenied, OrderExpired, OrderFilled, OrderRejected
from nautilus_trader.model.identifiers import ComponentId, InstrumentId

from livestrat.api.status import Fill, Position, ReplayProgress, TradingState
from strategy_runtime import portfolio_view
from strategy_runtime.ledger import FillRecord, Ledger, from_order_filled
from strategy_runtime.ledger.records import from_fill_report, inferred_trade_id
from strategy_runtime.live.reconciliation import LISTED_TRADES_TOPIC
from strategy_runtime.orders_view import working_orders
from strategy_runtime.risk.arrivals import Arrivals
from strategy_runtime.risk.gate import EXEC_EVENTS_ENDPOINT
from strategy_runtime.slippage import SlippageTally
from strategy_runtime.timestamps import utc_text_from_ns

logger = logging.getLogger("livestrat.reporter")

REPORTER_ID = "LivestratReporter"
ORDER_TOPIC = "events.order.*"
POSITION_TOPIC = "events.position.*"
ACCOUNT_TOPIC = "events.account.*"
# What the live execution engine reconciled: an ExecutionMassStatus at start, single reports afterwards (1.231).
REPORTS_TOPIC = "reports.execution.*"
# LiveExecutionEngine's method that makes a fill out of an order status report (private in
# NautilusTrader 1.231, live/execution_engine.py); pinned by tests/runtime/test_nautilus_pins.py.
INFERRED_FILL_METHOD = "_generate_inferred_fill"
# The tag NautilusTrader 1.231 gives the orders it makes up to align a position with the venue's
# (LiveExecutionEngine, "Internal position diff alignment (synthetic fill)"); pinned by test_nautilus_pins.
POSITION_ALIGNMENT_TAG = "RECONCILIATION"
# LiveExecutionEngine's method that makes an order out of a reconciled report, ``(report, is_external)``, False for an
# alignment (private in 1.231; pinned by test_nautilus_pins). A strategy that claims the instrument (a live runtime's
# does: ``external_order_claims``) gets the alignment order without the tag, so the reporter asks this method.
ORDER_GENERATION_METHOD = "_generate_order"
# Order events that close an order without a fill: its arrival price is forgotten.
CLOSED_WITHOUT_FILL = (OrderCanceled, OrderExpired, OrderRejected)


def position_alignment_id(venue: Decimal, ledger: Decimal) -> str:
    """The trade id of a position alignment: the same venue position over the same book, the same id."""
    return f"INFERRED-POSITION-{venue:f}-FROM-{ledger:f}"


FillListener = Callable[[FillRecord], None]


class ReporterConfig(ActorConfig, frozen=True, kw_only=True):
    """Under which ledger key the reporter records fills (``strategy_key``: the LiveStrategy's
    ``namespace/name``, or a paper strategy's run of it, ``namespace/name@run-N``), the instruments it
    reports, and ``fills_before``: what the ledger held under that key when the runtime started, so
    that ``fills`` counts every fill the ledger holds under it (a live strategy's earlier runs included)."""

    component_id: ComponentId | None = ComponentId(REPORTER_ID)
    strategy_key: str
    instrument_ids: tuple[str, ...] = ()
    fills_before: int = 0


class Reporter(Actor):
    """Records fills in the ledger and reports the trading state of the whole node.

    Configured by a frozen ``ReporterConfig``; its collaborators are the ``ledger`` it records
    into and, in a paper replay, where the replay's progress is read (``replay_progress``).
    """

    def __init__(
        self,
        config: ReporterConfig,
        *,
        ledger: Ledger,
        replay_progress: Callable[[], ReplayProgress | None] | None = None,
    ) -> None:
        super().__init__(config)
        self._strategy_key = config.strategy_key
        self._ledger = ledger
        self._instrument_ids = [InstrumentId.from_str(i) for i in config.instrument_ids]
        self._fills_before = config.fills_before
        self._replay_progress = replay_progress
        self._subscribed = False
        self._listeners: list[FillListener] = []
        # OrderFilled event id -> the deterministic trade id of a fill NautilusTrader inferred.
        self._inferred: dict[Any, str] = {}
        # (instrument id, venue order id) of the orders this run inferred a fill of: their venue trades are recorded;
        # the venue's trades reconciliation listed, by order and trade id (at start; afterwards only an inferred
        # order's, until recorded: ``_on_reconciled``); (instrument id, trade id) of those recorded.
        self._inferred_orders: set[tuple[str, str]] = set()
        self._listed: dict[tuple[str, str], dict[str, FillReport]] = {}
        self._recorded_listed: set[tuple[str, str]] = set()
        # OrderFilled event id of a position alignment -> (what the ledger lacks of it, signed; its trade id).
        self._alignments: dict[Any, tuple[Decimal, str]] = {}
        # Client order ids of the orders NautilusTrader made up to align a position (tagged or not).
        self._alignment_orders: set[Any] = set()
        # The signed net position the one book holds for an instrument (set by the runtime: the risk guard's books).
        self.book_position: Callable[[str], Decimal] = lambda _instrument: Decimal(0)
        # The orders this run sent and their arrival prices (set by the runtime: the order gate's, which fills them).
        self.arrivals = Arrivals()
        # Slippage against arrival over the fills this run recorded (``strategy_runtime.slippage``).
        self.slippage = SlippageTally()
        # (instrument, trade id) recorded before the sweep of the cache at start; None afterwards.
        self._recorded_at_start: set[tuple[str, str]] | None = set()
        self.order_events: Counter[str] = Counter()
        self.position_events = 0
        self.account_events = 0
        self.fills_seen = 0
        self.fills_inferred = 0
        self.fills_not_recorded = 0
        self._last_fill_event: OrderFilled | None = None
        # Fills that reached the execution engine and that the bus has not delivered yet, by event id (the engine
        # completes the same event object: its id stays), and those of them recorded before the bus delivered them.
        self._undelivered: dict[Any, OrderFilled] = {}
        self._recorded_early: set[Any] = set()
        self._events_endpoint: tuple[Any, Callable[[Any], None], Callable[[Any], None]] | None = None

    # ------------------------------------------------------------------ lifecycle
    def attach(self, exec_engine: Any | None = None, events_handler: Callable[[Any], None] | None = None) -> None:
        """Subscribe now, before the node starts, so start-up reconciliation's fills are recorded too.

        With the live execution engine (``exec_engine``), fills it infers from order status
        reports are recorded under a deterministic trade id (see the module docstring).
        ``events_handler``: what the message bus's ``ExecEngine.process`` endpoint calls now; fills
        are recorded before it is called (see the module docstring).
        """
        if events_handler is not None and self._events_endpoint is None:
            msgbus = self.msgbus  # registered with the node's trader: the kernel's bus

            def on_execution_event(event: Any) -> None:
                if isinstance(event, OrderFilled):
                    self._undelivered[event.id] = event
                    inferred = self._inferred_orders  # empty unless NautilusTrader inferred a fill: one test per fill
                    if inferred and (event.instrument_id.value, event.venue_order_id.value) in inferred:
                        # A trade of an order filled by inference: the engine may reject it as an overfill
                        # (``_check_overfill``: never published); recorded now, the ledger's rule counts it once.
                        self._record_early(event)
                try:
                    events_handler(event)
                except BaseException:
                    self.record_undelivered()  # the engine failed on it: the venue executed it all the same
                    raise

            msgbus.deregister(EXEC_EVENTS_ENDPOINT, events_handler)
            msgbus.register(EXEC_EVENTS_ENDPOINT, on_execution_event)
            self._events_endpoint = (msgbus, events_handler, on_execution_event)
        if exec_engine is not None and hasattr(exec_engine, ORDER_GENERATION_METHOD):
            make_order = getattr(exec_engine, ORDER_GENERATION_METHOD)

            def generate_order(report: Any, is_external: bool = True) -> Any:
                order = make_order(report, is_external)
                if order is not None and not is_external:
                    self._alignment_orders.add(order.client_order_id)
                return order

            setattr(exec_engine, ORDER_GENERATION_METHOD, generate_order)
        if exec_engine is not None and hasattr(exec_engine, INFERRED_FILL_METHOD):
            generate = getattr(exec_engine, INFERRED_FILL_METHOD)

            def generate_inferred_fill(order: Any, report: Any, instrument: Any) -> OrderFilled:
                before = self._node_position(instrument.id)
                fill = generate(order, report, instrument)
                if POSITION_ALIGNMENT_TAG in (order.tags or []) or order.client_order_id in self._alignment_orders:
                    return self._aligning(fill, instrument, before)
                trade_id = inferred_trade_id(report.venue_order_id.value, report.filled_qty.as_decimal())
                self._inferred[fill.id] = trade_id
                order_key = (instrument.id.value, report.venue_order_id.value)
                self._inferred_orders.add(order_key)
                logger.warning(
                    "reporter: the venue reported order %s (%s) filled to %s without the trades; NautilusTrader "
                    "inferred a fill of %s at %s, recorded in the ledger as %s",
                    order.client_order_id,
                    report.venue_order_id,
                    report.filled_qty,
                    fill.last_qty,
                    fill.last_px,
                    trade_id,
                )
                self._record_listed(order_key)  # the venue's trades of it, if reconciliation listed them already
                return fill

            setattr(exec_engine, INFERRED_FILL_METHOD, generate_inferred_fill)
        self._subscribe()

    def _book_position(self, instrument_id: str) -> Decimal:
        return self.book_position(instrument_id)

    def _node_position(self, instrument_id: Any) -> Decimal:
        return sum((p.signed_decimal_qty() for p in self.cache.positions_open(instrument_id=instrument_id)), Decimal(0))

    def _aligning(self, fill: OrderFilled, instrument: Any, node_before: Decimal) -> OrderFilled:
        """A fill NautilusTrader made up to align the node's position with the venue's (the venue reported a
        position its trades do not explain: one older than the trades it returns). The ledger needs only what
        its own book lacks of the venue's position: at a restart it already holds the alignment of the last start,
        while the node, starting empty, makes it again."""
        signed = fill.last_qty.as_decimal() * (1 if fill.is_buy else -1)
        venue = node_before + signed
        ledger = self._book_position(str(instrument.id))
        missing = venue - ledger
        self._alignments[fill.id] = (missing, position_alignment_id(venue, ledger))
        logger.warning(
            "reporter: the venue holds %s %s that its trades do not explain; NautilusTrader inferred a fill of %s; "
            "the ledger's book holds %s of it: %s",
            venue,
            instrument.id,
            signed,
            ledger,
            f"recorded {missing:+f} as {position_alignment_id(venue, ledger)}" if missing else "nothing to record",
        )
        return fill

    def on_fill(self, listener: FillListener) -> None:
        """Call ``listener`` with every fill recorded (the risk guard books its PnL from them)."""
        self._listeners.append(listener)

    def on_start(self) -> None:
        self._subscribe()

    def _subscribe(self) -> None:
        if self._subscribed:
            return
        self.msgbus.subscribe(ORDER_TOPIC, self._on_order_event)
        self.msgbus.subscribe(POSITION_TOPIC, self._on_position_event)
        self.msgbus.subscribe(ACCOUNT_TOPIC, self._on_account_event)
        self.msgbus.subscribe(REPORTS_TOPIC, self._on_reconciled)
        self.msgbus.subscribe(f"{LISTED_TRADES_TOPIC}.*", self._on_reconciled)
        self._subscribed = True

    def record_cached_fills(self) -> int:
        """After the start: record every fill in the cache that did not pass the bus; how many."""
        seen, self._recorded_at_start = self._recorded_at_start or set(), None
        # Start-up reconciliation is over: the trades it listed are not needed any more (a long run would hold them).
        self._listed.clear()
        self._recorded_listed.clear()
        swept = 0
        for order in self.cache.orders():
            for event in order.events:
                if isinstance(event, OrderFilled) and (event.instrument_id.value, self._trade_id(event)) not in seen:
                    swept += 1
                    self._record_fill(event)
        if swept:
            logger.warning("reporter: %d fill(s) found in the cache at start without an event: recorded", swept)
        return swept

    def on_dispose(self) -> None:
        if self._events_endpoint is not None:
            msgbus, handler, ours = self._events_endpoint
            msgbus.deregister(EXEC_EVENTS_ENDPOINT, ours)
            msgbus.register(EXEC_EVENTS_ENDPOINT, handler)
            self._events_endpoint = None
        if not self._subscribed:
            return
        self.msgbus.unsubscribe(ORDER_TOPIC, self._on_order_event)
        self.msgbus.unsubscribe(POSITION_TOPIC, self._on_position_event)
        self.msgbus.unsubscribe(ACCOUNT_TOPIC, self._on_account_event)
        self.msgbus.unsubscribe(REPORTS_TOPIC, self._on_reconciled)
        self.msgbus.unsubscribe(f"{LISTED_TRADES_TOPIC}.*", self._on_reconciled)
        self._subscribed = False

    # ------------------------------------------------------------------ handlers
    def _on_order_event(self, event: object) -> None:
        self.order_events[type(event).__name__] += 1
        if isinstance(event, OrderFilled):
            self._record_fill(event)  # with the order's arrival price: looked up before the order is forgotten
            order = self.cache.order(event.client_order_id)
            self.arrivals.filled_once(event.client_order_id, order is None or order.is_closed)
        elif isinstance(event, CLOSED_WITHOUT_FILL):
            self.arrivals.closed(event.client_order_id)
        elif isinstance(event, OrderDenied):
            self.arrivals.denied(event.client_order_id)

    def _trade_id(self, event: OrderFilled) -> str:
        alignment = self._alignments.get(event.id)
        return self._inferred.get(event.id) or (alignment[1] if alignment else None) or event.trade_id.value

    def record_undelivered(self) -> int:
        """Record every fill that reached the execution engine and that the bus has not delivered; how many."""
        pending, self._undelivered = self._undelivered, {}
        for event in pending.values():
            if event.id in self._recorded_early:
                continue  # recorded as it reached the engine (a trade of an order filled by inference)
            if self._record_early(event):
                logger.warning(
                    "reporter: fill %s of order %s (%s %s %s @ %s) reached the node but not its books: recorded in "
                    "the ledger as the venue reported it",
                    event.trade_id,
                    event.client_order_id,
                    "BUY" if event.is_buy else "SELL",
                    event.last_qty,
                    event.instrument_id,
                    event.last_px,
                )
        return len(pending)

    def _record_early(self, event: OrderFilled) -> bool:
        """Record ``event`` before (or without) the bus's delivery, once; whether it was recorded now. An event the
        engine has not given a position yet (or never will: an overfill it rejects) takes its order's."""
        if event.id in self._recorded_early:
            return False
        try:
            record = self._record_of(event)
            if record is None:
                return False  # a position alignment the ledger's book already holds
            if record.position_id is None and (position_id := self.cache.position_id(event.client_order_id)):
                record = dataclasses.replace(record, position_id=position_id.value)
            self._write(record)
        except Exception:
            # The fill happened at the venue whatever the ledger says: make it loud, keep it in the log.
            self.fills_not_recorded += 1
            logger.exception("reporter: fill %s NOT recorded in the ledger: %r", event.trade_id, event)
            return False
        self._recorded_early.add(event.id)
        self._tell_listeners(record)
        return True

    def _record_fill(self, event: OrderFilled) -> None:
        self.fills_seen += 1
        inferred = self._inferred.get(event.id)
        alignment = self._alignments.get(event.id)
        if inferred is not None or alignment is not None:
            self.fills_inferred += 1
        if alignment is not None and alignment[0] == 0:
            # The ledger's book already holds the venue's position (recorded at an earlier start).
            if self._recorded_at_start is not None:
                self._recorded_at_start.add((event.instrument_id.value, alignment[1]))
            return
        try:
            record = self._record_of(event)
            assert record is not None  # an alignment the book holds returned above
            self._undelivered.pop(event.id, None)
            if event.id in self._recorded_early:
                self._recorded_early.discard(event.id)  # recorded before the bus delivered it
            else:
                self._write(record)
        except Exception:
            # The fill happened at the venue whatever the ledger says: make it loud, keep it in the log.
            self.fills_not_recorded += 1
            logger.exception("reporter: fill %s NOT recorded in the ledger: %r", event.trade_id, event)
        else:
            if self._recorded_at_start is not None:
                self._recorded_at_start.add((record.instrument_id, record.trade_id))
            self._tell_listeners(record)
        self._last_fill_event = event  # turned into the API's Fill only when reported

    def _write(self, record: FillRecord) -> None:
        """Into the ledger (enqueued), and into this run's slippage: the same records, so the status's figure is
        the ledger's rows recomputed."""
        self._ledger.record(record)
        self.slippage.add(record)

    def _record_of(self, event: OrderFilled) -> FillRecord | None:
        """The ledger's record of ``event``: an inferred fill under its marked id, a position alignment for what
        the book lacks of it (None when it lacks nothing); with its order's arrival price when this run sent it."""
        alignment = self._alignments.get(event.id)
        arrival = self.arrivals.price_of(event.client_order_id)
        if alignment is None:
            return from_order_filled(
                event, self._strategy_key, trade_id=self._inferred.get(event.id), arrival_price=arrival
            )
        missing, trade_id = alignment
        if missing == 0:
            return None
        record = from_order_filled(event, self._strategy_key, trade_id=trade_id, arrival_price=arrival)
        return dataclasses.replace(record, quantity=abs(missing), side="BUY" if missing > 0 else "SELL")

    def _tell_listeners(self, record: FillRecord) -> None:
        for listener in self._listeners:
            try:
                listener(record)
            except Exception:
                logger.exception("reporter: a fill listener failed on %s", record.trade_id)

    def _on_reconciled(self, message: object) -> None:
        """The venue's trades a reconciliation listed (``LISTED_TRADES_TOPIC``: as the venue answered, before the
        engine drops the reports of an order it holds already) or reconciled (``REPORTS_TOPIC``): those of an order
        this run inferred a fill of are recorded (the engine skips them once it has inferred the fill), so that they
        supersede the inferred fill now rather than at the next start."""
        if isinstance(message, ExecutionMassStatus):
            reports = [r for fills in message.fill_reports.values() for r in fills]
        elif isinstance(message, FillReport):
            reports = [message]
        elif isinstance(message, list):
            reports = [r for r in message if isinstance(r, FillReport)]
        else:
            return
        # Once the node runs (``record_cached_fills``), a listing (the position check's missing trades, which the
        # engine reconciles itself) is kept only for an order this run inferred a fill of, and only until recorded:
        # a long run would otherwise hold every trade listed to it.
        in_run = self._recorded_at_start is None
        orders = set()
        for report in reports:
            order = (report.instrument_id.value, report.venue_order_id.value)
            if in_run and order not in self._inferred_orders:
                continue
            self._listed.setdefault(order, {})[report.trade_id.value] = report
            orders.add(order)
        for order in orders:
            self._record_listed(order)
            if in_run:
                del self._listed[order]

    def _record_listed(self, order: tuple[str, str]) -> None:
        if order not in self._inferred_orders:
            return
        for trade_id, report in self._listed.get(order, {}).items():
            if (order[0], trade_id) in self._recorded_listed:
                continue
            self._recorded_listed.add((order[0], trade_id))
            try:
                record = self._record_of_report(report)
                self._write(record)
            except Exception:
                self.fills_not_recorded += 1
                logger.exception("reporter: venue trade %s NOT recorded in the ledger: %r", report.trade_id, report)
                continue
            self._tell_listeners(record)
            logger.warning(
                "reporter: the venue's trade %s of order %s (%s %s %s @ %s), which NautilusTrader filled by inference, "
                "came in a reconciliation report: recorded; it supersedes the inferred fill",
                report.trade_id,
                report.venue_order_id,
                record.side.value,
                report.last_qty,
                report.instrument_id,
                report.last_px,
            )

    def _record_of_report(self, report: FillReport) -> FillRecord:
        """The ledger's record of a venue's trade as a reconciliation report carries it (no OrderFilled: the engine
        did not apply it), with its order's ids and position as the node holds them."""
        client_order_id = report.client_order_id or self.cache.client_order_id(report.venue_order_id)
        instrument = self.cache.instrument(report.instrument_id)
        position_id = self.cache.position_id(client_order_id) if client_order_id is not None else None
        return from_fill_report(
            report,
            self._strategy_key,
            client_order_id=(client_order_id or report.venue_order_id).value,
            position_id=position_id.value if position_id is not None else None,
            quote_currency=instrument.quote_currency.code if instrument is not None else None,
        )

    def _on_position_event(self, _event: object) -> None:
        self.position_events += 1

    def _on_account_event(self, _event: object) -> None:
        self.account_events += 1

    # ------------------------------------------------------------------ queries
    @property
    def last_fill(self) -> Fill | None:
        event = self._last_fill_event
        if event is None:
            return None
        return Fill(
            time=utc_text_from_ns(event.ts_event),
            instrument=event.instrument_id.value,
            side="BUY" if event.is_buy else "SELL",
            quantity=str(event.last_qty),
            price=str(event.last_px),
            trade_id=self._trade_id(event),
        )

    @property
    def fills_in_ledger(self) -> int:
        """Fills the ledger holds under this runtime's key (committed): a live strategy's earlier runs included,
        a paper strategy's current run only; an inferred fill the venue's own trades superseded whole no longer
        (``ledger.supersede``)."""
        return self._fills_before + self._ledger.lag().totals.rows

    @property
    def fills_superseded(self) -> int:
        """Inferred fills this runtime's writes took out of the ledger's count: the venue's trades superseded them whole
        (one superseded in part keeps its row, smaller, and is not counted)."""
        return self._ledger.lag().totals.superseded

    def instruments(self) -> list[InstrumentId]:
        return portfolio_view.traded_instruments(self.cache, self._instrument_ids)

    def trading_state(self, node_state: str, pnl: portfolio_view.PnlView, positions: list[Position]) -> TradingState:
        """The trading state now (no heartbeat: the status pusher stamps it when it sends). ``pnl`` and
        ``positions``: the one book's (the risk guard's, of every fill recorded: ``strategy_runtime.book_view``)."""
        return TradingState(
            fills=self.fills_in_ledger,
            last_fill=self.last_fill,
            realized_pnl=portfolio_view.money_text(pnl.realized),
            unrealized_pnl=portfolio_view.money_text(pnl.unrealized),
            total_pnl=portfolio_view.money_text(pnl.total),
            positions=positions,
            open_orders=len(working_orders(self.cache)),
            node_state=node_state,
            replay=self._replay_progress() if self._replay_progress is not None else None,
            ledger_key=self._strategy_key,
            orders_submitted=self.arrivals.submitted,
            orders_filled=self.arrivals.filled,
            slippage_bps=self.slippage.text(),
        )
