"""docs/api.md is generated from the models and kept current."""

from __future__ import annotations

from pathlib import Path

from livestrat.api.crd import build_crd
from livestrat.api.reference import REFERENCE_FILE, render_reference

ROOT = Path(__file__).resolve().parents[2]


def test_committed_reference_is_current():
    assert (ROOT / REFERENCE_FILE).read_text() == render_reference(), "run `make docs` and commit docs/api.md"


def test_every_spec_field_is_documented():
    text = render_reference()
    spec = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]

    def walk(node, path):
        for name, sub in node.get("properties", {}).items():
            assert f"`{path}.{name}`" in text, f"{path}.{name} missing from docs/api.md"
            assert sub.get("description"), f"{path}.{name} has no description"
            walk(sub, f"{path}.{name}")

    walk(spec, "spec")
