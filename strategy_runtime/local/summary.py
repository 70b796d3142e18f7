"""What a node traded, read from its cache and portfolio: fills, PnL, positions.

Used for the backtest's summary and to compare a paper replay with its backtest. Both kinds
of node keep every ``OrderFilled`` in the cache, so the same function reads either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from nautilus_trader.cache.cache import Cache
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.portfolio.base import PortfolioFacade

from strategy_runtime.ledger.records import FillRecord, from_order_filled
from strategy_runtime.local import figures


def _natural(text: str) -> tuple[Any, ...]:
    # Venue trade ids end in a counter ("BINANCE-1-999" < "BINANCE-1-1000").
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


def fills_in(cache: Cache, strategy_key: str) -> list[FillRecord]:
    """Every fill the cache holds, in execution order: by venue time, then by the venue's trade counter."""
    records = [
        from_order_filled(event, strategy_key)
        for order in cache.orders()
        for event in order.events
        if isinstance(event, OrderFilled)
    ]
    return sorted(records, key=lambda f: (f.ts_event, _natural(f.trade_id)))


@dataclass(frozen=True)
class PositionLine:
    instrument_id: str
    side: str  # LONG, SHORT or FLAT
    quantity: Decimal  # absolute
    avg_price: Decimal | None
    realized_pnl: str | None
    unrealized_pnl: str | None


@dataclass(frozen=True)
class TradingSummary:
    fills: list[FillRecord]
    orders: int
    orders_denied: int
    orders_rejected: int
    positions: list[PositionLine] = field(default_factory=list)
    realized_pnl: dict[str, str] = field(default_factory=dict)  # currency -> amount, over all instruments

    def lines(self) -> list[str]:
        """The summary as a person reads it."""
        out = [
            f"fills: {figures.count(len(self.fills))}  orders: {figures.count(self.orders)} "
            f"(denied {figures.count(self.orders_denied)}, rejected {figures.count(self.orders_rejected)})"
        ]
        out.append(f"realized PnL: {figures.amounts(self.realized_pnl, empty='none')}")
        for p in self.positions:
            price = f" @ {p.avg_price}" if p.avg_price is not None else ""
            out.append(
                f"position {p.instrument_id}: {p.side} {p.quantity}{price}  "
                f"realized {figures.money(p.realized_pnl) or '-'}  unrealized {figures.money(p.unrealized_pnl) or '-'}"
            )
        return out


def summarize(cache: Cache, portfolio: PortfolioFacade, instrument_ids: list[str], strategy_key: str) -> TradingSummary:
    orders = cache.orders()
    realized: dict[str, Decimal] = {}
    positions: list[PositionLine] = []
    for text in instrument_ids:
        iid = InstrumentId.from_str(text)
        pnl = portfolio.realized_pnl(iid)
        if pnl is not None:
            realized[pnl.currency.code] = realized.get(pnl.currency.code, Decimal(0)) + pnl.as_decimal()
        net = portfolio.net_position(iid)
        open_positions = cache.positions_open(instrument_id=iid)
        # Flat: no unrealized PnL. (NautilusTrader 1.231's backtest portfolio answers 0 for a flat
        # instrument where a live node's answers None; the summary must not depend on which ran it.)
        upnl = portfolio.unrealized_pnl(iid) if open_positions else None
        avg = open_positions[0].avg_px_open if len(open_positions) == 1 else None
        positions.append(
            PositionLine(
                instrument_id=text,
                side="LONG" if net > 0 else "SHORT" if net < 0 else "FLAT",
                quantity=abs(net),
                avg_price=Decimal(str(avg)) if avg is not None else None,
                realized_pnl=str(pnl) if pnl is not None else None,
                unrealized_pnl=str(upnl) if upnl is not None else None,
            )
        )
    return TradingSummary(
        fills=fills_in(cache, strategy_key),
        orders=len(orders),
        orders_denied=sum(1 for o in orders if o.status_string() == "DENIED"),
        orders_rejected=sum(1 for o in orders if o.status_string() == "REJECTED"),
        positions=positions,
        realized_pnl={ccy: str(amount) for ccy, amount in realized.items()},
    )
