"""Two live strategies on one Binance account under a RiskBudget, the whole way: the real operator, a real runtime
pod for each, the venue emulator.

The account's two strategies trade different instruments (BTCUSDT and ETHUSDT, spot): one live strategy per
account and instrument (strategy_operator/decide/claims.py), so both get a pod. They share the
credentials Secret (one account at the venue) and the PostgreSQL ledger (its DSN Secret); each pod is the real
``livestrat runtime`` the stand-in kubelet starts, trading through NautilusTrader's real Binance adapter at the
emulator (``LIVESTRAT_VENUE_ENDPOINTS``, nothing else changed). Each buys on its second bar and rests three BUY
orders 20 % below the market. What is checked is asked of the venue.

- ``HaltAll``: the budget's gross exposure limit is lowered to one neither member's position breaks alone and
  their sum does. The operator halts both; each runtime applies its own ``haltPolicy: cancelOrders``: no order
  of the account is left open at the venue, the positions are still held (a budget closes nothing nobody asked
  to close), every trade the venue made is in the ledger once, under the strategy that made it. The breach
  stays latched with the limit raised again, and the budget's acknowledgement resumes both: they trade at the
  venue again.
- ``HaltBreacher``: the same breach halts only the member with the larger gross exposure; the other keeps
  trading, and its orders on the same account stay open at the venue.
- ``ReduceOnly``: both keep buying a little on every bar; the limit is lowered below their sum. Neither halts;
  from then on every order that adds to a position is denied at each runtime's gate, and the venue sees none.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from livestrat.api.spec import SampleData
from livestrat.kube_emulator.kubelet import Kubelet
from strategy_runtime.paper.catalog import write_sample_catalog
from tests.support.desk import Desk
from tests.support.kube import wait_for
from tests.support.live_runtime import SPOT, Reckoning, ledger_fills, story_spec
from tests.support.operator import fast_settings, running_operator
from tests.support.runtime_process import ROOT
from tests.support.scripted import read_events, scripted_strategy
from tests.support.venue_emulator_process import ENV_VENUE_ENDPOINTS, KEYS, EmulatedVenue, scenario, venue_emulator

pytestmark = pytest.mark.slow

NAMESPACE = "live-desk"
BUDGET = "binance-main"
ACK = "livestrat.io/risk-acknowledged"
ETH = "ETHUSDT.BINANCE"


class Member:
    """A member's instrument and what its script buys: the market BUY on bar 2 (about 840 and 1,380 USDT at the
    sample's prices), each of its three resting BUYs, and its small BUY on every bar when it keeps trying."""

    def __init__(self, instrument: str, entry: str, resting: str, small: str) -> None:
        self.instrument, self.entry, self.resting, self.small = instrument, entry, resting, small
        self.symbol = instrument.split(".")[0]


MEMBERS = {"trend-btc": Member(SPOT, "0.02", "0.01", "0.001"), "trend-eth": Member(ETH, "0.6", "0.1", "0.01")}
BALANCES = {"USDT": "1000000", "BTC": "1", "ETH": "10"}
SPEED = 120  # two one-minute bars a wall second
RESTING = 3


def secret(name: str, data: dict[str, str]) -> dict:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque", "data": encoded}


def budget(max_gross: float, on_breach: str) -> dict:
    return {
        "apiVersion": "livestrat.io/v1alpha1",
        "kind": "RiskBudget",
        "metadata": {"name": BUDGET},
        "spec": {
            "members": list(MEMBERS),
            "currency": "USDT",
            "limits": {"maxGrossExposure": max_gross},
            "onBreach": on_breach,
        },
    }


def events_path(tmp_path, name: str) -> str:
    return str(tmp_path / f"{name}.jsonl")


def strategy(name: str, tmp_path, keep_trying: bool) -> dict[str, Any]:
    member = MEMBERS[name]
    steps = [
        {"bar": 2, "do": "market", "side": "BUY", "quantity": member.entry, "tag": "entry"},
        {"bar": 2, "do": "limit", "side": "BUY", "quantity": member.resting, "offset": -0.2, "count": RESTING},
    ]
    more = {"keep_trying_from": 3, "keep_trying_quantity": member.small} if keep_trying else {}
    script = scripted_strategy(events_path(tmp_path, name), member.instrument, steps=steps, **more)
    # credentials from the Secret "keys" (the same account for both), the ledger's DSN from "ledger-dsn"
    spec = story_spec(script, member.instrument, haltPolicy="cancelOrders")
    return {"apiVersion": "livestrat.io/v1alpha1", "kind": "LiveStrategy", "metadata": {"name": name}, "spec": spec}


def trading(desk: Desk, name: str) -> dict:
    return desk.status(name).get("trading") or {}


def holding(desk: Desk, name: str) -> bool:
    """Its entry filled and its resting orders accepted at the venue, as its runtime reports."""
    state = trading(desk, name)
    return (state.get("fills") or 0) >= 1 and (state.get("openOrders") or 0) >= RESTING and bool(state.get("positions"))


def member_gross(desk: Desk) -> dict[str, Decimal]:
    """Each member's gross exposure as the budget counts it (its row in the budget's status)."""
    rows = desk.budget_status(BUDGET).get("members") or []
    return {r["name"]: Decimal(r["grossExposure"].split()[0]) for r in rows if r.get("grossExposure")}


async def reckonings(venue: EmulatedVenue, dsn: str) -> dict[str, Reckoning]:
    """Per member: the venue's trades of its symbol against its ledger's fills."""
    trades = await venue.admin.trades()
    return {
        name: Reckoning.of(
            [t for t in trades if t["symbol"] == member.symbol], await ledger_fills(dsn, f"{NAMESPACE}/{name}")
        )
        for name, member in MEMBERS.items()
    }


async def until(condition, what: str, timeout: float = 90.0) -> None:
    """Poll the async ``condition()`` until it is true."""
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def account_pair(
    emulator, kube_env, tmp_path, dsn: str, on_breach: str, *, keep_trying: bool = False
) -> AsyncIterator[tuple[Desk, EmulatedVenue]]:
    """Both members running under a budget of ``on_breach`` whose limit nothing reaches, each holding its
    position and its resting orders at the venue, counted by the budget."""
    # one catalog of both instruments' one-minute bars: the emulator serves both symbols to one account
    catalog = tmp_path / "catalog"
    write_sample_catalog(str(catalog), [SPOT, ETH], SampleData(bars=3000, seed=11), with_ticks=False)
    emulator.add_namespace(NAMESPACE)
    keys = {"api-key": KEYS.api_key, "api-secret": KEYS.api_secret}
    emulator.create_object("v1/secrets", secret("keys", keys), namespace=NAMESPACE)
    emulator.create_object("v1/secrets", secret("ledger-dsn", {"dsn": dsn}), namespace=NAMESPACE)
    desk = Desk(emulator, kube_env).in_namespace(NAMESPACE)
    instruments = [m.instrument for m in MEMBERS.values()]
    async with venue_emulator(
        tmp_path / "venue", catalog=catalog, instruments=instruments, scenario=scenario(BALANCES), speed=SPEED
    ) as venue:
        environ = {"PYTHONPATH": str(ROOT), ENV_VENUE_ENDPOINTS: venue.endpoints}
        async with (
            Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kube_env, runtime=True, environ=environ),
            running_operator(emulator, fast_settings(live_namespaces=[NAMESPACE], stale_after_seconds=60)),
        ):
            await desk.apply_budget(budget(1e9, on_breach))
            for name in MEMBERS:
                await desk.apply(strategy(name, tmp_path, keep_trying))
            await wait_for(lambda: all(holding(desk, n) for n in MEMBERS), timeout=120)
            for member in MEMBERS.values():
                assert len(await venue.admin.open_orders(member.symbol)) == RESTING
            # the budget counts both: each member's position, at its moving mark price, in one account's figures
            await wait_for(lambda: all(member_gross(desk).get(n) for n in MEMBERS), timeout=30)
            status = desk.budget_status(BUDGET)
            assert sorted(i["instrument"] for i in status["instruments"]) == sorted(instruments)
            assert status["state"] == "Active" and status["memberCount"] == "2/2"
            yield desk, venue


async def test_two_live_strategies_on_one_account_halt_together_when_their_sum_breaks_the_budget(
    emulator, kube_env, tmp_path, pg_database
):
    async with account_pair(emulator, kube_env, tmp_path, pg_database, "HaltAll") as (desk, venue):
        each = member_gross(desk)
        total = sum(each.values())
        # a limit neither member breaks alone, and their sum does (with room for the prices to move meanwhile)
        limit = float(max(each.values()) + (total - max(each.values())) / 2)

        def marked() -> bool:
            return all(
                f"livestrat.io/budget-halt.{BUDGET}" in (desk.get(n)["metadata"].get("annotations") or {})
                for n in MEMBERS
            )

        started = time.monotonic()
        seen: dict[str, float] = {}
        await desk.apply_budget(budget(limit, "HaltAll"))
        while len(seen) < 3:
            assert time.monotonic() - started < 90, f"timed out waiting for the halt: {seen}"
            if "marked" not in seen and marked():
                seen["marked"] = time.monotonic() - started
            if "venue clear" not in seen and not await venue.admin.open_orders():
                seen["venue clear"] = time.monotonic() - started
            if "halted" not in seen and all(desk.phase(n) == "RiskHalted" for n in MEMBERS):
                seen["halted"] = time.monotonic() - started
            await asyncio.sleep(0.05)
        status = desk.budget_status(BUDGET)
        trades = await venue.admin.trades()
        reckoned = await reckonings(venue, pg_database)
        print(
            f"live budget HaltAll: gross {total} USDT ({', '.join(f'{n} {v}' for n, v in each.items())}), limit "
            f"lowered to {limit:.2f} USDT (from kubectl apply) -> "
            + ", ".join(f"{what} after {at:.2f} s" for what, at in seen.items())
            + "; "
            + "; ".join(r.line(n) for n, r in reckoned.items())
        )
        assert status["state"] == "Breached"
        assert status["breach"]["limits"] == ["maxGrossExposure"] and status["breach"]["halted"] == list(MEMBERS)
        assert await venue.admin.open_orders() == [], "cancelOrders: no resting order of either is left at the venue"
        assert all(t["isBuyer"] for t in trades), "a budget's halt closes no position nobody asked to close"
        for name, reckoning in reckoned.items():
            assert reckoning.at_venue == 1, f"{name}: its entry, and nothing else, traded"
            assert (reckoning.lost, reckoning.unknown, reckoning.duplicated) == ((), (), 0), name
            assert desk.status(name)["halt"]["reason"] == "RiskLimitBreached"
            assert desk.pods(name) == []
            assert (trading(desk, name).get("nodeState"), trading(desk, name).get("openOrders")) == ("Stopped", 0)

        # latched: the limit raised again (the figures well within it) releases nothing
        breached_at = status["breach"]["breachedAt"]
        await desk.apply_budget(budget(1e9, "HaltAll"))
        raised = desk.budget(BUDGET)["metadata"]["generation"]
        await wait_for(lambda: desk.budget_status(BUDGET).get("observedGeneration") == raised, timeout=30)
        assert desk.budget_status(BUDGET)["state"] == "Breached"
        assert all(desk.phase(n) == "RiskHalted" and desk.pods(n) == [] for n in MEMBERS)

        # acknowledged on the budget: both resume and trade at the venue again (their scripts run again)
        await desk.annotate_budget(BUDGET, ACK, breached_at)
        await wait_for(lambda: all(desk.phase(n) == "Running" for n in MEMBERS), timeout=60)
        await wait_for(lambda: all(trading(desk, n).get("nodeState") == "Running" for n in MEMBERS), timeout=90)
        for member in MEMBERS.values():

            async def resting(symbol: str = member.symbol) -> bool:
                return len(await venue.admin.open_orders(symbol)) == RESTING

            await until(resting, f"{member.symbol}'s resting orders at the venue again")
        assert desk.budget_status(BUDGET)["state"] == "Active" and "breach" not in desk.budget_status(BUDGET)


async def test_reduce_only_halts_no_live_member_and_the_venue_sees_no_order_that_adds(
    emulator, kube_env, tmp_path, pg_database
):
    async with account_pair(emulator, kube_env, tmp_path, pg_database, "ReduceOnly", keep_trying=True) as (
        desk,
        venue,
    ):
        limit = float(sum(member_gross(desk).values()) / 2)
        await desk.apply_budget(budget(limit, "ReduceOnly"))
        await wait_for(lambda: desk.budget_status(BUDGET).get("state") == "Breached", timeout=60)
        # the reduce-only share reaches each runtime with its next status push, and its gate turns the buys away
        reason = "breached under onBreach ReduceOnly"

        def turned_away(name: str) -> int:
            return sum(reason in (e.get("reason") or "") for e in read_events(events_path(tmp_path, name)))

        # three buys each turned away for the reduce-only breach (one a bar: the strategy keeps trying)
        await wait_for(lambda: all(turned_away(n) >= 3 for n in MEMBERS), timeout=60)
        status = desk.budget_status(BUDGET)
        at_venue = {o["clientOrderId"] for o in await venue.admin.orders()}
        reckoned = await reckonings(venue, pg_database)
        counts = {}
        for name in MEMBERS:
            events = read_events(events_path(tmp_path, name))
            first = next(i for i, e in enumerate(events) if reason in (e.get("reason") or ""))
            denied = {e["order"] for e in events if e.get("event") == "OrderDenied"}
            later = {e["submit"] for e in events[first:] if "submit" in e}
            # past the gate, an order is submitted (NautilusTrader's OrderSubmitted, then the venue's answer)
            passed = {e["order"] for e in events if e.get("event") == "OrderSubmitted"}
            counts[name] = (len(denied), len(later))
            assert later and not later & passed, f"{name}: every buy after the first reduce-only denial is denied"
            assert not denied & at_venue, f"{name}: the venue saw an order its gate denied"
            assert desk.phase(name) == "Running" and desk.status(name)["budget"]["reduceOnly"] is True
            assert (reckoned[name].lost, reckoned[name].unknown, reckoned[name].duplicated) == ((), (), 0), name
        print(
            f"live budget ReduceOnly: limit {limit:.2f} USDT; denied at the gate, all / after the first reduce-only "
            f"denial: {counts}; orders at the venue {len(at_venue)}; "
            + "; ".join(r.line(n) for n, r in reckoned.items())
        )
        assert status["breach"]["onBreach"] == "ReduceOnly" and status["breach"]["halted"] == []


async def test_halt_breacher_halts_the_larger_live_member_and_leaves_the_others_orders_at_the_venue(
    emulator, kube_env, tmp_path, pg_database
):
    async with account_pair(emulator, kube_env, tmp_path, pg_database, "HaltBreacher") as (desk, venue):
        each = member_gross(desk)
        total = sum(each.values())
        larger, smaller = sorted(MEMBERS, key=lambda n: each[n], reverse=True)
        limit = float(each[larger] + each[smaller] / 2)  # neither alone, the sum
        await desk.apply_budget(budget(limit, "HaltBreacher"))
        await wait_for(lambda: desk.phase(larger) == "RiskHalted", timeout=90)
        status = desk.budget_status(BUDGET)
        reckoned = await reckonings(venue, pg_database)
        left = {m.symbol: len(await venue.admin.open_orders(m.symbol)) for m in MEMBERS.values()}
        print(
            f"live budget HaltBreacher: gross {total} USDT ({', '.join(f'{n} {v}' for n, v in each.items())}), limit "
            f"{limit:.2f} USDT; open at the venue after the halt {left}; "
            + "; ".join(r.line(n) for n, r in reckoned.items())
        )
        assert status["breach"]["onBreach"] == "HaltBreacher" and status["breach"]["halted"] == [larger]
        assert left == {MEMBERS[larger].symbol: 0, MEMBERS[smaller].symbol: RESTING}, "only the breacher's canceled"
        assert desk.phase(smaller) == "Running" and desk.pods(smaller)
        assert trading(desk, smaller).get("nodeState") == "Running"
        for name, reckoning in reckoned.items():
            assert (reckoning.lost, reckoning.unknown, reckoning.duplicated) == ((), (), 0), name
