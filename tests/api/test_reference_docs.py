"""docs/api.md is generated from the models and kept current."""

from __future__ import annotations

from pathlib import Path

import pytest

from livestrat.api.crd import build_budget_crd, build_crd
from livestrat.api.reference import REFERENCE_FILE, render_reference

ROOT = Path(__file__).resolve().parents[2]


def test_committed_reference_is_current():
    assert (ROOT / REFERENCE_FILE).read_text() == render_reference(), "run `make docs` and commit docs/api.md"


@pytest.mark.parametrize("build", [build_crd, build_budget_crd], ids=["LiveStrategy", "RiskBudget"])
def test_every_spec_field_is_documented(build):
    text = render_reference()
    spec = build()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]

    def walk(node, path):
        for name, sub in node.get("properties", {}).items():
            assert f"`{path}.{name}`" in text, f"{path}.{name} missing from docs/api.md"
            assert sub.get("description"), f"{path}.{name} has no description"
            walk(sub, f"{path}.{name}")

    walk(spec, "spec")
