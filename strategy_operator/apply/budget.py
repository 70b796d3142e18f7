"""A RiskBudget's decision carried out: members halted first, then released, then the status, then the events.

Halting is the write that matters: each member it halts gets ``livestrat.io/budget-halt.BUDGET`` (a merge
patch of that one annotation, all members at once), and its own reconciler, woken by the change, stops
its pod. A member that does not exist is skipped (a 404 halts nothing). The status is written only when
it changed, so a budget at rest costs no write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from livestrat.api.contract import BUDGET_HALT_PREFIX
from livestrat.api.resource import KIND as LIVESTRATEGY
from strategy_operator.apply.actions import Events
from strategy_operator.decide.budget import BudgetDecision
from strategy_operator.decide.events import Event
from strategy_operator.kube_client import ApiError, KubeClient

logger = logging.getLogger("livestrat.operator")

RISK_BUDGET = "RiskBudget"


# What a budget's status says besides its figures: a change here is written at once.
VERDICT_FIELDS = ("state", "breach", "conditions", "observedGeneration")


def only_figures(current: Mapping[str, Any], wire: Mapping[str, Any]) -> bool:
    """The two statuses differ in their figures only (exposure, PnL, usage...), not in what they decide."""
    return all(current.get(key) == wire.get(key) for key in VERDICT_FIELDS)


async def mark(kube: KubeClient, namespace: str, member: str, budget: str, value: str | None) -> int | None:
    """Set (or, with None, remove) the member's annotation for ``budget``; its new resourceVersion, None if gone."""
    patch = {"metadata": {"annotations": {BUDGET_HALT_PREFIX + budget: value}}}
    try:
        written = await kube.patch(LIVESTRATEGY, namespace, member, patch)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    version = str((written.get("metadata") or {}).get("resourceVersion") or 0)
    return int(version) if version.isdigit() else 0


async def apply_budget(
    kube: KubeClient,
    events: Events,
    body: Mapping[str, Any],
    decision: BudgetDecision,
    current: dict[str, Any],
    figures_due: bool = True,
) -> tuple[dict[str, int | None], dict[str, Any] | None]:
    """Carry out ``decision``; ``current``: the status as the operator knows it (wire). ``figures_due``: a status
    that differs only in its figures is written now (else it waits: see ``budget_reconciler``). Returns the
    resourceVersion of each member written, and the budget's status as written (None when none was)."""
    meta = body.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    written: dict[str, int | None] = {}
    failures: list[str] = []

    async def write(member: str, value: str | None) -> None:
        try:
            written[member] = await mark(kube, namespace, member, name, value)
        except Exception as exc:  # the other members are halted anyway; this one is tried again next pass
            failures.append(f"{member}: {exc}")

    await asyncio.gather(*(write(m, at) for m, at in decision.halt.items()))
    await asyncio.gather(*(write(m, None) for m in decision.release))
    for failure in failures:
        events.post(body, Event("Warning", "HaltFailed", f"could not mark member {failure}"))

    wire = decision.status.to_wire()
    status: dict[str, Any] | None = None
    if wire != current and (figures_due or not only_figures(current, wire)):
        patch = {key: wire.get(key) for key in {*wire, *current}}  # None removes what is no longer there
        await kube.patch(RISK_BUDGET, namespace, name, {"status": patch}, subresource="status")
        status = wire
    for event in decision.events:
        events.post(body, event)
    if failures:
        raise RuntimeError(f"RiskBudget {namespace}/{name}: {len(failures)} member(s) not marked: {failures}")
    return written, status
