"""Writing a live strategy's paper twin (``spec.twin``; its manifest: :mod:`strategy_operator.build.twin`).

Created when the live strategy asks for one, merge-patched back wherever it differs from what the live
spec says (an edit of the twin itself is undone; a change of the live spec reaches it), deleted when
``spec.twin`` goes. The same three-way merge as every child (:mod:`strategy_operator.apply.applied_fields`).

Unlike a child, a LiveStrategy of the twin's name that the live strategy does not own stops nothing: the
live strategy runs on, and a Warning Event says once that the twin cannot be made; but the twin of an earlier live
strategy of this name (deleted, and its twin not yet collected) is only waited for. A twin is never written
while its live strategy is being deleted: the garbage collector deletes it after the live strategy
(its owner reference), and the twin's own deletion halts it as any paper strategy's.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from livestrat.api.resource import KIND, LiveStrategy
from livestrat.api.twin import twin_name
from strategy_operator.apply import applied_fields
from strategy_operator.apply.converge import converge
from strategy_operator.apply.merge import patchable
from strategy_operator.build.configuration import digest, strategy_generation
from strategy_operator.build.twin import build_twin
from strategy_operator.clock import Clock
from strategy_operator.decide.events import Event
from strategy_operator.kube_client import ApiError, KubeClient
from strategy_operator.memory import StrategyMemory
from strategy_operator.observe.caches import Caches, uid_of
from strategy_operator.observe.observer import left_for_the_collector, owned_by
from strategy_operator.wakeups import Key

if TYPE_CHECKING:
    from strategy_operator.apply.actions import Step

CONVERGED_KEY = "LiveStrategy twin"  # its entry in StrategyMemory.converged, beside the children's kinds
# How often a twin the cache shows as it should be is read from the API server: kopf forgets an object only on a
# DELETED event, so a twin deleted during a gap in the watches stays in the cache (and would never be made again).
RECHECK_SECONDS = 300.0


def _version(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("resourceVersion"))


class TwinWriter:
    def __init__(self, kube: KubeClient, clock: Clock) -> None:
        self.kube = kube
        self.clock = clock

    async def apply(
        self,
        strategy: LiveStrategy,
        uid: str,
        caches: Caches,
        memory: StrategyMemory,
        step: Step,
        identity: Callable[[], Awaitable[None]],
    ) -> list[Event]:
        """The twin as the live strategy's spec says; the events to post."""
        namespace = strategy.metadata.namespace or ""
        key: Key = (namespace, strategy.metadata.name)
        name = twin_name(strategy.metadata.name)
        desired = build_twin(strategy)
        existing = caches.twin(key)
        if existing is not None and self.clock.monotonic() - memory.twin_checked_at > RECHECK_SECONDS:
            memory.twin_checked_at = self.clock.monotonic()
            existing = await self.kube.get(KIND, namespace, name)  # the API server's word over the cache's
            if existing is None:
                memory.converged.pop(CONVERGED_KEY, None)
        if existing is not None and (existing.get("metadata") or {}).get("deletionTimestamp"):
            return []  # going: made anew once gone, if still wanted
        if desired is None:
            if existing is None or not owned_by(existing, uid):
                return []
            step.now("apply", f"delete {KIND} {name}")
            try:
                await self.kube.delete(KIND, namespace, name, uid=uid_of(existing))
            except ApiError as exc:
                if exc.status not in (404, 409):  # gone already, or another object of its name now (not ours)
                    raise
            memory.converged.pop(CONVERGED_KEY, None)
            return [Event("Normal", "TwinDeleted", f"deleted the paper twin {name}: spec.twin was removed")]

        desired = applied_fields.with_record(desired, patchable(desired))
        if existing is None:
            await identity()
            step.now("apply", f"create {KIND} {name}")
            try:
                created = await self.kube.create(desired)
            except ApiError as exc:
                if exc.status != 409:
                    raise
                existing = await self.kube.get(KIND, namespace, name)  # a twin the cache has not shown yet, or not ours
                if existing is None:
                    raise
            else:
                memory.converged[CONVERGED_KEY] = (digest(desired), _version(created))
                return [
                    Event("Normal", "TwinCreated", f"created the paper twin {name}: this spec on paper, on live data")
                ]
        if not owned_by(existing, uid):
            if left_for_the_collector(existing, strategy.metadata.name):
                return []  # the twin of an earlier live strategy of this name: collected, then made anew
            if memory.twin_taken_by == uid_of(existing):
                return []
            memory.twin_taken_by = uid_of(existing)
            return [
                Event(
                    "Warning",
                    "TwinNameTaken",
                    f"spec.twin asks for a paper twin named {name}, but a LiveStrategy of that name that this one "
                    "does not own exists: rename or delete it, and the twin is created. This strategy runs on.",
                )
            ]
        memory.twin_taken_by = None
        step.now("apply", f"update {KIND} {name}")
        try:
            if not await converge(self.kube, desired, existing, namespace, memory, CONVERGED_KEY):
                return []
        except ApiError as exc:
            if exc.status != 404:
                raise
            memory.twin_checked_at = -math.inf  # deleted while the cache did not see it: read again, made anew
            memory.converged.pop(CONVERGED_KEY, None)
            return []
        generation = strategy_generation(strategy)
        return [Event("Normal", "TwinUpdated", f"updated the paper twin {name} to this spec (generation {generation})")]
