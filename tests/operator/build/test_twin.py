"""The paper twin's manifest: the live strategy's spec in paper mode, owned by it, valid as the API server checks it."""

from __future__ import annotations

import copy

from livestrat.api.contract import TWIN_OF_LABEL
from livestrat.api.validation import problems
from strategy_operator.build.configuration import render_runtime_config
from strategy_operator.build.twin import build_twin
from strategy_operator.settings import OperatorSettings
from tests.operator.build.test_manifests import strategy
from tests.support.desk import example

UID = "0b7a1c2e-0000-4000-8000-000000000001"


def live_with_twin() -> dict:
    doc = example("live-binance-testnet")
    doc["spec"]["twin"] = {"startingBalances": ["10000 USDT"]}
    return doc


def test_the_twin_is_the_live_spec_in_paper_mode_without_credentials():
    live = live_with_twin()
    twin = build_twin(strategy(copy.deepcopy(live), uid=UID))
    assert twin is not None
    spec, live_spec = twin["spec"], live["spec"]
    assert twin["metadata"]["name"] == "ema-cross-binance-testnet-twin"
    assert twin["metadata"]["namespace"] == "desk"
    assert twin["metadata"]["labels"][TWIN_OF_LABEL] == "ema-cross-binance-testnet"
    assert spec["mode"] == "paper"
    assert "credentialsSecret" not in spec["venue"] and "twin" not in spec and "promotion" not in spec
    assert spec["venue"]["startingBalances"] == ["10000 USDT"]
    for field in ("adapter", "accountType", "testnet"):
        assert spec["venue"][field] == live_spec["venue"][field]
    for field in ("strategy", "instruments", "data", "haltPolicy", "updatePolicy", "replicas", "ledger"):
        assert spec[field] == live_spec[field], field
    assert {k: v for k, v in spec["risk"].items() if k in live_spec["risk"]} == live_spec["risk"]


def test_the_twin_passes_the_crd_as_the_api_server_checks_it():
    twin = build_twin(strategy(live_with_twin(), uid=UID))
    assert twin is not None
    assert problems(twin) == []


def test_the_live_strategy_owns_its_twin_as_its_controller():
    twin = build_twin(strategy(live_with_twin(), uid=UID))
    assert twin is not None
    [owner] = twin["metadata"]["ownerReferences"]
    assert owner["uid"] == UID and owner["kind"] == "LiveStrategy" and owner["name"] == "ema-cross-binance-testnet"
    assert owner["controller"] is True and owner["blockOwnerDeletion"] is True


def test_no_twin_without_spec_twin_or_before_the_live_strategy_is_stored():
    assert build_twin(strategy(example("live-binance-testnet"), uid=UID)) is None
    assert build_twin(strategy(live_with_twin(), uid="")) is None


def test_asking_for_a_twin_does_not_change_the_live_pod_configuration():
    settings = OperatorSettings()
    without = render_runtime_config(strategy(example("live-binance-testnet"), uid=UID), settings)
    with_twin = render_runtime_config(strategy(live_with_twin(), uid=UID), settings)
    assert with_twin.model_dump(mode="json", by_alias=True, exclude_none=True) == without.model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
