"""The kill switch on a live strategy, the whole way: the real operator, a real runtime pod, the venue emulator.

The desk sets ``livestrat.io/kill-switch: "true"`` on the namespace (docs/operations.md, "Kill switch").
The real kopf operator marks each strategy halted (``livestrat.io/halt``), records ``status.halt`` and
scales its StatefulSet to 0; the stand-in kubelet sends the pod's real ``livestrat runtime`` process
SIGTERM; the runtime reads the halt record, applies ``haltPolicy: flatten`` through NautilusTrader's
real Binance adapter, and exits. What is checked is asked of the venue: no order of the strategy is
left open there, and the position it bought is sold back (down to what the venue's fees leave, less
than one lot); and every trade the venue made is in the PostgreSQL ledger once. Then the switch is
turned off: the strategy stays halted until it is resumed (the design: a running strategy stops only
when asked, and starts again only when asked).
"""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest

from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk
from tests.support.kube import wait_for
from tests.support.live_runtime import SPOT, Reckoning, ledger_fills, live_catalog, story_spec
from tests.support.operator import fast_settings, running_operator
from tests.support.runtime_process import ROOT
from tests.support.scripted import scripted_strategy
from tests.support.venue_emulator_process import ENV_VENUE_ENDPOINTS, KEYS, scenario, venue_emulator

pytestmark = pytest.mark.slow

NAMESPACE = "live-desk"
NAME = "held-by-the-switch"
BALANCES = {"USDT": "1000000", "BTC": "1"}
SPEED = 120  # two one-minute bars a wall second
STEP = Decimal("0.00001")  # the sample's BTCUSDT lot step


def secret(name: str, data: dict[str, str]) -> dict:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque", "data": encoded}


async def test_the_kill_switch_flattens_a_live_strategy_at_the_venue_and_it_stays_halted_until_resumed(
    emulator, kube_env, tmp_path, pg_database
):
    catalog = live_catalog(tmp_path / "catalog")
    steps = [
        {"bar": 2, "do": "market", "side": "BUY", "quantity": "0.02", "tag": "entry"},
        {"bar": 2, "do": "limit", "side": "BUY", "quantity": "0.01", "offset": -0.2, "count": 3, "tag": "resting"},
    ]
    strategy = scripted_strategy(str(tmp_path / "events.jsonl"), steps=steps)
    spec = story_spec(strategy, haltPolicy="flatten")  # credentials from the Secret "keys", the ledger's "ledger-dsn"
    emulator.add_namespace(NAMESPACE)
    keys = {"api-key": KEYS.api_key, "api-secret": KEYS.api_secret}
    emulator.create_object("v1/secrets", secret(spec["venue"]["credentialsSecret"]["name"], keys), namespace=NAMESPACE)
    emulator.create_object("v1/secrets", secret("ledger-dsn", {"dsn": pg_database}), namespace=NAMESPACE)
    desk = Desk(emulator, kube_env).in_namespace(NAMESPACE)

    async with venue_emulator(
        tmp_path / "venue", catalog=catalog, instruments=[SPOT], scenario=scenario(BALANCES), speed=SPEED
    ) as venue:
        environ = {"PYTHONPATH": str(ROOT), ENV_VENUE_ENDPOINTS: venue.endpoints}
        async with (
            Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kube_env, runtime=True, environ=environ),
            running_operator(emulator, fast_settings(live_namespaces=[NAMESPACE], stale_after_seconds=60)),
        ):
            manifest = {"apiVersion": "livestrat.io/v1alpha1", "kind": "LiveStrategy", "metadata": {"name": NAME}}
            await desk.apply({**manifest, "spec": spec})

            def trading() -> dict:
                return desk.status(NAME).get("trading") or {}

            await wait_for(lambda: trading().get("openOrders") == 3 and trading().get("fills") == 1, timeout=120)
            assert len(await venue.admin.open_orders()) == 3

            desk.set_namespace_annotation("livestrat.io/kill-switch", "true")
            await wait_for(lambda: desk.phase(NAME) == "Halted", timeout=90)
            status = desk.status(NAME)
            left_open = await venue.admin.open_orders()
            trades = await venue.admin.trades()
            fills = await ledger_fills(pg_database, f"{NAMESPACE}/{NAME}")
            reckoning = Reckoning.of(trades, fills)
            bought = sum(Decimal(t["qty"]) for t in trades if t["isBuyer"])
            sold = sum(Decimal(t["qty"]) for t in trades if not t["isBuyer"])
            fee_in_btc = sum(Decimal(t["commission"]) for t in trades if t["commissionAsset"] == "BTC")
            held = bought - sold - fee_in_btc
            print(
                f"kill switch: open at the venue {len(left_open)}, BTC bought {bought}, sold {sold}, "
                f"fees in BTC {fee_in_btc}, held {held}; {reckoning.line('kill switch')}"
            )
            assert status["halt"]["reason"] == "KillSwitch"
            assert left_open == []
            assert sold > 0 and Decimal(0) <= held < STEP, "flatten sold back what the account holds, to the lot"
            assert (reckoning.lost, reckoning.unknown, reckoning.duplicated) == ((), (), 0)
            assert (trading().get("nodeState"), trading().get("openOrders")) == ("Stopped", 0)

            # Switched off: nothing starts by itself; the strategy resumes only when the desk resumes it.
            desk.set_namespace_annotation("livestrat.io/kill-switch", None)
            await wait_for(lambda: desk.is_true(NAME, "Halted") and not desk.pods(NAME), timeout=30)
            assert desk.phase(NAME) == "Halted" and desk.statefulset(NAME)["spec"]["replicas"] == 0
