"""`livestrat validate`: every example passes; each kind of mistake is refused, naming its field."""

from __future__ import annotations

import copy
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from livestrat.api.crd import openapi_schema
from livestrat.api.names import NAME_MAX_LENGTH
from livestrat.api.twin import TWIN_NAME_MESSAGE
from livestrat.api.validation import problems
from livestrat.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
SECRET_VALUE = "sk-live-DO-NOT-PRINT-9f8e7d"


def example(name: str = "paper-ema-cross.yaml") -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all((ROOT / "examples" / name).read_text()) if d["kind"] == "LiveStrategy"]
    return docs[0]


def live() -> dict[str, Any]:
    return example("live-binance-testnet.yaml")


def live_deribit() -> dict[str, Any]:
    return example("live-deribit-testnet.yaml")


def test_there_are_examples_for_paper_live_gcs_and_halted():
    names = {p.name for p in EXAMPLES}
    assert {
        "paper-ema-cross.yaml",
        "live-binance-testnet.yaml",
        "live-deribit-testnet.yaml",
        "gcs-fuse-catalog.yaml",
        "halted.yaml",
    } <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates(path):
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc.get("kind") == "LiveStrategy":
            assert problems(doc) == []


def _set(doc: dict, dotted: str, value: Any) -> dict:
    doc = copy.deepcopy(doc)
    *parents, last = dotted.split(".")
    node = doc
    for part in parents:
        node = node.setdefault(part, {})
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return doc


_DELETE = object()

# (case id, base manifest, field to set, value, field the error must name, words the message must hold)
INVALID = [
    ("replicas-2", example, "spec.replicas", 2, "spec.replicas", "less than or equal to 1"),
    ("replicas-negative", example, "spec.replicas", -1, "spec.replicas", "greater than or equal to 0"),
    ("replicas-string", example, "spec.replicas", "1", "spec.replicas", "valid integer"),
    ("wrong-mode", example, "spec.mode", "demo", "spec.mode", "'paper' or 'live'"),
    ("wrong-adapter", example, "spec.venue.adapter", "kraken", "spec.venue.adapter", "'sandbox'"),
    ("wrong-halt-policy", example, "spec.haltPolicy", "panic", "spec.haltPolicy", "'cancelOrders' or 'flatten'"),
    ("wrong-update-policy", example, "spec.updatePolicy", "auto", "spec.updatePolicy", "'Auto' or 'Manual'"),
    ("wrong-on-breach", example, "spec.risk.onBreach", "Ignore", "spec.risk.onBreach", "ScaleToZero"),
    ("negative-daily-loss", example, "spec.risk.maxDailyLoss", -100, "spec.risk.maxDailyLoss", "greater than 0"),
    ("zero-notional", example, "spec.risk.maxNotionalPerOrder", 0, "spec.risk.maxNotionalPerOrder", "greater than 0"),
    ("bad-rate", example, "spec.risk.maxOrderSubmitRate", "100 per second", "spec.risk.maxOrderSubmitRate", "format"),
    ("unknown-field", example, "spec.risk.maxDailyLose", 10, "spec.risk.maxDailyLose", "unknown field"),
    ("inline-api-key", example, "spec.venue.apiKey", SECRET_VALUE, "spec.venue.apiKey", "Secret"),
    (
        "inline-secret-in-options",
        example,
        "spec.venue.options",
        {"api_secret": SECRET_VALUE},
        "spec.venue.options",
        "Secret",
    ),
    (
        "two-data-sources",
        example,
        "spec.data.catalog.persistentVolumeClaim",
        {"claimName": "md"},
        "spec.data.catalog",
        "exactly one",
    ),
    ("no-data-source", example, "spec.data.catalog", {}, "spec.data.catalog", "exactly one"),
    (
        "live-without-credentials",
        live,
        "spec.venue.credentialsSecret",
        _DELETE,
        "spec.venue.credentialsSecret",
        "requires",
    ),
    (
        "paper-with-credentials",
        example,
        "spec.venue.credentialsSecret",
        {"name": "keys"},
        "spec.venue.credentialsSecret",
        "must not",
    ),
    ("paper-on-unfed-venue", example, "spec.venue.adapter", "okx", "spec.venue.adapter", "sandbox"),
    # Paper on a live feed (venue.adapter binance) takes market data from the venue: no catalog replay
    ("paper-on-live-feed-with-replay", example, "spec.venue.adapter", "binance", "spec.data", "live feed"),
    ("live-on-sandbox", live, "spec.venue.adapter", "sandbox", "spec.venue.adapter", "live mode"),
    ("live-with-replay", live, "spec.data.replay", {"speed": 0}, "spec.data.replay", "paper mode only"),
    # A sandbox has no market of its own: without a replay it would start, trade nothing and exit 2
    # (NodeBuildError), after `validate` said ok.
    ("paper-without-replay", example, "spec.data.replay", _DELETE, "spec.data.replay", "requires data.replay"),
    ("live-with-balances", live, "spec.venue.startingBalances", ["1 USDT"], "spec.venue.startingBalances", "must not"),
    (
        "paper-without-balances",
        example,
        "spec.venue.startingBalances",
        _DELETE,
        "spec.venue.startingBalances",
        "requires",
    ),
    (
        "account-type-of-other-adapter",
        live,
        "spec.venue.accountType",
        "linear",
        "spec.venue.accountType",
        "not offered",
    ),
    (
        "deribit-account-type-of-other-adapter",
        live_deribit,
        "spec.venue.accountType",
        "swap",
        "spec.venue.accountType",
        "deribit: future|option|spot|futureCombo|optionCombo",
    ),
    ("instrument-off-venue", example, "spec.instruments", ["ETHUSDT.BYBIT"], "spec.instruments", "venue.name"),
    ("no-instruments", example, "spec.instruments", [], "spec.instruments", "at least 1"),
    ("bad-import-path", example, "spec.strategy.strategyPath", "ema cross", "spec.strategy.strategyPath", "format"),
    (
        "bad-exec-algorithm-path",
        example,
        "spec.strategy.execAlgorithms",
        [
            {
                "algorithmPath": "twap algo",
                "configPath": "nautilus_trader.examples.algorithms.twap:TWAPExecAlgorithmConfig",
            }
        ],
        "spec.strategy.execAlgorithms[0].algorithmPath",
        "format",
    ),
    (
        "exec-algorithm-path-too-long",
        example,
        "spec.strategy.execAlgorithms",
        [{"algorithmPath": "a" * 600 + ":B", "configPath": "a:B"}],
        "spec.strategy.execAlgorithms[0].algorithmPath",
        "at most 512",
    ),
    (
        "credential-in-exec-algorithm-config",
        example,
        "spec.strategy.execAlgorithms",
        [{"algorithmPath": "a:B", "configPath": "a:C", "config": {"api_secret": SECRET_VALUE}}],
        "spec.strategy",
        "execAlgorithms[0].config.api_secret looks like a credential",
    ),
    (
        "replay-backwards",
        example,
        "spec.data.replay",
        {"start": "2024-02-01T00:00:00Z", "end": "2024-01-01T00:00:00Z"},
        "spec.data.replay.start",
        "before",
    ),
    (
        "grace-too-short",
        example,
        "spec.pod.terminationGracePeriodSeconds",
        1,
        "spec.pod.terminationGracePeriodSeconds",
        "greater than or equal to 15",
    ),
    (
        "both-service-accounts",
        example,
        "spec.pod",
        {
            "serviceAccountName": "wi",
            "workloadIdentity": {"gcpServiceAccount": "reader@p-1234.iam.gserviceaccount.com"},
        },
        "spec.pod.workloadIdentity",
        "not both",
    ),
    (
        "bad-balance",
        example,
        "spec.venue.startingBalances",
        ["lots of money"],
        "spec.venue.startingBalances[0]",
        "format",
    ),
    ("name-too-long", example, "metadata.name", "x" * 60, "metadata.name", "at most 52 characters"),
    ("name-not-a-dns-label", example, "metadata.name", "my.strategy", "metadata.name", "DNS-1035 label"),
    ("name-starting-with-a-digit", example, "metadata.name", "1st-ema", "metadata.name", "starting with a letter"),
    (
        "credential-in-strategy-config",
        example,
        "spec.strategy.config",
        {"venue": {"api_key": SECRET_VALUE}},
        "spec.strategy",
        "config.venue.api_key looks like a credential",
    ),
    (
        "config-too-large",
        example,
        "spec.strategy.config",
        {"weights": [0.123456] * 40_000},
        "spec.strategy.config",
        "at most 256 KiB",
    ),
    (
        "live-without-loss-limit",
        live,
        "spec.risk",
        {"maxPosition": 1, "maxNotionalPerOrder": 10},
        "spec.risk",
        "requires risk.maxDailyLoss",
    ),
    ("live-with-sample-data", live, "spec.data.sample", {"bars": 100}, "spec.data.sample", "paper mode only"),
    (
        "rate-over-no-time",
        example,
        "spec.risk.maxOrderSubmitRate",
        "5/00:00:00",
        "spec.risk.maxOrderSubmitRate",
        "at least one second",
    ),
    (
        "wrong-pull-policy",
        example,
        "spec.pod",
        {"imagePullPolicy": "Sometimes"},
        "spec.pod.imagePullPolicy",
        "'Always', 'IfNotPresent' or 'Never'",
    ),
]


@pytest.mark.parametrize(
    ("base", "field", "value", "path", "words"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_invalid_manifest_is_rejected_naming_the_field(base, field, value, path, words):
    found = problems(_set(base(), field, value))
    assert found, "manifest was accepted"
    named = [p for p in found if p.path == path]
    assert named, f"no problem names {path}: {found}"
    assert any(words in p.message for p in named), named
    assert all(SECRET_VALUE not in str(p) for p in found)


def test_a_config_of_200_kib_is_fine():
    assert problems(_set(example(), "spec.strategy.config", {"weights": [0.123456] * 25_000})) == []


def test_a_name_is_refused_with_the_api_servers_own_message():
    rule = openapi_schema()["x-kubernetes-validations"][0]
    found = problems(_set(example(), "metadata.name", "1st-ema"))
    assert [(p.path, p.message) for p in found] == [("metadata.name", rule["message"])]


def test_a_name_that_leaves_no_room_for_the_twin_is_refused_only_with_a_twin():
    live = example("live-binance-testnet.yaml")
    live["metadata"]["name"] = "e" * (NAME_MAX_LENGTH - 3)
    assert problems(live) == []
    live["spec"]["twin"] = {"startingBalances": ["10000 USDT"]}
    assert [(p.path, p.message) for p in problems(live)] == [("metadata.name", TWIN_NAME_MESSAGE)]


def test_not_a_live_strategy_is_named():
    assert problems({"apiVersion": "v1", "kind": "Secret"})[0].path == "apiVersion/kind"
    assert problems(["a", "list"])[0].message.startswith("a manifest must be")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "livestrat.cli", *args], capture_output=True, text=True, cwd=ROOT, check=False
    )


@pytest.mark.slow  # runs a process: the slow tier (tests/support/tiers.py)
def test_validate_command_exits_zero_on_examples():
    result = run_cli("validate", *map(str, EXAMPLES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": ok") == len(EXAMPLES)


@pytest.mark.slow  # runs a process: the slow tier (tests/support/tiers.py)
def test_validate_command_prints_each_error_and_exits_non_zero(tmp_path):
    bad = _set(_set(example(), "spec.replicas", 2), "spec.venue.apiKey", SECRET_VALUE)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = run_cli("validate", str(path))
    assert result.returncode == 1
    assert "spec.replicas:" in result.stdout
    assert "spec.venue.apiKey:" in result.stdout
    assert SECRET_VALUE not in result.stdout + result.stderr


@pytest.mark.slow  # runs a process: the slow tier (tests/support/tiers.py)
def test_validate_command_reports_unreadable_yaml_and_checks_the_other_files(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(f"spec: [unclosed {SECRET_VALUE}\n")
    missing = tmp_path / "missing.yaml"
    result = run_cli("validate", str(broken), str(missing), str(EXAMPLES[0]))
    assert result.returncode == 1
    assert "broken.yaml: not valid YAML at line 2, column 1" in result.stdout
    assert "missing.yaml: cannot read" in result.stdout
    assert result.stdout.rstrip().endswith(
        "ok (" + yaml.safe_load_all(EXAMPLES[0].read_text()).__next__()["metadata"]["name"] + ")"
    )
    # the offending line is not echoed: it could hold a credential
    assert SECRET_VALUE not in result.stdout + result.stderr


@pytest.mark.slow  # runs a process: the slow tier (tests/support/tiers.py)
def test_unquoted_timestamps_read_as_kubectl_reads_them(tmp_path):
    text = (
        (ROOT / "examples" / "paper-ema-cross.yaml")
        .read_text()
        .replace("speed: 0 ", "speed: 0\n      start: 2024-01-01T00:00:00Z\n      end: 2024-01-02T00:00:00Z ")
    )
    assert "start: 2024-01-01T00:00:00Z" in text
    path = tmp_path / "unquoted.yaml"
    path.write_text(text)
    result = run_cli("validate", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_impossible_date_is_a_problem_not_a_crash():
    found = problems(_set(example(), "spec.data.replay", {"start": "2024-13-45T99:00:00Z"}))
    assert [p.path for p in found] == ["spec.data.replay.start"]
    assert "not a real date" in found[0].message


def test_a_misspelt_field_gets_a_suggestion():
    found = problems(_set(example(), "spec.risk.maxDailyLose", 10))
    assert found[0].message.startswith("unknown field (did you mean maxDailyLoss?)")


@pytest.mark.slow  # runs a process: the slow tier (tests/support/tiers.py)
def test_a_file_without_a_live_strategy_names_what_it_found(tmp_path):
    path = tmp_path / "secret.yaml"
    path.write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n")
    result = run_cli("validate", str(path))
    assert result.returncode == 1
    assert "no LiveStrategy or RiskBudget document in this file (found kind Secret)" in result.stdout


def test_validate_takes_a_directory_of_manifests_as_kubectl_apply_does(tmp_path, capsys):
    # every *.yaml and *.yml of the directory, sorted; not its subdirectories; other files ignored
    (tmp_path / "b-paper.yml").write_text((ROOT / "examples" / "paper-ema-cross.yaml").read_text())
    (tmp_path / "a-bad.yaml").write_text(yaml.safe_dump(_set(example(), "spec.replicas", 2)))
    (tmp_path / "notes.txt").write_text("not a manifest")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "c.yaml").write_text("{{ not yaml")
    (tmp_path / "empty").mkdir()
    assert main(["validate", str(tmp_path), str(tmp_path / "empty")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{tmp_path / 'a-bad.yaml'}: INVALID"
    assert lines[1].startswith("  spec.replicas:")
    assert lines[2:] == [
        f"{tmp_path / 'b-paper.yml'}: ok (ema-cross-btc)",
        f"{tmp_path / 'empty'}: a directory with no *.yaml or *.yml file in it",
    ]


def test_validate_reads_a_manifest_from_standard_input(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO((ROOT / "examples" / "halted.yaml").read_text()))
    assert main(["validate", "-"]) == 0
    assert capsys.readouterr().out == "<stdin>: ok (ema-cross-halted)\n"

    monkeypatch.setattr("sys.stdin", io.StringIO(yaml.safe_dump(_set(example(), "spec.replicas", 2))))
    assert main(["validate", "-", str(ROOT / "examples" / "halted.yaml")]) == 1
    out = capsys.readouterr().out
    assert out.startswith("<stdin>: INVALID\n  spec.replicas:")
    assert out.endswith("halted.yaml: ok (ema-cross-halted)\n")


def budget_example() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "examples" / "risk-budget.yaml").read_text())


def test_a_risk_budget_validates_and_each_mistake_is_named():
    assert problems(budget_example()) == []
    cases = {
        "spec.limits.maxDailyLose": ("spec.limits.maxDailyLose", "did you mean maxDailyLoss?"),
        "spec.currency": ("spec.currency", "does not match the allowed format"),
        "spec.allocation": ("spec.allocation.weights", "every key of allocation.weights must be a member"),
        "metadata.name": ("metadata.name", "DNS-1035 label of at most 51 characters"),
    }
    values = {
        "spec.limits.maxDailyLose": 10,
        "spec.currency": "usdt",
        "spec.allocation": {"rule": "Weights", "weights": {"not-a-member": 1}},
        "metadata.name": "Binance_Main",
    }
    for dotted, (path, message) in cases.items():
        found = problems(_set(budget_example(), dotted, values[dotted]))
        assert [p.path for p in found] == [path], dotted
        assert message in found[0].message, found
