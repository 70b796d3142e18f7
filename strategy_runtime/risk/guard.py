"""The post-trade risk guard: a NautilusTrader actor that stops trading when a limit breaks.

What it watches:

- ``maxDailyLoss``: the UTC day's total PnL (realized + unrealized) falls below minus the
  limit; checked on every position event, on every price update while a position is open, and on a venue's
  trade booked over an inferred fill (the node applies no such trade: no position event follows it);
- ``maxDrawdown``: total PnL falls the limit (or more) below its peak; checked like the
  daily loss;
- ``maxPosition``: an instrument's absolute net position exceeds the limit; checked on every
  position event, and at start (a position the venue reports at reconciliation);
- ``maxNotionalPerOrder``: an order's notional exceeds the limit; checked on every order on
  its way to the venue (the order gate, ``gate.OrderGate``), and from the RiskEngine's denials;
- ``maxOrderSubmitRate`` / ``maxOrderModifyRate``: the RiskEngine's throttle denied an
  order or a modification (``breach.from_denial``, ``breach.from_modify_rejection``).

This module is the shell that connects them to the node: it subscribes to order and position
events and to prices, marks the open positions of its books (the one book the status shows:
``strategy_runtime.book_view``) at the prices the portfolio would use, reads the portfolio's net
positions (``maxPosition``), and feeds them to the pure limits tracker (``limits.LimitsTracker``:
PnL books, the UTC day, the peak, the breach messages), which decides. Prices go through
``pnl_watch.PnlWatch``, which checks in full only a price that could make a new peak or a breach,
or opens a new day, and settles the figures before anything reads them. It is configured in
NautilusTrader's way, with a frozen ``RiskGuardConfig`` handed to its constructor; its
collaborators (``on_breach``, the ledger's ``PnlHistory``) are given beside it.

On a breach the guard shuts the gate at once (in the same message handler, before the
strategy sees another event), records the breach, and calls ``on_breach``; the runtime
runs the halt's containment (cancel every order, flatten per policy, trading state HALTED).
The guard never reopens the gate: a halted strategy resumes only through a new runtime that
finds the halt acknowledged (see docs/runtime.md, "Risk guard").
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.component import Clock
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.model.data import Bar, QuoteTick
from nautilus_trader.model.events import OrderDenied, OrderModifyRejected
from nautilus_trader.model.identifiers import ComponentId, InstrumentId
from nautilus_trader.model.instruments import CurrencyPair
from nautilus_trader.model.objects import Price
from nautilus_trader.model.orders import Order

from livestrat.api.spec import LiveStrategySpec
from livestrat.api.status import Position, RiskState, RiskStateName
from strategy_runtime import book_view, portfolio_view
from strategy_runtime.ledger.records import FillRecord, RiskBaseline
from strategy_runtime.pnl import ContractTerms, PnlBook
from strategy_runtime.portfolio_view import Amounts
from strategy_runtime.risk import breach as breaches
from strategy_runtime.risk.breach import Breach
from strategy_runtime.risk.gate import OrderGate, fence_unchecked
from strategy_runtime.risk.limits import LimitsTracker, Mark, PnlHistory, PnlShare, limit_value, nanos, utc_now
from strategy_runtime.risk.pnl_watch import Line, PnlWatch
from strategy_runtime.risk.prices import LatestPrices
from strategy_runtime.risk.share import Share
from strategy_runtime.timestamps import utc_text

logger = logging.getLogger("livestrat.risk")

GUARD_ID = "LivestratRiskGuard"
# After the portfolio (priority 10) has taken the new price, before strategies (0) see it.
DATA_PRIORITY = 5


class RiskGuardConfig(ActorConfig, frozen=True, kw_only=True):
    """The guard's post-trade limits (``spec.risk``, None: not checked) and the instruments it watches."""

    component_id: ComponentId | None = ComponentId(GUARD_ID)
    instrument_ids: tuple[str, ...] = ()
    max_daily_loss: float | None = None
    max_drawdown: float | None = None
    max_position: float | None = None
    max_notional_per_order: float | None = None
    # ``LIMIT/HH:MM:SS``; counted by the gate only on a market clock (``attach``): a paper replay.
    max_order_submit_rate: str | None = None
    max_order_modify_rate: str | None = None

    @classmethod
    def from_spec(cls, spec: LiveStrategySpec) -> RiskGuardConfig:
        risk = spec.risk
        return cls(
            instrument_ids=tuple(spec.instruments),
            max_daily_loss=risk.max_daily_loss,
            max_drawdown=risk.max_drawdown,
            max_position=risk.max_position,
            max_notional_per_order=risk.max_notional_per_order,
            max_order_submit_rate=risk.max_order_submit_rate,
            max_order_modify_rate=risk.max_order_modify_rate,
        )


class RiskGuard(Actor):
    """Post-trade limits and the order gate; see the module docstring.

    ``history`` (live): what the ledger holds, so that the limits hold across restarts. ``now``: the
    clock the guard reads (the time of a breach, and the live day when it starts: the venue's, about now).
    ``fence``: why the ledger fence cannot be relied on right now (the ledger's ``fence_refusal``), asked
    by the gate before every order.
    ``attach(exec_engine)`` (after the node is built, before it starts) gives it the node's
    execution engine: the gate forwards every command it lets through to
    ``exec_engine.execute``, and puts that back on the endpoint when disposed.
    """

    def __init__(
        self,
        config: RiskGuardConfig,
        *,
        on_breach: Callable[[Breach], None],
        history: PnlHistory | None = None,
        now: Callable[[], datetime] = utc_now,
        fence: Callable[[], str | None] = fence_unchecked,
    ) -> None:
        super().__init__(config)
        self._instrument_ids = [InstrumentId.from_str(i) for i in config.instrument_ids]
        self._on_breach = on_breach
        self._now = now
        self.limits = LimitsTracker(
            max_daily_loss=config.max_daily_loss,
            max_drawdown=config.max_drawdown,
            max_position=config.max_position,
            history=history,
            now=now,
        )
        self._watch = PnlWatch(self.limits, self._reprice)
        self._multipliers: dict[InstrumentId, float | None] = {}  # None: not a line in the price (inverse, …)
        self._prices: LatestPrices | None = None  # the cache's prices as the portfolio reads them (from on_start)
        self.gate = OrderGate(
            max_notional=limit_value(config.max_notional_per_order), on_breach=self.trip, now=now, fence=fence
        )
        self._exec_engine: Any = None
        self._front_doors: dict[str, Callable[[Any], None]] = {}
        self._market_clock: Clock | None = None
        self._subscriptions: list[tuple[str, Callable[[Any], None]]] = []
        self._data_subscribed = False
        self._prices_subscribed = False
        self._started = False
        self.limit_state: str = RiskStateName.ACTIVE
        self.breach: Breach | None = None
        self._known: set[InstrumentId] = set(self._instrument_ids)  # grows with position events
        # The one bar type seen of each instrument (False: more than one), for ``_own_close``.
        self._bar_types_seen: dict[InstrumentId, Any] = {}

    # ------------------------------------------------------------------ lifecycle
    def attach(
        self,
        exec_engine: Any,
        front_doors: Mapping[str, Callable[[Any], None]] | None = None,
        *,
        market_clock: Clock | None = None,
        count_rates: bool = True,
    ) -> None:
        """The node's execution engine; ``front_doors``: the endpoints before the RiskEngine (the OrderEmulator's,
        each execution algorithm's) and their handlers, for the gate to stand on as well (see ``risk.gate``);
        ``market_clock`` (a paper replay's, a backtest's): breaches are timed on it in market time (without one:
        the latest market time the limits saw), and with ``count_rates`` the gate counts the submit and modify
        rates on it, as a backtest's RiskEngine does on its clock (a paper node's RiskEngine does not)."""
        self._exec_engine = exec_engine
        self._front_doors = dict(front_doors or {})
        self._market_clock = market_clock
        if market_clock is not None and count_rates:
            config = self.config
            self.gate.count_rates(market_clock, config.max_order_submit_rate, config.max_order_modify_rate)

    def on_start(self) -> None:
        if self._exec_engine is None:
            raise RuntimeError("the risk guard starts without its order gate: attach() the execution engine first")
        self.gate.install(self.msgbus, self.cache, self.clock, self._exec_engine, self._front_doors)
        self._prices = LatestPrices(self.cache)
        if not self._data_subscribed:
            self._data_subscribed = True
            # From on_start: what a live node's start-up reconciliation published before it, on_start
            # reads from the portfolio below. (NautilusTrader 1.221 never delivered topics published
            # before a wildcard subscription; 1.231 does: tests/runtime/test_nautilus_pins.py.)
            self._subscribe("events.order.*", self._on_order_event)
            self._subscribe("events.position.*", self._on_position_event)
            if self.limits.watches_pnl:
                self._subscribe_prices()
        self._started = True
        self._refresh()
        self.limits.start(clock_ns=nanos(self._now()), terms=self._terms)  # live: the day is the venue's, about now
        if self.limits.carries_over and self.limits.watches_pnl:
            self._check_pnl()  # a loss carried over may already be past a limit
        if self.limits.max_position is not None:
            for instrument_id in self._instruments():  # a position reconciled at start may already be too big
                self._check_position(instrument_id)

    def _subscribe_prices(self) -> None:
        if self._prices_subscribed:
            return
        self._prices_subscribed = True
        for instrument_id in self._instrument_ids:
            venue, symbol = instrument_id.venue.value, instrument_id.symbol.value
            self._subscribe(f"data.bars.{instrument_id}-*", self._on_price, DATA_PRIORITY)
            self._subscribe(f"data.quotes.{venue}.{symbol}", self._on_price, DATA_PRIORITY)
            self._subscribe(f"data.trades.{venue}.{symbol}", self._on_price, DATA_PRIORITY)

    def set_share(self, share: Share | None) -> None:
        """The strategy's share of its RiskBudget, read back from a status push (None: not a member), in force
        from the next order and the next price: the gate holds orders within its exposure, open orders and
        reduce-only; the daily loss and drawdown checks use the tighter of the strategy's own limit and its share.
        A share that is already broken (it shrank below the day's loss) is a breach now, as the own limit's."""
        self.gate.set_share(share)
        pnl = None
        if share is not None:
            money = share.max_daily_loss or share.max_drawdown
            if money is not None:
                pnl = PnlShare(
                    budget=share.budget,
                    currency=money.currency,
                    daily=share.max_daily_loss.amount if share.max_daily_loss is not None else None,
                    drawdown=share.max_drawdown.amount if share.max_drawdown is not None else None,
                )
        if pnl == self.limits.pnl_share:
            return
        self.limits.share(pnl)
        if not self._started:
            return  # on_start subscribes and checks with the share in place
        if self.limits.watches_pnl and self._data_subscribed:
            self._subscribe_prices()
        self._forget_line()  # the watch's band was drawn with the old limits
        if self.limits.watches_pnl:
            self._refresh()
            self._check_pnl()

    def on_dispose(self) -> None:
        # Not on_stop: strategies stop after actors, and their closing orders must still meet the gate.
        for topic, handler in self._subscriptions:
            self.msgbus.unsubscribe(topic, handler)
        self._subscriptions.clear()
        self._data_subscribed = False
        self._prices_subscribed = False
        self.gate.uninstall()

    def _subscribe(self, topic: str, handler: Callable[[Any], None], priority: int = 0) -> None:
        self.msgbus.subscribe(topic, handler, priority=priority)
        self._subscriptions.append((topic, handler))

    # ------------------------------------------------------------------ fills, positions, prices
    def on_fill(self, fill: FillRecord) -> None:
        """Every fill the reporter records (start-up reconciliation's included): book its realized PnL."""
        self._forget_line()
        if self.limits.on_fill(fill) and self._started:
            # A venue's trade over an inferred fill: the node keeps the inferred one, no position event follows.
            self._recheck_pnl(fill.ts_event)

    def book_position(self, instrument_id: str) -> Decimal:
        """The signed net position the one book holds for ``instrument_id`` (the ledger's fills and every one since)."""
        book = self.limits.books.get(instrument_id)
        return Decimal(book.position.numerator) / Decimal(book.position.denominator) if book is not None else Decimal(0)

    def _terms(self, instrument_id: str) -> ContractTerms:
        instrument = self.cache.instrument(InstrumentId.from_str(instrument_id))
        if instrument is None:
            logger.warning(
                "risk guard: %s is not in the cache: its PnL is booked as linear, multiplier 1", instrument_id
            )
            return ContractTerms()
        return ContractTerms(
            multiplier=instrument.multiplier.as_decimal(),
            inverse=instrument.is_inverse,
            settlement_currency=instrument.get_cost_currency().code if instrument.is_inverse else None,
            # a spot pair: a commission in its base (Binance spot's buys) comes off the position, priced
            base_currency=instrument.base_currency.code if isinstance(instrument, CurrencyPair) else None,
        )

    def _on_position_event(self, event: Any) -> None:
        self._known.add(event.instrument_id)
        if not self._started:
            return  # reconciliation, before the trader runs: on_start takes the portfolio as it is
        self._forget_line()  # before the day can turn: it opens with the total PnL of the last price
        if self.limits.max_position is not None:
            self.limits.advance(event.ts_event)
            self._check_position(event.instrument_id)
        self._recheck_pnl(event.ts_event)

    def _recheck_pnl(self, ts_ns: int) -> None:
        """After what moved the book without a price (a position event, a venue trade over an inferred fill): the
        market's time to ``ts_ns`` (a new day opens before the change counts), the marks from the book, the check."""
        self.limits.advance(ts_ns)
        if self.limits.watches_pnl:
            self._refresh()
            self._check_pnl()

    def _on_price(self, data: Any) -> None:
        if isinstance(data, QuoteTick):
            instrument_id = data.instrument_id
            long = self.portfolio.is_net_long(instrument_id)
            price = data.bid_price if long else data.ask_price  # where a close would trade, as the portfolio
        elif isinstance(data, Bar) and self._own_close(data):
            instrument_id, price = data.bar_type.instrument_id, data.close  # most bars of a paper replay on bars
        else:
            # A trade or a bar need not move where a close would trade: not while there is a quote (the bid, the
            # ask), nor a bar while there is a trade, nor a longer bar than the shortest the cache holds.
            instrument_id = data.bar_type.instrument_id if isinstance(data, Bar) else data.instrument_id
            book = self.limits.books.get(instrument_id.value)
            price = self._close_price(instrument_id, book is None or book.position > 0)
            if price is None:
                price = data.close if isinstance(data, Bar) else data.price
        value, ts_ns = price.as_double(), data.ts_event
        watch = self._watch
        if watch.quiet(instrument_id, price, value, ts_ns):  # most prices: a position is open, PnL in its band
            return
        # Unrealized PnL moves with the price only while something is open; realized only with fills.
        if not self.cache.positions_open_count():
            self.limits.advance(ts_ns)
            return
        breach = watch.check(instrument_id, price, value, ts_ns, halted=self.tripped)
        if breach is not None:
            self.trip(breach)

    def _settle(self) -> None:
        """The figures at the last price seen, before they are read (``PnlWatch.settle``)."""
        breach = self._watch.settle()
        if breach is not None:
            self.trip(breach)

    def _forget_line(self) -> None:
        """A fill or a position event: PnL is no longer the line the watch knows."""
        breach = self._watch.forget()
        if breach is not None:
            self.trip(breach)

    def _refresh(self) -> None:
        """Every instrument's unrealized PnL from the one book (after a fill; realized is booked)."""
        for instrument_id, book in self.limits.books.items():
            self.limits.mark(instrument_id, self._book_mark(instrument_id, book, None))

    def _book_mark(self, instrument_id: str, book: PnlBook | None, price: Price | None) -> Mark | None:
        """What closing the book's open position of ``instrument_id`` would realize (None: nothing open, no price).

        The book's (``strategy_runtime.book_view``: what ``status.trading`` shows), not the node's positions': on a
        HEDGING venue the node keeps a position per order, a long and a short side by side where the book, as the
        ledger's fills add up, is flat and has realized the difference. ``price``: the price a close would trade at;
        None: the one the portfolio would pick (``book_view.mark_price``: the bid for a long, the ask for a short,
        else the last trade, else the last bar's close; ``LatestPrices``, the cache's answers, cheaper on bars).
        """
        if book is None or book.position == 0:
            return None
        if price is None:
            price = self._close_price(InstrumentId.from_str(instrument_id), book.position > 0)
            if price is None:
                return None
        return book.currency or "", float(book.unrealized(Fraction(price.as_decimal())))

    def _own_close(self, bar: Bar) -> bool:
        """Whether ``bar``'s close is where a close would trade now, as ``_close_price`` would find it, without asking
        the cache's bar types (about 5 µs a bar, on every bar): the instrument has no quote and no trade in the
        cache, and the only bar type of it the guard has seen is the bar's (so the bar is the cache's latest of the
        shortest; a BID, ASK or MID bar is the fallback of the other sides, as in ``_close_price``'s caller)."""
        bar_type = bar.bar_type
        instrument_id = bar_type.instrument_id
        seen = self._bar_types_seen.get(instrument_id)
        if seen is None:
            seen = self._bar_types_seen[instrument_id] = bar_type
        if seen != bar_type:
            self._bar_types_seen[instrument_id] = False  # two bar types of one instrument: the cache decides
            return False
        cache = self.cache
        return cache.quote_tick(instrument_id) is None and cache.trade_tick(instrument_id) is None

    def _close_price(self, instrument_id: InstrumentId, long: bool) -> Price | None:
        """Where closing a position would trade now, as the status marks it (``book_view.close_price``)."""
        return book_view.close_price(self._prices, instrument_id, long) if self._prices is not None else None

    def _reprice(self, instrument_id: InstrumentId, price: Price | None) -> Line | None:
        """One instrument's unrealized PnL at a new price, from its book; its line in the price.

        The line (the currency, and the PnL per unit of price: the book's net position × multiplier) is what
        ``PnlWatch`` bands the price with; None where the PnL is not linear in the price (inverse contracts).
        """
        key = instrument_id.value
        book = self.limits.books.get(key)
        multiplier = self._multiplier(instrument_id)
        if multiplier is None or price is None or book is None or book.position == 0:
            mark = self._book_mark(key, book, price) if price is not None else None
            self.limits.mark(key, mark)
            return None
        # A line in the price: the book's arithmetic in floats (what the limits compare), not in fractions.
        slope = float(book.position) * multiplier
        code = book.currency or ""
        self.limits.mark(key, (code, (price.as_double() - float(book.average)) * slope))
        return code, slope

    def _multiplier(self, instrument_id: InstrumentId) -> float | None:
        """The instrument's multiplier when its PnL is a line in the price (not inverse); None otherwise."""
        if instrument_id not in self._multipliers:
            instrument = self.cache.instrument(instrument_id)
            linear = instrument is not None and not instrument.is_inverse
            self._multipliers[instrument_id] = instrument.multiplier.as_double() if linear else None
        return self._multipliers[instrument_id]

    def _check_pnl(self) -> None:
        breach = self.limits.check_pnl(halted=self.tripped)  # the first breach is the one that counts
        if breach is not None:
            self.trip(breach)

    def _check_position(self, instrument_id: InstrumentId) -> None:
        if self.tripped:
            return
        breach = self.limits.check_position(instrument_id.value, Decimal(self.portfolio.net_position(instrument_id)))
        if breach is not None:
            self.trip(breach)

    def _on_order_event(self, event: Any) -> None:
        if not self._started:
            return
        if isinstance(event, OrderDenied):
            breach = breaches.from_denial(event.client_order_id, event.reason, self._now())
        elif isinstance(event, OrderModifyRejected):
            breach = breaches.from_modify_rejection(event.client_order_id, event.reason, self._now())
        else:
            return
        if breach is not None:
            self.trip(breach)

    # ------------------------------------------------------------------ baselines (live)
    def take_baseline(self) -> RiskBaseline | None:
        """The baseline to save, if it changed since the last call (live only); see ``baseline_unsaved``."""
        self._settle()
        return self.limits.take_baseline()

    def baseline_unsaved(self) -> None:
        """Saving the last ``take_baseline`` failed: offer it again."""
        self.limits.baseline_unsaved()

    # ------------------------------------------------------------------ the gate
    @property
    def gate_shut_because(self) -> str | None:
        return self.gate.shut_because

    @property
    def orders_held(self) -> str | None:
        """Why new orders wait for now: the ledger fence not confirmed, or fills not durable (None: they pass)."""
        return self.gate.held()

    @property
    def denied_by_gate(self) -> int:
        return self.gate.denied

    def shut_gate(self, because: str) -> None:
        """From now on only the halt's closing orders and cancels reach a venue (never undone)."""
        self.gate.shut(because)

    def hold(self, because: str) -> None:
        """Deny new orders and modifications until ``release`` (cancels and the halt's closes pass)."""
        self.gate.hold(because)

    def release(self) -> None:
        self.gate.release()

    def orders_on_their_way(self) -> list[Order]:
        """Orders past the gate that are still INITIALIZED (see ``OrderGate.orders_on_their_way``)."""
        return self.gate.orders_on_their_way()

    # ------------------------------------------------------------------ state
    @property
    def tripped(self) -> bool:
        return self.limit_state != RiskStateName.ACTIVE

    def restore(self, breach: Breach) -> None:
        """Start halted: a halt recorded by an earlier runtime that nobody has acknowledged."""
        self.breach = breach
        self.limit_state = RiskStateName.HALTED
        self.shut_gate(f"{breach.limit}: {breach.reason}")

    def mark_halted(self) -> None:
        """The halt's containment is over: nothing is left that trades."""
        if self.breach is not None:
            self.limit_state = RiskStateName.HALTED

    def trip(self, breach: Breach) -> None:
        """Shut the gate and report a breach; later breaches only log (the first reason is the one kept)."""
        if self.tripped:
            logger.warning("risk guard: %s (already halting for %s)", breach.reason, self.breach and self.breach.limit)
            return
        if breach.market_at is None:
            breach = dataclasses.replace(breach, market_at=self.market_now())
        self.limit_state = RiskStateName.REDUCING
        self.breach = breach
        self.shut_gate(f"{breach.limit}: {breach.reason}")
        logger.error("risk guard: %s: %s; halting trading", breach.limit, breach.reason)
        try:
            self._on_breach(breach)
        except Exception:
            logger.exception("risk guard: the breach handler failed; the gate stays shut")

    def market_now(self) -> datetime | None:
        """Market time now: the market clock's, else the latest the limits saw (None before any)."""
        ns = self._market_clock.timestamp_ns() if self._market_clock is not None else self.limits.market_ns
        return datetime.fromtimestamp(ns / 1e9, UTC) if ns else None

    def _instruments(self) -> list[InstrumentId]:
        return sorted(self._known, key=str)

    @property
    def daily_pnl(self) -> Amounts:
        self._settle()
        return self.limits.daily_pnl

    @property
    def drawdown(self) -> Amounts:
        self._settle()
        return self.limits.drawdown

    # ------------------------------------------------------------------ the one book (strategy_runtime.book_view)
    def book_pnl(self) -> portfolio_view.PnlView:
        """Realized and unrealized PnL per currency from the books of every fill recorded."""
        return book_view.pnl(self.limits.books, self.cache)

    def book_positions(self) -> list[Position]:
        """The open positions the books of every fill recorded leave."""
        return book_view.positions(self.limits.books, self.cache)

    def risk_state(self) -> RiskState:
        exposure = book_view.gross_exposure(self.limits.books, self.cache)
        watch_pnl = self.limits.watches_pnl
        daily = portfolio_view.money_text(self.daily_pnl) if watch_pnl else None  # settles: then its day
        return RiskState(
            state=self.limit_state,
            reason=self.breach.reason if self.breach else None,
            breached_limit=self.breach.limit if self.breach else None,
            breached_at=utc_text(self.breach.at) if self.breach else None,
            breached_at_market=utc_text(self.breach.market_at) if self.breach and self.breach.market_at else None,
            daily_pnl=daily,
            daily_pnl_day=self.limits.day.isoformat() if daily is not None and self.limits.day is not None else None,
            drawdown=portfolio_view.money_text(self.drawdown) if watch_pnl else None,
            max_drawdown=portfolio_view.money_text(self.limits.max_drawdown_seen) if watch_pnl else None,
            exposure=portfolio_view.money_text(exposure),
        )
