"""The reporting component: a NautilusTrader actor that records every fill and knows the trading state.

It listens on the message bus to what the execution engine and the portfolio publish for
every strategy of the node:

- ``events.order.*``: every order event; each ``OrderFilled`` goes to the ledger
  (``Ledger.record`` only enqueues, so the node never waits on a database) and becomes the
  last fill; the events are counted by kind for the metrics;
- ``events.position.*`` and ``events.account.*``: counted, and they tell the status that
  positions or balances moved.

``trading_state()`` turns the node's cache and portfolio into the API's ``TradingState``
whenever the status pusher, ``/state`` or ``/metrics`` asks: nothing is computed per event
beyond the ledger record.

The subscriptions end in ``on_dispose``, not ``on_stop``: the trader stops actors before
strategies, and the fills of a strategy's own closing orders on stop arrive afterwards.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import InstrumentId

from livestrat.api.status import Fill, ReplayProgress, TradingState
from strategy_runtime import portfolio_view
from strategy_runtime.ledger import Ledger, from_order_filled

logger = logging.getLogger("livestrat.reporter")

REPORTER_ID = "LivestratReporter"
ORDER_TOPIC = "events.order.*"
POSITION_TOPIC = "events.position.*"
ACCOUNT_TOPIC = "events.account.*"


def iso_from_ns(ts: int) -> str:
    return datetime.fromtimestamp(ts / 1e9, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Reporter(Actor):
    """Records fills in the ledger and reports the trading state of the whole node.

    ``fills_before`` is what the ledger held for this strategy when the runtime started, so
    that ``fills`` counts every fill the ledger holds, earlier runs included.
    """

    def __init__(
        self,
        *,
        strategy_key: str,
        ledger: Ledger,
        instrument_ids: Iterable[str],
        fills_before: int,
        replay_progress: Callable[[], ReplayProgress | None] | None = None,
    ) -> None:
        super().__init__(ActorConfig(component_id=REPORTER_ID))
        self._strategy_key = strategy_key
        self._ledger = ledger
        self._instrument_ids = [InstrumentId.from_str(i) for i in instrument_ids]
        self._fills_before = fills_before
        self._replay_progress = replay_progress
        self._subscribed = False
        self.order_events: Counter[str] = Counter()
        self.position_events = 0
        self.account_events = 0
        self.fills_seen = 0
        self.fills_not_recorded = 0
        self._last_fill_event: OrderFilled | None = None

    # ------------------------------------------------------------------ lifecycle
    def on_start(self) -> None:
        if self._subscribed:
            return
        self.msgbus.subscribe(ORDER_TOPIC, self._on_order_event)
        self.msgbus.subscribe(POSITION_TOPIC, self._on_position_event)
        self.msgbus.subscribe(ACCOUNT_TOPIC, self._on_account_event)
        self._subscribed = True

    def on_dispose(self) -> None:
        if not self._subscribed:
            return
        self.msgbus.unsubscribe(ORDER_TOPIC, self._on_order_event)
        self.msgbus.unsubscribe(POSITION_TOPIC, self._on_position_event)
        self.msgbus.unsubscribe(ACCOUNT_TOPIC, self._on_account_event)
        self._subscribed = False

    # ------------------------------------------------------------------ handlers
    def _on_order_event(self, event: object) -> None:
        self.order_events[type(event).__name__] += 1
        if isinstance(event, OrderFilled):
            self._record_fill(event)

    def _record_fill(self, event: OrderFilled) -> None:
        self.fills_seen += 1
        try:
            self._ledger.record(from_order_filled(event, self._strategy_key))
        except Exception:
            # The fill happened at the venue whatever the ledger says: make it loud, keep it in the log.
            self.fills_not_recorded += 1
            logger.exception("reporter: fill %s NOT recorded in the ledger: %r", event.trade_id, event)
        self._last_fill_event = event  # turned into the API's Fill only when reported

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
            time=iso_from_ns(event.ts_event),
            instrument=event.instrument_id.value,
            side="BUY" if event.is_buy else "SELL",
            quantity=str(event.last_qty),
            price=str(event.last_px),
            trade_id=event.trade_id.value,
        )

    @property
    def fills_in_ledger(self) -> int:
        """Fills the ledger holds for this strategy (committed), earlier runs included."""
        return self._fills_before + self._ledger.lag().totals.new

    def instruments(self) -> list[InstrumentId]:
        return portfolio_view.traded_instruments(self.cache, self._instrument_ids)

    def trading_state(self, node_state: str) -> TradingState:
        """The trading state now (no heartbeat: the status pusher stamps it when it sends)."""
        instruments = self.instruments()
        pnl = portfolio_view.pnl(self.portfolio, self.cache, instruments)
        return TradingState(
            fills=self.fills_in_ledger,
            last_fill=self.last_fill,
            realized_pnl=portfolio_view.money_text(pnl.realized),
            unrealized_pnl=portfolio_view.money_text(pnl.unrealized),
            total_pnl=portfolio_view.money_text(pnl.total),
            positions=portfolio_view.positions(self.portfolio, self.cache, instruments),
            open_orders=self.cache.orders_open_count(),
            node_state=node_state,
            replay=self._replay_progress() if self._replay_progress is not None else None,
        )
