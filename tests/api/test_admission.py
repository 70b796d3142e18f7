"""A misspelt LiveStrategy field is an admission error for every client, never a setting that silently is not there.

A real API server prunes an unknown field for a client that does not ask for strict field validation (its default
is Warn; GitOps controllers and client libraries often do not ask): ``maxDrawdwn: 500`` would be stored as a
strategy with no drawdown limit. The CRD keeps the spec's undeclared fields for the admission policy
(livestrat/api/admission.py), which refuses them, naming the field, whatever the client asked for.
"""

from __future__ import annotations

import copy

import aiohttp
import pytest

from livestrat.api.admission import budget_policy, object_nodes, policy
from livestrat.api.crd import budget_openapi_schema, openapi_schema
from livestrat.api.resource import LiveStrategy
from livestrat.kube_emulator.admission_policy import denial
from livestrat.kube_emulator.emulator import ADMIN_HEADERS
from tests.support.desk import example
from tests.support.kube import LIVESTRATEGIES

NODES = list(object_nodes(openapi_schema()["properties"]["spec"]))


def with_field(doc: dict, path: tuple[str, ...], key: str, value: object) -> dict:
    doc = copy.deepcopy(doc)
    node = doc
    for part in path:
        node = node.setdefault(part, {})
    node[key] = value
    return doc


def refused(obj: dict, old: dict | None = None) -> str | None:
    found = denial(
        *([document] for document in policy()),
        group="livestrat.io",
        version="v1alpha1",
        resource="livestrategies",
        operation="UPDATE" if old is not None else "CREATE",
        obj=obj,
        old=old,
    )
    return found.message if found is not None else None


def test_the_policy_knows_every_object_of_the_spec_and_every_field_the_models_have():
    names = [".".join(path) for path, _ in NODES]
    assert names[:2] == ["spec", "spec.strategy"]
    assert {"spec.strategy.code", "spec.strategy.code.configMap", "spec.strategy.code.catalogVolume"} < set(names)
    assert "spec.venue" in names
    spec_fields = {str(f.alias) for f in LiveStrategy.model_fields["spec"].annotation.model_fields.values()}
    assert dict(NODES)[("spec",)] == sorted(spec_fields, key=dict(NODES)[("spec",)].index)
    for example_name in ("paper-ema-cross", "live-binance-testnet", "gcs-fuse-catalog"):
        assert refused(example(example_name)) is None, example_name


@pytest.mark.parametrize("path", [path for path, _ in NODES], ids=lambda path: ".".join(path))
def test_an_undeclared_field_is_refused_at_every_level_naming_it(path):
    typo = with_field(example("paper-ema-cross"), path, "maxDrawdwn", 500)
    message = refused(typo)
    assert message is not None and f"{'.'.join(path)}.maxDrawdwn: unknown field" in message, message
    # an update that adds it is refused too; one that keeps what the object already holds is not
    assert refused(typo, old=example("paper-ema-cross")) is not None
    assert refused(with_field(typo, ("spec",), "replicas", 0), old=typo) is None


async def test_a_misspelt_limit_is_refused_for_every_client(emulator):
    doc = example("paper-ema-cross")
    typo = with_field(doc, ("spec", "risk"), "maxDrawdwn", 500)
    url = f"{str(emulator.url).rstrip('/')}/apis/livestrat.io/v1alpha1/namespaces/default/livestrategies"
    async with aiohttp.ClientSession(headers=ADMIN_HEADERS) as http:
        for level in (None, "Ignore", "Warn", "Strict"):  # a GitOps controller, a client library, kubectl
            params = {"fieldValidation": level} if level else {}
            async with http.post(url, params=params, json=typo) as answer:
                assert answer.status == 422, (level, answer.status, await answer.text())
                assert "spec.risk.maxDrawdwn: unknown field" in (await answer.json())["message"]
        assert emulator.read_object(LIVESTRATEGIES, doc["metadata"]["name"], namespace="default") is None
        async with http.post(url, json=doc) as answer:
            assert answer.status == 201
        name = doc["metadata"]["name"]
        merge = {"Content-Type": "application/merge-patch+json"}
        async with http.patch(f"{url}/{name}", json={"spec": {"risk": {"maxDrawdwn": 500}}}, headers=merge) as answer:
            assert answer.status == 422 and "spec.risk.maxDrawdwn" in (await answer.json())["message"]
        assert "maxDrawdwn" not in emulator.read_object(LIVESTRATEGIES, name, namespace="default")["spec"]["risk"]

        # What an object already holds (stored under an older CRD, or past validation) never blocks a halt.
        emulator.store_unchecked(LIVESTRATEGIES, typo, namespace="default")
        async with http.patch(f"{url}/{name}", json={"spec": {"replicas": 0}}, headers=merge) as answer:
            assert answer.status == 200, await answer.text()
    assert emulator.read_object(LIVESTRATEGIES, name, namespace="default")["spec"]["replicas"] == 0


BUDGET = {
    "apiVersion": "livestrat.io/v1alpha1",
    "kind": "RiskBudget",
    "metadata": {"name": "account"},
    "spec": {"members": ["ema-cross-btc"], "currency": "USDT", "limits": {"maxDailyLoss": 1000.0}},
}


@pytest.mark.parametrize(
    "path", [path for path, _ in object_nodes(budget_openapi_schema()["properties"]["spec"])], ids=".".join
)
def test_an_undeclared_budget_field_is_refused_at_every_level_naming_it(path):
    typo = with_field(BUDGET, path, "maxDailyLose", 500)
    found = denial(
        *([document] for document in budget_policy()),
        group="livestrat.io",
        version="v1alpha1",
        resource="riskbudgets",
        operation="CREATE",
        obj=typo,
        old=None,
    )
    assert found is not None and f"{'.'.join(path)}.maxDailyLose: unknown field" in found.message


async def test_a_misspelt_budget_limit_is_refused_for_every_client(emulator):
    typo = with_field(BUDGET, ("spec", "limits"), "maxDailyLose", 500)
    url = f"{str(emulator.url).rstrip('/')}/apis/livestrat.io/v1alpha1/namespaces/default/riskbudgets"
    async with aiohttp.ClientSession(headers=ADMIN_HEADERS) as http:
        for level in (None, "Ignore", "Warn", "Strict"):
            params = {"fieldValidation": level} if level else {}
            async with http.post(url, params=params, json=typo) as answer:
                assert answer.status == 422, (level, answer.status, await answer.text())
                assert "spec.limits.maxDailyLose: unknown field" in (await answer.json())["message"]
        async with http.post(url, json=BUDGET) as answer:
            assert answer.status == 201, await answer.text()
