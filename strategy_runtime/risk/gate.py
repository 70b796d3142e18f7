"""The order gate: the one door between NautilusTrader's RiskEngine and the venues, kept by the risk guard.

NautilusTrader's RiskEngine skips its notional check on MARGIN accounts and for market orders
when the cache holds no quote or trade (bars only), so a limit set in the spec could be
silently unenforced. The gate therefore sits on the message-bus endpoint ``ExecEngine.execute``,
which every command passes after the RiskEngine and before an execution client: it re-checks
each order's notional (the order's own price, or for a market order the best price the cache
has, bars included) and denies an oversized order there, with an ``OrderDenied`` event as the
RiskEngine would, so it never reaches the venue. An oversized order is also a breach
(``on_breach``). An order it cannot price while ``maxNotionalPerOrder`` is set is denied too
(not a breach), unless it is reduce-only.

**Front doors.** A strategy sends an emulated order to the OrderEmulator and an algorithm's order to the
execution algorithm directly, before the RiskEngine; either hands it on to ``ExecEngine.execute`` later
(released, or sliced). The gate stands on those endpoints too (``install(front_doors=…)``): shut or held,
it denies the order there, whole, rather than let the emulator or the algorithm hold it. A released order
it denies at ``ExecEngine.execute`` takes its contingent orders with it (denied, not left INITIALIZED).

Once **shut** (a breach, a lost fence, the halt) it stays shut: only the halt's own reduce-only
closing orders (tagged ``HALT_TAG``) and cancels pass, which also closes the hole of the
RiskEngine's REDUCING state (it lets a flat portfolio open, and an order flip a position through
zero). While **held** (``hold``/``release``: fills not durable anywhere) new orders and
modifications are denied, not a breach, and pass again once released.

**The fence** (``fence``, the ledger's ``fence_refusal``): before every order and modification the
gate asks whether the ledger fence is confirmed within its lease, a clock read with no round trip.
While it is not (the database is away, the runtime was frozen or cut off, a predecessor's lease is
still running), nothing new passes, not even the halt's closes: another runtime may hold the
strategy. Cancels always pass. The gate asks twice: at the endpoint, and again at the execution
client, the last step inside the process (``_LastLook``), because the live execution engine queues
commands between the two and a process frozen in between must not send, once it wakes, an order
it admitted before its lease ran out.

**Rates on market time** (``count_rates``, a paper replay only). NautilusTrader's RiskEngine counts
``maxOrderSubmitRate`` and ``maxOrderModifyRate`` on the node's clock: wall time in a live node, market
time in a backtest. A paper replay runs market time at any pace (speed 0: as fast as the node goes), so
its RiskEngine does not throttle and the gate does, first thing at the endpoint (where the RiskEngine's
throttle hands commands on): NautilusTrader's own ``Throttler`` on the replay's market clock, denying
with the RiskEngine's own reasons (``Exceeded MAX_ORDER_SUBMIT_RATE``), which the guard takes for a
breach as it does the RiskEngine's.

``OrderGate`` keeps the state from construction (a runtime may start shut); ``install`` puts a
``_Door`` on the endpoint once the node's parts exist (the guard's ``on_start``): it checks each
command against that state, and ``uninstall`` puts the execution engine back (``on_dispose``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import Clock, MessageBus, Throttler
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import ModifyOrder, SubmitOrder, SubmitOrderList
from nautilus_trader.model.enums import OrderSide, OrderStatus, PriceType
from nautilus_trader.model.events import OrderDenied, OrderModifyRejected
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.model.orders import Order

from strategy_runtime.risk.arrivals import Arrivals
from strategy_runtime.risk.breach import GATE_REASON_PREFIX, MAX_NOTIONAL, Breach
from strategy_runtime.risk.prices import LatestPrices
from strategy_runtime.risk.share import Share
from strategy_runtime.risk.share_check import ShareCheck

logger = logging.getLogger("livestrat.risk")

EXEC_ENDPOINT = "ExecEngine.execute"
# Where a strategy sends an emulated order (NautilusTrader's endpoint name); an execution algorithm's is
# "{exec_algorithm_id}.execute". Both lie before the RiskEngine: the gate stands on them too.
EMULATOR_ENDPOINT = "OrderEmulator.execute"
# Where order events reach the execution engine (NautilusTrader's endpoint name).
EXEC_EVENTS_ENDPOINT = "ExecEngine.process"
# Where strategies send their commands first (NautilusTrader's endpoint name): the RiskEngine.
RISK_ENDPOINT = "RiskEngine.execute"
# The halt's closing orders carry this tag; nothing else passes the gate once it is shut.
HALT_TAG = "LIVESTRAT_HALT"
# The gate forgets orders that left INITIALIZED whenever it tracks more than this many.
FORWARDED_PRUNE_AT = 1_000
# The RiskEngine's own denial reasons for its rate throttles (the guard's breach.from_denial reads them).
SUBMIT_RATE_DENIAL = "Exceeded MAX_ORDER_SUBMIT_RATE"
MODIFY_RATE_DENIAL = "Exceeded MAX_ORDER_MODIFY_RATE"
# The execution client's methods that send an order or a modification to the venue (the last look).
CLIENT_SENDS = ("submit_order", "submit_order_list", "modify_order")


def fence_unchecked() -> str | None:
    """The fence of a gate without a ledger fence to check (a backtest, a unit test): never a refusal."""
    return None


class OrderGate:
    """See the module docstring."""

    def __init__(
        self,
        *,
        max_notional: Decimal | None,
        on_breach: Callable[[Breach], None],
        now: Callable[[], datetime],
        fence: Callable[[], str | None] = fence_unchecked,
    ) -> None:
        self.max_notional = max_notional
        self.on_breach = on_breach
        self.now = now
        self.fence = fence
        self._door: _Door | None = None  # on the endpoint from install to uninstall
        self.shut_because: str | None = None
        # Reversible, unlike the shut gate: orders wait while the ledger is too far behind.
        self.held_because: str | None = None
        self.denied = 0
        # Orders the gate let through to the execution engine, until they leave INITIALIZED:
        # the halt must cancel them too once the venue has them (see ``orders_on_their_way``).
        self.forwarded: dict[Any, Order] = {}
        # Every order let through, with the market price it met (its arrival price), until it closes: the run's
        # ordersSubmitted, ordersFilled and the arrival price each fill is recorded with (``risk.arrivals``).
        self.arrivals = Arrivals()
        # (clock, submit rate, modify rate): the rates the gate counts on a market clock (``count_rates``).
        self.rates: tuple[Clock, str | None, str | None] | None = None
        # The strategy's share of its RiskBudget (``status.budget``, read back from each status push); None: no
        # budget. Replaced whole while the node runs (``set_share``): the next order meets the new share.
        self.share: Share | None = None
        self.share_denied = 0  # orders denied for the share (also counted in ``denied``)
        self.share_denial: str | None = None  # the reason of the last of them

    def set_share(self, share: Share | None) -> None:
        """Hold new orders within ``share`` from the next one on (None: the strategy left its budget)."""
        if share != self.share:
            logger.warning("risk guard: %s", share.describe() if share is not None else "no RiskBudget share any more")
        self.share = share

    def count_rates(self, clock: Clock, submit: str | None, modify: str | None) -> None:
        """Throttle submits and modifications (``LIMIT/HH:MM:SS``; None: not at all) on ``clock`` (before install)."""
        self.rates = (clock, submit, modify)

    def install(
        self,
        msgbus: MessageBus,
        cache: Cache,
        clock: Clock,
        exec_engine: Any,
        front_doors: Mapping[str, Callable[[Any], None]] | None = None,
    ) -> None:
        """Stand on the ``ExecEngine.execute`` endpoint in front of ``exec_engine``, and on each of
        ``front_doors`` (endpoint: its handler; the OrderEmulator's, each execution algorithm's)."""
        if self._door is None:
            self._door = _Door(self, msgbus, cache, clock, exec_engine, front_doors or {})

    def uninstall(self) -> None:
        """Give the endpoint back to the execution engine."""
        door, self._door = self._door, None
        if door is not None:
            door.remove()

    def shut(self, because: str) -> None:
        """From now on only the halt's closing orders and cancels reach a venue (never undone)."""
        if self.shut_because is None:
            self.shut_because = because

    def hold(self, because: str) -> None:
        """Deny new orders and modifications until ``release`` (cancels and the halt's closes pass)."""
        if self.held_because is None:
            logger.error("risk guard: new orders are held: %s", because)
        self.held_because = because

    def release(self) -> None:
        if self.held_because is not None:
            logger.warning("risk guard: orders pass again (%s no longer holds)", self.held_because)
        self.held_because = None

    def refusal(self) -> str | None:
        """Why the gate refuses new orders and modifications (shut for good, or held); None while open."""
        if self.shut_because is not None:
            return f"trading is halted ({self.shut_because})"
        held = self.held()
        return f"new orders are held: {held}" if held is not None else None

    def held(self) -> str | None:
        """Why new orders wait for now (the fence not confirmed, fills not durable); None if they do not."""
        return self.fence() or self.held_because

    def orders_on_their_way(self) -> list[Order]:
        """Orders past the gate that are still INITIALIZED: queued for the venue, not yet submitted.

        The cache indexes open, in-flight and emulated orders, but not these; scanning every
        order the cache holds instead would cost the halt a full pass per poll.
        """
        forwarded = self.forwarded
        for client_order_id in [c for c, o in forwarded.items() if o.status != OrderStatus.INITIALIZED]:
            del forwarded[client_order_id]
        return list(forwarded.values())


class _Door:
    """The gate on the endpoint: every command the RiskEngine passes on, checked against the gate's state."""

    def __init__(
        self,
        gate: OrderGate,
        msgbus: MessageBus,
        cache: Cache,
        clock: Clock,
        exec_engine: Any,
        front_doors: Mapping[str, Callable[[Any], None]],
    ) -> None:
        self._gate = gate
        self._msgbus = msgbus
        self._cache = cache
        self._prices = LatestPrices(cache)  # Cache.price's answers, cheaper on bars
        self._share_check = ShareCheck(cache, self._order_price, self._mark_price)
        self._clock = clock
        self._exec_engine = exec_engine
        self._submit_throttle: Throttler | None = None
        self._modify_throttle: Throttler | None = None
        if gate.rates is not None:
            market, submit, modify = gate.rates
            if submit:
                self._submit_throttle = _throttler(
                    "ORDER_SUBMIT_THROTTLER", submit, market, self._submit, self._too_fast
                )
            if modify:
                self._modify_throttle = _throttler(
                    "ORDER_MODIFY_THROTTLER", modify, market, self._modify, self._modify_too_fast
                )
        msgbus.deregister(EXEC_ENDPOINT, exec_engine.execute)
        msgbus.register(EXEC_ENDPOINT, self.execute)
        # NautilusTrader 1.231 offers no public way to reach the clients (pinned in test_nautilus_pins.py).
        # A gate with no fence to check (a backtest, whose clients are Cython classes) needs no last look.
        clients = exec_engine._clients.values() if gate.fence is not fence_unchecked else ()
        self._last_looks = [_LastLook(self, client) for client in clients]
        self._fronts: list[tuple[str, Callable[[Any], None], Callable[[Any], None]]] = []
        for endpoint, handler in front_doors.items():
            front = self._front_door(handler)
            msgbus.deregister(endpoint, handler)
            msgbus.register(endpoint, front)
            self._fronts.append((endpoint, handler, front))

    def remove(self) -> None:
        self._msgbus.deregister(EXEC_ENDPOINT, self.execute)
        self._msgbus.register(EXEC_ENDPOINT, self._exec_engine.execute)
        for look in self._last_looks:
            look.remove()
        for endpoint, handler, front in self._fronts:
            self._msgbus.deregister(endpoint, front)
            self._msgbus.register(endpoint, handler)

    def _front_door(self, handler: Callable[[Any], None]) -> Callable[[Any], None]:
        """The gate before the OrderEmulator or an execution algorithm, which a strategy's emulated and
        algorithm orders reach without passing the RiskEngine: a refused gate denies the whole order (an
        emulated bracket: every order of it) there, before anything is held. The notional limit is checked
        at ``ExecEngine.execute``, where the released order or the algorithm's slice arrives priced."""

        def front(command: Any) -> None:
            if isinstance(command, SubmitOrder):
                orders = [command.order]
            elif isinstance(command, SubmitOrderList):
                orders = list(command.order_list.orders)
            else:  # cancels, modifications (a released order is checked again at ExecEngine.execute)
                handler(command)
                return
            if not self._refused(orders):
                handler(command)

        return front

    def execute(self, command: Any) -> None:
        if isinstance(command, (SubmitOrder, SubmitOrderList)):
            if self._submit_throttle is not None:
                self._submit_throttle.send(command)  # on to _submit, or _too_fast
            else:
                self._submit(command)
        elif isinstance(command, ModifyOrder):
            if self._modify_throttle is not None:
                self._modify_throttle.send(command)
            else:
                self._modify(command)
        else:  # cancels, queries: always through
            self._exec_engine.execute(command)

    def _submit(self, command: SubmitOrder | SubmitOrderList) -> None:
        orders = [command.order] if isinstance(command, SubmitOrder) else list(command.order_list.orders)
        if self._admit(orders):
            self._forward(orders)
            self._exec_engine.execute(command)
        elif isinstance(command, SubmitOrder):  # a released emulated entry, say: its stop-loss and take-profit go too
            self._deny_children(command.order)

    def _modify(self, command: ModifyOrder) -> None:
        if self._admit_modify(command):
            self._exec_engine.execute(command)

    def _too_fast(self, command: SubmitOrder | SubmitOrderList) -> None:
        orders = [command.order] if isinstance(command, SubmitOrder) else list(command.order_list.orders)
        for order in orders:
            self._deny(order, SUBMIT_RATE_DENIAL)  # the RiskEngine's reason: a breach of maxOrderSubmitRate
        if isinstance(command, SubmitOrder):
            self._deny_children(command.order)

    def _modify_too_fast(self, command: ModifyOrder) -> None:
        order = self._cache.order(command.client_order_id)
        if order is not None:
            self._reject_modify(order, MODIFY_RATE_DENIAL)

    def _forward(self, orders: list[Order]) -> None:
        forwarded, arrivals = self._gate.forwarded, self._gate.arrivals
        instrument_id, arrival = None, None
        for order in orders:
            forwarded[order.client_order_id] = order
            if order.instrument_id != instrument_id:  # an order list: mostly one instrument, priced once
                instrument_id = order.instrument_id
                arrival = self._mark_price(instrument_id)
            arrivals.sent(order.client_order_id, arrival)
        if len(forwarded) > FORWARDED_PRUNE_AT:
            self._gate.orders_on_their_way()

    def _refused(self, orders: list[Order]) -> bool:
        """Deny ``orders`` if the gate refuses new orders (shut or held); the halt's own closes pass."""
        why = self._gate.refusal()
        if why is None:
            return False
        halt_closes = all(o.is_reduce_only and HALT_TAG in (o.tags or []) for o in orders)
        if halt_closes and self._gate.fence() is None:
            return False  # the halt's own closes (never without the fence: another runtime may hold it)
        for order in orders:
            self._deny(order, GATE_REASON_PREFIX + why)
        return True

    def _deny_children(self, parent: Order) -> None:
        """The contingent orders still waiting on a denied ``parent`` (an OTO bracket's stop-loss and
        take-profit, INITIALIZED until it fills): nothing will ever submit them now, so they are denied too
        rather than left INITIALIZED for good (NautilusTrader's order manager acts on a rejected parent,
        not on a denied one)."""
        for child_id in parent.linked_order_ids or []:
            child = self._cache.order(child_id)
            if child is None or child.parent_order_id != parent.client_order_id:
                continue
            if child.status == OrderStatus.INITIALIZED and child_id not in self._gate.forwarded:
                self._deny(child, f"{GATE_REASON_PREFIX}its parent order {parent.client_order_id} was denied")

    def _admit(self, orders: list[Order]) -> bool:
        if self._refused(orders):
            return False
        if self._gate.refusal() is not None:
            return True  # through a shut gate only the halt's own closes come: they shrink a position, never priced
        limit = self._gate.max_notional
        if limit is None:
            return self._within_share(orders)
        for order in orders:
            notional = self._notional(order.instrument_id, order.side, order.quantity, self._order_price(order))
            if notional is None:
                if order.is_reduce_only:
                    continue  # it can only shrink a position: let it close what is open
                # Not a breach: nothing is wrong with the order, the market data has not come yet.
                reason = (
                    f"order {order.client_order_id} cannot be priced ({order.side_string()} {order.quantity} "
                    f"{order.instrument_id}: no order price, and no quote, trade or bar for it yet), so "
                    f"maxNotionalPerOrder {limit:f} cannot be checked; send it once market data "
                    "has arrived, or give it a price"
                )
                for each in orders:
                    self._deny(each, GATE_REASON_PREFIX + reason)
                return False
            if notional > limit:
                reason = (
                    f"order {order.client_order_id} notional {notional:.2f} exceeds maxNotionalPerOrder "
                    f"{limit:f} ({order.side_string()} {order.quantity} {order.instrument_id})"
                )
                for each in orders:
                    self._deny(each, GATE_REASON_PREFIX + reason)
                self._gate.on_breach(Breach(MAX_NOTIONAL, reason, self._gate.now()))
                return False
        return self._within_share(orders)

    def _within_share(self, orders: list[Order]) -> bool:
        """Deny ``orders`` (not a breach: nothing broke yet) if they would take the strategy beyond its share."""
        share = self._gate.share
        if share is None:
            return True
        why = self._share_check.refusal(share, orders)
        if why is None:
            return True
        self._gate.share_denied += 1
        self._gate.share_denial = why
        for each in orders:
            self._deny(each, GATE_REASON_PREFIX + why)
        return False

    def _admit_modify(self, command: ModifyOrder) -> bool:
        order = self._cache.order(command.client_order_id)
        if order is None:
            return True  # the execution engine reports the unknown order
        why = self._gate.refusal()
        if why is not None:
            self._reject_modify(order, GATE_REASON_PREFIX + why)
            return False
        quantity = command.quantity or order.quantity
        share = self._gate.share
        if share is not None:
            beyond = self._share_check.modify_refusal(share, order, quantity, command.price or command.trigger_price)
            if beyond is not None:
                self._gate.share_denied += 1
                self._gate.share_denial = beyond
                self._reject_modify(order, GATE_REASON_PREFIX + beyond)
                return False
        limit = self._gate.max_notional
        if limit is None:
            return True
        price = command.price or command.trigger_price or self._order_price(order)
        notional = self._notional(order.instrument_id, order.side, quantity, price)
        if notional is None:
            if order.is_reduce_only:
                return True
            self._reject_modify(
                order,
                f"{GATE_REASON_PREFIX}modification of {order.client_order_id} cannot be priced, so "
                f"maxNotionalPerOrder {limit:f} cannot be checked",
            )
            return False
        if notional > limit:
            reason = (
                f"modification of {order.client_order_id} to notional {notional:.2f} exceeds "
                f"maxNotionalPerOrder {limit:f}"
            )
            self._reject_modify(order, GATE_REASON_PREFIX + reason)
            self._gate.on_breach(Breach(MAX_NOTIONAL, reason, self._gate.now()))
            return False
        return True

    # ------------------------------------------------------------------ pricing
    def _order_price(self, order: Order) -> Price | None:
        price = getattr(order, "price", None) or getattr(order, "trigger_price", None)
        if price is not None:
            return price
        # A market order fills at the other side of the book; without quotes, at the last trade or bar.
        prices = self._prices
        side = PriceType.ASK if order.side == OrderSide.BUY else PriceType.BID
        return prices.price(order.instrument_id, side) or prices.price(order.instrument_id, PriceType.LAST)

    def _mark_price(self, instrument_id: InstrumentId) -> Price | None:
        """What a position already open is worth a unit: the mid, else the last trade or bar."""
        prices = self._prices
        return prices.price(instrument_id, PriceType.MID) or prices.price(instrument_id, PriceType.LAST)

    def _notional(
        self, instrument_id: InstrumentId, side: OrderSide, quantity: Quantity, price: Price | None
    ) -> Decimal | None:
        instrument = self._cache.instrument(instrument_id)
        if instrument is None or price is None:
            return None
        return abs(instrument.notional_value(quantity, price, use_quote_for_inverse=True).as_decimal())

    # ------------------------------------------------------------------ refusing, as the RiskEngine does
    def _deny(self, order: Order, reason: str) -> None:
        # What the RiskEngine does to deny (OrderDenied through the execution engine's event endpoint).
        self._gate.denied += 1
        logger.warning("risk guard: order %s denied: %s", order.client_order_id, reason)
        if order.is_closed:
            return
        cache = self._cache
        if not cache.order_exists(order.client_order_id):
            cache.add_order(order)
        denied = OrderDenied(
            trader_id=order.trader_id,
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            client_order_id=order.client_order_id,
            reason=reason,
            event_id=UUID4(),
            ts_init=self._clock.timestamp_ns(),
        )
        self._msgbus.send(EXEC_EVENTS_ENDPOINT, denied)

    def fence_refuses(self, orders: list[Order]) -> bool:
        """The last look: deny ``orders`` if the fence cannot be relied on now."""
        why = self._gate.fence()
        if why is None:
            return False
        for order in orders:
            self._deny(order, f"{GATE_REASON_PREFIX}new orders are held: {why}")
        return True

    def fence_refuses_modify(self, command: ModifyOrder) -> bool:
        why = self._gate.fence()
        order = self._cache.order(command.client_order_id) if why is not None else None
        if order is None:
            return False
        self._reject_modify(order, f"{GATE_REASON_PREFIX}new orders are held: {why}")
        return True

    def _reject_modify(self, order: Order, reason: str) -> None:
        logger.warning("risk guard: modification of %s rejected: %s", order.client_order_id, reason)
        now = self._clock.timestamp_ns()
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
        self._msgbus.send(EXEC_EVENTS_ENDPOINT, rejected)


def _throttler(
    name: str, rate: str, clock: Clock, send: Callable[[Any], None], drop: Callable[[Any], None]
) -> Throttler:
    """NautilusTrader's ``Throttler`` for a ``LIMIT/HH:MM:SS`` rate, as its RiskEngine builds one, dropping."""
    limit, _, interval = rate.partition("/")
    return Throttler(
        name=name,
        limit=int(limit),
        interval=pd.to_timedelta(interval).to_pytimedelta(),
        clock=clock,
        output_send=send,
        output_drop=drop,
    )


class _LastLook:
    """The gate's second look at the fence, on one execution client: in front of its ``submit_order``,
    ``submit_order_list`` and ``modify_order``, which the execution engine calls when it takes a command
    off its queue. Installed on the client instance (``remove`` puts the class's methods back)."""

    def __init__(self, door: _Door, client: Any) -> None:
        self._client = client
        submit, submit_list, modify = (getattr(client, name) for name in CLIENT_SENDS)

        def submit_order(command: SubmitOrder) -> None:
            if not door.fence_refuses([command.order]):
                submit(command)

        def submit_order_list(command: SubmitOrderList) -> None:
            if not door.fence_refuses(list(command.order_list.orders)):
                submit_list(command)

        def modify_order(command: ModifyOrder) -> None:
            if not door.fence_refuses_modify(command):
                modify(command)

        for name, look in zip(CLIENT_SENDS, (submit_order, submit_order_list, modify_order), strict=True):
            setattr(client, name, look)

    def remove(self) -> None:
        for name in CLIENT_SENDS:
            self._client.__dict__.pop(name, None)
