"""The order gate's check of an order against the strategy's share of its RiskBudget (``share.Share``).

Only an order that adds to a position is held to the share. What the strategy would hold after the order:
its net position in the instrument (the node's open positions), plus its working orders on the same side
in that instrument (they may all fill; working as ``orders_view.working_orders`` says, the definition
``status.trading.openOrders`` counts with), plus the order. An order **reduces** when that is zero, or on the
same side as now and no larger: such an order always passes, whatever the share (a reduce-only order, and
the stop-loss or take-profit waiting on a parent, count as reducing). So a share that shrinks below what the
strategy holds (a weight changed, a member joined) flattens nothing: the strategy keeps its position and may
close it, it may only not add to it.

An order that adds is denied (not a breach: nothing broke yet) when

- the budget is breached under ``onBreach: ReduceOnly`` (``share.reduce_only``);
- its working orders with it would be more than ``maxOpenOrders``;
- the exposure after it would be over a limit and over the exposure before it: the instrument's
  ``|notional|``, the gross ``Σ|notional|`` and the net ``|Σ signed notional|`` over every instrument.

A modification that raises a working order's quantity is checked as an order of the added quantity
(``modify_refusal``); one that lowers it or moves only its price adds nothing.

Notional is NautilusTrader's ``Instrument.notional_value`` at the price the gate uses for
``maxNotionalPerOrder``: the order's own, or for a market order the best price the cache has (bars
included); a position in another instrument at its mid, else its last trade or bar. Only notional in
the share's currency counts (as in the budget's sums). An adding order that cannot be priced is denied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from nautilus_trader.cache.cache import Cache
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.model.orders import Order

from strategy_runtime.orders_view import working_orders
from strategy_runtime.risk.share import Money, Share

ZERO = Decimal(0)


def _signed(order: Order, quantity: Decimal) -> Decimal:
    return quantity if order.side == OrderSide.BUY else -quantity


def reduces(before: Decimal, after: Decimal) -> bool:
    """``after`` is flat, or on the same side as ``before`` and no larger: nothing new is held."""
    return after == 0 or (before * after > 0 and abs(after) <= abs(before))


@dataclass(frozen=True)
class _Adding:
    order: Order
    quantity: Decimal  # what it adds: the order's quantity, or the rise of a working order's
    price: Price | None
    label: str  # how the denial names it


class ShareCheck:
    """``refusal(share, orders)``: why ``orders`` would take the strategy beyond ``share`` (None: they pass)."""

    def __init__(
        self,
        cache: Cache,
        order_price: Callable[[Order], Price | None],
        mark_price: Callable[[InstrumentId], Price | None],
    ) -> None:
        self._cache = cache
        self._order_price = order_price
        self._mark_price = mark_price

    def refusal(self, share: Share, orders: Iterable[Order]) -> str | None:
        """Why submitting ``orders`` would take the strategy beyond ``share``; None if it would not."""
        # A contingent order (an OTO's stop-loss or take-profit) waits for its parent and closes what that opens.
        adding = [
            _Adding(o, o.quantity.as_decimal(), self._order_price(o), f"order {o.client_order_id}")
            for o in orders
            if not o.is_reduce_only and o.parent_order_id is None
        ]
        return self._refusal(share, adding, new_orders=len(adding))

    def modify_refusal(self, share: Share, order: Order, quantity: Quantity, price: Price | None) -> str | None:
        """Why raising working ``order`` to ``quantity`` would take the strategy beyond ``share`` (a modification
        that does not raise the quantity, or of a reduce-only order, adds nothing: None)."""
        added = quantity.as_decimal() - order.quantity.as_decimal()
        if added <= 0 or order.is_reduce_only or order.parent_order_id is not None:
            return None
        what = f"modification of {order.client_order_id} to {quantity}"
        return self._refusal(share, [_Adding(order, added, price or self._order_price(order), what)], new_orders=0)

    def _refusal(self, share: Share, adding: list[_Adding], *, new_orders: int) -> str | None:
        """``adding``: quantities on their way to the venue (new orders, or the rise of a working one), beside the
        working orders the cache holds; ``new_orders``: how many working orders they add."""
        if not adding:
            return None
        cache = self._cache
        before = self._positions()
        after = dict(before)
        every_working = working_orders(cache)  # as status.trading.openOrders counts them (the budget adds those up)
        for instrument_id in {a.order.instrument_id for a in adding}:
            sides = {a.order.side for a in adding if a.order.instrument_id == instrument_id}
            working = [
                w
                for w in every_working
                if w.instrument_id == instrument_id and w.side in sides and not w.is_reduce_only
            ]
            total = after.get(instrument_id, ZERO)
            total += sum((_signed(w, w.leaves_qty.as_decimal()) for w in working), ZERO)
            total += sum((_signed(a.order, a.quantity) for a in adding if a.order.instrument_id == instrument_id), ZERO)
            after[instrument_id] = total
        growing = [
            a.order
            for a in adding
            if not reduces(before.get(a.order.instrument_id, ZERO), after[a.order.instrument_id])
        ]
        if not growing:
            return None
        first = growing[0]
        label = next(a.label for a in adding if a.order is first)
        what = f"{label} ({first.side_string()} {first.quantity} {first.instrument_id})"
        budget = f"RiskBudget {share.budget}"
        if share.reduce_only:
            return (
                f"{what} adds to a position while {budget} is breached under onBreach ReduceOnly: only orders that "
                f"reduce a position pass until the budget's breach is acknowledged"
            )
        if share.max_open_orders is not None:
            count = len(every_working)
            if new_orders and count + new_orders > share.max_open_orders:
                return (
                    f"{what} would make {count + new_orders} working orders, over this strategy's share of "
                    f"{budget} maxOpenOrders {share.max_open_orders}"
                )
        if share.max_gross is None and share.max_net is None and not share.instruments:
            return None
        prices: dict[InstrumentId, Price | None] = {}
        for each in adding:
            prices.setdefault(each.order.instrument_id, each.price)
        for instrument_id in after:
            if instrument_id not in prices:
                prices[instrument_id] = self._mark_price(instrument_id)
        unpriced = sorted(str(i) for i, p in prices.items() if p is None or cache.instrument(i) is None)
        if unpriced:
            return (
                f"{what} cannot be priced (no order price, and no quote, trade or bar yet for "
                f"{', '.join(unpriced)}), so this strategy's share of {budget} cannot be checked; send it once "
                "market data has arrived, or give it a price"
            )
        worth_before = {i: self._notional(i, q, prices[i]) for i, q in before.items()}
        worth_after = {i: self._notional(i, q, prices[i]) for i, q in after.items()}
        for order in growing:
            cap = share.instruments.get(order.instrument_id.value)
            if cap is None:
                continue
            for name, limit in (("maxGrossExposure", cap.gross), ("maxNetExposure", cap.net)):
                used = _in(limit, [worth_after[order.instrument_id]], absolute=True)
                was = _in(limit, [worth_before.get(order.instrument_id)], absolute=True)
                if limit is not None and used > limit.amount and used > was:
                    return (
                        f"{what} would take the position in {order.instrument_id} to a notional of "
                        f"{used:.2f} {limit.currency}, over this strategy's share of {budget} "
                        f"instruments[{order.instrument_id}].{name} {limit}"
                    )
        for name, limit, absolute in (
            ("maxGrossExposure", share.max_gross, True),
            ("maxNetExposure", share.max_net, False),
        ):
            if limit is None:
                continue
            used = _in(limit, worth_after.values(), absolute=absolute)
            was = _in(limit, worth_before.values(), absolute=absolute)
            if used > limit.amount and used > was:
                kind = "gross" if absolute else "net"
                return (
                    f"{what} would take the strategy's {kind} exposure to {used:.2f} {limit.currency}, over its "
                    f"share of {budget} {name} {limit}"
                )
        return None

    def _positions(self) -> dict[InstrumentId, Decimal]:
        """Net signed quantity per instrument over the node's open positions."""
        net: dict[InstrumentId, Decimal] = {}
        for position in self._cache.positions_open():
            net[position.instrument_id] = net.get(position.instrument_id, ZERO) + position.signed_decimal_qty()
        return net

    def _notional(self, instrument_id: InstrumentId, quantity: Decimal, price: Price | None) -> Money | None:
        """The signed notional of ``quantity`` (a short's negative) at ``price``, in the currency it comes in."""
        instrument = self._cache.instrument(instrument_id)
        if instrument is None or price is None:
            return None
        if quantity == 0:
            return Money(ZERO, instrument.quote_currency.code)
        value = instrument.notional_value(instrument.make_qty(abs(quantity)), price, use_quote_for_inverse=True)
        amount = abs(value.as_decimal())
        return Money(amount if quantity > 0 else -amount, value.currency.code)


def _in(limit: Money | None, worth: Iterable[Money | None], *, absolute: bool) -> Decimal:
    """Σ|notional| (``absolute``) or |Σ notional| of ``worth`` in ``limit``'s currency (others do not count)."""
    if limit is None:
        return ZERO
    amounts = [w.amount for w in worth if w is not None and w.currency == limit.currency]
    return sum((abs(a) for a in amounts), ZERO) if absolute else abs(sum(amounts, ZERO))
