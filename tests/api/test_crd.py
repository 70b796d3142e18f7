"""The CRD is generated from the models, valid for Kubernetes, structural, and committed current."""

from __future__ import annotations

import copy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from livestrat.api.crd import CRD_FILE, build_crd, render_crd
from tests.support.crd_structural import check_crd, check_schema

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_VERSION = "1.34"


@pytest.fixture(scope="module")
def crd() -> dict:
    return build_crd()


def test_committed_crd_is_what_the_models_generate():
    committed = (ROOT / CRD_FILE).read_text()
    assert committed == render_crd(), "crds/ is stale: run `make crds` and commit the result"


def test_crd_validates_against_the_official_kubernetes_schema(crd):
    kubernetes_validate.validate(crd, KUBERNETES_VERSION, strict=True)


def test_official_schema_check_rejects_a_broken_crd(crd):
    broken = copy.deepcopy(crd)
    broken["spec"]["versions"][0]["subresources"]["scale"]["specReplicasPath"] = 7
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_crd_schema_is_structural(crd):
    assert check_crd(crd) == []


def test_structural_check_finds_untyped_and_referencing_nodes(crd):
    schema = copy.deepcopy(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    del schema["properties"]["spec"]["properties"]["replicas"]["type"]
    schema["properties"]["spec"]["properties"]["mode"]["$ref"] = "#/defs/Mode"
    found = "\n".join(check_schema(schema, status_subresource=True))
    assert "replicas" in found and "type" in found
    assert "$ref" in found


def test_scale_and_status_subresources(crd):
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }
    replicas = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["replicas"]
    assert (replicas["minimum"], replicas["maximum"], replicas["default"]) == (0, 1, 1)


def test_names_and_desk_columns(crd):
    names = crd["spec"]["names"]
    assert (names["plural"], names["singular"], names["shortNames"], names["categories"]) == (
        "livestrategies",
        "livestrategy",
        ["lstrat"],
        ["trading"],
    )
    columns = {c["name"]: c["jsonPath"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}
    for wanted in ("Mode", "Venue", "Phase", "Fills", "PnL", "Risk", "Age"):
        assert wanted in columns
    # every column must point at a field the schema has, or kubectl shows it empty forever
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path in columns.values():
        if path == ".metadata.creationTimestamp":
            continue
        node = schema
        for part in path.strip(".").split("."):
            node = node["properties"][part]
        assert "type" in node, path


def test_defaults_reach_nested_fields(crd):
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    # the API server only defaults inside an object that exists: risk must default to one
    assert spec["risk"]["default"]["maxOrderSubmitRate"] == "100/00:00:01"
    assert spec["risk"]["properties"]["onBreach"]["default"] == "ScaleToZero"
    assert spec["haltPolicy"]["enum"] == ["cancelOrders", "flatten"]
    assert spec["updatePolicy"]["enum"] == ["Auto", "Manual"]


def test_every_cross_field_rule_compiles_as_cel(crd):
    import celpy

    env = celpy.Environment()
    rules = []

    def collect(node):
        rules.extend(r["rule"] for r in node.get("x-kubernetes-validations", []))
        for sub in node.get("properties", {}).values():
            collect(sub)
        if isinstance(node.get("items"), dict):
            collect(node["items"])

    collect(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    assert len(rules) >= 10
    for rule in rules:
        env.compile(rule)


def test_crd_yaml_round_trips():
    assert yaml.safe_load(render_crd()) == build_crd()
