"""The kopf bugs the operator works around (strategy_operator.kopf_fixes), each shown against kopf's own code.

A stop that arrives while a watch stream closes (a 410 Gone, the server's timeout, a dropped connection) was
swallowed by kopf's ``streaming_block`` (it awaits the cancelled pause-waiter under ``suppress(CancelledError)``):
the watcher went on watching and spawning handlers after the operator had begun to stop, and the process stayed up
until Kubernetes killed it — a half-stopped operator acting next to the peer that took over.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from kopf._cogs.aiokits import aiotoggles
from kopf._cogs.clients import watching
from kopf._cogs.structs import references

from strategy_operator import kopf_fixes

STATEFULSETS = references.Resource(group="apps", version="v1", plural="statefulsets", namespaced=True)


async def watch_loop(
    block: Callable[..., Any], *, stop_as_the_stream_closes: bool, paused: aiotoggles.ToggleSet
) -> str:
    """kopf's ``infinite_watch`` loop in miniature: each round opens a stream that ends at once (a 410 Gone)."""
    me = asyncio.current_task()
    assert me is not None
    for _ in range(3):
        async with block(resource=STATEFULSETS, namespace=None, operator_paused=paused):
            if stop_as_the_stream_closes:
                # The operator's stop: it reaches the watcher while the block's cleanup awaits the pause-waiter.
                asyncio.get_running_loop().call_soon(me.cancel)
                stop_as_the_stream_closes = False
        await asyncio.sleep(0)
    return "went on watching"


def upstream_block() -> Callable[..., Any]:
    return kopf_fixes.UPSTREAM_STREAMING_BLOCK


async def test_kopf_itself_still_swallows_a_stop_that_arrives_as_a_watch_stream_closes():
    """When this fails, kopf has fixed the bug: remove strategy_operator.kopf_fixes and this file."""
    task = asyncio.create_task(
        watch_loop(upstream_block(), stop_as_the_stream_closes=True, paused=aiotoggles.ToggleSet(any))
    )
    assert await task == "went on watching"


async def test_a_stop_that_arrives_as_a_watch_stream_closes_stops_the_watcher():
    kopf_fixes.install()
    task = asyncio.create_task(
        watch_loop(watching.streaming_block, stop_as_the_stream_closes=True, paused=aiotoggles.ToggleSet(any))
    )
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_a_watch_stream_that_closes_without_a_stop_goes_on_as_before():
    kopf_fixes.install()
    task = asyncio.create_task(
        watch_loop(watching.streaming_block, stop_as_the_stream_closes=False, paused=aiotoggles.ToggleSet(any))
    )
    assert await task == "went on watching"


async def test_a_pause_that_closes_a_stream_is_not_taken_for_a_stop():
    """A pause (peering: a peer of higher priority acts) closes the stream through the pause-waiter. kopf's
    ``api.stream`` means to cancel its own request then (its callback fails in 1.45.2 and cancels nothing): a cancel
    of that kind, requested while the stream runs, must not be taken for a stop; the watcher waits out the pause."""
    kopf_fixes.install()
    paused = aiotoggles.ToggleSet(any)
    peering = await paused.make_toggle(False, name="peering")
    me_started = asyncio.Event()
    resumed = asyncio.Event()

    async def watcher() -> str:
        me = asyncio.current_task()
        assert me is not None
        rounds = 0
        while rounds < 2:
            async with watching.streaming_block(
                resource=STATEFULSETS, namespace=None, operator_paused=paused
            ) as stopper:
                rounds += 1
                if rounds == 1:
                    stopper.add_done_callback(lambda _: me.cancel())  # what api.stream's callback means to do
                    me_started.set()
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.Event().wait()  # the request, until the pause cancels it
                else:
                    resumed.set()
        return "watched again after the pause"

    task = asyncio.create_task(watcher())
    await me_started.wait()
    await peering.turn_to(True)
    await asyncio.sleep(0.01)
    await peering.turn_to(False)
    assert await asyncio.wait_for(task, 5) == "watched again after the pause"
    assert resumed.is_set()
