"""A live strategy claims its spec's instruments, so that a restart gives it back its orders and its position.

A runtime starts with an empty cache: NautilusTrader 1.231's reconciliation rebuilds the venue's orders
(and the positions their fills make) from reports, and gives each order whose client order id its cache does
not hold to the strategy that claims the order's instrument (``StrategyConfig.external_order_claims``), else to
strategy ``EXTERNAL``. A strategy then no longer saw its own resting orders and position after a ``kill -9``
and placed them again (tests/live/test_both_markets.py, the restart story). These tests build the node
(no connection) and look at the claims its execution engine holds.
"""

from __future__ import annotations

import copy
import logging

import pytest
from nautilus_trader.model.identifiers import InstrumentId, StrategyId

from livestrat.api.spec import StrategySource
from strategy_runtime.strategy_source import load_strategy
from tests.support.live_nodes import FAKE_CREDENTIALS, build_without_connecting, live_config, live_manifest
from tests.support.runtime import EMA_CROSS

CASES = [("spot", "BTCUSDT.BINANCE"), ("usdtFutures", "BTCUSDT-PERP.BINANCE")]


@pytest.mark.parametrize(("account_type", "instrument"), CASES)
async def test_a_live_strategy_claims_every_instrument_of_its_spec(account_type, instrument, caplog):
    manifest = live_manifest("binance", account_type, instrument)
    with caplog.at_level(logging.WARNING, logger="livestrat.node"):
        node = await build_without_connecting(live_config(manifest), FAKE_CREDENTIALS)
    try:
        engine = node.kernel.exec_engine
        assert engine.get_external_order_claim(InstrumentId.from_str(instrument)) == node.strategy.id
        assert engine.get_external_order_claim(InstrumentId.from_str("ETHUSDT.BINANCE")) is None
        assert node.strategy.id != StrategyId("EXTERNAL")
    finally:
        node.dispose()
    assert "external_order_claims" not in caplog.text


async def test_claims_the_user_sets_are_kept_and_an_instrument_they_leave_out_is_warned_about(caplog):
    manifest = live_manifest("binance", "spot", "BTCUSDT.BINANCE")
    manifest["spec"]["strategy"]["config"]["external_order_claims"] = []
    with caplog.at_level(logging.WARNING, logger="livestrat.node"):
        node = await build_without_connecting(live_config(manifest), FAKE_CREDENTIALS)
    try:
        assert node.kernel.exec_engine.get_external_order_claim(InstrumentId.from_str("BTCUSDT.BINANCE")) is None
    finally:
        node.dispose()
    assert "external_order_claims leaves out BTCUSDT.BINANCE" in caplog.text


def test_the_claim_reaches_the_strategy_only_and_not_the_config_a_backtest_is_given():
    source = StrategySource.model_validate(copy.deepcopy(EMA_CROSS))
    instrument = EMA_CROSS["config"]["instrument_id"]
    claimed = load_strategy(source, claims=[instrument])
    assert claimed.strategy.external_order_claims == [InstrumentId.from_str(instrument)]
    assert "external_order_claims" not in claimed.importable.config
    assert load_strategy(source).strategy.external_order_claims == []  # paper, backtest: nothing to reconcile
