"""Slippage against the arrival price: what a fill cost beyond the market the order met when it was sent.

The status's ``slippageBps`` and ``livestrat report``'s figure are the same function of the ledger's fills
(``strategy_runtime.slippage``); here it is checked against the formula written out independently in exact
fractions, over random fills, and on the cases a trader reads it by: a BUY above arrival and a SELL below it
cost (positive), the other way round they gained (negative), and a fill without an arrival price says nothing.
"""

from __future__ import annotations

import dataclasses
import random
from decimal import Decimal
from fractions import Fraction

from strategy_runtime.ledger import Side
from strategy_runtime.slippage import SlippageTally, slippage_bps
from tests.support.ledger import make_fill


def formula_bps(fills) -> Decimal | None:
    """sum(side * (price - arrival) * qty) / sum(arrival * qty) * 10 000 in exact fractions, rounded half to even
    to 2 decimals; None without a fill that has an arrival price."""
    priced = [f for f in fills if f.arrival_price is not None]
    if not priced:
        return None
    cost = sum(
        (1 if f.side == "BUY" else -1) * (Fraction(f.price) - Fraction(f.arrival_price)) * Fraction(f.quantity)
        for f in priced
    )
    notional = sum(Fraction(f.arrival_price) * Fraction(f.quantity) for f in priced)
    hundredths = round(cost / notional * 10_000 * 100)  # Fraction rounds half to even
    return Decimal(hundredths) / 100


def fill(i: int, side: str, price: str, arrival: str | None, quantity: str = "1"):
    return make_fill(
        i,
        side=Side(side),
        price=Decimal(price),
        quantity=Decimal(quantity),
        arrival_price=None if arrival is None else Decimal(arrival),
    )


def test_slippage_over_random_fills_is_the_formula_in_exact_fractions():
    rng = random.Random(20261206)
    for _ in range(300):
        fills = []
        for i in range(rng.randint(1, 40)):
            arrival = Decimal(rng.randint(1, 10**9)).scaleb(-rng.randint(0, 8))
            drift = Decimal(rng.randint(-(10**6), 10**6)).scaleb(-rng.randint(2, 12))
            fills.append(
                make_fill(
                    i,
                    side=rng.choice([Side.BUY, Side.SELL]),
                    price=max(arrival + drift, Decimal("0.00000001")),
                    quantity=Decimal(rng.randint(1, 10**7)).scaleb(-rng.randint(0, 8)),
                    arrival_price=None if rng.random() < 0.2 else arrival,
                )
            )
        assert slippage_bps(fills) == formula_bps(fills), fills


def test_a_buy_above_arrival_and_a_sell_below_it_cost_the_other_way_they_gained():
    assert slippage_bps([fill(0, "BUY", "100.10", "100")]) == Decimal("10.00")
    assert slippage_bps([fill(0, "SELL", "99.90", "100")]) == Decimal("10.00")
    assert slippage_bps([fill(0, "BUY", "99.95", "100")]) == Decimal("-5.00")
    assert slippage_bps([fill(0, "SELL", "100.05", "100")]) == Decimal("-5.00")
    assert slippage_bps([fill(0, "BUY", "100", "100")]) == Decimal("0.00")


def test_slippage_is_weighted_by_notional_at_arrival():
    # 3 units paid 1 bp over 100, 1 unit at 200 gained 2 bp: (0.03 - 0.04) / (300 + 200) = -0.2 bp
    fills = [fill(0, "BUY", "100.01", "100", "3"), fill(1, "SELL", "200.04", "200", "1")]
    assert slippage_bps(fills) == Decimal("-0.20")


def test_a_fill_without_an_arrival_price_is_left_out():
    priced = fill(0, "BUY", "100.10", "100")
    unknown = fill(1, "SELL", "50", None, "1000")  # would swamp the figure if it counted with any arrival
    assert slippage_bps([priced, unknown]) == slippage_bps([priced]) == Decimal("10.00")
    assert slippage_bps([unknown]) is None
    assert slippage_bps([]) is None


def test_a_fill_nautilus_trader_inferred_is_left_out_so_its_order_s_trade_counts_once():
    # The inferred fill carries the order's average price and its arrival price; the venue's own trade of the
    # order, which supersedes it, comes later with the same arrival price: the execution is measured once, by the
    # trade, in the running tally as in a recomputation from the ledger (which holds no superseded fill).
    trade = dataclasses.replace(fill(0, "BUY", "100.10", "100"), venue_order_id="V-5", trade_id="T-5")
    inferred = dataclasses.replace(trade, trade_id="INFERRED-V-5-1", price=Decimal("100.30"))
    tally = SlippageTally()
    tally.add(inferred)
    tally.add(trade)
    assert (tally.bps(), tally.fills) == (slippage_bps([trade]), 1)
    assert slippage_bps([inferred]) is None


def test_the_runtimes_running_tally_is_the_same_function_fill_by_fill():
    fills = [fill(0, "BUY", "100.10", "100"), fill(1, "SELL", "99.97", "100", "2"), fill(2, "BUY", "7", None)]
    tally = SlippageTally()
    shown = []
    for each in fills:
        tally.add(each)
        shown.append(tally.text())
    assert shown == [f"{slippage_bps(fills[: n + 1]):f}" for n in range(len(fills))] == ["10.00", "5.33", "5.33"]
    assert SlippageTally().text() is None
