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
    """The API client's ``get`` of a Namespace: the test says what it answers, and counts the reads."""

    def __init__(self, answer: dict | Exception | None) -> None:
        self.answer = answer
        self.reads: list[tuple[str, str, str]] = []

    async def get(self, kind: str, namespace: str, name: str) -> dict | None:
        self.reads.append((kind, namespace, name))
        await asyncio.sleep(0)  # an answer comes later: concurrent askers overlap
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


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


async def test_when_the_api_server_cannot_answer_the_cache_s_word_stands(caplog):
    for failure in (ApiError(403, "Forbidden", "cannot get namespaces"), ConnectionResetError("reset"), TimeoutError()):
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
