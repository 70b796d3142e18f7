"""Building and running strategy runtimes in tests: manifests, runtime configurations, local paper runs.

Every node here is a real NautilusTrader node over a real catalog the test wrote; nothing of
NautilusTrader is mocked.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nautilus_trader.model.orders import Order

from livestrat.api.runtime_config import LedgerKind, LedgerTarget, RuntimeConfig, StrategyIdentity
from livestrat.api.validation import parse
from strategy_runtime.ledger import FillRecord
from strategy_runtime.local.summary import TradingSummary, summarize
from strategy_runtime.node import StrategyNode
from strategy_runtime.paper.catalog import StrategyCatalog
from strategy_runtime.runtime import RunOutcome, RuntimeOptions, StrategyRuntime

ROOT = Path(__file__).resolve().parents[2]
BTC = "BTCUSDT.BINANCE"
BTC_BARS = f"{BTC}-1-MINUTE-LAST-EXTERNAL"

EMA_CROSS = {
    "strategyPath": "nautilus_trader.examples.strategies.ema_cross:EMACross",
    "configPath": "nautilus_trader.examples.strategies.ema_cross:EMACrossConfig",
    "config": {
        "instrument_id": BTC,
        "bar_type": BTC_BARS,
        "trade_size": "0.010",
        "fast_ema_period": 10,
        "slow_ema_period": 20,
        "request_bars": False,
        "subscribe_trade_ticks": False,
    },
}

BRACKET = {
    "strategyPath": "tests.support.strategies:BracketOnCross",
    "configPath": "tests.support.strategies:BracketOnCrossConfig",
    "config": {"instrument_id": BTC, "bar_type": BTC_BARS, "trade_size": "0.020"},
}


TWAP = "nautilus_trader.examples.algorithms.twap"
EMA_CROSS_TWAP = {
    "strategyPath": "tests.support.strategies:EMACrossTWAPFromBars",
    "configPath": "nautilus_trader.examples.strategies.ema_cross_twap:EMACrossTWAPConfig",
    "config": {
        "instrument_id": BTC,
        "bar_type": BTC_BARS,
        "trade_size": "0.050",
        # three slices a market minute apart: the first at once, the last (the primary) two minutes later
        "twap_horizon_secs": 180.0,
        "twap_interval_secs": 60.0,
    },
    "execAlgorithms": [{"algorithmPath": f"{TWAP}:TWAPExecAlgorithm", "configPath": f"{TWAP}:TWAPExecAlgorithmConfig"}],
}


def paper_manifest(
    *,
    name: str = "paper-test",
    strategy: dict[str, Any] | None = None,
    bars: int = 1000,
    seed: int = 42,
    replay: dict[str, Any] | None = None,
    venue: dict[str, Any] | None = None,
    risk: dict[str, Any] | None = None,
    instruments: Sequence[str] = (BTC,),
) -> dict[str, Any]:
    """A paper LiveStrategy (EMACross on a sandboxed BINANCE, sample data) with the given parts replaced."""
    return {
        "apiVersion": "livestrat.io/v1alpha1",
        "kind": "LiveStrategy",
        "metadata": {"name": name},
        "spec": {
            "mode": "paper",
            "strategy": copy.deepcopy(strategy or EMA_CROSS),
            "venue": venue
            or {"adapter": "sandbox", "name": "BINANCE", "accountType": "margin", "startingBalances": ["100000 USDT"]},
            "instruments": list(instruments),
            "data": {
                "catalog": {"emptyDir": {}},
                "sample": {"bars": bars, "seed": seed},
                "replay": replay if replay is not None else {"speed": 0},
            },
            "risk": risk or {},
        },
    }


def runtime_config(manifest: dict[str, Any], catalog: Path, state: Path | None = None) -> RuntimeConfig:
    strategy = parse(manifest)
    state = state or catalog.parent / "state"
    return RuntimeConfig(
        strategy=StrategyIdentity(namespace="tests", name=strategy.metadata.name),
        spec=strategy.spec,
        catalog_path=str(catalog),
        state_dir=str(state),
        ledger=LedgerTarget(kind=LedgerKind.SQLITE, sqlite_path=str(state / "ledger.sqlite")),
        report_status=False,
        halt_budget_seconds=30,
        log_level="ERROR",
    )


async def replay_to_end(node: StrategyNode, timeout: float = 120) -> None:
    """Start the paper node, let the replay run out, stop the node (strategies' on_stop included)."""
    assert node.replay is not None, "not a paper replay node"
    await node.start()
    await asyncio.wait_for(node.replay.finished.wait(), timeout)
    assert node.replay.failure is None, node.replay.failure
    await node.stop()


@dataclass(frozen=True)
class LocalRun:
    """A paper run through ``StrategyRuntime`` as ``livestrat run`` does it, and what it left."""

    runtime: StrategyRuntime
    outcome: RunOutcome
    ledger_fills: list[FillRecord]  # read back from the ledger, in its order (ts_event, then trade id)
    summary: TradingSummary  # the node's cache and portfolio, for orders and positions
    orders: list[Order]  # every order the node's cache held at the end


async def local_run(config: RuntimeConfig, *, catalog: StrategyCatalog | None = None, exit_code: int = 0) -> LocalRun:
    """Run the spec as ``livestrat run`` does: the whole runtime (reporter, risk guard, ledger, the
    halt when the replay is over), no HTTP and no status push. Fails unless it exits ``exit_code``."""
    options = RuntimeOptions(
        serve_http=False,
        push_status=False,
        stop_when_replay_finishes=True,
        fence_wait_seconds=0.0,
        environ={},
        catalog=catalog,
        keep_fills=True,
        dispose_node=False,  # read its cache first: dispose() resets it
    )
    runtime = StrategyRuntime(config, options)
    outcome = await runtime.run()
    assert outcome.exit_code == exit_code, outcome.reason
    assert outcome.ledger_fills is not None and runtime.node is not None
    kernel = runtime.node.kernel
    try:
        summary = summarize(kernel.cache, kernel.portfolio, list(config.spec.instruments), config.strategy.key)
        orders = list(kernel.cache.orders())
    finally:
        runtime.node.dispose()
    return LocalRun(runtime, outcome, outcome.ledger_fills, summary, orders)
