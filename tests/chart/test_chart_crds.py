"""The chart installs the same LiveStrategy and RiskBudget CRDs that `livestrat crd` generates, plus kopf's
peering CRDs, all from the chart's crds/ directory (installed by `helm install`, upgraded
by `kubectl apply --server-side`, never deleted by Helm: docs/install.md)."""

from __future__ import annotations

import pytest
import yaml

from tests.support.crd_structural import check_crd
from tests.support.helm import CHART, ROOT, helm
from tests.support.k8s_schemas import manifest_errors

CHART_CRDS = CHART / "crds"


@pytest.mark.parametrize("name", ["livestrategies.livestrat.io.yaml", "riskbudgets.livestrat.io.yaml"])
def test_chart_crd_is_byte_identical_to_the_generated_one(name):
    generated = ROOT / "crds" / name
    assert (CHART_CRDS / generated.name).read_bytes() == generated.read_bytes(), (
        "the chart's CRD differs from crds/: run `make crds`"
    )


def test_chart_ships_only_livestrats_and_kopf_peering_crds():
    names = {
        doc["metadata"]["name"]
        for path in CHART_CRDS.glob("*.yaml")
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    }
    assert names == {
        "livestrategies.livestrat.io",
        "riskbudgets.livestrat.io",
        "kopfpeerings.kopf.dev",
        "clusterkopfpeerings.kopf.dev",
    }


def test_every_chart_crd_is_valid_and_structural():
    for path in CHART_CRDS.glob("*.yaml"):
        for crd in filter(None, yaml.safe_load_all(path.read_text())):
            assert manifest_errors(crd, "1.34", strict=True) == [], crd["metadata"]["name"]
            assert check_crd(crd) == [], crd["metadata"]["name"]


@pytest.mark.slow  # runs a process: the slow tier (tests/support/tiers.py)
def test_helm_renders_the_crds_only_when_asked():
    plain = helm("template", "livestrat-operator", str(CHART))
    with_crds = helm("template", "livestrat-operator", str(CHART), "--include-crds")
    assert "kind: CustomResourceDefinition" not in plain.stdout
    assert with_crds.stdout.count("kind: CustomResourceDefinition") == 4
