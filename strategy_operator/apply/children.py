"""Writing a strategy's children: created when missing, patched only where they differ, never someone else's.

A child is compared with its desired manifest field by field (what the server defaults or adds
is ignored) and merge-patched only when a field the operator sets differs, or when a field it set
before is no longer wanted (a three-way merge against the record it keeps on the child:
:mod:`strategy_operator.apply.applied_fields`); a child whose write came back unchanged is
remembered (digest and resourceVersion) and not compared again. An
object holding a child's name that this LiveStrategy does not own is left alone and reported
(``NameConflict``); the StatefulSet is then held at 0, so no pod runs on top of it. A conflict is
declared only once the API server confirms it: the cache may hold a child deleted during a watch
gap, and the reconciler itself may be a stale one, of a LiveStrategy deleted and recreated meanwhile
(:meth:`~strategy_operator.observe.observer.Observer.confirm_conflict`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from livestrat.api.contract import STRATEGY_LABEL
from strategy_operator.apply import applied_fields, pod_identity, shared_identity
from strategy_operator.apply.converge import converge
from strategy_operator.apply.merge import is_subset, patchable
from strategy_operator.apply.shared_identity import SharedIdentity
from strategy_operator.apply.twin import TwinWriter
from strategy_operator.build import labels
from strategy_operator.build.configuration import config_substance, digest, runtime_json, strategy_generation
from strategy_operator.build.policy import SpecProblem
from strategy_operator.clock import Clock
from strategy_operator.decide.events import Event
from strategy_operator.decide.plan import Plan
from strategy_operator.kube_client import ApiError, KubeClient
from strategy_operator.memory import StrategyMemory
from strategy_operator.observe.caches import Caches, uid_of
from strategy_operator.observe.observer import Observed, Observer, left_for_the_collector, owned_by
from strategy_operator.wakeups import Key

if TYPE_CHECKING:
    from strategy_operator.apply.actions import Step


def left_by_a_namesake(existing: Mapping[str, Any], name: str) -> bool:
    """A child of an earlier LiveStrategy of this name, left without an owner (deleted with ``--cascade=orphan``):
    livestrat's (its managed-by label), this strategy's (its strategy label), and nobody's. Adopted: the patch
    gives it this LiveStrategy's owner reference. Anything else holding the name is someone else's (NameConflict)."""
    meta = existing.get("metadata") or {}
    found = meta.get("labels") if isinstance(meta.get("labels"), Mapping) else {}
    return (
        not meta.get("ownerReferences")
        and found.get(STRATEGY_LABEL) == name
        and found.get("app.kubernetes.io/managed-by") == labels.MANAGED_BY
    )


def _template_changed(existing: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    before = ((existing or {}).get("spec") or {}).get("template")
    after = (desired.get("spec") or {}).get("template")
    return after is not None and not is_subset(after, before)


@dataclass(frozen=True)
class Awaited:
    """A child's name held by an earlier namesake's child (of this uid), which the garbage collector deletes."""

    uid: str


class ChildWriter:
    def __init__(self, kube: KubeClient, clock: Clock, observer: Observer) -> None:
        self.kube = kube
        self.clock = clock
        self.observer = observer
        self.shared = SharedIdentity(kube, clock, observer.settings)
        self.twin = TwinWriter(kube, clock)

    async def apply(
        self, observed: Observed, plan: Plan, caches: Caches, memory: StrategyMemory, step: Step
    ) -> list[Event]:
        """Every desired child as the plan says (``step`` is told what is being written); the events to post."""
        strategy, uid, desired_children = observed.strategy, observed.uid, observed.desired_children
        assert strategy is not None
        name, namespace = strategy.metadata.name, strategy.metadata.namespace or ""
        key: Key = (namespace, name)
        created: list[str] = []
        updated: list[str] = []
        awaited: dict[str, str] = {}  # kind -> uid of an earlier namesake's child the garbage collector deletes
        confirmed = False

        async def identity() -> None:
            """Once per pass, before anything is created or declared taken: a stale reconciler (its LiveStrategy
            deleted, perhaps recreated, while kopf did not say so) raises Gone instead."""
            nonlocal confirmed
            if not confirmed:
                await self.observer.confirm_identity(namespace, name, uid)
                confirmed = True

        desired_sa = shared_identity.runs_as(desired_children)
        if desired_sa == labels.SHARED_IDENTITY and not observed.observation.deleting:
            urgent = shared_identity.pod_awaited(desired_children, plan.replicas, observed.observation.pods)
            await self.shared.ensure(namespace, urgent=urgent)  # before a pod may need it

        for desired in desired_children:
            kind = desired["kind"]
            if kind in memory.conflicts:
                continue  # someone else's object: left alone, looked at again now and then
            existing = caches.child(kind, key, memory.confirmed_gone)
            existing = existing or memory.created.get(kind, self.clock.monotonic())
            if existing is not None and (existing.get("metadata") or {}).get("deletionTimestamp"):
                # Going (a foreground deletion, or deleted by hand): nothing to write. What the pod reports with
                # is held until no pod is left; it is created anew once gone, if the strategy still wants it.
                if not observed.observation.pods:
                    step.now("apply", f"release {kind} {name}")
                    await pod_identity.release(self.kube, existing)
                continue
            desired = pod_identity.with_finalizers(desired, existing, deleting=observed.observation.deleting)
            if kind == "ConfigMap" and existing is not None:
                if not plan.apply:
                    continue  # the running strategy keeps its configuration
                if config_substance(runtime_json(existing) or {}) == config_substance(
                    observed.observation.desired_config
                ):
                    desired = {**desired, "data": existing.get("data")}  # same configuration: keep its generation
            if kind == "StatefulSet":
                # A child's name found taken in this very pass, or still held by an earlier namesake's child: no pod
                # on top of someone else's object, none with an old configuration or identity.
                replicas = 0 if memory.conflicts or awaited else plan.replicas
                desired = {**desired, "spec": {**desired["spec"], "replicas": replicas}}
                if existing is not None and not plan.apply:
                    desired = {"kind": kind, "metadata": {"name": name}, "spec": {"replicas": replicas}}
            step.now("apply", f"{'create' if existing is None else 'update'} {kind} {name}")
            outcome = await self._ensure(
                desired, existing, uid, key, memory, identity, deleting=observed.observation.deleting
            )
            if isinstance(outcome, Awaited):
                awaited[kind] = outcome.uid
            elif outcome == "created":
                created.append(kind)
                if kind == "StatefulSet":
                    memory.statefulset_created_at = self.clock.monotonic()
            elif outcome == "updated" and (kind != "StatefulSet" or _template_changed(existing, desired)):
                updated.append(kind)

        events: list[Event] = []
        newly = sorted(kind for kind, child in awaited.items() if memory.awaiting_collection.get(kind) != child)
        memory.awaiting_collection = awaited
        if newly:
            events.append(
                Event(
                    "Normal",
                    "AwaitingGarbageCollection",
                    f"{', '.join(newly)} {name} of an earlier LiveStrategy of this name still there: the garbage "
                    "collector deletes it (its owner is gone), then this one's is created; no pod runs meanwhile",
                )
            )
        if not observed.observation.deleting:
            await self._retire(observed, caches, memory, step, desired_sa)
            events += await self.twin.apply(strategy, uid, caches, memory, step, identity)
        if created:
            events.append(Event("Normal", "Created", f"created {', '.join(created)} {name}"))
        if updated:
            generation = strategy_generation(strategy)
            events.append(
                Event("Normal", "Updated", f"updated {', '.join(updated)} {name} for generation {generation}")
            )
        return events

    async def _retire(
        self, observed: Observed, caches: Caches, memory: StrategyMemory, step: Step, desired_sa: str | None
    ) -> None:
        """Delete the children of this strategy that it no longer wants, once nothing depends on them.

        - the headless Service (made before issue 15: nothing reads it now, the chart's PodMonitor scrapes pods);
        - livestrat's ServiceAccount of the strategy, once no pod runs as it (the spec now names its own, or the pod
          shares the namespace's identity; a pod left running by ``updatePolicy: Manual`` or an operator upgrade keeps
          it as long as it runs);
        - the strategy's Role and RoleBinding, once every pod runs as the account the strategy wants now, which no
          longer needs them (a pod still running as another account still reports with them)."""
        name, uid = observed.observation.name, observed.uid
        key: Key = (observed.observation.namespace, name)
        wanted = {child["kind"] for child in observed.desired_children}
        pods = observed.observation.pods
        for kind in ("Service", "ServiceAccount", "Role", "RoleBinding"):
            if kind in wanted:
                continue
            existing = caches.child(kind, key, memory.confirmed_gone)
            if existing is None or not owned_by(existing, uid):
                continue
            if kind == "ServiceAccount" and any(pod.service_account == labels.child_name(name) for pod in pods):
                continue
            if kind in ("Role", "RoleBinding") and any(pod.service_account != desired_sa for pod in pods):
                continue
            step.now("apply", f"delete {kind} {name}")
            await pod_identity.release(self.kube, {"kind": kind, **existing})
            # that very object (a cached one may have been replaced since)
            await self.kube.delete(kind, key[0], name, uid=uid_of(existing))

    async def _ensure(
        self,
        desired: dict[str, Any],
        existing: Mapping[str, Any] | None,
        uid: str,
        key: Key,
        memory: StrategyMemory,
        identity: Callable[[], Awaitable[None]],
        *,
        deleting: bool = False,
    ) -> str | Awaited | None:
        kind, name = desired["kind"], desired["metadata"]["name"]
        namespace = key[0]
        whole = "apiVersion" in desired  # else a partial (replicas-only) change: no record, nothing removed
        if whole:
            desired = applied_fields.with_record(desired, patchable(desired))
        wanted = digest(desired)
        if existing is not None and uid and not owned_by(existing, uid):
            # someone else's, says the cache: the API server's word first (None: it was deleted in a watch gap)
            existing = await self.observer.confirm_conflict(kind, key, existing, memory)
        if existing is None:
            if not whole:
                return None  # a partial change of a child that is not there yet
            await identity()
            try:
                created = await self.kube.create(desired)
            except ApiError as exc:
                if exc.namespace_terminating:
                    return None  # the namespace goes, and the strategy with it: nothing to put back
                if exc.status != 409:
                    raise
                existing = await self.kube.get(kind, namespace, name)  # the cache had not seen it yet
                if existing is None:
                    raise
            else:
                memory.converged[kind] = (wanted, str(created.get("metadata", {}).get("resourceVersion")))
                memory.created.remember(kind, created, self.clock.monotonic())
                memory.conflicts.pop(kind, None)
                return "created"
        adopt = not deleting and left_by_a_namesake(existing, name)  # never to an owner on its way out
        if uid and not owned_by(existing, uid) and not adopt:
            await identity()  # this LiveStrategy holds the name now: a namesake under another uid is gone
            if left_for_the_collector(existing, name):
                return Awaited(uid_of(existing))
            memory.conflicts[kind] = SpecProblem(
                "NameConflict",
                f"a {kind} named {name!r} already exists in namespace {namespace!r} and does not belong to this "
                "LiveStrategy: rename the LiveStrategy or remove that object.",
            )
            memory.conflicts_checked_at = self.clock.monotonic()
            return None
        memory.conflicts.pop(kind, None)
        return "updated" if await converge(self.kube, desired, existing, namespace, memory, kind) else None
