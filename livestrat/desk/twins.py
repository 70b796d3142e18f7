"""Live vs paper twin, side by side (``spec.twin``; docs/promotion.md, "Keep a paper twin").

What the live strategy got at the venue beside what the same spec got in the sandbox on the same market data:
PnL, slippage against each order's arrival price, and fill rate. Every figure is the one each runtime reports in
its own status (recomputable from its own ledger: docs/runtime.md); the desk only puts them side by side and
subtracts. A figure a runtime does not report (an older runtime, no order yet) is shown as ``-``, never as 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from rich.table import Table

from livestrat.desk.fleet import Money, StrategyRow, money_text


def find_twin(live: StrategyRow, rows: Iterable[StrategyRow]) -> StrategyRow | None:
    """The paper twin of ``live`` among ``rows``: the one whose twin label names it, in its namespace."""
    return next((r for r in rows if r.twin_of == live.name and r.namespace == live.namespace), None)


def _bps(text: str | None) -> Decimal | None:
    try:
        value = Decimal(text) if text else None
    except InvalidOperation:
        return None
    return value if value is not None and value.is_finite() else None


@dataclass(frozen=True)
class Side:
    """One side's figures, as its runtime reports them."""

    phase: str
    total_pnl: Money
    realized_pnl: Money
    fills: int
    orders_submitted: int | None
    orders_filled: int | None
    slippage_bps: Decimal | None

    @classmethod
    def of(cls, each: StrategyRow) -> Side:
        trading = each.status.trading
        return cls(
            phase=each.phase,
            total_pnl=each.total_pnl,
            realized_pnl=each.realized_pnl,
            fills=each.fills,
            orders_submitted=trading.orders_submitted if trading else None,
            orders_filled=trading.orders_filled if trading else None,
            slippage_bps=_bps(trading.slippage_bps) if trading else None,
        )

    @property
    def fill_rate(self) -> Decimal | None:
        """Orders with a fill, of the orders submitted; None before the first order."""
        if not self.orders_submitted or self.orders_filled is None:
            return None
        return Decimal(self.orders_filled) / Decimal(self.orders_submitted)


def _difference(live: Money, twin: Money) -> dict[str, Decimal]:
    return {c: live.get(c, Decimal(0)) - twin.get(c, Decimal(0)) for c in sorted(set(live) | set(twin))}


def _rate_text(side: Side) -> str:
    rate = side.fill_rate
    if rate is None:
        return "-"
    return f"{rate * 100:.1f}% ({side.orders_filled}/{side.orders_submitted})"


def _bps_text(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:.2f} bps"


@dataclass(frozen=True)
class TwinComparison:
    live_name: str
    twin_name: str
    live: Side
    twin: Side

    @classmethod
    def of(cls, live: StrategyRow, twin: StrategyRow) -> TwinComparison:
        return cls(live.name, twin.name, Side.of(live), Side.of(twin))

    @property
    def pnl_gap(self) -> dict[str, Decimal]:
        """Live total PnL minus the twin's, per currency: what trading for real cost (negative) or gained."""
        return _difference(self.live.total_pnl, self.twin.total_pnl)

    @property
    def slippage_gap(self) -> Decimal | None:
        if self.live.slippage_bps is None or self.twin.slippage_bps is None:
            return None
        return self.live.slippage_bps - self.twin.slippage_bps

    @property
    def fill_rate_gap(self) -> Decimal | None:
        """In percentage points."""
        if self.live.fill_rate is None or self.twin.fill_rate is None:
            return None
        return (self.live.fill_rate - self.twin.fill_rate) * 100

    def lines(self) -> list[tuple[str, str, str, str]]:
        """(figure, live, twin, live - twin), as shown."""
        rate_gap = self.fill_rate_gap
        return [
            ("phase", self.live.phase, self.twin.phase, ""),
            ("total PnL", money_text(self.live.total_pnl), money_text(self.twin.total_pnl), money_text(self.pnl_gap)),
            (
                "realized PnL",
                money_text(self.live.realized_pnl),
                money_text(self.twin.realized_pnl),
                money_text(_difference(self.live.realized_pnl, self.twin.realized_pnl)),
            ),
            ("fills", str(self.live.fills), str(self.twin.fills), str(self.live.fills - self.twin.fills)),
            (
                "fill rate",
                _rate_text(self.live),
                _rate_text(self.twin),
                "-" if rate_gap is None else f"{rate_gap:.1f} pp",
            ),
            (
                "slippage",
                _bps_text(self.live.slippage_bps),
                _bps_text(self.twin.slippage_bps),
                _bps_text(self.slippage_gap),
            ),
        ]

    def table(self) -> Table:
        table = Table(box=None, pad_edge=False)
        table.add_column("")
        table.add_column(f"live {self.live_name}")
        table.add_column(f"paper twin {self.twin_name}")
        table.add_column("live - twin")
        for figure, live, twin, gap in self.lines():
            table.add_row(figure, live, twin, gap)
        return table

    def document(self) -> dict[str, Any]:
        def side(name: str, each: Side) -> dict[str, Any]:
            rate = each.fill_rate
            return {
                "name": name,
                "phase": each.phase,
                "totalPnl": {c: f"{v:f}" for c, v in each.total_pnl.items()},
                "realizedPnl": {c: f"{v:f}" for c, v in each.realized_pnl.items()},
                "fills": each.fills,
                "ordersSubmitted": each.orders_submitted,
                "ordersFilled": each.orders_filled,
                "fillRate": None if rate is None else f"{rate:.4f}",
                "slippageBps": None if each.slippage_bps is None else f"{each.slippage_bps:f}",
            }

        gap = self.slippage_gap
        return {
            "live": side(self.live_name, self.live),
            "twin": side(self.twin_name, self.twin),
            "totalPnlGap": {c: f"{v:f}" for c, v in self.pnl_gap.items()},
            "slippageGapBps": None if gap is None else f"{gap:f}",
        }
