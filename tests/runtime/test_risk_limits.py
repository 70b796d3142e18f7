"""The risk limits without a node: the day, the peak, carried baselines, and each breach's sentence.

``LimitsTracker`` is the risk guard's arithmetic (``strategy_runtime.risk.limits``): fills and
unrealized PnL go in with their timestamps, the clock of a breach is injected, and what comes
out is what the guard reports (``status.risk``) and the reason a trader reads. These run in
milliseconds; tests/runtime/test_risk_guard.py and test_risk_carry.py run the same limits in a
real runtime process.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from livestrat.api.spec import LiveStrategySpec
from strategy_runtime.ledger import FillRecord, RiskBaseline, supersede
from strategy_runtime.ledger.records import inferred_trade_id
from strategy_runtime.pnl import LINEAR, ContractTerms, PnlBook, to_decimal
from strategy_runtime.portfolio_view import money_text
from strategy_runtime.risk.breach import Breach, from_denial, from_modify_rejection
from strategy_runtime.risk.guard import GUARD_ID, RiskGuardConfig
from strategy_runtime.risk.limits import LimitsTracker, PnlHistory
from tests.support.ledger import trade

D = Decimal
BTC = "BTCUSDT.BINANCE"
ETH = "ETHUSDT.BINANCE"
PERP = "BTC-PERPETUAL.DERIBIT"  # inverse: quoted in USD, PnL in BTC
DAY = datetime(2024, 1, 1, tzinfo=UTC)
BREACH_TIME = datetime(2024, 1, 2, 0, 30, tzinfo=UTC)
_trade_ids = itertools.count(1)


def at(*, day: int = 0, hours: int = 0, minutes: int = 0) -> int:
    """Nanoseconds since the epoch, ``day`` days after 2024-01-01 00:00 UTC."""
    moment = DAY + timedelta(days=day, hours=hours, minutes=minutes)
    return int(moment.timestamp()) * 1_000_000_000


def fill(side: str, quantity: str, price: str, ts: int, instrument: str = BTC, quote: str = "USDT") -> FillRecord:
    return trade(next(_trade_ids), side, quantity, price, instrument=instrument, quote=quote, ts=ts)


def tracker(history: PnlHistory | None = None, **limits: float) -> LimitsTracker:
    return LimitsTracker(history=history, now=lambda: BREACH_TIME, **limits)


def paper(**limits: float) -> LimitsTracker:
    """A paper tracker, started: no history, the day comes with the data."""
    started = tracker(**limits)
    started.start(clock_ns=at(day=99))  # a paper replay's clock says nothing about the market's day
    return started


def usdt(amount: str) -> dict[str, Decimal]:
    return {"USDT": D(amount)}


# --------------------------------------------------------------------------- the UTC day


def test_the_day_rolls_over_at_utc_midnight_and_opens_at_the_last_total_seen():
    limits = paper(max_daily_loss=100)
    limits.advance(at(hours=23))
    limits.on_fill(fill("BUY", "1", "40000", at(hours=23)))
    limits.mark(BTC, ("USDT", -80.0))
    assert limits.check_pnl() is None
    assert limits.daily_pnl == usdt("-80.00")

    limits.advance(at(day=1))  # midnight, to the nanosecond
    limits.mark(BTC, ("USDT", -150.0))
    assert limits.check_pnl() is None  # -150 in all, but only -70 of it today
    assert limits.daily_pnl == usdt("-70.00")
    assert limits.drawdown == usdt("150.00")

    limits.advance(at(hours=23, minutes=59))  # a late event from yesterday does not take the day back
    limits.mark(BTC, ("USDT", -180.5))
    assert limits.check_pnl() == Breach(
        "maxDailyLoss", "the day's PnL -100.50 USDT is below -100 (maxDailyLoss, UTC day 2024-01-02)", BREACH_TIME
    )


def test_the_day_s_pnl_says_its_day_and_a_new_day_opens_at_zero_before_any_check():
    """``daily_pnl`` is of ``day``. A new day opened by an event that checks nothing (a price while nothing is open)
    shows the new day's PnL, nothing yet, not the day before's under the new day's date."""
    limits = paper(max_daily_loss=100)
    assert limits.day is None  # no market time seen yet
    limits.advance(at(hours=23))
    limits.mark(BTC, ("USDT", -80.0))
    assert limits.check_pnl() is None
    assert (limits.day, limits.daily_pnl) == (date(2024, 1, 1), usdt("-80.00"))
    limits.mark(BTC, None)  # the position closed: -80 realized (here: held as the last total)
    limits.advance(at(day=1, hours=9))  # a price today, nothing open: no check
    assert (limits.day, limits.daily_pnl) == (date(2024, 1, 2), usdt("0.00"))
    assert limits.drawdown == usdt("80.00")  # the drawdown is not the day's: it stays


def test_a_loss_just_before_midnight_counts_on_its_own_day():
    limits = paper(max_daily_loss=100)
    limits.advance(at(day=1) - 1)  # 23:59:59.999999999
    limits.on_fill(fill("BUY", "1", "40000", at(day=1) - 1))
    limits.mark(BTC, ("USDT", -150.0))
    breach = limits.check_pnl()
    assert breach is not None
    assert breach.reason == "the day's PnL -150.00 USDT is below -100 (maxDailyLoss, UTC day 2024-01-01)"


# --------------------------------------------------------------------------- across restarts


def test_a_loss_carried_over_a_restart_counts_toward_the_same_days_limit():
    first = tracker(PnlHistory(fills=[]), max_daily_loss=100)
    first.start(clock_ns=at(hours=9))
    round_trip = [
        fill("BUY", "0.1", "40000", at(hours=9, minutes=1)),
        fill("SELL", "0.1", "39400", at(hours=9, minutes=5)),
    ]
    for each in round_trip:
        first.on_fill(each)
    first.advance(at(hours=9, minutes=5))
    assert first.check_pnl() is None
    assert first.daily_pnl == usdt("-60.00")
    saved = first.take_baseline()
    assert saved == RiskBaseline(day=date(2024, 1, 1), day_open={}, peak={})

    # killed; a new process starts from the ledger's fills and the saved baseline
    second = tracker(PnlHistory(fills=round_trip, baseline=saved), max_daily_loss=100)
    second.start(clock_ns=at(hours=10))
    assert second.check_pnl() is None
    assert second.daily_pnl == usdt("-60.00")
    second.on_fill(round_trip[1])  # reconciliation delivers a fill the ledger holds: booked once
    assert second.check_pnl() is None
    assert second.daily_pnl == usdt("-60.00")

    entry = fill("BUY", "0.1", "40000", at(hours=10, minutes=1))
    second.on_fill(entry)
    second.advance(at(hours=10, minutes=3))
    second.mark(BTC, ("USDT", -45.0))
    assert second.check_pnl() == Breach(
        "maxDailyLoss", "the day's PnL -105.00 USDT is below -100 (maxDailyLoss, UTC day 2024-01-01)", BREACH_TIME
    )

    # what the second process alone saw would not have broken it
    alone = paper(max_daily_loss=100)
    alone.advance(at(hours=10, minutes=1))
    alone.on_fill(entry)
    alone.mark(BTC, ("USDT", -45.0))
    assert alone.check_pnl() is None


def test_after_midnight_a_restart_opens_the_day_at_the_pnl_when_it_began():
    yesterday = [
        fill("BUY", "1", "2000", at(hours=8), instrument=ETH),  # still open
        fill("BUY", "0.1", "40000", at(hours=9, minutes=1)),
        fill("SELL", "0.1", "39400", at(hours=9, minutes=5)),  # -60
    ]
    saved = RiskBaseline(day=date(2024, 1, 1), day_open={"USDT": 0.0}, peak={"USDT": 10.0})
    limits = tracker(PnlHistory(fills=yesterday, baseline=saved), max_daily_loss=100, max_drawdown=500)
    limits.mark(ETH, ("USDT", -30.0))  # what the position open since yesterday shows now
    limits.start(clock_ns=at(day=1, hours=8))
    assert limits.check_pnl() is None
    # nobody saw today open: realized then (-60) plus what the positions open then show now (-30)
    assert limits.daily_pnl == usdt("0.00")
    assert limits.drawdown == usdt("100.00")  # the peak of 10 the ledger kept
    assert limits.take_baseline() == RiskBaseline(day=date(2024, 1, 2), day_open={"USDT": -90.0}, peak={"USDT": 10.0})
    assert limits.take_baseline() is None  # nothing changed since


@pytest.mark.parametrize("acknowledged", [False, True])
def test_an_acknowledged_halt_starts_the_days_pnl_and_the_peak_again(acknowledged):
    round_trip = [
        fill("BUY", "0.1", "40000", at(hours=9, minutes=1)),
        fill("SELL", "0.1", "39400", at(hours=9, minutes=5)),
    ]
    saved = RiskBaseline(day=date(2024, 1, 1), day_open={}, peak={"USDT": 20.0})
    limits = tracker(PnlHistory(round_trip, saved, reset=acknowledged), max_daily_loss=100, max_drawdown=50)
    limits.start(clock_ns=at(hours=10))
    breach = limits.check_pnl()
    if acknowledged:
        assert breach is None
        assert (limits.daily_pnl, limits.drawdown) == (usdt("0.00"), usdt("0.00"))
    else:
        assert breach == Breach(
            "maxDrawdown", "total PnL -60.00 USDT is 80.00 below its peak 20.00 (maxDrawdown 50)", BREACH_TIME
        )
        assert (limits.daily_pnl, limits.drawdown) == (usdt("-60.00"), usdt("80.00"))


def test_a_restart_after_an_acknowledged_halt_keeps_the_peak_the_acknowledgement_started():
    """The peak an acknowledgement starts again is the one every later start carries: a restart (a rollout, an
    eviction) after it shows the drawdown the runtime that never restarted shows, and does not halt again on a
    peak from before the halt that the fills alone would find (a gain realized while flat)."""
    history = [
        fill("BUY", "0.1", "40000", at(hours=9, minutes=1)),
        fill("SELL", "0.1", "40200", at(hours=9, minutes=2)),  # +20 realized, flat: the peak then
        fill("BUY", "0.1", "40000", at(hours=9, minutes=3)),
        fill("SELL", "0.1", "39400", at(hours=9, minutes=5)),  # -60: total -40, 60 below the peak
    ]
    before = RiskBaseline(day=date(2024, 1, 1), day_open={"USDT": 0.0}, peak={"USDT": 20.0})
    acknowledged = tracker(PnlHistory(history, before, reset=True), max_daily_loss=100, max_drawdown=50)
    acknowledged.start(clock_ns=at(hours=10))
    assert acknowledged.check_pnl() is None
    assert acknowledged.drawdown == usdt("0.00")
    saved = acknowledged.take_baseline()
    assert saved == RiskBaseline(day=date(2024, 1, 1), day_open={"USDT": -40.0}, peak={"USDT": -40.0})

    restarted = tracker(PnlHistory(history, saved), max_daily_loss=100, max_drawdown=50)
    restarted.start(clock_ns=at(hours=11))
    assert restarted.check_pnl() is None
    assert (restarted.daily_pnl, restarted.drawdown) == (acknowledged.daily_pnl, acknowledged.drawdown)


@pytest.mark.parametrize("flat", [True, False], ids=["after-a-round-trip", "with-a-position-open"])
def test_a_restart_shows_the_drawdown_of_a_strategy_that_never_rose_above_zero(flat):
    """A runtime that saw every fill starts the peak at 0: a strategy that has only lost is that far below it. Its
    saved baseline holds no peak (none was ever reached above 0), and a restart must not take the loss now as
    the peak."""
    fills = [fill("BUY", "0.1", "40000", at(hours=9, minutes=1))]
    if flat:
        fills.append(fill("SELL", "0.1", "39400", at(hours=9, minutes=5)))
    first = tracker(PnlHistory(fills=[]), max_drawdown=500)
    first.start(clock_ns=at(hours=9))
    for each in fills:
        first.on_fill(each)
    first.advance(at(hours=9, minutes=5))
    if not flat:
        first.mark(BTC, ("USDT", -45.0))
    assert first.check_pnl() is None
    assert first.drawdown == usdt("60.00" if flat else "45.00")
    saved = first.take_baseline()

    restarted = tracker(PnlHistory(fills=fills, baseline=saved), max_drawdown=500)
    if not flat:
        restarted.mark(BTC, ("USDT", -45.0))
    restarted.start(clock_ns=at(hours=10))
    assert restarted.check_pnl() is None
    assert restarted.drawdown == first.drawdown


def test_a_baseline_is_offered_when_it_changed_and_again_when_saving_it_failed():
    limits = tracker(PnlHistory(fills=[]), max_drawdown=50)
    limits.start(clock_ns=at(hours=9))
    assert limits.take_baseline() == RiskBaseline(day=date(2024, 1, 1), day_open={}, peak={})
    assert limits.take_baseline() is None
    limits.mark(BTC, ("USDT", 25.0))
    assert limits.check_pnl() is None
    assert limits.take_baseline() == RiskBaseline(day=date(2024, 1, 1), day_open={}, peak={"USDT": 25.0})
    limits.baseline_unsaved()
    assert limits.take_baseline() == RiskBaseline(day=date(2024, 1, 1), day_open={}, peak={"USDT": 25.0})
    limits.advance(at(day=1))
    assert limits.take_baseline() == RiskBaseline(day=date(2024, 1, 2), day_open={"USDT": 25.0}, peak={"USDT": 25.0})

    assert paper(max_drawdown=50).take_baseline() is None  # paper carries nothing over


def test_fills_before_the_start_are_booked_after_the_ledgers_history_each_trade_once():
    held = fill("BUY", "1", "100", at(hours=1))
    closed = fill("SELL", "1", "90", at(hours=2))
    limits = tracker(PnlHistory(fills=[held]), max_daily_loss=100)
    limits.on_fill(held)  # start-up reconciliation, before the guard starts
    limits.on_fill(closed)
    limits.start(clock_ns=at(hours=3))
    assert limits.check_pnl() is None
    assert limits.daily_pnl == usdt("-10.00")


def of_order(record: FillRecord, order: str, trade_id: str) -> FillRecord:
    return dataclasses.replace(record, venue_order_id=order, client_order_id=f"O-{order}", trade_id=trade_id)


def test_an_inferred_fill_the_venue_s_trades_supersede_is_booked_once_across_a_restart():
    # A start inferred the SELL of order V-9 (its trade list lacked the trade); the ledger holds it. The next
    # start reconciles the venue's own trade of V-9: the book counts the 1 BTC sold once, as the ledger will.
    bought = fill("BUY", "2", "100", at(hours=1))
    sold = fill("SELL", "1", "110", at(hours=2))
    inferred = of_order(sold, "V-9", inferred_trade_id("V-9", D("1")))
    real = of_order(sold, "V-9", "T-900")
    limits = tracker(PnlHistory(fills=[bought, inferred]), max_daily_loss=100)
    limits.on_fill(real)  # start-up reconciliation
    limits.start(clock_ns=at(hours=3))
    book = limits.books[BTC]
    assert (book.position, book.realized) == (1, 10)
    assert limits.check_pnl() is None
    assert limits.daily_pnl == usdt("10.00")

    limits.on_fill(inferred)  # the node infers it again: still once
    assert (limits.books[BTC].position, limits.books[BTC].realized) == (1, 10)


def test_the_venue_s_trades_arriving_after_the_start_book_the_instrument_again_without_the_inferred_part():
    bought = fill("BUY", "2", "100", at(hours=1))
    sold = fill("SELL", "1", "110", at(hours=2))
    limits = tracker(PnlHistory(fills=[bought]), max_daily_loss=100)
    limits.start(clock_ns=at(hours=3))
    limits.on_fill(of_order(sold, "V-9", inferred_trade_id("V-9", D("1"))))
    assert limits.books[BTC].position == 1
    first = dataclasses.replace(of_order(sold, "V-9", "T-901"), quantity=D("0.4"))
    limits.on_fill(first)  # part of the order's trades: the inferred fill counts the other 0.6
    assert (limits.books[BTC].position, limits.books[BTC].realized) == (1, 10)
    limits.on_fill(dataclasses.replace(of_order(sold, "V-9", "T-902"), quantity=D("0.6"), price=D("120")))
    # the venue's two trades replace the inferred fill: 0.4 at 110 and 0.6 at 120 against an average of 100
    assert (limits.books[BTC].position, limits.books[BTC].realized) == (1, 16)
    assert limits.check_pnl() is None
    assert limits.daily_pnl == usdt("16.00")


def test_a_trade_after_the_status_an_inferred_fill_came_from_is_booked_beside_it():
    # Order V-9 buys 10. T-1 (3) came on the stream; the stream reconnected and missed T-2 (3); the open-order check
    # saw 6 filled: NautilusTrader inferred 3 at the status's time. Then T-3 (4) filled the order: above 6.
    bought = fill("BUY", "3", "100", at(hours=2))
    t1 = of_order(bought, "V-9", "T-1")
    gap = of_order(dataclasses.replace(bought, ts_event=at(hours=3)), "V-9", inferred_trade_id("V-9", D("6")))
    t3 = of_order(dataclasses.replace(bought, quantity=D("4"), ts_event=at(hours=4)), "V-9", "T-3")
    limits = tracker(PnlHistory(fills=[]), max_daily_loss=100)
    limits.start(clock_ns=at(hours=1))
    for record in (t1, gap, t3):
        limits.on_fill(record)
    assert limits.books[BTC].position == 10
    t2 = of_order(dataclasses.replace(bought, ts_event=at(hours=2, minutes=30)), "V-9", "T-2")
    limits.on_fill(t2)  # listed at last: it is what was inferred
    assert limits.books[BTC].position == 10

    restarted = tracker(PnlHistory(fills=[t1, gap, t3]), max_daily_loss=100)  # the ledger's rows, as they count
    restarted.start(clock_ns=at(hours=5))
    assert restarted.books[BTC].position == 10


class Calls:
    """How often the guard's book and the supersede rule were asked to work (call counts, never a timing)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.applied = 0
        self.keyed = 0
        apply, key = PnlBook.apply, supersede.order_key

        def counted_apply(book: PnlBook, record: FillRecord):
            self.applied += 1
            return apply(book, record)

        def counted_key(record: FillRecord):
            self.keyed += 1
            return key(record)

        monkeypatch.setattr(PnlBook, "apply", counted_apply)
        monkeypatch.setattr(supersede, "order_key", counted_key)

    def reset(self) -> None:
        self.applied = self.keyed = 0


def long_history(n: int, orders: int) -> tuple[list[FillRecord], list[FillRecord]]:
    """``n`` fills of BTC, a buy then a sell of 1 by turns; ``orders`` of the sells were inferred by an earlier start
    (the venue's allOrders reaches further back than its trade list) and their trades are in the ledger too. Returns
    the history and the venue's trades of those orders."""
    history, trades = [], []
    every = n // orders
    for i in range(n):
        record = fill("BUY" if i % 2 == 0 else "SELL", "1", str(100 + i % 7), at(minutes=i))
        if i % 2 and len(trades) < orders and i % every == 1:
            order = f"V-OLD-{i}"
            real = of_order(record, order, f"T-OLD-{i}")
            history += [real, of_order(record, order, inferred_trade_id(order, D("1")))]
            trades.append(real)
        else:
            history.append(record)
    return history, trades


def booked_from_scratch(fills: list[FillRecord]) -> tuple[Fraction, Fraction]:
    book = PnlBook()
    for counted in supersede.effective(fills):
        book.apply(counted)
    return book.position, book.net_realized


def test_the_rule_groups_the_fills_by_order_once_whatever_the_number_of_inferred_orders(monkeypatch):
    history, _ = long_history(2_000, orders=40)
    calls = Calls(monkeypatch)
    counted = supersede.effective(history)
    assert len(counted) == len(history) - 40  # each inferred fill superseded whole by its trade
    assert calls.keyed <= 2 * len(history)  # not once per fill and per inferred order


def test_a_trade_of_an_order_once_inferred_books_one_fill_unless_what_counts_changes(monkeypatch):
    # Old FILLED orders are inferred again at every start; their trades are in the ledger already. Booking the
    # history, then trades of those orders (the venue lists them again) and a new inferred order's fills, does work
    # in proportion to what changes: never the instrument's whole history for each trade.
    history, trades = long_history(2_000, orders=20)
    calls = Calls(monkeypatch)
    limits = tracker(PnlHistory(fills=history), max_daily_loss=10_000)
    limits.start(clock_ns=at(day=2))
    assert calls.applied == len(history) - 20
    assert calls.keyed <= 3 * len(history)

    calls.reset()
    for real in trades:
        limits.on_fill(real)  # listed again: known
        limits.on_fill(dataclasses.replace(real, trade_id=real.trade_id + "-b", quantity=D("0.5")))  # more of it
    assert calls.applied == len(trades)  # one each for the new trades; the inferred fills counted 0 already

    calls.reset()
    sold = fill("SELL", "1", "120", at(day=1, hours=1))
    inferred = of_order(sold, "V-NEW", inferred_trade_id("V-NEW", D("1")))
    limits.on_fill(inferred)
    later = [fill("BUY", "1", "110", at(day=1, hours=2)), fill("SELL", "1", "115", at(day=1, hours=3))]
    for record in later:
        limits.on_fill(record)
    assert calls.applied == 3
    calls.reset()
    real = dataclasses.replace(of_order(sold, "V-NEW", "T-NEW"), price=D("121"))
    limits.on_fill(real)  # supersedes the inferred fill: booked again from the inferred fill on, not from the start
    assert calls.applied <= len(later) + 2
    extra = [dataclasses.replace(t, trade_id=t.trade_id + "-b", quantity=D("0.5")) for t in trades]
    everything = [*history, *extra, inferred, *later, real]
    book = limits.books[BTC]
    assert (book.position, book.net_realized) == booked_from_scratch(everything)


def test_the_history_books_each_inferred_fill_as_the_ledger_counts_it_from_the_fill_as_first_recorded():
    # Two starts inferred fills of order V-9: the first held 3 and the venue said 5 (2 inferred, (3, 5]); the
    # second, starting empty, heard 10 (10 inferred, (0, 10]). The ledger counts the second for 8 (all of it but
    # (3, 5]) and holds it reduced, its first record in superseded_fills. From the reduced row alone, 8 of
    # cumulative 10 reads as (2, 10], which would count 6.
    sold = fill("SELL", "2", "100", at(hours=1))
    first = of_order(sold, "V-9", inferred_trade_id("V-9", D("5")))
    second = dataclasses.replace(of_order(sold, "V-9", inferred_trade_id("V-9", D("10"))), quantity=D("10"))
    stored = dataclasses.replace(second, quantity=D("8"))  # the ledger's row
    assert [f.quantity for f in supersede.effective([first, second])] == [D("2"), D("8")]
    limits = tracker(PnlHistory(fills=[first, stored], superseded=[second]), max_daily_loss=10_000)
    limits.start(clock_ns=at(day=1))
    assert limits.books[BTC].position == -10  # the ledger's rows: 2 + 8
    real = dataclasses.replace(of_order(sold, "V-9", "T-1"), quantity=D("4"))
    limits.on_fill(real)  # the venue's first trade: (0, 4] of the order
    counted = supersede.effective([first, second, real])
    assert [f.quantity for f in counted] == [D("1"), D("5"), D("4")]
    assert limits.books[BTC].position == -sum(f.quantity for f in counted) == -10
    assert limits.books[BTC].realized == 0  # all sold at 100, nothing bought: realized nothing


# --------------------------------------------------------------------------- currencies and contracts


def test_each_currency_is_held_to_the_limit_on_its_own():
    terms = {PERP: ContractTerms(inverse=True, settlement_currency="BTC")}
    limits = tracker(max_daily_loss=100)
    limits.start(clock_ns=0, terms=lambda instrument_id: terms.get(instrument_id, LINEAR))
    limits.advance(at(hours=1))
    # inverse: (1/40,000 - 1/50,000) x 10,000 USD = +0.05 BTC; linear: -50 USDT
    for each in (
        fill("BUY", "10000", "40000", at(hours=1), instrument=PERP, quote="USD"),
        fill("SELL", "10000", "50000", at(hours=1, minutes=1), instrument=PERP, quote="USD"),
        fill("BUY", "1", "40000", at(hours=1, minutes=2)),
        fill("SELL", "1", "39950", at(hours=1, minutes=3)),
    ):
        limits.on_fill(each)
    assert limits.check_pnl() is None
    assert limits.daily_pnl == {"BTC": D("0.05"), "USDT": D("-50.00")}

    limits.on_fill(fill("SELL", "20000", "40000", at(hours=1, minutes=4), instrument=PERP, quote="USD"))
    limits.mark(PERP, ("BTC", -99.0))  # nonsense in BTC, but never added to the USDT figures
    limits.mark(BTC, ("USDT", -49.0))
    assert limits.check_pnl() is None
    assert limits.daily_pnl == {"BTC": D("-98.95"), "USDT": D("-99.00")}
    limits.mark(BTC, ("USDT", -60.0))
    assert limits.check_pnl() == Breach(
        "maxDailyLoss", "the day's PnL -110.00 USDT is below -100 (maxDailyLoss, UTC day 2024-01-01)", BREACH_TIME
    )


def test_a_reversal_in_one_fill_realizes_the_closed_side_and_opens_the_rest():
    limits = paper(max_daily_loss=1000, max_drawdown=15)
    limits.advance(at(hours=1))
    limits.on_fill(fill("BUY", "1", "100", at(hours=1)))
    limits.on_fill(fill("SELL", "3", "110", at(hours=1, minutes=1)))  # +10 on the long; short 2 @ 110
    limits.mark(BTC, ("USDT", 0.0))
    assert limits.check_pnl() is None
    assert (limits.daily_pnl, limits.drawdown) == (usdt("10.00"), usdt("0.00"))
    limits.mark(BTC, ("USDT", -10.0))  # 115: the short loses 2 x 5
    assert limits.check_pnl() is None
    assert limits.drawdown == usdt("10.00")
    limits.mark(BTC, ("USDT", -16.0))  # 118
    assert limits.check_pnl() == Breach(
        "maxDrawdown", "total PnL -6.00 USDT is 16.00 below its peak 10.00 (maxDrawdown 15)", BREACH_TIME
    )


# --------------------------------------------------------------------------- the peak


@pytest.mark.parametrize(
    ("path", "last", "reason"),
    [
        # (total PnL, drawdown) on the way; the last total breaks the limit
        (
            ((30.0, "0.00"), (80.0, "0.00"), (35.0, "45.00"), (70.0, "10.00")),
            30.0,
            "30.00 USDT is 50.00 below its peak 80.00",
        ),
        ((), -50.0, "-50.00 USDT is 50.00 below its peak 0.00"),  # never above zero: measured from zero
    ],
)
def test_the_drawdown_is_measured_from_the_highest_total_reached(path, last, reason):
    limits = paper(max_drawdown=50)
    limits.advance(at(hours=1))
    for total, drawdown in path:
        limits.mark(BTC, ("USDT", total))
        assert limits.check_pnl() is None
        assert limits.drawdown == usdt(drawdown)
    limits.mark(BTC, ("USDT", last))
    assert limits.check_pnl() == Breach("maxDrawdown", f"total PnL {reason} (maxDrawdown 50)", BREACH_TIME)


def test_after_a_breach_the_figures_keep_moving_and_no_new_breach_is_sought():
    limits = paper(max_daily_loss=100)
    limits.advance(at(hours=1))
    limits.mark(BTC, ("USDT", -150.0))
    assert limits.check_pnl(halted=True) is None
    assert limits.daily_pnl == usdt("-150.00")


# --------------------------------------------------------------------------- positions, limits as written


@pytest.mark.parametrize(
    ("net", "breached"), [("0.005", False), ("-0.005", False), ("0.010000", True), ("-0.006", True)]
)
def test_a_position_over_the_limit_either_way_is_a_breach_and_one_at_it_is_not(net, breached):
    breach = paper(max_position=0.005).check_position(BTC, D(net))
    expected = f"net position {net} BTCUSDT.BINANCE exceeds maxPosition 0.005"
    assert breach == (Breach("maxPosition", expected, BREACH_TIME) if breached else None)


def test_without_a_position_limit_no_position_is_a_breach():
    assert paper().check_position(BTC, D("1000000")) is None


def test_limits_read_as_written_in_the_spec():
    limits = paper(max_daily_loss=100.0, max_drawdown=0.05)
    assert (limits.max_daily_loss, limits.max_drawdown, limits.max_position) == (D("100"), D("0.05"), None)
    assert limits.watches_pnl
    assert not paper(max_position=1).watches_pnl


# --------------------------------------------------------------------------- the RiskEngine's denials


def test_the_risk_engines_denials_of_the_specs_limits_are_breaches():
    notional = from_denial("O-1", "NOTIONAL_EXCEEDS_MAX_PER_ORDER: notional=120000.00 USDT", BREACH_TIME)
    assert notional == Breach(
        "maxNotionalPerOrder",
        "order O-1 denied by the RiskEngine: NOTIONAL_EXCEEDS_MAX_PER_ORDER: notional=120000.00 USDT",
        BREACH_TIME,
    )
    rate = from_denial("O-2", "Exceeded MAX_ORDER_SUBMIT_RATE", BREACH_TIME)
    assert rate == Breach(
        "maxOrderSubmitRate", "order O-2 denied by the RiskEngine: Exceeded MAX_ORDER_SUBMIT_RATE", BREACH_TIME
    )
    modify = from_modify_rejection("O-3", "Exceeded MAX_ORDER_MODIFY_RATE", BREACH_TIME)
    assert modify == Breach(
        "maxOrderModifyRate",
        "modification of O-3 rejected by the RiskEngine: Exceeded MAX_ORDER_MODIFY_RATE",
        BREACH_TIME,
    )


@pytest.mark.parametrize(
    "reason",
    [
        "TradingState.HALTED",
        "CUM_NOTIONAL_EXCEEDS_FREE_BALANCE",
        "livestrat risk guard: trading is halted (maxDailyLoss: …) NOTIONAL_EXCEEDS_MAX_PER_ORDER",
    ],
)
def test_other_denials_are_not_breaches(reason):
    assert from_denial("O-1", reason, BREACH_TIME) is None
    assert from_modify_rejection("O-1", reason, BREACH_TIME) is None


# --------------------------------------------------------------------------- the guard's configuration


def test_the_guards_configuration_is_frozen_and_comes_from_the_spec():
    spec = LiveStrategySpec.model_validate(
        {
            "mode": "paper",
            "strategy": {
                "strategyPath": "nautilus_trader.examples.strategies.ema_cross:EMACross",
                "configPath": "nautilus_trader.examples.strategies.ema_cross:EMACrossConfig",
            },
            "venue": {"adapter": "sandbox", "name": "BINANCE", "startingBalances": ["100000 USDT"]},
            "instruments": [BTC, ETH],
            "data": {"catalog": {"emptyDir": {}}, "replay": {}},
            "risk": {"maxDailyLoss": 500, "maxPosition": 2, "maxNotionalPerOrder": 50_000},
        }
    )
    config = RiskGuardConfig.from_spec(spec)
    assert config.instrument_ids == (BTC, ETH)
    assert (config.max_daily_loss, config.max_drawdown, config.max_position) == (500, None, 2)
    assert config.max_notional_per_order == 50_000
    assert str(config.component_id) == GUARD_ID
    with pytest.raises(AttributeError):
        config.max_daily_loss = 1_000_000  # type: ignore[misc]


# --------------------------------------------------------------------------- a promotion's evidence


def test_the_largest_drawdown_seen_stays_when_pnl_recovers():
    # A paper strategy's track record (status.risk.maxDrawdown) is what a promotion checks: a recovery after a
    # deep fall must not hide the fall.
    limits = paper(max_drawdown=1000)
    limits.advance(at(hours=1))
    limits.on_fill(fill("BUY", "1", "40000", at(hours=1)))
    limits.mark(BTC, ("USDT", 50.0))
    limits.check_pnl()
    limits.mark(BTC, ("USDT", -250.0))
    limits.check_pnl()
    limits.mark(BTC, ("USDT", 20.0))
    limits.check_pnl()
    assert limits.drawdown == usdt("30.00")
    assert limits.max_drawdown_seen == usdt("300.00")


@pytest.mark.parametrize("seed", range(40))
def test_the_days_pnl_shown_is_the_books_total_rounded_as_the_status_rounds_it(seed):
    """On the first day of a paper run the day's PnL is the total PnL: shown in cents, it is what the status's
    ``trading.totalPnl`` shows (the book's exact figure rounded half to even), not the float's binary digits
    rounded (-781.055 is -781.06, where the float nearest it reads -781.05)."""
    rnd = random.Random(seed)
    limits = paper(max_daily_loss=1e9)
    for i in range(6):
        price = f"{rnd.randint(9_000_000, 11_000_000) / 1000:.3f}"
        limits.on_fill(fill("SELL" if i % 2 else "BUY", "1", price, at(minutes=i)))
    limits.advance(at(minutes=6))
    assert limits.check_pnl() is None
    exact = sum((book.net_realized for book in limits.books.values()), Fraction(0))
    assert money_text(limits.daily_pnl) == money_text({"USDT": to_decimal(exact)})
