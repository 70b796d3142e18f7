"""The identity strategy pods share in a namespace: kept there while a strategy's pod may need it.

Under ``runtimeIdentity: shared`` a pod runs as the namespace's ServiceAccount ``livestrat-runtime``, whose Role may
patch the status of any LiveStrategy there; the chart's ValidatingAdmissionPolicy (``runtime-identity``) lets a
patch through only when the pod named in the request's token is that strategy's pod. Three objects per namespace,
written once, instead of three per strategy.

They belong to no strategy (no owner reference: deleting a strategy leaves them for the others; uninstalling
livestrat leaves them too, see docs/install.md). Before a strategy's children are written, :meth:`ensure` makes
sure they are there and as built: read from the API server, created when missing, patched when changed by hand.
They are in no watch cache: the operator's watches select the strategy label on the server, one selector per
resource (kopf's ``watching.label_selectors``), and these carry none. So a namespace found right is read again
only after :data:`VERIFY_EVERY` seconds, or after :data:`URGENT_EVERY` while a strategy's pod is wanted and not
there: a pod cannot be created without its ServiceAccount (deleted by hand, say), and then the next pass puts it
back. A running pod does not need it again: its token stays valid while it runs.

Kept while a pod runs as it: each part carries the ``livestrat.io/pod-identity`` finalizer (added to one made before
it had one). Deleting the namespace deletes them at the same moment as the pods; without the finalizer a pod
halting then could not read its halt record (401 for its token) and took the halt for a restart, leaving positions
that ``haltPolicy: flatten`` was to close. :func:`release_if_unused` removes the finalizer from the parts being
deleted once no strategy pod of the namespace runs as them: while the namespace is seen terminating
(:class:`TerminatingNamespaces`), and by :meth:`SharedIdentity.ensure` (a part deleted by hand goes once nothing runs
as it, and is made anew). Once a namespace's last strategy is released the finalizer comes off every part
(:meth:`SharedIdentity.release_last`: what is left waits on nobody, so a namespace deleted after the operator was
uninstalled is not held), and the next strategy's ``ensure`` puts it back.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from strategy_operator.apply import pod_identity
from strategy_operator.apply.merge import is_subset, patchable
from strategy_operator.build import labels
from strategy_operator.build.manifests import build_shared_identity
from strategy_operator.clock import Clock
from strategy_operator.kube_client import ApiError, KubeClient
from strategy_operator.settings import OperatorSettings

logger = logging.getLogger("livestrat.operator")

VERIFY_EVERY = 300.0
URGENT_EVERY = 5.0


def runs_as(children: Sequence[Mapping[str, Any]]) -> str | None:
    """The account the pod of the desired StatefulSet (among a strategy's desired children) runs as."""
    sts = next((c for c in children if c["kind"] == "StatefulSet"), None)
    return (((sts or {}).get("spec") or {}).get("template") or {}).get("spec", {}).get("serviceAccountName")


def pod_awaited(children: Sequence[Mapping[str, Any]], replicas: int, pods: Sequence[object]) -> bool:
    """A pod of the shared identity is wanted and not there: it may be missing for want of the identity (read
    again every URGENT_EVERY seconds, and the reconciler looks again as often)."""
    return replicas > 0 and not pods and runs_as(children) == labels.SHARED_IDENTITY


DELETING = "deleting"  # what SharedIdentity._one says of a part being deleted
RELEASE_POLL = 2.0  # seconds between two looks at a terminating namespace's strategy pods


async def release_if_unused(kube: KubeClient, namespace: str, *, every_part: bool = False) -> bool:
    """Take the operator's finalizer off the parts of the namespace's shared identity that are being deleted (with
    ``every_part``, off all of them: the namespace is terminating, or no strategy is left there), if no strategy pod
    there runs as it (read from the API server, terminating pods included: a cache may lag). Whether a part still
    waits for a pod."""
    held = []
    for kind in labels.SHARED_IDENTITY_KINDS:
        part = await kube.get(kind, namespace, labels.SHARED_IDENTITY)
        if part is None or labels.POD_IDENTITY_FINALIZER not in pod_identity.finalizers_of(part):
            continue
        if every_part or (part.get("metadata") or {}).get("deletionTimestamp"):
            held.append({"kind": kind, **part})
    if not held:
        return False
    pods = await kube.list("Pod", namespace, labels.STRATEGY_LABEL)
    if any((p.get("spec") or {}).get("serviceAccountName") == labels.SHARED_IDENTITY for p in pods):
        return True
    for part in held:
        await pod_identity.release(kube, part)
    logger.info(
        "%s: released %s %s (no strategy pod runs as it)",
        namespace,
        ", ".join(p["kind"] for p in held),
        labels.SHARED_IDENTITY,
    )
    return False


class TerminatingNamespaces:
    """The namespaces seen terminating: each one's shared identity is let go once no strategy pod there runs as it.
    The namespace controller deletes the pods and the identity at once, and the strategies' deletions let it go when
    their pods are gone; this looks again every RELEASE_POLL seconds until then, for what no deletion of a strategy
    would see (a namespace whose strategies were deleted before, a strategy's deletion that looked first)."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        # namespace -> (its uid, the task letting its identity go): a namespace deleted and created again under its
        # name is another object, whose events kopf may even handle before the last ones of the old
        self._watching: dict[str, tuple[str, asyncio.Task[None]]] = {}

    def __call__(self, namespace: str) -> bool:
        """Whether ``namespace`` was last seen terminating (and not gone since)."""
        return namespace in self._watching

    def seen(self, namespace: str, uid: str) -> None:
        """Seen terminating."""
        known = self._watching.get(namespace)
        if known is not None and known[0] == uid and not known[1].done():
            return
        self.active(namespace)
        task = asyncio.create_task(self._release(namespace), name=f"release {namespace}")
        self._watching[namespace] = (uid, task)

    def active(self, namespace: str) -> None:
        """Seen active: not terminating, whatever was seen of an earlier namespace of that name."""
        known = self._watching.pop(namespace, None)
        if known is not None:
            known[1].cancel()

    def gone(self, namespace: str, uid: str) -> None:
        """The namespace of this uid is deleted (not a newer one of its name)."""
        known = self._watching.get(namespace)
        if known is not None and known[0] == uid:
            self.active(namespace)

    async def close(self) -> None:
        tasks = [task for _, task in self._watching.values() if not task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._watching.clear()

    async def _release(self, namespace: str) -> None:
        while True:
            try:
                if not await release_if_unused(self.kube, namespace, every_part=True):
                    return
            except ApiError as exc:  # looked at again
                logger.warning("%s: the shared identity of a terminating namespace: %s", namespace, exc)
            await asyncio.sleep(RELEASE_POLL)


class SharedIdentityTaken(RuntimeError):
    """An object of the shared identity's name that livestrat did not make: it is not used, nor changed."""


class SharedIdentity:
    def __init__(self, kube: KubeClient, clock: Clock, settings: OperatorSettings) -> None:
        self.kube = kube
        self.clock = clock
        self.settings = settings
        self._verified: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def ensure(self, namespace: str, *, urgent: bool = False) -> list[str]:
        """Make the namespace's shared identity be there and as built; the kinds created (for the log). ``urgent``:
        a pod is wanted and missing, so it may be missing for want of it."""
        every = URGENT_EVERY if urgent else VERIFY_EVERY
        if self.clock.monotonic() - self._verified.get(namespace, -math.inf) < every:
            return []
        lock = self._locks.setdefault(namespace, asyncio.Lock())
        async with lock:  # a thousand strategies created at once: one of them reads and writes, the others wait
            if self.clock.monotonic() - self._verified.get(namespace, -math.inf) < every:
                return []
            outcomes = [await self._one(d) for d in build_shared_identity(namespace, self.settings)]
            created = [kind for kind in outcomes if kind not in (None, DELETING)]
            verified = self.clock.monotonic()
            if DELETING in outcomes:  # deleted by hand: it goes once no pod runs as it, then is made anew
                await release_if_unused(self.kube, namespace)
                verified -= VERIFY_EVERY - URGENT_EVERY  # looked at again soon
            self._verified[namespace] = verified
        if created:
            logger.info(
                "%s: created %s %s (the namespace's shared strategy identity)",
                namespace,
                ", ".join(created),
                labels.SHARED_IDENTITY,
            )
        return created

    async def release_last(self, namespace: str) -> None:
        """The namespace's last strategy is released: the operator's finalizer comes off every part if no pod runs as
        it (uninstalled, it would hold the namespace's deletion for good); the next strategy's ``ensure`` puts it
        back."""
        await release_if_unused(self.kube, namespace, every_part=True)
        self._verified.pop(namespace, None)

    async def _one(self, desired: dict[str, Any]) -> str | None:
        kind, meta = desired["kind"], desired["metadata"]
        existing = await self.kube.get(kind, meta["namespace"], meta["name"])
        if existing is None:
            try:
                await self.kube.create(desired)
            except ApiError as exc:
                if exc.namespace_terminating:
                    return None  # the namespace goes: nothing may be made there, and no pod will need it
                if exc.status != 409:  # made meanwhile by another hand: looked at on the next pass
                    raise
                return None
            return kind
        found = (existing.get("metadata") or {}).get("labels") or {}
        if found.get(labels.SHARED_IDENTITY_LABEL) != "true":
            raise SharedIdentityTaken(
                f"a {kind} named {meta['name']!r} in namespace {meta['namespace']!r} was not made by livestrat (it "
                f"lacks the label {labels.SHARED_IDENTITY_LABEL}=true), so strategy pods cannot run as the shared "
                f"identity there: rename or remove that {kind}, or run the operator with runtimeIdentity: perStrategy."
            )
        if (existing.get("metadata") or {}).get("deletionTimestamp"):
            return DELETING  # nothing may be added to it now (a finalizer neither)
        # the operator's finalizer added to those there (one made before it had one gets it), none removed
        patch = patchable(pod_identity.with_finalizers(desired, existing, deleting=False))
        if not is_subset(patch, existing):  # changed by hand: put back (labels, annotations, rules, subjects)
            await self.kube.patch(kind, meta["namespace"], meta["name"], patch)
        return None
