"""Whether this replica acts, and if not why: read from the peering object kopf reads, for metrics and readiness.

With peering (``LIVESTRAT_PEERING``), kopf pauses a replica (no watches, no reconcilers, no halts) while its
peering object shows a live peer of a higher priority (a standby: as intended), a live peer of the same
priority (kopf then pauses both), or, peering being mandatory, while the object or its CRD is missing (kopf
checks that when it starts: a replica acting when the object is deleted goes on until it restarts). kopf
says so in its log only, and its liveness endpoint answers all the same: a paused operator looked healthy.
:class:`PeeringMonitor` reads the same object (the one ClusterKopfPeering: see ``handlers.configure``) every
:data:`CHECK_SECONDS`, parses it with kopf's own ``Peer`` (priority, lifetime, last keep-alive) and applies
kopf's rule (``kopf._core.engines.peering.process_peering_event``) to say why this replica is paused, if it is.
The metrics (``livestrat_operator_acting``, ``livestrat_operator_paused{reason}``) and the readiness endpoint
(``/readyz``: a fault is not ready, a standby is) show it; the chart's alert fires when no replica acts.

Its view can lag kopf's by up to :data:`CHECK_SECONDS` (and kopf's its own watch): a gauge, not a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import socket
import uuid
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from kopf._core.engines.peering import Peer  # kopf's parsing of a keep-alive, not a copy of it

from strategy_operator.kube_client import KubeClient

logger = logging.getLogger("livestrat.operator")

CHECK_SECONDS = 5.0


class Paused(StrEnum):
    """Why kopf pauses this replica."""

    PEERING_OBJECT_MISSING = "PeeringObjectMissing"  # mandatory peering waits for it: every replica is paused
    SAME_PRIORITY_PEER = "SamePriorityPeer"  # kopf pauses every replica of equal priority
    HIGHER_PRIORITY_PEER = "HigherPriorityPeer"  # a standby: as intended


FAULTS = frozenset({Paused.PEERING_OBJECT_MISSING, Paused.SAME_PRIORITY_PEER})  # paused by something wrong


def own_identity() -> str:
    """This replica's name in the peering object, given to kopf so the operator can tell itself from its peers:
    ``POD_ID`` (the chart sets the pod's name, as kopf reads it), else unique to this process."""
    return os.environ.get("POD_ID") or f"{getpass.getuser()}@{socket.gethostname()}/{uuid.uuid4().hex[:8]}"


def paused_by(peering: Mapping[str, Any] | None, identity: str, priority: int) -> Paused | None:
    """Why kopf pauses the replica ``identity`` of ``priority`` with this peering object (None: it acts)."""
    if peering is None:
        return Paused.PEERING_OBJECT_MISSING
    status = peering.get("status")
    entries = status.items() if isinstance(status, Mapping) else ()
    peers = [Peer(identity=str(key), **value) for key, value in entries if isinstance(value, Mapping)]
    live = [peer for peer in peers if not peer.is_dead and peer.identity != identity]
    if any(peer.priority > priority for peer in live):
        return Paused.HIGHER_PRIORITY_PEER
    if any(peer.priority == priority for peer in live):
        return Paused.SAME_PRIORITY_PEER
    return None


class PeeringMonitor:
    def __init__(self, kube: KubeClient, name: str | None, identity: str, priority: int) -> None:
        self.kube = kube
        self.name = name  # None: standalone, always acting
        self.identity = identity
        self.priority = priority
        self.reason: Paused | None = Paused.PEERING_OBJECT_MISSING if name else None  # until read
        self._task: asyncio.Task[None] | None = None

    @property
    def acting(self) -> bool:
        return self.reason is None

    def message(self) -> str:
        """What /readyz answers, in words."""
        if self.reason is None:
            return "acting" if self.name else "acting (standalone)"
        return {
            Paused.PEERING_OBJECT_MISSING: f"paused: the peering object ClusterKopfPeering {self.name} (or its CRD) "
            "is missing, and peering is mandatory: a replica that starts acts only once it exists (the chart "
            "creates it); one that was acting when it went goes on only until it restarts",
            Paused.SAME_PRIORITY_PEER: f"paused: another live replica has this one's priority {self.priority} in "
            f"ClusterKopfPeering {self.name}: kopf pauses both (set LIVESTRAT_REPLICA_ORDINAL or LIVESTRAT_PRIORITY)",
            Paused.HIGHER_PRIORITY_PEER: f"standby: a live replica of higher priority acts (ClusterKopfPeering "
            f"{self.name}); this one takes over when it leaves",
        }[self.reason]

    async def check(self) -> None:
        if self.name is None:
            return
        found = await self.kube.get("ClusterKopfPeering", "", self.name)
        reason = paused_by(found, self.identity, self.priority)
        if reason != self.reason:
            self.reason = reason
            (logger.warning if reason in FAULTS else logger.info)("operator: %s", self.message())

    async def check_safely(self) -> None:
        try:
            await self.check()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the API unreachable: the last view stays (kopf's does too)
            logger.warning("operator: could not read the peering object %s (%s)", self.name, exc)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            await self.check_safely()

    def start(self) -> None:
        if self.name is not None and self._task is None:
            self._task = asyncio.create_task(self._run(), name="peering monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
