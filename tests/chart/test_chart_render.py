"""Install the operator with Helm, per environment: the chart lints, renders, and every
object it renders is one Kubernetes accepts; the operator pod passes the restricted Pod
Security Standard and gets exactly the settings the operator reads.

All through the real ``helm`` binary (tests/support/helm.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from livestrat.api import validation
from strategy_operator.settings import ENVIRONMENT, OperatorSettings
from tests.support.helm import (
    CHART,
    ENVIRONMENTS,
    RELEASE_NAMESPACE,
    ROOT,
    SITE_OVERRIDES,
    dotted,
    find,
    helm,
    helm_binary,
    only,
    operator_env,
    operator_environ,
    render,
    template_result,
    value_args,
)
from tests.support.k8s_schemas import manifest_errors
from tests.support.pss import check_manifest

# Every test here runs a process (helm, kubectl, livestrat): the slow tier (tests/support/tiers.py).
pytestmark = pytest.mark.slow

# An in-cluster PostgreSQL (CloudNativePG, say), by selectors rather than addresses.
IN_CLUSTER_LEDGER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "databases"}},
    "podSelector": {"matchLabels": {"cnpg.io/cluster": "ledger"}},
}

# Variants beyond the three environment files (staging and prod with their site's
# overrides, tests/support/helm.py): each switch of the chart at least once.
VARIANTS = {
    "defaults": (None, {}),
    "dev": ("dev", {}),
    "staging": ("staging", {}),
    "prod": ("prod", {}),
    "all-namespaces-ha-monitored": (
        None,
        {
            "replicaCount": 2,
            "monitoring": {"enabled": True, "kind": "ServiceMonitor"},
            "networkPolicy": {
                "enabled": True,
                "apiServer": {"cidrs": ["172.18.0.2/32"]},
                "ledger": {"to": [IN_CLUSTER_LEDGER]},
            },
            "defaults": {"ledger": {"secretName": "ledger-dsn"}},
            "security": {"allowedImagePrefixes": ["livestrat/"], "allowServiceAccountName": True},
        },
    ),
    "prod-narrowed": (
        "prod",
        {
            "image.digest": "sha256:" + "a" * 64,
            "runtime.image.digest": "sha256:" + "b" * 64,
            "networkPolicy.apiServer.cidrs": ["172.18.0.2/32"],
            "networkPolicy.ledger.cidrs": ["10.20.0.5/32"],
            "networkPolicy.extraEgress": [{"to": [{"ipBlock": {"cidr": "199.36.153.8/30"}}], "ports": [{"port": 443}]}],
            "serviceAccount.annotations": {"example.com/owner": "trading-ops"},
            "podAnnotations": {"example.com/team": "desk"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "trading", "effect": "NoSchedule"}],
            "nodeSelector": {"pool": "trading"},
            "priorityClassName": "trading-critical",
            "imagePullSecrets": [{"name": "registry"}],
        },
    ),
}

PEERING_CRDS = {
    d["spec"]["names"]["kind"]: d
    for d in yaml.safe_load_all((CHART / "crds" / "kopf-peering.kopf.dev.yaml").read_text())
}


def rendered(variant: str) -> list[dict]:
    environment, values = VARIANTS[variant]
    return render(environment, values)


def operator_pod(docs: list[dict]) -> dict:
    return only(docs, "StatefulSet")["spec"]["template"]


@pytest.mark.parametrize("environment", [None, *ENVIRONMENTS])
def test_helm_lint_strict_passes(environment):
    result = helm("lint", "--strict", str(CHART), *value_args(environment))
    assert result.returncode == 0, result.output
    assert "0 chart(s) failed" in result.output


def lint_chart(chart: Path) -> subprocess.CompletedProcess:
    """What `make lint` runs on the chart (scripts/lint-chart.sh)."""
    script = ROOT / "scripts" / "lint-chart.sh"
    return subprocess.run(
        ["sh", str(script), helm_binary(), str(chart)], capture_output=True, text=True, timeout=300, check=False
    )


def test_make_lint_lints_and_renders_the_chart_with_every_values_file():
    recipe = (ROOT / "Makefile").read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "scripts/lint-chart.sh" in recipe
    result = lint_chart(CHART)
    assert result.returncode == 0, result.stdout + result.stderr
    for values in ("default values", *(f"values-{e}.yaml" for e in ENVIRONMENTS)):
        assert f"==> {values}" in result.stdout


def test_make_lint_fails_when_the_charts_own_checks_fail(tmp_path):
    chart = tmp_path / CHART.name
    shutil.copytree(CHART, chart)
    (chart / "values-broken.yaml").write_text("networkPolicy:\n  enabled: true\n")
    # helm lint --strict alone lets it pass: Helm 4 reports a template's `fail` as INFO
    alone = helm("lint", "--strict", str(chart), "-f", str(chart / "values-broken.yaml"))
    assert alone.returncode == 0 and "networkPolicy.apiServer.cidrs is empty" in alone.output
    result = lint_chart(chart)
    assert result.returncode != 0
    assert "values-broken.yaml" in result.stderr and "networkPolicy.apiServer.cidrs is empty" in result.stderr


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_builtin_object_validates_against_the_official_schemas(variant):
    docs = rendered(variant)
    assert docs
    errors = {
        f"{d['kind']}/{d['metadata'].get('namespace', '')}/{d['metadata']['name']}": manifest_errors(
            d, "1.34", strict=True
        )
        for d in docs
        if not is_custom(d)
    }
    assert {k: v for k, v in errors.items() if v} == {}


def is_custom(doc: dict) -> bool:
    return doc["apiVersion"].split("/")[0] in {"kopf.dev", "monitoring.coreos.com"}


# Prometheus Operator objects have no official Kubernetes schema (their CRDs live in the
# prometheus-operator project, not in the cluster's OpenAPI). What can be checked offline is
# checked: apiVersion and kind, and the structure of every field this chart writes, with
# unknown keys rejected; PromQL itself is not parsed here.
_RELABEL = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "sourceLabels": {"type": "array", "items": {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"}},
        "targetLabel": {"type": "string", "minLength": 1},
        "replacement": {"type": "string"},
        "action": {"enum": ["replace", "keep", "drop", "labelmap", "labeldrop", "labelkeep"]},
    },
}
_ENDPOINT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["port"],
    "properties": {
        "port": {"type": "string"},
        "path": {"type": "string", "pattern": "^/"},
        "interval": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h|d|w|y))+$"},
        "relabelings": {"type": "array", "items": _RELABEL},
    },
}
_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "required": ["matchLabels"],
    "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1}},
}
_NAMESPACE_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"any": {"const": True}, "matchNames": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
    "minProperties": 1,
    "maxProperties": 1,
}
_METADATA = {
    "type": "object",
    "required": ["name", "namespace", "labels"],
    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}, "labels": {"type": "object"}},
}


def _monitor(kind: str, endpoints_key: str) -> dict:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": kind},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["selector", "namespaceSelector", endpoints_key],
                "properties": {
                    "selector": _SELECTOR,
                    "namespaceSelector": _NAMESPACE_SELECTOR,
                    endpoints_key: {"type": "array", "items": _ENDPOINT, "minItems": 1},
                },
            },
        },
    }


_RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["alert", "expr", "labels", "annotations"],
    "properties": {
        "alert": {"type": "string", "pattern": "^[A-Z][A-Za-z]+$"},
        "expr": {"type": "string", "minLength": 1},
        "for": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h|d|w|y))+$"},
        "labels": {
            "type": "object",
            "required": ["severity"],
            "properties": {"severity": {"enum": ["critical", "warning"]}},
        },
        "annotations": {
            "type": "object",
            "required": ["summary", "description"],
            "additionalProperties": {"type": "string"},
        },
    },
}
CUSTOM_SCHEMAS = {
    "PodMonitor": _monitor("PodMonitor", "podMetricsEndpoints"),
    "ServiceMonitor": _monitor("ServiceMonitor", "endpoints"),
    "PrometheusRule": {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "PrometheusRule"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "groups": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name", "rules"],
                            "properties": {"name": {"type": "string"}, "rules": {"type": "array", "items": _RULE}},
                        },
                    }
                },
            },
        },
    },
}


def custom_errors(doc: dict) -> list[str]:
    if doc["apiVersion"] == "kopf.dev/v1":
        # kopf's peering objects: against the CRD the chart ships for them.
        crd = PEERING_CRDS[doc["kind"]]
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
        namespaced = crd["spec"]["scope"] == "Namespaced"
        if namespaced != ("namespace" in doc["metadata"]):
            errors.append(f"{doc['kind']} is {crd['spec']['scope']}-scoped: metadata.namespace is wrong")
        return errors
    validator = jsonschema.Draft7Validator(CUSTOM_SCHEMAS[doc["kind"]])
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_custom_objects_have_the_structure_their_crds_expect(variant):
    docs = [d for d in rendered(variant) if is_custom(d)]
    errors = {f"{d['kind']}/{d['metadata']['name']}": custom_errors(d) for d in docs}
    assert {k: v for k, v in errors.items() if v} == {}


def test_custom_object_checks_reject_a_typo():
    docs = rendered("all-namespaces-ha-monitored")
    monitor = json.loads(json.dumps(find(docs, "ServiceMonitor")[0]))
    monitor["spec"]["endpoints"][0]["intreval"] = "30s"
    assert any("intreval" in e for e in custom_errors(monitor))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_operator_pod_passes_the_restricted_pod_security_standard(variant):
    statefulset = only(rendered(variant), "StatefulSet")
    assert check_manifest(statefulset, level="restricted") == []
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("environment", [None, *ENVIRONMENTS])
def test_operator_gets_exactly_the_settings_the_operator_reads(environment):
    env = operator_env(render(environment))
    # POD_ID is kopf's own: the replica's identity in the peering object. LIVESTRAT_PRIORITY is
    # an explicit override the chart leaves to the user: the ordinal gives each replica its own.
    assert set(env) == (set(ENVIRONMENT) - {"LIVESTRAT_PRIORITY"}) | {"POD_ID"}


def test_security_settings_reach_the_operator_environment():
    default = operator_environ(render())
    assert default["LIVESTRAT_ALLOWED_IMAGE_PREFIXES"] == ""  # any image
    assert default["LIVESTRAT_ALLOW_SERVICE_ACCOUNT_NAME"] == "false"
    environ = operator_environ(
        render(
            None,
            {
                "runtime.image.repository": "registry.example.com/livestrat/livestrat-runtime",
                "security": {
                    "allowedImagePrefixes": ["registry.example.com/livestrat/", "registry.example.com/acme@"],
                    "allowServiceAccountName": True,
                },
            },
        )
    )
    assert environ["LIVESTRAT_ALLOWED_IMAGE_PREFIXES"] == "registry.example.com/livestrat/,registry.example.com/acme@"
    assert environ["LIVESTRAT_ALLOW_SERVICE_ACCOUNT_NAME"] == "true"
    prod = operator_environ(render("prod"))
    assert prod["LIVESTRAT_ALLOWED_IMAGE_PREFIXES"] == "registry.example.com/livestrat/"
    assert prod["LIVESTRAT_ALLOW_SERVICE_ACCOUNT_NAME"] == "false"
    # and the operator reads them as meant
    settings = OperatorSettings.from_env(prod)
    assert settings.image_allowed("registry.example.com/livestrat/strategies:1.4")
    assert not settings.image_allowed("registry.example.com/livestrat-fork/strategies:1.4")
    assert settings.allow_service_account_name is False


def test_the_operator_and_strategy_pods_listen_on_every_ipv4_address_by_default():
    default = OperatorSettings.from_env(operator_environ(render()))
    assert default.http_host == "0.0.0.0" and default.runtime_http_host == "0.0.0.0"  # as before the values existed


def settings_from(docs: list[dict], pod_index: int = 0) -> OperatorSettings:
    """What `livestrat operator` would read in pod `pod_index` of the rendered StatefulSet."""
    return OperatorSettings.from_env(operator_environ(docs, pod_index))


def test_dev_is_paper_only_with_debug_logs_watching_everything():
    settings = settings_from(render("dev"))
    assert settings.live_namespaces == []
    assert settings.watch_namespaces == []
    assert settings.log_level == "DEBUG"
    assert settings.peering is None


def test_prod_allows_live_only_in_its_named_namespace_with_two_peered_replicas():
    docs = render("prod")
    first, second = settings_from(docs, 0), settings_from(docs, 1)
    assert first.watch_namespaces == ["trading-paper", "trading-live"]
    assert first.live_namespaces == ["trading-live"]
    assert not first.live_allowed("trading-paper")
    assert first.default_ledger_secret == "ledger-dsn"
    assert only(docs, "StatefulSet")["spec"]["replicas"] == 2
    assert first.peering and first.peering == second.peering
    assert first.peering_priority() > second.peering_priority()  # replica 0 acts
    assert {d["kind"] for d in docs} >= {"PodMonitor", "PrometheusRule", "NetworkPolicy", "PodDisruptionBudget"}


def test_staging_allows_live_in_its_namespace_only():
    settings = settings_from(render("staging"))
    assert settings.watch_namespaces == ["trading-staging"]
    assert settings.live_namespaces == ["trading-staging"]


def test_every_setting_reaches_the_operator():
    docs = render(
        None,
        {
            "watchNamespaces": ["a", "b"],
            "liveTrading": {
                "allowedNamespaces": ["b"],
                "codeSources": ["image", "configMap"],
                "requirePromotion": True,
            },
            "runtime": {
                "image": {"repository": "r.example/rt", "tag": "1.2.3", "pullPolicy": "Always"},
                "listenAddress": "::",
            },
            "defaults": {
                "ledger": {"secretName": "pg", "secretKey": "url"},
                "gcsBucket": "acme-market-data",
                "gcpServiceAccount": "strategy-reader@acme-trading.iam.gserviceaccount.com",
            },
            "staleAfterSeconds": 90,
            "startTimeoutSeconds": 300,
            "haltTimeoutMarginSeconds": 15,
            "maxConcurrentReconciles": 32,
            "logLevel": "WARNING",
            "listenAddress": "::1",
            "ports": {"metrics": 9090, "health": 9091},
            "security": {"allowedImagePrefixes": ["r.example/"], "allowServiceAccountName": True},
        },
    )
    settings = settings_from(docs)
    assert settings.model_dump() == {
        "watch_namespaces": ["a", "b"],
        "live_namespaces": ["b"],
        "live_code_sources": ["image", "configMap"],
        "promotion_required": True,
        "runtime_image": "r.example/rt:1.2.3",
        "runtime_image_pull_policy": "Always",
        "default_ledger_secret": "pg",
        "default_ledger_secret_key": "url",
        "default_gcs_bucket": "acme-market-data",
        "default_gcp_service_account": "strategy-reader@acme-trading.iam.gserviceaccount.com",
        "stale_after_seconds": 90.0,
        "start_timeout_seconds": 300.0,
        "halt_timeout_margin_seconds": 15.0,
        "max_concurrent_reconciles": 32,
        "log_level": "WARNING",
        "peering": None,
        "priority": None,
        "replica_ordinal": 0,
        "http_host": "::1",
        "runtime_http_host": "::",
        "metrics_port": 9090,
        "health_port": 9091,
        "allowed_image_prefixes": ["r.example/"],
        "allow_service_account_name": True,
        "runtime_identity": "perStrategy",  # the cluster serves no ValidatingAdmissionPolicy here
    }
    (container,) = operator_pod(docs)["spec"]["containers"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": 9090, "health": 9091}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_a_digest_pins_both_images():
    docs = rendered("prod-narrowed")
    (container,) = operator_pod(docs)["spec"]["containers"]
    assert container["image"].endswith("@sha256:" + "a" * 64)
    assert settings_from(docs).runtime_image.endswith("@sha256:" + "b" * 64)


def test_one_replica_runs_standalone_without_peering_objects():
    docs = render()
    assert settings_from(docs).peering is None
    assert not [d for d in docs if d["apiVersion"] == "kopf.dev/v1"]
    assert not find(docs, "PodDisruptionBudget")


def test_two_replicas_watching_named_namespaces_peer_through_one_cluster_object_not_one_per_namespace():
    # One KopfPeering per namespace meant that a namespace missing its object paused the whole operator.
    docs = render(None, {"replicaCount": 2, "watchNamespaces": ["a", "b"]})
    (peering,) = find(docs, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == settings_from(docs).peering and "namespace" not in peering["metadata"]
    assert not find(docs, "KopfPeering")
    anti = operator_pod(docs)["spec"]["affinity"]["podAntiAffinity"]
    assert anti["preferredDuringSchedulingIgnoredDuringExecution"]


def test_a_replica_is_ready_when_it_acts_or_stands_by_and_not_when_a_fault_pauses_it():
    (container,) = operator_pod(render(None, {"replicaCount": 2}))["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_two_replicas_watching_all_namespaces_peer_cluster_wide():
    docs = render(None, {"replicaCount": 2})
    (peering,) = find(docs, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == settings_from(docs).peering
    assert "namespace" not in peering["metadata"]


def test_each_operator_replica_gets_a_distinct_peering_priority():
    # kopf pauses every operator when peers share a priority: the pod's ordinal breaks the tie.
    docs = render(None, {"replicaCount": 3})
    assert only(docs, "StatefulSet")["kind"] == "StatefulSet"
    priorities = [settings_from(docs, index).peering_priority() for index in range(3)]
    assert len(set(priorities)) == 3
    assert priorities == sorted(priorities, reverse=True)  # replica 0 acts, the others stand by


def test_a_live_namespace_that_is_not_watched_fails_the_install():
    result = template_result(None, {"watchNamespaces": ["paper"], "liveTrading": {"allowedNamespaces": ["live"]}})
    assert result.returncode != 0
    assert 'liveTrading.allowedNamespaces: "live" is not watched' in result.output


def test_one_port_for_metrics_and_health_fails_the_install():
    result = template_result(None, {"ports": {"metrics": 8080, "health": 8080}})
    assert result.returncode != 0
    assert "ports.metrics and ports.health are both 8080" in result.output


def test_strategy_network_policy_in_every_watched_namespace():
    docs = render("prod")
    policies = find(docs, "NetworkPolicy")
    assert sorted(p["metadata"]["namespace"] for p in policies) == ["trading-live", "trading-paper"]
    spec = policies[0]["spec"]
    assert spec["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "livestrat", "app.kubernetes.io/component": "strategy"}
    }
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = spec["ingress"]
    assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert ingress["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    egress_ports = sorted({p["port"] for rule in spec["egress"] for p in rule["ports"]})
    assert egress_ports == [53, 443, 5432, 6443]
    assert all(rule.get("to") for rule in spec["egress"]), "a rule without `to` allows every address"


def egress_rules(spec: dict) -> dict[str, dict]:
    """The policy's egress rules by what they are for: dns, apiServer, venue, ledger."""
    rules = {}
    for rule in spec["egress"]:
        ports = {p["port"] for p in rule["ports"]}
        blocks = {peer["ipBlock"]["cidr"] for peer in rule["to"] if "ipBlock" in peer}
        if ports == {53}:
            rules["dns"] = rule
        elif "0.0.0.0/0" in blocks:
            rules["venue"] = rule
        elif 5432 in ports:
            rules["ledger"] = rule
        elif ports & {443, 6443} and "172.18.0.2/32" in blocks:
            rules["apiServer"] = rule
    return rules


NO_CLUSTER_ADDRESSES = ["10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16"]


KUBE_DNS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
DNS_PEERS = {
    "kube-dns": KUBE_DNS,
    "cloud-dns": {"ipBlock": {"cidr": "169.254.169.254/32"}},  # GKE Cloud DNS: the metadata server answers
    "node-local-dns": {"ipBlock": {"cidr": "169.254.20.10/32"}},  # NodeLocal DNSCache's default address
}


@pytest.mark.parametrize(
    "providers", [["kube-dns"], ["cloud-dns"], ["node-local-dns"], ["node-local-dns", "kube-dns"]], ids=str
)
def test_strategy_pods_reach_the_dns_the_cluster_runs(providers):
    values = {"networkPolicy.dns.providers": providers, "networkPolicy.ledger.cidrs": ["10.20.0.5/32"]}
    (policy, *_) = find(render("prod", values), "NetworkPolicy")
    assert manifest_errors(policy, "1.34", strict=True) == []
    dns = egress_rules(policy["spec"])["dns"]
    assert dns["to"] == [DNS_PEERS[p] for p in DNS_PEERS if p in providers]
    assert dns["ports"] == [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]


def test_kube_dns_is_the_default_and_node_local_dns_listens_where_the_cluster_says():
    (policy, *_) = find(render("prod"), "NetworkPolicy")
    assert egress_rules(policy["spec"])["dns"]["to"] == [KUBE_DNS]
    values = {"networkPolicy.dns": {"providers": ["node-local-dns"], "nodeLocalAddress": "169.254.25.10"}}
    (policy, *_) = find(render("prod", values), "NetworkPolicy")
    assert egress_rules(policy["spec"])["dns"]["to"] == [{"ipBlock": {"cidr": "169.254.25.10/32"}}]


@pytest.mark.parametrize("environment", [None, "staging", "prod"])
def test_the_venue_rule_is_the_internet_without_the_clusters_own_addresses(environment):
    # Without `except`, 443 would be open to every in-cluster service and the metadata server.
    values = {"networkPolicy": {"enabled": True, "apiServer": {"cidrs": ["172.18.0.2/32"]}}}
    spec = find(render(environment, None if environment else values), "NetworkPolicy")[0]["spec"]
    venue = egress_rules(spec)["venue"]
    assert venue["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": NO_CLUSTER_ADDRESSES}}]
    assert venue["ports"] == [{"port": 443, "protocol": "TCP"}]


def test_the_api_server_rule_names_its_addresses_and_nothing_else():
    spec = find(render("prod"), "NetworkPolicy")[0]["spec"]
    api = egress_rules(spec)["apiServer"]
    assert api["to"] == [{"ipBlock": {"cidr": "172.18.0.2/32"}}]
    assert api["ports"] == [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]


def test_an_empty_api_server_address_fails_the_install_instead_of_opening_its_ports_to_everything():
    result = template_result(None, {"networkPolicy.enabled": True})
    assert result.returncode != 0
    assert "networkPolicy.apiServer.cidrs is empty" in result.output
    assert "open ports 443, 6443 to every address" in result.output
    assert "kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes" in result.output


@pytest.mark.parametrize(
    ("values", "why"),
    [
        ({"defaults.ledger.secretName": "ledger-dsn"}, 'defaults.ledger.secretName is "ledger-dsn"'),
        (
            {"watchNamespaces": ["trading-live"], "liveTrading.allowedNamespaces": ["trading-live"]},
            "live trading is allowed in [trading-live] and needs PostgreSQL",
        ),
    ],
    ids=["default-ledger", "live-trading"],
)
def test_a_policy_that_would_cut_strategies_off_their_ledger_fails_the_install(values, why):
    result = template_result(
        None, {"networkPolicy.enabled": True, "networkPolicy.apiServer.cidrs": ["172.18.0.2/32"], **values}
    )
    assert result.returncode != 0
    assert f"networkPolicy.ledger: strategies need the PostgreSQL ledger ({why})" in result.output
    assert "set networkPolicy.ledger.cidrs" in result.output


def test_an_in_cluster_ledger_is_reached_by_selectors():
    spec = find(rendered("all-namespaces-ha-monitored"), "NetworkPolicy")[0]["spec"]
    ledger = egress_rules(spec)["ledger"]
    assert ledger["to"] == [IN_CLUSTER_LEDGER]
    assert ledger["ports"] == [{"port": 5432, "protocol": "TCP"}]


def test_staging_and_prod_values_alone_name_what_only_the_site_knows():
    # The environment files leave the site's addresses and digests empty: installing them
    # without the overrides fails once, listing every missing value.
    for environment in ("staging", "prod"):
        result = template_result(environment, site=False)
        assert result.returncode != 0
        for value in (
            "image.digest is empty but requireImageDigests is true",
            "runtime.image.digest is empty but requireImageDigests is true",
            "networkPolicy.apiServer.cidrs is empty",
            "networkPolicy.ledger: strategies need the PostgreSQL ledger",
        ):
            assert value in result.output, (environment, value)


def test_strategy_network_policy_when_watching_all_namespaces_goes_to_the_release_namespace():
    docs = render(None, {"networkPolicy": {"enabled": True, "apiServer": {"cidrs": ["172.18.0.2/32"]}}})
    assert [p["metadata"]["namespace"] for p in find(docs, "NetworkPolicy")] == [RELEASE_NAMESPACE]


def test_narrowed_network_policy_names_the_api_server_and_ledger():
    spec = find(rendered("prod-narrowed"), "NetworkPolicy")[0]["spec"]
    blocks = [peer["ipBlock"]["cidr"] for rule in spec["egress"] for peer in rule.get("to", []) if "ipBlock" in peer]
    assert {"172.18.0.2/32", "10.20.0.5/32", "199.36.153.8/30", "0.0.0.0/0"} == set(blocks)


def test_monitoring_is_off_by_default():
    assert not [d for d in render() if d["apiVersion"].startswith("monitoring.coreos.com")]
    assert not find(render(), "ConfigMap")


def test_monitors_scrape_the_operator_and_every_strategy_pod_by_name():
    docs = render("prod")
    operator, strategies = sorted(find(docs, "PodMonitor"), key=lambda d: d["metadata"]["name"])
    assert operator["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "operator"
    assert strategies["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "livestrat",
        "app.kubernetes.io/component": "strategy",
    }
    assert strategies["spec"]["namespaceSelector"] == {"matchNames": ["trading-paper", "trading-live"]}
    relabel = strategies["spec"]["podMetricsEndpoints"][0]["relabelings"]
    assert {
        "sourceLabels": ["__meta_kubernetes_pod_label_livestrat_io_strategy"],
        "targetLabel": "strategy",
        "action": "replace",
    } in relabel
    assert all(m["metadata"]["labels"]["release"] == "kube-prometheus-stack" for m in (operator, strategies))


def test_alerts_cover_risk_halt_stale_heartbeat_not_ready_and_operator_down():
    rule = only(render("prod"), "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {
        "LiveStrategyRiskHalted",
        "LiveStrategyHeartbeatStale",
        "LiveStrategyNotReady",
        "LiveStrategyFailed",
        "LivestratOperatorReconcileErrors",
        "LivestratOperatorDown",
    } <= set(alerts)
    failed = alerts["LiveStrategyFailed"]
    assert 'livestrat_operator_strategies{job="livestrat-operator", phase="Failed"}' in failed["expr"]
    assert (failed["labels"]["severity"], failed["for"]) == ("critical", "1m")
    errors = alerts["LivestratOperatorReconcileErrors"]
    assert 'increase(livestrat_operator_reconcile_errors_total{job="livestrat-operator"}[5m])' in errors["expr"]
    assert errors["for"] == "10m"
    assert 'state="Halted"' in alerts["LiveStrategyRiskHalted"]["expr"]
    assert "livestrat_status_pushes_total" in alerts["LiveStrategyHeartbeatStale"]["expr"]
    assert 'job="livestrat-operator"' in alerts["LivestratOperatorDown"]["expr"]
    # Prometheus' own templates survive Helm's.
    assert "{{ $labels.strategy }}" in alerts["LiveStrategyRiskHalted"]["annotations"]["summary"]


def test_dashboard_shows_fills_pnl_positions_and_risk_per_strategy():
    (configmap,) = find(render("prod"), "ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(configmap["data"]["livestrat-strategies.json"])
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in ("livestrat_fills", "livestrat_pnl", "livestrat_position", "livestrat_risk_state"):
        assert metric in exprs
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"datasource", "namespace", "strategy"}
    assert dashboard == json.loads(Path(CHART / "dashboards" / "livestrat-strategies.json").read_text())


def notes(environment: str | None) -> str:
    result = helm(
        "install",
        "livestrat-operator",
        str(CHART),
        "--namespace",
        RELEASE_NAMESPACE,
        "--dry-run=client",
        *value_args(environment),
    )
    assert result.returncode == 0, result.output
    return result.stdout.split("NOTES:", 1)[1]


def test_notes_tell_the_user_what_to_do_next():
    text = notes("prod")
    for expected in (
        "rollout status statefulset/livestrat-operator",
        "kubectl apply -n trading-paper -f - <<'EOF'",
        "kubectl get livestrategies",
        "--replicas=0",
        "--replicas=1",
        "kubectl annotate namespace trading-paper livestrat.io/kill-switch=true",
        "operations.md",
        "helm show crds CHART | kubectl apply --server-side -f -",
        "never restarts a running strategy",
    ):
        assert expected in text
    assert "SECURITY" not in text  # prod watches named namespaces
    assert "SECURITY: the operator watches all namespaces" in notes("dev")


def test_notes_print_a_strategy_that_needs_no_file_from_the_repository():
    # A packaged chart has no examples/ directory: the notes carry the whole manifest.
    text = notes("dev")
    assert "examples/" not in text and "charts/livestrat-operator/" not in text
    heredoc = text.split("<<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
    manifest = yaml.safe_load(heredoc)
    assert manifest["kind"] == "LiveStrategy" and manifest["spec"]["mode"] == "paper"
    assert validation.problems(manifest) == []
    # The same strategy as the paper example, so docs and notes tell one story.
    example = yaml.safe_load((ROOT / "examples" / "paper-ema-cross.yaml").read_text())
    assert manifest["metadata"]["name"] == example["metadata"]["name"]
    strategy, theirs = manifest["spec"]["strategy"], example["spec"]["strategy"]
    assert (strategy["strategyPath"], strategy["configPath"]) == (theirs["strategyPath"], theirs["configPath"])
    assert strategy["config"].items() <= theirs["config"].items()
    assert manifest["spec"]["venue"].items() <= example["spec"]["venue"].items()


def test_the_install_guide_shows_every_override_staging_and_prod_need():
    guide = (ROOT / "docs" / "install.md").read_text()
    block = guide.split("For example `my-prod-overrides.yaml`:\n\n```yaml\n", 1)[1].split("```", 1)[0]
    shown = yaml.safe_load(block)
    assert set(SITE_OVERRIDES["prod"]) <= set(dotted(shown))
