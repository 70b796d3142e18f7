"""The kopf side of the operator: what it watches, and the thin handlers that feed the reconciler.

- Watch caches (kopf indexes) of every child kind and of the strategy pods, selected on the
  server by the ``livestrat.io/strategy`` label, and of the namespaces' kill switches. kopf
  handles nothing until they are filled, so after a restart the operator knows every child
  before it decides anything (no duplicates, no needless writes).
- One reconciler per LiveStrategy (a kopf daemon): it runs when any watched object of that
  strategy changes (``on.event`` handlers poke it), when a timeout or a staleness deadline
  comes due, and every few minutes anyway. Its writes are serialised per strategy; at most
  ``max_concurrent_reconciles`` strategies reconcile at the same time.
- A deletion handler behind the ``livestrat.io/halt-before-delete`` finalizer: the strategy
  halts, its pod exits (bounded in time), then the LiveStrategy is released.
- One budget reconciler per RiskBudget (a kopf daemon, :mod:`strategy_operator.budget_reconciler`),
  woken when one of its members changes (a watch cache of what budgets read of every LiveStrategy)
  or the budget does.

kopf keeps its own bookkeeping in ``livestrat.io/`` annotations (the deletion handler's progress; its
last-handled configuration is never stored: :class:`~strategy_operator.kopf_storage.DiffBaseStorage`);
handlers return nothing, so kopf writes nothing into the status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from livestrat.api import budget_resource
from livestrat.api.contract import STRATEGY_LABEL, TWIN_OF_LABEL
from livestrat.api.resource import GROUP, KIND, PLURAL, VERSION
from livestrat.api.twin import TWIN_SUFFIX
from livestrat.backoff import Backoff
from strategy_operator import kopf_storage, wakeups
from strategy_operator.apply import shared_identity
from strategy_operator.apply.actions import Events, kopf_event, unless_terminating
from strategy_operator.apply.budget import mark
from strategy_operator.apply.shares import ShareWriter
from strategy_operator.budget_reconciler import RESYNC_SECONDS as BUDGET_RESYNC_SECONDS
from strategy_operator.budget_reconciler import BudgetReconciler
from strategy_operator.build import labels
from strategy_operator.clock import SYSTEM_CLOCK, Clock
from strategy_operator.kinds import (
    ACCOUNTS_INDEX,
    BUDGET_HALTS_INDEX,
    BUDGETS_INDEX,
    MEMBERS_INDEX,
    NAMESPACES_INDEX,
    NODES_INDEX,
    TWINS_INDEX,
    WATCHED,
)
from strategy_operator.kube_client import KubeClient, login
from strategy_operator.metrics import OperatorMetrics
from strategy_operator.observe.budget import budget_halts as budget_halts_of
from strategy_operator.observe.budget import member_entry
from strategy_operator.observe.caches import Caches, cached, kill_switch_engaged, node_drain
from strategy_operator.observe.claims import claimants_of
from strategy_operator.observe.observer import Gone
from strategy_operator.peering import FAULTS, PeeringMonitor
from strategy_operator.reconciler import Reconciler
from strategy_operator.settings import OperatorSettings

operator_log = logging.getLogger("livestrat.operator")

RESYNC_SECONDS = 300.0  # a reconciliation at least this often, even with nothing happening (cache reads only)
RETRY = Backoff(first=1.0, cap=60.0)  # a failed reconciliation is retried after these
DELETION_POLL_SECONDS = 1.0


@dataclass
class OperatorContext:
    """Everything one operator instance shares between its handlers (kept in kopf's memo)."""

    settings: OperatorSettings
    kube: KubeClient
    metrics: OperatorMetrics
    reconciler: Reconciler
    wakeups: wakeups.Wakeups
    slots: asyncio.Semaphore
    peering: PeeringMonitor
    shares: ShareWriter  # each member's share of its RiskBudget, in its status.budget
    budgets: BudgetReconciler
    terminating: shared_identity.TerminatingNamespaces  # namespaces being deleted: their shared identity let go
    drains: dict[str, str | None] = field(default_factory=dict)  # node -> why it is drained (wake-ups)
    heartbeats: wakeups.Heartbeats = field(default_factory=wakeups.Heartbeats)  # changes that wake nothing
    # paper twin -> (its live strategy, uid, generation, deleting) last seen: a change wakes the live strategy
    twins: dict[Any, tuple[str, str, Any, bool]] = field(default_factory=dict)

    @classmethod
    async def start(
        cls,
        settings: OperatorSettings,
        *,
        identity: str,
        priority: int,
        kopf_settings: kopf.OperatorSettings,
        serve_metrics: bool = True,
        clock: Clock = SYSTEM_CLOCK,
    ) -> OperatorContext:
        phases: dict[Any, str] = {}
        failures: dict[Any, str] = {}
        metrics = OperatorMetrics(phases, failures)
        kube = await KubeClient.connect(
            metrics, lambda: login(kopf_settings), pool_size=max(8, settings.max_concurrent_reconciles * 2)
        )
        terminating = shared_identity.TerminatingNamespaces(kube)
        post = unless_terminating(kopf_event, terminating)
        reconciler = Reconciler(settings, kube, metrics, clock=clock, post_event=post)
        budgets = BudgetReconciler(kube, Events(metrics, post), clock)
        reconciler.phases, reconciler.failures = phases, failures
        peering = PeeringMonitor(kube, settings.peering, identity, priority)
        metrics.paused_by = lambda: peering.reason
        metrics.readiness = lambda: (peering.reason not in FAULTS, peering.message())
        await peering.check_safely()
        peering.start()
        if serve_metrics:
            await metrics.serve(settings.http_host, settings.metrics_port)
        return cls(
            settings=settings,
            kube=kube,
            metrics=metrics,
            reconciler=reconciler,
            wakeups=wakeups.Wakeups(),
            slots=asyncio.Semaphore(settings.max_concurrent_reconciles),
            peering=peering,
            shares=ShareWriter(kube, post),
            budgets=budgets,
            terminating=terminating,
        )

    async def close(self) -> None:
        await self.terminating.close()  # before the client it reads with
        await self.peering.stop()
        await self.metrics.close()
        await self.kube.close()


def configure(settings: kopf.OperatorSettings) -> None:
    """kopf's settings for this operator (applied at startup, before any watch begins)."""
    settings.persistence.finalizer = labels.FINALIZER
    # kopf's own annotation storages, also on an object whose annotations do not read (kopf_storage).
    settings.persistence.progress_storage = kopf_storage.ProgressStorage(prefix=labels.KOPF_PREFIX)
    # kopf keeps the essence of what it last handled, to diff it for change handlers; this operator has none
    # (a daemon and a deletion handler) and compares the spec itself: it is never stored (one write less per
    # strategy; no copy of a large spec beside kubectl's last-applied-configuration).
    settings.persistence.diffbase_storage = kopf_storage.DiffBaseStorage(
        prefix=labels.KOPF_PREFIX, key="last-handled-configuration", ignored_fields=["spec", "metadata"]
    )
    # One ClusterKopfPeering, also for an operator watching named namespaces: with one KopfPeering per watched
    # namespace (kopf's default then), a namespace without its object would pause the whole operator (peering is
    # mandatory: kopf waits for every object it watches), and no namespace may freeze the others.
    settings.peering.clusterwide = True
    settings.posting.reporting_component = labels.MANAGED_BY
    settings.posting.event_name_prefix = "livestrat-"
    settings.posting.level = logging.INFO
    for kind in WATCHED:
        settings.watching.label_selectors[kind.plural] = STRATEGY_LABEL  # server-side: only livestrat's objects
    # kopf runs one worker per object while its events come, and an idle one lingers this long (its frames, queue
    # and last body with it). kopf's 5 s kept one for nearly every object of a burst (973 at N = 1000, 20 MiB of
    # RSS); the events of one object come together, well within a second.
    settings.queueing.idle_timeout = 1.0


def build_registry() -> kopf.OperatorRegistry:
    """The operator's handlers, in a registry of their own (several operators can share a process)."""
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        configure(settings)
        memo.context = await OperatorContext.start(
            memo.settings,
            identity=memo.identity,
            priority=settings.peering.priority,
            kopf_settings=settings,
            serve_metrics=memo.get("serve_metrics", True),
            clock=memo.get("clock", SYSTEM_CLOCK),
        )

    @kopf.on.cleanup(registry=registry)
    async def stop(memo: kopf.Memo, **_: Any) -> None:
        context = memo.get("context")
        if context is not None:
            await context.close()

    @kopf.on.login(registry=registry)
    async def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # In a pod: its service account; elsewhere: $KUBECONFIG (read now) or ~/.kube/config.
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.probe(id="strategies", registry=registry)
    async def strategies(memo: kopf.Memo, **_: Any) -> int:
        return len(memo.context.reconciler.phases)

    # ------------------------------------------------------------------------------ watch caches

    # Every handler is a coroutine: kopf runs a plain function in its thread pool, one hand-off per watch event.
    def by_strategy(kind: str) -> Callable[..., Awaitable[dict[Any, Any]]]:
        async def index(namespace: str, labels: Mapping[str, str], body: kopf.Body, **_: Any) -> dict[Any, Any]:
            return {(namespace, labels[STRATEGY_LABEL]): cached(kind, body)}  # only what the operator reads

        return index

    async def wake_strategy(namespace: str, labels: Mapping[str, str], memo: kopf.Memo, **_: Any) -> None:
        memo.context.wakeups.poke((namespace, labels[STRATEGY_LABEL]))

    for kind in WATCHED:
        selector = {"labels": {STRATEGY_LABEL: kopf.PRESENT}, "registry": registry}
        kopf.index(kind.group, kind.version, kind.plural, id=kind.index, **selector)(by_strategy(kind.kind))
        kopf.on.event(kind.group, kind.version, kind.plural, id=f"wake-on-{kind.plural}", **selector)(wake_strategy)

    @kopf.index("", "v1", "namespaces", id=NAMESPACES_INDEX, registry=registry)
    async def kill_switches(name: str, annotations: Mapping[str, str], **_: Any) -> dict[str, bool]:
        # An empty result removes the namespace from the index (None would keep its old entry).
        return {name: True} if kill_switch_engaged(annotations) else {}

    @kopf.on.event("", "v1", "namespaces", id="wake-on-namespaces", registry=registry)
    async def namespace_changed(
        type: str | None, name: str, meta: Mapping[str, Any], status: Mapping[str, Any], memo: kopf.Memo, **_: Any
    ) -> None:
        memo.context.reconciler.observer.kill_switches.changed(name)  # before its strategies look at it again
        memo.context.wakeups.poke_namespace(name)
        uid = str(meta.get("uid") or "")
        if type == "DELETED":
            memo.context.terminating.gone(name, uid)
        elif status.get("phase") == "Terminating":  # its shared identity must not hold it once no pod runs as it
            memo.context.terminating.seen(name, uid)
        else:
            memo.context.terminating.active(name)

    @kopf.index("", "v1", "nodes", id=NODES_INDEX, registry=registry)
    async def drained_nodes(name: str, spec: Mapping[str, Any], **_: Any) -> dict[str, str]:
        why = node_drain(spec)
        return {name: why} if why is not None else {}

    @kopf.on.event("", "v1", "nodes", id="wake-on-nodes", registry=registry)
    async def node_changed(type: str | None, name: str, spec: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> None:
        # Nodes change all the time (their status); only a drain beginning or ending wakes the strategies.
        drains: dict[str, str | None] = memo.context.drains
        why = None if type == "DELETED" else node_drain(spec)
        if drains.get(name) != why:
            drains[name] = why
            memo.context.wakeups.poke_all()

    # ------------------------------------------------------------------------------ LiveStrategies

    @kopf.index(GROUP, VERSION, PLURAL, id=ACCOUNTS_INDEX, registry=registry)
    async def accounts(namespace: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
        # The live strategies by venue account, for their claims (observe.claims); read from the raw body,
        # never raising on a malformed one. An empty result removes the strategy from the index.
        return {(namespace, claimant.account): claimant for claimant in claimants_of(body)}

    @kopf.on.event(GROUP, VERSION, PLURAL, id="wake-on-livestrategies", registry=registry)
    async def strategy_changed(
        type: str | None, namespace: str, name: str, uid: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any
    ) -> None:
        context: OperatorContext = memo.context
        key = (namespace, name)
        context.shares.see_member(namespace, body, deleted=type == "DELETED")
        _twin_changed(context, key, type, body)
        if type == "DELETED":
            context.reconciler.forget(key, str(uid or ""))
            context.heartbeats.forget(key)
            if claimants_of(body):  # its claims pass on: the strategies of its accounts look again
                context.wakeups.poke_namespace(namespace)
        else:
            context.reconciler.saw(key, str(uid or ""))
            if context.heartbeats.only_heartbeat(key, body):
                return  # the reconciler looks again when it would turn stale (its deadline), and not before
        context.wakeups.poke(key)

    # No label filter: kopf's own raises on an object whose labels are not a map (a malformed object still halts).
    @kopf.index(GROUP, VERSION, PLURAL, id=TWINS_INDEX, registry=registry)
    async def twins(namespace: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
        live = twin_of(body)
        if live is None:
            return {}
        # Without its status: its runtime reports every few seconds, and its live strategy reads only the rest.
        return {(namespace, live): cached(KIND, {k: v for k, v in body.items() if k != "status"})}

    # ------------------------------------------------------------------------------ RiskBudgets: members' shares
    @kopf.on.event(GROUP, VERSION, budget_resource.PLURAL, id="budget-shares", registry=registry)
    async def shares_of_budget_changed(
        type: str | None, namespace: str, body: kopf.Body, memo: kopf.Memo, **_: Any
    ) -> None:
        memo.context.shares.see_budget(namespace, body, deleted=type == "DELETED")

    # Asked to stop (deletion, operator exit), the reconciler finishes its pass and exits; cancelled only after 5 s.
    @kopf.daemon(
        GROUP, VERSION, PLURAL, id="reconciler", cancellation_backoff=5.0, cancellation_timeout=10.0, registry=registry
    )
    async def reconciler(
        body: kopf.Body,
        namespace: str,
        name: str,
        stopped: kopf.DaemonStopped,
        memo: kopf.Memo,
        **kwargs: Any,
    ) -> None:
        context: OperatorContext = memo.context
        key = (namespace, name)
        caches = Caches(kwargs)

        async def reconcile() -> float | None:
            async with context.slots:
                return None if stopped else await context.reconciler.reconcile(body, caches)

        await _serve(
            context, key, stopped, reconcile, f"{namespace}/{name}", first=RESYNC_SECONDS, resync=RESYNC_SECONDS
        )

    @kopf.on.delete(GROUP, VERSION, PLURAL, id="halt-before-release", registry=registry)
    async def halt_before_release(body: kopf.Body, namespace: str, name: str, memo: kopf.Memo, **kwargs: Any) -> None:
        context: OperatorContext = memo.context
        key = (namespace, name)
        woken = context.wakeups.subscribe(key)

        async def wake() -> None:
            await wakeups.wait(woken, None, DELETION_POLL_SECONDS)
            woken.clear()

        try:
            await context.reconciler.finalize(body, Caches(kwargs), wake)
        finally:
            context.wakeups.unsubscribe(key, woken)

    # ------------------------------------------------------------------------------ RiskBudgets

    @kopf.index(GROUP, VERSION, PLURAL, id=MEMBERS_INDEX, registry=registry)
    async def budget_members(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
        return {(namespace, name): member_entry(body)}

    @kopf.index(GROUP, VERSION, PLURAL, id=BUDGET_HALTS_INDEX, registry=registry)
    async def budget_halts(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
        return {(namespace, budget): name for budget in budget_halts_of(body)}

    @kopf.index(GROUP, VERSION, budget_resource.PLURAL, id=BUDGETS_INDEX, registry=registry)
    async def budgets_of(namespace: str, name: str, spec: Mapping[str, Any], **_: Any) -> dict[Any, Any]:
        members = spec.get("members")
        return {(namespace, m): name for m in members if isinstance(m, str)} if isinstance(members, list) else {}

    @kopf.on.event(GROUP, VERSION, PLURAL, id="wake-budgets", registry=registry)
    async def member_changed(namespace: str, name: str, body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
        budgets = set(kwargs[BUDGETS_INDEX].get((namespace, name), []))
        budgets |= set(budget_halts_of(body))  # a former member its budget's breach still marks
        for budget in budgets:
            memo.context.wakeups.poke(budget_key(namespace, budget))

    @kopf.on.event(GROUP, VERSION, budget_resource.PLURAL, id="wake-budget", registry=registry)
    async def budget_changed(type: str | None, namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
        if type == "DELETED":
            memo.context.budgets.forget(namespace, name)
        memo.context.wakeups.poke(budget_key(namespace, name))

    @kopf.daemon(
        GROUP,
        VERSION,
        budget_resource.PLURAL,
        id="budget-reconciler",
        cancellation_backoff=5.0,
        cancellation_timeout=10.0,
        registry=registry,
    )
    async def budget_reconciler(
        body: kopf.Body, namespace: str, name: str, stopped: kopf.DaemonStopped, memo: kopf.Memo, **kwargs: Any
    ) -> None:
        context: OperatorContext = memo.context
        key = budget_key(namespace, name)
        members, halts = kwargs[MEMBERS_INDEX], kwargs[BUDGET_HALTS_INDEX]

        def entry(ns: str, member: str) -> Mapping[str, Any] | None:
            return next(iter(members.get((ns, member), [])), None)

        async def reconcile() -> float | None:
            halted = list(halts.get((namespace, name), []))
            held = context.shares.held_elsewhere(namespace, name)
            return await context.budgets.reconcile(body, entry, halted, held_elsewhere=held)

        # first at once: a budget created over members already breaching it
        await _serve(
            context, key, stopped, reconcile, f"riskbudget {namespace}/{name}", first=0.0, resync=BUDGET_RESYNC_SECONDS
        )

    @kopf.on.delete(GROUP, VERSION, budget_resource.PLURAL, id="release-members", registry=registry)
    async def release_members(namespace: str, name: str, memo: kopf.Memo, **kwargs: Any) -> None:
        # A deleted budget can no longer be acknowledged: deleting it is the user's release of the members it halts.
        context: OperatorContext = memo.context
        for member in sorted(set(kwargs[BUDGET_HALTS_INDEX].get((namespace, name), []))):
            await mark(context.kube, namespace, member, name, None)
        context.budgets.forget(namespace, name)

    return registry


def twin_of(body: Mapping[str, Any]) -> str | None:
    """The live strategy a paper twin belongs to (its twin label), None for any other object, a malformed one too."""
    meta = body.get("metadata")
    found = meta.get("labels") if isinstance(meta, Mapping) else None
    live = found.get(TWIN_OF_LABEL) if isinstance(found, Mapping) else None
    return live if isinstance(live, str) and live else None


def _twin_changed(context: OperatorContext, key: Any, type: str | None, body: Mapping[str, Any]) -> None:
    """Wake a paper twin's live strategy when the twin appears, goes, loses its label, or its spec or metadata changes
    (someone edited it: the live strategy's pass puts it back), not on its runtime's reports."""
    meta = body.get("metadata") if isinstance(body.get("metadata"), Mapping) else {}
    owner = twin_of(body)
    before = context.twins.get(key)
    if type == "DELETED" or not isinstance(owner, str):
        context.twins.pop(key, None)
    else:
        seen = (owner, str(meta.get("uid") or ""), meta.get("generation"), bool(meta.get("deletionTimestamp")))
        if before == seen:
            return
        context.twins[key] = seen
    lives = {before[0] if before else None, owner if isinstance(owner, str) else None}
    if type == "DELETED" and key[1].endswith(TWIN_SUFFIX):
        lives.add(key[1].removesuffix(TWIN_SUFFIX))  # someone else's object of a twin's name gone: the name is free
    for live in lives - {None}:
        context.wakeups.poke((key[0], live))


def budget_key(namespace: str, name: str) -> tuple[str, str]:
    """A RiskBudget's wake-up key: apart from a LiveStrategy's of the same name ("/" is in no object's name)."""
    return (namespace, f"{budget_resource.PLURAL}/{name}")


async def _serve(
    context: OperatorContext,
    key: Any,
    stopped: kopf.DaemonStopped,
    reconcile: Callable[[], Awaitable[float | None]],
    label: str,
    *,
    first: float,
    resync: float,
) -> None:
    """A daemon's loop, the same for a LiveStrategy and a RiskBudget: a pass when woken (``key``'s wakeups), when
    the pass's own recheck is due, or every ``resync`` seconds; a failed pass is retried with backoff."""
    woken = context.wakeups.subscribe(key)
    stop = asyncio.ensure_future(stopped.wait())
    timeout: float | None = first
    failures = 0
    try:
        while not stopped:
            await wakeups.wait(woken, stop, timeout)
            if stopped:
                break
            woken.clear()
            try:
                recheck = await reconcile()
            except Gone as gone:
                # kopf never told of its deletion (a watch gap): the object this daemon serves is no more, and
                # the one of its name now (if any) has a daemon of its own. Nothing to do; kopf respawns none.
                operator_log.info("%s: %s: its reconciler stops", label, gone)
                return
            except Exception as exc:  # retried with backoff; the status or an event already says why
                failures += 1
                timeout = RETRY.delay(failures)
                # The module's logger, not kopf's per-object one (which would post each retry as an event).
                operator_log.warning(
                    "%s: reconciliation failed (%s: %s); retrying in %.1fs", label, type(exc).__name__, exc, timeout
                )
            else:
                failures = 0
                timeout = min(recheck, resync) if recheck is not None else resync
    finally:
        stop.cancel()
        context.wakeups.unsubscribe(key, woken)
