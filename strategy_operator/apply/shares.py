"""Writing each member's share of its RiskBudget into its ``status.budget``.

The kopf handlers feed :class:`ShareWriter` every RiskBudget and LiveStrategy event (``see``); it keeps what it
reads of them (:class:`~strategy_operator.decide.shares.BudgetView`, ``MemberView``: a few fields each) per
namespace, and a namespace that changed gets one pass (coalesced: events that come during a pass make one more):
:func:`~strategy_operator.decide.shares.decide_shares`, then one merge patch of ``status.budget`` per member whose
share differs from what its status holds (fields a smaller share no longer has are set to null: a merge patch
would keep them). A strategy at rest, or whose runtime only pushes its trading state, costs no write. A member
listed by a second budget gets a Warning event on that budget, naming both, once per conflict.

A write the API server refuses is logged and retried on the next event of the namespace, or after
``RETRY_SECONDS``. What it keeps may hold an object deleted during a watch gap (kopf sends no DELETED then): a
share written for a strategy that is gone is a 404, and nothing else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from strategy_operator.decide.events import Event
from strategy_operator.decide.shares import BudgetView, MemberView, decide_shares, held_elsewhere
from strategy_operator.kube_client import ApiError, KubeClient

logger = logging.getLogger("livestrat.operator")

RETRY_SECONDS = 5.0

PostEvent = Callable[[Mapping[str, Any], Event], None]


def patch_for(current: Mapping[str, Any] | None, wanted: Mapping[str, Any] | None) -> dict[str, Any]:
    """The merge patch that makes ``status.budget`` exactly ``wanted`` (None: removed)."""
    if wanted is None:
        return {"status": {"budget": None}}
    gone = {k: None for k in (current or {}) if k not in wanted}
    return {"status": {"budget": {**gone, **wanted}}}


class ShareWriter:
    """See the module docstring. ``see_budget``/``see_member`` from the kopf event handlers."""

    def __init__(self, kube: KubeClient, post_event: PostEvent) -> None:
        self._kube = kube
        self._post_event = post_event
        self._budgets: dict[str, dict[str, BudgetView]] = {}
        self._refs: dict[tuple[str, str], dict[str, Any]] = {}  # a budget's identity, to post events on it
        self._members: dict[str, dict[str, MemberView]] = {}
        self._dirty: set[str] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._reported: dict[tuple[str, str], str] = {}  # (namespace, member) -> the conflict last reported
        self.writes = 0

    def held_elsewhere(self, namespace: str, name: str) -> dict[str, str]:
        """Each strategy budget ``name`` lists that another, older budget holds (its MemberConflict condition)."""
        return held_elsewhere(name, list(self._budgets.get(namespace, {}).values()))

    def see_budget(self, namespace: str, body: Mapping[str, Any], deleted: bool) -> None:
        name = str((body.get("metadata") or {}).get("name") or "")
        budgets = self._budgets.setdefault(namespace, {})
        if deleted:
            budgets.pop(name, None)
            self._refs.pop((namespace, name), None)
        else:
            budgets[name] = BudgetView.read(body)
            meta = body.get("metadata") or {}
            self._refs[(namespace, name)] = {
                "apiVersion": body.get("apiVersion"),
                "kind": body.get("kind"),
                "metadata": {"name": name, "namespace": namespace, "uid": meta.get("uid")},
            }
        self._poke(namespace)

    def see_member(self, namespace: str, body: Mapping[str, Any], deleted: bool) -> None:
        view = MemberView.read(body)
        members = self._members.setdefault(namespace, {})
        before = members.get(view.name)
        if deleted:
            members.pop(view.name, None)
        else:
            members[view.name] = view
        if not self._budgets.get(namespace) and view.budget is None:
            return  # no budget here, and it holds no share: nothing to decide
        if before is not None and not deleted and before.budget == view.budget:
            by_pnl = any(b.follows_pnl for b in self._budgets.get(namespace, {}).values())
            if not by_pnl or before.total_pnl == view.total_pnl:
                return  # nothing the shares depend on changed (its runtime pushed other figures)
        self._poke(namespace)

    def _poke(self, namespace: str) -> None:
        self._dirty.add(namespace)
        task = self._tasks.get(namespace)
        if task is None or task.done():
            self._tasks[namespace] = asyncio.get_running_loop().create_task(
                self._run(namespace), name=f"budget-shares-{namespace}"
            )

    async def _run(self, namespace: str) -> None:
        while namespace in self._dirty:
            self._dirty.discard(namespace)
            try:
                failed = await self._pass(namespace)
            except Exception:
                logger.exception("budget shares in %s: the pass failed; again in %.0fs", namespace, RETRY_SECONDS)
                failed = True
            if failed:
                await asyncio.sleep(RETRY_SECONDS)
                self._dirty.add(namespace)

    async def _pass(self, namespace: str) -> bool:
        budgets = list(self._budgets.get(namespace, {}).values())
        members = self._members.get(namespace, {})
        decided = decide_shares(budgets, list(members.values()))
        failed = False
        for conflict in decided.conflicts:
            message = conflict.message()
            if self._reported.get((namespace, conflict.member)) == message:
                continue
            self._reported[(namespace, conflict.member)] = message
            logger.warning("budget shares in %s: %s", namespace, message)
            for name in conflict.others:
                ref = self._refs.get((namespace, name))
                if ref is not None:
                    self._post_event(ref, Event("Warning", "MemberOfAnotherBudget", message))
        for name, wanted in decided.writes.items():
            current = members[name].budget if name in members else None
            try:
                await self._kube.patch(
                    "LiveStrategy", namespace, name, patch_for(current, wanted), subresource="status"
                )
            except ApiError as exc:
                if exc.status == 404:
                    members.pop(name, None)  # gone (deleted during a watch gap)
                    continue
                logger.warning("budget shares: %s/%s: the share was not written: %s", namespace, name, exc)
                failed = True
                continue
            self.writes += 1
            if name in members:  # what it holds now: the next pass does not write it again before the event comes
                members[name] = MemberView(name=name, budget=wanted, total_pnl=members[name].total_pnl)
            logger.info(
                "budget shares: %s/%s %s",
                namespace,
                name,
                f"holds its share of RiskBudget {wanted['budget']}" if wanted else "holds no budget share any more",
            )
        return failed
