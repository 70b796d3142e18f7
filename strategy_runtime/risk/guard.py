"""The post-trade risk guard: a NautilusTrader actor that stops trading when a limit breaks.

What it watches:

- ``maxDailyLoss``: the UTC day's total PnL (realized + unrealized) falls below minus the
  limit; checked on every position event, and on every price update while a position is open;
- ``maxDrawdown``: total PnL falls the limit (or more) below its peak; checked like the
  daily loss;
- ``maxPosition``: an instrument's absolute net position exceeds the limit; checked on every
  position event;
- ``maxNotionalPerOrder``: an order's notional exceeds the limit; checked on every order on
  its way to the venue (the order gate below), and from the RiskEngine's denials;
- ``maxOrderSubmitRate`` / ``maxOrderModifyRate``: the RiskEngine's throttle denied an
  order or a modification.

The order gate. NautilusTrader's RiskEngine skips its notional check on MARGIN accounts
and for market orders when the cache holds no quote or trade (bars only), so a limit set in
the spec could be silently unenforced. The guard therefore sits on the message-bus endpoint
``ExecEngine.execute``, the one door every command passes after the RiskEngine and before
an execution client: it re-checks each order's notional (the order's own price, or for a
market order the best price the cache has, bars included) and denies an oversized order
there, with an ``OrderDenied`` event as the RiskEngine would, so it never reaches the venue.
An oversized order is then also a breach. Once the guard has tripped, the gate stays shut:
only the halt's own reduce-only closing orders (tagged ``HALT_TAG``) and cancels pass, which
also closes the hole of the RiskEngine's REDUCING state (it lets a flat portfolio open, and
an order flip a position through zero).

On a breach the guard shuts the gate at once (in the same message handler, before the
strategy sees another event), records the breach, and calls ``on_breach``; the runtime
runs the halt's containment (cancel every order, flatten per policy, trading state HALTED).
The guard never reopens the gate: a halted strategy resumes only through a new runtime that
finds the halt acknowledged (see docs/runtime.md).

Realized PnL comes from the guard's own books (``ledger.pnl.PnlBook``, NautilusTrader's
arithmetic with each instrument's multiplier and inverse terms), fed every fill the reporter
records, each trade once; unrealized PnL from the portfolio, repriced on every price update.
**Across restarts** (live): the books start from every fill the ledger holds, so the day's
realized PnL and the peak survive a crash, an eviction or a restart; what the fills cannot
tell (the total PnL when the UTC day opened, the highest total PnL reached) is kept in the
ledger as a ``RiskBaseline``, saved by the runtime whenever it changes (``take_baseline``).
An acknowledged halt restarts both from the total PnL at that moment. A paper replay does not
carry anything over: a restarted replay relives its catalog from the start, the same PnL path.

The gate can also be *held* (``hold``/``release``): while the ledger is too far behind, new
orders and modifications are denied (not a breach) and let through again once it has caught up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import ModifyOrder, SubmitOrder, SubmitOrderList
from nautilus_trader.model.data import Bar, QuoteTick
from nautilus_trader.model.enums import OrderSide, OrderStatus, PriceType
from nautilus_trader.model.events import OrderDenied, OrderModifyRejected
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.model.orders import Order

from livestrat.api.spec import RiskLimits
from livestrat.api.status import RiskState, RiskStateName
from strategy_runtime import portfolio_view
from strategy_runtime.ledger import FillRecord, RiskBaseline
from strategy_runtime.pnl import ContractTerms, PnlBook
from strategy_runtime.portfolio_view import Amounts
from strategy_runtime.timestamps import utc_text

logger = logging.getLogger("livestrat.risk")

GUARD_ID = "LivestratRiskGuard"
EXEC_ENDPOINT = "ExecEngine.execute"
# The halt's closing orders carry this tag; nothing else passes the gate once it is shut.
HALT_TAG = "LIVESTRAT_HALT"
# Denials the guard itself issues start with this, so they are never taken for new breaches.
GATE_REASON_PREFIX = "livestrat risk guard: "
# After the portfolio (priority 10) has taken the new price, before strategies (0) see it.
DATA_PRIORITY = 5
NANOS_PER_DAY = 86_400_000_000_000
EPOCH = date(1970, 1, 1)
# The gate forgets orders that left INITIALIZED whenever it tracks more than this many.
FORWARDED_PRUNE_AT = 1_000

# Limit names as the API spells them (RiskState.breachedLimit).
MAX_DAILY_LOSS = "maxDailyLoss"
MAX_DRAWDOWN = "maxDrawdown"
MAX_POSITION = "maxPosition"
MAX_NOTIONAL = "maxNotionalPerOrder"
MAX_SUBMIT_RATE = "maxOrderSubmitRate"
MAX_MODIFY_RATE = "maxOrderModifyRate"


@dataclass(frozen=True)
class Breach:
    """A broken limit: which one, a sentence a trader understands, and when."""

    limit: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class PnlHistory:
    """What the ledger holds for the strategy when a live runtime starts (see the module docstring).

    ``fills``: every fill, in the ledger's order; ``baseline``: the last saved ``RiskBaseline``;
    ``reset``: a halt was just acknowledged, so the day's PnL and the peak start afresh.
    """

    fills: Sequence[FillRecord]
    baseline: RiskBaseline | None = None
    reset: bool = False


def _limit(value: float | None) -> Decimal | None:
    # Through the text, so 0.05 stays 0.05; normalized, so 100.0 reads 100.
    return Decimal(str(value)).normalize() if value else None


def _utc_date(day: int) -> date:
    """The UTC date of ``day`` days since the epoch (the guard's ``_day``)."""
    return EPOCH + timedelta(days=day)


def _cents(amounts: dict[str, float]) -> Amounts:
    return {c: Decimal(f"{v:.2f}") for c, v in amounts.items()}


class RiskGuard(Actor):
    """Post-trade limits and the order gate; see the module docstring.

    ``attach(exec_engine)`` (after the node is built, before it starts) gives it the node's
    execution engine: the gate forwards every command it lets through to
    ``exec_engine.execute``, and puts that back on the endpoint when disposed.
    """

    def __init__(
        self,
        *,
        limits: RiskLimits,
        instrument_ids: Iterable[str],
        on_breach: Callable[[Breach], None],
        history: PnlHistory | None = None,
    ) -> None:
        super().__init__(ActorConfig(component_id=GUARD_ID))
        self._history = history
        self._limits = limits
        self._instrument_ids = [InstrumentId.from_str(i) for i in instrument_ids]
        self._exec_engine: Any = None
        self._on_breach = on_breach
        self._max_notional = _limit(limits.max_notional_per_order)
        self._max_daily_loss = _limit(limits.max_daily_loss)
        self._max_drawdown = _limit(limits.max_drawdown)
        self._max_position = _limit(limits.max_position)
        self._watch_pnl = self._max_daily_loss is not None or self._max_drawdown is not None
        self._daily_limit = float(self._max_daily_loss or 0)  # the hot path compares floats
        self._drawdown_limit = float(self._max_drawdown or 0)
        self._subscriptions: list[tuple[str, Callable[[Any], None]]] = []
        self._data_subscribed = False
        self._gate_installed = False

        self.limit_state: str = RiskStateName.ACTIVE
        self.breach: Breach | None = None
        self.gate_shut_because: str | None = None
        self._known: set[InstrumentId] = set(self._instrument_ids)  # grows with position events
        # Realized PnL by instrument id (text), from the guard's books; unrealized from the portfolio.
        self._books: dict[str, PnlBook] = {}
        self._booked: set[tuple[str, str]] = set()  # (instrument, trade id) of every fill booked
        self._early_fills: list[FillRecord] = []  # fills recorded before the guard started
        self._started = False
        self._realized: dict[str, tuple[str, float]] = {}  # currency, amount
        self._unrealized: dict[InstrumentId, tuple[str, float]] = {}
        # The PnL figures are floats: they are compared with limits on every price update while
        # a position is open (the hot path), and reported rounded to cents.
        self._last_ts = 0
        self._day: int | None = None  # days since the epoch, UTC
        self._last_total: dict[str, float] = {}
        self._day_start: dict[str, float] = {}
        self._peak: dict[str, float] = {}
        self._daily: dict[str, float] = {}
        self._drawdown: dict[str, float] = {}
        self.denied_by_gate = 0
        # Reversible, unlike the shut gate: orders wait while the ledger is too far behind.
        self.held_because: str | None = None
        self._baseline_dirty = False
        # Orders the gate let through to the execution engine, until they leave INITIALIZED:
        # the halt must cancel them too once the venue has them (see ``orders_on_their_way``).
        self._forwarded: dict[Any, Order] = {}

    # ------------------------------------------------------------------ lifecycle
    def attach(self, exec_engine: Any) -> None:
        self._exec_engine = exec_engine

    def on_start(self) -> None:
        if self._exec_engine is None:
            raise RuntimeError("the risk guard starts without its order gate: attach() the execution engine first")
        if not self._gate_installed:
            self.msgbus.deregister(EXEC_ENDPOINT, self._exec_engine.execute)
            self.msgbus.register(EXEC_ENDPOINT, self._gate)
            self._gate_installed = True
        if not self._data_subscribed:
            self._data_subscribed = True
            # From on_start: what a live node's start-up reconciliation published before it, on_start
            # reads from the portfolio below. (NautilusTrader 1.221 never delivered topics published
            # before a wildcard subscription; 1.231 does: tests/runtime/test_nautilus_pins.py.)
            self._subscribe("events.order.*", self._on_order_event)
            self._subscribe("events.position.*", self._on_position_event)
            if self._watch_pnl:
                for instrument_id in self._instrument_ids:
                    venue, symbol = instrument_id.venue.value, instrument_id.symbol.value
                    self._subscribe(f"data.bars.{instrument_id}-*", self._on_price, DATA_PRIORITY)
                    self._subscribe(f"data.quotes.{venue}.{symbol}", self._on_price, DATA_PRIORITY)
                    self._subscribe(f"data.trades.{venue}.{symbol}", self._on_price, DATA_PRIORITY)
        self._started = True
        if self._history is not None:
            # Live: the day is the venue's, about now; the books start from the ledger's fills.
            self._last_ts = self.clock.timestamp_ns()
            self._day = self._last_ts // NANOS_PER_DAY
        carried = self._book_history()
        self._refresh()
        total = self._totals()
        self._last_total = total
        if carried is None:
            self._peak = dict(total)
            self._day_start = dict(total)
        else:
            self._carry_baselines(total, *carried)
            if self._watch_pnl:
                self._check_pnl()  # a loss carried over may already be past a limit
        if self._max_position is not None:
            for instrument_id in self._instruments():  # a position reconciled at start may already be too big
                self._check_position(instrument_id)

    def on_dispose(self) -> None:
        # Not on_stop: strategies stop after actors, and their closing orders must still meet the gate.
        for topic, handler in self._subscriptions:
            self.msgbus.unsubscribe(topic, handler)
        self._subscriptions.clear()
        self._data_subscribed = False
        if self._gate_installed:
            self.msgbus.deregister(EXEC_ENDPOINT, self._gate)
            self.msgbus.register(EXEC_ENDPOINT, self._exec_engine.execute)
            self._gate_installed = False

    def _subscribe(self, topic: str, handler: Callable[[Any], None], priority: int = 0) -> None:
        self.msgbus.subscribe(topic, handler, priority=priority)
        self._subscriptions.append((topic, handler))

    # ------------------------------------------------------------------ fills and books
    def on_fill(self, fill: FillRecord) -> None:
        """Every fill the reporter records (start-up reconciliation's included): book its realized PnL."""
        if not self._started:
            self._early_fills.append(fill)  # booked at start, after the ledger's history
            return
        self._book(fill)

    def _book(self, fill: FillRecord) -> bool:
        key = (fill.instrument_id, fill.trade_id)
        if key in self._booked:
            return False  # a fill the ledger already held (a replay, a reconciliation at restart)
        self._booked.add(key)
        book = self._books.get(fill.instrument_id)
        if book is None:
            book = self._books[fill.instrument_id] = PnlBook(self._terms(fill.instrument_id))
        book.apply(fill)
        self._realized[fill.instrument_id] = (book.currency or "", float(book.net_realized))
        return True

    def _terms(self, instrument_id: str) -> ContractTerms:
        instrument = self.cache.instrument(InstrumentId.from_str(instrument_id)) if self._started else None
        if instrument is None:
            logger.warning(
                "risk guard: %s is not in the cache: its PnL is booked as linear, multiplier 1", instrument_id
            )
            return ContractTerms()
        return ContractTerms(
            multiplier=instrument.multiplier.as_decimal(),
            inverse=instrument.is_inverse,
            settlement_currency=instrument.get_cost_currency().code if instrument.is_inverse else None,
        )

    def _book_history(self) -> tuple[dict[str, Fraction], set[str], dict[str, Fraction]] | None:
        """Book the ledger's fills, then those recorded while the node started; None without a history.

        Returns what the baselines need: the realized PnL per currency when today began, the
        instruments with a position open then, and the highest realized PnL per currency at a
        moment when nothing of that currency was open (total PnL was then realized PnL alone).
        """
        history, early, self._early_fills = self._history, self._early_fills, []
        if history is None:
            for fill in early:
                self._book(fill)
            return None
        today = (self._day or 0) * NANOS_PER_DAY
        at_day_open: tuple[dict[str, Fraction], set[str]] | None = None
        flat_peak: dict[str, Fraction] = {}
        for fill in (*history.fills, *early):
            if at_day_open is None and fill.ts_event >= today:
                at_day_open = self._realized_by_currency(), {i for i, b in self._books.items() if b.position}
            if not self._book(fill):
                continue
            currency = self._books[fill.instrument_id].currency or ""
            same = [b for b in self._books.values() if (b.currency or "") == currency]
            if all(b.position == 0 for b in same):
                realized = sum((b.net_realized for b in same), Fraction(0))
                flat_peak[currency] = max(flat_peak.get(currency, Fraction(0)), realized)
        if at_day_open is None:
            at_day_open = self._realized_by_currency(), {i for i, b in self._books.items() if b.position}
        return at_day_open[0], at_day_open[1], flat_peak

    def _realized_by_currency(self) -> dict[str, Fraction]:
        totals: dict[str, Fraction] = {}
        for book in self._books.values():
            code = book.currency or ""
            totals[code] = totals.get(code, Fraction(0)) + book.net_realized
        return totals

    def _carry_baselines(
        self,
        total: dict[str, float],
        realized_at_day_open: dict[str, Fraction],
        open_at_day_open: set[str],
        flat_peak: dict[str, Fraction],
    ) -> None:
        """The day's opening total PnL and the peak, carried over from earlier runtimes (live)."""
        assert self._history is not None and self._day is not None
        history, today = self._history, _utc_date(self._day)
        if history.reset:
            self._day_start, self._peak = dict(total), dict(total)
            logger.warning("risk guard: the halt was acknowledged: the day's PnL and the peak start again from now")
        else:
            saved = history.baseline
            if saved is not None and saved.day == today:
                self._day_start = dict(saved.day_open)
            else:
                # Nobody saw today open: realized PnL then, plus what the positions open then show
                # now (the move between the day's open and this start is not known).
                start: dict[str, float] = {c: float(v) for c, v in realized_at_day_open.items()}
                for instrument_id, (code, amount) in self._unrealized.items():
                    if str(instrument_id) in open_at_day_open:
                        start[code] = start.get(code, 0.0) + amount
                self._day_start = start
            peak = {c: float(v) for c, v in flat_peak.items()}
            for source in (saved.peak if saved is not None else {}, total):
                for code, value in source.items():
                    peak[code] = max(peak.get(code, value), value)
            self._peak = peak
        self._baseline_dirty = True
        logger.info(
            "risk guard: carried over from the ledger: %d fill(s), day %s opened at %s, peak %s",
            len(self._booked),
            today,
            self._day_start,
            self._peak,
        )

    def take_baseline(self) -> RiskBaseline | None:
        """The baseline to save, if it changed since the last call (live only); see ``baseline_unsaved``."""
        if self._history is None or not self._baseline_dirty or self._day is None:
            return None
        self._baseline_dirty = False
        return RiskBaseline(
            day=_utc_date(self._day),
            day_open=dict(self._day_start),
            peak=dict(self._peak),
        )

    def baseline_unsaved(self) -> None:
        """Saving the last ``take_baseline`` failed: offer it again."""
        self._baseline_dirty = True

    # ------------------------------------------------------------------ state
    @property
    def tripped(self) -> bool:
        return self.limit_state != RiskStateName.ACTIVE

    def shut_gate(self, because: str) -> None:
        """From now on only the halt's closing orders and cancels reach a venue (never undone)."""
        if self.gate_shut_because is None:
            self.gate_shut_because = because

    def hold(self, because: str) -> None:
        """Deny new orders and modifications until ``release`` (cancels and the halt's closes pass)."""
        if self.held_because is None:
            logger.error("risk guard: new orders are held: %s", because)
        self.held_because = because

    def release(self) -> None:
        if self.held_because is not None:
            logger.warning("risk guard: orders pass again (%s no longer holds)", self.held_because)
        self.held_because = None

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
        self.limit_state = RiskStateName.REDUCING
        self.breach = breach
        self.shut_gate(f"{breach.limit}: {breach.reason}")
        logger.error("risk guard: %s: %s; halting trading", breach.limit, breach.reason)
        try:
            self._on_breach(breach)
        except Exception:
            logger.exception("risk guard: the breach handler failed; the gate stays shut")

    def risk_state(self) -> RiskState:
        exposure = portfolio_view.gross_exposure(self.portfolio, self.cache, self._instruments())
        return RiskState(
            state=self.limit_state,
            reason=self.breach.reason if self.breach else None,
            breached_limit=self.breach.limit if self.breach else None,
            breached_at=utc_text(self.breach.at) if self.breach else None,
            daily_pnl=portfolio_view.money_text(self.daily_pnl) if self._watch_pnl else None,
            drawdown=portfolio_view.money_text(self.drawdown) if self._watch_pnl else None,
            exposure=portfolio_view.money_text(exposure),
        )

    # ------------------------------------------------------------------ post-trade limits
    def _instruments(self) -> list[InstrumentId]:
        return sorted(self._known, key=str)

    @property
    def daily_pnl(self) -> Amounts:
        return _cents(self._daily)

    @property
    def drawdown(self) -> Amounts:
        return _cents(self._drawdown)

    def _refresh(self) -> None:
        """Every instrument's unrealized PnL as the portfolio computes it (after a fill; realized is booked)."""
        portfolio, cache = self.portfolio, self.cache
        for instrument_id in self._known:
            # Without an account for the venue the portfolio logs an error per call: ask only once it exists.
            if cache.account_for_venue(instrument_id.venue) is None:
                continue
            unrealized = (
                portfolio.unrealized_pnl(instrument_id)
                if cache.positions_open_count(instrument_id=instrument_id)
                else None
            )
            if unrealized is None:
                self._unrealized.pop(instrument_id, None)
            else:
                self._unrealized[instrument_id] = (unrealized.currency.code, unrealized.as_double())

    def _reprice(self, instrument_id: InstrumentId, price: Price | None) -> None:
        """One instrument's unrealized PnL at a new price, from its open positions.

        The portfolio would recompute the same figure from scratch (about 20 µs, on every price
        update); this is the position's own arithmetic at the price the portfolio would pick.
        When the portfolio reports it in another currency (an account converting to its base
        currency), its own computation is used instead.
        """
        positions = self.cache.positions_open(instrument_id=instrument_id)
        if not positions or price is None:
            self._unrealized.pop(instrument_id, None)
            return
        total, code = 0.0, None
        for position in positions:
            money = position.unrealized_pnl(price)
            total += money.as_double()
            code = money.currency.code
        known = self._unrealized.get(instrument_id)
        if known is not None and known[0] != code:
            money = self.portfolio.unrealized_pnl(instrument_id)
            if money is None:
                return
            code, total = money.currency.code, money.as_double()
        self._unrealized[instrument_id] = (code or "", total)

    def _totals(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for code, amount in (*self._realized.values(), *self._unrealized.values()):
            totals[code] = totals.get(code, 0.0) + amount
        return totals

    def _on_position_event(self, event: Any) -> None:
        self._known.add(event.instrument_id)
        if not self._started:
            return  # reconciliation, before the trader runs: on_start takes the portfolio as it is
        self._advance(event.ts_event)
        if self._max_position is not None:
            self._check_position(event.instrument_id)
        if self._watch_pnl:
            self._refresh()
            self._check_pnl()

    def _on_price(self, data: Any) -> None:
        self._advance(data.ts_event)
        # Unrealized PnL moves with the price only while something is open; realized only with fills.
        if not self.cache.positions_open_count():
            return
        if isinstance(data, Bar):
            instrument_id, price = data.bar_type.instrument_id, data.close
        elif isinstance(data, QuoteTick):
            instrument_id = data.instrument_id
            long = self.portfolio.is_net_long(instrument_id)
            price = data.bid_price if long else data.ask_price  # where a close would trade, as the portfolio
        else:
            instrument_id, price = data.instrument_id, data.price
        self._reprice(instrument_id, price)
        self._check_pnl()

    def _advance(self, ts_event: int) -> None:
        # The UTC day of the market's time: the replayed data's in paper, the venue's (about now) live.
        if ts_event > self._last_ts:
            self._last_ts = ts_event
        day = self._last_ts // NANOS_PER_DAY
        if day != self._day:
            # The day opens with the total PnL last seen: nothing has moved it since.
            self._day_start = dict(self._last_total)
            self._day = day
            self._baseline_dirty = True

    def _now(self) -> datetime:
        return datetime.now(UTC)

    def _check_position(self, instrument_id: InstrumentId) -> None:
        assert self._max_position is not None
        if self.tripped:
            return
        net = Decimal(self.portfolio.net_position(instrument_id))
        if abs(net) > self._max_position:
            self.trip(
                Breach(
                    MAX_POSITION,
                    f"net position {net:f} {instrument_id} exceeds maxPosition {self._max_position:f}",
                    self._now(),
                )
            )

    def _check_pnl(self) -> None:
        total = self._totals()
        self._last_total = total
        peak = self._peak
        for currency, value in total.items():
            if value > peak.get(currency, 0.0):
                peak[currency] = value
                self._baseline_dirty = True
        start = self._day_start
        self._daily = {c: v - start.get(c, 0.0) for c, v in total.items()}
        self._drawdown = {c: peak.get(c, 0.0) - v for c, v in total.items()}
        if self.tripped:
            return  # the figures keep being reported; the first breach is the one that counts
        if self._max_daily_loss is not None:
            limit = self._daily_limit
            for currency, change in self._daily.items():
                if change < -limit:
                    day = datetime.fromtimestamp(self._last_ts / 1e9, UTC).date()
                    self.trip(
                        Breach(
                            MAX_DAILY_LOSS,
                            f"the day's PnL {change:.2f} {currency} is below -{self._max_daily_loss:f} "
                            f"(maxDailyLoss, UTC day {day})",
                            self._now(),
                        )
                    )
                    return
        if self._max_drawdown is not None:
            limit = self._drawdown_limit
            for currency, drop in self._drawdown.items():
                if drop >= limit:
                    self.trip(
                        Breach(
                            MAX_DRAWDOWN,
                            f"total PnL {total[currency]:.2f} {currency} is {drop:.2f} below its peak "
                            f"{peak[currency]:.2f} (maxDrawdown {self._max_drawdown:f})",
                            self._now(),
                        )
                    )
                    return

    # ------------------------------------------------------------------ the RiskEngine's denials
    def _on_order_event(self, event: Any) -> None:
        if not self._started:
            return
        if isinstance(event, OrderDenied):
            reason = event.reason
            if reason.startswith(GATE_REASON_PREFIX):
                return
            if "NOTIONAL_EXCEEDS_MAX_PER_ORDER" in reason:
                limit = MAX_NOTIONAL
            elif "MAX_ORDER_SUBMIT_RATE" in reason:
                limit = MAX_SUBMIT_RATE
            else:
                return  # e.g. TradingState.HALTED, free balance: the strategy's problem, not a limit of the spec
            self.trip(Breach(limit, f"order {event.client_order_id} denied by the RiskEngine: {reason}", self._now()))
        elif isinstance(event, OrderModifyRejected) and "MAX_ORDER_MODIFY_RATE" in event.reason:
            self.trip(
                Breach(
                    MAX_MODIFY_RATE,
                    f"modification of {event.client_order_id} rejected by the RiskEngine: {event.reason}",
                    self._now(),
                )
            )

    # ------------------------------------------------------------------ the order gate
    def _gate(self, command: Any) -> None:
        if isinstance(command, SubmitOrder):
            if self._admit([command.order]):
                self._forward([command.order])
                self._exec_engine.execute(command)
        elif isinstance(command, SubmitOrderList):
            orders = list(command.order_list.orders)
            if self._admit(orders):
                self._forward(orders)
                self._exec_engine.execute(command)
        elif isinstance(command, ModifyOrder):
            if self._admit_modify(command):
                self._exec_engine.execute(command)
        else:  # cancels, queries: always through
            self._exec_engine.execute(command)

    def _forward(self, orders: list[Order]) -> None:
        forwarded = self._forwarded
        for order in orders:
            forwarded[order.client_order_id] = order
        if len(forwarded) > FORWARDED_PRUNE_AT:
            self.orders_on_their_way()

    def orders_on_their_way(self) -> list[Order]:
        """Orders past the gate that are still INITIALIZED: queued for the venue, not yet submitted.

        The cache indexes open, in-flight and emulated orders, but not these; scanning every
        order the cache holds instead would cost the halt a full pass per poll.
        """
        forwarded = self._forwarded
        for client_order_id in [c for c, o in forwarded.items() if o.status != OrderStatus.INITIALIZED]:
            del forwarded[client_order_id]
        return list(forwarded.values())

    def _refusal(self) -> str | None:
        """Why the gate refuses new orders and modifications (shut for good, or held); None while open."""
        if self.gate_shut_because is not None:
            return f"trading is halted ({self.gate_shut_because})"
        if self.held_because is not None:
            return f"new orders are held: {self.held_because}"
        return None

    def _admit(self, orders: list[Order]) -> bool:
        why = self._refusal()
        if why is not None:
            if all(o.is_reduce_only and HALT_TAG in (o.tags or []) for o in orders):
                return True  # the halt's own closes
            for order in orders:
                self._deny(order, GATE_REASON_PREFIX + why)
            return False
        if self._max_notional is None:
            return True
        for order in orders:
            notional = self._notional(order.instrument_id, order.side, order.quantity, self._order_price(order))
            if notional is None:
                if order.is_reduce_only:
                    continue  # it can only shrink a position: let it close what is open
                # Not a breach: nothing is wrong with the order, the market data has not come yet.
                reason = (
                    f"order {order.client_order_id} cannot be priced ({order.side_string()} {order.quantity} "
                    f"{order.instrument_id}: no order price, and no quote, trade or bar for it yet), so "
                    f"maxNotionalPerOrder {self._max_notional:f} cannot be checked; send it once market data "
                    "has arrived, or give it a price"
                )
                for each in orders:
                    self._deny(each, GATE_REASON_PREFIX + reason)
                return False
            if notional > self._max_notional:
                reason = (
                    f"order {order.client_order_id} notional {notional:.2f} exceeds maxNotionalPerOrder "
                    f"{self._max_notional:f} ({order.side_string()} {order.quantity} {order.instrument_id})"
                )
                for each in orders:
                    self._deny(each, GATE_REASON_PREFIX + reason)
                self.trip(Breach(MAX_NOTIONAL, reason, self._now()))
                return False
        return True

    def _admit_modify(self, command: ModifyOrder) -> bool:
        order = self.cache.order(command.client_order_id)
        if order is None:
            return True  # the execution engine reports the unknown order
        why = self._refusal()
        if why is not None:
            self._reject_modify(order, GATE_REASON_PREFIX + why)
            return False
        if self._max_notional is None:
            return True
        quantity = command.quantity or order.quantity
        price = command.price or command.trigger_price or self._order_price(order)
        notional = self._notional(order.instrument_id, order.side, quantity, price)
        if notional is None:
            if order.is_reduce_only:
                return True
            self._reject_modify(
                order,
                f"{GATE_REASON_PREFIX}modification of {order.client_order_id} cannot be priced, so "
                f"maxNotionalPerOrder {self._max_notional:f} cannot be checked",
            )
            return False
        if notional > self._max_notional:
            reason = (
                f"modification of {order.client_order_id} to notional {notional:.2f} exceeds "
                f"maxNotionalPerOrder {self._max_notional:f}"
            )
            self._reject_modify(order, GATE_REASON_PREFIX + reason)
            self.trip(Breach(MAX_NOTIONAL, reason, self._now()))
            return False
        return True

    def _order_price(self, order: Order) -> Price | None:
        price = getattr(order, "price", None) or getattr(order, "trigger_price", None)
        if price is not None:
            return price
        # A market order fills at the other side of the book; without quotes, at the last trade or bar.
        side = PriceType.ASK if order.side == OrderSide.BUY else PriceType.BID
        return self.cache.price(order.instrument_id, side) or self.cache.price(order.instrument_id, PriceType.LAST)

    def _notional(
        self, instrument_id: InstrumentId, side: OrderSide, quantity: Quantity, price: Price | None
    ) -> Decimal | None:
        instrument = self.cache.instrument(instrument_id)
        if instrument is None or price is None:
            return None
        return abs(instrument.notional_value(quantity, price, use_quote_for_inverse=True).as_decimal())

    def _deny(self, order: Order, reason: str) -> None:
        # What the RiskEngine does to deny (OrderDenied through the execution engine's event endpoint).
        self.denied_by_gate += 1
        logger.warning("risk guard: order %s denied: %s", order.client_order_id, reason)
        if order.is_closed:
            return
        if not self.cache.order_exists(order.client_order_id):
            self.cache.add_order(order)
        denied = OrderDenied(
            trader_id=order.trader_id,
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            client_order_id=order.client_order_id,
            reason=reason,
            event_id=UUID4(),
            ts_init=self.clock.timestamp_ns(),
        )
        self.msgbus.send("ExecEngine.process", denied)

    def _reject_modify(self, order: Order, reason: str) -> None:
        logger.warning("risk guard: modification of %s rejected: %s", order.client_order_id, reason)
        now = self.clock.timestamp_ns()
        rejected = OrderModifyRejected(
            trader_id=order.trader_id,
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            client_order_id=order.client_order_id,
            venue_order_id=order.venue_order_id,
            account_id=order.account_id,
            reason=reason,
            event_id=UUID4(),
            ts_event=now,
            ts_init=now,
        )
        self.msgbus.send("ExecEngine.process", rejected)
