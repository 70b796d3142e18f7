"""One LiveStrategy's reconciliation: observe, decide once, act, report.

Each pass:

1. **observe** (:mod:`strategy_operator.observe`): the watch's copy, the caches, the API reads
   that are due, with the operator's own recent writes counting over a lagging copy;
2. **decide** (:mod:`strategy_operator.decide`): the plan (made once), then the report (status,
   conditions, events, next deadline) from the observation and the plan;
3. **apply** (:mod:`strategy_operator.apply`): halting first, then everything else, each write
   skipped when there is nothing to change, so a strategy at rest costs no write at all.

A pass that would scale a StatefulSet down or delete a pod observes again from the API server
first and decides on that (the caches may hold what a watch gap deleted); a reconciler whose
LiveStrategy the API server no longer has raises :class:`~strategy_operator.observe.observer.Gone`.

This module only sequences them and keeps what one operator remembers per strategy
(:class:`~strategy_operator.memory.StrategyMemory`), the phases its metrics count, and the
metrics of each pass. The clock is injected: no decision reads the system's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

from livestrat.api.status import ConditionType, LiveStrategyStatus, Phase
from strategy_operator.apply import shared_identity
from strategy_operator.apply.actions import FIRST_STATUS_WITHIN, Actions, Events, PostEvent, kopf_event
from strategy_operator.apply.finalizer import Finalizer
from strategy_operator.clock import SYSTEM_CLOCK, Clock
from strategy_operator.decide import conditions
from strategy_operator.decide.phase import timed_wait
from strategy_operator.decide.plan import Plan, plan
from strategy_operator.decide.status import report
from strategy_operator.kube_client import ApiError, KubeClient
from strategy_operator.memory import StrategyMemory
from strategy_operator.metrics import OperatorMetrics
from strategy_operator.observe.caches import Caches
from strategy_operator.observe.observer import Gone, Observed, Observer, destructive
from strategy_operator.settings import OperatorSettings
from strategy_operator.wakeups import Key

logger = logging.getLogger("livestrat.operator")


class Reconciler:
    def __init__(
        self,
        settings: OperatorSettings,
        kube: KubeClient,
        metrics: OperatorMetrics,
        post_event: PostEvent = kopf_event,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.memories: dict[Key, StrategyMemory] = {}
        self.phases: dict[Key, str] = {}  # the phase of each strategy (metrics, liveness probe)
        self.failures: dict[Key, str] = {}  # the reason of each Failed one (metrics: alerts)
        # The uid of each LiveStrategy kopf last told of: a reconciler of another uid under that name may be a stale
        # one (kopf keeps the daemon of an object deleted during a watch gap, and tells nothing).
        self.uids: dict[Key, str] = {}
        self.events = Events(metrics, post_event)
        self.observer = Observer(settings, kube, clock)
        self.actions = Actions(kube, metrics, self.events, clock, self.observer)
        self.finalizer = Finalizer(
            settings, kube, self.observer, self.events, clock, self.actions.children.shared, self._not_deleting
        )
        # One pass at a time starts a pod on each venue account (decide.claims), so two strategies of one account
        # never both see the claim free: the second reads the first's StatefulSet from the API server.
        self.account_locks: dict[tuple[str, str], asyncio.Lock] = {}

    def _not_deleting(self) -> list[Key]:
        """The strategies known here whose deletion has not begun (one that began is finalized: deletion_seen)."""
        return [key for key, memory in self.memories.items() if memory.deletion_seen is None]

    def memory(self, key: Key) -> StrategyMemory:
        return self.memories.setdefault(key, StrategyMemory())

    def saw(self, key: Key, uid: str) -> None:
        """kopf told of the LiveStrategy of this name and uid (any event but its deletion)."""
        self.uids[key] = uid

    def forget(self, key: Key, uid: str | None = None) -> None:
        if uid is None or self.uids.get(key) in (None, uid):  # not a newer object's, of the same name
            self.uids.pop(key, None)
        self.memories.pop(key, None)
        self.phases.pop(key, None)
        self.failures.pop(key, None)

    def _record_phase(self, key: Key, status: LiveStrategyStatus) -> None:
        self.phases[key] = str(status.phase)
        if status.phase == Phase.FAILED:
            ready = conditions.find(status.conditions, ConditionType.READY)
            self.failures[key] = ready.reason if ready is not None else "Failed"
        else:
            self.failures.pop(key, None)

    async def reconcile(self, body: Mapping[str, Any], caches: Caches) -> float | None:
        """Bring one strategy's children and status in line; returns when to look again (seconds), if timed."""
        started = self.clock.monotonic()
        try:
            recheck = await self._reconcile(dict(body), caches)
        except Gone:
            raise  # not a failed reconciliation: this reconciler's LiveStrategy is gone
        except Exception as exc:
            self.metrics.reconciles.labels("error").inc()
            self.metrics.reconcile_errors.labels(type(exc).__name__).inc()
            raise
        finally:
            self.metrics.reconcile_seconds.observe(self.clock.monotonic() - started)
        self.metrics.reconciles.labels("ok").inc()
        return recheck

    async def _reconcile(self, raw: dict[str, Any], caches: Caches) -> float | None:
        meta = raw.get("metadata") or {}
        key: Key = (meta["namespace"], meta["name"])
        uid = str(meta.get("uid") or "")
        if self.uids.get(key, uid) != uid:  # kopf has told of another object of this name since
            await self.observer.confirm_identity(key[0], key[1], uid)
        memory = self.memory(key)
        async with contextlib.AsyncExitStack() as held:
            observed = await self.observer.observe(raw, caches, memory)
            decided = plan(observed.observation)
            claimant = observed.claimant
            if claimant is not None and decided.replicas == 1 and not claimant.active:
                # About to start the pod of a live strategy on a venue account: decided again on what the API
                # server has (the caches may lag behind a strategy created a moment ago), one start per account.
                lock = self.account_locks.setdefault((key[0], claimant.account), asyncio.Lock())
                await held.enter_async_context(lock)
                observed = await self.observer.observe(raw, caches, memory, confirm_claims=True)
                decided = plan(observed.observation)
            return await self._decide_and_act(key, raw, caches, memory, observed, decided)

    async def _decide_and_act(
        self,
        key: Key,
        raw: dict[str, Any],
        caches: Caches,
        memory: StrategyMemory,
        observed: Observed,
        decided: Plan,
    ) -> float | None:
        if destructive(observed.observation, decided):
            # Nothing is destroyed on the caches' word (they may hold what a watch gap deleted): again, from the API.
            try:
                observed = await self.observer.observe(raw, caches, memory, confirm=True)
            except ApiError as exc:
                if decided.hold is None or not decided.hold.asked:
                    raise  # retried: nothing is stopped on an unconfirmed view
                # A halt someone asked for is not held up by a read that fails (a missing RBAC grant, an outage):
                # the StatefulSet goes to 0 all the same; only the pods the caches show are not deleted on it.
                logger.warning("%s/%s: could not confirm before halting (%s): halting anyway", *key, exc)
                decided = dataclasses.replace(decided, delete_pods=[])
            else:
                decided = plan(observed.observation)
        observation = observed.observation
        since = memory.since(timed_wait(decided.replicas, list(observation.pods)), observation.now)
        observation = dataclasses.replace(observation, phase_since=since)
        reported = report(observation, decided)
        conflicts_before = set(memory.conflicts)
        await self.actions.act(
            raw,
            dataclasses.replace(observed, observation=observation),
            decided,
            reported,
            caches,
            memory,
            on_failure=lambda status: self._record_phase(key, status),
        )
        self._record_phase(key, reported.status)

        if set(memory.conflicts) - conflicts_before:
            return 0.1  # found while acting: decide again with it
        delays = [
            reported.recheck_after,
            self.observer.secrets.recheck_after(memory.secrets),
            self.observer.conflict_recheck_after(memory),
            self.observer.claims.recheck_after(memory),  # a strategy held by a claim: are its holders still there
            # a pod wanted and missing may want the namespace's shared identity (apply.shared_identity)
            shared_identity.URGENT_EVERY
            if shared_identity.pod_awaited(observed.desired_children, decided.replicas, observation.pods)
            else None,
            FIRST_STATUS_WITHIN if memory.first_status_deferred else None,  # apply.actions: a new strategy's status
        ]
        due = [delay for delay in delays if delay is not None]
        return min(due) if due else None

    async def finalize(self, body: Mapping[str, Any], caches: Caches, wake: Callable[[], Any]) -> None:
        """A LiveStrategy is being deleted: halt it, wait for its pod to exit (bounded), then let it go."""
        meta = body.get("metadata") or {}
        key: Key = (meta["namespace"], meta["name"])
        await self.finalizer.finalize(body, caches, self.memory(key), wake)
        self.forget(key)
