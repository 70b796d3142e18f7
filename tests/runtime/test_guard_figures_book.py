"""The risk figures (``status.risk.dailyPnl``, ``drawdown``, ``maxDrawdown``) are the one book's PnL.

The guard totals realized PnL from its books of the ledger's fills and unrealized PnL at each price; the
status's ``trading.totalPnl`` is the same books' (``strategy_runtime.book_view``). Both must be the
same total, whatever positions the node keeps: on a HEDGING venue a strategy that buys and then sells
without naming a position opens a long and a short position side by side in the node, while the
book, as the ledger's fills add up, is flat and has realized the difference. Here whole paper runs of
the runtime compare, after every position event the guard handles, the total its figures are made of
with the book's total at the same prices.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from strategy_runtime import book_view
from strategy_runtime.paper.catalog import prepare_catalog
from strategy_runtime.risk.guard import RiskGuard
from tests.support.runtime import BTC, BTC_BARS, local_run, paper_manifest, runtime_config

WATCHING = {"maxDailyLoss": 1e9, "maxDrawdown": 1e9}
FLIPPER = {
    "strategyPath": "tests.support.bar_flipper:BarFlipper",
    "configPath": "tests.support.bar_flipper:BarFlipperConfig",
    "config": {"instrument_id": BTC, "bar_type": BTC_BARS, "trade_size": "0.010"},
}


@pytest.mark.parametrize("oms_type", ["NETTING", "HEDGING"])
async def test_after_every_position_event_the_guards_total_pnl_is_the_books(tmp_path, monkeypatch, oms_type):
    compared: list[tuple[float, Fraction]] = []
    handle = RiskGuard._on_position_event

    def handle_then_compare(guard: RiskGuard, event: Any) -> None:
        handle(guard, event)
        if guard._started:
            guard._settle()
            book = book_view.pnl(guard.limits.books, guard.cache).total.get("USDT")
            if book is not None:
                compared.append((guard.limits.total("USDT"), book))

    exposures: list[tuple[str | None, Decimal]] = []

    def handle_then_compare_exposure(guard: RiskGuard, event: Any) -> None:
        handle_then_compare(guard, event)
        if guard._started:
            notionals = [p.notional for p in guard.book_positions()]
            summed = sum((Decimal(n.split()[0]) for n in notionals if n), Decimal(0))
            exposures.append((guard.risk_state().exposure, summed))

    monkeypatch.setattr(RiskGuard, "_on_position_event", handle_then_compare_exposure)
    venue = {
        "adapter": "sandbox",
        "name": "BINANCE",
        "accountType": "margin",
        "startingBalances": ["100000 USDT"],
        "options": {"oms_type": oms_type},
    }
    manifest = paper_manifest(
        name="figures", strategy=FLIPPER, bars=200, seed=5, venue=venue, replay={"speed": 0}, risk=WATCHING
    )
    config = runtime_config(manifest, tmp_path / "catalog")
    await local_run(config, catalog=prepare_catalog(config))

    assert len(compared) > 100
    assert any(abs(book) > 1 for _, book in compared), "PnL moved away from zero"
    # status.risk.exposure is the gross of the positions the status shows (what a RiskBudget adds up)
    assert any(summed for _, summed in exposures), "a position was open at some position event"
    for i, (exposure, summed) in enumerate(exposures):
        shown = Decimal(exposure.split()[0]) if exposure else Decimal(0)
        assert shown == summed, (
            f"position event #{i}: status.risk.exposure {exposure}, the positions' notionals {summed}"
        )
    for i, (guard_total, book) in enumerate(compared):
        assert abs(guard_total - float(book)) < 0.005, (
            f"position event #{i}: the risk figures are made of total PnL {guard_total:.2f} USDT, "
            f"the book of the ledger's fills says {book:.2f} USDT"
        )


@pytest.mark.parametrize(
    "data_types", [["bars"], ["bars", "quotes"], ["bars", "trades"], ["bars", "quotes", "trades"]], ids="+".join
)
async def test_after_every_price_the_guards_total_pnl_is_the_books(tmp_path, monkeypatch, data_types):
    """A trade or a bar does not move where a close would trade while there is a quote (the bid for a long, the
    ask for a short), nor a bar while there is a trade: the portfolio, and the book's unrealized PnL the status
    shows, stay at that price, and so must the total the risk figures are made of."""
    compared: list[tuple[str, float, Fraction]] = []
    on_price = RiskGuard._on_price

    def price_then_compare(guard: RiskGuard, data: Any) -> None:
        on_price(guard, data)
        guard._settle()  # what anything reading the figures does first
        book = book_view.pnl(guard.limits.books, guard.cache).total.get("USDT")
        if book is not None:
            compared.append((type(data).__name__, guard.limits.total("USDT"), book))

    own_close = RiskGuard._own_close
    shortcut: list[bool] = []  # per bar: its own close taken without asking the cache's bar types

    def own_close_counted(guard: RiskGuard, bar: Any) -> bool:
        shortcut.append(own_close(guard, bar))
        return shortcut[-1]

    monkeypatch.setattr(RiskGuard, "_on_price", price_then_compare)
    monkeypatch.setattr(RiskGuard, "_own_close", own_close_counted)
    manifest = paper_manifest(
        name="figures",
        strategy=FLIPPER,
        bars=200,
        seed=9,
        replay={"speed": 0, "dataTypes": data_types},
        risk=WATCHING,
    )
    config = runtime_config(manifest, tmp_path / "catalog")
    await local_run(config, catalog=prepare_catalog(config))

    assert len(compared) >= 199  # every price after the first fill (200 bars, and the quotes or trades beside them)
    # On bars alone every bar is its own close (the shortcut); with quotes or trades beside them, none is.
    assert shortcut and all(shortcut) if data_types == ["bars"] else not any(shortcut[1:])
    for i, (kind, guard_total, book) in enumerate(compared):
        assert abs(guard_total - float(book)) < 0.005, (
            f"price #{i} ({kind}): the risk figures are made of total PnL {guard_total:.4f} USDT, "
            f"the book marked where a close would trade says {book:.4f} USDT"
        )
