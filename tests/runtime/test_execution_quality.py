"""A runtime reports how well its orders executed: orders sent, orders filled, slippage against arrival.

A paper strategy's status says how many orders this run sent to the venue (``ordersSubmitted``), how many
of them filled at least once (``ordersFilled``), and the notional-weighted slippage of its fills against the
price each order met when it was sent (``slippageBps``). None of these is taken on trust: the orders are
counted again from the node's own orders, the slippage recomputed from the fills the ledger stored, and each
fill's arrival price checked against the bar the order met, read from the catalog the run replayed.
"""

from __future__ import annotations

import bisect
from decimal import Decimal

from nautilus_trader.model.data import BarType
from nautilus_trader.model.events import OrderSubmitted
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from strategy_runtime.slippage import slippage_bps
from tests.support.runtime import BRACKET, BTC_BARS, local_run, paper_manifest, runtime_config


async def test_a_paper_runs_status_shows_its_slippage_and_fill_rate_as_its_ledger_and_orders_say(tmp_path):
    # Brackets: a resting LIMIT entry a fraction of an ATR from the close, a STOP_MARKET stop-loss and a LIMIT
    # take-profit; an entry unfilled after five bars is cancelled, and one leg of each bracket never fills.
    config = runtime_config(paper_manifest(strategy=BRACKET, bars=1000), tmp_path / "catalog")
    run = await local_run(config)
    trading = run.outcome.snapshot.trading

    sent = [o for o in run.orders if any(isinstance(e, OrderSubmitted) for e in o.events)]
    filled = [o for o in sent if o.filled_qty.as_decimal() > 0]
    assert trading.orders_submitted == len(sent)
    assert trading.orders_filled == len(filled)
    assert 0 < len(filled) < len(sent)
    # What the runtime keeps to know them is the orders still open, no more (here: none, the halt cancelled them).
    assert len(run.runtime.guard.gate.arrivals) == len([o for o in sent if not o.is_closed])

    assert run.ledger_fills and all(f.arrival_price is not None for f in run.ledger_fills)
    assert trading.slippage_bps == f"{slippage_bps(run.ledger_fills):f}"
    assert Decimal(trading.slippage_bps) != 0  # limit and stop orders fill away from where the market was

    # The arrival price: the close of the last bar the node had when the order was sent (bars only: no quotes).
    bars = ParquetDataCatalog(config.catalog_path).bars([str(BarType.from_str(BTC_BARS))])
    times, closes = [b.ts_init for b in bars], [b.close.as_decimal() for b in bars]
    orders = {o.client_order_id.value: o for o in run.orders}
    for fill in run.ledger_fills:
        sent_at = next(e.ts_event for e in orders[fill.client_order_id].events if isinstance(e, OrderSubmitted))
        assert fill.arrival_price == closes[bisect.bisect_right(times, sent_at) - 1], fill
