"""A wrong value stops `helm install` (and `helm template`) with a message from
values.schema.json that names the value and says what is allowed."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.support.helm import CHART, helm, template_result

# Every test here runs a process (helm, kubectl, livestrat): the slow tier (tests/support/tiers.py).
pytestmark = pytest.mark.slow

WRONG_VALUES = [
    # (values, what the message must say)
    ({"logLevel": "VERBOSE"}, ["at '/logLevel'", "'DEBUG', 'INFO', 'WARNING', 'ERROR'"]),
    ({"replicaCount": "two"}, ["at '/replicaCount'", "got string, want integer"]),
    ({"replicaCount": 0}, ["at '/replicaCount'", "minimum"]),
    ({"replicas": 2}, ["additional properties 'replicas' not allowed"]),
    ({"watchNamespace": ["a"]}, ["additional properties 'watchNamespace' not allowed"]),
    ({"watchNamespaces": ["Trading_Live"]}, ["at '/watchNamespaces/0'", "does not match pattern"]),
    ({"liveTrading": {"allowedNamespaces": "trading-live"}}, ["at '/liveTrading/allowedNamespaces'", "want array"]),
    ({"image": {"pullPolicy": "Sometimes"}}, ["at '/image/pullPolicy'", "'Always', 'IfNotPresent', 'Never'"]),
    ({"image": {"digest": "latest"}}, ["at '/image/digest'", "does not match pattern"]),
    ({"runtime": {"image": {"repository": ""}}}, ["at '/runtime/image/repository'"]),
    ({"staleAfterSeconds": 1}, ["at '/staleAfterSeconds'", "minimum"]),
    ({"maxConcurrentReconciles": 0}, ["at '/maxConcurrentReconciles'", "minimum"]),
    ({"startTimeoutSeconds": "10m"}, ["at '/startTimeoutSeconds'", "want number"]),
    ({"defaults": {"gcsBucket": "gs://acme-market-data"}}, ["at '/defaults/gcsBucket'", "does not match pattern"]),
    ({"defaults": {"gcpServiceAccount": "reader"}}, ["at '/defaults/gcpServiceAccount'"]),
    ({"ports": {"metrics": 70000}}, ["at '/ports/metrics'", "maximum"]),
    ({"listenAddress": "localhost"}, ["at '/listenAddress'", "does not match pattern"]),
    ({"runtime": {"listenAddress": "[::]"}}, ["at '/runtime/listenAddress'", "does not match pattern"]),
    ({"monitoring": {"kind": "Servicemonitor"}}, ["at '/monitoring/kind'", "'PodMonitor', 'ServiceMonitor'"]),
    ({"monitoring": {"interval": "30 seconds"}}, ["at '/monitoring/interval'"]),
    ({"networkPolicy": {"apiServer": {"cidrs": ["10.0.0.1"]}}}, ["at '/networkPolicy/apiServer/cidrs/0'"]),
    ({"networkPolicy": {"enable": True}}, ["additional properties 'enable' not allowed"]),
    (
        {"networkPolicy": {"dns": {"providers": ["coredns"]}}},
        ["at '/networkPolicy/dns/providers/0'", "'kube-dns', 'cloud-dns', 'node-local-dns'"],
    ),
    ({"networkPolicy": {"dns": {"providers": []}}}, ["at '/networkPolicy/dns/providers'", "minItems"]),
    ({"networkPolicy": {"dns": {"providers": "kube-dns"}}}, ["at '/networkPolicy/dns/providers'", "want array"]),
    (
        {"networkPolicy": {"dns": {"nodeLocalAddress": "169.254.20.10/32"}}},
        ["at '/networkPolicy/dns/nodeLocalAddress'"],
    ),
    ({"networkPolicy": {"ledger": {"to": [{"podSelecter": {}}]}}}, ["at '/networkPolicy/ledger/to/0'"]),
    ({"resources": {"limits": {"memory": "lots"}}}, ["at '/resources/limits/memory'", "does not match pattern"]),
    ({"resources": {"requests": {"cpu": "100 m"}}}, ["at '/resources/requests/cpu'"]),
    ({"resources": {"requests": {"memory": -1}}}, ["at '/resources/requests/memory'"]),
    (
        {"resources": {"limits": {"memroy": "1Gi"}}},
        ["at '/resources/limits'", "additional properties 'memroy' not allowed"],
    ),
    ({"resources": {"limit": {"memory": "1Gi"}}}, ["additional properties 'limit' not allowed"]),
    ({"requireImageDigests": "yes"}, ["at '/requireImageDigests'", "want boolean"]),
    ({"security": {"allowedImagePrefixes": "registry.example.com/"}}, ["at '/security/allowedImagePrefixes'"]),
    ({"security": {"allowedImagePrefixes": ["a/,b/"]}}, ["at '/security/allowedImagePrefixes/0'"]),
    ({"security": {"allowServiceAccountName": "false"}}, ["at '/security/allowServiceAccountName'"]),
    ({"monitoring": {"rules": {"failedFor": "1 minute"}}}, ["at '/monitoring/rules/failedFor'"]),
]


@pytest.mark.parametrize(
    "resources",
    [
        {"requests": {"cpu": "100m", "memory": "256Mi", "ephemeral-storage": "1Gi"}, "limits": {"memory": "1.5Gi"}},
        {"requests": {"cpu": 0.5, "memory": "268435456"}, "limits": {"cpu": 2, "hugepages-2Mi": "64Mi"}},
        {"limits": {"memory": "1e9", "example.com/fpga": 1}},
    ],
)
def test_kubernetes_quantities_pass_the_schema(resources):
    result = template_result(None, {"resources": resources})
    assert result.returncode == 0, result.output


@pytest.mark.parametrize(("values", "expected"), WRONG_VALUES, ids=[json.dumps(v) for v, _ in WRONG_VALUES])
def test_a_wrong_value_fails_with_a_message_from_the_schema(values, expected):
    result = template_result(None, values)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.output
    for fragment in expected:
        assert fragment in result.output


def test_helm_install_refuses_a_wrong_value_before_touching_a_cluster():
    result = helm("install", "livestrat-operator", str(CHART), "--dry-run=client", "--set", "logLevel=verbose")
    assert result.returncode != 0
    assert "at '/logLevel'" in result.output


def test_every_default_value_is_described_by_the_schema():
    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(values: dict, node: dict, path: str) -> list[str]:
        missing = []
        for key, value in values.items():
            child = node.get("properties", {}).get(key)
            if child is None:
                missing.append(f"{path}{key}")
            elif isinstance(value, dict) and "properties" in child:
                missing += walk(value, child, f"{path}{key}.")
        return missing

    assert walk(defaults, schema, "") == []
    assert schema["additionalProperties"] is False
