"""Numbers in the local commands' output are written one way: counts with separators, exact amounts, 0.1 s."""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.objects import Money

from strategy_runtime.local import figures
from strategy_runtime.local.summary import PositionLine, TradingSummary


def test_amounts_are_exact_without_padding_or_exponents_and_counts_have_separators():
    padded = str(Money(Decimal("177.3728168"), USDT))  # NautilusTrader pads to the currency's precision
    assert padded == "177.37281680 USDT"
    assert figures.money(padded) == "177.3728168 USDT"
    assert figures.amount(Decimal("100.00")) == "100"  # not 1E+2
    assert figures.amount(Decimal("-0.000")) == "0"
    assert figures.amounts({"USDT": Decimal("1234567.50"), "BTC": Decimal("0.00100000")}) == (
        "0.001 BTC, 1234567.5 USDT"  # no thousands separators in amounts: scripts read them back as decimals
    )
    assert figures.count(1234567) == "1,234,567"
    assert figures.seconds(0.3912) == "0.4s"


def test_the_backtest_summary_writes_counts_and_amounts_as_the_run_summary_does():
    summary = TradingSummary(
        fills=[object()] * 1234,  # type: ignore[list-item]  # only counted
        orders=1300,
        orders_denied=0,
        orders_rejected=2,
        positions=[
            PositionLine(
                instrument_id="BTCUSDT.BINANCE",
                side="FLAT",
                quantity=Decimal(0),
                avg_price=None,
                realized_pnl=str(Money(Decimal("177.3728168"), USDT)),
                unrealized_pnl=None,
            )
        ],
        realized_pnl={"USDT": "177.37281680"},
    )
    assert summary.lines() == [
        "fills: 1,234  orders: 1,300 (denied 0, rejected 2)",
        "realized PnL: 177.3728168 USDT",
        "position BTCUSDT.BINANCE: FLAT 0  realized 177.3728168 USDT  unrealized -",
    ]
