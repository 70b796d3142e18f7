"""Inferred fills superseded by the venue's own trades: every quantity of a venue order counted once.

NautilusTrader *infers* a fill when a venue reports an order filled further than the trades it
reported (``records.inferred_trade_id``: ``INFERRED-<venue order id>-<cumulative quantity>``). The
venue's trades of that order usually come later: at the next restart's reconciliation, or on the
user-data stream. Binance answers an order's status and its trade list from different places: the
trade list can lag the status, and a client asking both side by side (NautilusTrader 1.231's
``generate_mass_status``) can meet an order filled between the two answers. Counting both the
inferred fill and the trades that stand for the same execution would double the position and the
PnL. The rule, applied by the ledger in the transaction that stores a batch, and by the risk guard's
book to the same fills:

- An order's fills cover its cumulative filled quantity, from 0 up. An inferred fill of quantity q and cumulative
  quantity Q (from its trade id) covers ``(Q - q, Q]``: the venue said the order had reached Q, and the node held
  ``Q - q`` of it already. NautilusTrader 1.231 gives it the status's time as its ``ts_event``
  (``create_inferred_order_filled_event``: the report's ``ts_last``, the time of the order's last trade then).
- The venue's own trades of the order (every fill of it whose trade id is not an inferred one) executed at or
  before that time are the ones the status counted: they cover ``(0, R]`` under that inferred fill, R their total (a
  venue lists an order's trades oldest first, so those it has reported are its first ones). A trade at the very
  instant of the status counts as before it: the status's ``ts_last`` is its last trade's time. A trade after it
  filled the order further, above Q: it covers none of that inferred fill (the order went on filling after the
  open-order check that inferred it, or after the start whose trade list lacked its first trades).
- Each inferred fill counts only the part of its span that neither those trades nor an inferred fill of the same
  order with a lower Q (then: a lower trade id) cover. The rest of it is *superseded*: nothing when the trades
  cover it whole, a smaller quantity (its commission scaled down with it) when they cover part of it (a trade list
  that lags by some of the order's trades), all of it when they cover none.

A fill's counted quantity only ever goes down as trades arrive. (Once, at an open, it can go up: a runtime before
trades after the status were told apart let such a trade supersede an inferred fill; ``Ledger._supersede_stored``
puts it back.) The inferred fill as first recorded stays readable, with what superseded it (docs/ledger.md,
"Inferred fills superseded").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from strategy_runtime.ledger.records import INFERRED_TRADE_PREFIX, FillRecord

# A commission scaled down with its fill keeps at least this many decimal places (more if it had them).
COMMISSION_PLACES = 12

OrderKey = tuple[str, str, str]  # (ledger key, instrument id, venue order id)


def order_key(fill: FillRecord) -> OrderKey:
    return fill.strategy_key, fill.instrument_id, fill.venue_order_id


def inferred_cumulative(fill: FillRecord) -> Decimal | None:
    """The cumulative quantity an inferred fill's trade id names (``INFERRED-<its venue order id>-<Q>``); None for
    any other fill (a venue's trade, a position alignment ``INFERRED-POSITION-…``, which belongs to no venue order)."""
    prefix = f"{INFERRED_TRADE_PREFIX}{fill.venue_order_id}-"
    if not fill.trade_id.startswith(prefix):
        return None
    try:
        cumulative = Decimal(fill.trade_id[len(prefix) :])
    except InvalidOperation:
        return None
    return cumulative if cumulative.is_finite() and cumulative >= fill.quantity else None


def is_inferred(fill: FillRecord) -> bool:
    return fill.trade_id.startswith(INFERRED_TRADE_PREFIX) and inferred_cumulative(fill) is not None


@dataclass(frozen=True)
class Supersession:
    """What of one inferred fill counts: ``fill`` as first recorded, ``counted`` of its quantity (0 to all of it),
    and ``by``: the trade ids of the venue's trades of its order at or before it (``ts_event``), oldest first."""

    fill: FillRecord
    counted: Decimal
    by: tuple[str, ...] = ()

    @property
    def whole(self) -> bool:
        return self.counted == self.fill.quantity

    @property
    def counted_fill(self) -> FillRecord | None:
        """The fill as it counts: itself, a smaller quantity of it (commission scaled down), or None."""
        if self.whole:
            return self.fill
        if self.counted <= 0:
            return None
        fill = self.fill
        places = max(COMMISSION_PLACES, -int(fill.commission.as_tuple().exponent))
        commission = (fill.commission * self.counted / fill.quantity).quantize(Decimal(1).scaleb(-places))
        return dataclasses.replace(fill, quantity=self.counted, commission=commission.normalize() + 0)


def _uncovered(low: Decimal, high: Decimal, covered: list[tuple[Decimal, Decimal]]) -> Decimal:
    """The length of ``(low, high]`` outside the union of the ``covered`` spans."""
    left = high - low
    for a, b in covered:
        left -= max(Decimal(0), min(b, high) - max(a, low))  # the spans do not overlap (``_merged``)
    return left


def _merged(spans: Iterable[tuple[Decimal, Decimal]]) -> list[tuple[Decimal, Decimal]]:
    merged: list[tuple[Decimal, Decimal]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def counted_quantities(
    inferred: Iterable[FillRecord], trades: Iterable[tuple[int, Decimal]]
) -> list[tuple[FillRecord, Decimal]]:
    """What of each inferred fill of one venue order counts (the module docstring's rule), given ``trades``: the
    venue's own trades of the order, each as ``(ts_event, quantity)``; those at or before an inferred fill's
    ``ts_event`` cover ``(0, their total]`` under it. In the rule's order: by cumulative quantity, then trade id."""
    ordered = sorted(inferred, key=lambda f: (inferred_cumulative(f), f.trade_id))
    trades = list(trades)
    lower: list[tuple[Decimal, Decimal]] = []  # the spans of the inferred fills with a lower cumulative quantity
    result = []
    for fill in ordered:
        high = inferred_cumulative(fill)
        assert high is not None
        low = high - fill.quantity
        traded = sum((q for ts, q in trades if ts <= fill.ts_event), Decimal(0))
        result.append((fill, min(fill.quantity, _uncovered(low, high, _merged([(Decimal(0), traded), *lower])))))
        lower.append((low, high))
    return result


def supersessions(order_fills: Iterable[FillRecord]) -> list[Supersession]:
    """What of each inferred fill of one venue order counts (the module docstring's rule).

    ``order_fills``: every fill of the order (one ledger key, instrument and venue order), each inferred one as
    first recorded; a fill given twice (the same trade id) counts once, the first given."""
    unique: dict[str, FillRecord] = {}
    for fill in order_fills:
        unique.setdefault(fill.trade_id, fill)
    trades = sorted((f for f in unique.values() if not is_inferred(f)), key=lambda f: (f.ts_event, f.trade_id))
    counted = counted_quantities(
        (f for f in unique.values() if is_inferred(f)), ((t.ts_event, t.quantity) for t in trades)
    )
    return [
        Supersession(
            fill, c, tuple(t.trade_id for t in trades if t.ts_event <= fill.ts_event) if c < fill.quantity else ()
        )
        for fill, c in counted
    ]


def by_order(fills: Iterable[FillRecord]) -> dict[OrderKey, list[FillRecord]]:
    """The fills of every venue order with an inferred fill among ``fills``, in their order: two passes, each fill's
    order named once per pass."""
    fills = list(fills)
    inferred = {order_key(f) for f in fills if is_inferred(f)}
    grouped: dict[OrderKey, list[FillRecord]] = {}
    if inferred:
        for fill in fills:
            if (key := order_key(fill)) in inferred:
                grouped.setdefault(key, []).append(fill)
    return grouped


def effective(fills: Sequence[FillRecord]) -> list[FillRecord]:
    """``fills`` (in their order, each trade id once: the first) with every inferred fill as it counts: whole,
    smaller, or left out. What the ledger's ``fills`` table holds of the same fills. Linear in ``fills``: each
    fill's order is looked up once per pass, whatever the number of orders with an inferred fill."""
    unique: list[FillRecord] = []
    seen: set[tuple[str, str, str]] = set()
    for fill in fills:
        key = (fill.strategy_key, fill.instrument_id, fill.trade_id)
        if key not in seen:
            seen.add(key)
            unique.append(fill)
    grouped = by_order(unique)
    if not grouped:
        return unique
    counted: dict[tuple[str, str, str], FillRecord | None] = {}
    for order_fills in grouped.values():
        for s in supersessions(order_fills):
            counted[(s.fill.strategy_key, s.fill.instrument_id, s.fill.trade_id)] = s.counted_fill
    result = []
    for fill in unique:
        key = (fill.strategy_key, fill.instrument_id, fill.trade_id)
        if key not in counted:
            result.append(fill)
        elif (kept := counted[key]) is not None:
            result.append(kept)
    return result


@dataclass(frozen=True)
class Change:
    """One inferred fill whose storage must change: the ``fills`` table then holds ``supersession.counted_fill``
    (None: no row), and ``superseded_fills`` holds the supersession unless it is ``whole``; ``before``: what it
    counted until now."""

    supersession: Supersession
    before: Decimal

    @property
    def counts_less(self) -> bool:
        """What the fill counts changed: down, as trades arrive (or up, once: ``counts_again``); else only the trades
        that superseded it changed (more of them)."""
        return self.supersession.counted != self.before

    @property
    def takes_the_row_out(self) -> bool:
        """The fill had a ``fills`` row and counts nothing now: the row is gone (``WriteResult.superseded``)."""
        return self.before > 0 and self.supersession.counted == 0

    @property
    def counts_again(self) -> bool:
        """What the fill counts went up: a runtime before trades after the status were told apart let such a trade
        supersede it; an open puts it back (``Ledger._supersede_stored``)."""
        return self.supersession.counted > self.before

    def describe(self) -> str:
        s = self.supersession
        if self.counts_again:
            return (
                f"inferred fill {s.fill.trade_id} ({s.fill.side.value} {s.fill.quantity} {s.fill.instrument_id}, order "
                f"{s.fill.client_order_id}) counted again: a trade of the order after the status it was inferred from "
                f"filled the order further and supersedes none of it: it counts {s.counted:f} (was {self.before:f})"
            )
        what = (
            f"superseded by the venue's trades {', '.join(s.by)}"
            if s.by
            else "overlaps an inferred fill of the same order with a lower cumulative quantity"
        )
        counts = (
            f"it counts {s.counted:f} (was {self.before:f})" if self.counts_less else f"it still counts {s.counted:f}"
        )
        return (
            f"inferred fill {s.fill.trade_id} ({s.fill.side.value} {s.fill.quantity} {s.fill.instrument_id}, order "
            f"{s.fill.client_order_id}) {what}: {counts}"
        )


def plan(rows: Sequence[FillRecord], superseded: Sequence[Supersession]) -> list[Change]:
    """What must change so that one venue order's storage follows the rule: ``rows``, what the ``fills`` table
    holds of the order; ``superseded``, what ``superseded_fills`` holds of it (each inferred fill as first
    recorded). Only the inferred fills whose counted quantity changes."""
    stored = {s.fill.trade_id: s for s in superseded}
    in_rows = {r.trade_id for r in rows}
    order_fills = [stored[r.trade_id].fill if r.trade_id in stored else r for r in rows]
    order_fills += [s.fill for trade_id, s in stored.items() if trade_id not in in_rows]
    changes = []
    for s in supersessions(order_fills):
        audit = stored.get(s.fill.trade_id)
        before = audit.counted if audit is not None else s.fill.quantity
        if s.counted != before or (audit is not None and audit.by != s.by):
            changes.append(Change(s, before))
    return changes
