"""The desk's actions on strategies: halt, resume, acknowledge a risk halt, the kill switch.

Each is the documented user action of docs/operations.md, done with the user's own rights:

- **halt**: ``spec.replicas`` to 0 through the scale subresource (``kubectl scale --replicas=0``); or, with a note,
  the desk's halt annotation ``livestrat.io/halt`` (the halt a GitOps controller leaves alone);
- **resume**: the halt annotation removed if present, and ``spec.replicas`` to 1 if it is 0;
- **ack-risk**: ``livestrat.io/risk-acknowledged`` set to the time of the breach that holds the strategy (the one
  the operator's latch names: :func:`strategy_operator.decide.risk.risk_latch`, the same decision);
- **kill switch**: ``livestrat.io/kill-switch`` on the Namespace, ``true`` or removed.

Each function reads the object and returns an :class:`Action`: :attr:`Action.plan` says in words what it will do
(the plugin prints it and asks; the dashboard shows it in its confirmation), and :meth:`Action.run` does it and
returns an :class:`Outcome` with what it did and the object as the API server then has it. An action with nothing
to do (halting a halted strategy) says so in :attr:`Action.nothing_to_do` and its run changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from livestrat.api.contract import (
    HALT_ANNOTATION,
    KILL_SWITCH_ANNOTATION,
    RISK_ACK_ANNOTATION,
    RISK_HALTED_AT_ANNOTATION,
)
from livestrat.api.status import LiveStrategyStatus, Phase, own_status
from livestrat.desk import fleet
from livestrat.desk.cluster import Cluster, DeskError, Forbidden
from strategy_operator.decide.risk import risk_latch


@dataclass(frozen=True)
class Outcome:
    action: str
    target: str
    done: tuple[str, ...]  # what was done, one line each
    state: dict[str, Any]  # the object as the API server has it afterwards (a LiveStrategy, or the Namespace)

    def text(self) -> str:
        return "\n".join(self.done)


@dataclass(frozen=True)
class Action:
    name: str  # halt, resume, ack-risk, kill-switch on|off
    target: str  # "LiveStrategy NAME in namespace NS", "namespace NS"
    plan: tuple[str, ...]  # what it will do, one line each
    steps: tuple[Callable[[Cluster], Awaitable[str]], ...] = field(default=(), repr=False)
    reread: Callable[[Cluster], Awaitable[dict[str, Any]]] | None = field(default=None, repr=False)
    nothing_to_do: str | None = None
    warnings: tuple[str, ...] = ()

    def describe(self) -> str:
        lines = [f"{self.name}: {self.target}"]
        if self.nothing_to_do:
            lines.append(f"  nothing to do: {self.nothing_to_do}")
        lines += [f"  - {line}" for line in self.plan]
        lines += [f"  ! {line}" for line in self.warnings]
        return "\n".join(lines)

    async def run(self, cluster: Cluster) -> Outcome:
        done = [await step(cluster) for step in self.steps] or [f"nothing done: {self.nothing_to_do}"]
        state = await self.reread(cluster) if self.reread is not None else {}
        return Outcome(self.name, self.target, tuple(done), state)


def _target(namespace: str, name: str) -> str:
    return f"LiveStrategy {name} in namespace {namespace}"


def _situation(body: Mapping[str, Any]) -> str:
    row = fleet.row(body)
    positions = ", ".join(f"{p.side} {p.quantity} {p.instrument}" for p in row.positions) or "no position"
    return (
        f"now: {row.mode}, phase {row.phase}, {row.replicas} pod(s), {row.open_orders} open order(s), {positions}, "
        f"PnL {fleet.money_text(row.total_pnl)}"
    )


def _halt_policy(body: Mapping[str, Any]) -> str:
    spec = body.get("spec") or {}
    policy = spec.get("haltPolicy") or "cancelOrders"
    if policy == "flatten":
        return "the runtime cancels every open order and closes its positions (haltPolicy flatten)"
    return "the runtime cancels every open order and keeps its positions (haltPolicy cancelOrders)"


def _spec_replicas(body: Mapping[str, Any]) -> Any:
    return (body.get("spec") or {}).get("replicas")


async def halt(cluster: Cluster, namespace: str, name: str, *, note: str | None = None) -> Action:
    """Halt one strategy: scale it to 0 (default), or put the desk's halt annotation with ``note`` (who and why)."""
    body = await cluster.get_strategy(namespace, name)
    target = _target(namespace, name)
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    plan = [_situation(body)]
    if note is not None:
        if annotations.get(HALT_ANNOTATION) == note:
            return Action("halt", target, tuple(plan), nothing_to_do=f"the halt annotation already says {note!r}")
        plan.append(
            f"annotate it {HALT_ANNOTATION}={note!r} (the desk's halt: a GitOps controller re-applying replicas: 1 "
            "leaves it alone; `resume` removes it)"
        )

        async def annotate(c: Cluster) -> str:
            await c.patch_strategy(namespace, name, {"metadata": {"annotations": {HALT_ANNOTATION: note}}})
            return f"annotated {HALT_ANNOTATION}={note!r}"

        step = annotate
    else:
        if _spec_replicas(body) == 0:
            return Action("halt", target, tuple(plan), nothing_to_do="spec.replicas is 0 already")
        plan.append(f"scale it to 0 replicas (the scale subresource: kubectl scale livestrategy/{name} --replicas=0)")

        async def scale(c: Cluster) -> str:
            scaled = await c.scale_strategy(namespace, name, 0)
            return f"scaled to {(scaled.get('spec') or {}).get('replicas')} replicas"

        step = scale
    plan.append(f"the operator records the halt and stops the pod; {_halt_policy(body)}, then the phase is Halted")
    return Action("halt", target, tuple(plan), (step,), reread=lambda c: c.get_strategy(namespace, name))


async def resume(cluster: Cluster, namespace: str, name: str) -> Action:
    """Resume one strategy: remove the desk's halt annotation if present, and scale it to 1 if it is at 0."""
    body = await cluster.get_strategy(namespace, name)
    target = _target(namespace, name)
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    plan = [_situation(body)]
    steps: list[Callable[[Cluster], Awaitable[str]]] = []
    if HALT_ANNOTATION in annotations:
        plan.append(f"remove the halt annotation {HALT_ANNOTATION}={annotations[HALT_ANNOTATION]!r}")

        async def unannotate(c: Cluster) -> str:
            await c.patch_strategy(namespace, name, {"metadata": {"annotations": {HALT_ANNOTATION: None}}})
            return f"removed the halt annotation {HALT_ANNOTATION}"

        steps.append(unannotate)
    if _spec_replicas(body) == 0:
        plan.append(f"scale it to 1 replica (kubectl scale livestrategy/{name} --replicas=1)")

        async def scale(c: Cluster) -> str:
            scaled = await c.scale_strategy(namespace, name, 1)
            return f"scaled to {(scaled.get('spec') or {}).get('replicas')} replica"

        steps.append(scale)
    warnings = []
    latch = _latch(body)
    if latch.latched:
        warnings.append(
            f"it is risk-halted ({latch.limit or 'a risk limit'} broke at {latch.breached_at}): it stays halted "
            f"until that breach is acknowledged (kubectl livestrat ack-risk {name})"
        )
    if not steps:
        return Action(
            "resume",
            target,
            tuple(plan),
            nothing_to_do="no halt annotation and spec.replicas is not 0",
            warnings=tuple(warnings),
        )
    plan.append("the operator starts the pod; it waits for the ledger fence, reconciles with the venue and trades")
    return Action(
        "resume", target, tuple(plan), tuple(steps), lambda c: c.get_strategy(namespace, name), warnings=tuple(warnings)
    )


def _latch(body: Mapping[str, Any]) -> Any:
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    try:
        status = LiveStrategyStatus.model_validate(own_status(body) or {})
    except ValueError:
        status = LiveStrategyStatus()
    return risk_latch(status.risk, annotations.get(RISK_ACK_ANNOTATION), annotations.get(RISK_HALTED_AT_ANNOTATION))


async def ack_risk(cluster: Cluster, namespace: str, name: str) -> Action:
    """Acknowledge the breach that holds the strategy (the one the operator latched), so it may trade again."""
    body = await cluster.get_strategy(namespace, name)
    target = _target(namespace, name)
    latch = _latch(body)
    plan = [_situation(body)]
    if not latch.latched:
        why = "its breach is acknowledged already" if latch.acknowledged else "it is not risk-halted"
        return Action("ack-risk", target, tuple(plan), nothing_to_do=why)
    if not latch.breached_at:
        raise DeskError(
            f"{target} is risk-halted but reports no breach time (status.risk.breachedAt): there is nothing to "
            "acknowledge yet; look at `kubectl livestrat status` and the pod's log"
        )
    breach = latch.breached_at
    plan.append(
        f"acknowledge the breach of {latch.limit or 'a risk limit'} at {breach}"
        + (f" ({latch.reason})" if latch.reason else "")
        + f": annotate it {RISK_ACK_ANNOTATION}={breach}"
    )
    plan.append(
        "the operator restarts the pod with the acknowledgement; the runtime clears the halt in the ledger and trades "
        "again (a later breach halts it again). Record who acknowledged and why in your incident log"
    )

    async def acknowledge(c: Cluster) -> str:
        await c.patch_strategy(namespace, name, {"metadata": {"annotations": {RISK_ACK_ANNOTATION: breach}}})
        return f"annotated {RISK_ACK_ANNOTATION}={breach}"

    return Action("ack-risk", target, tuple(plan), (acknowledge,), lambda c: c.get_strategy(namespace, name))


async def kill_switch(cluster: Cluster, namespace: str, engage: bool) -> Action:
    """Engage (``True``) or lift the kill switch of a namespace."""
    name = f"kill-switch {'on' if engage else 'off'}"
    target = f"namespace {namespace}"
    found = await cluster.get_namespace(namespace)
    engaged = ((found.get("metadata") or {}).get("annotations") or {}).get(KILL_SWITCH_ANNOTATION) == "true"
    try:
        strategies = await cluster.list_strategies(namespace)
        names = f"{len(strategies)}: " + (", ".join(s["metadata"]["name"] for s in strategies) or "none now")
    except Forbidden:  # the kill-switch role alone may not list them: the switch works all the same
        names = "which ones, you may not list: the desk role shows them"
    if engage == engaged:
        return Action(name, target, (), nothing_to_do=f"the kill switch is {'on' if engaged else 'off'} already")
    if engage:
        plan = (
            f"annotate the namespace {KILL_SWITCH_ANNOTATION}=true",
            f"the operator halts EVERY strategy in {namespace}, whatever its state ({names}), and "
            f"puts the desk's halt annotation on each; strategies created later do not start either",
        )
        patch: dict[str, Any] = {"metadata": {"annotations": {KILL_SWITCH_ANNOTATION: "true"}}}
    else:
        plan = (
            f"remove the namespace's {KILL_SWITCH_ANNOTATION} annotation",
            "nothing resumes by itself: each strategy keeps its halt annotation; resume each with "
            "`kubectl livestrat resume NAME`",
        )
        patch = {"metadata": {"annotations": {KILL_SWITCH_ANNOTATION: None}}}

    async def switch(c: Cluster) -> str:
        await c.patch_namespace(namespace, patch)
        return f"kill switch of namespace {namespace} {'engaged' if engage else 'lifted'}"

    return Action(name, target, plan, (switch,), lambda c: c.get_namespace(namespace))


# ------------------------------------------------------------------------------------------------ waiting


async def wait_for_phase(
    cluster: Cluster, namespace: str, name: str, phases: set[str], timeout: float, interval: float = 1.0
) -> dict[str, Any]:
    """Read the strategy until its phase is one of ``phases``; a DeskError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        body = await cluster.get_strategy(namespace, name)
        phase = ((body.get("status") or {}).get("phase")) or ""
        if phase in phases:
            return body
        if time.monotonic() > deadline:
            raise DeskError(
                f"{_target(namespace, name)} is {phase or 'without a phase'} after {timeout:.0f} s, not "
                f"{' or '.join(sorted(phases))}: see `kubectl livestrat status {name} -n {namespace}`"
            )
        await asyncio.sleep(interval)


# The phase each action waits for with --wait.
SETTLED = {
    "halt": {Phase.HALTED.value, Phase.RISK_HALTED.value, Phase.INVALID.value, Phase.FAILED.value},
    "resume": {Phase.RUNNING.value, Phase.RISK_HALTED.value, Phase.INVALID.value, Phase.FAILED.value},
    "ack-risk": {Phase.RUNNING.value, Phase.INVALID.value, Phase.FAILED.value},
}
