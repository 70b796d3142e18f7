"""The report's figures from hand-written fills: NautilusTrader's Positions and PortfolioAnalyzer fed from a ledger's
records, checked against the ledger's own recomputation (``strategy_runtime.pnl``, itself checked against
NautilusTrader's ``Position`` in test_pnl.py); and the paper-vs-backtest comparison."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from strategy_runtime.pnl import recompute_pnl
from strategy_runtime.run_report.analysis import analyse
from strategy_runtime.run_report.comparison import compare
from tests.support.ledger import make_fill, trade

D = Decimal


def net_realized(fills) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for each in recompute_pnl(fills).instruments.values():
        out[each.currency] = out.get(each.currency, D(0)) + each.net_realized_pnl
    return out


def test_a_fill_through_zero_closes_one_position_and_opens_the_next_with_its_share_of_the_commission():
    # long 10 @ 100; sell 15 @ 110 closes it (+100) and opens short 5 @ 110; buy 5 @ 100 closes that (+50)
    fills = [
        trade(0, "BUY", "10", "100", instrument="EURUSD.SIM", quote="USD", ts=1, fee="1"),
        trade(1, "SELL", "15", "110", instrument="EURUSD.SIM", quote="USD", ts=2, fee="1.5"),
        trade(2, "BUY", "5", "100", instrument="EURUSD.SIM", quote="USD", ts=3, fee="0.5"),
    ]
    figures = analyse(fills, {"USD": D(1000)})
    assert figures.trades == 2  # two round trips: the long and the short
    assert figures.realized_pnl == net_realized(fills) == {"USD": D(147)}
    assert figures.commissions == {"USD": D(3)}
    assert figures.final_equity == {"USD": D(1147)}
    assert figures.open_positions == []
    assert figures.statistics.pnls["USD"]["Win Rate"] == 1.0
    assert figures.statistics.pnls["USD"]["PnL (total)"] == 147.0


def test_a_ledger_alone_is_booked_per_instrument_and_currency_with_equity_starting_at_zero():
    perp = [make_fill(i) for i in range(30)]  # BTCUSDT-PERP.BINANCE in USDT
    euro = [
        trade(0, "BUY", "2", "1.1", instrument="EURUSD.SIM", quote="USD", ts=10, fee="0.01"),
        trade(1, "SELL", "2", "1.2", instrument="EURUSD.SIM", quote="USD", ts=20, fee="0.01"),
    ]
    fills = sorted(perp + euro, key=lambda f: f.ts_event)
    figures = analyse(fills, {})
    expected = {c: a.quantize(D("0.00000001")) for c, a in net_realized(fills).items()}
    assert {c: a.quantize(D("0.00000001")) for c, a in figures.realized_pnl.items()} == expected
    assert figures.realized_pnl["USD"] == D("0.18")
    assert figures.commissions == dict(recompute_pnl(fills).commissions)
    # no starting balance known: the equity is the PnL (the last perp position may still be open, not marked)
    assert figures.final_equity == figures.realized_pnl
    assert set(figures.statistics.pnls) == {"USD", "USDT"}


def test_an_open_position_is_listed_with_its_pnl_at_the_last_fills_price_and_not_counted_in_equity():
    fills = [
        trade(0, "BUY", "2", "100", instrument="EURUSD.SIM", quote="USD", ts=1),
        trade(1, "SELL", "1", "110", instrument="EURUSD.SIM", quote="USD", ts=2),
    ]
    figures = analyse(fills, {"USD": D(1000)})
    (held,) = figures.open_positions
    assert (held.side, held.quantity, held.average_price, held.last_price) == ("LONG", D(1), D(100), D(110))
    assert held.unrealized_pnl == D(10)
    assert figures.realized_pnl == {"USD": D(10)} and figures.final_equity == {"USD": D(1010)}


def test_no_fills_no_figures_and_no_statistics():
    figures = analyse([], {"USDT": D(100000)})
    assert (figures.fills, figures.trades, figures.realized_pnl, figures.commissions) == (0, 0, {}, {})
    assert figures.final_equity == {"USDT": D(100000)}
    assert figures.statistics.pnls == {} and figures.statistics.returns_series.empty


def test_paper_against_a_backtest_it_differs_from_names_every_difference():
    backtest = [make_fill(i) for i in range(10)]
    paper = [*backtest[:3], dataclasses.replace(backtest[3], price=backtest[3].price + D("0.5")), *backtest[4:8]]
    same = compare(backtest, backtest, {"USDT": D("1.5")}, {"USDT": "1.50000000"})
    assert same.agrees and same.matched == 10 and "the same 10 fills" in same.verdict()

    differs = compare(paper, backtest, {"USDT": D("1.5")}, {"USDT": "2.5"})
    assert not differs.agrees
    assert (differs.paper_fills, differs.backtest_fills, differs.matched) == (8, 10, 8)
    assert differs.only_in_backtest == tuple(f"{f.instrument_id}#{f.trade_id}" for f in backtest[8:])
    assert differs.only_in_paper == ()
    (price,) = differs.price_differences
    assert (price.trade_id, price.difference) == (backtest[3].trade_id, "0.50")
    verdict = differs.verdict()
    assert "paper 8 fills, backtest 10" in verdict and "1 in price" in verdict and "realized PnL differs" in verdict
