"""The report's figures, and NautilusTrader's ``PortfolioAnalyzer`` fed with the run's positions and account.

The ledger keeps fills, not balances: the account is rebuilt from them as a NautilusTrader
``CashAccount`` whose balance in each currency is the starting balance plus what the positions
realized (NautilusTrader's ``Position.realized_pnl``: commissions in the PnL's currency included)
less the commissions paid in other currencies, one ``AccountState`` per fill. The analyzer gets
that account and the positions (``calculate_statistics``), with the statistics NautilusTrader's own
``Portfolio`` registers, so its PnL, returns and trade statistics are NautilusTrader's, not the
report's. Open positions are not marked to market: the ledger holds no price after the last fill
(their unrealized PnL at that fill's price is shown apart).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pandas as pd
from nautilus_trader.accounting.accounts.cash import CashAccount
from nautilus_trader.analysis import (
    AvgLoser,
    AvgWinner,
    Expectancy,
    LongRatio,
    MaxLoser,
    MaxWinner,
    MinLoser,
    MinWinner,
    PortfolioAnalyzer,
    ProfitFactor,
    ReturnsAverage,
    ReturnsAverageLoss,
    ReturnsAverageWin,
    ReturnsVolatility,
    RiskReturnRatio,
    SharpeRatio,
    SortinoRatio,
    WinRate,
)
from nautilus_trader.core.datetime import unix_nanos_to_dt
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.events import AccountState
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import AccountBalance, Currency, Money, Price
from nautilus_trader.model.position import Position

from strategy_runtime.ledger.records import FillRecord
from strategy_runtime.run_report.positions import REPORT_ACCOUNT, PositionBook, instruments_for
from strategy_runtime.slippage import SlippageTally

# The statistics NautilusTrader's Portfolio registers with its analyzer (portfolio.pyx), in its order.
STATISTICS = (
    MaxWinner,
    AvgWinner,
    MinWinner,
    MinLoser,
    AvgLoser,
    MaxLoser,
    Expectancy,
    WinRate,
    ReturnsVolatility,
    ReturnsAverage,
    ReturnsAverageLoss,
    ReturnsAverageWin,
    SharpeRatio,
    SortinoRatio,
    ProfitFactor,
    RiskReturnRatio,
    LongRatio,
)


@dataclass(frozen=True)
class OpenPosition:
    instrument_id: str
    side: str
    quantity: Decimal
    average_price: Decimal
    last_price: Decimal  # of the instrument's last fill
    unrealized_pnl: Decimal  # at last_price
    currency: str


@dataclass(frozen=True)
class Statistics:
    """NautilusTrader's ``PortfolioAnalyzer`` output: PnL statistics per currency, returns, general."""

    pnls: dict[str, dict[str, Any]] = field(default_factory=dict)
    returns: dict[str, Any] = field(default_factory=dict)
    general: dict[str, Any] = field(default_factory=dict)
    returns_series: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))


@dataclass(frozen=True)
class RunFigures:
    fills: int
    realized_pnl: dict[str, Decimal]  # per currency: the positions' realized PnL, commissions in it included
    commissions: dict[str, Decimal]  # per currency, as the fills paid them
    starting_balances: dict[str, Decimal]
    final_equity: dict[str, Decimal]  # starting balance + realized PnL - commissions in other currencies
    open_positions: list[OpenPosition]
    equity: dict[str, list[tuple[pd.Timestamp, Decimal]]]  # per currency: the balance after each fill
    statistics: Statistics
    trades: int  # positions (a round trip each, the last maybe still open)
    first_fill: pd.Timestamp | None
    last_fill: pd.Timestamp | None
    # Against the arrival price, as the status shows it (``strategy_runtime.slippage``); None: no fill has one.
    slippage_bps: Decimal | None = None
    fills_with_arrival_price: int = 0


def _state(balances: Mapping[str, Decimal], ts: int) -> AccountState:
    money = [(Currency.from_str(code), amount) for code, amount in sorted(balances.items())]
    return AccountState(
        account_id=REPORT_ACCOUNT,
        account_type=AccountType.CASH,
        base_currency=None,
        reported=False,
        balances=[AccountBalance(Money(a, c), Money(0, c), Money(a, c)) for c, a in money],
        margins=[],
        info={},
        event_id=UUID4(),
        ts_event=ts,
        ts_init=ts,
    )


def _number(value: Any) -> Any:
    """A statistic as JSON takes it: NaN (no losing trade to average, …) as None."""
    return None if isinstance(value, float) and math.isnan(value) else value


def _pnl_currency(position: Position) -> str:
    return position.realized_pnl.currency.code if position.realized_pnl is not None else position.quote_currency.code


def analyse(
    fills: Sequence[FillRecord],
    starting_balances: Mapping[str, Decimal],
    instruments: Mapping[str, Instrument] | None = None,
) -> RunFigures:
    """The figures of ``fills`` (in the ledger's order) on an account that started with ``starting_balances``."""
    if not fills:
        return RunFigures(
            0, {}, {}, dict(starting_balances), dict(starting_balances), [], {}, Statistics(), 0, None, None
        )
    book = PositionBook(instruments_for(fills, instruments or {}))
    # Without starting balances (a live ledger), the account starts at 0 in the fills' currencies: equity is PnL.
    traded = {c for f in fills for c in (f.quote_currency or f.commission_currency, f.commission_currency)}
    balances = dict(starting_balances) or dict.fromkeys(sorted(traded), Decimal(0))
    # borrowing allowed: a balance below 0 (a live ledger's, which starts at 0) is a loss to show, not an error
    account = CashAccount(_state(balances, fills[0].ts_event), allow_borrowing=True)
    equity: dict[str, list[tuple[pd.Timestamp, Decimal]]] = {}
    commissions: dict[str, Decimal] = {}
    booked: dict[tuple[int, str], Decimal] = {}  # (position, currency) -> what it has added to the balance
    last_price: dict[str, Decimal] = {}
    slippage = SlippageTally()  # the status's figure, recomputed over the same pass
    for fill in fills:
        slippage.add(fill)
        commissions[fill.commission_currency] = commissions.get(fill.commission_currency, Decimal(0)) + fill.commission
        last_price[fill.instrument_id] = fill.price
        for position in book.apply(fill):
            for currency, amount in _adds(position).items():
                before = booked.get((id(position), currency), Decimal(0))
                booked[(id(position), currency)] = amount
                balances[currency] = balances.get(currency, Decimal(0)) + amount - before
        when = pd.Timestamp(unix_nanos_to_dt(fill.ts_event))
        for currency, amount in balances.items():
            equity.setdefault(currency, []).append((when, amount))
        account.apply(_state(balances, fill.ts_event))

    realized: dict[str, Decimal] = {}
    for position in book.positions:
        if position.realized_pnl is not None:
            code = position.realized_pnl.currency.code
            realized[code] = realized.get(code, Decimal(0)) + position.realized_pnl.as_decimal()
    return RunFigures(
        fills=len(fills),
        realized_pnl=realized,
        commissions=commissions,
        starting_balances=dict(starting_balances),
        final_equity=balances,
        open_positions=[_open(p, last_price[p.instrument_id.value]) for p in book.positions if p.is_open],
        equity=equity,
        statistics=_statistics(account, book.positions),
        trades=len(book.positions),
        first_fill=pd.Timestamp(unix_nanos_to_dt(fills[0].ts_event)),
        last_fill=pd.Timestamp(unix_nanos_to_dt(fills[-1].ts_event)),
        slippage_bps=slippage.bps(),
        fills_with_arrival_price=slippage.fills,
    )


def _adds(position: Position) -> dict[str, Decimal]:
    """What ``position`` has added to the account so far, per currency: its realized PnL (commissions in its
    currency included), less the commissions it paid in any other."""
    code = _pnl_currency(position)
    adds = {code: position.realized_pnl.as_decimal() if position.realized_pnl is not None else Decimal(0)}
    for commission in position.commissions():
        if commission.currency.code != code:
            adds[commission.currency.code] = adds.get(commission.currency.code, Decimal(0)) - commission.as_decimal()
    return adds


def _open(position: Position, last_price: Decimal) -> OpenPosition:
    unrealized = position.unrealized_pnl(Price(float(last_price), position.price_precision))
    return OpenPosition(
        instrument_id=position.instrument_id.value,
        side=position.side.name,
        quantity=position.quantity.as_decimal(),
        average_price=Decimal(str(position.avg_px_open)),
        last_price=last_price,
        unrealized_pnl=unrealized.as_decimal(),
        currency=unrealized.currency.code,
    )


def _statistics(account: CashAccount, positions: list[Position]) -> Statistics:
    analyzer = PortfolioAnalyzer()
    for statistic in STATISTICS:
        analyzer.register_statistic(statistic())
    analyzer.calculate_statistics(account, positions)
    pnls = {
        currency.code: {k: _number(v) for k, v in analyzer.get_performance_stats_pnls(currency).items()}
        for currency in sorted(analyzer.currencies, key=lambda c: c.code)
    }
    return Statistics(
        pnls=pnls,
        returns={k: _number(v) for k, v in analyzer.get_performance_stats_returns().items()},
        general={k: _number(v) for k, v in analyzer.get_performance_stats_general().items()},
        returns_series=analyzer.returns(),
    )
