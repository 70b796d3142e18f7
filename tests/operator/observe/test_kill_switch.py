"""A kill switch the watch cache shows engaged holds only once the API server says so too.

The whole story against the emulator, a namespace deleted and created again during a watch gap, is in
tests/operator/test_watch_gaps.py; here, what is read and when, with the API client's ``get`` answered by the test.
"""

from __future__ import annotations

import asyncio

from strategy_operator.kinds import NAMESPACES_INDEX
from strategy_operator.kube_client import ApiError
from strategy_operator.observe.caches import Caches
from strategy_operator.observe.kill_switch import CONFIRMED_SECONDS, KillSwitches
from tests.support.clock import ManualClock

ENGAGED = {"metadata": {"name": "desk", "uid": "u-2", "annotations": {"livestrat.io/kill-switch": "true"}}}
NOT_ENGAGED = {"metadata": {"name": "desk", "uid": "u-2", "annotations": {}}}


class Namespaces:
    """The API client's ``get`` of a Namespace: the test says what it answers, and when (``held``: once it sets
    ``go``); it counts the reads. What the API server has is read when the request is served (``served``)."""

    def __init__(self, answer: dict | Exception | None, held: bool = False) -> None:
        self.answer = answer
        self.reads: list[tuple[str, str, str]] = []
        self.served = asyncio.Event()
        self.go = asyncio.Event()
        if not held:
            self.go.set()

    async def get(self, kind: str, namespace: str, name: str) -> dict | None:
        self.reads.append((kind, namespace, name))
        answer = self.answer  # served now: the answer is the API server's state at this moment
        self.served.set()
        await asyncio.sleep(0)  # an answer comes later: concurrent askers overlap
        await self.go.wait()
        if isinstance(answer, Exception):
            raise answer
        return answer


def cache(engaged: bool) -> Caches:
    return Caches({NAMESPACES_INDEX: {"desk": [True]} if engaged else {}})


async def test_a_switch_the_cache_does_not_show_is_no_read():
    kube = Namespaces(ENGAGED)
    switches = KillSwitches(kube, ManualClock())  # type: ignore[arg-type]
    assert await switches.engaged("desk", cache(False)) is False
    assert kube.reads == []


async def test_the_cache_s_word_is_confirmed_once_for_many_strategies_and_again_after_the_namespace_changes():
    kube = Namespaces(ENGAGED)
    clock = ManualClock()
    switches = KillSwitches(kube, clock)  # type: ignore[arg-type]
    answers = await asyncio.gather(*(switches.engaged("desk", cache(True)) for _ in range(50)))
    assert all(answers) and kube.reads == [("Namespace", "", "desk")]  # a thousand strategies woken: one read

    switches.changed("desk")  # its watch event: lifted, engaged again, deleted, created again
    kube.answer = NOT_ENGAGED
    assert await switches.engaged("desk", cache(True)) is False
    assert len(kube.reads) == 2


async def test_a_slow_read_is_still_one_read_for_all_who_ask_meanwhile_and_its_answer_is_kept_from_its_arrival():
    kube = Namespaces(ENGAGED, held=True)
    clock = ManualClock()
    switches = KillSwitches(kube, clock)  # type: ignore[arg-type]
    asking = [asyncio.create_task(switches.engaged("desk", cache(True))) for _ in range(20)]
    await kube.served.wait()
    clock.advance(CONFIRMED_SECONDS * 3)  # a read that takes longer than an answer is kept
    kube.go.set()
    assert all(await asyncio.gather(*asking))
    assert len(kube.reads) == 1
    clock.advance(CONFIRMED_SECONDS / 2)
    assert await switches.engaged("desk", cache(True)) is True  # kept from when it arrived
    assert len(kube.reads) == 1


async def test_a_change_while_a_read_is_in_flight_makes_the_next_asker_read_again():
    # The read is served before the switch is engaged on the new namespace; its watch event comes (changed, and
    # the strategies woken) before the read's answer: that answer ("not engaged") must not be what they take.
    kube = Namespaces(NOT_ENGAGED, held=True)
    switches = KillSwitches(kube, ManualClock())  # type: ignore[arg-type]
    early = asyncio.create_task(switches.engaged("desk", cache(True)))
    await kube.served.wait()
    kube.answer = ENGAGED  # the switch engaged now, after the read was served
    switches.changed("desk")
    woken = asyncio.create_task(switches.engaged("desk", cache(True)))
    kube.go.set()
    assert await early is False  # what the API server said when it was asked: that pass is woken again
    assert await woken is True
    assert len(kube.reads) == 2
    assert await switches.engaged("desk", cache(True)) is True  # the kept answer is the later read's
    assert len(kube.reads) == 2


async def test_an_answer_is_kept_a_short_while_only():
    kube = Namespaces(NOT_ENGAGED)
    clock = ManualClock()
    switches = KillSwitches(kube, clock)  # type: ignore[arg-type]
    assert await switches.engaged("desk", cache(True)) is False
    clock.advance(CONFIRMED_SECONDS / 2)
    assert await switches.engaged("desk", cache(True)) is False
    assert len(kube.reads) == 1
    clock.advance(CONFIRMED_SECONDS)
    kube.answer = ENGAGED
    assert await switches.engaged("desk", cache(True)) is True
    assert len(kube.reads) == 2


async def test_a_namespace_the_api_server_no_longer_has_holds_nothing():
    switches = KillSwitches(Namespaces(None), ManualClock())  # type: ignore[arg-type]
    assert await switches.engaged("desk", cache(True)) is False


async def test_when_the_api_server_cannot_answer_the_cache_s_word_stands_and_is_shared(caplog):
    failures = (ApiError(403, "Forbidden", "cannot get namespaces"), ConnectionResetError("reset"), ValueError("{"))
    for failure in failures:
        kube = Namespaces(failure)
        clock = ManualClock()
        switches = KillSwitches(kube, clock)  # type: ignore[arg-type]
        answers = await asyncio.gather(*(switches.engaged("desk", cache(True)) for _ in range(20)))
        assert all(answers), failure
        assert len(kube.reads) == 1  # the others took the failed read's answer, not a read (and a timeout) each
        clock.advance(CONFIRMED_SECONDS)
        kube.answer = NOT_ENGAGED  # the API server is back
        assert await switches.engaged("desk", cache(True)) is False
        assert len(kube.reads) == 2
    assert "could not be confirmed" in caplog.text


async def test_a_read_that_does_not_answer_in_time_holds(caplog):
    kube = Namespaces(NOT_ENGAGED, held=True)  # never answers
    switches = KillSwitches(kube, ManualClock(), read_timeout=0.05)  # type: ignore[arg-type]
    answers = await asyncio.gather(*(switches.engaged("desk", cache(True)) for _ in range(5)))
    assert all(answers) and len(kube.reads) == 1
    assert "could not be confirmed (TimeoutError)" in caplog.text
