"""The post-trade limits as plain arithmetic: PnL books, the UTC day, the peak, and the breaches.

``LimitsTracker`` is what the risk guard (``guard.RiskGuard``) decides with, without a node:

- **realized PnL** from its own books (``pnl.PnlBook``: NautilusTrader's arithmetic with each
  instrument's multiplier and inverse terms), fed every fill (``on_fill``), each trade once;
- **unrealized PnL** as the guard marks its books' open positions (``mark``: per instrument, in
  the book's PnL currency);
- **the day**: the UTC day of the market's time (``advance``: the replayed data's time in paper,
  the venue's, about now, live); when it rolls over, the day opens with the last total PnL seen;
- **the peak**: the highest total PnL (realized + unrealized) reached, per currency;
- **the limits**: ``check_pnl`` (``maxDailyLoss``, ``maxDrawdown``) and ``check_position``
  (``maxPosition``) return the ``Breach`` they find, with the sentence a trader reads.

The figures are floats: they are compared with the limits on every price update while a
position is open (the hot path), and reported rounded to cents.

**Across restarts** (live, ``PnlHistory``): the books start from every fill the ledger holds, so
the day's realized PnL and the peak survive a crash, an eviction or a restart; what the fills
cannot tell (the total PnL when the UTC day opened, the highest total PnL reached) is kept in the
ledger as a ``RiskBaseline``, taken whenever it changed (``take_baseline``). An acknowledged halt
starts both again from the total PnL at that moment. Without a history (paper) nothing is carried
over: a restarted replay relives its catalog from the start, the same PnL path.

**Inferred fills superseded** (live): the books follow the ledger's rule (``ledger.supersede``): a fill
NautilusTrader inferred counts only what the venue's own trades of its order do not cover. The ledger's
history and the fills of start-up reconciliation are booked as the rule counts them, applied as the ledger
applies it: to the inferred fills as first recorded (``PnlHistory.superseded``), the fills grouped by venue
order once. Afterwards a fill is booked in one step unless it changes what an inferred fill
counts (a trade of its order, or an inferred fill with a lower cumulative quantity); only then is its
instrument booked again, from a copy of its book taken just before the oldest inferred fill of it that
still counts something, through the fills given since (kept for that, and dropped once no inferred fill
of the instrument counts anything). The tracker keeps the inferred fills of the orders that have one,
and for every order the time and quantity of each of the venue's trades of it booked (an order's inferred
fill can come after some of its trades: the open-order check during a run; only those at or before the
inferred fill's time cover it).

The clock is injected (``now``, for the time of a breach); the market's time comes with the data
(``advance``, and ``clock_ns`` at ``start``): the tracker never reads a clock of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

from strategy_runtime.ledger import supersede
from strategy_runtime.ledger.records import FillRecord, RiskBaseline
from strategy_runtime.ledger.supersede import OrderKey, Supersession, counted_quantities, is_inferred
from strategy_runtime.pnl import LINEAR, ContractTerms, PnlBook
from strategy_runtime.portfolio_view import Amounts
from strategy_runtime.risk.breach import MAX_DAILY_LOSS, MAX_DRAWDOWN, MAX_POSITION, Breach

logger = logging.getLogger("livestrat.risk")

NANOS_PER_DAY = 86_400_000_000_000
EPOCH = date(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)

# One instrument's unrealized PnL: the currency of its book's PnL, and the amount.
Mark = tuple[str, float]


@dataclass(frozen=True)
class PnlShare:
    """The strategy's share of its RiskBudget's ``maxDailyLoss`` and ``maxDrawdown``, in the budget's currency."""

    budget: str
    currency: str
    daily: Decimal | None
    drawdown: Decimal | None


@dataclass(frozen=True)
class PnlHistory:
    """What the ledger holds for the strategy when a live runtime starts (see the module docstring).

    ``fills``: every fill, in the ledger's order; ``baseline``: the last saved ``RiskBaseline``;
    ``reset``: a halt was just acknowledged, so the day's PnL and the peak start afresh; ``superseded``: the
    inferred fills the venue's trades superseded, as first recorded (``Ledger.superseded``): the rule is applied
    to them, as the ledger does, not to the rows ``fills`` holds of them (a reduced row does not say which part
    of its order it still stands for).
    """

    fills: Sequence[FillRecord]
    baseline: RiskBaseline | None = None
    reset: bool = False
    superseded: Sequence[FillRecord] = ()


def limit_value(value: float | None) -> Decimal | None:
    """A limit of the spec as the messages show it: through the text, so 0.05 stays 0.05; 100.0 reads 100."""
    return Decimal(str(value)).normalize() if value else None


def utc_date(day: int) -> date:
    """The UTC date of ``day`` days since the epoch."""
    return EPOCH + timedelta(days=day)


_CENT = Decimal("0.01")


def _cents(amounts: dict[str, float]) -> Amounts:
    """In cents, rounded as the status rounds the book's exact figures (``portfolio_view.money_text``: half to
    even) from the shortest decimal that reads back as the float (``repr``: -781.055, not the binary value just
    beside it, which ``f"{v:.2f}"`` rounds to -781.05)."""
    return {c: Decimal(repr(v)).quantize(_CENT) for c, v in amounts.items()}


def utc_now() -> datetime:
    return datetime.now(UTC)


def nanos(moment: datetime) -> int:
    """``moment`` (timezone-aware) in nanoseconds since the epoch, exact to the microsecond."""
    return (moment - _EPOCH_UTC) // timedelta(microseconds=1) * 1000


def linear(_instrument_id: str) -> ContractTerms:
    """Contract terms when nothing else is known: linear, multiplier 1."""
    return LINEAR


class LimitsTracker:
    """See the module docstring. Feed it ``on_fill``, ``mark`` and ``advance``; ``start`` it once."""

    def __init__(
        self,
        *,
        max_daily_loss: float | None = None,
        max_drawdown: float | None = None,
        max_position: float | None = None,
        history: PnlHistory | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.max_daily_loss = limit_value(max_daily_loss)
        self.max_drawdown = limit_value(max_drawdown)
        self.max_position = limit_value(max_position)
        self._daily_limit = float(self.max_daily_loss or 0)  # the hot path compares floats
        self._drawdown_limit = float(self.max_drawdown or 0)
        # The strategy's share of its RiskBudget's daily loss and drawdown, in the budget's currency (``share``).
        self._share: PnlShare | None = None
        self._history = history
        self._now = now
        self._terms: Callable[[str], ContractTerms] = linear
        self._books: dict[str, PnlBook] = {}
        self._booked: set[tuple[str, str]] = set()  # (instrument, trade id) of every fill booked
        # Live (``ledger.supersede``): the inferred fills of each venue order with one, as given; the venue's trades
        # booked of every order (each as its time and quantity); what each inferred fill counts, by (instrument,
        # trade id);
        # and, by instrument with an inferred fill that still counts something, its book just before the oldest
        # such fill and the fills given since (to book it again when what an inferred fill counts changes).
        self._inferred: dict[OrderKey, list[FillRecord]] = {}
        self._traded: dict[OrderKey, list[tuple[int, Decimal]]] = {}
        self._counted: dict[tuple[str, str], Decimal] = {}
        self._since: dict[str, tuple[PnlBook, list[FillRecord]]] = {}
        self._early_fills: list[FillRecord] = []  # fills that came before start
        self._started = False
        self._realized: dict[str, Mark] = {}  # by instrument id
        self._unrealized: dict[str, Mark] = {}  # by instrument id
        self._last_ts = 0
        self._day: int | None = None  # days since the epoch, UTC
        self._last_total: dict[str, float] = {}
        self._day_start: dict[str, float] = {}
        self._peak: dict[str, float] = {}
        self._daily: dict[str, float] = {}
        self._drawdown: dict[str, float] = {}
        self._max_drawdown: dict[str, float] = {}  # the largest drawdown seen since start (a promotion's evidence)
        self._baseline_dirty = False

    @property
    def watches_pnl(self) -> bool:
        """A daily loss or drawdown limit is checked: the strategy's own, or its share of a RiskBudget's."""
        own = self.max_daily_loss is not None or self.max_drawdown is not None
        return own or self._share is not None

    @property
    def pnl_share(self) -> PnlShare | None:
        return self._share

    def share(self, share: PnlShare | None) -> None:
        """Check the day's PnL and the drawdown in ``share.currency`` also against ``share`` (None: no more)."""
        self._share = share if share is not None and (share.daily is not None or share.drawdown is not None) else None

    def _daily_for(self, currency: str) -> tuple[float, PnlShare | None] | None:
        """The tighter of ``maxDailyLoss`` and the share's in ``currency``: the amount, and the share if it is that."""
        share = self._share
        if share is None or share.daily is None or share.currency != currency:
            return (self._daily_limit, None) if self.max_daily_loss is not None else None
        mine = float(share.daily)
        return (mine, share) if self.max_daily_loss is None or mine < self._daily_limit else (self._daily_limit, None)

    def _drawdown_for(self, currency: str) -> tuple[float, PnlShare | None] | None:
        """The tighter of ``maxDrawdown`` and the share's in ``currency``: the amount, and the share if it is that."""
        share = self._share
        if share is None or share.drawdown is None or share.currency != currency:
            return (self._drawdown_limit, None) if self.max_drawdown is not None else None
        mine = float(share.drawdown)
        if self.max_drawdown is None or mine < self._drawdown_limit:
            return mine, share
        return self._drawdown_limit, None

    @property
    def books(self) -> Mapping[str, PnlBook]:
        """The book of each instrument, by instrument id: every fill booked once, the ledger's history first
        (live). What the status, ``/state``, the metrics and the summary show (``strategy_runtime.book_view``)."""
        return MappingProxyType(self._books)

    @property
    def carries_over(self) -> bool:
        """Started from the ledger's history (live): a loss carried over may already be past a limit."""
        return self._history is not None

    # ------------------------------------------------------------------ start
    def start(self, *, clock_ns: int, terms: Callable[[str], ContractTerms] = linear) -> None:
        """Book the history and the fills that came before; set the day's opening PnL and the peak.

        ``clock_ns``: now, in nanoseconds (the live day is the venue's, about now); ``terms``: each
        instrument's contract terms, for its book. Call ``mark`` for the open positions first.
        """
        self._terms = terms
        self._started = True
        if self._history is not None:
            self._last_ts = clock_ns
            self._day = clock_ns // NANOS_PER_DAY
        carried = self._book_history()
        total = self._totals()
        self._last_total = total
        if carried is None:
            self._peak = dict(total)
            self._day_start = dict(total)
        else:
            self._carry_baselines(total, *carried)

    # ------------------------------------------------------------------ fills and books
    def on_fill(self, fill: FillRecord) -> bool:
        """A fill (start-up reconciliation's included): book its realized PnL, each trade once.

        True when it is a venue's trade of an order with an inferred fill, booked now: the node does not apply such
        a trade (it has the inferred fill), so no position event follows it to check what it moved."""
        if not self._started:
            self._early_fills.append(fill)  # booked at start, after the ledger's history
            return False
        if self._history is not None:
            return self._book_live(fill)
        self._book(fill)
        return False

    def _book_live(self, fill: FillRecord) -> bool:
        """Book ``fill`` as the rule counts it: in one step, unless it changes what an inferred fill counts; whether it
        is a venue's trade of an order with an inferred fill."""
        key = (fill.instrument_id, fill.trade_id)
        if key in self._booked:
            return False  # a fill the ledger already held (a replay, a reconciliation at restart)
        self._booked.add(key)
        order = self._take(fill)
        if order not in self._inferred:
            self._book_counted(fill)
            return False
        if self._recount(order):
            self._book_again(fill)
        else:
            self._book_counted(fill)
        return not is_inferred(fill)

    def _take(self, fill: FillRecord) -> OrderKey:
        """Note ``fill`` by its venue order: an inferred fill kept, a venue's trade added to its order's trades."""
        order = supersede.order_key(fill)
        if is_inferred(fill):
            self._inferred.setdefault(order, []).append(fill)
        else:
            self._traded.setdefault(order, []).append((fill.ts_event, fill.quantity))
        return order

    def _recount(self, order: OrderKey) -> bool:
        """What each inferred fill of ``order`` counts now; whether that changed for one booked already."""
        changed = False
        for fill, counted in counted_quantities(self._inferred[order], self._traded.get(order, ())):
            key = (fill.instrument_id, fill.trade_id)
            changed = changed or self._counted.get(key, counted) != counted
            self._counted[key] = counted
        return changed

    def _as_counted(self, fill: FillRecord) -> FillRecord | None:
        """``fill`` as it counts: itself, or an inferred fill smaller or left out (None)."""
        counted = self._counted.get((fill.instrument_id, fill.trade_id)) if is_inferred(fill) else None
        return fill if counted is None else Supersession(fill, counted).counted_fill

    def _pending(self, fill: FillRecord) -> bool:
        """An inferred fill that still counts something: what it counts may go down."""
        return is_inferred(fill) and self._counted.get((fill.instrument_id, fill.trade_id), Decimal(0)) > 0

    def _book_counted(self, fill: FillRecord) -> FillRecord | None:
        """Book ``fill`` as it counts now, after what its instrument's book holds; returns what was booked."""
        instrument = fill.instrument_id
        book = self._books.get(instrument)
        if book is None:
            book = self._books[instrument] = PnlBook(self._terms(instrument))
        since = self._since.get(instrument)
        if since is None and self._pending(fill):
            since = self._since[instrument] = (book.copy(), [])
        if since is not None:
            since[1].append(fill)
        counted = self._as_counted(fill)
        if counted is not None:
            book.apply(counted)
            self._realized[instrument] = (book.currency or "", float(book.net_realized))
        return counted

    def _book_again(self, fill: FillRecord) -> None:
        """Book ``fill``, which changed what an inferred fill of its instrument counts: the instrument's book again
        from just before the oldest inferred fill that counted something, each fill since as it counts now."""
        instrument = fill.instrument_id
        # What an inferred fill counts only goes down, so the one that changed counted something: its instrument
        # has a copy of its book from before it.
        checkpoint, given = self._since[instrument]
        given.append(fill)
        book = checkpoint.copy()
        first: PnlBook | None = None
        rest: list[FillRecord] = []
        for record in given:
            if first is None and self._pending(record):
                first = book.copy()
            if first is not None:
                rest.append(record)
            if (counted := self._as_counted(record)) is not None:
                book.apply(counted)
        before = self._books[instrument]
        self._books[instrument] = book
        if first is None:
            del self._since[instrument]  # no inferred fill of it counts anything now: nothing to book again
        else:
            self._since[instrument] = (first, rest)
        self._realized[instrument] = (book.currency or "", float(book.net_realized))
        if (book.position, book.net_realized) != (before.position, before.net_realized):
            logger.info(
                "risk guard: %s booked again from %d fill(s): trade %s of order %s supersedes what was inferred of it",
                instrument,
                len(given),
                fill.trade_id,
                fill.venue_order_id,
            )

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

    def _book_history(self) -> tuple[dict[str, Fraction], set[str], dict[str, Fraction]] | None:
        """Book the ledger's fills, then those recorded while the node started; None without a history.

        Returns what the baselines need: the realized PnL per currency when today began, the
        instruments with a position open then, and the highest realized PnL per currency at a
        moment when nothing of that currency was open (total PnL was then realized PnL alone: the
        peak when no baseline was ever saved).
        """
        history, early, self._early_fills = self._history, self._early_fills, []
        if history is None:
            for fill in early:
                self._book(fill)
            return None
        today = (self._day or 0) * NANOS_PER_DAY
        at_day_open: tuple[dict[str, Fraction], set[str]] | None = None
        flat_peak: dict[str, Fraction] = {}
        # An inferred fill the ledger holds reduced, or no longer holds, is taken as first recorded (as the ledger
        # applies the rule); one it no longer holds counts nothing, and is only noted for its order.
        first_records = {(f.instrument_id, f.trade_id): f for f in history.superseded}
        held = {(f.instrument_id, f.trade_id) for f in history.fills}
        for key, fill in first_records.items():
            if key not in held and key not in self._booked:
                self._booked.add(key)
                self._take(fill)
        given: list[FillRecord] = []
        for record in (*history.fills, *early):  # each trade once, each venue order named once
            key = (record.instrument_id, record.trade_id)
            if key not in self._booked:
                self._booked.add(key)
                fill = first_records.get(key, record)
                given.append(fill)
                self._take(fill)
        for order in self._inferred:
            self._recount(order)
        for fill in given:  # each inferred fill as the ledger counts it (``ledger.supersede``)
            if at_day_open is None and fill.ts_event >= today:
                at_day_open = self._realized_by_currency(), {i for i, b in self._books.items() if b.position}
            if self._book_counted(fill) is None:
                continue  # superseded whole
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
        history, today = self._history, utc_date(self._day)
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
                    if instrument_id in open_at_day_open:
                        start[code] = start.get(code, 0.0) + amount
                self._day_start = start
            # The realized PnL of a flat moment is a peak the fills tell only when nothing was saved: a saved peak
            # already counts every later one, and one from before an acknowledged halt must not come back. A
            # currency without a peak never rose above 0, where a runtime that saw every fill starts it.
            peak = dict(saved.peak) if saved is not None else {c: float(v) for c, v in flat_peak.items()}
            for code, value in total.items():
                peak[code] = max(peak.get(code, 0.0), value)
            self._peak = peak
        self._baseline_dirty = True
        logger.info(
            "risk guard: carried over from the ledger: %d fill(s), day %s opened at %s, peak %s",
            len(self._booked),
            today,
            self._day_start,
            self._peak,
        )

    # ------------------------------------------------------------------ the market
    def mark(self, instrument_id: str, unrealized: Mark | None) -> None:
        """``instrument_id``'s unrealized PnL now (None: nothing open)."""
        if unrealized is None:
            self._unrealized.pop(instrument_id, None)
        else:
            self._unrealized[instrument_id] = unrealized

    def unrealized(self, instrument_id: str) -> Mark | None:
        return self._unrealized.get(instrument_id)

    @property
    def market_ns(self) -> int:
        """The latest market time seen (nanoseconds): of the last price or position event, or the start."""
        return self._last_ts

    def advance(self, ts_ns: int) -> None:
        """The market's time moved to ``ts_ns`` (never back): a new UTC day opens with the last total PnL seen."""
        if ts_ns > self._last_ts:
            self._last_ts = ts_ns
        day = self._last_ts // NANOS_PER_DAY
        if day != self._day:
            # The day opens with the total PnL last seen: nothing has moved it since. Its PnL so far is nothing,
            # shown so until the next check (a price while nothing is open checks nothing).
            self._day_start = dict(self._last_total)
            self._daily = dict.fromkeys(self._daily, 0.0)
            self._day = day
            self._baseline_dirty = True

    @property
    def day(self) -> date | None:
        """The UTC day ``daily_pnl`` is of (None before any market time)."""
        return utc_date(self._day) if self._day is not None else None

    @property
    def day_end_ns(self) -> int:
        """When the current UTC day ends (ns): ``advance`` to any time before it leaves the day as it is."""
        return ((self._day if self._day is not None else self._last_ts // NANOS_PER_DAY) + 1) * NANOS_PER_DAY

    def advance_within_day(self, ts_ns: int) -> None:
        """``advance`` to a time before ``day_end_ns``: the day stays, only the market's time moves."""
        if ts_ns > self._last_ts:
            self._last_ts = ts_ns

    def total(self, currency: str) -> float:
        """Total PnL in ``currency`` at the last check."""
        return self._last_total.get(currency, 0.0)

    def pnl_room(self, currency: str) -> tuple[float, float]:
        """The total PnL in ``currency`` between which a check changes nothing: no breach, no new peak, no new
        largest drawdown.

        From the figures now: ``maxDailyLoss`` breaks below the day's opening less the limit, ``maxDrawdown``
        at the peak less the limit (or lower); anything above the peak is a new peak, anything further below
        it than the largest drawdown seen is a new largest drawdown (``max_drawdown_seen``, shown in the
        status: it must not depend on which prices were checked).
        """
        peak = self._peak.get(currency, 0.0)
        low = peak - self._max_drawdown.get(currency, 0.0)
        daily, drawdown = self._daily_for(currency), self._drawdown_for(currency)
        if daily is not None:
            low = max(low, self._day_start.get(currency, 0.0) - daily[0])
        if drawdown is not None:
            low = max(low, peak - drawdown[0])
        return low, peak

    def _totals(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for marks in (self._realized, self._unrealized):  # realized first: the floats add in this order
            for code, amount in marks.values():
                totals[code] = totals.get(code, 0.0) + amount
        return totals

    # ------------------------------------------------------------------ the limits
    def check_pnl(self, *, halted: bool = False) -> Breach | None:
        """The day's PnL and the drawdown from the figures now; the first limit they break.

        ``halted``: a breach already counts; the figures are kept up to date, no new breach is looked for.
        """
        total = self._totals()
        self._last_total = total
        # One pass over the currencies (this runs on every position event and every price checked in full).
        peak, start, max_drawdown = self._peak, self._day_start, self._max_drawdown
        daily: dict[str, float] = {}
        drawdowns: dict[str, float] = {}
        for currency, value in total.items():
            top = peak.get(currency, 0.0)
            if value > top:
                peak[currency] = top = value
                self._baseline_dirty = True
            daily[currency] = value - start.get(currency, 0.0)
            drawdowns[currency] = drop = top - value
            max_drawdown[currency] = max(drop, max_drawdown.get(currency, 0.0))
        self._daily, self._drawdown = daily, drawdowns
        if halted:
            return None
        for currency, change in self._daily.items():
            daily = self._daily_for(currency)
            if daily is not None and change < -daily[0]:
                day = utc_date(self._last_ts // NANOS_PER_DAY)  # integers: a float rounds 23:59:59.9… up
                return Breach(
                    MAX_DAILY_LOSS,
                    f"the day's PnL {change:.2f} {currency} is below "
                    + _daily_words(daily[1], self.max_daily_loss, day),
                    self._now(),
                )
        for currency, drop in self._drawdown.items():
            drawdown = self._drawdown_for(currency)
            if drawdown is not None and drop >= drawdown[0]:
                return Breach(
                    MAX_DRAWDOWN,
                    f"total PnL {total[currency]:.2f} {currency} is {drop:.2f} below its peak "
                    f"{peak.get(currency, 0.0):.2f} ({_drawdown_words(drawdown[1], self.max_drawdown)})",
                    self._now(),
                )
        return None

    def check_position(self, instrument_id: str, net: Decimal) -> Breach | None:
        """``maxPosition`` against ``instrument_id``'s net position ``net`` (signed)."""
        if self.max_position is None or abs(net) <= self.max_position:
            return None
        return Breach(
            MAX_POSITION,
            f"net position {net:f} {instrument_id} exceeds maxPosition {self.max_position:f}",
            self._now(),
        )

    # ------------------------------------------------------------------ what it reports
    @property
    def daily_pnl(self) -> Amounts:
        """The UTC day's total PnL change per currency, in cents."""
        return _cents(self._daily)

    @property
    def drawdown(self) -> Amounts:
        """How far total PnL is below its peak, per currency, in cents."""
        return _cents(self._drawdown)

    @property
    def max_drawdown_seen(self) -> Amounts:
        """The largest drawdown seen since the runtime started, per currency, in cents."""
        return _cents(self._max_drawdown)

    def take_baseline(self) -> RiskBaseline | None:
        """The baseline to save, if it changed since the last call (live only); see ``baseline_unsaved``."""
        if self._history is None or not self._baseline_dirty or self._day is None:
            return None
        self._baseline_dirty = False
        return RiskBaseline(day=utc_date(self._day), day_open=dict(self._day_start), peak=dict(self._peak))

    def baseline_unsaved(self) -> None:
        """Saving the last ``take_baseline`` failed: offer it again."""
        self._baseline_dirty = True


def _daily_words(share: PnlShare | None, own: Decimal | None, day: date) -> str:
    if share is None:
        return f"-{own:f} (maxDailyLoss, UTC day {day})"
    return f"-{share.daily:f} (this strategy's share of RiskBudget {share.budget} maxDailyLoss, UTC day {day})"


def _drawdown_words(share: PnlShare | None, own: Decimal | None) -> str:
    if share is None:
        return f"maxDrawdown {own:f}"
    return f"this strategy's share of RiskBudget {share.budget} maxDrawdown {share.drawdown:f}"
