"""The chart's alerting rules, evaluated by Prometheus's own ``promtool test rules`` over series the operator exports.

promtool comes from Debian's ``prometheus`` package (``make tools`` takes it out into .tools/bin:
scripts/ensure-promtool.sh). Never skipped: the alerts are tested with the real promtool or not at all.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.helm import only, render

pytestmark = [
    pytest.mark.slow,  # runs processes (helm, promtool): the slow tier (tests/support/tiers.py)
]


def rules_file(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The prod release's rules as a Prometheus rules file, and the labels its operator's metrics carry."""
    docs = render("prod")
    rule = only(docs, "PrometheusRule")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    operator = only(docs, "StatefulSet")
    return path, {"job": operator["metadata"]["name"], "namespace": operator["metadata"]["namespace"]}


def annotations(alert: str) -> dict[str, str]:
    rule = only(render("prod"), "PrometheusRule")
    return next(r["annotations"] for g in rule["spec"]["groups"] for r in g["rules"] if r.get("alert") == alert)


def promtool(tmp_path: Path, tests: list[dict]) -> None:
    if shutil.which("promtool") is None:
        pytest.fail("promtool not found: run `make tools` (scripts/ensure-promtool.sh), then put .tools/bin on PATH")
    rules, _ = rules_file(tmp_path)
    spec = tmp_path / "tests.yaml"
    spec.write_text(yaml.safe_dump({"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": tests}))
    result = subprocess.run(["promtool", "test", "rules", str(spec)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def series(name: str, labels: dict[str, str], values: str) -> dict:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {"series": f"{name}{{{inner}}}", "values": values}


def test_every_replica_paused_fires_livestrat_operator_paused_and_a_standby_does_not(tmp_path):
    _, labels = rules_file(tmp_path)
    replica = lambda n: {**labels, "pod": f"{labels['job']}-{n}", "instance": f"10.0.0.{n}:8080"}  # noqa: E731
    up = [series("up", replica(n), "1x20") for n in (0, 1)]
    all_paused = [series("livestrat_operator_acting", replica(n), "0x20") for n in (0, 1)]
    one_acting = [
        series("livestrat_operator_acting", replica(0), "1x20"),
        series("livestrat_operator_acting", replica(1), "0x20"),  # the standby
    ]
    told = annotations("LivestratOperatorPaused")
    assert told["summary"] == f"livestrat operator {labels['namespace']}/{labels['job']} is paused: no replica acts"
    assert "livestrat_operator_paused{reason}" in told["description"]
    expected = {"exp_labels": {"severity": "critical"}, "exp_annotations": told}
    promtool(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": up + all_paused,
                "alert_rule_test": [
                    {"eval_time": "3m", "alertname": "LivestratOperatorPaused", "exp_alerts": []},  # not yet: for
                    {"eval_time": "10m", "alertname": "LivestratOperatorPaused", "exp_alerts": [expected]},
                ],
            },
            {
                "interval": "1m",
                "input_series": up + one_acting,
                "alert_rule_test": [{"eval_time": "10m", "alertname": "LivestratOperatorPaused", "exp_alerts": []}],
            },
        ],
    )
