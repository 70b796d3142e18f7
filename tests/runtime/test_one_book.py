"""Every PnL figure a trader reads comes from one book, and that book is the ledger's fills.

The status (``trading.realizedPnl``, ``unrealizedPnl``, ``totalPnl``, ``positions``), ``/state``, the
metrics and the run's summary all read the book the risk guard keeps from the very records the ledger
stores; recomputing the ledger's fills afterwards gives the same figures. The node's own portfolio is
not read for them: it can disagree (a fill it never applied, below), and then the status must tell the
fills' truth, not the portfolio's.
"""

from __future__ import annotations

from decimal import Decimal

from livestrat.api.contract import ExitCode
from strategy_runtime.pnl import recompute_pnl
from strategy_runtime.portfolio_view import money_text
from tests.support.runtime import BTC, local_run, paper_manifest, runtime_config

CASH_VENUE = {"adapter": "sandbox", "name": "BINANCE", "accountType": "cash", "startingBalances": ["100000 USDT"]}


def ledger_figures(fills) -> tuple[str | None, dict[str, tuple[str, Decimal]]]:
    """Realized PnL (as the status writes money) and the open positions, recomputed from ``fills``."""
    book = recompute_pnl(fills).instruments
    realized: dict[str, Decimal] = {}
    for each in book.values():
        realized[each.currency or ""] = realized.get(each.currency or "", Decimal(0)) + each.net_realized_pnl
    positions = {
        i: ("LONG" if b.position > 0 else "SHORT", abs(b.position)) for i, b in book.items() if b.position != 0
    }
    return money_text(realized), positions


def shown_positions(trading) -> dict[str, tuple[str, Decimal]]:
    return {p.instrument: (p.side, Decimal(p.quantity)) for p in trading.positions}


async def test_the_status_tells_the_fills_truth_when_the_node_missed_one(tmp_path):
    # The node fails on the third fill (a short sale on a cash account): its portfolio says flat with the
    # first two fills' PnL; the venue executed three.
    config = runtime_config(paper_manifest(venue=CASH_VENUE, bars=1000), tmp_path / "catalog")
    run = await local_run(config, exit_code=ExitCode.FAILED)
    trading = run.outcome.snapshot.trading
    realized, positions = ledger_figures(run.ledger_fills)

    assert len(run.ledger_fills) == 3
    assert trading.realized_pnl == realized
    assert shown_positions(trading) == positions == {BTC: ("SHORT", Decimal("0.010"))}
    assert run.outcome.pnl is not None and money_text(run.outcome.pnl.realized) == realized


async def test_status_state_metrics_and_summary_agree_with_the_ledger_with_a_position_open(tmp_path):
    manifest = paper_manifest(bars=1000)
    manifest["spec"]["haltPolicy"] = "cancelOrders"  # the position stays open at the end
    config = runtime_config(manifest, tmp_path / "catalog")
    run = await local_run(config)
    trading = run.outcome.snapshot.trading
    realized, positions = ledger_figures(run.ledger_fills)

    assert positions, "the run ends with a position open"
    assert trading.realized_pnl == realized
    assert shown_positions(trading) == positions
    assert trading.unrealized_pnl is not None
    assert all(p.unrealized_pnl is not None for p in trading.positions)
    # what a RiskBudget adds up: the notional at the mark price, recomputable from the position shown
    for position in trading.positions:
        amount, currency = position.notional.split()
        assert (currency, Decimal(amount)) == (
            "USDT",
            (Decimal(position.quantity) * Decimal(position.mark_price)).quantize(Decimal("0.01")),
        )
    pnl = run.outcome.pnl
    assert pnl is not None
    assert money_text(pnl.realized) == realized
    assert money_text(pnl.unrealized) == trading.unrealized_pnl
    assert money_text(pnl.total) == trading.total_pnl
