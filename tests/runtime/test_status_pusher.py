"""The status pusher's rules, on a fake clock and a recording API (the real API path is in test_status_push.py).

Only the API server is replaced here: it is the network the pusher talks to, and these
rules (coalescing, heartbeat, backoff, the final push) are about when it talks. Where what the
server holds matters (a push that lands late, a CRD that prunes), it is the Kubernetes API
emulator's own merge patch, pruning and answers, called in-process (``EmulatedApiServer``).
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from livestrat.api.crd import build_crd
from livestrat.api.resource import CRD_NAME
from livestrat.api.status import RiskState, TradingState
from strategy_runtime.report.status_push import StatusPusher, StatusPushError, StatusSnapshot
from tests.support.kube import LIVESTRATEGIES
from tests.support.runtime_process import example_spec


class RecordingApi:
    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []
        self.down = False

    async def patch_status(self, patch: dict[str, Any]) -> None:
        if self.down:
            raise StatusPushError("the API server answered 503 Service Unavailable: down")
        self.patches.append(patch)

    async def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pusher_with(state: dict[str, Any]) -> tuple[StatusPusher, RecordingApi, Clock]:
    api, clock = RecordingApi(), Clock()

    def snapshot() -> StatusSnapshot:
        return StatusSnapshot(TradingState(fills=state["fills"], node_state="Running"), RiskState())

    return StatusPusher(api=api, snapshot=snapshot, interval=1, heartbeat_interval=10, clock=clock), api, clock


async def test_a_change_is_pushed_whole_and_nothing_is_pushed_while_nothing_changes():
    state = {"fills": 1}
    pusher, api, clock = pusher_with(state)
    assert await pusher.push_if_due() is True
    assert api.patches[0]["status"]["trading"]["fills"] == 1
    assert api.patches[0]["status"]["risk"]["state"] == "Active"
    assert api.patches[0]["status"]["trading"]["lastFill"] is None  # emptied fields are deleted (merge patch)
    for _ in range(9):
        clock.now += 1
        assert await pusher.push_if_due() is None
    assert len(api.patches) == 1

    state["fills"] = 2
    clock.now += 0.5
    assert await pusher.push_if_due() is True
    assert api.patches[-1]["status"]["trading"]["fills"] == 2


async def test_with_nothing_to_report_only_the_heartbeat_is_sent_every_heartbeat_interval():
    pusher, api, clock = pusher_with({"fills": 1})
    await pusher.push_if_due()
    clock.now += 9.9
    assert await pusher.push_if_due() is None
    clock.now += 0.1
    assert await pusher.push_if_due() is True
    assert api.patches[-1] == {"status": {"trading": {"heartbeat": api.patches[-1]["status"]["trading"]["heartbeat"]}}}


async def test_an_unreachable_api_server_is_retried_with_backoff_and_gets_the_latest_state():
    state = {"fills": 1}
    pusher, api, clock = pusher_with(state)
    api.down = True
    assert await pusher.push_if_due() is False
    assert await pusher.push_if_due() is None  # backing off: not hammering a server that is down
    delays = []
    for fills in range(2, 8):
        state["fills"] = fills
        before = clock.now
        while await pusher.push_if_due() is None:
            clock.now += 0.05
        delays.append(clock.now - before)
    assert delays[-1] > delays[0]  # the wait between attempts grows
    assert pusher.stats.consecutive_failures == 7

    api.down = False
    state["fills"] = 42
    while await pusher.push_if_due() is None:
        clock.now += 0.5
    assert [p["status"]["trading"]["fills"] for p in api.patches] == [42]  # not the states that failed
    assert pusher.stats.consecutive_failures == 0


async def test_the_final_push_goes_out_even_when_nothing_changed():
    pusher, api, clock = pusher_with({"fills": 3})
    await pusher.push_if_due()
    assert await pusher.final_push(deadline=clock.now + 1) is True
    assert len(api.patches) == 2 and api.patches[-1]["status"]["trading"]["fills"] == 3


class AnsweringApi(RecordingApi):
    """An API server that answers each patch with the whole object, as a merge patch of the status does."""

    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[str, Any] = {"status": {"budget": {"budget": "desk-usdt", "weight": 0.5}}}

    async def patch_status(self, patch: dict[str, Any]) -> dict[str, Any]:
        await super().patch_status(patch)
        return self.stored


async def test_each_answer_is_handed_over_and_a_failed_push_keeps_what_was_read_last():
    api, clock, answers = AnsweringApi(), Clock(), []
    state = {"fills": 1}

    def snapshot() -> StatusSnapshot:
        return StatusSnapshot(TradingState(fills=state["fills"], node_state="Running"), RiskState())

    pusher = StatusPusher(
        api=api, snapshot=snapshot, interval=1, heartbeat_interval=10, clock=clock, on_answer=answers.append
    )
    assert await pusher.push_if_due() is True
    assert answers[-1]["status"]["budget"]["budget"] == "desk-usdt"

    api.down = True  # the API server is away: nothing is handed over, the runtime keeps what it read last
    state["fills"] = 2
    clock.now += 1
    assert await pusher.push_if_due() is False
    assert len(answers) == 1

    api.down = False
    api.stored = {"status": {}}  # the operator took the share away meanwhile
    clock.now += 60
    assert await pusher.push_if_due() is True
    assert answers[-1] == {"status": {}}


async def test_a_failure_reading_the_answer_does_not_count_as_a_failed_push():
    def broken(_answer: Any) -> None:
        raise ValueError("a bug in what reads the answer")

    pusher = StatusPusher(
        api=AnsweringApi(),
        snapshot=lambda: StatusSnapshot(TradingState(node_state="Running"), RiskState()),
        interval=1,
        heartbeat_interval=10,
        clock=Clock(),
        on_answer=broken,
    )
    assert await pusher.push_if_due() is True
    assert pusher.stats.failures == 0


class LoadedApi:
    """An API server that takes a while with one push: it has the request, and applies it (then answers) a number of
    event-loop turns later; requests after it pass straight. A client that stops waiting does not take the request
    back: the server applies it all the same, after whatever passed it meanwhile (HTTP gives no way to withdraw a
    request once sent)."""

    TURNS = 50  # how long the held push takes, in event-loop turns (no wall clock)

    def __init__(self) -> None:
        self.status: dict[str, Any] = {}
        self.applied: list[str | None] = []  # each push's nodeState, in the order the server applied them
        self.hold_next = False
        self.holding = False

    def _apply(self, patch: dict[str, Any]) -> None:
        trading = patch["status"].get("trading") or {}
        self.status = {**self.status, **patch["status"]}
        self.applied.append(trading.get("nodeState"))

    async def patch_status(self, patch: dict[str, Any]) -> None:
        if not self.hold_next:
            self._apply(patch)
            return
        self.hold_next, self.holding = False, True
        done = asyncio.get_running_loop().create_future()

        async def later() -> None:  # the server's own work: not cancelled with the client's wait
            for _ in range(self.TURNS):
                await asyncio.sleep(0)
            self._apply(patch)
            self.holding = False
            done.set_result(None)

        self._server_task = asyncio.get_running_loop().create_task(later())
        await done

    async def close(self) -> None:
        pass


async def test_the_final_push_is_the_last_the_api_server_applies_even_when_a_push_was_still_on_its_way():
    # The halt: the runtime stops the periodic pushes and sends its final state (the position flattened). A periodic
    # push taken moments before (the position still open) that the API server has not applied yet must not land
    # after the final one: the status would show a position the runtime closed, for good.
    state = {"node_state": "Halting", "fills": 1}
    api, clock = LoadedApi(), Clock()

    def snapshot() -> StatusSnapshot:
        return StatusSnapshot(TradingState(fills=state["fills"], node_state=state["node_state"]), RiskState())

    pusher = StatusPusher(api=api, snapshot=snapshot, interval=0, heartbeat_interval=10, clock=clock)
    api.hold_next = True
    pusher.start()
    while not api.holding:  # the periodic push of "Halting" is at the API server, not applied yet
        await asyncio.sleep(0)
    state.update(node_state="Stopped", fills=2)  # the flatten's fill: the runtime's final state

    await pusher.stop(until=clock.now + 30)
    assert await pusher.final_push(deadline=clock.now + 30) is True
    while api.holding:  # whatever the server still holds lands now
        await asyncio.sleep(0)

    assert api.applied == ["Halting", "Stopped"]
    assert api.status["trading"]["nodeState"] == "Stopped" and api.status["trading"]["fills"] == 2


async def test_stopping_without_a_bound_does_not_wait_for_a_push_on_its_way():
    api, clock = LoadedApi(), Clock()
    pusher = StatusPusher(
        api=api,
        snapshot=lambda: StatusSnapshot(TradingState(node_state="Running"), RiskState()),
        interval=0,
        heartbeat_interval=10,
        clock=clock,
    )
    api.hold_next = True
    pusher.start()
    while not api.holding:
        await asyncio.sleep(0)
    await pusher.stop()  # closing the runtime: nothing to wait for
    assert api.holding and api.applied == []


# ------------------------------------------------------------------------------------------------
# What the API server holds, when a push the client gave up on lands late.
# ------------------------------------------------------------------------------------------------

NAMESPACE, NAME = "desk", "ema-cross-btc"
CRDS = "apiextensions.k8s.io/v1/customresourcedefinitions"


class EmulatedApiServer:
    """The status subresource of one LiveStrategy in the Kubernetes API emulator, called in-process: its merge patch,
    the pruning and defaulting of the CRD installed, the whole object as the answer. A push can be held: the client
    stops waiting (it sees the request time out, as ``KubernetesStatusApi`` does after ``REQUEST_TIMEOUT``) but the
    server has the request and applies it when ``land_held`` says, after whatever passed it meanwhile."""

    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator
        self.patches: list[dict[str, Any]] = []  # every patch that reached the server, in the order sent
        self.hold_next = False
        self.held: list[dict[str, Any]] = []
        emulator.add_namespace(NAMESPACE)
        manifest = {"apiVersion": "livestrat.io/v1alpha1", "kind": "LiveStrategy", "metadata": {"name": NAME}}
        emulator.create_object(LIVESTRATEGIES, {**manifest, "spec": example_spec()}, namespace=NAMESPACE)

    def _apply(self, patch: dict[str, Any]) -> dict[str, Any]:
        return self.emulator.patch_object(LIVESTRATEGIES, NAME, patch, namespace=NAMESPACE, subresource="status")

    async def patch_status(self, patch: dict[str, Any]) -> dict[str, Any]:
        self.patches.append(patch)
        if self.hold_next:
            self.hold_next = False
            self.held.append(patch)
            raise StatusPushError("TimeoutError: ")  # what KubernetesStatusApi says when its request timed out
        return self._apply(patch)

    def land_held(self) -> None:
        for patch in self.held:
            self._apply(patch)
        self.held.clear()

    def runtime_part(self) -> dict[str, Any]:
        """``status.trading`` (heartbeat left out) and ``status.risk``, as the API server holds them now."""
        status = self.emulator.read_object(LIVESTRATEGIES, NAME, namespace=NAMESPACE)["status"]
        trading = {k: v for k, v in status["trading"].items() if k != "heartbeat"}
        return {"trading": trading, "risk": status["risk"]}

    async def close(self) -> None:
        pass


def emulated_pusher(emulator: Any, state: dict[str, Any]) -> tuple[StatusPusher, EmulatedApiServer, Clock]:
    server, clock = EmulatedApiServer(emulator), Clock()

    def snapshot() -> StatusSnapshot:
        trading = TradingState(
            fills=state["fills"], node_state="Running", total_pnl=state["pnl"], slippage_bps=state.get("slippage")
        )
        risk = RiskState(state=state["risk"], reason=state.get("reason"), max_drawdown=state.get("max_drawdown"))
        return StatusSnapshot(trading, risk)

    return StatusPusher(api=server, snapshot=snapshot, interval=1, heartbeat_interval=10, clock=clock), server, clock


async def at_rest_for(pusher: StatusPusher, clock: Clock, seconds: int) -> None:
    """The pusher's loop while nothing changes: a look every interval (1 s)."""
    for _ in range(seconds):
        clock.now += 1
        await pusher.push_if_due()


async def test_a_push_that_timed_out_and_landed_after_a_newer_one_is_overwritten_within_a_heartbeat(emulator, caplog):
    # The risk guard halts the strategy. The push before the halt (still Active) timed out on the client's side, but
    # the API server had it and applied it after the halt's push: the status says Active with the older figures while
    # the runtime has halted. At rest only heartbeats follow; the status must not keep the older state for good.
    state = {"fills": 2, "pnl": "-120.00 USDT", "risk": "Active"}
    pusher, server, clock = emulated_pusher(emulator, state)
    caplog.set_level("WARNING", logger="livestrat.status")
    assert await pusher.push_if_due() is True

    state.update(fills=3, pnl="-180.00 USDT")  # push A: the client sees it time out, the server keeps it
    server.hold_next = True
    clock.now += 1
    assert await pusher.push_if_due() is False

    state.update(fills=4, pnl="-260.00 USDT", risk="Halted", reason="daily loss -260.00 USDT below -250")
    clock.now += 1
    assert await pusher.push_if_due() is True  # push B, accepted
    halted = server.runtime_part()
    assert halted["risk"]["state"] == "Halted"

    server.land_held()  # A lands after B
    assert server.runtime_part()["risk"]["state"] == "Active"
    caplog.clear()
    await at_rest_for(pusher, clock, 10)  # one heartbeat interval, nothing changes

    assert server.runtime_part() == halted
    assert pusher.stats.restored == 1
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "trading.fills" in warning.getMessage() and "risk.state" in warning.getMessage()
    assert "-180" not in warning.getMessage()  # which fields, not the figures

    sent = len(server.patches)
    await at_rest_for(pusher, clock, 30)  # healed: at rest again, only heartbeats
    assert len(server.patches) == sent + 3 and all(set(p["status"]) == {"trading"} for p in server.patches[sent:])
    assert all(set(p["status"]["trading"]) == {"heartbeat"} for p in server.patches[sent:])


async def test_a_push_that_timed_out_is_not_taken_as_accepted_when_the_state_goes_back(emulator):
    # A push times out on the client's side, and the server applies it. The state then goes back to the one accepted
    # before (the order that made it was cancelled): that state is not known to be the server's any more, so the next
    # push sends it whole.
    state = {"fills": 2, "pnl": "10.00 USDT", "risk": "Active"}
    pusher, server, clock = emulated_pusher(emulator, state)
    assert await pusher.push_if_due() is True
    before = server.runtime_part()

    state.update(risk="Reducing", reason="drawdown near its limit")
    server.hold_next = True
    clock.now += 1
    assert await pusher.push_if_due() is False
    server.land_held()

    state.update(risk="Active", reason=None)
    clock.now += 1  # past the first retry's backoff (0.5 s at most)
    assert await pusher.push_if_due() is True
    assert server.patches[-1]["status"]["risk"]["state"] == "Active"
    assert server.runtime_part() == before


async def test_the_halt_s_last_look_finds_a_push_that_landed_after_the_final_one_and_sends_the_state_again(emulator):
    # The halt's final push is accepted; a push the client gave up on before it lands afterwards. Nothing periodic
    # follows a halt, so the halt's last look (once the node is stopped and the ledger closed) asks the API server
    # with one heartbeat and puts the final state back: the halted strategy's status is not left saying Active.
    state = {"fills": 2, "pnl": "-120.00 USDT", "risk": "Active"}
    pusher, server, clock = emulated_pusher(emulator, state)
    assert await pusher.push_if_due() is True
    state.update(fills=3, pnl="-180.00 USDT")
    server.hold_next = True
    clock.now += 1
    assert await pusher.push_if_due() is False  # given up on; the server has it

    state.update(fills=4, pnl="-260.00 USDT", risk="Halted", reason="daily loss -260.00 USDT below -250")
    await pusher.stop(until=clock.now)
    assert await pusher.final_push(clock.now + 10) is True
    final = server.runtime_part()
    server.land_held()  # the old push lands after the final one
    assert server.runtime_part()["risk"]["state"] == "Active"

    sent = len(server.patches)
    assert await pusher.final_push(clock.now + 10, only_if_changed=True) is True
    assert server.runtime_part() == final
    assert set(server.patches[sent]["status"]["trading"]) == {"heartbeat"}  # the look: one heartbeat
    assert len(server.patches) == sent + 2  # and the state, whole, once

    sent = len(server.patches)  # the state there is the final one: the look costs that one heartbeat only
    assert await pusher.final_push(clock.now + 10, only_if_changed=True) is True
    assert len(server.patches) == sent + 1


def older_crd() -> dict[str, Any]:
    """The CRD of an earlier livestrat, installed while this runtime runs: it knows neither ``trading.slippageBps``
    nor ``risk.maxDrawdown``, so the API server prunes them from every push."""
    crd = copy.deepcopy(build_crd())
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    del status["trading"]["properties"]["slippageBps"]
    del status["risk"]["properties"]["maxDrawdown"]
    return crd


async def test_fields_an_older_crd_prunes_cost_no_push_at_rest(emulator):
    # The answers never hold what the older CRD prunes: the runtime's state differs from the server's for good, which
    # is no reason to push it again. At rest, the heartbeat alone.
    emulator.patch_object(CRDS, CRD_NAME, older_crd())
    state = {"fills": 5, "pnl": "42.00 USDT", "risk": "Active", "slippage": "1.5", "max_drawdown": "30.00 USDT"}
    pusher, server, clock = emulated_pusher(emulator, state)
    assert await pusher.push_if_due() is True
    assert "slippageBps" not in server.runtime_part()["trading"]  # pruned: the older CRD is in force
    assert "maxDrawdown" not in server.runtime_part()["risk"]

    await at_rest_for(pusher, clock, 60)
    rest = server.patches[1:]
    assert len(rest) == 6 and all(
        p == {"status": {"trading": {"heartbeat": p["status"]["trading"]["heartbeat"]}}} for p in rest
    )


def pusher_for(
    uid: str | None,
    server: EmulatedApiServer,
    clock: Clock,
    state: dict[str, Any],
    told: list[str],
    on_answer: Any = None,
) -> StatusPusher:
    """A pusher of the runtime of the LiveStrategy ``uid`` (None: a local run) reporting ``state``; ``told`` gets
    the uid of another object of its name when an answer shows one."""

    def snapshot() -> StatusSnapshot:
        return StatusSnapshot(
            TradingState(fills=state["fills"], total_pnl=state["pnl"]), RiskState(state=state["risk"])
        )

    return StatusPusher(
        api=server,
        snapshot=snapshot,
        interval=1,
        heartbeat_interval=10,
        clock=clock,
        on_answer=on_answer,
        strategy_uid=uid,
        on_another=told.append,
    )


async def test_a_pod_whose_livestrategy_was_deleted_and_applied_again_pushes_nothing_more_into_the_new_one(
    emulator, caplog
):
    # Deleted with its finalizer taken off by hand and applied again at once: the old pod still runs (the garbage
    # collector takes its time) and the LiveStrategy of its name is another object now.
    state = {"fills": 1, "pnl": "1.00 USDT", "risk": "Halted"}
    server, clock = EmulatedApiServer(emulator), Clock()
    ours = emulator.read_object(LIVESTRATEGIES, NAME, namespace=NAMESPACE)["metadata"]["uid"]
    answers: list[dict[str, Any]] = []
    told: list[str] = []
    pusher = pusher_for(ours, server, clock, state, told, on_answer=answers.append)
    assert await pusher.push_if_due() is True
    assert server.patches[-1]["status"]["trading"]["strategyUid"] == ours  # every push says whose it is
    clock.now += 10
    assert await pusher.push_if_due() is True
    heartbeat = server.patches[-1]["status"]["trading"]
    assert set(heartbeat) == {"heartbeat", "strategyUid"} and heartbeat["strategyUid"] == ours
    assert len(answers) == 2

    emulator.delete_object(LIVESTRATEGIES, NAME, namespace=NAMESPACE)
    manifest = {"apiVersion": "livestrat.io/v1alpha1", "kind": "LiveStrategy", "metadata": {"name": NAME}}
    emulator.create_object(LIVESTRATEGIES, {**manifest, "spec": example_spec()}, namespace=NAMESPACE)
    newer = emulator.read_object(LIVESTRATEGIES, NAME, namespace=NAMESPACE)["metadata"]["uid"]
    assert newer != ours

    state["fills"] = 2
    clock.now += 1
    # The first push after it lands (a merge patch cannot be made conditional on the uid: the status subresource
    # takes the stored object's metadata), stamped with the old uid, which is what the new object's readers ignore.
    await pusher.push_if_due()
    held = emulator.read_object(LIVESTRATEGIES, NAME, namespace=NAMESPACE)
    assert held["status"]["trading"]["strategyUid"] == ours
    assert len(answers) == 2  # the new object's status (its RiskBudget share) is not this pod's to take
    assert told == [newer]  # the runtime is told once (it shuts its gate)
    assert f"is another object now (uid {newer}" in caplog.text
    sent = len(server.patches)
    for _ in range(30):
        clock.now += 1
        await pusher.push_if_due()
    state["fills"] = 3
    clock.now += 1
    await pusher.push_if_due()
    assert await pusher.final_push(clock.now + 5) is True  # nothing to deliver: the object is not this pod's
    assert len(server.patches) == sent and told == [newer]


@pytest.mark.parametrize("uid", [None, ""])
async def test_a_runtime_that_knows_no_uid_stamps_nothing_and_never_takes_the_object_for_another(emulator, uid):
    # A local run has none; a configuration written by hand may say "": neither is a uid to compare with.
    state = {"fills": 1, "pnl": "1.00 USDT", "risk": "Active"}
    server, clock, told = EmulatedApiServer(emulator), Clock(), []
    pusher = pusher_for(uid, server, clock, state, told)
    assert await pusher.push_if_due() is True
    clock.now += 10
    assert await pusher.push_if_due() is True
    assert all(p["status"]["trading"].get("strategyUid") is None for p in server.patches) and told == []
