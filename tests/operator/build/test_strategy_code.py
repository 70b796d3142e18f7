"""spec.strategy.code in the pod the operator builds: the ConfigMap or the catalog's directory mounted read-only where
runtime.json says, and live strategies only from the code sources the operator's settings allow."""

from __future__ import annotations

import copy
import json

import pytest

from livestrat.api.runtime_config import CODE_MOUNT_DIR, CONFIG_FILE_NAME
from strategy_operator.build import labels
from strategy_operator.build.manifests import build_children, build_configmap, build_statefulset
from strategy_operator.build.policy import spec_problems
from strategy_operator.settings import OperatorSettings
from tests.operator.build.test_manifests import SETTINGS, strategy
from tests.support.desk import example
from tests.support.k8s_schemas import manifest_errors
from tests.support.pss import check_manifest

GCS = {"gcsFuse": {"bucket": "acme-data", "path": "catalog"}}
PVC = {"persistentVolumeClaim": {"claimName": "market-data", "path": "catalogs/binance", "readOnly": False}}


def with_code(code: dict | None, catalog: dict | None = None, name: str = "paper-ema-cross") -> dict:
    doc = copy.deepcopy(example(name))
    if code is not None:
        doc["spec"]["strategy"]["code"] = code
    if catalog is not None:
        doc["spec"]["data"]["catalog"] = catalog
    return doc


def pod_of(doc: dict, settings: OperatorSettings = SETTINGS) -> dict:
    return build_statefulset(strategy(doc), settings, replicas=1)["spec"]["template"]["spec"]


def runtime_json(doc: dict) -> dict:
    return json.loads(build_configmap(strategy(doc), SETTINGS)["data"][CONFIG_FILE_NAME])


def test_code_from_a_configmap_is_its_volume_mounted_read_only_where_runtime_json_says():
    doc = with_code({"configMap": {"name": "ema-cross-v3"}})
    pod = pod_of(doc)
    volumes = {v["name"]: v for v in pod["volumes"]}
    # not optional: without the ConfigMap the pod waits (FailedMount) rather than start without its code
    assert volumes["code"] == {
        "name": "code",
        "configMap": {"name": "ema-cross-v3", "optional": False, "defaultMode": 0o444},
    }
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == CODE_MOUNT_DIR]
    assert mount == {"name": "code", "mountPath": CODE_MOUNT_DIR, "readOnly": True}
    assert runtime_json(doc)["codePath"] == CODE_MOUNT_DIR


@pytest.mark.parametrize(("catalog", "catalog_mount_read_only"), [(GCS, True), (PVC, False)], ids=["gcsFuse", "pvc"])
def test_code_from_the_catalogs_volume_mounts_its_directory_read_only(catalog, catalog_mount_read_only):
    doc = with_code({"catalogVolume": {"path": "strategies/ema/v3"}}, catalog)
    pod = pod_of(doc)
    assert "code" not in {v["name"] for v in pod["volumes"]}  # the catalog's own volume, mounted twice
    mounts = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "catalog"]
    catalog_mount, code_mount = mounts
    assert catalog_mount.get("readOnly") is catalog_mount_read_only
    assert code_mount == {
        "name": "catalog",
        "mountPath": CODE_MOUNT_DIR,
        "subPath": "strategies/ema/v3",
        "readOnly": True,
    }
    assert runtime_json(doc)["codePath"] == CODE_MOUNT_DIR


@pytest.mark.parametrize(
    "doc",
    [with_code({"configMap": {"name": "ema-cross-v3"}}), with_code({"catalogVolume": {"path": "strategies"}}, GCS)],
    ids=["configMap", "catalogVolume"],
)
def test_pods_with_shipped_code_are_valid_and_restricted(doc):
    for child in build_children(strategy(doc), SETTINGS, replicas=1):
        assert manifest_errors(child) == [], child["kind"]
    assert check_manifest(build_statefulset(strategy(doc), SETTINGS, replicas=1)) == []


def test_code_from_the_image_adds_nothing_to_the_pod_or_its_configuration():
    doc = with_code(None)
    assert "codePath" not in runtime_json(doc)
    assert CODE_MOUNT_DIR not in {m["mountPath"] for m in pod_of(doc)["containers"][0]["volumeMounts"]}


def test_naming_another_configmap_is_a_change_of_the_strategys_spec():
    # so it follows spec.updatePolicy as every spec change does: Auto restarts the pod, Manual reports ConfigDrift
    def spec_hash(doc: dict) -> str:
        template = build_statefulset(strategy(doc), SETTINGS, replicas=1)["spec"]["template"]
        return template["metadata"]["annotations"][labels.SPEC_HASH_ANNOTATION]

    v3, v4 = with_code({"configMap": {"name": "ema-cross-v3"}}), with_code({"configMap": {"name": "ema-cross-v4"}})
    assert spec_hash(v3) != spec_hash(v4)
    assert spec_hash(v3) != spec_hash(with_code(None))


LIVE_SETTINGS = {"live_namespaces": ["desk"], "default_ledger_secret": "dsn"}


@pytest.mark.parametrize(
    ("code", "field"),
    [
        ({"configMap": {"name": "ema-v3"}}, "spec.strategy.code.configMap"),
        ({"catalogVolume": {"path": "s"}}, "spec.strategy.code.catalogVolume"),
    ],
    ids=["configMap", "catalogVolume"],
)
def test_a_live_strategy_takes_code_only_from_sources_the_operator_allows(code, field):
    doc = with_code(code, GCS, name="live-binance-testnet")
    [problem] = spec_problems(strategy(doc), OperatorSettings(**LIVE_SETTINGS))
    assert problem.reason == "CodeSourceNotAllowed"
    # the field, what is allowed and the setting to change
    assert field in problem.message and "only from: image" in problem.message
    assert "LIVESTRAT_LIVE_CODE_SOURCES" in problem.message and "liveTrading.codeSources" in problem.message
    allowing = OperatorSettings.from_env(
        {
            "LIVESTRAT_LIVE_NAMESPACES": "desk",
            "LIVESTRAT_DEFAULT_LEDGER_SECRET": "dsn",
            "LIVESTRAT_LIVE_CODE_SOURCES": "image,configMap,catalogVolume",
        }
    )
    assert spec_problems(strategy(doc), allowing) == []


def test_paper_strategies_take_code_from_any_source_and_live_ones_from_the_image_by_default():
    paper = with_code({"configMap": {"name": "ema-v3"}})
    assert spec_problems(strategy(paper), OperatorSettings()) == []
    live = with_code(None, name="live-binance-testnet")
    assert spec_problems(strategy(live), OperatorSettings(**LIVE_SETTINGS)) == []
    only_configmaps = OperatorSettings(**LIVE_SETTINGS, live_code_sources=["configMap"])
    assert [p.reason for p in spec_problems(strategy(live), only_configmaps)] == ["CodeSourceNotAllowed"]
