"""The guard's per-price PnL check takes a shortcut, and nobody can tell: same breaches, same figures.

``PnlWatch`` (strategy_runtime.risk.pnl_watch) skips the full check while the price stays inside the
band where total PnL can neither reach a new peak nor come near a limit, and brings the figures up
to date before anything reads them. Here two trackers replay the same random price paths (fills,
UTC midnights, gaps, jumps) under five limit settings, one checking every price in full and one
taking the shortcut: every breach comes on the same bar with the same sentence, and the figures
(the day's PnL, the drawdown, the largest drawdown seen, the baseline a live runtime saves) agree to
the cent wherever read.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

import pytest

from strategy_runtime.ledger import FillRecord, Side
from strategy_runtime.risk.limits import LimitsTracker, PnlHistory
from strategy_runtime.risk.pnl_watch import PnlWatch
from tests.support.ledger import KEY

BTC = "BTCUSDT.BINANCE"
T0 = int(datetime(2024, 1, 1, 20, tzinfo=UTC).timestamp()) * 1_000_000_000
MINUTE = 60 * 1_000_000_000
BREACH_TIME = datetime(2030, 1, 1, tzinfo=UTC)
CENT = Decimal("0.01")
SEEDS = 60

SETTINGS: list[dict[str, float]] = [
    {"max_daily_loss": 100},
    {"max_drawdown": 150},
    {"max_daily_loss": 1000, "max_drawdown": 150},
    {"max_daily_loss": 35.5, "max_drawdown": 20},
    {"max_daily_loss": 0.05, "max_drawdown": 0.05},
]


@dataclass(frozen=True)
class Step:
    ts: int
    price: Fraction
    fill: tuple[Side, Fraction] | None  # a fill at this price before it is checked
    observe: bool  # something reads the figures after this step (the status, /state, a baseline save)


def price_path(seed: int, bars: int = 600) -> list[Step]:
    rng = random.Random(seed)
    price, ts, steps = Fraction(40_000), T0, []
    for i in range(bars):
        ts += MINUTE * (rng.choice([1, 1, 1, 1, 7, 600]) if rng.random() < 0.05 else 1)  # gaps cross midnights
        move = rng.gauss(0, 0.0005) if rng.random() > 0.01 else rng.gauss(0, 0.01)  # now and then a jump
        price = max(Fraction(1_000), price * Fraction(1 + move).limit_denominator(10**8))
        price = Fraction(round(price * 100), 100)  # a price on the instrument's tick, 0.01
        fill = None
        if i == 0 or rng.random() < 0.04:
            fill = (rng.choice([Side.BUY, Side.SELL]), Fraction(rng.choice([1, 2, 5, 10]), 200))
        steps.append(Step(ts, price, fill, observe=rng.random() < 0.05))
    return steps


def money(value: Fraction) -> float:
    """An amount as NautilusTrader's ``Money`` holds it: rounded to the currency's precision (here a cent)."""
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return float(exact.quantize(CENT, rounding=ROUND_HALF_EVEN))


class Replay:
    """What the guard does with one tracker: prices through ``PnlWatch``, fills and position events around it."""

    def __init__(self, limits: dict[str, float], *, shortcut: bool, live: bool) -> None:
        history = PnlHistory(fills=()) if live else None
        self.limits = LimitsTracker(history=history, now=lambda: BREACH_TIME, **limits)
        self.limits.start(clock_ns=T0)
        self.watch = PnlWatch(self.limits, self.reprice, shortcut=shortcut)
        self.halted = False
        self.seen: list[Any] = []
        self.trades = 0

    def reprice(self, instrument_id: str, price: Fraction) -> tuple[str, float] | None:
        book = self.limits.books.get(instrument_id)
        if book is None or book.position == 0:
            self.limits.mark(instrument_id, None)
            return None
        self.limits.mark(instrument_id, ("USDT", money(book.unrealized(price))))
        return "USDT", float(book.position)  # linear, multiplier 1: PnL per unit of price

    def breach(self, at: int, breach: Any) -> None:
        if breach is not None and not self.halted:
            self.halted = True
            self.seen.append(("breach", at, breach))

    def step(self, at: int, step: Step) -> None:
        if step.fill is not None:  # the reporter's fill, then the position event
            self.breach(at, self.watch.settle())
            self.trades += 1
            side, quantity = step.fill
            self.limits.on_fill(
                FillRecord(
                    strategy_key=KEY,
                    trade_id=f"T-{self.trades}",
                    client_order_id=f"O-{self.trades}",
                    venue_order_id=f"V-{self.trades}",
                    instrument_id=BTC,
                    side=side,
                    quantity=Decimal(quantity.numerator) / quantity.denominator,
                    price=Decimal(step.price.numerator) / step.price.denominator,
                    commission=Decimal("0.5"),
                    commission_currency="USDT",
                    ts_event=step.ts,
                    ts_init=step.ts,
                    quote_currency="USDT",
                )
            )
            self.breach(at, self.watch.forget())
            self.limits.advance(step.ts)
            self.reprice(BTC, step.price)
            self.breach(at, self.limits.check_pnl(halted=self.halted))
        book = self.limits.books.get(BTC)
        if self.watch.quiet(BTC, step.price, float(step.price), step.ts):
            assert book is not None and book.position != 0, "a quiet band while nothing is open"
        elif book is None or book.position == 0:
            self.limits.advance(step.ts)  # nothing open: the guard only moves the clock
        else:
            self.breach(at, self.watch.check(BTC, step.price, float(step.price), step.ts, halted=self.halted))
        if step.observe:
            self.observe(at)

    def observe(self, at: int) -> None:
        self.breach(at, self.watch.settle())
        limits = self.limits
        self.seen.append(
            ("figures", at, limits.daily_pnl, limits.drawdown, limits.max_drawdown_seen, limits.take_baseline())
        )


@pytest.mark.parametrize("limits", SETTINGS, ids=[",".join(f"{k}={v}" for k, v in s.items()) for s in SETTINGS])
@pytest.mark.parametrize("live", [False, True], ids=["paper", "live"])
def test_the_shortcut_finds_every_breach_on_the_same_bar_with_the_same_sentence_and_figures(limits, live):
    skipped = checked = breaches = 0
    for seed in range(SEEDS):
        path = price_path(seed)
        exact = Replay(limits, shortcut=False, live=live)
        fast = Replay(limits, shortcut=True, live=live)
        for at, step in enumerate(path):
            exact.step(at, step)
            fast.step(at, step)
        exact.observe(len(path))
        fast.observe(len(path))
        assert fast.seen == exact.seen, f"seed {seed}: the shortcut and the full check disagree"
        breaches += any(kind == "breach" for kind, *_ in exact.seen)
        skipped += fast.watch.skipped
        checked += fast.watch.checked
    assert breaches, "no path broke a limit: the paths prove nothing about breaches"
    if breaches < SEEDS / 2:  # a halted strategy is checked in full: where most paths trade on, most prices skip
        assert skipped > checked, f"the shortcut hardly ever applies ({skipped} skipped, {checked} checked)"
