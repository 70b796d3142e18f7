"""A live strategy and its paper twin, side by side on the desk: real runtimes, the venue emulator, PostgreSQL, kubectl.

The live runtime trades at the emulated Binance spot venue through NautilusTrader's real adapter; its twin is the
manifest the operator builds for it (``strategy_operator.build.twin``), run as a pod would run it: paper, on the same
venue's public market data, filled by the sandbox. Both push their status into the API emulator as pods do, and
``kubectl livestrat status`` puts them side by side. Every figure shown is checked against its source: the fills
against each ledger (and the live ones against the venue's trades), the slippage against the one definition run
over each ledger's fills, the fill rate against the orders the script sends and the orders the ledger shows filled.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import yaml

from livestrat.api.contract import TWIN_OF_LABEL
from livestrat.api.resource import LiveStrategy
from strategy_operator.build.twin import build_twin
from strategy_runtime.slippage import slippage_bps
from tests.support.desk import LIVESTRATEGIES
from tests.support.desk_plugin import kubectl_livestrat
from tests.support.live_runtime import SPOT, LiveStory, ledger_fills, live_catalog, story_spec
from tests.support.scripted import scripted_strategy
from tests.support.venue_emulator_process import scenario, venue_emulator

pytestmark = pytest.mark.slow

SPEED = 120  # two one-minute bars a wall second
BALANCES = {"USDT": "1000000", "BTC": "100"}
STEPS = [
    {"bar": 2, "do": "market", "side": "BUY", "quantity": "0.02", "tag": "entry"},
    {"bar": 3, "do": "limit", "side": "BUY", "quantity": "0.01", "offset": -0.2, "count": 2, "tag": "resting"},
    # rests 0.05 % below the market: filled a few bars later, below its arrival price (a slippage not zero)
    {"bar": 3, "do": "limit", "side": "BUY", "quantity": "0.01", "offset": -0.0005, "tag": "near"},
    {"bar": 5, "do": "market", "side": "SELL", "quantity": "0.02", "tag": "exit"},
]
ORDERS = sum(step.get("count", 1) for step in STEPS)
FILLED_ORDERS = sum(1 for step in STEPS if step["do"] == "market" or step["tag"] == "near")
RESTING = ORDERS - FILLED_ORDERS


def twin_of(name: str, namespace: str, spec: dict) -> dict:
    """The twin's manifest, as the operator writes it for the live strategy ``name`` with ``spec``."""
    live = {
        "apiVersion": "livestrat.io/v1alpha1",
        "kind": "LiveStrategy",
        "metadata": {"name": name, "namespace": namespace, "uid": "0b7a1c2e-0000-4000-8000-00000000000a"},
        "spec": spec,
    }
    twin = build_twin(LiveStrategy.from_manifest(live))
    assert twin is not None
    return twin


def store(emulator, namespace: str, name: str, spec: dict, labels: dict | None = None) -> None:
    emulator.create_object(
        LIVESTRATEGIES,
        {
            "apiVersion": "livestrat.io/v1alpha1",
            "kind": "LiveStrategy",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": spec,
        },
        namespace=namespace,
    )


async def test_the_desk_shows_the_live_strategy_beside_its_paper_twin_with_figures_from_their_ledgers(
    tmp_path, pg_database, emulator, kubeconfig_path
):
    catalog = live_catalog(tmp_path / "catalog")
    live_spec = story_spec(scripted_strategy(str(tmp_path / "events.jsonl"), steps=STEPS))
    live_spec["twin"] = {"startingBalances": ["1000000 USDT", "100 BTC"]}
    async with venue_emulator(
        tmp_path / "venue", catalog=catalog, instruments=[SPOT], scenario=scenario(BALANCES), speed=SPEED
    ) as venue:
        live = LiveStory.of(tmp_path / "live", venue, pg_database, live_spec, name="ema", report_status=True)
        namespace = live.config.strategy.namespace
        twin_manifest = twin_of("ema", namespace, live_spec)
        twin_spec, twin_name = twin_manifest["spec"], twin_manifest["metadata"]["name"]
        twin = LiveStory.of(tmp_path / "twin", venue, pg_database, twin_spec, name=twin_name, report_status=True)
        emulator.add_namespace(namespace)
        store(emulator, namespace, "ema", live_spec)
        store(emulator, namespace, twin_name, twin_spec, {TWIN_OF_LABEL: "ema"})
        env = {"KUBECONFIG": str(kubeconfig_path)}
        try:
            runtimes = [live.start(tag="live", env=env), twin.start(tag="twin", env=env)]
            for runtime in runtimes:
                await runtime.wait_ready(timeout=90)
            for runtime in runtimes:
                await runtime.wait_until(
                    lambda s: s["trading"]["fills"] >= FILLED_ORDERS and s["trading"]["openOrders"] == RESTING,
                    what="the script played: the market orders and the near limit filled, the far ones resting",
                    timeout=90,
                )

            async def pushed() -> dict | None:
                shown = await kubectl_livestrat(
                    "status", "ema", "-n", namespace, "-o", "yaml", kubeconfig=kubeconfig_path
                )
                document = yaml.safe_load(shown.stdout) if shown.returncode == 0 else None
                compared = (document or {}).get("twin")
                done = compared and all(
                    compared[side]["fills"] == FILLED_ORDERS and compared[side]["ordersSubmitted"] == ORDERS
                    for side in ("live", "twin")
                )
                return compared if done else None

            compared = await live.wait_for(pushed, "both statuses pushed and shown side by side", timeout=60)
            table = await kubectl_livestrat("status", "ema", "-n", namespace, kubeconfig=kubeconfig_path)
            reckoning = await live.reckoning()
            # a paper strategy's fills are under this run's key (namespace/name@run-N), which its status names
            twin_key = (await runtimes[1].state())["trading"]["ledgerKey"]
            live_fills, twin_fills = await live.fills(), await ledger_fills(pg_database, twin_key)
        finally:
            live.kill_all()
            twin.kill_all()

    print(f"live vs twin: {compared}")
    assert "Live vs paper twin" in table.stdout
    assert (reckoning.at_venue, reckoning.in_ledger, reckoning.lost, reckoning.duplicated) == (
        FILLED_ORDERS,
        FILLED_ORDERS,
        (),
        0,
    )
    for side, fills in (("live", live_fills), ("twin", twin_fills)):
        figures = compared[side]
        assert figures["fills"] == len(fills)
        assert figures["ordersFilled"] == len({f.client_order_id for f in fills}) == FILLED_ORDERS
        assert Decimal(figures["fillRate"]) == Decimal(FILLED_ORDERS) / Decimal(ORDERS)
        assert all(f.arrival_price is not None for f in fills), "every fill of a priced order has its arrival price"
        assert Decimal(figures["slippageBps"]) == slippage_bps(fills)
    assert slippage_bps(live_fills) < 0 and slippage_bps(twin_fills) < 0, "the near limit filled below its arrival"
    gap = Decimal(compared["slippageGapBps"])
    assert gap == slippage_bps(live_fills) - slippage_bps(twin_fills)
    live_trades = {f.trade_id for f in live_fills}
    assert not live_trades & {f.trade_id for f in twin_fills}, "the twin's fills are the sandbox's, not the venue's"
