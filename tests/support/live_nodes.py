"""Live-mode manifests and node builds without a venue: up to the point where a node would connect.

Run as a program (``python -m tests.support.live_nodes [LEVEL [ADAPTER...]]``) it builds a node
for every live adapter (or the ones named) at DEBUG log level with recognisable fake credentials in the environment and prints
what it did, so a test can search the whole output of the process for the secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Mapping
from typing import Any

from livestrat.api.runtime_config import (
    ENV_API_KEY,
    ENV_API_PASSPHRASE,
    ENV_API_SECRET,
    LedgerKind,
    LedgerTarget,
    RuntimeConfig,
    StrategyIdentity,
)
from livestrat.api.validation import parse
from strategy_runtime.node import StrategyNode, build_node

# Recognisable values (no word in them, so any fragment found in an output is a leak).
FAKE_CREDENTIALS = {
    ENV_API_KEY: "kQ7xZ2mV9wR4tB8nJ3pL6",
    ENV_API_SECRET: "sF5hD1gK8jQ3zX6cV9bN2mW4",
    ENV_API_PASSPHRASE: "pY7uT2rE5wQ9oI3",
}

# adapter, accountType, instrument, testnet: one case per account type the spec offers for live
# trading (Binance COIN-M futures has no testnet in NautilusTrader 1.231).
LIVE_CASES: list[tuple[str, str, str, bool]] = [
    ("binance", "spot", "BTCUSDT.BINANCE", True),
    ("binance", "margin", "BTCUSDT.BINANCE", True),
    ("binance", "usdtFutures", "BTCUSDT-PERP.BINANCE", True),
    ("binance", "coinFutures", "BTCUSD_PERP.BINANCE", False),
    ("bybit", "spot", "BTCUSDT-SPOT.BYBIT", True),
    ("bybit", "linear", "BTCUSDT-LINEAR.BYBIT", True),
    ("bybit", "inverse", "BTCUSD-INVERSE.BYBIT", True),
    ("okx", "spot", "BTC-USDT.OKX", True),
    ("okx", "margin", "BTC-USDT.OKX", True),
    ("okx", "swap", "BTC-USDT-SWAP.OKX", True),
    ("deribit", "future", "BTC-PERPETUAL.DERIBIT", True),
    ("deribit", "option", "BTC-27DEC24-100000-C.DERIBIT", True),
    ("deribit", "spot", "BTC_USDC.DERIBIT", True),
    ("deribit", "futureCombo", "BTC-FS-27DEC24_PERP.DERIBIT", True),
    ("deribit", "optionCombo", "BTC-CS-27DEC24-100000_110000.DERIBIT", False),
    ("interactive_brokers", "margin", "AAPL.NASDAQ", True),
    ("interactive_brokers", "cash", "EUR/USD.IDEALPRO", False),
]


def live_manifest(
    adapter: str,
    account_type: str | None,
    instrument: str,
    *,
    testnet: bool = True,
    options: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    venue: dict[str, Any] = {"adapter": adapter, "testnet": testnet, "credentialsSecret": {"name": "venue-keys"}}
    if account_type:
        venue["accountType"] = account_type
    opts = dict(options or {})
    if adapter == "interactive_brokers":
        opts.setdefault("account_id", "DU1234567")
    if opts:
        venue["options"] = opts
    return {
        "apiVersion": "livestrat.io/v1alpha1",
        "kind": "LiveStrategy",
        "metadata": {"name": f"live-{adapter.replace('_', '-')}"},
        "spec": {
            "mode": "live",
            "strategy": {
                "strategyPath": "nautilus_trader.examples.strategies.ema_cross:EMACross",
                "configPath": "nautilus_trader.examples.strategies.ema_cross:EMACrossConfig",
                "config": {
                    "instrument_id": instrument,
                    "bar_type": f"{instrument}-1-MINUTE-LAST-EXTERNAL",
                    "trade_size": "0.001",
                },
            },
            "venue": venue,
            "instruments": [instrument],
            "data": {"catalog": {"persistentVolumeClaim": {"claimName": "market-data"}}},
            "risk": {"maxNotionalPerOrder": 100, "maxDailyLoss": 50, "maxPosition": 0.01},
        },
    }


def live_config(manifest: dict[str, Any], log_level: str = "ERROR") -> RuntimeConfig:
    strategy = parse(manifest)
    return RuntimeConfig(
        strategy=StrategyIdentity(namespace="tests", name=strategy.metadata.name),
        spec=strategy.spec,
        catalog_path="/nonexistent/catalog",  # a live node reads instruments from the venue
        state_dir="/nonexistent/state",
        ledger=LedgerTarget(kind=LedgerKind.POSTGRESQL),
        halt_budget_seconds=30,
        log_level=log_level,
    )


async def build_without_connecting(config: RuntimeConfig, environ: Mapping[str, str]) -> StrategyNode:
    """Build the live node inside the running loop and cancel whatever connection attempt the build scheduled.

    Binance, Bybit, OKX and Deribit only create client objects at build; the Interactive Brokers
    factory starts its client at once (a task that dials the gateway), which is cancelled
    here before it runs.
    """
    loop = asyncio.get_running_loop()
    before = asyncio.all_tasks()
    node = build_node(config, environ=environ)
    started = asyncio.all_tasks() - before
    if started:
        # The IB client's done-callback calls task.exception() on its own cancelled task,
        # which the loop would report as an error: not one worth showing here.
        previous = loop.get_exception_handler()
        loop.set_exception_handler(lambda _loop, _context: None)
        try:
            for task in started:
                task.cancel()
            await asyncio.gather(*started, return_exceptions=True)
            await asyncio.sleep(0)
        finally:
            loop.set_exception_handler(previous)
    return node


async def _probe(log_level: str, adapters: list[str]) -> None:
    for adapter, account_type, instrument, testnet in LIVE_CASES:
        if adapters and adapter not in adapters:
            continue
        config = live_config(live_manifest(adapter, account_type, instrument, testnet=testnet), log_level)
        node = await build_without_connecting(config, FAKE_CREDENTIALS)
        print(
            f"BUILT {adapter} {account_type}: data={node.kernel.data_engine.registered_clients} "
            f"exec={node.kernel.exec_engine.registered_clients}",
            flush=True,
        )
        with contextlib.suppress(Exception):
            node.dispose()
        await asyncio.sleep(0)
    # The errors users see must name the variables, never the values.
    config = live_config(live_manifest("okx", "swap", "BTC-USDT-SWAP.OKX"), log_level)
    partial = {k: v for k, v in FAKE_CREDENTIALS.items() if k != ENV_API_PASSPHRASE}
    try:
        await build_without_connecting(config, partial)
    except Exception as exc:
        print(f"ERROR {type(exc).__name__}: {exc}", flush=True)


if __name__ == "__main__":
    asyncio.run(_probe(sys.argv[1] if len(sys.argv) > 1 else "DEBUG", sys.argv[2:]))
