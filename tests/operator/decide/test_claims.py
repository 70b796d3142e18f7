"""One claim per live venue account and instrument: which live strategy holds it (no API server, no clock)."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime

from livestrat.api.accounts import claimed_account
from livestrat.api.status import NettingClaim
from strategy_operator.decide.claims import NETTING_ACCOUNT_IN_USE, Claimant, blocked, claim_problems, record
from strategy_operator.observe.claims import claimant_of, claimants_of

ACCOUNT = claimed_account({"mode": "live", "venue": {"adapter": "binance", "credentialsSecret": {"name": "desk-keys"}}})


def claimant(name: str, created: str, *instruments: str, active: bool = False, account: str | None = ACCOUNT):
    return Claimant(name, f"uid-{name}", created, account or "", instruments or ("BTCUSDT.BINANCE",), active)


def live(adapter: str = "binance", **venue) -> dict:
    return {"mode": "live", "venue": {"adapter": adapter, "credentialsSecret": {"name": "desk-keys"}, **venue}}


def test_an_account_is_the_adapter_market_environment_and_credentials_secret_and_every_live_one_claims():
    assert claimed_account(live()) == claimed_account(live(accountType="spot")) == ACCOUNT  # the default, spelt out
    assert ACCOUNT == "binance spot (live), Secret desk-keys"
    others = {
        claimed_account(live(testnet=True)),
        claimed_account(live(accountType="margin")),
        claimed_account(live(credentialsSecret={"name": "desk-b-keys"})),
        claimed_account(live("bybit")),
    }
    assert ACCOUNT not in others and None not in others and len(others) == 4
    # NautilusTrader's Binance futures clients are HEDGING, and claim all the same: a live strategy takes every
    # order and position of its instruments on its account for its own (external_order_claims)
    usdt, coin = claimed_account(live(accountType="usdtFutures")), claimed_account(live(accountType="coinFutures"))
    assert usdt == "binance usdtFutures (live), Secret desk-keys"
    assert coin == "binance coinFutures (live), Secret desk-keys"
    assert ACCOUNT not in {usdt, coin}
    # paper trades its own simulated account; a spec that does not say which account claims nothing
    assert claimed_account({**live(), "mode": "paper"}) is None
    assert claimed_account({"mode": "live", "venue": "binance"}) is None
    assert claimed_account({"mode": "live", "venue": {"adapter": "binance"}}) is None
    # Interactive Brokers: the gateway holds the login; the account traded is options.account_id
    ib = claimed_account(live("interactive_brokers", options={"account_id": "DU1234567"}))
    assert ib == claimed_account(
        live("interactive_brokers", options={"account_id": "DU1234567"}, credentialsSecret={"name": "other"})
    )
    assert ib != claimed_account(live("interactive_brokers", options={"account_id": "DU7654321"}))


def test_the_oldest_holds_an_instrument_whatever_order_the_others_are_seen_in():
    first = claimant("zeta", "2026-12-06T10:00:00Z")
    second = claimant("alpha", "2026-12-06T10:00:05Z")
    same_second = claimant("beta", "2026-12-06T10:00:05Z")  # created in the same second as alpha: by name
    everyone = [first, second, same_second]
    for order in itertools.permutations(everyone):
        assert [blocked(c, order) for c in everyone] == [
            [],
            [dataclasses.replace(blocked(second, [first])[0])],
            blocked(same_second, [first]),
        ]
        assert blocked(same_second, [second]) != [] and blocked(second, [same_second]) == []
    assert blocked(second, everyone)[0].holder.name == "zeta"


def test_a_strategy_that_runs_keeps_its_claim_against_an_older_one_that_resumes():
    older = claimant("older", "2026-12-06T10:00:00Z")
    running = claimant("running", "2026-12-06T11:00:00Z", active=True)
    assert [b.holder.name for b in blocked(older, [running])] == ["running"]
    assert blocked(running, [older]) == []


def test_two_live_strategies_on_one_futures_account_and_instrument_conflict_as_on_spot():
    perp = claimed_account(live(accountType="usdtFutures"))
    holder = claimant("trend-perp", "2026-12-06T10:00:00Z", "BTCUSDT-PERP.BINANCE", active=True, account=perp)
    second = claimant("mean-revert-perp", "2026-12-06T10:00:09Z", "BTCUSDT-PERP.BINANCE", account=perp)
    assert [(b.instrument, b.holder.name) for b in blocked(second, [holder])] == [
        ("BTCUSDT-PERP.BINANCE", "trend-perp")
    ]
    [problem] = claim_problems(second, [holder])
    assert problem.reason == NETTING_ACCOUNT_IN_USE == "NettingAccountInUse"  # the reason users match on, kept
    assert "binance usdtFutures (live), Secret desk-keys" in problem.message and "NETTING" not in problem.message


def test_other_instruments_or_other_accounts_do_not_conflict():
    btc = claimant("btc", "2026-12-06T10:00:00Z", "BTCUSDT.BINANCE", active=True)
    eth = claimant("eth", "2026-12-06T10:00:01Z", "ETHUSDT.BINANCE")
    other_account = claimant("b", "2026-12-06T10:00:02Z", "BTCUSDT.BINANCE", account="binance spot (live), Secret b")
    assert blocked(eth, [btc]) == [] and blocked(other_account, [btc, eth]) == []
    # an overlap in one instrument is enough
    both = claimant("both", "2026-12-06T10:00:03Z", "ETHUSDT.BINANCE", "BTCUSDT.BINANCE")
    assert [(b.instrument, b.holder.name) for b in blocked(both, [btc, eth])] == [
        ("BTCUSDT.BINANCE", "btc"),
        ("ETHUSDT.BINANCE", "eth"),
    ]


def test_the_problem_names_the_holder_the_account_the_instrument_and_what_to_do():
    holder = claimant("trend-btc", "2026-12-06T10:00:00Z", active=True)
    [problem] = claim_problems(claimant("mean-revert-btc", "2026-12-06T10:00:09Z"), [holder])
    assert problem.reason == NETTING_ACCOUNT_IN_USE
    for said in ("trend-btc", "binance spot (live), Secret desk-keys", "BTCUSDT.BINANCE (held by trend-btc)"):
        assert said in problem.message
    assert "another account or subaccount" in problem.message and "halt and delete trend-btc" in problem.message
    assert "No pod starts" in problem.message
    # both run: neither is halted, and the message says how to halt one
    [both] = claim_problems(claimant("mean-revert-btc", "2026-12-06T10:00:09Z", active=True), [holder])
    assert (
        "Both run on it" in both.message and "kubectl scale livestrategy mean-revert-btc --replicas=0" in both.message
    )
    assert claim_problems(None, [holder]) == [] and claim_problems(holder, []) == []


def _reconcile(world: dict[str, Claimant], name: str, view: list[Claimant]) -> None:
    """One reconciliation of ``name`` as the operator makes it: decided on its (maybe stale) cache view; a start
    decided again on the API server's view (every other claimant, as it is) before its pod is asked for."""
    me = world[name]
    if me.active or blocked(me, view):
        return
    confirmed = [c for other, c in world.items() if other != name]
    if not blocked(me, confirmed):
        world[name] = dataclasses.replace(me, active=True)


def test_over_every_order_of_reconciliation_and_every_stale_view_one_strategy_runs_and_it_is_the_same():
    created = {
        "a": claimant("a", "2026-12-06T10:00:01Z"),
        "b": claimant("b", "2026-12-06T10:00:00Z"),  # the oldest
        "c": claimant("c", "2026-12-06T10:00:00Z", "BTCUSDT.BINANCE", "ETHUSDT.BINANCE"),  # same second as b
        "d": claimant("d", "2026-12-06T10:00:02Z", "ETHUSDT.BINANCE"),
    }
    holders = set()
    for order in itertools.permutations(created):
        for staleness in itertools.product(("fresh", "no others yet", "no StatefulSets yet"), repeat=len(order)):
            world = dict(created)
            for name, cache in zip(order, staleness, strict=True):
                # a lagging cache shows none of the others (not in the claims index yet), or not their StatefulSets
                others = [c for other, c in world.items() if other != name]
                view = {
                    "fresh": others,
                    "no others yet": [],
                    "no StatefulSets yet": [dataclasses.replace(c, active=False) for c in others],
                }[cache]
                _reconcile(world, name, view)
            for name in order:  # the operator restarted: everyone decides again on full caches
                _reconcile(world, name, [c for other, c in world.items() if other != name])
            running = sorted(n for n, c in world.items() if c.active)
            holders.add(tuple(running))
    # b holds BTC (oldest; c is the same second, later by name), so c waits, and keeps ETH, which it would hold
    # against the younger d: a waiting strategy's claims do not pass on by themselves
    assert holders == {("b",)}


def test_a_halted_holder_keeps_its_claim_it_may_still_hold_a_position_at_the_venue():
    # trend ran first and was recorded; mean-revert is older (or created in the same second, earlier by name)
    halted = claimant("trend", "2026-12-06T10:00:05Z")
    halted = dataclasses.replace(halted, held=("BTCUSDT.BINANCE",), since="2026-12-06T10:00:06Z")
    waiting = claimant("mean-revert", "2026-12-06T10:00:05Z")
    assert [b.holder.name for b in blocked(waiting, [halted])] == ["trend"]
    assert blocked(halted, [waiting]) == []
    # its record keeps the instruments it traded even when its spec now trades others
    moved = dataclasses.replace(halted, instruments=("ETHUSDT.BINANCE",))
    assert [b.holder.name for b in blocked(waiting, [moved])] == ["trend"]
    # of two holders (both run), the one recorded first; one not recorded yet comes after
    unrecorded = claimant("aaa", "2026-12-06T09:00:00Z", active=True)
    assert blocked(halted, [unrecorded]) == [] and blocked(unrecorded, [halted])[0].holder.name == "trend"


def test_the_claim_is_recorded_when_the_pod_runs_as_holder_and_kept_while_halted():
    me = claimant("trend", "2026-12-06T10:00:00Z", "ETHUSDT.BINANCE", "BTCUSDT.BINANCE")
    now = datetime(2026, 12, 6, 10, 0, 7, tzinfo=UTC)
    first = record(me, None, runs=True, blocked=False, now=now)
    assert first == NettingClaim(
        account=ACCOUNT, instruments=["BTCUSDT.BINANCE", "ETHUSDT.BINANCE"], since="2026-12-06T10:00:07Z"
    )
    later = now.replace(hour=11)
    assert record(me, first, runs=True, blocked=False, now=later) is first  # unchanged: no write
    assert record(me, first, runs=False, blocked=False, now=later) is first  # halted: kept
    assert record(me, None, runs=True, blocked=True, now=later) is None  # runs without holding: never recorded
    # on the same account it only grows, its time kept; on another it is replaced
    fewer = dataclasses.replace(me, instruments=("SOLUSDT.BINANCE",))
    grown = record(fewer, first, runs=True, blocked=False, now=later)
    assert grown.instruments == ["BTCUSDT.BINANCE", "ETHUSDT.BINANCE", "SOLUSDT.BINANCE"] and grown.since == first.since
    elsewhere = dataclasses.replace(me, account="binance spot (live), Secret other")
    assert record(elsewhere, first, runs=True, blocked=False, now=later).account == elsewhere.account
    assert record(None, first, runs=True, blocked=False, now=later) is None  # paper: nothing claimed


def test_an_edit_to_another_account_releases_nothing_until_the_pod_starts_there():
    body = {
        "metadata": {"name": "trend", "uid": "u1", "creationTimestamp": "2026-12-06T10:00:00Z"},
        "spec": {**live(credentialsSecret={"name": "other-keys"}), "instruments": ["BTCUSDT.BINANCE"]},
        "status": {
            "nettingClaim": {"account": ACCOUNT, "instruments": ["BTCUSDT.BINANCE"], "since": "2026-12-06T10:00:01Z"}
        },
    }
    wanted, kept = claimants_of(body)
    assert wanted.account == "binance spot (live), Secret other-keys" and wanted.held == ()
    assert kept.account == ACCOUNT and kept.instruments == () and kept.held == ("BTCUSDT.BINANCE",)
    waiting = claimant("mean-revert", "2026-12-06T09:00:00Z")  # older, on the account trend still holds
    assert [b.holder.name for b in blocked(waiting, [kept])] == ["trend"]
    # now paper: still kept while halted; dropped once its (paper) pod runs
    paper_body = {**body, "spec": {**body["spec"], "mode": "paper"}}
    assert [c.account for c in claimants_of(paper_body)] == [ACCOUNT] and claimant_of(paper_body) is None
    recorded = NettingClaim.model_validate(body["status"]["nettingClaim"])
    now = datetime(2026, 12, 6, 11, tzinfo=UTC)
    assert record(None, recorded, runs=False, blocked=False, now=now) is recorded
    assert record(None, recorded, runs=True, blocked=False, now=now) is None
