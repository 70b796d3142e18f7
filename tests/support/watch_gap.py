"""A gap in one client's watches, as a real API server produces it: the client misses what happens, then relists.

A watch stream breaks (a network partition, an API server restart, a load balancer's idle timeout, an operator
replica paused by peering) and the client comes back later asking to resume from the last resourceVersion it
saw. A real API server keeps only a window of history (its watch cache; etcd compacts what is older, five
minutes by default), so a client that was away longer is answered 410 Gone and must start over. The Kubernetes
documentation, "Efficient detection of changes" (kubernetes.io/docs/reference/using-api/api-concepts): "When the
requested watch operations fail because the historical version of that resource is not available, clients must
handle the case by recognizing the status code 410 Gone, clearing their local cache, performing a new get or
list operation, and starting the watch from the resourceVersion that was returned." Its list shows what exists
now; what was deleted meanwhile is simply absent from it: no DELETED event ever comes for it. A client that does
not clear its local cache keeps those objects (kopf keeps them in its indexes: it forgets an object only on a
DELETED event).

    async with WatchGap(emulator, user_agent="kopf/"):
        ...  # the operator's watches are cut off: delete, recreate
    # on leaving, its watches are answered 410 Gone (the history of the gap is compacted): it relists

While the gap is open, the client's watch streams are ended by the server and every watch it starts again is
held unanswered (as one that cannot reach the server); its other requests (lists, reads, writes) go through.
When it closes, each held watch, and any later one resuming from a resourceVersion older than the gap's end, is
answered 410 Gone; a watch from the gap's end or later (after the relist) is served as usual.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kmock

from livestrat.kube_emulator.emulator import KubernetesEmulator


class WatchGap:
    def __init__(self, emulator: KubernetesEmulator, *, user_agent: str, plural: str | None = None) -> None:
        self.emulator = emulator
        self.user_agent = user_agent
        self.plural = plural  # only the watches of this resource (e.g. "statefulsets"): a partial outage
        self.closed = asyncio.Event()
        self.closed_at: int | None = None  # the revision when the gap closed: older resumptions are Gone
        self.held = 0  # watches held while the gap is open
        self.refused = 0  # watches answered 410 Gone

    def _selected(self, request: kmock.Request) -> bool:
        if self.plural is not None and request.url.path.rstrip("/").rsplit("/", 1)[-1] != self.plural:
            return False
        return str(request.headers.get("User-Agent", "")).startswith(self.user_agent)

    async def __call__(self, request: kmock.Request) -> dict[str, Any] | None:
        """The emulator's watch gate: hold the selected client's watches during the gap, then refuse the old ones."""
        if not self._selected(request):
            return None
        since = request.params.get("resourceVersion") or ""
        if not self.closed.is_set():
            self.held += 1
            await self.closed.wait()
        elif not (since.isdigit() and 0 < int(since) < (self.closed_at or 0)):
            return None  # after a relist: served as usual
        self.refused += 1
        return {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: {since} ({self.closed_at})",
                "reason": "Expired",
                "code": 410,
            },
        }

    async def __aenter__(self) -> WatchGap:
        self.emulator.watch_gate = self
        self.emulator.end_watches(self._selected)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.closed_at = self.emulator.resource_version  # the history up to here is compacted: relist
        self.closed.set()
