"""The backtest of a live feed's recorded window simulates the venue the paper sandbox simulated.

Paper fills and backtest fills agree only if both simulate the same venue (``paper.venue``): the window's spec is the
same strategy on the sandbox adapter, named for the feed's venue, with its account type and without trade execution
(the live feed's sandbox matches on bars and quotes only), over the recorded catalog.
"""

from __future__ import annotations

import pytest

from livestrat.api.runtime_config import RuntimeConfig
from livestrat.api.spec import Adapter, ReplayDataType
from strategy_runtime.paper.live_feed import live_feed
from strategy_runtime.paper.venue import paper_venue
from strategy_runtime.paper.window_recording import records_its_window, window_backtest_config, window_catalog_path
from tests.support.runtime import runtime_config
from tests.venue_emulator.test_paper_live_feed import live_feed_manifest

KINDS = [{ReplayDataType.BARS}, {ReplayDataType.BARS, ReplayDataType.QUOTES, ReplayDataType.TRADES}]


@pytest.mark.parametrize(
    ("instrument_id", "account_type"), [("BTCUSDT.BINANCE", "spot"), ("BTCUSDT-PERP.BINANCE", "usdtFutures")]
)
@pytest.mark.parametrize("kinds", KINDS, ids=["bars", "bars-quotes-trades"])
def test_the_windows_backtest_simulates_the_live_feeds_sandbox_venue(tmp_path, instrument_id, account_type, kinds):
    config = runtime_config(live_feed_manifest(instrument_id, account_type, "0.010"), tmp_path / "catalog")
    assert records_its_window(config)
    feed = live_feed(config.spec, {})
    window = window_backtest_config(config, venue=feed.venue, account_type=feed.sandbox_account_type, data_types=kinds)

    (tmp_path / "window.json").write_text(window.dumps())
    window = RuntimeConfig.load(tmp_path / "window.json")  # as the backtest's child process reads it: valid
    assert not records_its_window(window)
    assert window.spec.venue.adapter == Adapter.SANDBOX
    assert set(window.spec.data.replay.data_types) == kinds
    assert window.catalog_path == str(window_catalog_path(config))
    assert window.spec.strategy == config.spec.strategy
    assert window.spec.risk == config.spec.risk
    assert paper_venue(window.spec) == paper_venue(config.spec, live_feed=(feed.venue, feed.sandbox_account_type))


def test_a_replay_is_no_window_to_record(tmp_path):
    manifest = live_feed_manifest("BTCUSDT.BINANCE", "spot", "0.010")
    manifest["spec"]["venue"] = {"adapter": "sandbox", "name": "BINANCE", "startingBalances": ["100000 USDT"]}
    manifest["spec"]["data"]["replay"] = {}
    assert not records_its_window(runtime_config(manifest, tmp_path / "catalog"))
