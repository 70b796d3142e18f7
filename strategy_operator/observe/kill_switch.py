"""Whether a namespace's kill switch is engaged: the watch cache's word, confirmed with the API server when it says yes.

The kill switch halts every strategy of its namespace and leaves the desk's halt annotation on each (sticky), so an
engaged switch seen where there is none halts strategies nobody asked to stop, and keeps them halted. The namespaces'
watch cache can say so: kopf keys its index entries by uid and forgets one only on a DELETED event, so a namespace
deleted with its switch engaged during a gap in the watches (a 410 Gone and a relist send no DELETED event) stays in
the index, engaged, beside the namespace created since under its name. So a "yes" from the cache is read again from
the API server (a GET of the Namespace; the chart's Roles grant it): one read at a time per namespace, awaited by
every strategy that asks meanwhile, so that a switch flipped on for a namespace of a thousand strategies costs one
read, not a thousand. Its answer is kept until the namespace changes (``changed``, from its watch: a read in flight
then is not kept either) or for ``CONFIRMED_SECONDS`` at most, so that a stale answer cannot outlive a watch gap.
A "no" from the cache is taken as it is: an engaged switch the cache has not seen yet is seen with its watch event,
which wakes the namespace's strategies. When the API server cannot answer (within ``READ_TIMEOUT_SECONDS``), the
cache's word stands, and is kept as the answer for the same while: the switch is someone's request to halt, and
holding on it is what the operator did before it could confirm.
"""

from __future__ import annotations

import asyncio
import logging

from strategy_operator.clock import Clock
from strategy_operator.kube_client import KubeClient
from strategy_operator.observe.caches import Caches, kill_switch_engaged

logger = logging.getLogger("livestrat.operator")

CONFIRMED_SECONDS = 2.0  # an answer is kept this long after it arrived (and never past the namespace's next change)
READ_TIMEOUT_SECONDS = 5.0  # a read that takes longer is a failed one: the strategies are held meanwhile


class KillSwitches:
    def __init__(self, kube: KubeClient, clock: Clock, read_timeout: float = READ_TIMEOUT_SECONDS) -> None:
        self.kube = kube
        self.clock = clock
        self.read_timeout = read_timeout
        self._answers: dict[str, tuple[float, bool]] = {}  # namespace -> (when the answer arrived, engaged)
        # The read in flight per namespace, awaited by every strategy that asks meanwhile (one read, not one each).
        self._reads: dict[str, asyncio.Task[bool]] = {}

    def changed(self, namespace: str) -> None:
        """The namespace changed (or is gone, or was created again): what was read of it is not its state now, nor is
        what a read in flight will answer (the API server may have served it before the change): who asks from now on
        reads again. Whoever awaits that read gets its answer, and is woken again by this change."""
        self._answers.pop(namespace, None)
        self._reads.pop(namespace, None)

    async def engaged(self, namespace: str, caches: Caches) -> bool:
        if not caches.kill_switch(namespace):
            return False
        known = self._answers.get(namespace)
        if known is not None and self.clock.monotonic() - known[0] < CONFIRMED_SECONDS:
            return known[1]
        read = self._reads.get(namespace)
        if read is None:
            read = self._reads[namespace] = asyncio.ensure_future(self._read(namespace))
        return await asyncio.shield(read)  # a reconciler stopped meanwhile leaves the read to the others

    async def _read(self, namespace: str) -> bool:
        try:
            async with asyncio.timeout(self.read_timeout):
                body = await self.kube.get("Namespace", "", namespace)
        except Exception as exc:  # refused (a 403: a Role from before it was granted), unreachable, too slow, garbled
            logger.warning(
                "%s: the kill switch the watch shows engaged could not be confirmed (%s): the strategies are held",
                namespace,
                str(exc) or type(exc).__name__,
            )
            engaged = True  # and kept as the answer: the others do not each wait for a read that fails
        else:
            engaged = body is not None and kill_switch_engaged((body.get("metadata") or {}).get("annotations"))
            if not engaged:
                logger.info(
                    "%s: the watch shows its kill switch engaged, the API server does not (%s): not held",
                    namespace,
                    "no such namespace" if body is None else "a namespace of that name without it engaged",
                )
        if self._reads.get(namespace) is asyncio.current_task():  # not superseded by a change meanwhile
            del self._reads[namespace]
            self._answers[namespace] = (self.clock.monotonic(), engaged)
        return engaged
