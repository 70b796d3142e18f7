"""``livestrat desk`` against a cluster: the dashboard fed by a watch of LiveStrategies, acting through the desk's
actions, all with the user's kubeconfig and rights (:mod:`livestrat.desk.cluster`, :mod:`livestrat.desk.actions`).

The watch keeps the set in a :class:`MemorySource` (so changes faster than a redraw are coalesced); when it fails
(the API server away, a token expired, RBAC refusing the list) the dashboard keeps the last set, says why it may be
out of date, and the watch starts again, listing afresh, with a growing pause.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiohttp

from livestrat.backoff import Backoff
from livestrat.desk import actions
from livestrat.desk.cluster import Cluster, DeskError
from livestrat.desk.dashboard import (
    ACK_RISK,
    HALT,
    RESUME,
    ActionFailed,
    ActionUnavailable,
    Dashboard,
    MemorySource,
    Plan,
)

RETRY = Backoff(first=1.0, cap=30.0)
# What a failed request or watch raises: the API's answers (DeskError), the connection's failures.
CLUSTER_ERRORS = (DeskError, aiohttp.ClientError, TimeoutError, OSError)
BUILDERS = {HALT: actions.halt, RESUME: actions.resume, ACK_RISK: actions.ack_risk}


class ClusterSource:
    """The LiveStrategies of one namespace (or all: ``namespace=None``), as a watch sees them."""

    def __init__(self, cluster: Cluster, namespace: str | None) -> None:
        self.cluster = cluster
        self.namespace = namespace
        where = f"namespace {namespace}" if namespace else "all namespaces"
        self._held = MemorySource(f"context {cluster.context or '?'}, {where}")
        self.title = self._held.title

    @property
    def trouble(self) -> str | None:
        return self._held.trouble

    async def snapshots(self) -> AsyncIterator[Sequence[Mapping[str, Any]]]:
        watching = asyncio.get_running_loop().create_task(self._watch(), name="desk-watch")
        try:
            async for bodies in self._held.snapshots():
                yield bodies
        finally:
            watching.cancel()

    async def _watch(self) -> None:
        failures = 0
        while True:
            try:
                # A list first, replacing the whole set: a strategy deleted while the watch was down goes too.
                listed = await self.cluster.list_strategies(self.namespace)
                self._replace(listed)
                failures = 0
                async for kind, body in self.cluster.watch_strategies(self.namespace):
                    meta = body.get("metadata") or {}
                    if kind == "DELETED":
                        self._held.remove(str(meta.get("namespace") or ""), str(meta.get("name") or ""))
                    else:
                        self._held.put(body)
            except CLUSTER_ERRORS as exc:
                failures += 1
                pause = RETRY.delay(failures)
                self._held.set_trouble(
                    f"the watch of LiveStrategies failed: {exc or type(exc).__name__}; trying again in {pause:.0f}s "
                    "(what is shown may be out of date)"
                )
                await asyncio.sleep(pause)

    def _replace(self, bodies: Sequence[Mapping[str, Any]]) -> None:
        keep = {((b.get("metadata") or {}).get("namespace"), (b.get("metadata") or {}).get("name")) for b in bodies}
        for namespace, name in self._held.held():
            if (namespace, name) not in keep:
                self._held.remove(namespace, name)
        for body in bodies:
            self._held.put(body)
        self._held.set_trouble(None)


class ClusterControls:
    """The desk's actions (:mod:`livestrat.desk.actions`) as the dashboard's plans."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    async def plan(self, action: str, body: Mapping[str, Any]) -> Plan:
        meta = body.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        try:
            act = await BUILDERS[action](self.cluster, namespace, name)
        except CLUSTER_ERRORS as exc:
            raise ActionUnavailable(str(exc) or type(exc).__name__) from None
        if act.nothing_to_do:
            raise ActionUnavailable(f"nothing to do: {act.nothing_to_do}")

        async def run() -> str:
            try:
                outcome = await act.run(self.cluster)
            except CLUSTER_ERRORS as exc:
                raise ActionFailed(str(exc) or type(exc).__name__) from None
            return f"{act.name} {namespace}/{name}: {'; '.join(outcome.done)}"

        return Plan(action=act.name, strategy=f"{namespace}/{name}", will=act.describe(), run=run)


async def follow_cluster(
    *, kubeconfig: str | None, context: str | None, namespace: str | None, all_namespaces: bool
) -> None:
    """The dashboard on the cluster of the kubeconfig's context until the person quits. DeskError: cannot connect."""
    cluster = await Cluster.connect(kubeconfig=kubeconfig, context=context, namespace=namespace)
    try:
        source = ClusterSource(cluster, None if all_namespaces else cluster.namespace)
        await Dashboard(source, ClusterControls(cluster)).run_async()
    finally:
        await cluster.close()


def desk_command(kubeconfig: str | None, context: str | None, namespace: str | None, all_namespaces: bool) -> int:
    """``livestrat desk`` (and ``kubectl livestrat desk``)."""
    try:
        asyncio.run(
            follow_cluster(kubeconfig=kubeconfig, context=context, namespace=namespace, all_namespaces=all_namespaces)
        )
    except DeskError as exc:
        print(f"livestrat desk: {exc}", file=sys.stderr)
        return 2
    return 0
