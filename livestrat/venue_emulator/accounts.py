"""The money side of an account: what an order reserves, what a fill pays and earns, what the stream reports.

- :class:`SpotAccount`: balances per asset, free and locked (rest-api.md "Account information"). A buy locks
  ``price * qty`` of quote, a sell its base quantity. Short: -2010 "Account has insufficient balance for
  requested action." (checked before the order meets the book: :mod:`exchange`). The commission is a share of
  what the trade receives and comes out of it (faqs/commission_faq.md: "the received amount is multiplied with
  the sum of the rates ... For orders on the BUY side, the received amount would be quantity", "deducted from
  your received amount"): a BTCUSDT buy pays in BTC, a sell in USDT (faqs/sor_faq.md's BUY fills show
  ``"commissionAsset": "BTC"``). Paying fees in BNB (the account's BNB-burn discount) is not modelled: the
  emulator's accounts always pay in the received asset.
- :class:`UsdmAccount`: Binance USD-M futures in one-way mode (positionSide BOTH), cross margin, one
  margin asset (USDT). A position is a signed amount with an average entry price; a fill that
  reduces it realizes ``closed qty * (price - entry)`` (times the sign), a fill past zero opens the
  rest at the fill price. An order that can increase the position reserves ``price * qty /
  leverage`` of initial margin; the available balance is the wallet less the positions' initial
  margin (at entry) and the open orders' (unrealized profit is not counted: the emulator has no mark
  price); short: -2019 "Margin is insufficient.". A reduce-only order reserves nothing and is refused
  -2022 "ReduceOnly Order is rejected." when it would not reduce. Commission is charged to the wallet,
  in the margin asset, whichever the side.
  Leverage defaults to 20 (Binance's default for BTCUSDT) and is set per symbol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from livestrat.venue_emulator import errors
from livestrat.venue_emulator.events import SymbolRules

if TYPE_CHECKING:
    from livestrat.venue_emulator.exchange import Order

DEFAULT_LEVERAGE = 20
MAX_LEVERAGE = 125


@dataclass
class Balance:
    free: Decimal = Decimal(0)
    locked: Decimal = Decimal(0)


@dataclass(frozen=True)
class BalanceChange:
    """Spot: the balances of the assets one action touched (an outboundAccountPosition)."""

    balances: dict[str, tuple[Decimal, Decimal]]  # asset -> (free, locked)
    time_ms: int


@dataclass
class Position:
    symbol: str
    amount: Decimal = Decimal(0)  # signed: long > 0, short < 0
    entry_price: Decimal = Decimal(0)
    realized: Decimal = Decimal(0)  # accumulated realized profit
    update_ms: int = 0


@dataclass(frozen=True)
class MarginChange:
    """USD-M: the wallet and the position one action touched (an ACCOUNT_UPDATE, reason ORDER)."""

    asset: str
    wallet: Decimal
    position: Position
    time_ms: int


class SpotAccount:
    def __init__(self, balances: dict[str, Decimal]) -> None:
        self._balances = {a: Balance(free=Decimal(v)) for a, v in balances.items()}

    def balance(self, asset: str) -> Balance:
        return self._balances.setdefault(asset, Balance())

    @staticmethod
    def commission_asset(rules: SymbolRules, side: str) -> str:
        """The asset the trade receives: the base for a buy, the quote for a sell."""
        return rules.base_asset if side == "BUY" else rules.quote_asset

    def balances(self) -> dict[str, Balance]:
        return {a: Balance(b.free, b.locked) for a, b in sorted(self._balances.items())}

    def reserve(self, rules: SymbolRules, order: Order, price: Decimal) -> None:
        if order.side == "SELL":
            amount, asset = order.orig_qty, self.balance(rules.base_asset)
        else:
            amount = price * order.orig_qty  # the fee is paid from the base received, nothing to reserve
            asset = self.balance(rules.quote_asset)
        if amount > asset.free:
            raise errors.new_order_rejected(errors.INSUFFICIENT_BALANCE)
        asset.free -= amount
        asset.locked += amount
        order.locked = amount

    def settle(self, rules: SymbolRules, order: Order, price: Decimal, qty: Decimal, commission: Decimal) -> Decimal:
        base, quote = self.balance(rules.base_asset), self.balance(rules.quote_asset)
        if order.side == "BUY":
            # release what this part of the order locked, pay for it, receive the base less its commission
            release = order.locked if qty == order.remaining else order.locked * qty / order.remaining
            quote.locked -= release
            quote.free += release - price * qty
            base.free += qty - commission
        else:
            release = qty
            base.locked -= qty
            quote.free += price * qty - commission
        order.locked -= release
        return Decimal(0)

    def release(self, rules: SymbolRules, order: Order) -> None:
        asset = self.balance(rules.quote_asset if order.side == "BUY" else rules.base_asset)
        asset.locked -= order.locked
        asset.free += order.locked
        order.locked = Decimal(0)

    def snapshot(self) -> dict[str, Any]:
        return {"balances": {a: {"free": b.free, "locked": b.locked} for a, b in self._balances.items()}}

    def restore(self, data: dict[str, Any]) -> None:
        self._balances = {a: Balance(Decimal(b["free"]), Decimal(b["locked"])) for a, b in data["balances"].items()}

    def change(self, rules: SymbolRules, time_ms: int) -> BalanceChange:
        assets = (rules.base_asset, rules.quote_asset)
        return BalanceChange({a: (self.balance(a).free, self.balance(a).locked) for a in assets}, time_ms)


@dataclass
class UsdmAccount:
    wallet: Decimal
    asset: str = "USDT"
    positions: dict[str, Position] = field(default_factory=dict)
    leverage: dict[str, int] = field(default_factory=dict)
    open_order_margin: Decimal = Decimal(0)

    def position(self, symbol: str) -> Position:
        return self.positions.setdefault(symbol, Position(symbol))

    def commission_asset(self, rules: SymbolRules, side: str) -> str:
        return self.asset  # USD-M: the margin asset, whichever the side

    def leverage_of(self, symbol: str) -> int:
        return self.leverage.get(symbol, DEFAULT_LEVERAGE)

    def set_leverage(self, symbol: str, leverage: int) -> None:
        if not 1 <= leverage <= MAX_LEVERAGE:
            raise errors.BinanceError(400, -4028, f"Leverage {leverage} is not valid")
        self.leverage[symbol] = leverage

    def position_margin(self) -> Decimal:
        return sum((abs(p.amount) * p.entry_price / self.leverage_of(s) for s, p in self.positions.items()), Decimal(0))

    def available(self) -> Decimal:
        return self.wallet - self.position_margin() - self.open_order_margin

    def reserve(self, rules: SymbolRules, order: Order, price: Decimal) -> None:
        position = self.position(rules.symbol)
        if order.reduce_only:
            reducing = (position.amount > 0 and order.side == "SELL") or (position.amount < 0 and order.side == "BUY")
            if not reducing or order.orig_qty > abs(position.amount):
                raise errors.BinanceError(400, -2022, "ReduceOnly Order is rejected.")
            order.locked = Decimal(0)
            return
        margin = price * order.orig_qty / self.leverage_of(rules.symbol)
        if margin > self.available():
            raise errors.BinanceError(400, -2019, "Margin is insufficient.")
        self.open_order_margin += margin
        order.locked = margin

    def settle(self, rules: SymbolRules, order: Order, price: Decimal, qty: Decimal, commission: Decimal) -> Decimal:
        release = order.locked if qty == order.remaining else order.locked * qty / order.remaining
        self.open_order_margin -= release
        order.locked -= release
        position = self.position(rules.symbol)
        signed = qty if order.side == "BUY" else -qty
        realized = Decimal(0)
        if position.amount == 0 or (position.amount > 0) == (signed > 0):
            total = position.amount + signed
            position.entry_price = (position.entry_price * abs(position.amount) + price * qty) / abs(total)
            position.amount = total
        else:
            closed = min(qty, abs(position.amount))
            direction = 1 if position.amount > 0 else -1
            realized = closed * (price - position.entry_price) * direction
            position.amount += signed
            if position.amount == 0:
                position.entry_price = Decimal(0)
            elif (position.amount > 0) != (direction > 0):
                position.entry_price = price  # past zero: the rest opens at the fill price
        position.realized += realized
        self.wallet += realized - commission
        return realized

    def release(self, rules: SymbolRules, order: Order) -> None:
        self.open_order_margin -= order.locked
        order.locked = Decimal(0)

    def snapshot(self) -> dict[str, Any]:
        return {
            "wallet": self.wallet,
            "asset": self.asset,
            "open_order_margin": self.open_order_margin,
            "leverage": dict(self.leverage),
            "positions": {
                s: {"amount": p.amount, "entry_price": p.entry_price, "realized": p.realized, "update_ms": p.update_ms}
                for s, p in self.positions.items()
            },
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.wallet, self.asset = Decimal(data["wallet"]), data["asset"]
        self.open_order_margin = Decimal(data["open_order_margin"])
        self.leverage = {s: int(v) for s, v in data["leverage"].items()}
        self.positions = {
            s: Position(s, Decimal(p["amount"]), Decimal(p["entry_price"]), Decimal(p["realized"]), p["update_ms"])
            for s, p in data["positions"].items()
        }

    def change(self, rules: SymbolRules, time_ms: int) -> MarginChange:
        position = self.position(rules.symbol)
        position.update_ms = time_ms
        snapshot = Position(position.symbol, position.amount, position.entry_price, position.realized, time_ms)
        return MarginChange(self.asset, self.wallet, snapshot, time_ms)
