"""How the local commands (``run``, ``rehearse``, ``backtest``) write numbers: one way everywhere.

- counts (events, fills, orders, bars) with thousands separators: ``3,000``;
- amounts of money exactly, as the ledger and the book hold them (every number shown is
  recomputable), without thousands separators (a script reads them back as decimals), without
  trailing zeros (NautilusTrader's ``Money`` pads to its currency's precision, the book does not)
  and without exponents, the currency after: ``164.1625694 USDT``; several currencies joined with
  ``, ``;
- durations in seconds with one decimal: ``0.6s``.

The status a cluster shows rounds PnL to cents for ``kubectl get``; the terminal shows the exact
figures the summary's ``ledger PnL`` line checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal


def count(n: int) -> str:
    return f"{n:,}"


def amount(value: Decimal | str) -> str:
    """``Decimal("177.37281680")`` -> ``"177.3728168"``; ``Decimal("100")`` -> ``"100"``; never ``-0``."""
    exact = Decimal(value).normalize() + 0  # + 0: -0 becomes 0
    return f"{exact:f}"


def money(text: str | None) -> str | None:
    """A ``Money`` as NautilusTrader writes it (``"177.37281680 USDT"``) in ``amount``'s way."""
    if not text:
        return text
    value, _, currency = text.partition(" ")
    return f"{amount(value)} {currency}".rstrip()


def amounts(by_currency: Mapping[str, Decimal | str], empty: str = "0") -> str:
    return ", ".join(f"{amount(v)} {c}" for c, v in sorted(by_currency.items())) or empty


def seconds(s: float) -> str:
    return f"{s:.1f}s"
