"""Where the strategy pod may run: Kubernetes' own Affinity and Toleration types, as pydantic models.

``spec.pod.affinity`` and ``spec.pod.tolerations`` are passed to the pod template as written. They
are modelled field for field on ``io.k8s.api.core.v1.Affinity`` and ``Toleration`` (and the label
and node selectors they hold) rather than left free-form (``x-kubernetes-preserve-unknown-fields``),
so the API server checks them when the LiveStrategy is written: a misspelt ``nodeAfinity`` or an
operator Kubernetes does not know is refused there, not later as a StatefulSet the API server
refuses. The package cannot read the official schemas at run time (they come with a test library,
kubernetes-validate); ``tests/api/test_scheduling.py`` holds these models to them, field for field.

Operators and effects are the values the API server's validation accepts (the OpenAPI schema says
only "string").
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from livestrat.api.base import ApiModel


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class NodeSelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"
    GT = "Gt"
    LT = "Lt"


class TolerationOperator(StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class LabelSelectorRequirement(ApiModel):
    key: str = Field(description="The label key the selector applies to.")
    operator: SelectorOperator = Field(description="In, NotIn, Exists or DoesNotExist.")
    values: list[str] | None = Field(default=None, description="Values (In, NotIn); empty for Exists, DoesNotExist.")


class LabelSelector(ApiModel):
    match_labels: dict[str, str] | None = Field(default=None, description="Labels that must all match.")
    match_expressions: list[LabelSelectorRequirement] | None = Field(default=None, description="Requirements, ANDed.")


class NodeSelectorRequirement(ApiModel):
    key: str = Field(description="The node label (or field) key.")
    operator: NodeSelectorOperator = Field(description="In, NotIn, Exists, DoesNotExist, Gt or Lt.")
    values: list[str] | None = Field(default=None, description="Values; one integer for Gt and Lt.")


class NodeSelectorTerm(ApiModel):
    match_expressions: list[NodeSelectorRequirement] | None = Field(
        default=None, description="Requirements on node labels, ANDed."
    )
    match_fields: list[NodeSelectorRequirement] | None = Field(
        default=None, description="Requirements on node fields, ANDed."
    )


class NodeSelector(ApiModel):
    node_selector_terms: list[NodeSelectorTerm] = Field(description="Terms, ORed.")


class PreferredSchedulingTerm(ApiModel):
    weight: int = Field(ge=1, le=100, description="1-100.")
    preference: NodeSelectorTerm = Field(description="The node selector term.")


class NodeAffinity(ApiModel):
    required_during_scheduling_ignored_during_execution: NodeSelector | None = Field(
        default=None, description="Nodes the pod must run on."
    )
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] | None = Field(
        default=None, description="Nodes the scheduler prefers."
    )


class PodAffinityTerm(ApiModel):
    label_selector: LabelSelector | None = Field(default=None, description="Pods this term is about.")
    match_label_keys: list[str] | None = Field(default=None, description="Label keys taken from the incoming pod.")
    mismatch_label_keys: list[str] | None = Field(
        default=None, description="Label keys whose values must differ from the incoming pod's."
    )
    namespace_selector: LabelSelector | None = Field(default=None, description="Namespaces of those pods.")
    namespaces: list[str] | None = Field(default=None, description="Namespaces of those pods, by name.")
    topology_key: str = Field(min_length=1, description="The node label that defines co-location.")


class WeightedPodAffinityTerm(ApiModel):
    weight: int = Field(ge=1, le=100, description="1-100.")
    pod_affinity_term: PodAffinityTerm = Field(description="The term.")


class PodAffinity(ApiModel):
    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] | None = Field(
        default=None, description="Terms that must hold."
    )
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] | None = Field(
        default=None, description="Terms the scheduler prefers."
    )


class PodAntiAffinity(ApiModel):
    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] | None = Field(
        default=None, description="Terms that must not hold."
    )
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] | None = Field(
        default=None, description="Terms the scheduler prefers not to hold."
    )


class Affinity(ApiModel):
    """Kubernetes' ``Affinity`` (node affinity, pod affinity and anti-affinity), passed to the pod as written."""

    node_affinity: NodeAffinity | None = Field(default=None, description="Node affinity.")
    pod_affinity: PodAffinity | None = Field(default=None, description="Pod affinity.")
    pod_anti_affinity: PodAntiAffinity | None = Field(default=None, description="Pod anti-affinity.")


class Toleration(ApiModel):
    """Kubernetes' ``Toleration``, passed to the pod as written."""

    key: str | None = Field(default=None, description="The taint key; empty with Exists: every taint.")
    operator: TolerationOperator | None = Field(default=None, description="Exists or Equal (the default).")
    value: str | None = Field(default=None, description="The taint value (Equal).")
    effect: TaintEffect | None = Field(
        default=None, description="NoSchedule, PreferNoSchedule or NoExecute; empty: every effect."
    )
    toleration_seconds: int | None = Field(
        default=None, description="NoExecute: how long the pod stays bound after the taint appears."
    )
