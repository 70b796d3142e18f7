"""A paper run against the backtest of the same spec over the same catalog and window.

The backtest is the paper runtime's correctness oracle (docs/runtime.md, "Backtest oracle"): the same
strategy on the same data gives the same fills, with the same venue trade ids. So fills are matched
by (instrument, trade id), as ``livestrat rehearse`` matches the venue's trades against the ledger's,
and for each pair the price (and side and quantity) compared; PnL per currency is the paper run's
(its positions) against what the backtest's portfolio realized. A paper run halted early by hand
(Ctrl-C) or by a risk limit the backtest did not meet shows up here as fills only in the backtest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from nautilus_trader.model.objects import Currency

from strategy_runtime.ledger.records import FillRecord

SHOWN = 10  # unmatched trade ids and differences listed (all are counted)


@dataclass(frozen=True)
class FillDifference:
    instrument_id: str
    trade_id: str
    what: str  # price, side or quantity
    paper: str
    backtest: str
    difference: str | None  # paper - backtest, for a price or a quantity


@dataclass(frozen=True)
class PaperVsBacktest:
    paper_fills: int
    backtest_fills: int
    matched: int
    only_in_paper: tuple[str, ...]
    only_in_backtest: tuple[str, ...]
    differences: tuple[FillDifference, ...]
    paper_realized_pnl: Mapping[str, Decimal]
    backtest_realized_pnl: Mapping[str, Decimal]

    @property
    def price_differences(self) -> list[FillDifference]:
        return [d for d in self.differences if d.what == "price"]

    @property
    def same_pnl(self) -> bool:
        currencies = {*self.paper_realized_pnl, *self.backtest_realized_pnl}
        return all(
            self.paper_realized_pnl.get(c, Decimal(0)) == self.backtest_realized_pnl.get(c, Decimal(0))
            for c in currencies
        )

    @property
    def agrees(self) -> bool:
        return (
            self.paper_fills == self.backtest_fills
            and not self.only_in_paper
            and not self.only_in_backtest
            and not self.differences
            and self.same_pnl
        )

    def verdict(self) -> str:
        if self.agrees:
            return f"the same {self.paper_fills} fills at the same prices, the same realized PnL"
        parts = [f"paper {self.paper_fills} fills, backtest {self.backtest_fills}"]
        if self.only_in_paper or self.only_in_backtest:
            parts.append(f"{len(self.only_in_paper)} only in paper, {len(self.only_in_backtest)} only in the backtest")
        if self.differences:
            parts.append(f"{len(self.differences)} matched fills differ ({len(self.price_differences)} in price)")
        if not self.same_pnl:
            parts.append("realized PnL differs")
        return "DIFFER: " + "; ".join(parts)


def _key(fill: FillRecord) -> str:
    return f"{fill.instrument_id}#{fill.trade_id}"


def _at_precision(amounts: Mapping[str, str | Decimal]) -> dict[str, Decimal]:
    """Amounts at their currency's precision, as NautilusTrader's Money keeps them."""
    return {c: Decimal(a).quantize(Decimal(1).scaleb(-Currency.from_str(c).precision)) for c, a in amounts.items()}


def compare(
    paper: Sequence[FillRecord],
    backtest: Sequence[FillRecord],
    paper_pnl: Mapping[str, Decimal],
    backtest_pnl: Mapping[str, str | Decimal],
) -> PaperVsBacktest:
    by_key = {_key(f): f for f in backtest}
    paper_keys = {_key(f) for f in paper}
    differences: list[FillDifference] = []
    matched = 0
    for fill in paper:
        other = by_key.get(_key(fill))
        if other is None:
            continue
        matched += 1
        for what in ("side", "quantity", "price"):
            mine, theirs = getattr(fill, what), getattr(other, what)
            if mine != theirs:
                delta = f"{mine - theirs:f}" if isinstance(mine, Decimal) else None
                differences.append(
                    FillDifference(fill.instrument_id, fill.trade_id, what, str(mine), str(theirs), delta)
                )
    return PaperVsBacktest(
        paper_fills=len(paper),
        backtest_fills=len(backtest),
        matched=matched,
        only_in_paper=tuple(sorted(paper_keys - set(by_key))),
        only_in_backtest=tuple(sorted(set(by_key) - paper_keys)),
        differences=tuple(differences),
        paper_realized_pnl=_at_precision(paper_pnl),
        backtest_realized_pnl=_at_precision(backtest_pnl),
    )
