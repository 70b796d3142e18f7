"""A fill the venue reports reaches the ledger, even when applying it makes the node fail.

NautilusTrader applies a fill to the order, then to the account, and only then publishes it; when the
account refuses it (a short sale on a CASH account: ``AccountBalanceNegative``) the node stops and the
event never reaches the bus. The venue executed it all the same: the ledger must say so.
"""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.model.events import OrderFilled

from livestrat.api.contract import ExitCode
from strategy_runtime.pnl import recompute_pnl
from tests.support.runtime import BTC, local_run, paper_manifest, runtime_config

CASH_VENUE = {"adapter": "sandbox", "name": "BINANCE", "accountType": "cash", "startingBalances": ["100000 USDT"]}


async def test_a_fill_the_account_refuses_is_in_the_ledger(tmp_path):
    # EMA cross on a cash account: long, then on the cross down it closes and sells short, which a cash
    # account cannot hold.
    config = runtime_config(paper_manifest(venue=CASH_VENUE, bars=1000), tmp_path / "catalog")
    run = await local_run(config, exit_code=ExitCode.FAILED)  # the node fails on the third fill
    outcome = run.outcome
    executed = [e for o in run.orders for e in o.events if isinstance(e, OrderFilled)]

    assert "AccountBalanceNegative" in outcome.reason  # the node did fail on it
    assert outcome.ledger_fills is not None
    assert len(executed) == 3
    assert sorted(f.trade_id for f in outcome.ledger_fills) == sorted(e.trade_id.value for e in executed)
    # What the ledger now says the strategy holds: short, as the venue left it (not "flat").
    book = recompute_pnl(outcome.ledger_fills).instruments[BTC]
    assert book.position == Decimal("-0.010")


def test_the_run_summary_shows_what_the_ledger_leaves_open(tmp_path, capsys):
    import yaml

    from livestrat.cli import main

    manifest = paper_manifest(venue=CASH_VENUE, bars=1000)
    path = tmp_path / "cash.yaml"
    path.write_text(yaml.safe_dump(manifest))
    assert main(["run", "--quiet", "--workdir", str(tmp_path / "work"), str(path)]) == 1  # the node failed
    out = capsys.readouterr().out
    assert "recomputed from the ledger's 3 fills (agrees)" in out  # the figures shown are the fills'
    assert f"position:       SHORT 0.010000 {BTC}" in out  # at the instrument's size precision
    assert "the node:       its own portfolio says 27.38" in out and "flat: it did not apply every fill" in out
