"""Version skew across the pod boundary: the operator writes ``runtime.json``, a runtime image of another
version may read it (``spec.pod.image`` pinned, ``LIVESTRAT_RUNTIME_IMAGE`` held back, an operator upgraded
while its pods run).

The decision (docs/runtime.md, "A configuration written by another version"): within ``v1alpha1`` a field is
added only with a default that keeps the behaviour from before it, and the operator writes no field at its
default. So a runtime older than the operator reads every configuration that uses nothing it lacks, and a
runtime newer than the operator reads what an older operator left out as its default. A field the runtime does
not know is refused (exit 2, naming it), never ignored: it may be a limit that runtime cannot enforce.
"""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from livestrat.api.resource import LiveStrategy
from livestrat.api.runtime_config import CONFIG_FILE_NAME, RuntimeConfig
from strategy_operator.build.configuration import config_hash, spec_hash
from strategy_operator.build.manifests import build_configmap, build_pod_template
from strategy_operator.decide.drift import changed_fields
from strategy_operator.settings import OperatorSettings
from strategy_runtime.entrypoint import run_pod
from strategy_runtime.runtime import EXIT_INVALID
from tests.support.desk import example

EXAMPLES = ("paper-ema-cross", "gcs-fuse-catalog", "halted", "live-binance-testnet", "live-deribit-testnet")
SETTINGS = OperatorSettings(
    live_namespaces=["desk"], default_ledger_secret="ledger-dsn", default_gcs_bucket="market-data"
)


def strategy(name: str) -> LiveStrategy:
    doc = example(name)
    doc["metadata"].update(namespace="desk", uid="uid-1", generation=4)
    return LiveStrategy.model_validate(doc)


def written(name: str) -> dict[str, Any]:
    """``runtime.json`` as this operator writes it for an example."""
    return json.loads(build_configmap(strategy(name), SETTINGS)["data"][CONFIG_FILE_NAME])


def every_default(name: str) -> dict[str, Any]:
    """``runtime.json`` with every default written out, as operators before this decision wrote it."""
    return RuntimeConfig.model_validate(written(name)).model_dump(mode="json", by_alias=True, exclude_none=True)


def paths(document: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every key of a document, nested ones too (not inside lists)."""
    for key, value in document.items():
        yield (*prefix, key)
        if isinstance(value, dict):
            yield from paths(value, (*prefix, key))


def without(document: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    trimmed = copy.deepcopy(document)
    parent = trimmed
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return trimmed


def reads_the_same(document: dict[str, Any], reference: RuntimeConfig) -> bool:
    try:
        return RuntimeConfig.model_validate(document) == reference
    except ValidationError:
        return False


@pytest.mark.parametrize("name", EXAMPLES)
def test_this_operator_writes_no_field_at_its_default_so_an_older_runtime_reads_it(name):
    # A field a runtime may not know yet is one added with a default: written only when a strategy uses it.
    document = written(name)
    config = RuntimeConfig.model_validate(document)
    at_default = [".".join(path) for path in paths(document) if reads_the_same(without(document, path), config)]
    assert at_default == [], f"written although a runtime without them reads the same: {at_default}"


@pytest.mark.parametrize("name", EXAMPLES)
def test_a_runtime_newer_than_the_operator_reads_what_an_older_operator_left_out_as_its_default(name):
    full = every_default(name)
    config = RuntimeConfig.model_validate(full)
    assert RuntimeConfig.model_validate(written(name)) == config
    defaulted = [path for path in paths(full) if reads_the_same(without(full, path), config)]
    assert ("httpPort",) in defaulted and ("spec", "risk", "onBreach") in defaulted
    for path in defaulted:  # a configuration from before any one of them still reads, as the same
        assert reads_the_same(without(full, path), config), path


def test_a_field_the_runtime_does_not_know_is_refused_at_start_naming_it(tmp_path, capsys):
    document = written("paper-ema-cross")
    document["spec"]["risk"]["maxGrossExposure"] = 50_000  # what a newer operator writes for a newer runtime
    path = tmp_path / CONFIG_FILE_NAME
    path.write_text(json.dumps(document))
    assert run_pod(argparse.Namespace(config=str(path))) == EXIT_INVALID
    refused = capsys.readouterr().err
    assert "spec.risk.maxGrossExposure" in refused, refused
    assert "this runtime does not know the field" in refused and "newer operator" in refused, refused
    assert "50000" not in refused  # never the value


@pytest.mark.parametrize("name", EXAMPLES)
def test_an_operator_upgrade_to_the_compact_form_changes_no_hash_and_shows_no_drift(name):
    # A pod an older operator started (its runtime.json with every default) is what this one would build.
    template = build_pod_template(strategy(name), SETTINGS)
    compact, full = written(name), every_default(name)
    assert config_hash(compact, template) == config_hash(full, template)
    assert spec_hash(compact, None) == spec_hash(full, None)
    assert changed_fields(full, compact) == [] and changed_fields(compact, full) == []
