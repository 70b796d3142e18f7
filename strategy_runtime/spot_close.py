"""How much of a spot position a close can sell: what the account holds, on the symbol's step.

Binance spot charges a buy's commission in the asset it buys (its ``faqs/commission_faq.md``; unless
BNB pays): a buy of 0.001 BTC at 0.1 % leaves the account 0.000999 BTC. NautilusTrader's position
takes that commission off too (``Position`` books a base-currency commission as a quantity
adjustment), so the position says 0.000999, a quantity Binance's LOT_SIZE filter refuses (BTCUSDT
steps 0.00001: -1013 "Filter failure: LOT_SIZE"); a position the node rounded, or one a strategy
counted itself, can say more than the account holds (-2010 "Account has insufficient balance for
requested action."). Re-sending such a close cannot succeed.

So a close of a long spot position (a sell) asks for the account's free base balance, never more
than the position; any spot close is rounded down to the instrument's size increment. What is left
below the step, the minimum quantity or the minimum notional is **dust**: no order can close it,
and the halt says so (:class:`Dust`) instead of trying. A short is dust the same way: a buy that
closes a short pays its commission in the base too, leaving the position short by that commission
(0.000001 BTC after buying back 0.001), which no order can buy back (-1013 "Filter failure:
NOTIONAL"). Any other instrument is closed whole, as NautilusTrader's ``Strategy.close_position``
would.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

from nautilus_trader.model.enums import PositionSide, PriceType
from nautilus_trader.model.instruments import CurrencyPair
from nautilus_trader.model.objects import Quantity
from nautilus_trader.model.position import Position


@dataclass(frozen=True)
class Dust:
    """What of a position no order can close, and why."""

    instrument_id: str
    side: str  # the position's: LONG or SHORT
    position: Decimal  # what the node's position still says
    currency: str  # the base currency
    held: Decimal | None  # a long's: the account's free balance of the base currency
    why: str

    def text(self) -> str:
        held = f", the account holds {self.held.normalize():f} {self.currency} free" if self.held is not None else ""
        return (
            f"{self.instrument_id}: dust left unclosed, {self.side} {self.position.normalize():f} {self.currency}"
            f"{held}: {self.why}"
        )


def closing_quantity(position: Position, instrument: Any, cache: Any) -> Quantity | Dust:
    """The quantity a close of ``position`` should ask for, or the Dust no order can close."""
    quantity: Quantity = position.quantity
    if not isinstance(instrument, CurrencyPair):
        return quantity
    wanted = quantity.as_decimal()
    long = position.side == PositionSide.LONG
    held: Decimal | None = None
    if long:
        account = cache.account_for_venue(instrument.id.venue)
        free = account.balance_free(instrument.base_currency) if account is not None else None
        held = free.as_decimal() if free is not None else None  # none known: the venue's answer will tell
    step = instrument.size_increment.as_decimal()
    closable = (min(wanted, held if held is not None else wanted) / step).to_integral_value(rounding=ROUND_DOWN) * step

    def dust(why: str) -> Dust:
        side = "LONG" if long else "SHORT"
        return Dust(str(instrument.id), side, wanted, instrument.base_currency.code, held, why)

    minimum = instrument.min_quantity.as_decimal() if instrument.min_quantity is not None else step
    if closable <= 0 or closable < minimum:
        return dust(f"below the symbol's minimum quantity {minimum.normalize():f} (step {step.normalize():f})")
    side = PriceType.BID if long else PriceType.ASK
    price = cache.price(instrument.id, side) or cache.price(instrument.id, PriceType.LAST)
    if instrument.min_notional is not None and price is not None:
        notional = closable * price.as_decimal()
        if notional < instrument.min_notional.as_decimal():
            return dust(f"worth {notional:.2f}, below the symbol's minimum notional {instrument.min_notional}")
    if closable == wanted:
        return quantity
    return Quantity.from_str(f"{closable:.{instrument.size_precision}f}")
