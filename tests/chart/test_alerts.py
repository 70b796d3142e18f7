"""The chart's alerting rules, evaluated by Prometheus's own ``promtool test rules`` over series the operator exports.

Every alert of the rendered PrometheusRule has a story that fires it (``FIRING``) and is quiet over a healthy
fleet (``test_a_healthy_fleet_fires_no_alert``, which evaluates every alert the chart renders); a new alert
without a firing story fails ``test_every_alert_of_the_chart_has_a_promtool_test``.

The series carry the labels Prometheus attaches when it scrapes through the chart's monitors (the job each
monitor's relabeling sets, namespace, pod, container, endpoint, instance: see tests/support/prometheus.py for the
rules prometheus-operator generates), so a rule that groups or filters by a label the real scrape does not give
fails here.

promtool comes from Debian's ``prometheus`` package (``make tools`` takes it out into .tools/bin:
scripts/ensure-promtool.sh). Never skipped: the alerts are tested with the real promtool or not at all.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from strategy_operator.build import labels as pod_labels
from tests.support.helm import only, render
from tests.support.prometheus import monitor_job

pytestmark = [
    pytest.mark.slow,  # runs processes (helm, promtool): the slow tier (tests/support/tiers.py)
]

STRATEGY, STRATEGY_NAMESPACE = "ema-cross-btc", "desk"


@dataclass(frozen=True)
class Scrape:
    """The labels the prod release's monitors give the operator's and a strategy's series."""

    operator: dict[str, str]  # job and namespace of the operator's targets
    operator_pod: dict[str, str]  # the StatefulSet's name, the container's and the monitored port's
    strategy: dict[str, str]  # every label of a strategy pod's target

    def replica(self, n: int) -> dict[str, str]:
        """Operator replica ``n``'s target labels (a PodMonitor: pod, container and endpoint too)."""
        return {
            **self.operator,
            "pod": f"{self.operator_pod['statefulset']}-{n}",
            "container": self.operator_pod["container"],
            "endpoint": self.operator_pod["port"],
            "instance": f"10.0.0.{n + 10}:8080",
        }


def prod_rules() -> dict:
    return only(render("prod"), "PrometheusRule")


def alerts() -> dict[str, dict]:
    """Every alert of the prod release's PrometheusRule, by name."""
    return {r["alert"]: r for g in prod_rules()["spec"]["groups"] for r in g["rules"] if "alert" in r}


def scrape() -> Scrape:
    docs = render("prod")
    operator = only(docs, "StatefulSet")
    monitors = [d for d in docs if d["kind"] in ("PodMonitor", "ServiceMonitor")]
    strategies = next(m for m in monitors if m["metadata"]["name"].endswith("-strategies"))
    (own,) = [m for m in monitors if m is not strategies]
    namespace = operator["metadata"]["namespace"]
    return Scrape(
        operator={"job": monitor_job(own, service=operator["metadata"]["name"]), "namespace": namespace},
        operator_pod={
            "statefulset": operator["metadata"]["name"],
            "container": operator["spec"]["template"]["spec"]["containers"][0]["name"],
            "port": own["spec"]["podMetricsEndpoints"][0]["port"],
        },
        strategy={
            "job": monitor_job(strategies),
            "namespace": STRATEGY_NAMESPACE,
            "strategy": STRATEGY,  # the PodMonitor's relabeling from the pod label livestrat.io/strategy
            "pod": f"{STRATEGY}-0",
            "container": pod_labels.CONTAINER,
            "endpoint": strategies["spec"]["podMetricsEndpoints"][0]["port"],
            "instance": "10.0.1.7:8080",
        },
    )


def expand(text: str, labels: dict[str, str], value: str) -> str:
    """An annotation as Prometheus renders it for these labels (the chart's templates use only these two forms)."""
    text = re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), text)
    return re.sub(r"\{\{\s*\$value\s*\}\}", value, text)


def expected(alert: str, labels: dict[str, str], value: str = "1", annotations: dict[str, str] | None = None) -> dict:
    """One firing alert as promtool reports it: its labels (the rule's added) and its rendered annotations
    (``annotations`` as the on-call reads them, where the rule's templates are more than labels and value)."""
    rule = alerts()[alert]
    every = {**labels, **rule.get("labels", {})}
    return {
        "exp_labels": every,
        "exp_annotations": annotations or {k: expand(v, every, value) for k, v in rule["annotations"].items()},
    }


def series(name: str, labels: dict[str, str], values: str) -> dict:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {"series": f"{name}{{{inner}}}", "values": values}


def promtool(tmp_path: Path, tests: list[dict]) -> None:
    if shutil.which("promtool") is None:
        pytest.fail("promtool not found: run `make tools` (scripts/ensure-promtool.sh), then put .tools/bin on PATH")
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": prod_rules()["spec"]["groups"]}))
    spec = tmp_path / "tests.yaml"
    spec.write_text(yaml.safe_dump({"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": tests}))
    result = subprocess.run(["promtool", "test", "rules", str(spec)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def check(alert: str, input_series: list[dict], *at: tuple[str, list[dict]]) -> dict:
    """One promtool test: ``alert`` evaluated at each (time, expected alerts) over one-minute samples."""
    return {
        "interval": "1m",
        "input_series": input_series,
        "alert_rule_test": [{"eval_time": t, "alertname": alert, "exp_alerts": exp} for t, exp in at],
    }


def healthy_fleet(s: Scrape) -> list[dict]:
    """Forty minutes of a fleet with nothing wrong: two operator replicas up (one acting, one standby), no
    reconcile errors, a strategy Running; its pod ready, trading Active, pushing status, recording every fill."""
    standby, acting = s.replica(1), s.replica(0)
    strategy = s.strategy
    return [
        series("up", acting, "1x40"),
        series("up", standby, "1x40"),
        series("livestrat_operator_acting", acting, "1x40"),
        series("livestrat_operator_acting", standby, "0x40"),
        *(series("livestrat_operator_strategies", acting | {"phase": p}, v) for p, v in _PHASES.items()),
        *(series("livestrat_operator_strategies", standby | {"phase": p}, "0x40") for p in _PHASES),
        series("livestrat_operator_reconcile_errors_total", acting | {"error": "ApiError"}, "2x40"),  # old, settled
        series("up", strategy, "1x40"),
        series("livestrat_ready", strategy, "1x40"),
        series("livestrat_risk_state", strategy | {"state": "Active"}, "1x40"),
        series("livestrat_risk_state", strategy | {"state": "Reducing"}, "0x40"),
        series("livestrat_risk_state", strategy | {"state": "Halted"}, "0x40"),
        series("livestrat_status_pushes_total", strategy, "0+6x40"),  # one every 10 s
        series("livestrat_ledger_write_failures", strategy, "0x40"),
        series("livestrat_fills_not_recorded_total", strategy, "0x40"),
    ]


_PHASES = {"Running": "1x40", "Failed": "0x40", "RiskHalted": "0x40", "Halted": "0x40"}


def replace(fleet: list[dict], *changed: dict) -> list[dict]:
    """The fleet with some of its series' values changed (or added)."""
    by_series = {s["series"]: s for s in fleet}
    by_series.update({c["series"]: c for c in changed})
    return list(by_series.values())


def without(fleet: list[dict], name: str) -> list[dict]:
    return [s for s in fleet if not s["series"].startswith(name + "{")]


# --------------------------------------------------------------------------- each alert's firing story


def risk_halted(s: Scrape) -> list[dict]:
    where = {"namespace": STRATEGY_NAMESPACE, "strategy": STRATEGY}
    halted = replace(
        healthy_fleet(s),
        series("livestrat_risk_state", s.strategy | {"state": "Active"}, "1x4 0x35"),
        series("livestrat_risk_state", s.strategy | {"state": "Halted"}, "0x4 1x35"),
    )
    # the pod scaled to zero (onBreach ScaleToZero): no runtime series, the operator's phase says it
    by_operator = replace(
        without(without(healthy_fleet(s), "livestrat_risk_state"), "livestrat_ready"),
        series("livestrat_operator_strategies", s.replica(0) | {"phase": "Running"}, "0x40"),
        series("livestrat_operator_strategies", s.replica(0) | {"phase": "RiskHalted"}, "1x40"),
    )
    operator_labels = {k: v for k, v in s.replica(0).items() if k not in ("instance", "pod")} | {"phase": "RiskHalted"}
    review = '; acknowledge only after review (docs/operations.md, "Risk halts").'
    by_strategy = {
        "summary": f"Risk halt: {STRATEGY_NAMESPACE}/{STRATEGY}",
        "description": "A post-trade risk limit broke and the strategy stopped trading. "
        f"kubectl describe livestrategy -n {STRATEGY_NAMESPACE} {STRATEGY}{review}",
    }
    by_phase = {
        "summary": "Risk halt: 1 LiveStrategy(ies) in phase RiskHalted",
        "description": "A post-trade risk limit broke and the strategy stopped trading. Its pod is gone "
        f"(onBreach ScaleToZero): find it with kubectl get livestrategies -A | grep RiskHalted{review}",
    }
    return [
        check(
            "LiveStrategyRiskHalted",
            halted,
            ("3m", []),
            ("6m", [expected("LiveStrategyRiskHalted", where, annotations=by_strategy)]),
        ),
        check(
            "LiveStrategyRiskHalted",
            by_operator,
            ("10m", [expected("LiveStrategyRiskHalted", operator_labels, annotations=by_phase)]),
        ),
    ]


def heartbeat_stale(s: Scrape) -> list[dict]:
    where = {"namespace": STRATEGY_NAMESPACE, "strategy": STRATEGY}
    stale = replace(healthy_fleet(s), series("livestrat_status_pushes_total", s.strategy, "0+6x10 60x30"))
    return [
        check(
            "LiveStrategyHeartbeatStale",
            stale,
            ("11m", []),  # the last push less than staleAfter ago
            ("20m", [expected("LiveStrategyHeartbeatStale", where)]),
        )
    ]


def not_ready(s: Scrape) -> list[dict]:
    where = {"namespace": STRATEGY_NAMESPACE, "strategy": STRATEGY}
    unready = replace(healthy_fleet(s), series("livestrat_ready", s.strategy, "1x5 0x35"))
    unreachable = replace(
        without(healthy_fleet(s), "livestrat_ready"),  # a scrape that fails yields up 0 and no sample of the pod
        series("up", s.strategy, "1x5 0x35"),
    )
    return [
        check("LiveStrategyNotReady", unready, ("7m", []), ("20m", [expected("LiveStrategyNotReady", where)])),
        check("LiveStrategyNotReady", unreachable, ("20m", [expected("LiveStrategyNotReady", where)])),
    ]


def ledger_write_failing(s: Scrape) -> list[dict]:
    where = {"namespace": STRATEGY_NAMESPACE, "strategy": STRATEGY}
    failing = replace(healthy_fleet(s), series("livestrat_ledger_write_failures", s.strategy, "0x5 1+1x35"))
    refused = replace(healthy_fleet(s), series("livestrat_fills_not_recorded_total", s.strategy, "0x5 1+1x35"))
    return [
        check(
            "LiveStrategyLedgerWriteFailing",
            failing,
            ("6m", []),  # not yet: for 2m
            ("10m", [expected("LiveStrategyLedgerWriteFailing", where)]),
        ),
        check("LiveStrategyLedgerWriteFailing", refused, ("10m", [expected("LiveStrategyLedgerWriteFailing", where)])),
    ]


def failed(s: Scrape) -> list[dict]:
    fleet = replace(
        healthy_fleet(s),
        series("livestrat_operator_strategies", s.replica(0) | {"phase": "Running"}, "1x5 0x35"),
        series("livestrat_operator_strategies", s.replica(0) | {"phase": "Failed"}, "0x5 1x35"),
    )
    labels = {k: v for k, v in s.replica(0).items() if k not in ("instance", "pod")} | {"phase": "Failed"}
    return [check("LiveStrategyFailed", fleet, ("20m", [expected("LiveStrategyFailed", labels, value="1")]))]


def reconcile_errors(s: Scrape) -> list[dict]:
    errors = replace(
        healthy_fleet(s),
        series("livestrat_operator_reconcile_errors_total", s.replica(0) | {"error": "ApiError"}, "2+1x40"),
    )
    where = {"namespace": s.operator["namespace"], "error": "ApiError"}
    return [
        check(
            "LivestratOperatorReconcileErrors",
            errors,
            ("8m", []),  # not yet: for reconcileErrorsFor
            ("30m", [expected("LivestratOperatorReconcileErrors", where)]),
        )
    ]


def operator_down(s: Scrape) -> list[dict]:
    down = replace(healthy_fleet(s), series("up", s.replica(0), "1x5 0x35"), series("up", s.replica(1), "1x5 0x35"))
    gone = [x for x in healthy_fleet(s) if s.operator["job"] not in x["series"]]  # no target at all
    # absent() of a comparison keeps no label (only of a bare selector): the rule sets the release's namespace and
    # job itself, so Alertmanager can route it by namespace like every other alert
    fires = [expected("LivestratOperatorDown", {"namespace": s.operator["namespace"], "job": s.operator["job"]})]
    return [
        check("LivestratOperatorDown", down, ("7m", []), ("20m", fires)),
        check("LivestratOperatorDown", gone, ("20m", fires)),
    ]


def operator_paused(s: Scrape) -> list[dict]:
    paused = replace(healthy_fleet(s), series("livestrat_operator_acting", s.replica(0), "0x40"))
    return [
        check(
            "LivestratOperatorPaused",
            paused,
            ("3m", []),  # not yet: for operatorDownFor
            (
                "10m",
                [expected("LivestratOperatorPaused", {"namespace": s.operator["namespace"], "job": s.operator["job"]})],
            ),
        )
    ]


FIRING: dict[str, Callable[[Scrape], list[dict]]] = {
    "LiveStrategyRiskHalted": risk_halted,
    "LiveStrategyHeartbeatStale": heartbeat_stale,
    "LiveStrategyNotReady": not_ready,
    "LiveStrategyLedgerWriteFailing": ledger_write_failing,
    "LiveStrategyFailed": failed,
    "LivestratOperatorReconcileErrors": reconcile_errors,
    "LivestratOperatorDown": operator_down,
    "LivestratOperatorPaused": operator_paused,
}


def fires(tests: list[dict], alert: str) -> bool:
    return any(t["alertname"] == alert and t["exp_alerts"] for case in tests for t in case["alert_rule_test"])


def test_every_alert_of_the_chart_has_a_promtool_test():
    rendered, s = set(alerts()), scrape()
    assert sorted(rendered - set(FIRING)) == [], "alerts of the chart without a promtool test that fires them"
    assert sorted(set(FIRING) - rendered) == [], "promtool tests of alerts the chart no longer has"
    for alert, story in FIRING.items():
        assert fires(story(s), alert), f"{alert}'s story never expects it to fire"


@pytest.mark.parametrize("alert", sorted(FIRING))
def test_the_alert_fires_when_its_story_happens(alert, tmp_path):
    promtool(tmp_path, FIRING[alert](scrape()))


def test_a_healthy_fleet_fires_no_alert(tmp_path):
    s = scrape()
    promtool(tmp_path, [check(a, healthy_fleet(s), ("5m", []), ("39m", [])) for a in sorted(alerts())])


def test_the_operator_alerts_name_the_release_and_what_to_look_at():
    s = scrape()
    paused = alerts()["LivestratOperatorPaused"]["annotations"]
    assert (
        paused["summary"]
        == f"livestrat operator {s.operator['namespace']}/{s.operator['job']} is paused: no replica acts"
    )
    assert "livestrat_operator_paused{reason}" in paused["description"]
    down = alerts()["LivestratOperatorDown"]["annotations"]
    assert down["summary"] == f"livestrat operator {s.operator['namespace']}/{s.operator['job']} is down"
