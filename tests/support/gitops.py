"""A GitOps controller with self-heal, as far as a LiveStrategy can tell: the manifests in Git re-applied over and
over with ``kubectl apply`` (a client-side three-way merge, as Argo CD's default sync and ``kubectl apply`` do).

Whatever the live object says about a field the manifest sets (``spec.replicas: 1``) is put back on the next
pass; what the manifest does not own (an annotation added with ``kubectl annotate``) is left alone: a three-way
merge only removes what the last applied configuration had and the manifest no longer has.

    async with SelfHeal(desk, [paper("a")]) as gitops:
        ...
        await gitops.passes(3)  # until three more passes have applied every manifest
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Sequence
from typing import Any

from tests.support.desk import Desk
from tests.support.kube import wait_for

PASS_INTERVAL_SECONDS = 0.3  # a real controller waits longer; only the order of passes matters to the tests


class SelfHeal:
    def __init__(self, desk: Desk, manifests: Sequence[dict[str, Any]]) -> None:
        self.desk = desk
        self.manifests = [copy.deepcopy(m) for m in manifests]
        self.done = 0  # passes completed
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            for manifest in self.manifests:
                await self.desk.apply(manifest)
            self.done += 1
            await asyncio.sleep(PASS_INTERVAL_SECONDS)

    async def passes(self, count: int) -> None:
        """Until ``count`` more passes have re-applied every manifest."""
        target = self.done + count + 1  # the pass under way may have read the objects before now
        await wait_for(lambda: self.done >= target or (self._task is not None and self._task.done()), timeout=60)
        if self._task is not None and self._task.done():
            self._task.result()  # a failed kubectl apply fails the test

    async def __aenter__(self) -> SelfHeal:
        self._task = asyncio.create_task(self._loop())
        await self.passes(1)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
