"""The status pusher's rules, on a fake clock and a recording API (the real API path is in test_status_push.py).

Only the API server is replaced here: it is the network the pusher talks to, and these
rules (coalescing, heartbeat, backoff, the final push) are about when it talks.
"""

from __future__ import annotations

import asyncio
from typing import Any

from livestrat.api.status import RiskState, TradingState
from strategy_runtime.report.status_push import StatusPusher, StatusPushError, StatusSnapshot


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
