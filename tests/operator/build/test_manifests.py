"""The children's manifests, built without any API server: shape, safety, validity."""

from __future__ import annotations

import copy
import json

import pytest

from livestrat.api.names import DNS_LABEL_MAX_LENGTH, NAME_MAX_LENGTH, REVISION_HASH_LENGTH, name_allowed
from livestrat.api.resource import LiveStrategy
from livestrat.api.runtime_config import RuntimeConfig
from livestrat.kube_emulator.validation import dns1123_label, name_check
from strategy_operator.build import labels
from strategy_operator.build.configuration import render_runtime_config
from strategy_operator.build.manifests import (
    GCSFUSE_DRIVER,
    build_children,
    build_configmap,
    build_pod_template,
    build_role,
    build_service_account,
    build_shared_identity,
    build_statefulset,
)
from strategy_operator.build.policy import secret_requirements, spec_problems
from strategy_operator.settings import OperatorSettings
from tests.support.desk import example
from tests.support.k8s_schemas import manifest_errors
from tests.support.pss import check_manifest

EXAMPLES = ["paper-ema-cross", "gcs-fuse-catalog", "halted", "live-binance-testnet", "live-deribit-testnet"]
SETTINGS = OperatorSettings(live_namespaces=["desk"], default_gcs_bucket="default-bucket")


def strategy(
    doc: dict, namespace: str = "desk", uid: str = "0b7a1c2e-0000-4000-8000-000000000001", generation: int = 4
):
    doc = copy.deepcopy(doc)
    doc["metadata"].update(namespace=namespace, uid=uid, generation=generation)
    return LiveStrategy.model_validate(doc)


def catalog_variants() -> dict[str, dict]:
    base = example("paper-ema-cross")
    variants = {}
    for name, source in {
        "gcsFuse": {"gcsFuse": {"bucket": "acme-data", "path": "catalogs/x", "mountOptions": ["implicit-dirs"]}},
        "gcsFuse-default-bucket": {"gcsFuse": {}},
        "persistentVolumeClaim": {"persistentVolumeClaim": {"claimName": "market-data", "path": "catalogs/binance"}},
        "persistentVolumeClaim-root": {"persistentVolumeClaim": {"claimName": "market-data", "readOnly": False}},
        "emptyDir": {"emptyDir": {"sizeLimit": "2Gi"}},
    }.items():
        doc = copy.deepcopy(base)
        doc["spec"]["data"]["catalog"] = source
        variants[name] = doc
    return variants


ALL = {**{f"example {e}": example(e) for e in EXAMPLES}, **{f"catalog {k}": v for k, v in catalog_variants().items()}}


@pytest.mark.parametrize("case", sorted(ALL))
@pytest.mark.parametrize("replicas", [0, 1])
def test_every_child_validates_against_the_official_schemas_strictly(case, replicas):
    for child in build_children(strategy(ALL[case]), SETTINGS, replicas=replicas):
        assert manifest_errors(child, strict=True) == [], (child["kind"], manifest_errors(child))


@pytest.mark.parametrize("case", sorted(ALL))
def test_the_strategy_pod_passes_the_restricted_pod_security_standard(case):
    sts = build_statefulset(strategy(ALL[case]), SETTINGS, replicas=1)
    assert check_manifest(sts, level="restricted") == []


def test_every_child_is_owned_labelled_and_named_after_the_strategy():
    s = strategy(example("paper-ema-cross"))
    kinds = []
    for child in build_children(s, SETTINGS, replicas=1):
        kinds.append(child["kind"])
        meta = child["metadata"]
        assert meta["name"] == "ema-cross-btc" and meta["namespace"] == "desk"
        assert meta["labels"]["livestrat.io/strategy"] == "ema-cross-btc"
        assert meta["labels"]["app.kubernetes.io/instance"] == "ema-cross-btc"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "livestrat-operator"
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "livestrat.io/v1alpha1",
                "kind": "LiveStrategy",
                "name": "ema-cross-btc",
                "uid": "0b7a1c2e-0000-4000-8000-000000000001",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    assert kinds == [
        "ConfigMap",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "PodDisruptionBudget",
        "StatefulSet",
    ]


def test_the_longest_name_a_strategy_may_have_names_every_child_and_what_kubernetes_adds():
    name = "e" * NAME_MAX_LENGTH
    doc = example("paper-ema-cross")
    doc["metadata"]["name"] = name
    for child in build_children(strategy(doc), SETTINGS, replicas=1):
        group = child["apiVersion"].rpartition("/")[0]
        assert name_check(group, f"{child['kind'].lower()}s")(child["metadata"]["name"], False) == [], child["kind"]
        assert all(len(value) <= DNS_LABEL_MAX_LENGTH for value in child["metadata"]["labels"].values())
    # The pod (a hostname, and a label value) and the controller-revision-hash label NAME-HASH.
    for made_by_kubernetes in (labels.pod_name(name), f"{name}-{'9' * REVISION_HASH_LENGTH}"):
        assert dns1123_label(made_by_kubernetes, False) == [], made_by_kubernetes
    assert dns1123_label(f"{name}e-{'9' * REVISION_HASH_LENGTH}", False) != []  # one more is too many
    assert not name_allowed(name + "e")


def test_the_runtime_may_only_patch_its_own_status_and_read_its_own_namespace():
    # Not even read its status: the runtime reads its halt record with a patch that changes nothing (its response).
    # Its Namespace it reads at SIGTERM: being deleted, it is a halt (stop_cause).
    role = build_role(strategy(example("paper-ema-cross")))
    assert role["rules"] == [
        {
            "apiGroups": ["livestrat.io"],
            "resources": ["livestrategies/status"],
            "resourceNames": ["ema-cross-btc"],
            "verbs": ["patch"],
        },
        {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["desk"], "verbs": ["get"]},
    ]


SHARED = SETTINGS.model_copy(update={"runtime_identity": "shared"})


def test_with_the_shared_identity_a_strategy_has_three_children_and_no_service():
    s = strategy(example("paper-ema-cross"))
    children = build_children(s, SHARED, replicas=1)
    assert [c["kind"] for c in children] == ["ConfigMap", "PodDisruptionBudget", "StatefulSet"]
    template = children[-1]["spec"]["template"]
    assert template["spec"]["serviceAccountName"] == labels.SHARED_IDENTITY == "livestrat-runtime"


def test_the_shared_identity_may_patch_livestrategy_status_in_its_namespace_and_nothing_else():
    account, role, binding = build_shared_identity("desk", SHARED)
    for child in (account, role, binding):
        meta = child["metadata"]
        assert meta["name"] == "livestrat-runtime" and meta["namespace"] == "desk"
        assert "ownerReferences" not in meta  # no strategy owns it: it outlives each of them
        assert meta["labels"][labels.SHARED_IDENTITY_LABEL] == "true"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "livestrat-operator"
        assert labels.STRATEGY_LABEL not in meta["labels"]
        assert manifest_errors(child, strict=True) == []
    # Which strategy's status: the chart's admission policy narrows a patch to the pod's own strategy.
    assert role["rules"] == [
        {"apiGroups": ["livestrat.io"], "resources": ["livestrategies/status"], "verbs": ["patch"]},
        {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["desk"], "verbs": ["get"]},
    ]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "livestrat-runtime", "namespace": "desk"}]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "livestrat-runtime"}
    assert "annotations" not in account["metadata"]


def test_the_shared_identity_carries_the_operators_default_google_service_account():
    settings = SHARED.model_copy(update={"default_gcp_service_account": "runtime@acme.iam.gserviceaccount.com"})
    account, _, _ = build_shared_identity("desk", settings)
    assert account["metadata"]["annotations"] == {
        labels.WORKLOAD_IDENTITY_ANNOTATION: "runtime@acme.iam.gserviceaccount.com"
    }


@pytest.mark.parametrize(
    "pod, kinds",
    [
        # its own Google identity: its own Kubernetes service account, hence its own Role and binding
        (
            {"workloadIdentity": {"gcpServiceAccount": "catalog-reader@acme.iam.gserviceaccount.com"}},
            ["ConfigMap", "ServiceAccount", "Role", "RoleBinding", "PodDisruptionBudget", "StatefulSet"],
        ),
        # an account of its choosing: bound to a Role of its own
        (
            {"serviceAccountName": "team-strategies"},
            ["ConfigMap", "Role", "RoleBinding", "PodDisruptionBudget", "StatefulSet"],
        ),
    ],
)
def test_a_strategy_with_an_identity_of_its_own_keeps_its_own_role_under_the_shared_setting(pod, kinds):
    doc = example("paper-ema-cross")
    doc["spec"]["pod"] = pod
    children = build_children(strategy(doc), SHARED, replicas=1)
    assert [c["kind"] for c in children] == kinds
    account = children[-1]["spec"]["template"]["spec"]["serviceAccountName"]
    assert account == pod.get("serviceAccountName", "ema-cross-btc")


def test_the_statefulset_runs_one_pod_that_cannot_overlap_its_successor():
    sts = build_statefulset(strategy(example("paper-ema-cross")), SETTINGS, replicas=1)
    spec = sts["spec"]
    assert spec["replicas"] == 1 and spec["serviceName"] == "ema-cross-btc"
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["selector"] == {"matchLabels": {"livestrat.io/strategy": "ema-cross-btc"}}
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 60 and pod["serviceAccountName"] == "ema-cross-btc"
    [container] = pod["containers"]
    assert container["command"] == ["livestrat", "runtime", "--config", "/etc/livestrat/runtime.json"]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/etc/livestrat"]["readOnly"] is True
    assert set(mounts) == {"/etc/livestrat", "/data/catalog", "/var/lib/livestrat", "/tmp"}
    with pytest.raises(ValueError):
        build_statefulset(strategy(example("paper-ema-cross")), SETTINGS, replicas=2)


def test_credentials_and_the_ledger_dsn_reach_the_pod_only_through_secret_references():
    s = strategy(example("live-binance-testnet"))
    configmap = build_configmap(s, SETTINGS)
    env = build_statefulset(s, SETTINGS, replicas=1)["spec"]["template"]["spec"]["containers"][0]["env"]
    secret_env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if "valueFrom" in e}
    assert secret_env == {
        "LIVESTRAT_VENUE_API_KEY": {"name": "binance-testnet", "key": "api-key"},
        "LIVESTRAT_VENUE_API_SECRET": {"name": "binance-testnet", "key": "api-secret"},
        "LIVESTRAT_LEDGER_DSN": {"name": "ledger-dsn", "key": "dsn"},
    }
    assert all("value" not in e or not e["name"].startswith("LIVESTRAT_") for e in env)
    config = RuntimeConfig.model_validate_json(configmap["data"]["runtime.json"])
    assert config.ledger.kind == "postgresql" and config.strategy.name == "ema-cross-binance-testnet"
    # the configuration names the Secret (as the spec does) but carries no environment and no value
    assert set(json.loads(configmap["data"]["runtime.json"])) <= {f.alias for f in RuntimeConfig.model_fields.values()}
    assert secret_requirements(s, SETTINGS)[0].keys == ("api-key", "api-secret")


def test_a_paper_strategy_without_a_ledger_secret_keeps_its_ledger_in_sqlite_on_the_scratch_volume():
    config = render_runtime_config(strategy(example("paper-ema-cross")), SETTINGS)
    assert config.ledger.kind == "sqlite" and config.ledger.sqlite_path == "/var/lib/livestrat/ledger.sqlite"
    assert config.catalog_path == "/data/catalog" and config.http_port == 8080
    assert config.halt_budget_seconds == 48.0  # 60 s grace minus a fifth
    with_default = render_runtime_config(
        strategy(example("paper-ema-cross")), OperatorSettings(default_ledger_secret="ledger-dsn")
    )
    assert with_default.ledger.kind == "postgresql"


def test_strategy_pods_listen_where_the_operators_settings_say_and_their_configuration_is_unchanged_by_default():
    default = render_runtime_config(strategy(example("paper-ema-cross")), SETTINGS)
    assert default.http_host is None and "httpHost" not in json.loads(default.dumps())  # 0.0.0.0, as before
    assert default.http_bind_host == "0.0.0.0"
    explicit = render_runtime_config(
        strategy(example("paper-ema-cross")), OperatorSettings(runtime_http_host="0.0.0.0")
    )
    assert explicit == default  # the default said out loud is the default
    ipv6 = render_runtime_config(strategy(example("paper-ema-cross")), OperatorSettings(runtime_http_host="::"))
    assert ipv6.http_host == "::" and json.loads(ipv6.dumps())["httpHost"] == "::"


def test_a_gcs_catalog_is_a_gcsfuse_csi_volume_with_the_sidecar_annotations_and_workload_identity():
    s = strategy(example("gcs-fuse-catalog"))
    template = build_pod_template(s, SETTINGS)
    [volume] = [v for v in template["spec"]["volumes"] if v["name"] == "catalog"]
    assert volume["csi"] == {
        "driver": GCSFUSE_DRIVER,
        "readOnly": True,
        "volumeAttributes": {
            "bucketName": "acme-market-data",
            "mountOptions": "implicit-dirs,file-cache:max-size-mb:2048,only-dir=catalogs/binance-2024",
        },
    }
    annotations = template["metadata"]["annotations"]
    assert annotations["gke-gcsfuse/volumes"] == "true"
    assert {"gke-gcsfuse/cpu-limit", "gke-gcsfuse/memory-limit", "gke-gcsfuse/ephemeral-storage-limit"} <= set(
        annotations
    )
    account = build_service_account(s, SETTINGS)
    assert account["metadata"]["annotations"] == {
        "iam.gke.io/gcp-service-account": "strategy-reader@acme-trading.iam.gserviceaccount.com"
    }


def test_a_gcs_catalog_without_a_bucket_takes_the_operators_default_or_is_refused():
    doc = catalog_variants()["gcsFuse-default-bucket"]
    template = build_pod_template(strategy(doc), SETTINGS)
    [volume] = [v for v in template["spec"]["volumes"] if v["name"] == "catalog"]
    assert volume["csi"]["volumeAttributes"]["bucketName"] == "default-bucket"
    problems = spec_problems(strategy(doc), OperatorSettings())
    assert [p.reason for p in problems] == ["BucketRequired"]


def test_a_pvc_catalog_mounts_its_directory_read_only():
    template = build_pod_template(strategy(catalog_variants()["persistentVolumeClaim"]), SETTINGS)
    [volume] = [v for v in template["spec"]["volumes"] if v["name"] == "catalog"]
    [mount] = [m for m in template["spec"]["containers"][0]["volumeMounts"] if m["name"] == "catalog"]
    assert volume["persistentVolumeClaim"] == {"claimName": "market-data", "readOnly": True}
    assert mount == {"name": "catalog", "mountPath": "/data/catalog", "readOnly": True, "subPath": "catalogs/binance"}


def test_an_existing_service_account_is_bound_instead_of_created():
    doc = example("paper-ema-cross")
    doc["spec"]["pod"] = {"serviceAccountName": "team-strategies"}
    s = strategy(doc)
    children = build_children(s, SETTINGS, replicas=1)
    assert "ServiceAccount" not in [c["kind"] for c in children]
    binding = next(c for c in children if c["kind"] == "RoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "team-strategies", "namespace": "desk"}]


def test_the_config_hash_follows_the_configuration_not_the_scaling():
    doc = example("paper-ema-cross")
    base = build_statefulset(strategy(doc), SETTINGS, replicas=1)
    digest = base["spec"]["template"]["metadata"]["annotations"][labels.CONFIG_HASH_ANNOTATION]
    assert base["metadata"]["annotations"][labels.CONFIG_HASH_ANNOTATION] == digest
    scaled = copy.deepcopy(doc)
    scaled["spec"]["replicas"] = 0
    other_generation = build_statefulset(strategy(scaled, generation=9), SETTINGS, replicas=0)
    assert other_generation["spec"]["template"] == base["spec"]["template"]
    changed = copy.deepcopy(doc)
    changed["spec"]["risk"]["maxDailyLoss"] = 1
    assert build_statefulset(strategy(changed), SETTINGS, replicas=1)["spec"]["template"] != base["spec"]["template"]
    nonce = copy.deepcopy(doc)
    nonce["spec"]["restartNonce"] = "again"
    restarted = build_statefulset(strategy(nonce), SETTINGS, replicas=1)["spec"]["template"]
    assert restarted["metadata"]["annotations"][labels.RESTART_NONCE_ANNOTATION] == "again"
    assert restarted["metadata"]["annotations"][labels.CONFIG_HASH_ANNOTATION] != digest
    image = OperatorSettings(live_namespaces=["desk"], default_gcs_bucket="default-bucket", runtime_image="other:2")
    other_image = build_statefulset(strategy(doc), image, replicas=1)["spec"]["template"]
    assert other_image["metadata"]["annotations"][labels.CONFIG_HASH_ANNOTATION] != digest


@pytest.mark.parametrize(
    ("namespace", "settings", "reasons"),
    [
        ("desk", OperatorSettings(live_namespaces=["desk"]), ["LedgerRequired"]),
        ("desk", OperatorSettings(live_namespaces=["desk"], default_ledger_secret="dsn"), []),
        (
            "elsewhere",
            OperatorSettings(live_namespaces=["desk"], default_ledger_secret="dsn"),
            ["LiveTradingNotAllowed"],
        ),
        ("desk", OperatorSettings(), ["LiveTradingNotAllowed", "LedgerRequired"]),
    ],
)
def test_live_trading_needs_an_allowed_namespace_and_a_postgresql_ledger(namespace, settings, reasons):
    doc = example("live-binance-testnet")
    doc["spec"].pop("ledger")
    problems = spec_problems(strategy(doc, namespace=namespace), settings)
    assert [p.reason for p in problems] == reasons
    for problem in problems:
        assert "spec." in problem.message or "namespace" in problem.message  # says what to change


def test_where_promotion_is_required_a_live_strategy_runs_only_through_one():
    # Helm value liveTrading.requirePromotion: removing spec.promotion must not be a way around the gate.
    settings = OperatorSettings(live_namespaces=["desk"], promotion_required=True)
    plain = example("live-binance-testnet")
    problems = spec_problems(strategy(plain, namespace="desk"), settings)
    assert [p.reason for p in problems] == ["PromotionRequired"]
    assert "spec.promotion" in problems[0].message and "liveTrading.requirePromotion" in problems[0].message
    assert spec_problems(strategy(example("live-ema-cross-promoted"), namespace="desk"), settings) == []
    assert spec_problems(strategy(example("paper-ema-cross"), namespace="desk"), settings) == []
    assert spec_problems(strategy(plain, namespace="desk"), OperatorSettings(live_namespaces=["desk"])) == []


def test_the_pod_template_says_which_part_of_it_the_strategy_asked_for():
    doc = example("paper-ema-cross")
    template = build_statefulset(strategy(doc), SETTINGS, replicas=1)["spec"]["template"]
    spec_hash = template["metadata"]["annotations"][labels.SPEC_HASH_ANNOTATION]
    other_image = SETTINGS.model_copy(update={"runtime_image": "registry.example/runtime:9"})
    rebuilt = build_statefulset(strategy(doc), other_image, replicas=1)["spec"]["template"]
    # the operator's settings change what the pod runs, not what the strategy asked for
    assert rebuilt["metadata"]["annotations"][labels.SPEC_HASH_ANNOTATION] == spec_hash
    assert (
        rebuilt["metadata"]["annotations"][labels.CONFIG_HASH_ANNOTATION]
        != (template["metadata"]["annotations"][labels.CONFIG_HASH_ANNOTATION])
    )
    for change in ({"risk": {**doc["spec"]["risk"], "maxDailyLoss": 1}}, {"restartNonce": "again"}):
        changed = copy.deepcopy(doc)
        changed["spec"].update(change)
        built = build_statefulset(strategy(changed), SETTINGS, replicas=1)["spec"]["template"]
        assert built["metadata"]["annotations"][labels.SPEC_HASH_ANNOTATION] != spec_hash
    for same in ({"replicas": 0}, {"updatePolicy": "Manual"}):
        changed = copy.deepcopy(doc)
        changed["spec"].update(same)
        built = build_statefulset(strategy(changed, generation=9), SETTINGS, replicas=1)["spec"]["template"]
        assert built["metadata"]["annotations"][labels.SPEC_HASH_ANNOTATION] == spec_hash


@pytest.mark.parametrize(
    ("image", "allowed"),
    [
        ("ghcr.io/acme/runtime:1.2", True),
        ("ghcr.io/acme/strategies/runtime@sha256:abc", True),
        ("ghcr.io/acme-evil/runtime:1.2", False),  # a prefix ends at a path, tag or digest boundary
        ("docker.io/library/python:3.11", False),
        ("registry.internal:5000/livestrat/runtime:2", True),
    ],
)
def test_a_strategy_runs_only_images_under_the_allowed_prefixes(image, allowed):
    settings = OperatorSettings.from_env(
        {"LIVESTRAT_ALLOWED_IMAGE_PREFIXES": "ghcr.io/acme, registry.internal:5000/livestrat/"}
    )
    doc = example("paper-ema-cross")
    doc["spec"]["pod"] = {"image": image}
    reasons = [p.reason for p in spec_problems(strategy(doc), settings)]
    assert reasons == ([] if allowed else ["ImageNotAllowed"])
    assert spec_problems(strategy(doc), OperatorSettings()) == []  # no prefixes: any image


def test_a_strategy_runs_as_a_service_account_of_its_choosing_only_when_the_operator_allows_it():
    doc = example("paper-ema-cross")
    doc["spec"]["pod"] = {"serviceAccountName": "namespace-admin"}
    [problem] = spec_problems(strategy(doc), OperatorSettings())
    assert problem.reason == "ServiceAccountNotAllowed" and "spec.pod.serviceAccountName" in problem.message
    allowing = OperatorSettings.from_env({"LIVESTRAT_ALLOW_SERVICE_ACCOUNT_NAME": "true"})
    assert spec_problems(strategy(doc), allowing) == []
