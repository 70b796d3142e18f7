"""The venue's books: one account's orders and trades (spot, or USD-M futures), and the deterministic matching.

The one source of truth the endpoints answer from and a test asks. Everything runs on the event loop
with no awaits inside, so each call (a new order, a cancel, a market event) is atomic; listeners
(the user-data streams) are called synchronously, in order, after the state has changed.

Matching rules (the shared contract, docs/runtime.md "Venue emulator"):

- per symbol the exchange keeps the last book top; a Print or a Candle (a catalog without quotes)
  sets both bid and ask to its price.
- a MARKET order fills at once and whole at the ask (buy) or the bid (sell), as taker. With no price
  yet it expires (Binance expires a market order that finds no liquidity).
- a LIMIT order that crosses on arrival (buy: ask <= price; sell: bid >= price) fills at once at the
  best opposite price, as taker; LIMIT_MAKER that would cross is rejected -2010 "Order would
  immediately match and take."; IOC/FOK that do not cross expire, an IOC's unfilled rest expires, and a FOK
  that would fill only in part expires unfilled (USD-M refuses a FOK that cannot fill whole: -5021, not
  recorded). Otherwise the order rests and
  fills whole at its own price, as maker, at the first market event whose ask <= price (buy) or
  bid >= price (sell). Resting orders fill in order-id order.
- the account is checked before the book: an order the balance (spot) or the margin (USD-M) cannot cover is
  refused -2010 "Account has insufficient balance for requested action." / -2019 "Margin is insufficient." (a
  reduce-only that would not reduce, -2022) and not recorded, even when it would have expired unfilled (an IOC or a
  FOK that does not cross, a spot FOK that would fill only in part) or been refused -5021 (a USD-M FOK).
  faqs/market_orders_faq.md: "If you do not have sufficient balance for the order to be completely filled, the
  order will be rejected."; Binance's docs give no order of its own checks beyond that, so the account comes
  before -5021 here (a refusal on placement, where -5021 is the book's answer). An order that cannot be valued
  passes unchecked: a MARKET buy (spot), or a MARKET order that is not reduce-only (USD-M), before the first
  price; it expires (above). A spot sell needs its base whatever the price, so it is checked even then.
- an order that expires on arrival, unfilled (an IOC or FOK that does not cross, a spot FOK that would fill only
  in part, a MARKET order before the first price), is reported NEW, then EXPIRED, in one go, as one that fills
  in part before it expires is (NEW, TRADE, EXPIRED). What Binance documents: spot's enums.md gives execution type
  NEW as "The order has been accepted into the engine.", status REJECTED as "not accepted by the engine and not
  processed" and EXPIRED as "canceled according to the order type's rules (e.g. LIMIT FOK orders with no fill
  ...)", so such an order was accepted; faqs/market_orders_faq.md's stream of a MARKET order that expires on
  arrival (in part filled) begins with NEW; USD-M's "Event: Order Update" is pushed "When new order created, order
  status changed". Undocumented: no Binance page shows the stream of an order that expires with no fill at all;
  the emulator reads the above as NEW, then EXPIRED, rather than a lone EXPIRED. A lone EXPIRED would also be the
  harsher choice for the client without documentation for it: NautilusTrader 1.231 has no SUBMITTED -> EXPIRED
  transition and leaves such an order SUBMITTED (tests/venue_emulator/test_nautilus_spot.py, test_nautilus_usdm.py).
- partial fills only when a fault asks for them (:meth:`Exchange.fill_next_partially`).
- commission at the symbol's maker/taker fee, on and in what the trade receives: spot, the base
  asset for a buy (``qty * fee``) and the quote for a sell (``price * qty * fee``), as Binance charges
  when BNB does not pay (faqs/commission_faq.md; BNB fee deduction is not modelled); USD-M, the
  margin asset. Rounded to 8 decimals. What an order
  reserves and what a fill pays and earns is the account's business (:mod:`accounts`: spot
  balances, or a USD-M wallet with one-way positions and margin).
- filters on placement, Binance's spot ones (filters.md; USD-M answers its own codes, see
  ``_check_futures_filters``): PRICE_FILTER (within min/max price where set, and
  (price - min price) a multiple of the tick), LOT_SIZE (min_qty <= qty <= max_qty, (qty - min_qty) a
  multiple of the step), NOTIONAL (min notional <= price * qty <= max notional where set; a MARKET
  order is valued at the price it would fill at).
- order ids and trade ids increase and never repeat in one process.
- USD-M: the venue closes a position itself on demand (:meth:`Exchange.close_position_by_venue`, the admin
  API's ``liquidation`` fault): a liquidation or an auto-deleveraging, as an order of its own, after expiring
  every open order of the account.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from decimal import Decimal
from typing import Any, Literal

from livestrat.venue_emulator import errors
from livestrat.venue_emulator.accounts import Balance, BalanceChange, MarginChange, SpotAccount, UsdmAccount
from livestrat.venue_emulator.events import BookTop, Candle, MarketEvent, Print, SymbolRules

Side = Literal["BUY", "SELL"]
OrderType = Literal["LIMIT", "MARKET", "LIMIT_MAKER", "LIQUIDATION"]
TimeInForce = Literal["GTC", "IOC", "FOK"]
OrderStatus = Literal["NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "EXPIRED", "REJECTED"]
ExecutionType = Literal["NEW", "TRADE", "CANCELED", "EXPIRED", "REJECTED", "CALCULATED"]

ORDER_TYPES: tuple[str, ...] = ("LIMIT", "MARKET", "LIMIT_MAKER")
TIME_IN_FORCES: tuple[str, ...] = ("GTC", "IOC", "FOK")
FUTURES_ORDER_TYPES: tuple[str, ...] = ("LIMIT", "MARKET")
UNSUPPORTED_SPOT_TYPES = {
    "STOP_LOSS": "Stop loss orders are not supported for this symbol.",
    "STOP_LOSS_LIMIT": "Stop loss limit orders are not supported for this symbol.",
    "TAKE_PROFIT": "Take profit orders are not supported for this symbol.",
    "TAKE_PROFIT_LIMIT": "Take profit limit orders are not supported for this symbol.",
}
FUTURES_TIME_IN_FORCES: tuple[str, ...] = ("GTC", "IOC", "FOK", "GTX")
GTX_REJECT_MSG = "Due to the order could not be executed as maker, the Post Only order will be rejected."
# USD-M -5021 FOK_ORDER_REJECT: a FOK that cannot fill whole is refused, and not recorded.
FOK_REJECT_MSG = (
    "Due to the order could not be filled immediately, the FOK order has been rejected. "
    "The order will not be recorded in the order history."
)
# USD-M "Event: Order Update": the client order id of an order the venue places itself, to close a position.
LIQUIDATION_CLIENT_ID_PREFIX = "autoclose-"  # "starts with "autoclose-": liquidation order"
ADL_CLIENT_ID = "adl_autoclose"  # ""adl_autoclose": ADL auto close order"
# USD-M "Event: Order Update", "Expiry Reason" (``er``) of an EXPIRED update.
EXPIRY_NONE = 0  # "None, the default value"
EXPIRY_IOC_UNFILLED = 2  # "IOC order could not be filled completely, remaining quantity is canceled"
EXPIRY_LIQUIDATED = 5  # "Order has expired when the account was liquidated"
EXPIRY_MARKET_UNFILLED = 9  # "Market order could not be filled completely, remaining quantity is canceled"
# A FOK that cannot fill whole: spot only (USD-M refuses it, -5021); COIN-M's "Event: Order Update" lists 10 for it.
EXPIRY_FOK_UNFILLED = 10


def _expiry_reason(order: Order) -> int:
    """Why an order that cannot rest expires unfilled, or with a rest: a market order's reason first (whatever time in
    force USD-M let it carry), else its time in force's (a FOK expires so only on spot: USD-M refuses it, -5021)."""
    if order.type == "MARKET":
        return EXPIRY_MARKET_UNFILLED
    return {"IOC": EXPIRY_IOC_UNFILLED, "FOK": EXPIRY_FOK_UNFILLED}.get(order.time_in_force, EXPIRY_NONE)


MAX_DECIMALS = 8  # Binance's spot assets carry 8 decimals; more answers -1111 BAD_PRECISION
_CLIENT_ID_ALPHABET = string.ascii_letters + string.digits


@dataclass
class Order:
    order_id: int
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    price: Decimal  # 0 for MARKET, as Binance renders it
    orig_qty: Decimal
    time_ms: int
    executed_qty: Decimal = Decimal(0)
    cum_quote: Decimal = Decimal(0)
    status: OrderStatus = "NEW"
    update_ms: int = 0
    working_ms: int | None = None
    locked: Decimal = Decimal(0)  # what this order still holds of the account's balance (spot) or margin (USD-M)
    reduce_only: bool = False

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty


@dataclass(frozen=True)
class Trade:
    """One fill of one of the account's orders (Binance's myTrades row)."""

    trade_id: int
    order_id: int
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    is_maker: bool
    realized_pnl: Decimal = Decimal(0)  # USD-M: what the fill realized of the position


@dataclass(frozen=True)
class Execution:
    """What the user-data stream reports: an order's state after one execution (an executionReport)."""

    order: Order  # a snapshot, taken when it happened
    execution_type: ExecutionType
    time_ms: int
    trade: Trade | None = None
    cancel_client_order_id: str = ""  # executionReport ``C``: set on a cancel, ``c`` is then the cancel's id
    expiry_reason: int = EXPIRY_NONE  # why an EXPIRED order expired, as USD-M's ``er`` (spot's ``eR``: ws_api)


UserEvent = Execution | BalanceChange | MarginChange
Account = SpotAccount | UsdmAccount


@dataclass
class _Book:
    bid: Decimal | None = None
    ask: Decimal | None = None


@dataclass
class _FaultPlan:
    """One-shot behaviours a fault asks of the next order(s)."""

    reject_next: list[str] = field(default_factory=list)  # messages, one per next order
    partial_next: list[Decimal] = field(default_factory=list)  # fractions of the quantity, one per next order


class Exchange:
    """One account (spot, or USD-M futures) on a set of symbols of its product. ``now_ms`` is the venue's
    clock (wall time)."""

    def __init__(
        self,
        rules: list[SymbolRules],
        account: Account,
        now_ms: Callable[[], int],
        first_order_id: int = 1,
        first_trade_id: int = 1,
    ) -> None:
        self.rules = {r.symbol: r for r in rules}
        self.account = account
        self.product = "usdm" if isinstance(account, UsdmAccount) else "spot"
        if any(r.product != self.product for r in rules):
            raise ValueError(f"a {self.product} account trades only {self.product} symbols")
        self._now_ms = now_ms
        self._books: dict[str, _Book] = {s: _Book() for s in self.rules}
        self._orders: dict[int, Order] = {}
        self._trades: list[Trade] = []
        self._next_order_id = first_order_id
        self._next_trade_id = first_trade_id
        self._listeners: list[Callable[[UserEvent], None]] = []
        self._faults = _FaultPlan()
        self.update_ms = now_ms()

    # -- listeners and faults --------------------------------------------------------------------------

    def listen(self, listener: Callable[[UserEvent], None]) -> Callable[[], None]:
        """Register a user-data listener; returns the function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def reject_next_order(self, msg: str = errors.INSUFFICIENT_BALANCE) -> None:
        """The next new order is refused -2010 with ``msg``, whatever it is."""
        self._faults.reject_next.append(msg)

    def fill_next_partially(self, fraction: Decimal) -> None:
        """The next order's first fill is only ``fraction`` of its quantity (rounded down to the step);
        the rest waits for later market events at the same rule."""
        if not Decimal(0) < fraction < Decimal(1):
            raise ValueError("the fraction of a partial fill is between 0 and 1, exclusive")
        self._faults.partial_next.append(fraction)

    # -- queries ---------------------------------------------------------------------------------------

    def symbol_rules(self, symbol: str | None) -> SymbolRules:
        if not symbol:
            raise errors.mandatory_param("symbol")
        rules = self.rules.get(symbol)
        if rules is None:
            raise errors.bad_symbol()
        return rules

    def balances(self) -> dict[str, Balance]:
        """Spot balances, free and locked (a USD-M account has a wallet instead: ``account``)."""
        if not isinstance(self.account, SpotAccount):
            raise TypeError("a USD-M account has a wallet and positions, not spot balances")
        return self.account.balances()

    def mark_price(self, symbol: str) -> Decimal | None:
        """The book's mid (USD-M's mark price stand-in), or None before the first price."""
        book = self._books[symbol]
        return (book.bid + book.ask) / 2 if book.bid is not None and book.ask is not None else None

    def best_prices(self, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        """The book's (bid, ask) as matching sees them; None before the first price."""
        book = self._books[symbol]
        return book.bid, book.ask

    def order(self, symbol: str, order_id: int | None = None, orig_client_order_id: str | None = None) -> Order:
        """Query order (rest-api.md "Query order"): by id, else by client id; -2013 when there is none."""
        self.symbol_rules(symbol)
        found = self._find(symbol, order_id, orig_client_order_id)
        if found is None:
            raise errors.no_such_order()
        return replace(found)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        if symbol is not None:
            self.symbol_rules(symbol)
        return [replace(o) for o in self._orders.values() if o.is_open and symbol in (None, o.symbol)]

    def every_order(self) -> list[Order]:
        """Every order of every symbol, in id order (the admin view)."""
        return [replace(o) for o in self._orders.values()]

    def all_orders(
        self,
        symbol: str,
        order_id: int | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[Order]:
        """rest-api.md "All orders": orderId gives orders >= it; otherwise the most recent ``limit``."""
        self.symbol_rules(symbol)
        rows = [o for o in self._orders.values() if o.symbol == symbol]
        if order_id is not None:
            rows = [o for o in rows if o.order_id >= order_id][:limit]
        else:
            rows = [o for o in rows if _in_window(o.time_ms, start_ms, end_ms)]
            rows = rows[:limit] if start_ms is not None else rows[-limit:]
        return [replace(o) for o in rows]

    def trades(
        self,
        symbol: str | None = None,
        order_id: int | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        from_id: int | None = None,
        limit: int | None = None,
    ) -> list[Trade]:
        """rest-api.md "Account trade list": fromId gives trades >= it; startTime the oldest from it;
        otherwise the most recent ``limit``. ``symbol=None`` (the admin view) gives every trade."""
        rows = [t for t in self._trades if symbol in (None, t.symbol)]
        if order_id is not None:
            rows = [t for t in rows if t.order_id == order_id]
        if from_id is not None:
            rows = [t for t in rows if t.trade_id >= from_id]
        rows = [t for t in rows if _in_window(t.time_ms, start_ms, end_ms)]
        if limit is None:
            return rows
        return rows[:limit] if from_id is not None or start_ms is not None else rows[-limit:]

    # -- orders ----------------------------------------------------------------------------------------

    def new_order(
        self,
        symbol: str,
        side: str,
        order_type: str,
        quantity: Decimal | None,
        price: Decimal | None = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
        reduce_only: bool = False,
    ) -> tuple[Order, list[Trade]]:
        """Place an order (rest-api.md "New order"): the order as it stands after matching on arrival,
        and the trades it made. Refusals raise :class:`errors.BinanceError` and change nothing."""
        rules = self.symbol_rules(symbol)
        usdm = self.product == "usdm"
        if side not in ("BUY", "SELL"):
            raise errors.invalid_side()
        if not usdm and order_type in UNSUPPORTED_SPOT_TYPES:
            # errors.md, -2010 messages: what the symbol's orderTypes (exchangeInfo) leave out
            raise errors.new_order_rejected(UNSUPPORTED_SPOT_TYPES[order_type])
        if order_type not in (FUTURES_ORDER_TYPES if usdm else ORDER_TYPES):
            raise errors.invalid_order_type()
        if order_type == "MARKET" and price is not None:
            raise errors.BinanceError(400, -1106, "Parameter 'price' sent when not required.")
        if quantity is None:
            raise errors.mandatory_param("quantity")
        _check_precision("quantity", quantity)
        if order_type in ("LIMIT", "LIMIT_MAKER"):
            if price is None:
                raise errors.mandatory_param("price")
            _check_precision("price", price)
        if order_type == "LIMIT":
            if time_in_force is None:
                raise errors.mandatory_param("timeInForce")
            if time_in_force not in (FUTURES_TIME_IN_FORCES if usdm else TIME_IN_FORCES):
                raise errors.invalid_tif()
        elif time_in_force is not None and order_type == "MARKET" and not usdm:
            raise errors.tif_not_required()
        if client_order_id and any(o.client_order_id == client_order_id for o in self._orders.values() if o.is_open):
            raise errors.new_order_rejected(errors.DUPLICATE_ORDER)

        book = self._books[symbol]
        taker_px = book.ask if side == "BUY" else book.bid
        limit_px = price if order_type != "MARKET" else None
        value_px = limit_px if limit_px is not None else taker_px
        if usdm:
            _check_futures_filters(rules, quantity, limit_px, value_px, reduce_only)
        else:
            _check_filters(rules, quantity, limit_px, value_px)
        crosses = taker_px is not None and (
            limit_px is None or (taker_px <= limit_px if side == "BUY" else taker_px >= limit_px)
        )
        # What of it the venue would fill at once (a ``partial_fill`` fault ahead: only part, unless that rounds to
        # nothing); a FOK "will expire if the full order cannot be filled upon execution" (spot), USD-M refuses it.
        ahead = self._faults.partial_next[0] if self._faults.partial_next else None
        part = (quantity * ahead // rules.step_size) * rules.step_size if ahead is not None else quantity
        whole = crosses and not 0 < part < quantity
        post_only = order_type == "LIMIT_MAKER" or time_in_force == "GTX"
        if post_only and crosses:
            if usdm:  # USD-M: "Due to the order could not be executed as maker, the Post Only order will be rejected."
                raise errors.BinanceError(400, -5022, GTX_REJECT_MSG)
            raise errors.new_order_rejected(errors.WOULD_TAKE)
        if self._faults.reject_next:
            raise errors.new_order_rejected(self._faults.reject_next.pop(0))

        now = self._now_ms()
        order = Order(
            order_id=0,
            client_order_id=client_order_id or generated_client_id(),
            symbol=symbol,
            side=side,  # type: ignore[arg-type]
            type=order_type,  # type: ignore[arg-type]
            time_in_force=(time_in_force or "GTC"),  # type: ignore[arg-type]
            price=limit_px if limit_px is not None else Decimal(0),
            orig_qty=quantity,
            time_ms=now,
            update_ms=now,
            reduce_only=reduce_only,
        )
        # The account is checked first, whatever the book would do with the order: one it cannot cover is refused
        # (-2010 / -2019 / -2022, changing nothing) even when it would expire unfilled or be refused -5021. Only what
        # cannot be valued is let through: a MARKET buy (spot) or a MARKET order that is not reduce-only (USD-M) before
        # the first price; a sell's base (spot) and a reduce-only's position need no price.
        if value_px is not None or (order.side == "SELL" and not usdm) or order.reduce_only:
            self.account.reserve(rules, order, value_px if value_px is not None else Decimal(0))
        if usdm and order_type == "LIMIT" and time_in_force == "FOK" and not whole:
            self.account.release(rules, order)
            if crosses:
                self._faults.partial_next.pop(0)  # the liquidity it met: the fault is spent
            raise errors.BinanceError(400, -5021, FOK_REJECT_MSG)
        killed = crosses and not whole and order.time_in_force == "FOK"  # spot: only part would fill
        expires = (taker_px is None and order_type == "MARKET") or (
            (not crosses or killed) and order.time_in_force in ("IOC", "FOK")
        )
        order.order_id, self._next_order_id = self._next_order_id, self._next_order_id + 1
        self._orders[order.order_id] = order
        partial = self._faults.partial_next.pop(0) if self._faults.partial_next else None
        events: list[UserEvent] = []
        trades: list[Trade] = []

        if order_type != "MARKET":
            order.working_ms = now
        events.append(Execution(replace(order), "NEW", now))  # accepted, also when it expires at once (docstring)
        if expires:
            self._expire(order, now, events, _expiry_reason(order))  # nothing to take; releases what it reserved
        elif crosses:
            assert taker_px is not None
            qty = self._fill_qty(rules, order, partial)
            trades.append(self._fill(rules, order, taker_px, qty, is_maker=False, time_ms=now, events=events))
            if order.is_open and (order_type == "MARKET" or order.time_in_force == "IOC"):
                # neither rests: a market order, nor an IOC ("fill the order as much as it can before it expires")
                self._expire(order, now, events, _expiry_reason(order))
        elif partial is not None:
            self._faults.partial_next.insert(0, partial)  # the fault applies to the order's first fill
        events.append(self.account.change(rules, now))
        self._emit(events)
        return replace(order), trades

    def cancel_order(
        self,
        symbol: str,
        order_id: int | None = None,
        orig_client_order_id: str | None = None,
        new_client_order_id: str | None = None,
    ) -> Order:
        """Cancel order (rest-api.md "Cancel order"): -2011 "Unknown order sent." for an order that is
        not open (unknown, filled or already canceled)."""
        rules = self.symbol_rules(symbol)
        if order_id is None and not orig_client_order_id:
            raise errors.one_of_params("orderId", "origClientOrderId")
        order = self._find(symbol, order_id, orig_client_order_id)
        if order is None or not order.is_open:
            raise errors.unknown_order_on_cancel()
        now = self._now_ms()
        events: list[UserEvent] = []
        self._cancel(order, new_client_order_id or generated_client_id(), now, events)
        events.append(self.account.change(rules, now))
        self._emit(events)
        return replace(order)

    def cancel_open_orders(self, symbol: str, *, none_is_error: bool = True) -> list[tuple[Order, str]]:
        """Cancel all open orders on a symbol (rest-api.md "Cancel All Open Orders on a Symbol"): each
        order with the cancel's client id; -2011 "Unknown order sent." when none is open (spot)."""
        rules = self.symbol_rules(symbol)
        open_orders = [o for o in self._orders.values() if o.is_open and o.symbol == symbol]
        if not open_orders:
            if none_is_error:
                raise errors.unknown_order_on_cancel()
            return []
        now = self._now_ms()
        events: list[UserEvent] = []
        cancelled = []
        for order in open_orders:
            cancel_id = generated_client_id()
            self._cancel(order, cancel_id, now, events)
            cancelled.append((replace(order), cancel_id))
        events.append(self.account.change(rules, now))
        self._emit(events)
        return cancelled

    # -- the market ------------------------------------------------------------------------------------

    def on_market(self, event: MarketEvent) -> None:
        """The feed's MarketListener: move the book, then fill resting orders the new prices reach."""
        book = self._books.get(event.symbol)
        if book is None or event.product != self.product:
            return  # another product's symbol of the same name (a USD-M perpetual spells BTCUSDT too)
        if isinstance(event, BookTop):
            book.bid, book.ask = event.bid, event.ask
        elif isinstance(event, Print):
            book.bid = book.ask = event.price
        elif isinstance(event, Candle):
            book.bid = book.ask = event.close
        rules = self.rules[event.symbol]
        events: list[UserEvent] = []
        for order in [o for o in self._orders.values() if o.is_open and o.symbol == event.symbol]:
            reached = (
                book.ask is not None and book.ask <= order.price
                if order.side == "BUY"
                else book.bid is not None and book.bid >= order.price
            )
            if reached:
                partial = self._faults.partial_next.pop(0) if self._faults.partial_next else None
                qty = self._fill_qty(rules, order, partial)
                self._fill(rules, order, order.price, qty, is_maker=True, time_ms=event.ts_ms, events=events)
        if events:
            events.append(self.account.change(rules, event.ts_ms))
            self._emit(events)

    def trade_through_open_orders(self) -> list[Trade]:
        """The market trades through every open order now: each fills in full at its own price, as a maker (the
        ``fill_between`` fault: a fill that lands between two of a client's queries)."""
        now = self._now_ms()
        events: list[UserEvent] = []
        trades = []
        symbols = []
        for order in [o for o in self._orders.values() if o.is_open and o.price]:
            rules = self.rules[order.symbol]
            trades.append(self._fill(rules, order, order.price, order.remaining, True, now, events))
            symbols.append(order.symbol)
        for symbol in dict.fromkeys(symbols):
            events.append(self.account.change(self.rules[symbol], now))
        if events:
            self._emit(events)
        return trades

    def close_position_by_venue(
        self,
        symbol: str,
        price: Decimal | None = None,
        *,
        adl: bool = False,
        quantity: Decimal | None = None,
        prices: Sequence[Decimal] = (),
    ) -> list[Trade]:
        """The venue closes the account's USD-M position in ``symbol`` with an order of its own: a liquidation
        (client order id ``autoclose-<ms>``) or, with ``adl``, an auto-deleveraging (``adl_autoclose``), of
        ``quantity`` (default: the whole position), at ``price`` (default: the mark price), as a taker; with
        ``prices``, in one execution per price (the order meets several levels of the book), the quantity split
        evenly in steps, the last execution taking what is left.

        First every open order of the account, on every symbol, expires: Binance's "Liquidation Protocols" (FAQ
        360033525271): "During liquidation, a user's all open orders are immediately canceled" (it makes no
        difference between cross and isolated margin there; this account is cross margin only); its ADL page (FAQ
        360033525471): "Any open orders will be canceled." Each comes as USD-M's "Event: Order Update" names such an
        end: ``x`` and ``X`` EXPIRED, expiry reason ``er`` 5, "Order has expired when the account was liquidated";
        its margin is released. Binance documents no expiry reason of an ADL's own: the emulator gives it the
        liquidation's (the ADL page calls an ADL an "auto-deleverage liquidation"). No ``ACCOUNT_UPDATE`` follows
        them (no balance or position changed).

        As USD-M's "Event: Order Update" documents it: the order's type is ``LIQUIDATION``; its first update
        says ``NEW`` (``x`` and ``X``: "c shows as "autoclose-XXX", X shows as "NEW""); each execution is
        ``CALCULATED`` ("Liquidation Execution") with its own trade (``t``), quantity (``l``, "Order Last Filled
        Quantity"), price (``L``, "Last Filled Price"), commission (``n``) and realized profit (``rp``, "of the
        trade"), the order's accumulated quantity (``z``) and average price (``ap``), and status
        ``PARTIALLY_FILLED`` until the last leaves it ``FILLED``; each is followed by an ``ACCOUNT_UPDATE`` with
        the position it leaves (reason ``ORDER``: the documented reasons name no liquidation). Its time in force
        is IOC, as USD-M's "Liquidation Order Streams" show liquidation orders, its price the least favourable
        of its executions'. Commission at the taker fee for a liquidation; none for an ADL ("no trading fee will
        be charged", Binance's "What Is Auto-Deleveraging (ADL)"). The order and its trades are the account's from
        then on (``allOrders``, ``userTrades``), as any other's. An ADL is always ``adl_autoclose``: two ADLs are two
        orders of the same client order id."""
        if self.product != "usdm":
            raise ValueError("only a USD-M account has positions the venue can close")
        if price is not None and prices:
            raise ValueError("name one price or several prices, not both")
        rules = self.symbol_rules(symbol)
        assert isinstance(self.account, UsdmAccount)
        position = self.account.position(symbol)
        if position.amount == 0:
            raise ValueError(f"no {symbol} position to close")
        quantity = abs(position.amount) if quantity is None else quantity
        if not 0 < quantity <= abs(position.amount) or quantity % rules.step_size:
            raise ValueError(
                f"quantity {quantity} cannot be closed: more than 0, at most the position's {abs(position.amount)}, "
                f"a multiple of {rules.step_size}"
            )
        if not prices:
            one = price if price is not None else self.mark_price(symbol)
            if one is None:
                raise ValueError(f"no price yet for {symbol}: name one")
            prices = (one,)
        ticks = [(p / rules.tick_size).to_integral_value() * rules.tick_size for p in prices]
        part = (quantity / len(ticks) // rules.step_size) * rules.step_size
        if part <= 0:
            raise ValueError(f"quantity {quantity} cannot be split into {len(ticks)} executions of {rules.step_size}")
        parts = [part] * (len(ticks) - 1) + [quantity - part * (len(ticks) - 1)]
        side: Side = "SELL" if position.amount > 0 else "BUY"
        now = self._now_ms()
        events: list[UserEvent] = []
        for open_order in [o for o in self._orders.values() if o.is_open]:  # every symbol's, in order-id order
            self._expire(open_order, now, events, EXPIRY_LIQUIDATED)
        order = Order(
            order_id=self._next_order_id,
            client_order_id=ADL_CLIENT_ID if adl else f"{LIQUIDATION_CLIENT_ID_PREFIX}{now}",
            symbol=symbol,
            side=side,
            type="LIQUIDATION",
            time_in_force="IOC",
            price=min(ticks) if side == "SELL" else max(ticks),
            orig_qty=quantity,
            time_ms=now,
            update_ms=now,
        )
        self._next_order_id += 1
        self._orders[order.order_id] = order
        events.append(Execution(replace(order), "NEW", now))
        trades = []
        for at, qty in zip(ticks, parts, strict=True):
            # an ADL: "closed out at the bankruptcy price ..., no trading fee will be charged" (Binance's ADL page)
            trades.append(
                self._fill(rules, order, at, qty, False, now, events, execution_type="CALCULATED", fee_free=adl)
            )
            events.append(self.account.change(rules, now))
        self._emit(events)
        return trades

    # -- internals -------------------------------------------------------------------------------------

    def _find(self, symbol: str, order_id: int | None, client_order_id: str | None) -> Order | None:
        if order_id is not None:
            order = self._orders.get(order_id)
            if order is None or order.symbol != symbol:
                return None
            # rest-api.md: "If both orderId and origClientOrderId are provided, the orderId is searched
            # first, then the origClientOrderId from that result is checked against that order."
            if client_order_id and order.client_order_id != client_order_id:
                return None
            return order
        # the latest order with that client id (an id can be reused once its order is closed)
        matches = [o for o in self._orders.values() if o.symbol == symbol and o.client_order_id == client_order_id]
        return matches[-1] if matches else None

    @staticmethod
    def _fill_qty(rules: SymbolRules, order: Order, partial: Decimal | None) -> Decimal:
        if partial is None:
            return order.remaining
        qty = (order.remaining * partial // rules.step_size) * rules.step_size
        return qty if qty > 0 else order.remaining

    def _fill(
        self,
        rules: SymbolRules,
        order: Order,
        price: Decimal,
        qty: Decimal,
        is_maker: bool,
        time_ms: int,
        events: list[UserEvent],
        execution_type: ExecutionType = "TRADE",
        fee_free: bool = False,
    ) -> Trade:
        quote_qty = price * qty
        fee = Decimal(0) if fee_free else rules.maker_fee if is_maker else rules.taker_fee
        commission_asset = self.account.commission_asset(rules, order.side)
        received = qty if commission_asset == rules.base_asset else quote_qty
        commission = (received * fee).quantize(Decimal(1).scaleb(-MAX_DECIMALS))
        realized = self.account.settle(rules, order, price, qty, commission)
        order.executed_qty += qty
        order.cum_quote += quote_qty
        order.status = "FILLED" if order.remaining == 0 else "PARTIALLY_FILLED"
        order.update_ms = time_ms
        trade = Trade(
            trade_id=self._take_trade_id(),
            order_id=order.order_id,
            symbol=order.symbol,
            side=order.side,
            price=price,
            qty=qty,
            quote_qty=quote_qty,
            commission=commission,
            commission_asset=commission_asset,
            time_ms=time_ms,
            is_maker=is_maker,
            realized_pnl=realized,
        )
        self._trades.append(trade)
        events.append(Execution(replace(order), execution_type, time_ms, trade=trade))
        return trade

    def _take_trade_id(self) -> int:
        trade_id, self._next_trade_id = self._next_trade_id, self._next_trade_id + 1
        return trade_id

    # -- persistence (``--state FILE``) ----------------------------------------------------------------

    def snapshot(self) -> dict[str, object]:
        """The books as JSON-ready data: orders, trades, the account and the next ids (prices as strings)."""
        return {
            "product": self.product,
            "next_order_id": self._next_order_id,
            "next_trade_id": self._next_trade_id,
            "orders": [_plain(asdict(o)) for o in self._orders.values()],
            "trades": [_plain(asdict(t)) for t in self._trades],
            "account": _plain(self.account.snapshot()),
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Take back a :meth:`snapshot` (same product): ids go on from where they were."""
        if data["product"] != self.product:
            raise ValueError(f"a {data['product']} state cannot be restored into a {self.product} exchange")
        self._next_order_id, self._next_trade_id = data["next_order_id"], data["next_trade_id"]
        self._orders = {o["order_id"]: Order(**_typed(Order, o)) for o in data["orders"]}
        self._trades = [Trade(**_typed(Trade, t)) for t in data["trades"]]
        self.account.restore(data["account"])

    def _cancel(self, order: Order, cancel_client_id: str, now: int, events: list[UserEvent]) -> None:
        self.account.release(self.rules[order.symbol], order)
        order.status = "CANCELED"
        order.update_ms = now
        snapshot = replace(order, client_order_id=cancel_client_id)
        events.append(Execution(snapshot, "CANCELED", now, cancel_client_order_id=order.client_order_id))

    def _expire(self, order: Order, now: int, events: list[UserEvent], reason: int = EXPIRY_NONE) -> None:
        self.account.release(self.rules[order.symbol], order)
        order.status = "EXPIRED"
        order.update_ms = now
        events.append(Execution(replace(order), "EXPIRED", now, expiry_reason=reason))

    def _emit(self, events: list[UserEvent]) -> None:
        for event in events:
            if isinstance(event, BalanceChange | MarginChange):
                self.update_ms = event.time_ms
            for listener in list(self._listeners):
                listener(event)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _typed(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """A snapshot row's fields with the Decimals the dataclass declares put back."""
    decimals = {f.name for f in fields(cls) if f.type in ("Decimal", Decimal)}
    return {k: Decimal(v) if k in decimals else v for k, v in data.items()}


def _in_window(t: int, start_ms: int | None, end_ms: int | None) -> bool:
    return (start_ms is None or t >= start_ms) and (end_ms is None or t <= end_ms)


def _check_precision(name: str, value: Decimal) -> None:
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_DECIMALS:
        raise errors.bad_precision(name)


def _check_filters(rules: SymbolRules, qty: Decimal, limit_px: Decimal | None, value_px: Decimal | None) -> None:
    """filters.md: PRICE_FILTER, LOT_SIZE, NOTIONAL, in that order."""
    if limit_px is not None and (
        limit_px <= 0
        or (rules.min_price > 0 and limit_px < rules.min_price)
        or (rules.max_price > 0 and limit_px > rules.max_price)
        or (limit_px - rules.min_price) % rules.tick_size != 0
    ):
        raise errors.filter_failure("PRICE_FILTER")
    if qty < rules.min_qty or qty > rules.max_qty or (qty - rules.min_qty) % rules.step_size != 0:
        raise errors.filter_failure("LOT_SIZE")
    if value_px is not None and (
        value_px * qty < rules.min_notional or (rules.max_notional is not None and value_px * qty > rules.max_notional)
    ):
        raise errors.filter_failure("NOTIONAL")


def _check_futures_filters(
    rules: SymbolRules, qty: Decimal, limit_px: Decimal | None, value_px: Decimal | None, reduce_only: bool
) -> None:
    """USD-M answers filter failures with their own codes (its "Error Codes" page: -4014, -4003/-4004/-4005,
    -4023, -4164); a reduce-only order is exempt from the notional minimum."""
    if limit_px is not None and (limit_px <= 0 or (limit_px - rules.min_price) % rules.tick_size != 0):
        raise errors.BinanceError(400, -4014, "Price not increased by tick size.")
    if qty <= 0:
        raise errors.BinanceError(400, -4003, "Quantity less than or equal to zero.")
    if qty < rules.min_qty:
        raise errors.BinanceError(400, -4004, "Quantity less than min quantity.")
    if qty > rules.max_qty:
        raise errors.BinanceError(400, -4005, "Quantity greater than max quantity.")
    if (qty - rules.min_qty) % rules.step_size != 0:
        raise errors.BinanceError(400, -4023, "Quantity not increased by step size.")
    if not reduce_only and value_px is not None and value_px * qty < rules.min_notional:
        raise errors.BinanceError(
            400,
            -4164,
            f"Order's notional must be no smaller than {rules.min_notional.normalize()} "
            "(unless you choose reduce only).",
        )


def generated_client_id() -> str:
    """A client order id as Binance generates one when none is sent (22 letters and digits)."""
    return "".join(secrets.choice(_CLIENT_ID_ALPHABET) for _ in range(22))
