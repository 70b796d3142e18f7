"""The chart, the operator and the images fit together: the strategy pod the operator builds,
from settings exactly as the chart sets them, is the pod the chart's NetworkPolicy and
monitors select, listens where they look, and runs the runtime image as its user."""

from __future__ import annotations

import re

import pytest
import yaml

from livestrat.api.contract import STRATEGY_LABEL
from livestrat.api.resource import LiveStrategy
from livestrat.api.runtime_config import HTTP_PORT
from livestrat.kube_emulator.rbac import Grants, Request, triples
from strategy_operator.build import manifests
from strategy_operator.settings import OperatorSettings
from tests.support.helm import (
    RELEASE,
    RELEASE_NAMESPACE,
    ROOT,
    SITE_OVERRIDES,
    find,
    only,
    operator_environ,
    render,
)

EXAMPLE = ROOT / "examples" / "paper-ema-cross.yaml"


@pytest.fixture(scope="module")
def prod() -> list[dict]:
    return render("prod", {"monitoring.kind": "PodMonitor"})


@pytest.fixture(scope="module")
def strategy_objects(prod) -> dict[str, dict]:
    """The paper example's children, built by the operator with the prod release's settings."""
    settings = OperatorSettings.from_env(operator_environ(prod))
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"].update(namespace="trading-paper", uid="00000000-0000-0000-0000-000000000001")
    strategy = LiveStrategy.from_manifest(doc)
    built = manifests.build_children(strategy, settings, replicas=1)
    return {d["kind"]: d for d in built}


def matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


@pytest.mark.slow  # runs a process: the slow tier (tests/support/tiers.py)
def test_the_charts_default_runtime_image_is_the_operators_own_default():
    # The chart always passes its image; the operator's default serves whoever runs it without.
    assert operator_environ(render())["LIVESTRAT_RUNTIME_IMAGE"] == OperatorSettings().runtime_image


def test_network_policy_selects_the_strategy_pod_and_opens_its_metrics_port(prod, strategy_objects):
    template = strategy_objects["StatefulSet"]["spec"]["template"]
    ports = {p["name"]: p["containerPort"] for p in template["spec"]["containers"][0]["ports"]}
    for policy in find(prod, "NetworkPolicy"):
        assert matches(policy["spec"]["podSelector"], template["metadata"]["labels"])
        (ingress,) = policy["spec"]["ingress"]
        assert [p["port"] for p in ingress["ports"]] == ["http"]
    assert ports["http"] == HTTP_PORT


def test_the_operator_pods_are_not_strategy_pods(prod):
    # The NetworkPolicy and the strategy monitor must not catch the operator itself.
    policy = find(prod, "NetworkPolicy")[0]
    operator_labels = only(prod, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    assert not matches(policy["spec"]["podSelector"], operator_labels)


def test_pod_monitor_scrapes_the_strategy_pod_port(prod, strategy_objects):
    monitor = next(m for m in find(prod, "PodMonitor") if m["metadata"]["name"].endswith("-strategies"))
    template = strategy_objects["StatefulSet"]["spec"]["template"]
    assert matches(monitor["spec"]["selector"], template["metadata"]["labels"])
    container_ports = {p["name"] for p in template["spec"]["containers"][0]["ports"]}
    assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} <= container_ports
    relabel = monitor["spec"]["podMetricsEndpoints"][0]["relabelings"][1]
    label = re.sub(r"[^a-zA-Z0-9]", "_", STRATEGY_LABEL)
    assert relabel["sourceLabels"] == [f"__meta_kubernetes_pod_label_{label}"]
    assert template["metadata"]["labels"][STRATEGY_LABEL] == "ema-cross-btc"


@pytest.mark.slow  # runs a process: the slow tier (tests/support/tiers.py)
def test_strategy_pods_are_scraped_by_a_pod_monitor_also_when_the_operator_is_by_a_service_monitor(strategy_objects):
    # Strategies have no Service (issue 15): a ServiceMonitor would find nothing to scrape.
    assert "Service" not in strategy_objects
    docs = render("prod", {"monitoring.kind": "ServiceMonitor"})
    assert not [m for m in find(docs, "ServiceMonitor") if m["metadata"]["name"].endswith("-strategies")]
    monitor = next(m for m in find(docs, "PodMonitor") if m["metadata"]["name"].endswith("-strategies"))
    template = strategy_objects["StatefulSet"]["spec"]["template"]
    assert matches(monitor["spec"]["selector"], template["metadata"]["labels"])
    ports = {p["name"] for p in template["spec"]["containers"][0]["ports"]}
    assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} <= ports


def test_strategy_pod_runs_the_charts_runtime_image_as_the_images_user(prod, strategy_objects):
    settings = OperatorSettings.from_env(operator_environ(prod))
    pod = strategy_objects["StatefulSet"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    pinned = "registry.example.com/livestrat/livestrat-runtime@" + SITE_OVERRIDES["prod"]["runtime.image.digest"]
    assert container["image"] == settings.runtime_image == pinned
    dockerfile = (ROOT / "Dockerfile").read_text()
    runtime_stage = dockerfile.split("AS runtime", 1)[1]
    uid, gid = re.findall(r"^USER (\d+):(\d+)$", runtime_stage, re.MULTILINE)[-1]
    assert pod["securityContext"]["runAsUser"] == int(uid)
    assert pod["securityContext"]["runAsGroup"] == int(gid)
    # The image's entrypoint program and the config path the operator mounts.
    assert container["command"][0] == "livestrat"
    assert container["command"][1:] == ["runtime", "--config", "/etc/livestrat/runtime.json"]
    assert '["runtime", "--config", "/etc/livestrat/runtime.json"]' in runtime_stage


@pytest.mark.slow  # runs a process: the slow tier (tests/support/tiers.py)
@pytest.mark.parametrize("values", [{}, {"watchNamespaces": ["trading-paper"]}], ids=["all", "named"])
def test_the_operator_holds_what_it_grants_each_strategy_pod(values, strategy_objects):
    # Kubernetes refuses a Role (and its binding) that grants more than its creator holds.
    access = Grants.for_service_account(render(None, values), RELEASE_NAMESPACE, RELEASE)
    role = strategy_objects["Role"]
    for rule in role["rules"]:
        for verb, group, resource in triples([rule]):
            for name in rule.get("resourceNames") or [None]:
                assert access.allows(Request(verb, group, resource, "trading-paper", name)), (verb, resource)
    for kind in ("roles", "rolebindings"):
        assert access.allows(Request("create", "rbac.authorization.k8s.io", kind, "trading-paper"))


@pytest.mark.slow  # runs helm: the slow tier (tests/support/tiers.py)
def test_live_strategies_take_code_only_from_the_image_unless_the_release_allows_more_sources():
    by_default = OperatorSettings.from_env(operator_environ(render("prod")))
    assert by_default.live_code_sources == ["image"]
    allowing = OperatorSettings.from_env(
        operator_environ(render("prod", {"liveTrading.codeSources": ["image", "configMap"]}))
    )
    assert allowing.live_code_sources == ["image", "configMap"]
