"""The node builder: the strategy by import path, the pre-trade limits, actors, signals and shutdown requests."""

from __future__ import annotations

import asyncio
import os
import signal
from decimal import Decimal
from pathlib import Path

import pytest
from nautilus_trader.common.component import TestClock
from nautilus_trader.common.generators import ClientOrderIdGenerator
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.identifiers import InstrumentId, StrategyId, TraderId

from livestrat.api.spec import Mode
from strategy_runtime.node import (
    UNTHROTTLED,
    NodeBuildError,
    build_node,
    nautilus_log_level,
    risk_engine_config,
    trader_id_for,
)
from strategy_runtime.paper.catalog import prepare_catalog
from strategy_runtime.strategy_source import StrategyLoadError
from tests.support.runtime import BTC, BTC_BARS, EMA_CROSS, paper_manifest, replay_to_end, runtime_config
from tests.support.strategies import EventRecorder


def strategy(path: str, config_path: str, config: dict | None = None) -> dict:
    return {"strategyPath": path, "configPath": config_path, "config": config or {}}


@pytest.fixture
def config_for(tmp_path):
    def make(**manifest):
        return runtime_config(paper_manifest(**manifest), tmp_path / "catalog")

    return make


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            strategy("no_such_package.strategies:Thing", EMA_CROSS["configPath"]),
            ["spec.strategy.strategyPath", "'no_such_package.strategies:Thing'", "cannot import module"],
            id="missing-module",
        ),
        pytest.param(
            strategy("nautilus_trader.examples.strategies.ema_cross:NoSuchClass", EMA_CROSS["configPath"]),
            ["spec.strategy.strategyPath", "ema_cross:NoSuchClass", "has no 'NoSuchClass'"],
            id="missing-class",
        ),
        pytest.param(
            strategy(EMA_CROSS["strategyPath"], "nautilus_trader.examples.strategies.ema_cross:EMACross"),
            ["spec.strategy.configPath", "is not a NautilusTrader StrategyConfig subclass"],
            id="config-path-names-the-strategy",
        ),
        pytest.param(
            strategy(EMA_CROSS["strategyPath"], EMA_CROSS["configPath"], {"instrument_id": BTC}),
            ["spec.strategy.config does not fit", "EMACrossConfig", "bar_type"],
            id="config-missing-field",
        ),
        pytest.param(
            strategy(
                EMA_CROSS["strategyPath"],
                EMA_CROSS["configPath"],
                {"instrument_id": BTC, "bar_type": BTC_BARS, "trade_size": "1", "fast_ema_period": "ten"},
            ),
            ["spec.strategy.config does not fit", "fast_ema_period"],
            id="config-wrong-type",
        ),
        pytest.param(
            strategy(
                EMA_CROSS["strategyPath"],
                EMA_CROSS["configPath"],
                {"instrument_id": BTC, "bar_type": BTC_BARS, "trade_size": "1", "fast_ema_period": 30},
            ),
            ["nautilus_trader.examples.strategies.ema_cross:EMACross could not be created", "fast_ema_period"],
            id="strategy-refuses-its-config",
        ),
    ],
)
def test_a_strategy_that_cannot_be_loaded_is_a_clear_error_naming_it(config_for, source, expected):
    config = config_for(strategy=source)
    with pytest.raises(StrategyLoadError) as caught:
        build_node(config)
    for text in expected:
        assert text in str(caught.value)


def test_a_strategy_error_is_found_before_any_data_is_written(config_for, tmp_path):
    config = config_for(strategy=strategy("no_such_package:X", EMA_CROSS["configPath"]))
    with pytest.raises(StrategyLoadError):
        build_node(config)
    assert not (tmp_path / "catalog").exists()


def test_a_paper_strategy_without_replay_has_no_data_feed(tmp_path):
    # The CRD refuses such a spec; one stored under an older CRD still reaches the runtime.
    config = runtime_config(paper_manifest(), tmp_path / "catalog")
    spec = config.spec.model_copy(update={"data": config.spec.data.model_copy(update={"replay": None})})
    with pytest.raises(NodeBuildError, match=r"needs data\.replay"):
        build_node(config.model_copy(update={"spec": spec}))


def test_a_paper_nodes_risk_engine_leaves_the_rates_to_the_gate_and_a_live_one_keeps_them():
    spec = paper_manifest(risk={"maxOrderSubmitRate": "5/00:01:00", "maxOrderModifyRate": "2/00:00:01"})
    config = runtime_config(spec, Path("/nonexistent")).spec
    # a replay's market time has no fixed pace: the order gate counts the rates on it (test_parity.py)
    paper = risk_engine_config(config, replay_speed=60)
    assert (paper.max_order_submit_rate, paper.max_order_modify_rate) == (UNTHROTTLED, UNTHROTTLED)
    live = risk_engine_config(config, replay_speed=None)
    assert (live.max_order_submit_rate, live.max_order_modify_rate) == ("5/00:01:00", "2/00:00:01")


def test_log_levels_and_trader_id(config_for):
    assert nautilus_log_level("warn") == "WARNING"
    assert nautilus_log_level("OFF") == "OFF"
    with pytest.raises(NodeBuildError, match="log level"):
        nautilus_log_level("LOUD")
    trader = trader_id_for(config_for(name="ema-cross-btc"))
    assert trader.startswith("EMA-CROSS-BTC-") and trader == trader_id_for(config_for(name="ema-cross-btc"))


def test_two_strategies_on_one_account_never_send_the_same_client_order_id(config_for):
    """Binance refuses a client order id one of the account's open orders has ("Duplicate order sent"), and a
    node takes the account's order events for its own by that id: two strategies of one account that order in
    the same second (the same bar's close) must not build the same ids."""
    clock = TestClock()
    clock.set_time(1_796_588_251_000_000_000)
    ids = []
    for name in ("trend-btc", "trend-eth"):
        trader = TraderId(trader_id_for(config_for(name=name)))
        generator = ClientOrderIdGenerator(trader, StrategyId("ScriptedStrategy-000"), clock)
        ids.append(generator.generate())
    assert ids[0] != ids[1], ids
    assert all(len(i.value) <= 36 for i in ids), "Binance's newClientOrderId takes at most 36 characters"


async def test_the_risk_engine_takes_the_spec_limits(config_for):
    config = config_for(risk={"maxNotionalPerOrder": 5000.1, "maxOrderSubmitRate": "7/00:00:01"}, replay={"speed": 60})
    node = build_node(config)
    try:
        risk = node.kernel.risk_engine
        assert risk.max_notional_per_order(InstrumentId.from_str(BTC)) == Decimal("5000.1")
        assert node.node._config.risk_engine.max_order_submit_rate == UNTHROTTLED  # the gate counts market time
        assert node.node._config.risk_engine.graceful_shutdown_on_exception
        assert node.nautilus_account_type == "MARGIN" and not node.notional_limit_checked_by_nautilus
    finally:
        node.dispose()


@pytest.mark.parametrize(("account_type", "denied"), [("cash", True), ("margin", False)])
async def test_the_notional_limit_holds_on_cash_accounts_only(config_for, account_type, denied):
    # NautilusTrader's RiskEngine (1.221, still 1.231) skips every notional check on MARGIN accounts: this is
    # the gap the runtime's own risk guard has to cover.
    venue = {"adapter": "sandbox", "name": "BINANCE", "accountType": account_type, "startingBalances": ["100000 USDT"]}
    probe = strategy(
        "tests.support.strategies:LimitProbe",
        "tests.support.strategies:LimitProbeConfig",
        {"instrument_id": BTC, "bar_type": BTC_BARS, "trade_size": "1"},  # ~21,000 USDT at half the price
    )
    config = config_for(strategy=probe, venue=venue, risk={"maxNotionalPerOrder": 5000}, bars=100)
    recorder = EventRecorder()
    node = build_node(config, actors=[recorder])
    try:
        assert node.notional_limit_checked_by_nautilus is denied
        await replay_to_end(node)
    finally:
        node.dispose()
    denials = [e for e in recorder.order_events if isinstance(e, OrderDenied)]
    if denied:
        assert len(denials) == 1 and "NOTIONAL_EXCEEDS_MAX_PER_ORDER" in denials[0].reason
    else:
        assert denials == []
        assert any(type(e).__name__ == "OrderAccepted" for e in recorder.order_events)


async def test_actors_join_the_trader_and_see_every_order_event(config_for):
    recorder = EventRecorder()
    node = build_node(config_for(bars=300), actors=[recorder])
    try:
        assert recorder in node.actors and recorder.id in node.kernel.trader.actor_ids()
        await replay_to_end(node)
        fills = [o for o in node.kernel.cache.orders() if o.filled_qty > 0]
    finally:
        node.dispose()
    filled_events = [e for e in recorder.order_events if type(e).__name__ == "OrderFilled"]
    assert fills and len(filled_events) == len(fills), "the fills of the strategy's on_stop included"
    assert recorder.position_events


async def test_nautilus_signal_handlers_are_replaced_by_the_runtimes(config_for):
    received: list[signal.Signals] = []
    node = build_node(config_for(), signal_handler=received.append)
    try:
        await node.start()
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.01)
        assert received == [signal.SIGTERM]
        # NautilusTrader's handler would have stopped the node by itself, without cancelling anything.
        assert node.node.trader.is_running and not node.kernel._is_stopping
        await node.stop()
    finally:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        node.dispose()


async def test_without_a_handler_the_signals_keep_their_defaults(config_for):
    build_node(config_for()).dispose()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


async def test_a_shutdown_request_goes_to_the_runtime_not_to_the_kernel(config_for):
    requests = []
    requester = strategy(
        "tests.support.strategies:ShutdownRequester",
        "tests.support.strategies:ShutdownRequesterConfig",
        {"bar_type": BTC_BARS, "after_bars": 3},
    )
    node = build_node(config_for(strategy=requester, bars=100), shutdown_handler=requests.append)
    try:
        await replay_to_end(node)  # the node is still running when the replay ends: nobody stopped it
    finally:
        node.dispose()
    assert len(requests) == 1 and "asks for a shutdown" in requests[0].reason


async def test_a_prepared_catalog_is_used_as_is(config_for, tmp_path):
    config = config_for(bars=100)
    catalog = prepare_catalog(config)
    node = build_node(config, catalog=catalog)
    try:
        assert node.catalog is catalog
        assert node.kernel.cache.instrument(InstrumentId.from_str(BTC)) is not None
        assert node.replay is not None and node.config.spec.mode == Mode.PAPER
    finally:
        node.dispose()


async def test_the_event_loop_keeps_working_after_a_node_is_disposed(config_for):
    # The kernel made its thread pool the loop's default executor: the runtime still needs it
    # after the node is gone (a final status push resolves the API server's name in it).
    node = build_node(config_for(bars=100))
    await replay_to_end(node)
    node.dispose()
    assert await asyncio.to_thread(lambda: 42) == 42
    assert await asyncio.get_running_loop().getaddrinfo("localhost", 80)
