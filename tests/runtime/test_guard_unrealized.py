"""After a fill, the guard's unrealized PnL is what the portfolio computes, wherever the node nets as the book does.

Asking ``Portfolio.unrealized_pnl`` after every position event cost the guard about 20 µs each (the
portfolio recomputes it, pricing through ``Cache.price``); the guard now marks its books' open
positions at the price the portfolio would pick (``RiskGuard._book_mark``, through ``LatestPrices``).
Where the node's positions are the book's (netting, or hedging positions that never face each other)
the two agree; where they are not, the book is what counts (``test_guard_figures_book.py``). Here
whole paper runs of the runtime (reporter, guard, ledger) over random price paths compare, after
every position event the guard handles, the figure it marked with the portfolio's own answer at that
moment: equal to the last bit.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from nautilus_trader.model.identifiers import InstrumentId

from strategy_runtime.paper.catalog import prepare_catalog
from strategy_runtime.risk.guard import RiskGuard
from strategy_runtime.risk.limits import Mark
from tests.support.runtime import BTC, EMA_CROSS, local_run, paper_manifest, runtime_config

# Limits far out of reach: the guard watches PnL on every position event, and nothing halts the run.
WATCHING = {"maxDailyLoss": 1e9, "maxDrawdown": 1e9}
PERP = "BTCUSDT-PERP.BINANCE"


def portfolio_mark(guard: RiskGuard, instrument_id: InstrumentId) -> Mark | None:
    """What the guard used to mark: the portfolio's answer, asked (None when nothing is open)."""
    if not guard.cache.positions_open_count(instrument_id=instrument_id):
        return None
    money = guard.portfolio.unrealized_pnl(instrument_id)
    return None if money is None else (money.currency.code, money.as_double())


@pytest.mark.parametrize(
    ("instrument", "data_types", "venue_options", "seed"),
    [
        # bars only: a long position is priced at the bar's close (no BID bars), as a short one is; half
        # the fills slip a tick, so that the price is not the fill's
        pytest.param(BTC, ["bars"], {"prob_slippage": "0.5", "random_seed": "7"}, 7, id="spot-bars-slippage"),
        # quotes: a long position at the bid, a short one at the ask; trades and bars beside them
        pytest.param(BTC, ["bars", "quotes", "trades"], None, 11, id="spot-quotes-trades"),
        # a perpetual, an account with a base currency (the cost currency: converted at 1), seeded slippage
        pytest.param(
            PERP,
            ["bars", "quotes", "trades"],
            {"base_currency": "USDT", "prob_slippage": "0.5", "random_seed": "3"},
            23,
            id="perpetual-base-currency",
        ),
        # hedging: a position per order, several open at once, added up in the portfolio's order
        pytest.param(BTC, ["bars", "quotes"], {"oms_type": "HEDGING"}, 31, id="hedging"),
    ],
)
async def test_after_every_position_event_the_guard_marks_the_portfolios_unrealized_pnl(
    tmp_path, monkeypatch, instrument, data_types, venue_options, seed
):
    compared: list[tuple[Mark | None, Mark | None]] = []
    refresh = RiskGuard._refresh

    def refresh_then_ask_the_portfolio(guard: RiskGuard) -> None:
        refresh(guard)
        for instrument_id in guard._known:
            if guard.cache.account_for_venue(instrument_id.venue) is not None:
                compared.append((guard.limits.unrealized(instrument_id.value), portfolio_mark(guard, instrument_id)))

    monkeypatch.setattr(RiskGuard, "_refresh", refresh_then_ask_the_portfolio)
    strategy: dict[str, Any] = copy.deepcopy(EMA_CROSS)
    strategy["config"].update(instrument_id=instrument, bar_type=f"{instrument}-1-MINUTE-LAST-EXTERNAL")
    venue: dict[str, Any] = {
        "adapter": "sandbox",
        "name": "BINANCE",
        "accountType": "margin",
        "startingBalances": ["100000 USDT"],
    }
    if venue_options:
        venue["options"] = venue_options
    manifest = paper_manifest(
        name="unrealized",
        strategy=strategy,
        bars=1500,
        seed=seed,
        venue=venue,
        replay={"speed": 0, "dataTypes": data_types},
        risk=WATCHING,
        instruments=[instrument],
    )
    config = runtime_config(manifest, tmp_path / "catalog")
    await local_run(config, catalog=prepare_catalog(config))

    marked = [pair for pair in compared if pair[1] is not None]
    assert len([mark for mark, _ in marked if mark and mark[1]]) > 20, "positions priced away from their fills"
    assert {mark[0] for mark, _ in marked} == {"USDT"}
    for i, (guard_mark, portfolio) in enumerate(compared):
        assert guard_mark == portfolio, (
            f"position event #{i}: the guard marked {guard_mark}, the portfolio says {portfolio}"
        )
