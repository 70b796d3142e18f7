"""How much of a spot position a close can sell: what the account holds, on the symbol's step.

Binance spot charges a buy's commission in the asset it buys (its ``faqs/commission_faq.md``; unless
BNB pays): a buy of 0.001 BTC at 0.1 % leaves the account 0.000999 BTC. NautilusTrader's position
takes that commission off too (``Position`` books a base-currency commission as a quantity
adjustment), so the position says 0.000999, a quantity Binance's LOT_SIZE filter refuses (BTCUSDT
steps 0.00001: -1013 "Filter failure: LOT_SIZE"); a position the node rounded, or one a strategy
counted itself, can say more than the account holds (-2010 "Account has insufficient balance for
requested action."). Re-sending such a close cannot succeed.

So a close of a long spot position (a sell) asks for the account's free base balance, never more
than the position, rounded down to the instrument's size increment. What is left below the step,
the minimum quantity or the minimum notional is **dust**: no order can sell it, and the halt says
so (:class:`Dust`) instead of trying. A short (a buy back) and any non-spot instrument are closed
whole, as NautilusTrader's ``Strategy.close_position`` would.
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
    """What of a position no order can sell, and why."""

    instrument_id: str
    position: Decimal  # what the node's position still says
    held: Decimal  # the account's free balance of the base currency
    currency: str
    why: str

    def text(self) -> str:
        held, position = f"{self.held.normalize():f}", f"{self.position.normalize():f}"
        return (
            f"{self.instrument_id}: dust left unsold, the account holds {held} {self.currency} free (the position "
            f"{position}): {self.why}"
        )


def closing_quantity(position: Position, instrument: Any, cache: Any) -> Quantity | Dust:
    """The quantity a close of ``position`` should ask for, or the Dust no order can sell."""
    quantity: Quantity = position.quantity
    if not isinstance(instrument, CurrencyPair) or position.side != PositionSide.LONG:
        return quantity
    account = cache.account_for_venue(instrument.id.venue)
    free = account.balance_free(instrument.base_currency) if account is not None else None
    if free is None:
        return quantity  # no balance known: the venue's answer will tell
    wanted = quantity.as_decimal()
    held = free.as_decimal()
    step = instrument.size_increment.as_decimal()
    sellable = (min(wanted, held) / step).to_integral_value(rounding=ROUND_DOWN) * step
    code = instrument.base_currency.code

    def dust(why: str) -> Dust:
        return Dust(str(instrument.id), wanted, held, code, why)

    minimum = instrument.min_quantity.as_decimal() if instrument.min_quantity is not None else step
    if sellable <= 0 or sellable < minimum:
        return dust(f"below the symbol's minimum quantity {minimum.normalize():f} (step {step.normalize():f})")
    price = cache.price(instrument.id, PriceType.BID) or cache.price(instrument.id, PriceType.LAST)
    if instrument.min_notional is not None and price is not None:
        notional = sellable * price.as_decimal()
        if notional < instrument.min_notional.as_decimal():
            return dust(f"worth {notional:.2f}, below the symbol's minimum notional {instrument.min_notional}")
    if sellable == wanted:
        return quantity
    return Quantity.from_str(f"{sellable:.{instrument.size_precision}f}")
