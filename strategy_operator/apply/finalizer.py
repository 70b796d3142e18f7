"""Deleting a LiveStrategy: halt it, wait (bounded) for its pod to exit, then let it go.

Behind the ``livestrat.io/halt-before-delete`` finalizer: the halt is recorded (``status.halt``, which
the runtime reads at SIGTERM), the StatefulSet is scaled to 0 and a
pod no StatefulSet owns is deleted, then the operator waits for every pod of the strategy to
be gone (re-reading them from the API, since a cache may lag behind a deletion), and releases
what the pod reported with (:mod:`strategy_operator.apply.pod_identity`). The wait is
bounded by the pod's grace period plus the operator's margin, counted from the deletion but
never from before this operator saw it; past that the LiveStrategy is released anyway, with a
Warning event that says to check the pod's node.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from livestrat.api.status import HaltRecord, Phase
from strategy_operator.apply import pod_identity
from strategy_operator.apply.actions import Events
from strategy_operator.apply.shared_identity import SharedIdentity
from strategy_operator.clock import Clock
from strategy_operator.decide.conditions import timestamp
from strategy_operator.decide.events import Event
from strategy_operator.decide.plan import DELETING
from strategy_operator.decide.status import status_patch
from strategy_operator.kube_client import ApiError, KubeClient
from strategy_operator.memory import StrategyMemory
from strategy_operator.observe.caches import Caches
from strategy_operator.observe.observation import parse_time
from strategy_operator.observe.observer import Observer
from strategy_operator.observe.reading import grace_seconds, read_status
from strategy_operator.settings import OperatorSettings
from strategy_operator.wakeups import Key


@dataclass(frozen=True)
class Finalizer:
    settings: OperatorSettings
    kube: KubeClient
    observer: Observer
    events: Events
    clock: Clock
    shared: SharedIdentity
    # the strategies this operator knows that are not being deleted (namespace, name): is one left in a namespace?
    remaining: Callable[[], Collection[Key]]

    async def finalize(
        self, body: Mapping[str, Any], caches: Caches, memory: StrategyMemory, wake: Callable[[], Any]
    ) -> None:
        """Returns once no pod of the strategy is left, or the wait is over; ``wake`` waits for a change."""
        raw = dict(body)
        meta = raw.get("metadata") or {}
        name, namespace, uid = meta["name"], meta["namespace"], str(meta.get("uid") or "")
        key: Key = (namespace, name)
        # Bounded from the deletion, but never from before this operator saw it: after an outage longer than
        # the bound, the pod still gets its full time to exit before the LiveStrategy is let go.
        if memory.deletion_seen is None:
            memory.deletion_seen = self.clock.now()
        stamped = parse_time(meta.get("deletionTimestamp"))
        began = max(stamped, memory.deletion_seen) if stamped is not None else memory.deletion_seen
        bound = grace_seconds(raw) + self.settings.halt_timeout_margin_seconds
        deadline = began + timedelta(seconds=bound)
        announced = False
        recorded = read_status(raw.get("status")).halt is not None
        while True:
            # confirmed with the API server when the cache's copy may be one a watch gap left (observer.child)
            statefulset = await self.observer.child("StatefulSet", key, uid, caches, memory)
            if statefulset is not None and (statefulset.get("spec") or {}).get("replicas") != 0:
                if not recorded:  # before the pod hears of it: its runtime reads it at SIGTERM (a halt, not a restart)
                    record = HaltRecord(reason="Deleting", message=DELETING, since=timestamp(self.clock.now()))
                    patch = {"status": {"halt": record.to_wire()}}
                    await self.kube.patch("LiveStrategy", namespace, name, patch, subresource="status")
                    recorded = True
                try:
                    await self.kube.patch("StatefulSet", namespace, name, {"spec": {"replicas": 0}})
                except ApiError as exc:
                    # gone since the cache saw it (a foreground deletion's garbage collector, a person, a watch
                    # gap): nothing left to scale; the pods it leaves are handled below
                    if exc.status != 404:
                        raise
                    statefulset = None
            pods = await self.observer.pods(key, caches, memory, statefulset, confirm=True)
            for pod in pods:
                if not pod.controlled and not pod.terminating:
                    await self.kube.delete("Pod", namespace, pod.name, uid=pod.uid)
            if not pods:
                await pod_identity.release_all(self.kube, namespace, name)
                await self._release_shared(key)
                self.events.post(
                    raw, Event("Normal", "Deleted", "no strategy pod is left: the LiveStrategy is released")
                )
                return
            if self.clock.now() >= deadline:
                await pod_identity.release_all(self.kube, namespace, name)  # given up: nothing may hold them then
                await self._release_shared(key)
                names = ", ".join(p.name for p in pods)
                self.events.post(
                    raw,
                    Event(
                        "Warning",
                        "DeletionTimeout",
                        f"pod {names} did not exit within {int(bound)}s of the deletion: released anyway; garbage "
                        "collection deletes the pod, but check that its node is down before assuming it stopped "
                        "trading",
                    ),
                )
                return
            if not announced:
                message = f"deleting: halting first, waiting for pod {', '.join(p.name for p in pods)} to exit"
                current = read_status(raw.get("status"))
                patch = status_patch(current, current.model_copy(update={"phase": Phase.HALTING, "message": message}))
                if patch:
                    await self.kube.patch("LiveStrategy", namespace, name, {"status": patch}, subresource="status")
                self.events.post(raw, Event("Normal", "Deleting", message))
                announced = True
            await wake()

    async def _release_shared(self, key: Key) -> None:
        """The namespace's last strategy is released: its shared identity's finalizer comes off (if no pod runs as it).
        Before that, nothing to do here: a namespace's deletion and a part deleted by hand are seen elsewhere
        (shared_identity.TerminatingNamespaces, SharedIdentity.ensure); no read for the others' deletions."""
        if not any(other[0] == key[0] and other != key for other in self.remaining()):
            await self.shared.release_last(key[0])
