"""The plan: what a strategy's children must be now, decided from one observation.

:func:`plan` decides how many pods (0 or 1, and why 0: the :class:`Hold`), whether the desired
configuration may be written now (``updatePolicy``), whether the kill switch marks the strategy
halted (the desk's ``livestrat.io/halt`` annotation), which pods to delete, and whether a risk halt
must be recorded. It is
made once per reconciliation. :func:`secrets_due` answers the one question the observation
needs answered before that: whether the Secrets a pod needs must be looked at now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from livestrat.api.contract import HALT_ANNOTATION, KILL_SWITCH_ANNOTATION
from livestrat.api.promotion import PromotionRecord, PromotionState
from livestrat.api.spec import OnBreach, UpdatePolicy
from strategy_operator.decide import promotion
from strategy_operator.decide.risk import budget_halt_message, latch_of, risk_message
from strategy_operator.decide.unreadable import keeps_running
from strategy_operator.observe.observation import Observation, PodView
from strategy_operator.observe.paper_record import PaperTrackRecord


@dataclass(frozen=True)
class Hold:
    """Why the StatefulSet is held at 0 replicas."""

    reason: str
    message: str

    @property
    def asked(self) -> bool:
        """A halt someone with the right to stop the strategy asked for (architecture decision 11), rather than a
        problem that keeps a pod from running (a spec, a Secret, a name taken)."""
        return self.reason in ASKED_HALTS


# The holds someone asked for: deletion, the kill switch, the desk's halt annotation, a risk breach, spec.replicas 0.
ASKED_HALTS = frozenset({"Deleting", "KillSwitch", "HaltRequested", "RiskLimitBreached", "ScaledToZero"})


@dataclass(frozen=True)
class PodDeletion:
    pod: PodView
    reason: str  # event reason
    message: str


@dataclass(frozen=True)
class Plan:
    replicas: int
    hold: Hold | None
    apply: bool  # write the desired configuration and pod template now
    # The kill switch leaves its halt on the strategy (sticky): the livestrat.io/halt annotation with this note;
    # or, where the annotations do not read (a write would replace them), spec.replicas 0.
    mark_halted: str | None = None
    scale_spec_to_zero: bool = False
    delete_pods: list[PodDeletion] = field(default_factory=list)
    record_breach: str | None = None  # write livestrat.io/risk-halted-at with this breach time
    promotion: PromotionRecord | None = None  # a promotion decided now, for status.promotion


DELETING = "the LiveStrategy is being deleted: the strategy halts before it is released"


def hold(obs: Observation) -> Hold | None:
    if obs.deleting:
        return Hold("Deleting", DELETING)
    if obs.problems and not keeps_running(obs):  # a spec that does not read or is refused stops nothing that runs
        first = obs.problems[0]
        return Hold(first.reason, first.message)
    if obs.kill_switch:
        return Hold(
            "KillSwitch",
            f"the kill switch of namespace {obs.namespace} is engaged (annotation {KILL_SWITCH_ANNOTATION}): "
            f"every strategy here is halted; to resume, remove it, then each strategy's {HALT_ANNOTATION} "
            f"annotation: kubectl annotate livestrategy {obs.name} {HALT_ANNOTATION}-",
        )
    spec = obs.spec
    latch = latch_of(obs)
    # HaltInPlace leaves the pod up only while its runtime itself says it is halted: one that lost its
    # state (a new pod, a ledger on scratch space) and reports Active would trade.
    on_breach = spec.risk.on_breach if spec is not None else OnBreach.SCALE_TO_ZERO
    if latch.latched and (on_breach == OnBreach.SCALE_TO_ZERO or not latch.reported_halted):
        return Hold("RiskLimitBreached", risk_message(obs, latch))
    if obs.budget_halts:  # a RiskBudget's breach: whatever its own onBreach, the pod stops (its runtime is not halted)
        return Hold("RiskLimitBreached", budget_halt_message(obs))
    if obs.halt_requested is not None:
        return Hold(
            "HaltRequested",
            f"halted by the annotation {HALT_ANNOTATION}: {obs.halt_requested!r}. To resume: "
            f"kubectl annotate livestrategy {obs.name} {HALT_ANNOTATION}-",
        )
    if (spec.replicas if spec is not None else obs.spec_replicas) == 0:
        return Hold("ScaledToZero", "spec.replicas is 0")
    record = promotion_of(obs)
    if record is not None and record.state == PromotionState.REFUSED and not keeps_running(obs):
        return Hold("PromotionRefused", record.message)
    return None


def promotion_of(obs: Observation) -> PromotionRecord | None:
    """The promotion decided now: None without ``spec.promotion`` or when an earlier acceptance holds (the record
    stays as it is). A refusal that finds what the last one found is that one, unchanged (not written again).

    A refused promotion stops nothing that runs or starts (architecture decision 11; ``keeps_running``, as for a
    spec the operator refuses): it keeps the configuration it started with (:func:`plan` applies nothing new),
    and a live strategy without a pod gets none."""
    spec = obs.spec
    if spec is None or spec.promotion is None or promotion.granted(spec, obs.status.promotion):
        return None
    paper = obs.paper or PaperTrackRecord.missing(spec.promotion.from_)
    record = promotion.decide(spec, paper, obs.promoted_by, obs.now)
    previous = obs.status.promotion
    if previous is not None and (previous.state, previous.message) == (record.state, record.message):
        return previous
    return record


def spec_changed_unacted(obs: Observation) -> bool:
    """The LiveStrategy's own spec asks for another pod than the one applied, and the operator has not acted on
    this generation yet (``status.observedGeneration``): a change of the strategy, not a new way of the
    operator to render the same spec."""
    acted = obs.status.observed_generation
    unacted = acted is None or obs.generation is None or acted != obs.generation
    return unacted and obs.applied_spec_hash != obs.desired_spec_hash


def applies_now(obs: Observation) -> bool:
    """Whether the desired configuration and pod template may be written now. Without a running pod, always.
    A running pod is replaced only by an explicit restart (``restartNonce``, an acknowledged risk halt under
    HaltInPlace) or, under ``Auto``, by a change of the strategy's own spec; never by the operator alone
    (a new version, a new default runtime image): that waits for the pod's next restart (``ConfigDrift``).
    One exception, whatever the policy: a pod that runs for an earlier LiveStrategy of this name (adopted with
    its orphaned StatefulSet), which cannot run as this one (its status pushes are ignored, and it shuts its
    own gate on finding this object: docs/runtime.md, "Whose it is")."""
    spec = obs.spec
    running = [p for p in obs.pods if p.controlled and not p.terminating and p.running]
    if spec is None or obs.statefulset is None or not running or obs.applied_hash == obs.desired_hash:
        return True
    nonce_changed = (spec.restart_nonce or None) != (obs.applied_nonce or None)
    running_ack = (obs.running_config or {}).get("riskAcknowledgement")
    ack_changed = obs.acknowledgement is not None and obs.acknowledgement != running_ack and latch_of(obs).acknowledged
    if nonce_changed or ack_changed or _runs_for_another_object(obs):
        return True
    return spec.update_policy == UpdatePolicy.AUTO and spec_changed_unacted(obs)


def _runs_for_another_object(obs: Observation) -> bool:
    """The running configuration names another LiveStrategy uid than the one this object's would (both known)."""
    running, desired = (obs.running_config or {}).get("strategy"), (obs.desired_config or {}).get("strategy")
    if not isinstance(running, dict) or not isinstance(desired, dict):
        return False
    ran, wanted = running.get("uid"), desired.get("uid")
    return isinstance(ran, str) and isinstance(wanted, str) and bool(ran) and bool(wanted) and ran != wanted


def plan(obs: Observation) -> Plan:
    held = hold(obs)
    replicas = 0 if held is not None else 1
    spec = obs.spec
    # A spec the operator refuses is never written over what runs (Flink's lastStableSpec): the running pod keeps
    # the configuration it was started with until the spec can run, or a halt stops it.
    apply = applies_now(obs) and not (obs.problems and keeps_running(obs))
    promoted = promotion_of(obs)
    if promoted is not None and promoted.state == PromotionState.REFUSED and keeps_running(obs):
        apply = False  # what the promotion does not admit is never written over what runs

    deletions: list[PodDeletion] = []
    statefulset = obs.statefulset or {}
    sts_spec, sts_status = statefulset.get("spec") or {}, statefulset.get("status") or {}
    settled_at_zero = sts_spec.get("replicas") == 0 and (sts_status.get("observedGeneration") or 0) >= (
        (statefulset.get("metadata") or {}).get("generation") or 0
    )
    for pod in obs.pods:
        if pod.terminating:
            continue
        if not pod.controlled and pod.adoptable and replicas == 1:
            # The StatefulSet's own pod, orphaned (``kubectl delete statefulset --cascade=orphan``): the StatefulSet
            # (recreated by this very pass if it is gone) adopts it, as its controller claims orphans its selector
            # matches, and rolls it if its template differs. Deleting it would stop a healthy strategy.
            continue
        if not pod.controlled:
            deletions.append(
                PodDeletion(
                    pod,
                    "RoguePodDeleted",
                    f"pod {pod.name} carries this strategy's label but was not created by its StatefulSet: "
                    "deleted, a strategy never runs twice",
                )
            )
        elif replicas == 0 and settled_at_zero:
            deletions.append(
                PodDeletion(
                    pod,
                    "RoguePodDeleted",
                    f"pod {pod.name} runs although the strategy is halted ({held.reason if held else 'held'}): deleted",
                )
            )
        elif (
            replicas == 1
            and apply
            and obs.applied_hash == obs.desired_hash
            and pod.config_hash != obs.desired_hash
            and not pod.ready
        ):
            # A StatefulSet does not replace a pod that never became ready (its rolling update
            # waits for it): the new configuration would never arrive. Replace it ourselves.
            deletions.append(
                PodDeletion(pod, "Restarting", f"pod {pod.name} is not ready and runs an old configuration: replaced")
            )
    # The kill switch holds whatever the spec says, also when it cannot be read, and leaves the desk's halt on
    # each strategy so that lifting it resumes none (sticky). Not by rewriting spec.replicas: a GitOps controller
    # would put its manifest's replicas back, and lifting the switch would then resume everything at once.
    # Where the annotations do not read, adding one would replace them: spec.replicas is set instead, through
    # the scale subresource, which serves the object only once its replicas fields read (the operator writes
    # its own back first). A spec.replicas that does not read is not set: the StatefulSet stays held meanwhile.
    switched = obs.kill_switch and not obs.deleting
    mark = switched and obs.halt_requested is None and obs.annotations_writable
    asked = spec.replicas if spec is not None else obs.spec_replicas
    scale_spec = switched and not obs.annotations_writable and asked not in (0, None) and obs.scalable
    return Plan(
        replicas=replicas,
        hold=held,
        apply=apply,
        mark_halted=f"kill switch of namespace {obs.namespace}, seen {obs.now:%Y-%m-%dT%H:%M:%SZ}" if mark else None,
        scale_spec_to_zero=scale_spec,
        delete_pods=deletions,
        record_breach=latch_of(obs).record if spec is not None else None,
        promotion=promoted,
    )


class SecretsCheck(StrEnum):
    """Why the Secrets a pod needs are looked at now."""

    START = "start"  # a pod is about to start with the desired configuration: a missing Secret holds it
    PENDING = "pending"  # a running pod is left as it is: a missing Secret is reported for what waits


def secrets_due(obs: Observation) -> SecretsCheck | None:
    """Whether the Secrets of the desired configuration must be looked at before the plan is made: when a pod
    is to run (nothing holds the strategy) and none runs that configuration ready yet. None otherwise: a
    held strategy starts nothing, and a ready pod of the desired configuration has its environment."""
    if obs.spec is None or obs.problems or hold(obs) is not None:
        return None
    if any(p.controlled and p.ready and p.config_hash == obs.desired_hash for p in obs.pods):
        return None
    return SecretsCheck.START if applies_now(obs) else SecretsCheck.PENDING
