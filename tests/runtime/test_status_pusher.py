"""The status pusher's rules, on a fake clock and a recording API (the real API path is in test_status_push.py).

Only the API server is replaced here: it is the network the pusher talks to, and these
rules (coalescing, heartbeat, backoff, the final push) are about when it talks.
"""

from __future__ import annotations

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
