"""What one reconciliation observed: the LiveStrategy, its StatefulSet and pods, the clock.

Plain data read from the operator's watch caches (and the few API reads that are due): an
:class:`Observation` is everything the decisions (:mod:`strategy_operator.decide`) look at,
and nothing in it is a decision. :class:`PodView` is what matters about one strategy pod.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from livestrat.api.spec import LiveStrategySpec
from livestrat.api.status import LiveStrategyStatus
from strategy_operator.build import labels
from strategy_operator.build.configuration import spec_hash
from strategy_operator.build.policy import SpecProblem
from strategy_operator.decide.claims import Claimant
from strategy_operator.observe.paper_record import PaperTrackRecord
from strategy_operator.observe.reading import Unreadable
from strategy_operator.settings import OperatorSettings


def parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class PodView:
    """What matters about one strategy pod."""

    name: str
    uid: str
    controlled: bool  # created by the strategy's own StatefulSet
    terminating: bool
    deletion_started: datetime | None
    grace_seconds: float | None
    created: datetime | None
    ready: bool
    ready_since: datetime | None
    running: bool  # its container runs (it may trade)
    config_hash: str | None
    waiting_reason: str | None = None
    waiting_message: str | None = None
    exit_code: int | None = None
    exit_message: str | None = None
    adoptable: bool = False  # no controller, and the name of the StatefulSet's pod: its StatefulSet claims it
    service_account: str | None = None  # the identity it runs (and reports its state) with
    node_name: str | None = None  # the node it is bound to

    @classmethod
    def from_body(cls, body: Mapping[str, Any], statefulset_uid: str | None, statefulset_name: str) -> PodView:
        """``statefulset_uid``: the uid of the strategy's StatefulSet, None while the operator does not know
        it (not in its cache yet): a pod whose controller is a StatefulSet of that name counts as the
        StatefulSet's own until then, never as a rogue pod to delete."""
        meta = body.get("metadata") or {}
        status = body.get("status") or {}
        owners = [ref for ref in meta.get("ownerReferences") or [] if ref.get("controller")]
        if statefulset_uid is not None:
            controlled = any(ref.get("uid") == statefulset_uid for ref in owners)
        else:
            controlled = any(ref.get("kind") == "StatefulSet" and ref.get("name") == statefulset_name for ref in owners)
        ready_condition = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
        container = next(
            (c for c in status.get("containerStatuses") or [] if c.get("name") == labels.CONTAINER),
            (status.get("containerStatuses") or [{}])[0] if status.get("containerStatuses") else {},
        )
        state = container.get("state") or {}
        waiting = state.get("waiting") or {}
        terminated = state.get("terminated") or (container.get("lastState") or {}).get("terminated") or {}
        # A graceful deletion's grace period is the pod's own; never count on less than that.
        graces = [meta.get("deletionGracePeriodSeconds"), (body.get("spec") or {}).get("terminationGracePeriodSeconds")]
        grace = max((float(g) for g in graces if g is not None), default=None)
        return cls(
            name=str(meta.get("name")),
            uid=str(meta.get("uid") or ""),
            controlled=controlled,
            adoptable=not owners and meta.get("name") == labels.pod_name(statefulset_name),
            service_account=(body.get("spec") or {}).get("serviceAccountName"),
            terminating=bool(meta.get("deletionTimestamp")),
            deletion_started=parse_time(meta.get("deletionTimestamp")),
            grace_seconds=float(grace) if grace is not None else None,
            created=parse_time(meta.get("creationTimestamp")),
            ready=ready_condition.get("status") == "True",
            ready_since=parse_time(ready_condition.get("lastTransitionTime")),
            running="running" in state,
            config_hash=(meta.get("annotations") or {}).get(labels.CONFIG_HASH_ANNOTATION),
            waiting_reason=waiting.get("reason"),
            waiting_message=waiting.get("message"),
            exit_code=terminated.get("exitCode"),
            exit_message=terminated.get("message"),
            node_name=(body.get("spec") or {}).get("nodeName"),
        )


@dataclass(frozen=True)
class Observation:
    """Everything one reconciliation knows."""

    name: str
    namespace: str
    generation: int | None
    spec: LiveStrategySpec | None  # None: the spec cannot be read (see ``problems``)
    deleting: bool
    acknowledgement: str | None  # the livestrat.io/risk-acknowledged annotation
    status: LiveStrategyStatus  # as the watch shows it, with the operator's own latest writes
    kill_switch: bool
    problems: Sequence[SpecProblem]  # why the spec cannot run (incl. missing Secrets)
    statefulset: Mapping[str, Any] | None
    pods: Sequence[PodView]
    desired_hash: str
    running_config: dict[str, Any] | None  # runtime.json of the ConfigMap as it is
    desired_config: dict[str, Any]
    now: datetime
    phase_since: datetime  # when this phase was first seen (operator memory)
    settings: OperatorSettings
    spec_replicas: int | None = 1  # spec.replicas as stored, also when the spec cannot be read; None: not an integer
    risk_recorded: str | None = None  # the livestrat.io/risk-halted-at annotation (the operator's own)
    # What keeps the pending (not applied) configuration from starting; the running pod is not held for it.
    deferred_problems: Sequence[SpecProblem] = ()
    desired_statefulset: Mapping[str, Any] | None = None  # what the operator would build now
    unreadable_status: Sequence[Unreadable] = ()  # the runtime's status fields that do not read
    status_repairs: Sequence[Unreadable] = ()  # the operator's status fields that do not read: written back
    # The uid of the earlier LiveStrategy of this name whose pod pushed the stored trading and risk: removed.
    runtime_of_another: str | None = None
    scalable: bool = True  # the scale subresource can serve the object (the kill switch writes through it)
    # The pod's node is being drained and the strategy's PodDisruptionBudget allows no disruption: (node, why).
    drain_blocked: tuple[str, str] | None = None
    resource_version: int = 0  # of the copy observed
    halt_requested: str | None = None  # the livestrat.io/halt annotation's note: the desk halted it
    budget_halts: tuple[tuple[str, str], ...] = ()  # (RiskBudget, breach time): budgets whose breach halts it
    annotations_writable: bool = True  # the operator can add an annotation without replacing what is there
    # spec.promotion not yet granted: the paper strategy it names, as read now; and the livestrat.io/promoted-by note
    paper: PaperTrackRecord | None = None
    promoted_by: str | None = None
    claimant: Claimant | None = None  # a live strategy on a venue account, and its claims (decide.claims)

    @property
    def applied_hash(self) -> str | None:
        return _template_annotations(self.statefulset).get(labels.CONFIG_HASH_ANNOTATION)

    @property
    def applied_nonce(self) -> str | None:
        return _template_annotations(self.statefulset).get(labels.RESTART_NONCE_ANNOTATION)

    @property
    def desired_spec_hash(self) -> str | None:
        return _template_annotations(self.desired_statefulset).get(labels.SPEC_HASH_ANNOTATION)

    @property
    def applied_spec_hash(self) -> str | None:
        """The spec-hash of the applied pod template; for a template built before it carried one, computed from
        the ConfigMap it runs (written together with it)."""
        found = _template_annotations(self.statefulset).get(labels.SPEC_HASH_ANNOTATION)
        if found or self.running_config is None:
            return found
        return spec_hash(self.running_config, self.applied_nonce)

    @property
    def pod(self) -> PodView | None:
        """The strategy's pod: the StatefulSet's own (a live one first), else any."""
        ranked = sorted(self.pods, key=lambda p: (not p.controlled, p.terminating, p.name))
        return ranked[0] if ranked else None


def _template_annotations(statefulset: Mapping[str, Any] | None) -> Mapping[str, Any]:
    template = ((statefulset or {}).get("spec") or {}).get("template") or {}
    return (template.get("metadata") or {}).get("annotations") or {}
