"""The CRDs (LiveStrategy, RiskBudget) are generated from the models, valid for Kubernetes, structural,
and committed current."""

from __future__ import annotations

import copy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from livestrat.api.crd import (
    BUDGET_CRD_FILE,
    CRD_FILE,
    build_budget_crd,
    build_crd,
    render_all,
    render_budget_crd,
    render_crd,
)
from tests.support.crd_structural import check_crd, check_schema

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_VERSION = "1.34"


# Each CRD: its committed file, how it renders, how it builds.
EVERY_CRD = {
    "livestrategies": (CRD_FILE, render_crd, build_crd),
    "riskbudgets": (BUDGET_CRD_FILE, render_budget_crd, build_budget_crd),
}


@pytest.fixture(scope="module")
def crd() -> dict:
    return build_crd()


@pytest.fixture(scope="module", params=list(EVERY_CRD))
def each_crd(request) -> dict:
    return EVERY_CRD[request.param][2]()


@pytest.mark.parametrize("plural", list(EVERY_CRD))
def test_committed_crd_is_what_the_models_generate(plural):
    path, render, _build = EVERY_CRD[plural]
    assert (ROOT / path).read_text() == render(), "crds/ is stale: run `make crds` and commit the result"


def test_livestrat_crd_prints_every_crd():
    documents = list(yaml.safe_load_all(render_all()))
    assert documents == [build() for _path, _render, build in EVERY_CRD.values()]


def test_crd_validates_against_the_official_kubernetes_schema(each_crd):
    kubernetes_validate.validate(each_crd, KUBERNETES_VERSION, strict=True)


def test_official_schema_check_rejects_a_broken_crd(crd):
    broken = copy.deepcopy(crd)
    broken["spec"]["versions"][0]["subresources"]["scale"]["specReplicasPath"] = 7
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_crd_schema_is_structural(each_crd):
    assert check_crd(each_crd) == []


def test_structural_check_finds_an_untyped_budget_node():
    crd = build_budget_crd()
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    del schema["properties"]["spec"]["properties"]["limits"]["properties"]["maxDailyLoss"]["type"]
    assert "maxDailyLoss" in "\n".join(check_crd(crd))


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


def test_the_fleet_view_names_and_columns():
    crd = build_budget_crd()
    names = crd["spec"]["names"]
    assert (names["kind"], names["plural"], names["singular"], names["categories"]) == (
        "RiskBudget",
        "riskbudgets",
        "riskbudget",
        ["trading"],
    )
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}
    always = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"] if not c.get("priority")]
    assert always == ["Members", "Exposure", "Daily PnL", "Used", "State", "Age"]


def test_every_column_points_at_a_typed_field(each_crd):
    """A column whose path the schema lacks stays empty forever in kubectl."""
    schema = each_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for column in each_crd["spec"]["versions"][0]["additionalPrinterColumns"]:
        if column["jsonPath"] == ".metadata.creationTimestamp":
            continue
        node = schema
        for part in column["jsonPath"].strip(".").split("."):
            node = node["properties"][part]
        assert node["type"] == {"date": "string"}.get(column["type"], column["type"]), column


def test_defaults_reach_nested_fields(crd):
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    # the API server only defaults inside an object that exists: risk must default to one
    assert spec["risk"]["default"]["maxOrderSubmitRate"] == "100/00:00:01"
    assert spec["risk"]["properties"]["onBreach"]["default"] == "ScaleToZero"
    assert spec["haltPolicy"]["enum"] == ["cancelOrders", "flatten"]
    assert spec["updatePolicy"]["enum"] == ["Auto", "Manual"]


@pytest.mark.parametrize(("plural", "at_least"), [("livestrategies", 10), ("riskbudgets", 6)])
def test_every_cross_field_rule_compiles_as_cel(plural, at_least):
    crd = EVERY_CRD[plural][2]()
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
    assert len(rules) >= at_least
    for rule in rules:
        env.compile(rule)


@pytest.mark.parametrize("plural", list(EVERY_CRD))
def test_crd_yaml_round_trips(plural):
    _path, render, build = EVERY_CRD[plural]
    assert yaml.safe_load(render()) == build()
