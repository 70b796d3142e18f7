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
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

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
            created = [
                kind for kind in [await self._one(d) for d in build_shared_identity(namespace, self.settings)] if kind
            ]
            self._verified[namespace] = self.clock.monotonic()
        if created:
            logger.info(
                "%s: created %s %s (the namespace's shared strategy identity)",
                namespace,
                ", ".join(created),
                labels.SHARED_IDENTITY,
            )
        return created

    async def _one(self, desired: dict[str, Any]) -> str | None:
        kind, meta = desired["kind"], desired["metadata"]
        existing = await self.kube.get(kind, meta["namespace"], meta["name"])
        if existing is None:
            try:
                await self.kube.create(desired)
            except ApiError as exc:
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
        patch = patchable(desired)
        if not is_subset(patch, existing):  # changed by hand: put back (labels, annotations, rules, subjects)
            await self.kube.patch(kind, meta["namespace"], meta["name"], patch)
        return None
