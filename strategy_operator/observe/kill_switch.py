"""Whether a namespace's kill switch is engaged: the watch cache's word, confirmed with the API server when it says yes.

The kill switch halts every strategy of its namespace and leaves the desk's halt annotation on each (sticky), so an
engaged switch seen where there is none halts strategies nobody asked to stop, and keeps them halted. The namespaces'
watch cache can say so: kopf keys its index entries by uid and forgets one only on a DELETED event, so a namespace
deleted with its switch engaged during a gap in the watches (a 410 Gone and a relist send no DELETED event) stays in
the index, engaged, beside the namespace created since under its name. So a "yes" from the cache is read again from
the API server (a GET of the Namespace; the chart's Roles grant it), and the answer is kept until the namespace
changes (``changed``, from its watch) or for ``CONFIRMED_SECONDS`` at most, so that a switch flipped on for a
namespace of a thousand strategies costs one read, not a thousand, and a stale answer cannot outlive a watch gap.
A "no" from the cache is taken as it is: an engaged switch the cache has not seen yet is seen with its watch event,
which wakes the namespace's strategies. When the API server cannot answer, the cache's word stands (and is kept as
the answer, for the same while): the switch is someone's request to halt, and holding on it is what the operator did
before it could confirm.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from strategy_operator.clock import Clock
from strategy_operator.kube_client import ApiError, KubeClient
from strategy_operator.observe.caches import Caches, kill_switch_engaged

logger = logging.getLogger("livestrat.operator")

CONFIRMED_SECONDS = 2.0


class KillSwitches:
    def __init__(self, kube: KubeClient, clock: Clock) -> None:
        self.kube = kube
        self.clock = clock
        self._confirmed: dict[str, tuple[float, bool]] = {}  # namespace -> (when read, engaged)
        self._locks: dict[str, asyncio.Lock] = {}  # one read at a time per namespace: the others take its answer

    def changed(self, namespace: str) -> None:
        """The namespace changed (or is gone, or was created again): what was read of it is not its state now."""
        self._confirmed.pop(namespace, None)

    async def engaged(self, namespace: str, caches: Caches) -> bool:
        if not caches.kill_switch(namespace):
            return False
        lock = self._locks.setdefault(namespace, asyncio.Lock())
        async with lock:
            known = self._confirmed.get(namespace)
            if known is not None and self.clock.monotonic() - known[0] < CONFIRMED_SECONDS:
                return known[1]
            read_at = self.clock.monotonic()
            try:
                body = await self.kube.get("Namespace", "", namespace)
            # refused (a 403: a Role from before it was granted), unreachable, too slow
            except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                logger.warning(
                    "%s: the kill switch the watch shows engaged could not be confirmed (%s): the strategies are held",
                    namespace,
                    exc,
                )
                # kept as an answer too: the namespace's other strategies take it instead of each waiting for a
                # read that fails (a timeout each, one after the other, while they hold the reconcile slots)
                self._confirmed[namespace] = (read_at, True)
                return True
            engaged = body is not None and kill_switch_engaged((body.get("metadata") or {}).get("annotations"))
            if not engaged:
                logger.info(
                    "%s: the watch shows its kill switch engaged, the API server does not (%s): not held",
                    namespace,
                    "no such namespace" if body is None else "a namespace of that name without it engaged",
                )
            self._confirmed[namespace] = (read_at, engaged)
            return engaged
