"""What the operator remembers about one strategy between reconciliations (lost on restart, by design).

Nothing here is needed for correctness after a restart: the watch caches hold every child,
the status holds every condition's transition time, and the annotations hold the risk
record. What is remembered saves API calls (Secrets found, children that converged), bounds
waits (since when a pod has been awaited or halting, since when a deletion was seen) and
bridges the watch's lag behind the operator's own writes (:mod:`strategy_operator.apply.own_writes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from strategy_operator.apply.own_writes import CreatedChildren, OwnWrites
from strategy_operator.build.policy import SecretRequirement, SpecProblem


@dataclass
class SecretMemory:
    """The last look-up of the Secrets a pod needs."""

    key: tuple[SecretRequirement, ...] = ()  # what was looked up
    checked_at: float = -math.inf
    problems: list[SpecProblem] = field(default_factory=list)
    failures: int = 0  # look-ups in a row that found a problem


@dataclass
class StrategyMemory:
    situation: str | None = None  # "awaiting-pod" or "halting": the waits that have a timeout
    situation_since: datetime | None = None
    secrets: SecretMemory = field(default_factory=SecretMemory)
    converged: dict[str, tuple[str, str]] = field(default_factory=dict)  # kind -> (desired digest, resourceVersion)
    created: CreatedChildren = field(default_factory=CreatedChildren)
    conflicts: dict[str, SpecProblem] = field(default_factory=dict)  # kind -> a name taken by a foreign object
    conflicts_checked_at: float = -math.inf
    # kind -> uid of a child of an earlier LiveStrategy of this name, still there: the garbage collector deletes it
    awaiting_collection: dict[str, str] = field(default_factory=dict)
    pods_confirmed_at: float = -math.inf
    confirmed_gone: set[str] = field(default_factory=set)  # pod uids the caches still show but the API does not
    status_writes: OwnWrites = field(default_factory=OwnWrites)  # the operator's status fields
    breach_writes: OwnWrites = field(default_factory=OwnWrites)  # the livestrat.io/risk-halted-at annotation
    halt_writes: OwnWrites = field(default_factory=OwnWrites)  # the livestrat.io/halt annotation (kill switch)
    spec_scaled_from: int | None = None  # the generation whose spec.replicas the kill switch set to 0
    deletion_seen: datetime | None = None  # when this operator first saw the deletion (bounds the wait)
    repaired_version: int = 0  # the resourceVersion whose unreadable status fields the operator wrote back
    statefulset_created_at: float | None = None  # when this operator created the StatefulSet (apply.children)
    first_status_deferred: bool = False  # a new strategy's first status waits for its StatefulSet's pod (actions)
    # Account claims (observe.claims): LiveStrategy uids the claims index shows but the API does not, and
    # when the holders of this strategy's instruments were last confirmed (None: it is not held by a claim).
    claimants_gone: set[str] = field(default_factory=set)
    twin_checked_at: float = -math.inf  # when the paper twin was last read from the API server (apply.twin)
    twin_taken_by: str | None = None  # uid of a foreign LiveStrategy holding the twin's name, said once (apply.twin)
    claims_checked_at: float | None = None

    def since(self, situation: str | None, now: datetime) -> datetime:
        """When the current timed wait (``situation``) began; ``now`` when it begins now."""
        if situation != self.situation or self.situation_since is None:
            self.situation, self.situation_since = situation, now
        return self.situation_since
