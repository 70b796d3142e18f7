"""spec.pod's scheduling fields mirror Kubernetes' own types, field for field, and reach the pod template.

``livestrat/api/scheduling.py`` models Affinity and Toleration in pydantic (the CRD is generated
from the models, and the package cannot depend on a test library's schemas); this test holds the
models to the official OpenAPI definitions bundled in kubernetes-validate, so a field Kubernetes
adds or a requirement it has shows up here, not as a pod the API server refuses.
"""

from __future__ import annotations

import copy
import functools
import glob
import json
import os

import kubernetes_validate
import pytest
from pydantic import BaseModel

from livestrat.api import scheduling
from livestrat.api.validation import InvalidManifest, parse
from strategy_operator.build.manifests import build_statefulset
from strategy_operator.settings import OperatorSettings
from tests.support.desk import example
from tests.support.k8s_schemas import K8S_VERSION, manifest_errors

CORE, META = "io.k8s.api.core.v1.", "io.k8s.apimachinery.pkg.apis.meta.v1."
MIRRORS: dict[type[BaseModel], str] = {
    scheduling.Affinity: CORE + "Affinity",
    scheduling.NodeAffinity: CORE + "NodeAffinity",
    scheduling.PodAffinity: CORE + "PodAffinity",
    scheduling.PodAntiAffinity: CORE + "PodAntiAffinity",
    scheduling.NodeSelector: CORE + "NodeSelector",
    scheduling.NodeSelectorTerm: CORE + "NodeSelectorTerm",
    scheduling.NodeSelectorRequirement: CORE + "NodeSelectorRequirement",
    scheduling.PreferredSchedulingTerm: CORE + "PreferredSchedulingTerm",
    scheduling.PodAffinityTerm: CORE + "PodAffinityTerm",
    scheduling.WeightedPodAffinityTerm: CORE + "WeightedPodAffinityTerm",
    scheduling.Toleration: CORE + "Toleration",
    scheduling.LabelSelector: META + "LabelSelector",
    scheduling.LabelSelectorRequirement: META + "LabelSelectorRequirement",
}
SCHEDULED = {
    "priorityClassName": "trading-critical",
    "nodeSelector": {"cloud.google.com/gke-spot": "false", "pool": "trading"},
    "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "trading", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
    ],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "cpu", "operator": "Gt", "values": ["8"]}]}}
            ],
        },
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "topologyKey": "kubernetes.io/hostname",
                    "labelSelector": {"matchExpressions": [{"key": "livestrat.io/strategy", "operator": "Exists"}]},
                }
            ]
        },
    },
}


@functools.cache
def definitions() -> dict:
    base = os.path.dirname(kubernetes_validate.__file__)
    [path] = glob.glob(f"{base}/kubernetes-json-schema/v{K8S_VERSION}.0-local/_definitions.json")
    with open(path) as f:
        return json.load(f)["$defs"]


@pytest.mark.parametrize("model", list(MIRRORS), ids=lambda m: m.__name__)
def test_each_model_has_exactly_the_fields_and_requirements_of_its_kubernetes_type(model):
    official = definitions()[MIRRORS[model]]
    fields = {str(f.alias): f for f in model.model_fields.values()}
    assert set(fields) == set(official["properties"]), model.__name__
    required = {alias for alias, f in fields.items() if f.is_required()}
    assert required == set(official.get("required") or []), model.__name__


def manifest(**pod) -> dict:
    doc = copy.deepcopy(example("paper-ema-cross"))
    doc["metadata"]["namespace"] = "desk"
    doc["spec"]["pod"] = pod
    return doc


def test_the_scheduling_fields_reach_the_pod_template_as_written_and_validate_as_kubernetes_does():
    sts = build_statefulset(parse(manifest(**SCHEDULED), source="test"), OperatorSettings(), replicas=1)
    pod = sts["spec"]["template"]["spec"]
    for field, value in SCHEDULED.items():
        assert pod[field] == value, field
    assert manifest_errors(sts, strict=True) == []


@pytest.mark.parametrize(
    ("pod", "where"),
    [
        ({"tolerations": [{"key": "k", "operator": "Maybe"}]}, "spec.pod.tolerations[0].operator"),
        ({"tolerations": [{"key": "k", "effect": "NoRun"}]}, "spec.pod.tolerations[0].effect"),
        ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}}, "nodeSelectorTerms"),
        ({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{}]}}}, "topologyKey"),
        ({"affinity": {"nodeAfinity": {}}}, "spec.pod.affinity.nodeAfinity"),
        ({"priorityClassName": "Not_A_Name"}, "spec.pod.priorityClassName"),
    ],
)
def test_a_scheduling_field_kubernetes_would_refuse_is_refused_with_its_path(pod, where):
    with pytest.raises(InvalidManifest) as refused:
        parse(manifest(**pod), source="test")
    assert where in str(refused.value)
