"""``livestrat desk`` against a cluster: the dashboard fed by watches of LiveStrategies and RiskBudgets, acting
through the desk's actions, all with the user's kubeconfig and rights (:mod:`livestrat.desk.cluster`,
:mod:`livestrat.desk.actions`).

The watches keep the set in a :class:`MemorySource` (so changes faster than a redraw are coalesced); when one fails
(the API server away, a token expired, RBAC refusing the list) the dashboard keeps the last set, says why it may be
out of date, and the watch starts again, listing afresh, with a growing pause. A user who may not read RiskBudgets
(a role of their own, not the chart's desk role) sees the strategies all the same, with a one-line note saying
which right is missing and which of the chart's roles grants it; the note goes once a list of them succeeds.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from livestrat.api import budget_resource
from livestrat.api.resource import KIND
from livestrat.backoff import Backoff
from livestrat.desk import actions
from livestrat.desk.cluster import Cluster, DeskError, Forbidden
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


@dataclass(frozen=True)
class Watched:
    """One kind the dashboard watches: how to list and watch it, and what it is called in a message."""

    kind: str
    label: str  # plural, as a person says it: "LiveStrategies"
    list: Callable[[Cluster, str | None], Awaitable[Sequence[Mapping[str, Any]]]]
    watch: Callable[[Cluster, str | None], AsyncIterator[tuple[str, dict[str, Any]]]]
    required: bool  # a 403 is trouble (nothing to show without it), or only a note (the rest of the desk works)


STRATEGIES = Watched(KIND, "LiveStrategies", Cluster.list_strategies, Cluster.watch_strategies, required=True)
BUDGETS = Watched(budget_resource.KIND, "RiskBudgets", Cluster.list_budgets, Cluster.watch_budgets, required=False)


class ClusterSource:
    """The LiveStrategies and RiskBudgets of one namespace (or all: ``namespace=None``), as two watches see them."""

    def __init__(self, cluster: Cluster, namespace: str | None) -> None:
        self.cluster = cluster
        self.namespace = namespace
        where = f"namespace {namespace}" if namespace else "all namespaces"
        self._held = MemorySource(f"context {cluster.context or '?'}, {where}")
        self._troubles: dict[str, str] = {}  # by kind: why what is shown of it may be out of date
        self.title = self._held.title

    @property
    def trouble(self) -> str | None:
        return self._held.trouble

    @property
    def note(self) -> str | None:
        return self._held.note

    async def snapshots(self) -> AsyncIterator[Sequence[Mapping[str, Any]]]:
        loop = asyncio.get_running_loop()
        watching = [loop.create_task(self._watch(w), name=f"desk-watch-{w.kind}") for w in (STRATEGIES, BUDGETS)]
        try:
            async for bodies in self._held.snapshots():
                yield bodies
        finally:
            for task in watching:
                task.cancel()

    async def _watch(self, watched: Watched) -> None:
        failures = 0
        while True:
            try:
                # A list first, replacing the whole set: an object deleted while the watch was down goes too.
                listed = await watched.list(self.cluster, self.namespace)
                self._replace(watched, listed)
                if not watched.required and self._held.note is not None:
                    self._held.set_note(None)  # listed after a refusal: the note no longer holds
                failures = 0
                async for kind, body in watched.watch(self.cluster, self.namespace):
                    meta = body.get("metadata") or {}
                    if kind == "DELETED":
                        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
                        self._held.remove(namespace, name, watched.kind)
                    else:
                        self._held.put(body)
            except CLUSTER_ERRORS as exc:
                failures += 1
                pause = RETRY.delay(failures)
                if isinstance(exc, Forbidden) and not watched.required:
                    # The user may not read them: none is shown, the rest of the desk works; said in one line.
                    self._replace(watched, ())
                    refused = exc.refusal.line() if exc.refusal else str(exc).splitlines()[0]
                    self._held.set_note(f"{watched.label} not shown: {refused}")
                else:
                    self._set_trouble(
                        watched,
                        f"the watch of {watched.label} failed: {exc or type(exc).__name__}; trying again in "
                        f"{pause:.0f}s (what is shown may be out of date)",
                    )
                await asyncio.sleep(pause)

    def _replace(self, watched: Watched, bodies: Sequence[Mapping[str, Any]]) -> None:
        keep = {((b.get("metadata") or {}).get("namespace"), (b.get("metadata") or {}).get("name")) for b in bodies}
        for namespace, name in self._held.held(watched.kind):
            if (namespace, name) not in keep:
                self._held.remove(namespace, name, watched.kind)
        for body in bodies:
            self._held.put(body)
        self._set_trouble(watched, None)

    def _set_trouble(self, watched: Watched, trouble: str | None) -> None:
        if trouble is None:
            self._troubles.pop(watched.kind, None)
        else:
            self._troubles[watched.kind] = trouble
        self._held.set_trouble("; ".join(self._troubles.values()) or None)


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
