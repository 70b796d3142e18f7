"""The risk guard: a strategy built to break each limit is stopped, says why, and gets no order through.

Each case runs a real ``livestrat runtime`` process on a tiny catalog whose price path makes
the breach certain (tests/support/catalogs.py), with a scripted strategy
(tests/support/scripted.py) that breaks the limit, then keeps submitting small market
orders on every bar: none of them may be accepted. Nothing is mocked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from strategy_runtime.ledger import SqliteLedger, run_key
from tests.support.catalogs import falling, flat, up_then_down, write_price_path
from tests.support.kube import LIVESTRATEGIES, wait_for
from tests.support.runtime_process import RuntimeProcess, paper_spec, strategy_config
from tests.support.scripted import read_events, scripted_strategy

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Case:
    limit: str
    risk: dict[str, Any]
    closes: list[float]
    steps: list[dict[str, Any]]
    keep_trying_from: int
    in_reason: str
    speed: float = 0
    halt_policy: str = "cancelOrders"
    entry_fills: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def create_strategy(emulator, config) -> None:
    emulator.add_namespace(config.strategy.namespace)
    manifest = {
        "apiVersion": "livestrat.io/v1alpha1",
        "kind": "LiveStrategy",
        "metadata": {"name": config.strategy.name},
        "spec": config.spec.to_wire(),
    }
    emulator.create_object(LIVESTRATEGIES, manifest, namespace=config.strategy.namespace)


def pushed_risk(emulator, config, state: str) -> dict | None:
    stored = emulator.read_object(LIVESTRATEGIES, config.strategy.name, namespace=config.strategy.namespace)
    risk = (stored or {}).get("status", {}).get("risk") or {}
    return risk if risk.get("state") == state else None


BUY_01 = {"bar": 2, "do": "market", "side": "BUY", "quantity": "0.1", "tag": "entry"}

CASES = [
    Case(
        "maxPosition",
        {"maxPosition": 0.05},
        flat(20),
        [BUY_01],
        keep_trying_from=3,
        in_reason="net position 0.100000 BTCUSDT.BINANCE exceeds maxPosition 0.05",
        halt_policy="flatten",
    ),
    # 0.1 BTC at 40,000 loses about 20 USDT a bar as the price falls 0.5% a bar: past 100 by bar 8
    Case(
        "maxDailyLoss",
        {"maxDailyLoss": 100},
        falling(30),
        [BUY_01],
        keep_trying_from=12,
        in_reason="the day's PnL",
    ),
    # up 10 bars (~+200 USDT), then down: 150 below the peak while the day is still in profit
    Case(
        "maxDrawdown",
        {"maxDrawdown": 150, "maxDailyLoss": 1000},
        up_then_down(40, turn=12),
        [BUY_01],
        keep_trying_from=25,
        in_reason="below its peak",
        halt_policy="flatten",
    ),
    # a MARGIN account and bars only: NautilusTrader's RiskEngine skips its notional check here
    Case(
        "maxNotionalPerOrder",
        {"maxNotionalPerOrder": 1000},
        flat(20),
        [BUY_01],
        keep_trying_from=3,
        in_reason="notional 4000.00 exceeds maxNotionalPerOrder 1000",
        entry_fills=0,
    ),
    # 8 orders in one bar against 5 a market minute (a paper replay counts market time: speed 3000)
    Case(
        "maxOrderSubmitRate",
        {"maxOrderSubmitRate": "5/00:01:00"},
        flat(40),
        [{"bar": 2, "do": "limit", "side": "BUY", "quantity": "0.01", "offset": -0.2, "count": 8, "tag": "burst"}],
        keep_trying_from=4,
        in_reason="Exceeded MAX_ORDER_SUBMIT_RATE",
        speed=3000,
        entry_fills=0,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.limit for c in CASES])
async def test_a_strategy_breaking_a_limit_is_halted_with_the_reason_and_no_order_gets_through(
    tmp_path, case, emulator, kubeconfig_path
):
    events_path = tmp_path / "events.jsonl"
    catalog = write_price_path(tmp_path / "catalog", case.closes)
    strategy = scripted_strategy(str(events_path), steps=case.steps, keep_trying_from=case.keep_trying_from)
    spec = paper_spec(
        strategy,
        risk={"onBreach": "HaltInPlace", **case.risk},
        haltPolicy=case.halt_policy,
        data={"catalog": {"emptyDir": {}}, "replay": {"speed": case.speed}},
    )
    config, path = strategy_config(tmp_path, spec, catalog=catalog, report_status=True)
    create_strategy(emulator, config)
    runtime = RuntimeProcess.start(config, path, env={"KUBECONFIG": str(kubeconfig_path)})
    try:
        await runtime.wait_ready()
        state = await runtime.wait_until(
            lambda s: s["risk"]["state"] == "Halted" and s["trading"]["replay"]["finished"],
            what=f"a {case.limit} halt",
        )
        pushed = await wait_for(lambda: pushed_risk(emulator, config, "Halted"), timeout=10)
        assert runtime.process.poll() is None, "a risk halt keeps the pod up (the operator applies onBreach)"
        runtime.signal()
        code, _ = await runtime.wait_exit(timeout=30)
    finally:
        runtime.kill()

    # the reason, in /state and in the status pushed into the LiveStrategy
    risk = state["risk"]
    assert {k: pushed[k] for k in ("state", "breachedLimit", "reason", "breachedAt")} == {
        k: risk[k] for k in ("state", "breachedLimit", "reason", "breachedAt")
    }
    assert risk["breachedLimit"] == case.limit
    assert case.in_reason in risk["reason"]
    assert risk["breachedAt"].endswith("Z")
    assert state["trading"]["openOrders"] == 0
    if case.halt_policy == "flatten":
        assert state["trading"]["positions"] == []
    assert code == 0, runtime.output()

    # no order submitted after the breach was accepted: every later order was denied
    events = read_events(str(events_path))
    final: dict[str, str] = {}
    for e in events:
        if "event" in e:
            final[e["order"]] = e["event"]
    tried = [e["submit"] for e in events if e.get("tag") == "keep-trying"]
    assert tried, "the strategy kept trying after the breach"
    assert {final[o] for o in tried} == {"OrderDenied"}
    accepted_after = [
        e for e in events if e.get("event") in ("OrderAccepted", "OrderFilled") and e["bar"] >= case.keep_trying_from
    ]
    assert all("LIVESTRAT_HALT" in e["tags"] for e in accepted_after), accepted_after

    # the ledger holds the entry and the halt's closing fill only
    async with SqliteLedger(config.ledger.sqlite_path, config.strategy.key) as ledger:
        fills = await ledger.fills(run_key(config.strategy.key, 1))  # the paper runtime's first (and only) run
    closes = 1 if case.halt_policy == "flatten" and case.entry_fills else 0
    assert len(fills) == case.entry_fills + closes
    if case.limit == "maxNotionalPerOrder":
        entry = next(e for e in events if e.get("event") == "OrderDenied" and "entry" in e["tags"])
        assert "maxNotionalPerOrder" in entry["reason"]
    if case.limit == "maxOrderSubmitRate":
        denied = [e for e in events if e.get("event") == "OrderDenied" and "burst" in e["tags"]]
        assert [e["reason"] for e in denied] == ["Exceeded MAX_ORDER_SUBMIT_RATE"] * 3
        burst = [e["submit"] for e in events if e.get("tag") == "burst"]
        assert sorted(final[o] for o in burst) == ["OrderCanceled"] * 5 + ["OrderDenied"] * 3


async def test_an_order_that_cannot_be_priced_is_denied_when_a_notional_limit_is_set(tmp_path):
    # A market order sent when the strategy starts, before any price exists: the notional limit
    # cannot be checked, so the order does not go out (denied, not a breach: nothing broke yet).
    events_path = tmp_path / "events.jsonl"
    catalog = write_price_path(tmp_path / "catalog", flat(20))
    early = {"bar": 0, "do": "market", "side": "BUY", "quantity": "0.1", "tag": "unpriced"}
    later = {"bar": 3, "do": "market", "side": "BUY", "quantity": "0.01", "tag": "priced"}
    spec = paper_spec(scripted_strategy(str(events_path), steps=[early, later]), risk={"maxNotionalPerOrder": 1000})
    config, path = strategy_config(tmp_path, spec, catalog=catalog)
    runtime = RuntimeProcess.start(config, path)
    try:
        await runtime.wait_ready()
        state = await runtime.wait_until(lambda s: s["trading"]["replay"]["finished"], what="the replay's end")
        runtime.signal()
        code, _ = await runtime.wait_exit(timeout=30)
    finally:
        runtime.kill()
    assert code == 0, runtime.output()
    events = read_events(str(events_path))
    unpriced = [e for e in events if e.get("event") and "unpriced" in e["tags"]]
    assert [e["event"] for e in unpriced] == ["OrderDenied"], unpriced  # it never reached the venue
    assert "cannot be priced" in unpriced[0]["reason"] and "maxNotionalPerOrder 1000" in unpriced[0]["reason"]
    assert state["risk"]["state"] == "Active"
    # once there is a price, orders are checked and pass
    assert any(e.get("event") == "OrderFilled" and "priced" in e["tags"] for e in events)


async def test_a_strategy_with_emulated_brackets_halted_by_a_breach_leaves_no_order_of_any_kind(
    tmp_path, emulator, kubeconfig_path
):
    # Brackets the node's OrderEmulator holds (entry EMULATED, stop-loss and take-profit INITIALIZED until
    # the entry fills) are open orders: counted while they rest, cancelled by the halt, and a halted
    # strategy that keeps submitting emulated brackets gets none of them past the gate, not even into the
    # emulator. One market minute a second, so /state can be read while the first bracket rests.
    events_path = tmp_path / "events.jsonl"
    catalog = write_price_path(tmp_path / "catalog", flat(14))
    resting = {"bar": 1, "do": "bracket", "side": "BUY", "quantity": "0.01", "offset": -0.2, "emulated": True}
    breach = {"bar": 5, "do": "market", "side": "BUY", "quantity": "0.1", "tag": "entry"}
    strategy = scripted_strategy(
        str(events_path),
        steps=[{**resting, "tag": "resting"}, breach],
        keep_trying_from=6,
        keep_trying_with="emulated-bracket",
    )
    spec = paper_spec(
        strategy,
        risk={"onBreach": "HaltInPlace", "maxPosition": 0.05},
        haltPolicy="flatten",
        data={"catalog": {"emptyDir": {}}, "replay": {"speed": 60}},
    )
    config, path = strategy_config(tmp_path, spec, catalog=catalog, report_status=True)
    create_strategy(emulator, config)
    runtime = RuntimeProcess.start(config, path, env={"KUBECONFIG": str(kubeconfig_path)})
    try:
        await runtime.wait_ready()
        resting_state = await runtime.wait_until(
            lambda s: s["trading"]["openOrders"] == 3, what="the emulated bracket counted as 3 open orders"
        )
        state = await runtime.wait_until(
            lambda s: s["risk"]["state"] == "Halted" and s["trading"]["replay"]["finished"],
            what="a maxPosition halt and the replay's end",
        )
        runtime.signal()
        code, _ = await runtime.wait_exit(timeout=30)
    finally:
        runtime.kill()

    assert resting_state["risk"]["state"] == "Active"
    assert state["trading"]["openOrders"] == 0
    assert state["trading"]["positions"] == []
    assert code == 0, runtime.output()  # no order of any kind left (5: the halt left orders)

    events = read_events(str(events_path))
    final: dict[str, str] = {}
    for e in events:
        if "event" in e:
            final[e["order"]] = e["event"]
    first = [e["submit"] for e in events if e.get("tag") == "resting"]
    assert [final[o] for o in first] == ["OrderCanceled"] * 3, "the resting bracket: entry, stop-loss, take-profit"
    tried = [e["submit"] for e in events if e.get("tag") == "keep-trying"]
    assert len(tried) >= 3 * 5, "the strategy kept submitting brackets after the breach"
    assert {final.get(o) for o in tried} == {"OrderDenied"}, "every order of every later bracket was denied"
    assert not [e for e in events if e.get("event") == "OrderEmulated" and e["bar"] >= 6]
