"""Reading the account claims of one strategy: the other live strategies of its account, and which run.

The claims index (a kopf index of the LiveStrategies, :data:`strategy_operator.kinds.ACCOUNTS_INDEX`)
holds every live strategy by (namespace, venue account); whether one runs is its StatefulSet
in the watch caches. kopf fills both before it handles anything, so a restarted operator knows every
claimant and decides as before.

The caches may lag or hold what a watch gap deleted, so a claim is confirmed with the API server before it
is acted on (:meth:`ClaimReader.claimants` with ``confirm``): before a strategy's pod starts, the namespace's
LiveStrategies are listed and the StatefulSets of those sharing an instrument read (the reconciler does this
under a lock per account, so two strategies of one account never start at once in one operator); while a
strategy is held by a claim, its holders are read again every :data:`RECHECK_SECONDS` (one deleted in a gap
releases it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from livestrat.api.accounts import claimed_account, instruments_of
from livestrat.api.status import NettingClaim
from strategy_operator.build import labels
from strategy_operator.clock import Clock
from strategy_operator.decide.claims import Claimant, blocked
from strategy_operator.kube_client import KubeClient
from strategy_operator.memory import StrategyMemory
from strategy_operator.observe.caches import Caches, uid_of

RECHECK_SECONDS = 5.0  # the holders of a held strategy's instruments are read from the API server this often


def _record_of(body: Mapping[str, Any], record: NettingClaim | Mapping[str, Any] | None) -> Mapping[str, Any]:
    if record is None:
        status = body.get("status")
        record = status.get("nettingClaim") if isinstance(status, Mapping) else None
    if isinstance(record, NettingClaim):
        return {"account": record.account, "instruments": record.instruments, "since": record.since}
    return record if isinstance(record, Mapping) else {}


def claimants_of(
    body: Mapping[str, Any], active: bool = False, record: NettingClaim | Mapping[str, Any] | None = None
) -> list[Claimant]:
    """A LiveStrategy as claimants: on the venue account its spec trades live (first), and on the account its status
    records a claim on, if another (it keeps that claim, wanting nothing there, until its pod starts again).
    From its body as stored (a malformed one claims nothing it cannot say); ``record``: the operator's own latest
    write of ``status.nettingClaim``, if known, instead of the body's."""
    meta = body.get("metadata") or {}
    if not isinstance(meta, Mapping):
        return []
    spec = body.get("spec")
    account = claimed_account(spec) if isinstance(spec, Mapping) else None
    recorded = _record_of(body, record)
    recorded_account = recorded.get("account") if isinstance(recorded.get("account"), str) else None
    found = []
    for where, wanted in ((account, instruments_of(spec) if isinstance(spec, Mapping) else ()), (recorded_account, ())):
        if where is None or any(c.account == where for c in found):
            continue
        here = where == recorded_account
        found.append(
            Claimant(
                name=str(meta.get("name") or ""),
                uid=str(meta.get("uid") or ""),
                created=str(meta.get("creationTimestamp") or ""),
                account=where,
                instruments=wanted,
                active=active,
                held=instruments_of(recorded) if here else (),
                since=str(recorded.get("since") or "") if here else "",
            )
        )
    return found


def claimant_of(
    body: Mapping[str, Any], active: bool = False, record: NettingClaim | Mapping[str, Any] | None = None
) -> Claimant | None:
    """The strategy as a claimant on the venue account its spec trades live (None: paper, unreadable)."""
    spec = body.get("spec")
    account = claimed_account(spec) if isinstance(spec, Mapping) else None
    mine = [c for c in claimants_of(body, active, record) if c.account == account]
    return mine[0] if account is not None and mine else None


def shares(me: Claimant, other: Claimant) -> bool:
    """Whether ``other`` wants or holds an instrument ``me`` trades."""
    return any(other.contends(instrument) for instrument in me.instruments)


def asks_for_pod(statefulset: Mapping[str, Any] | None) -> bool:
    replicas = ((statefulset or {}).get("spec") or {}).get("replicas")
    return isinstance(replicas, int) and replicas >= 1


class ClaimReader:
    def __init__(self, kube: KubeClient, clock: Clock) -> None:
        self.kube = kube
        self.clock = clock

    async def claimants(
        self,
        me: Claimant,
        namespace: str,
        caches: Caches,
        memory: StrategyMemory,
        *,
        confirm: bool,
    ) -> list[Claimant]:
        """The other claimants of ``me``'s account that share an instrument with it, each ``active`` or not:
        from the caches, or from the API server when ``confirm`` (and, for the holders of a held strategy, every
        :data:`RECHECK_SECONDS`)."""
        if confirm:
            return await self._from_api(me, namespace)
        cached = [
            c
            for c in caches.claimants(namespace, me.account)
            if c.uid != me.uid and c.uid not in memory.claimants_gone and shares(me, c)
        ]
        found = [
            dataclasses.replace(c, active=asks_for_pod(caches.child("StatefulSet", (namespace, c.name))))
            for c in cached
        ]
        holders = {b.holder.uid: b.holder for b in blocked(me, found)}
        now = self.clock.monotonic()
        if not holders:
            memory.claims_checked_at = None
        elif memory.claims_checked_at is None or now - memory.claims_checked_at >= RECHECK_SECONDS:
            # Held on the caches' word: are its holders still there (one deleted in a watch gap stays cached)?
            memory.claims_checked_at = now
            for holder in holders.values():
                live = await self.kube.get("LiveStrategy", namespace, holder.name)
                if uid_of(live) != holder.uid:
                    memory.claimants_gone.add(holder.uid)
            found = [c for c in found if c.uid not in memory.claimants_gone]
        return found

    async def _from_api(self, me: Claimant, namespace: str) -> list[Claimant]:
        listed = await self.kube.list("LiveStrategy", namespace, "")
        found = []
        for body in listed:
            for other in claimants_of(body):
                if other.uid == me.uid or other.account != me.account or not shares(me, other):
                    continue
                statefulset = await self.kube.get("StatefulSet", namespace, labels.child_name(other.name))
                found.append(dataclasses.replace(other, active=asks_for_pod(statefulset)))
        return found

    def recheck_after(self, memory: StrategyMemory) -> float | None:
        if memory.claims_checked_at is None:
            return None
        return max(0.1, memory.claims_checked_at + RECHECK_SECONDS - self.clock.monotonic())
