"""spec.strategy.code: a strategy's Python files from a ConfigMap or the catalog's volume, checked as the API server
checks them (the CRD's schema and CEL rules, through `livestrat validate`)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from livestrat.api.validation import problems
from tests.support.desk import example


def with_code(code: dict[str, Any] | None, catalog: dict[str, Any] | None = None) -> dict[str, Any]:
    doc = copy.deepcopy(example("paper-ema-cross"))
    doc["spec"]["strategy"]["code"] = code
    if catalog is not None:
        doc["spec"]["data"]["catalog"] = catalog
    return doc


GCS = {"gcsFuse": {"bucket": "acme-data", "path": "catalog"}}


def paths(doc: dict[str, Any]) -> dict[str, str]:
    return {p.path: p.message for p in problems(doc)}


def test_a_paper_strategy_takes_its_code_from_a_configmap():
    assert problems(with_code({"configMap": {"name": "ema-cross-v3"}})) == []


def test_a_strategy_takes_its_code_from_a_directory_of_the_gcs_bucket_its_catalog_comes_from():
    assert problems(with_code({"catalogVolume": {"path": "strategies/ema_cross/v3"}}, GCS)) == []


@pytest.mark.parametrize(
    "code",
    [{}, {"configMap": {"name": "ema"}, "catalogVolume": {"path": "strategies"}}],
    ids=["no source", "two sources"],
)
def test_the_code_names_exactly_one_source(code):
    found = paths(with_code(code, GCS))
    assert "set exactly one code source: configMap or catalogVolume" in found["spec.strategy.code"]


@pytest.mark.parametrize("path", ["../secrets", "strategies/../../etc", "/strategies", "strategies/", ".hidden"])
def test_the_code_directory_stays_inside_the_volume(path):
    found = paths(with_code({"catalogVolume": {"path": path}}, GCS))
    assert "spec.strategy.code.catalogVolume.path" in found, found


def test_code_from_the_catalogs_volume_needs_a_volume_that_holds_something():
    found = paths(with_code({"catalogVolume": {"path": "strategies"}}, {"emptyDir": {}}))
    assert "an emptyDir catalog starts empty" in found["spec.strategy.code.catalogVolume"]


def test_a_misspelt_configmap_field_is_refused_rather_than_ignored():
    found = paths(with_code({"configMap": {"nam": "ema"}}))
    assert "unknown field" in found["spec.strategy.code.configMap.nam"]
