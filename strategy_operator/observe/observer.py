"""Observing one strategy: its copy from the watch, the caches, and the API reads that are due.

In the steady state everything comes from the watch caches. Some things are read from the
API server, each only when it is due: the Secrets a pod is about to need
(:mod:`strategy_operator.observe.secrets`, when :func:`~strategy_operator.decide.plan.secrets_due`
says so), a child's name taken by a foreign object (such an object carries no label, so no
watch shows it), the strategy's pods while the operator waits for them to exit (a cache
may lag behind a deletion), and the other live strategies of its venue account before its pod
starts (:mod:`strategy_operator.observe.claims`). The operator's own recent writes count over a lagging copy.

**Confirmed before acting on it.** The caches may hold objects deleted during a gap in the
watches (kopf forgets an object only on a DELETED event; after a 410 Gone and a relist, or a
peering pause, none comes), and kopf may keep running the reconciler of a LiveStrategy deleted
meanwhile (and perhaps recreated: a new uid). So before a pass scales a StatefulSet down or
deletes a pod (:func:`destructive`), it is observed again from the API server
(``observe(confirm=True)``: the LiveStrategy, its StatefulSet and ConfigMap, its pods); before a
name is declared taken, that child is read (:meth:`Observer.confirm_conflict`), and before one is
declared taken or created, the LiveStrategy (:meth:`Observer.confirm_identity`); a kill switch the cache shows
engaged, the Namespace (:mod:`strategy_operator.observe.kill_switch`).
What the API server no longer has is remembered as gone and left out of the caches; a reconciler
whose LiveStrategy is gone stops (:class:`Gone`). Two copies of one child's name in a cache are
themselves a sign of a gap: they are confirmed at once.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from livestrat.api.contract import (
    PROMOTED_BY_ANNOTATION,
    RISK_ACK_ANNOTATION,
    RISK_HALTED_AT_ANNOTATION,
    STRATEGY_LABEL,
)
from livestrat.api.resource import GROUP, KIND, LiveStrategy
from livestrat.api.runtime_config import CONFIG_FILE_NAME
from strategy_operator.build import labels
from strategy_operator.build.configuration import runtime_json
from strategy_operator.build.manifests import build_children
from strategy_operator.build.policy import spec_problems
from strategy_operator.clock import Clock
from strategy_operator.decide import promotion
from strategy_operator.decide.claims import Claimant, claim_problems
from strategy_operator.decide.plan import Plan, SecretsCheck, secrets_due
from strategy_operator.decide.status import operator_part, with_operator_part
from strategy_operator.kube_client import KubeClient
from strategy_operator.memory import StrategyMemory
from strategy_operator.observe.caches import Caches, uid_of
from strategy_operator.observe.claims import ClaimReader, asks_for_pod, claimant_of
from strategy_operator.observe.kill_switch import KillSwitches
from strategy_operator.observe.observation import Observation, PodView
from strategy_operator.observe.paper_record import PaperTrackRecord
from strategy_operator.observe.reading import read_object
from strategy_operator.observe.secrets import SECRETS_REPORT_SECONDS, SECRETS_VALID_SECONDS, SecretLookup
from strategy_operator.settings import OperatorSettings
from strategy_operator.wakeups import Key

CONFIRM_PODS_SECONDS = 5.0  # a pod the caches still show while waiting for it to exit is re-read this often
CONFLICT_RECHECK_SECONDS = 5.0  # a child's name taken by a foreign object is looked at again this often


class Gone(Exception):
    """The LiveStrategy a reconciler was started for is gone from the API server (deleted, perhaps recreated under
    a new uid) although kopf never said so: that reconciler stops, and acts on nothing."""


def destructive(obs: Observation, plan: Plan) -> bool:
    """Whether acting on this plan would destroy something: scale a running StatefulSet down, or delete a pod."""
    replicas = ((obs.statefulset or {}).get("spec") or {}).get("replicas")
    return bool(plan.delete_pods) or (plan.replicas == 0 and obs.statefulset is not None and replicas != 0)


@dataclass(frozen=True)
class Observed:
    """One reconciliation's observation, and what it read the spec into."""

    observation: Observation
    strategy: LiveStrategy | None
    uid: str
    desired_children: list[dict[str, Any]]
    claimant: Claimant | None = None  # a live strategy on a venue account (decide.claims)


def owned_by(body: Mapping[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in (body.get("metadata") or {}).get("ownerReferences") or [])


def left_for_the_collector(existing: Mapping[str, Any], name: str) -> bool:
    """A child (or paper twin) of an earlier LiveStrategy of this name, deleted since (in the background, the
    default): every owner reference names a LiveStrategy of this name, under a uid that is not the one of the
    LiveStrategy that holds the name now (confirmed first), so that owner is gone and the garbage collector deletes
    the child (an owner reference names its owner by uid: "Owners and Dependents"). Neither adopted nor a
    NameConflict: waited for."""
    refs = (existing.get("metadata") or {}).get("ownerReferences") or []
    return bool(refs) and all(
        isinstance(ref, Mapping)
        and ref.get("kind") == KIND
        and str(ref.get("apiVersion") or "").split("/")[0] == GROUP
        and ref.get("name") == name
        for ref in refs
    )


class Observer:
    def __init__(self, settings: OperatorSettings, kube: KubeClient, clock: Clock) -> None:
        self.settings = settings
        self.kube = kube
        self.clock = clock
        self.secrets = SecretLookup(settings, kube, clock)
        self.claims = ClaimReader(kube, clock)
        self.kill_switches = KillSwitches(kube, clock)

    async def observe(
        self,
        raw: dict[str, Any],
        caches: Caches,
        memory: StrategyMemory,
        *,
        confirm: bool = False,
        confirm_claims: bool = False,
    ) -> Observed:
        """Everything the decisions need: the caches, plus the API reads that are due (Secrets, conflicts, pods).
        ``confirm``: the LiveStrategy, its StatefulSet, ConfigMap and pods as the API server has them now;
        ``confirm_claims``: the other live strategies of its venue account too (before its pod starts)."""
        meta = raw.get("metadata") or {}
        name, namespace, uid = meta["name"], meta["namespace"], str(meta.get("uid") or "")
        key: Key = (namespace, name)
        if confirm:
            raw = await self.confirm_identity(namespace, name, uid)
            meta = raw.get("metadata") or {}
        reading = read_object(raw)
        annotations = reading.annotations
        clock = self.clock.monotonic()
        seen = reading.status
        status = with_operator_part(seen, memory.status_writes.current(operator_part(seen), clock))
        recorded = memory.breach_writes.current(annotations.get(RISK_HALTED_AT_ANNOTATION), clock)
        halt_request = memory.halt_writes.current(reading.halt_request, clock)
        version = int(str(meta.get("resourceVersion") or 0)) if str(meta.get("resourceVersion") or 0).isdigit() else 0
        # The operator's own fields that do not read are written back once: a copy that lags behind that write
        # (the same resourceVersion or an older one) shows them still, and is not told again.
        repairs = reading.status_repairs if version > memory.repaired_version else ()
        # Likewise the trading and risk a pod of an earlier object of this name pushed: removed once.
        another = reading.pushed_by_another if version > memory.repaired_version else None

        strategy, problems = reading.strategy, list(reading.problems)
        # A child the cache shows has caught up with its creation: a deletion right after it is not hidden.
        memory.created.seen([kind for kind in memory.created.kinds() if caches.child(kind, key) is not None])
        # A StatefulSet this operator has just created may not be in the cache yet: its pod may be.
        statefulset = await self.child("StatefulSet", key, uid, caches, memory, confirm=confirm)
        desired_config: dict[str, Any] = {}
        desired_hash = ""
        desired_children: list[dict[str, Any]] = []
        claimant = (
            claimant_of(raw, active=asks_for_pod(statefulset), record=status.netting_claim or {})
            if strategy is not None
            else None
        )
        if strategy is not None:
            problems += spec_problems(strategy, self.settings)
            if claimant is not None:
                others = await self.claims.claimants(claimant, namespace, caches, memory, confirm=confirm_claims)
                problems += claim_problems(claimant, others)
            await self._recheck_conflicts(namespace, name, uid, memory)
            problems += list(memory.conflicts.values())
            desired_children = build_children(strategy, self.settings, replicas=1)
            desired_config = json.loads(desired_children[0]["data"][CONFIG_FILE_NAME])
            desired_hash = desired_children[-1]["metadata"]["annotations"][labels.CONFIG_HASH_ANNOTATION]

        halting = statefulset is not None and (statefulset.get("spec") or {}).get("replicas") == 0
        pods = await self.pods(key, caches, memory, statefulset, confirm=halting, now=confirm)
        now = self.clock.now()
        observation = Observation(
            name=name,
            namespace=namespace,
            generation=meta.get("generation"),
            spec=strategy.spec if strategy is not None else None,
            deleting=bool(meta.get("deletionTimestamp")),
            acknowledgement=annotations.get(RISK_ACK_ANNOTATION),
            status=status,
            kill_switch=await self.kill_switches.engaged(namespace, caches),
            problems=problems,
            statefulset=statefulset,
            pods=pods,
            desired_hash=desired_hash,
            running_config=runtime_json(await self.child("ConfigMap", key, uid, caches, memory, confirm=confirm)),
            desired_config=desired_config,
            now=now,
            phase_since=now,
            settings=self.settings,
            spec_replicas=reading.spec_replicas,
            risk_recorded=recorded,
            desired_statefulset=desired_children[-1] if desired_children else None,
            unreadable_status=reading.unreadable_status,
            status_repairs=repairs,
            runtime_of_another=another,
            scalable=reading.scalable,
            resource_version=version,
            halt_requested=halt_request,
            budget_halts=reading.budget_halts,
            annotations_writable=reading.annotations_writable,
            drain_blocked=self._drain_blocked(key, caches, pods),
            claimant=claimant,
        )

        # The Secrets a pod needs are read when one is about to start (or cannot), and, less often, while a
        # running pod is left as it is with a pending configuration: their problems then hold nothing (the
        # running pod has its environment) and are reported for the pending configuration.
        observation = await self._promotion(observation, annotations)
        check = secrets_due(observation)
        if strategy is not None and check is not None:
            kept = check == SecretsCheck.PENDING
            found = await self.secrets.problems(
                strategy, memory.secrets, SECRETS_REPORT_SECONDS if kept else SECRETS_VALID_SECONDS
            )
            if found and kept:
                observation = dataclasses.replace(observation, deferred_problems=found)
            elif found:
                observation = dataclasses.replace(observation, problems=[*problems, *found])
        return Observed(observation, strategy, uid, desired_children, claimant)

    async def _promotion(self, observation: Observation, annotations: Mapping[str, str]) -> Observation:
        """With ``spec.promotion`` not yet granted: the paper strategy it names, read now from the API server (its
        status changes without this strategy's watch telling), and who asked (``livestrat.io/promoted-by``)."""
        spec = observation.spec
        if spec is None or spec.promotion is None or promotion.granted(spec, observation.status.promotion):
            return observation
        paper = spec.promotion.from_
        body = await self.kube.get("LiveStrategy", observation.namespace, paper)
        record = PaperTrackRecord.from_body(paper, body) if body is not None else PaperTrackRecord.missing(paper)
        return dataclasses.replace(observation, paper=record, promoted_by=annotations.get(PROMOTED_BY_ANNOTATION))

    async def confirm_identity(self, namespace: str, name: str, uid: str) -> dict[str, Any]:
        """The LiveStrategy as the API server has it now, if it is still the one of this uid; else :class:`Gone`."""
        live = await self.kube.get("LiveStrategy", namespace, name)
        if live is None or uid_of(live) != uid:
            raise Gone(f"LiveStrategy {namespace}/{name} of uid {uid} is gone" + (", recreated" if live else ""))
        return live

    async def child(
        self, kind: str, key: Key, uid: str, caches: Caches, memory: StrategyMemory, *, confirm: bool = False
    ) -> dict[str, Any] | None:
        """The strategy's child of this kind: from the cache; from the API server (the copies it no longer has
        remembered as gone) when ``confirm``, when two copies of its name are cached (one was deleted in a watch
        gap), or when the cached one is not this LiveStrategy's (left by one of its name deleted in a gap?)."""
        cached = [body for body in caches.named(kind, key) if uid_of(body) not in memory.confirmed_gone]
        if not confirm and len(cached) <= 1 and all(owned_by(body, uid) for body in cached):
            return cached[0] if cached else memory.created.get(kind, self.clock.monotonic())
        live = await self.kube.get(kind, key[0], labels.child_name(key[1]))
        memory.confirmed_gone |= {uid_of(body) for body in cached} - {uid_of(live)}
        # as the cache selects: only an object carrying the strategy's label (a foreign one is a conflict)
        ours = live is not None and ((live.get("metadata") or {}).get("labels") or {}).get(STRATEGY_LABEL) == key[1]
        return live if ours else None

    async def confirm_conflict(
        self, kind: str, key: Key, cached: Mapping[str, Any], memory: StrategyMemory
    ) -> dict[str, Any] | None:
        """A cached child of the strategy's name that it does not own (``cached``), confirmed before the name is
        declared taken: the object the API server has under that name now (None: the cached one is gone, and is
        remembered so)."""
        live = await self.kube.get(kind, key[0], labels.child_name(key[1]))
        if uid_of(live) != uid_of(cached):
            memory.confirmed_gone.add(uid_of(cached))
        return live

    @staticmethod
    def _drain_blocked(key: Key, caches: Caches, pods: Sequence[PodView]) -> tuple[str, str] | None:
        """(node, why) when the running pod's node is being drained and the strategy's budget allows no disruption
        (its status says 0, or the disruption controller has not counted yet: maxUnavailable is 0)."""
        budget = caches.child("PodDisruptionBudget", key)
        if budget is None or ((budget.get("status") or {}).get("disruptionsAllowed") or 0) > 0:
            return None
        for pod in pods:
            if pod.controlled and not pod.terminating and pod.node_name:
                why = caches.node_drain(pod.node_name)
                if why is not None:
                    return pod.node_name, why
        return None

    async def pods(
        self,
        key: Key,
        caches: Caches,
        memory: StrategyMemory,
        statefulset: dict[str, Any] | None,
        *,
        confirm: bool,
        now: bool = False,
    ) -> list[PodView]:
        """The strategy's pods from the cache; re-read from the API when waiting on them (a cache may lag; at most
        every few seconds), and at once when ``now``, when two of one name are cached, or when one's StatefulSet
        is known to be gone (left by a watch gap)."""
        found = [p for p in caches.pods(key) if uid_of(p) not in memory.confirmed_gone]
        clock = self.clock.monotonic()
        names = [(p.get("metadata") or {}).get("name") for p in found]
        # two pods of one name, or one whose StatefulSet is gone: the cache may hold a pod deleted in a watch gap
        suspect = len(set(names)) < len(names) or any(
            ref.get("uid") in memory.confirmed_gone
            for p in found
            for ref in (p.get("metadata") or {}).get("ownerReferences") or []
        )
        if found and (now or suspect or (confirm and clock - memory.pods_confirmed_at >= CONFIRM_PODS_SECONDS)):
            memory.pods_confirmed_at = clock
            live = await self.kube.list("Pod", key[0], labels.selector(key[1]))
            live_uids = {(p.get("metadata") or {}).get("uid") for p in live}
            memory.confirmed_gone |= {(p.get("metadata") or {}).get("uid") for p in found} - live_uids
            found = [p for p in found if (p.get("metadata") or {}).get("uid") in live_uids]
        sts_uid = ((statefulset or {}).get("metadata") or {}).get("uid")
        return [PodView.from_body(p, sts_uid, labels.child_name(key[1])) for p in found]

    async def _recheck_conflicts(self, namespace: str, name: str, uid: str, memory: StrategyMemory) -> None:
        """A foreign object holding a child's name carries no label: it is re-read now and then, not watched."""
        now = self.clock.monotonic()
        if not memory.conflicts or now - memory.conflicts_checked_at < CONFLICT_RECHECK_SECONDS:
            return
        memory.conflicts_checked_at = now
        for kind in list(memory.conflicts):
            found = await self.kube.get(kind, namespace, labels.child_name(name))
            if found is None or owned_by(found, uid):
                del memory.conflicts[kind]

    def conflict_recheck_after(self, memory: StrategyMemory) -> float | None:
        """When to look again at a child's name held by another object: a foreign one's (re-read now and then), or
        an earlier namesake's child the garbage collector deletes (its deletion wakes the strategy; this, too, in
        case the watch missed it)."""
        if not memory.conflicts:
            return CONFLICT_RECHECK_SECONDS if memory.awaiting_collection else None
        return max(0.1, memory.conflicts_checked_at + CONFLICT_RECHECK_SECONDS - self.clock.monotonic())
