"""An inferred fill and the venue's own trades of the same order are one execution: the ledger counts it once.

NautilusTrader infers a fill when a venue reports an order filled without the trades (the trade list lagged the
status, or the order filled between the two queries of a restart's reconciliation); the venue's trades of that
order come later (at the next restart, or on the user-data stream). Against a real SQLite file and a real
PostgreSQL server: the trades supersede the inferred fill, in whole or in part, in the transaction that stores
them; what it was and what superseded it stay readable (``Ledger.superseded``).
"""

from __future__ import annotations

import dataclasses
import logging
from decimal import Decimal

from strategy_runtime.ledger import FillRecord, Side
from strategy_runtime.ledger.records import inferred_trade_id
from strategy_runtime.ledger.sqlite import SqliteLedger
from strategy_runtime.ledger.supersede import Change, Supersession, effective, supersessions
from strategy_runtime.ledger.writer import Written
from strategy_runtime.pnl import recompute_pnl
from tests.support.ledger import KEY, T0, make_fill

D = Decimal
ORDER = "V-77"
ALL_VERSIONS = [m.version for m in SqliteLedger.MIGRATIONS]


def inferred(quantity: str = "0.010", cumulative: str = "0.010", order: str = ORDER) -> FillRecord:
    """A fill NautilusTrader inferred: the venue said ``order`` reached ``cumulative``, the node held the rest."""
    return make_fill(
        100,
        trade_id=inferred_trade_id(order, D(cumulative)),
        client_order_id="O-77",
        venue_order_id=order,
        side=Side.SELL,
        quantity=D(quantity),
        price=D("40100.00"),
        commission=D("0.40100000") * D(quantity) / D("0.010"),
        ts_event=T0 + 50_000_000,
    )


def trade(n: int, quantity: str) -> FillRecord:
    """The venue's own trade ``T-n`` of the order."""
    return make_fill(
        100 + n,
        trade_id=f"T-{n}",
        client_order_id="O-77",
        venue_order_id=ORDER,
        side=Side.SELL,
        quantity=D(quantity),
        price=D("40100.00"),
        commission=D("0.40100000") * D(quantity) / D("0.010"),
        ts_event=T0 + 40_000_000 + n,
    )


async def flushed(ledger) -> None:
    await ledger.flush()


async def test_the_venue_s_trades_at_a_later_start_supersede_the_inferred_fill_which_stays_readable(target):
    other = make_fill(0)
    async with target.ledger() as first:
        first.record(other)
        first.record(inferred())
        await flushed(first)
        assert [f.trade_id for f in await first.fills()] == [other.trade_id, "INFERRED-V-77-0.01"]

    async with target.ledger() as second:  # the venue's trade list holds the order's trades now
        second.record(trade(1, "0.004"))
        second.record(trade(2, "0.006"))
        await flushed(second)
        fills = await second.fills()
        assert [f.trade_id for f in fills] == [other.trade_id, "T-1", "T-2"]
        assert await second.count() == 3
        totals = second.lag().totals
        assert (totals.new, totals.superseded, totals.rows) == (2, 1, 1)
        assert await second.superseded() == [Supersession(inferred(), D(0), ("T-1", "T-2"))]
        # the figures: the order's 0.010 sold once
        assert recompute_pnl(fills).instruments[other.instrument_id].position == other.signed_quantity - D("0.010")

    async with target.ledger() as third:  # the same reports again: NautilusTrader infers the same fill again
        third.record(inferred())
        third.record(trade(1, "0.004"))
        third.record(trade(2, "0.006"))
        await flushed(third)
        assert [f.trade_id for f in await third.fills()] == [other.trade_id, "T-1", "T-2"]
        totals = third.lag().totals
        assert (totals.new, totals.duplicates, totals.superseded) == (0, 3, 0)
        assert len(await third.superseded()) == 1


async def test_trades_that_cover_part_of_an_inferred_fill_leave_the_rest_of_it_counted(target):
    async with target.ledger() as ledger:
        ledger.record(inferred())
        await flushed(ledger)
        ledger.record(trade(1, "0.004"))  # the trade list lags by one of the order's two trades
        await flushed(ledger)
        fills = await ledger.fills()
        assert [(f.trade_id, f.quantity, f.commission) for f in fills] == [
            ("T-1", D("0.004"), D("0.1604")),
            ("INFERRED-V-77-0.01", D("0.006"), D("0.2406")),
        ]
        assert [(s.fill, s.counted, s.by) for s in await ledger.superseded()] == [(inferred(), D("0.006"), ("T-1",))]
        assert ledger.lag().totals.superseded == 0  # its row still counts (less of it)

        ledger.record(trade(2, "0.006"))  # the rest of the trades
        await flushed(ledger)
        assert [f.trade_id for f in await ledger.fills()] == ["T-1", "T-2"]
        assert [(s.counted, s.by) for s in await ledger.superseded()] == [(D(0), ("T-1", "T-2"))]
        assert ledger.lag().totals.superseded == 1


async def test_an_order_s_fill_inferred_after_its_trades_were_stored_never_counts(target):
    async with target.ledger() as first:
        first.record(trade(1, "0.004"))
        first.record(trade(2, "0.006"))
    async with target.ledger() as second:  # a later start meets a trade list that lags the order's status
        second.record(inferred())
        await flushed(second)
        assert [f.trade_id for f in await second.fills()] == ["T-1", "T-2"]
        assert second.lag().totals.rows == 0
        assert [(s.counted, s.by) for s in await second.superseded()] == [(D(0), ("T-1", "T-2"))]


async def test_an_inferred_fill_and_the_trades_in_one_batch_count_once(target):
    async with target.ledger() as ledger:
        for fill in (inferred(), trade(1, "0.004"), trade(2, "0.006")):
            ledger.record(fill)
        await flushed(ledger)
        assert [f.trade_id for f in await ledger.fills()] == ["T-1", "T-2"]
        assert await ledger.count() == 2
        assert ledger.lag().totals.rows == 2


async def test_a_position_alignment_and_the_trades_of_other_orders_are_left_alone(target):
    alignment = make_fill(5, trade_id="INFERRED-POSITION-0.05-FROM-0", venue_order_id=ORDER)
    async with target.ledger() as ledger:
        ledger.record(alignment)
        ledger.record(inferred(order="V-88"))
        ledger.record(trade(1, "0.004"))  # of V-77: nothing inferred of it
        await flushed(ledger)
        assert {f.trade_id for f in await ledger.fills()} == {alignment.trade_id, "INFERRED-V-88-0.01", "T-1"}
        assert await ledger.superseded() == []


def schema_6(target):
    """The ledger as a runtime before migration 7 ran it: schema 6, every fill stored as it came."""
    base = type(target.ledger())

    class Schema6(base):
        MIGRATIONS = tuple(m for m in base.MIGRATIONS if m.version <= 6)

        async def _write(self, fills):
            return Written(await self._insert(fills))

        async def _inferred_order_keys(self):
            return set()

        async def _supersede_stored(self):
            pass

    return Schema6(target.location, KEY)


async def test_the_upgrade_to_schema_7_repairs_the_double_counts_an_older_runtime_stored(target, caplog):
    other = make_fill(0)
    async with schema_6(target) as old:  # an older runtime stored the inferred fill, and later its trades beside it
        for fill in (other, inferred(), trade(1, "0.004"), trade(2, "0.006"), inferred("0.010", "0.010", "V-88")):
            old.record(fill)
    assert await target.schema_versions() == [1, 2, 3, 4, 5, 6]

    with caplog.at_level(logging.WARNING, logger="livestrat.ledger"):
        async with target.ledger() as upgraded:
            fills = await upgraded.fills()
            assert [f.trade_id for f in fills] == [other.trade_id, "T-1", "T-2", "INFERRED-V-88-0.01"]
            assert await upgraded.count() == 4
            assert await upgraded.superseded() == [Supersession(inferred(), D(0), ("T-1", "T-2"))]
    assert [r.getMessage() for r in caplog.records if "INFERRED-V-77-0.01" in r.getMessage()] == [
        "ledger: inferred fill INFERRED-V-77-0.01 (SELL 0.010 BTCUSDT-PERP.BINANCE, order O-77) superseded by the "
        f"venue's trades T-1, T-2: it counts 0.000 (was 0.010) ({upgraded.describe()}; kept in superseded_fills)"
    ]
    assert await target.schema_versions() == ALL_VERSIONS

    async with target.ledger() as again:  # nothing left to repair
        assert [f.trade_id for f in await again.fills()] == [f.trade_id for f in fills]


async def test_after_the_upgrade_a_trade_still_supersedes_an_inferred_fill_of_an_order_whose_other_one_is_gone(target):
    # An older runtime: a start inferred order V-77 to 0.006; its trade T-1 (0.006) came; a later start (the node
    # holding 0.006 from T-1) inferred 0.010: 0.004, (0.006, 0.010]. The upgrade's open supersedes the first whole;
    # the second still counts, and the venue's trade of (0.006, 0.010] must supersede it when it comes.
    async with schema_6(target) as old:
        for fill in (inferred("0.006", "0.006"), trade(1, "0.006"), inferred("0.004", "0.010")):
            old.record(fill)
    async with target.ledger() as upgraded:
        assert [(f.trade_id, f.quantity) for f in await upgraded.fills()] == [
            ("T-1", D("0.006")),
            ("INFERRED-V-77-0.01", D("0.004")),
        ]
        upgraded.record(trade(2, "0.004"))
        await flushed(upgraded)
        fills = await upgraded.fills()
        assert [f.trade_id for f in fills] == ["T-1", "T-2"]
        assert sum(f.quantity for f in fills) == D("0.010")  # the venue's order: filled 0.010
        assert upgraded.lag().totals.rows == 0  # T-2 in, the inferred 0.004 out


async def test_an_inferred_fill_of_another_instrument_under_the_same_trade_id_is_stored(target):
    # Binance's order ids are unique per symbol only: INFERRED-V-77-0.01 of ETH is not the BTC one of that id.
    eth = dataclasses.replace(inferred(), instrument_id="ETHUSDT-PERP.BINANCE")
    async with target.ledger() as first:
        first.record(inferred())
        first.record(trade(1, "0.004"))
        first.record(trade(2, "0.006"))
    async with target.ledger() as second:  # a start infers both again, in one batch: BTC's is superseded already
        second.record(inferred())
        second.record(eth)
        await flushed(second)
        fills = await second.fills()
        assert [(f.instrument_id, f.trade_id) for f in fills] == [
            ("BTCUSDT-PERP.BINANCE", "T-1"),
            ("BTCUSDT-PERP.BINANCE", "T-2"),
            ("ETHUSDT-PERP.BINANCE", "INFERRED-V-77-0.01"),
        ]
        assert second.lag().totals.rows == 1


def after_the_status(fill: FillRecord, nanoseconds: int) -> FillRecord:
    """``fill`` executed ``nanoseconds`` after the order status ``inferred()`` came from (its ``ts_event``)."""
    return dataclasses.replace(fill, ts_event=inferred().ts_event + nanoseconds)


async def test_a_trade_after_the_status_an_inferred_fill_came_from_fills_the_order_further(target):
    # Order V-77 of 0.010 resting. T-1 (0.003) came on the stream; the stream reconnected and missed T-2 (0.003);
    # the open-order check saw 0.006 filled: NautilusTrader inferred 0.003, (0.003, 0.006], at the status's time.
    # Then T-3 (0.004) filled the rest of the order, on the stream: above 0.006, not under it.
    gap = inferred("0.003", "0.006")
    t3 = after_the_status(trade(3, "0.004"), 1_000_000)
    async with target.ledger() as ledger:
        for fill in (trade(1, "0.003"), gap, t3):
            ledger.record(fill)
            await flushed(ledger)
        fills = await ledger.fills()
        assert [(f.trade_id, f.quantity) for f in fills] == [
            ("T-1", D("0.003")),
            ("INFERRED-V-77-0.006", D("0.003")),
            ("T-3", D("0.004")),
        ]
        assert sum(f.quantity for f in fills) == D("0.010")  # the venue's order: filled 0.010
        assert await ledger.superseded() == []

    async with target.ledger() as later:  # a restart's reconciliation lists T-2, which the stream missed
        later.record(trade(2, "0.003"))
        await flushed(later)
        assert [f.trade_id for f in await later.fills()] == ["T-1", "T-2", "T-3"]
        assert await later.superseded() == [Supersession(gap, D(0), ("T-1", "T-2"))]


async def test_an_open_counts_again_what_an_earlier_runtime_let_a_trade_after_the_status_supersede(
    target, monkeypatch, caplog
):
    # A runtime before this rule let every trade of the order cover an inferred fill, a trade after the status
    # included: it stored 0.007 of the order of 0.010 (T-1, the inferred 0.003 taken out, T-3). The next open of
    # this runtime puts the inferred fill back, before the count and the history are read.
    from strategy_runtime.ledger import supersede

    rule = supersede.counted_quantities
    gap = inferred("0.003", "0.006")
    with monkeypatch.context() as earlier:
        earlier.setattr(supersede, "counted_quantities", lambda fills, trades: rule(fills, [(0, q) for _, q in trades]))
        async with target.ledger() as old:
            for fill in (trade(1, "0.003"), gap, after_the_status(trade(3, "0.004"), 1_000_000)):
                old.record(fill)
                await flushed(old)
            assert sum(f.quantity for f in await old.fills()) == D("0.007")
    caplog.set_level(logging.WARNING, logger="livestrat.ledger")
    async with target.ledger() as repaired:
        fills = await repaired.fills()
        assert [(f.trade_id, f.quantity) for f in fills] == [
            ("T-1", D("0.003")),
            ("INFERRED-V-77-0.006", D("0.003")),
            ("T-3", D("0.004")),
        ]
        assert await repaired.count() == 3
        assert await repaired.superseded() == []
    assert [r.getMessage() for r in caplog.records if "counted again" in r.getMessage()] == [
        "ledger: inferred fill INFERRED-V-77-0.006 (SELL 0.003 BTCUSDT-PERP.BINANCE, order O-77) counted again: a "
        "trade of the order after the status it was inferred from filled the order further and supersedes none of "
        f"it: it counts 0.003 (was 0.000) ({repaired.describe()}; back in fills whole)"
    ]


def test_a_trade_after_the_status_is_above_the_inferred_fill_and_one_at_the_same_instant_is_under_it():
    # An order of 10 filled to 6 while the runtime was down, its trades not listed yet: NautilusTrader inferred 6
    # at the status's time (its ts_last, the time of the order's last trade then). The order then filled its last 4.
    six = inferred("6", "6")
    later = after_the_status(trade(3, "4"), 1)
    assert [(f.trade_id, f.quantity) for f in effective([six, later])] == [
        ("INFERRED-V-77-6", D("6")),
        ("T-3", D("4")),
    ]
    # a trade at the very instant of the status is one the status counted (ts_last is its last trade's time)
    last = after_the_status(trade(2, "6"), 0)
    assert [(s.counted, s.by) for s in supersessions([six, last, later])] == [(D(0), ("T-2",))]
    assert sum(f.quantity for f in effective([six, last, later])) == D("10")


def test_inferred_fills_of_one_order_that_overlap_count_their_union_once():
    # A start inferred 0.004 (the order was partly filled then); a later one, starting empty, inferred the
    # whole 0.010 of the same order: together they stand for 0.010, not 0.014.
    early, late = inferred("0.004", "0.004"), inferred("0.010", "0.010")
    assert [(s.fill.trade_id, s.counted) for s in supersessions([late, early])] == [
        ("INFERRED-V-77-0.004", D("0.004")),
        ("INFERRED-V-77-0.01", D("0.006")),
    ]
    assert sum(f.quantity for f in effective([early, late])) == D("0.010")
    # the venue's first trade covers the early one and part of the late one
    counted = effective([early, late, trade(1, "0.005")])
    assert [(f.trade_id, f.quantity) for f in counted] == [("INFERRED-V-77-0.01", D("0.005")), ("T-1", D("0.005"))]


def test_a_change_says_what_superseded_the_inferred_fill_and_only_a_change_of_quantity_is_a_warning():
    early, late = inferred("0.004", "0.004"), inferred("0.010", "0.010")
    by_inference = Change(Supersession(late, D("0.006")), before=D("0.010"))
    assert by_inference.describe() == (
        "inferred fill INFERRED-V-77-0.01 (SELL 0.010 BTCUSDT-PERP.BINANCE, order O-77) overlaps an inferred fill of "
        "the same order with a lower cumulative quantity: it counts 0.006 (was 0.010)"
    )
    assert by_inference.counts_less
    more_trades = Change(Supersession(early, D(0), ("T-1", "T-2")), before=D(0))
    assert more_trades.describe() == (
        "inferred fill INFERRED-V-77-0.004 (SELL 0.004 BTCUSDT-PERP.BINANCE, order O-77) superseded by the venue's "
        "trades T-1, T-2: it still counts 0"
    )
    assert not more_trades.counts_less


async def test_the_fills_of_one_venue_order_are_found_by_an_index_not_by_reading_the_instrument(target):
    # Every batch that touches an order with an inferred fill, and every open, reads the order's rows: with
    # 100,000 fills of an instrument, a scan of them took 13 ms per order on SQLite.
    async with target.ledger() as ledger:
        ledger.record(make_fill(0))
        await flushed(ledger)
    assert "fills_by_order" in await target.query_plan(
        "SELECT * FROM fills WHERE strategy_key = 'k' AND instrument_id = 'i' AND venue_order_id = 'v'"
    )
