"""One RiskBudget's reconciliation: observe (the budget and its members' cached reports), decide, apply.

Run by a kopf daemon per RiskBudget, woken whenever a member's LiveStrategy changes (its runtime
reported, its annotations changed) or the budget itself does (an edit, an acknowledgement), and every
:data:`RESYNC_SECONDS` anyway. The operator's own recent writes count over a watch copy that does not
show them yet (:class:`~strategy_operator.apply.own_writes.OwnWrites`): a lagging copy must not make it
see a breach it has recorded as a new one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from strategy_operator.apply.actions import Events
from strategy_operator.apply.budget import apply_budget
from strategy_operator.apply.own_writes import OwnWrites
from strategy_operator.clock import Clock
from strategy_operator.decide.budget import decide_budget
from strategy_operator.kube_client import KubeClient
from strategy_operator.observe.budget import read_budget

RESYNC_SECONDS = 30.0
# A status whose figures alone changed is written at most this often: members' marks move with every report,
# and a budget of N members would otherwise write N times a second. A breach, its release, a condition or a
# new generation is written at once.
FIGURES_INTERVAL_SECONDS = 1.0

# member name -> its cache entry (strategy_operator.observe.budget.member_entry), None when there is no such member
Entries = Callable[[str, str], Mapping[str, Any] | None]


@dataclass
class BudgetMemory:
    status_writes: OwnWrites = field(default_factory=OwnWrites)
    written_at: float = -math.inf  # monotonic time of the last status write
    halt_writes: dict[str, OwnWrites] = field(default_factory=dict)  # member -> its annotation for this budget


class BudgetReconciler:
    def __init__(self, kube: KubeClient, events: Events, clock: Clock) -> None:
        self.kube = kube
        self.events = events
        self.clock = clock
        self.memories: dict[tuple[str, str], BudgetMemory] = {}

    def forget(self, namespace: str, name: str) -> None:
        self.memories.pop((namespace, name), None)

    async def reconcile(
        self,
        body: Mapping[str, Any],
        entry: Entries,
        halted_members: list[str],
        held_elsewhere: Mapping[str, str] | None = None,
    ) -> float | None:
        """``entry(namespace, member)``: a member's cache entry; ``halted_members``: those whose annotations name
        this budget (members or not any more); ``held_elsewhere``: member -> the other (older) budget that holds it
        (condition MemberConflict). Returns in how many seconds to look again (figures not written yet), or None."""
        meta = body.get("metadata") or {}
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        memory = self.memories.setdefault((namespace, name), BudgetMemory())
        tick = self.clock.monotonic()
        seen_status = dict(body.get("status") or {}) if isinstance(body.get("status"), Mapping) else {}
        current = memory.status_writes.current(seen_status, tick)

        members = body.get("spec", {}).get("members") if isinstance(body.get("spec"), Mapping) else None
        names = {m for m in members if isinstance(m, str)} if isinstance(members, list) else set()
        entries: dict[str, Mapping[str, Any] | None] = {}
        for member in sorted(names | set(halted_members)):
            found = entry(namespace, member)
            if found is not None:
                halts = dict(found.get("halts") or {})
                known = memory.halt_writes.setdefault(member, OwnWrites()).current(halts.get(name), tick)
                if known is None:
                    halts.pop(name, None)
                else:
                    halts[name] = known
                found = {**found, "halts": halts}
            entries[member] = found

        obs = read_budget({**body, "status": current}, entries, self.clock.now())
        if held_elsewhere:
            obs = dataclasses.replace(obs, held_elsewhere=dict(held_elsewhere))
        decision = decide_budget(obs)
        waited = tick - memory.written_at
        due = waited >= FIGURES_INTERVAL_SECONDS
        written, status = await apply_budget(self.kube, self.events, body, decision, current, figures_due=due)
        for member in written:
            before = (entries.get(member) or {}).get("halts", {}).get(name)
            after = decision.halt.get(member)
            memory.halt_writes.setdefault(member, OwnWrites()).wrote(before, after, tick)
        if status is not None:
            memory.status_writes.wrote(current, status, tick)
            memory.written_at = tick
            return None
        if decision.status.to_wire() != current:  # figures held back: written when the interval is over
            return max(0.0, FIGURES_INTERVAL_SECONDS - waited)
        return None
