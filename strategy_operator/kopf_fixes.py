"""Workarounds for kopf bugs the operator hits, each shown against kopf's own code in tests/operator/test_kopf_fixes.py.

A stop lost as a watch stream closes. kopf's ``watching.streaming_block`` ends each watch stream by cancelling its
pause-waiter and awaiting it under ``suppress(CancelledError)``. A stop (SIGTERM, the stop flag) that reaches the
watcher task in that await is taken for the pause-waiter's own cancellation and swallowed: the watcher goes on
watching and spawning handlers while the rest of the operator stops, and the process stays up until Kubernetes
kills it at the end of the grace period — next to the peer that took over. It happens when the stop meets a
stream's end (a 410 Gone after a gap, the server's timeout, a dropped connection); the operator tests met it about
once in 40 runs of tests/operator/test_watch_gaps.py. kopf 1.45.2 still has it.

The fix wraps kopf's block rather than copying it: a cancellation requested after the stream's body ended can only
have been swallowed by the block's cleanup, so it is raised again there. Cancellations requested while the body
runs are left as kopf handles them (kopf's ``api.stream`` means to cancel its own request on a pause; in 1.45.2 that
callback fails its own assertion, ``current_task()`` being None in a done-callback, and cancels nothing; the test
covers such a cancel all the same).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from kopf._cogs.clients import watching

UPSTREAM_STREAMING_BLOCK = watching.streaming_block


@contextlib.asynccontextmanager
async def streaming_block(**kwargs: Any) -> AsyncIterator[Any]:
    task = asyncio.current_task()
    assert task is not None  # kopf calls it in its watcher task
    async with UPSTREAM_STREAMING_BLOCK(**kwargs) as stopper:
        try:
            yield stopper
        finally:
            requested = task.cancelling()  # every cancel up to the end of the stream, kopf's own for a pause too
    if task.cancelling() > requested:
        raise asyncio.CancelledError()  # requested during kopf's cleanup, and swallowed there


def install() -> None:
    """Put the fixes in place (idempotent): kopf's ``infinite_watch`` looks ``streaming_block`` up in its module."""
    watching.streaming_block = streaming_block
