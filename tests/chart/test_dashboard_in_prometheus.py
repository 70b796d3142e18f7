"""The chart's Grafana dashboard against a real Prometheus scraping a real strategy pod's runtime and the real operator.

The desk applies the paper example; the real operator renders its pod; the stand-in kubelet runs the pod's real
``livestrat runtime``, which replays the sample and trades. A real ``prometheus`` (127.0.0.1, its data in the test's
temporary directory, stopped by PID) scrapes it and the operator through the scrape jobs prometheus-operator would
generate from the prod release's PodMonitors (tests/support/prometheus.py), over targets carrying the labels
Kubernetes discovery gives those pods: the pod the operator rendered, and the operator's pod from the chart's
StatefulSet. Then every query of every panel, with the dashboard's variables substituted as Grafana does for a
selection, must return data: a query naming a metric or label that the real scrape does not produce fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from livestrat.kube_emulator.emulator import KubernetesEmulator
from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk, example
from tests.support.helm import find, only, render
from tests.support.kube import wait_for
from tests.support.operator import fast_settings, running_operator
from tests.support.prometheus import PodTarget, PrometheusServer, monitor_job, scrape_config

pytestmark = pytest.mark.slow

NAMESPACE = "trading"
NAME = "ema-cross-btc"


@pytest.fixture
def desk(emulator: KubernetesEmulator, kube_env: Path) -> Desk:
    emulator.add_namespace(NAMESPACE)
    return Desk(emulator, kube_env, NAMESPACE)


def dashboard(docs: list[dict]) -> dict[str, Any]:
    configmap = next(d for d in find(docs, "ConfigMap") if d["metadata"]["name"].endswith("-dashboard"))
    (text,) = configmap["data"].values()
    return json.loads(text)


def panel_queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) of every target of every panel, rows' panels included."""
    found: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            found.extend((panel["title"], t["expr"]) for t in panel.get("targets", []) if t.get("expr"))
            walk(panel.get("panels", []))

    walk(board["panels"])
    return found


def grafana_regex_escape(value: str) -> str:
    """A selected value in a PromQL regex matcher, as Grafana's Prometheus datasource writes it for a multi-value
    variable (``prometheusSpecialRegexEscape``: regex metacharacters escaped, twice for PromQL's string)."""
    return re.sub(r"[$^*{}\[\]'+?.()|]", lambda m: "\\\\" + m.group(0), value.replace("\\", "\\\\\\\\"))


def substitute(expr: str, selection: dict[str, list[str] | None], board: dict[str, Any]) -> str:
    """``expr`` with ``$var`` and ``${var}`` replaced for a selection (``None``: "All", the variable's allValue)."""
    variables = {v["name"]: v for v in board["templating"]["list"]}

    def value(name: str) -> str:
        chosen = selection[name]
        if chosen is None:
            return variables[name]["allValue"]
        escaped = [grafana_regex_escape(v) for v in chosen]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"

    out = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: value(m.group(1) or m.group(2)), expr)
    assert "$" not in out, f"a variable left in {out!r}"
    return out


def alert_selectors(rule: dict[str, Any]) -> list[tuple[str, str]]:
    """(alert, vector selector) of every ``metric{...}`` in the rules' expressions."""
    return [
        (r["alert"], selector)
        for group in rule["spec"]["groups"]
        for r in group["rules"]
        if "alert" in r
        for selector in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*\{[^}]*\}", r["expr"])
    ]


async def declared(prometheus: PrometheusServer, selector: str) -> bool:
    """Whether the target of the selector's job declares the metric (HELP/TYPE in its exposition), as a counter."""
    name, job = selector.split("{")[0], re.search(r'job="([^"]+)"', selector)
    assert job, f"{selector}: the rules select by job"
    family = name.removesuffix("_total")
    metadata = await prometheus.api("targets/metadata", metric=family, match_target=f'{{job="{job.group(1)}"}}')
    return any(m["type"] == "counter" for m in metadata)


async def variable_options(
    prometheus: PrometheusServer, board: dict[str, Any], name: str, selection: dict
) -> list[str]:
    """The values Grafana offers for a ``label_values(SELECTOR, LABEL)`` variable (its label values API call)."""
    variable = next(v for v in board["templating"]["list"] if v["name"] == name)
    query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
    found = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
    assert found, f"variable {name}: not a label_values query: {query}"
    selector = substitute(found.group(1), selection, board)
    return await prometheus.api(f"label/{found.group(2)}/values", **{"match[]": selector})


# The operator is scraped as monitoring.kind says: its pod directly (prod's), or through its Service.
@pytest.mark.parametrize("operator_monitor", ["PodMonitor", "ServiceMonitor"])
async def test_every_dashboard_query_and_every_alerted_series_has_data_in_a_real_prometheus_scraping_a_runtime_and_the_operator(
    emulator, desk: Desk, kube_env, tmp_path, operator_monitor
):
    docs = render("prod", {"monitoring.kind": operator_monitor})
    board = dashboard(docs)
    monitors = [d for d in docs if d["kind"] in ("PodMonitor", "ServiceMonitor")]
    strategies = next(m for m in monitors if m["metadata"]["name"].endswith("-strategies"))
    (own,) = [m for m in monitors if m is not strategies]
    assert own["kind"] == operator_monitor
    service = only(docs, "Service")
    via_service = operator_monitor == "ServiceMonitor"
    operator_set = only(docs, "StatefulSet")
    template = operator_set["spec"]["template"]
    (operator_container,) = template["spec"]["containers"]
    operator_pod = f"{operator_set['metadata']['name']}-0"
    assert {p["name"] for p in operator_container["ports"]} == {"metrics", "health"}

    settings = fast_settings(stale_after_seconds=30)
    async with (
        Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kube_env, runtime=True) as kubelet,
        running_operator(emulator, settings),
    ):
        await desk.apply(example("paper-ema-cross"))
        await wait_for(lambda: desk.phase(NAME) == "Running", timeout=90)
        trading = lambda: desk.status(NAME).get("trading") or {}  # noqa: E731
        await wait_for(lambda: trading().get("fills", 0) > 0 and trading().get("replay", {}).get("finished"), 120)

        (pod,) = desk.pods(NAME)
        (runtime,) = pod["spec"]["containers"]
        running = kubelet.containers[(NAMESPACE, pod["metadata"]["name"])]
        strategy_target = PodTarget(
            address=f"127.0.0.1:{running.port}",
            namespace=NAMESPACE,
            pod=pod["metadata"]["name"],
            container=runtime["name"],
            port=runtime["ports"][0]["name"],
            pod_labels=pod["metadata"]["labels"],
        )
        operator_labels = {**template["metadata"]["labels"], "statefulset.kubernetes.io/pod-name": operator_pod}
        operator_targets = [
            PodTarget(
                address=f"127.0.0.1:{port}",
                namespace=operator_set["metadata"]["namespace"],
                pod=operator_pod,
                container=operator_container["name"],
                port=name,
                pod_labels=operator_labels,
                service=service["metadata"]["name"] if via_service else None,
                service_labels=service["metadata"]["labels"] if via_service else {},
                service_port=next((p["name"] for p in service["spec"]["ports"] if p["targetPort"] == name), None),
            )
            # the health port too: the monitor's port must keep only the metrics one
            for name, port in (("metrics", settings.metrics_port), ("health", settings.health_port))
        ]

        prometheus = await PrometheusServer.start(
            tmp_path / "prometheus",
            [scrape_config(strategies, [strategy_target], "1s"), scrape_config(own, operator_targets, "1s")],
        )
        try:
            # the labels the real scrape attached: what the alert rules and tests/chart/test_alerts.py assume
            up = await prometheus.query_until("up == 1", lambda r: len(r) >= 2, timeout=60)
            by_job = {s["metric"]["job"]: s["metric"] for s in up}
            strategy_job, operator_job = monitor_job(strategies), monitor_job(own, service=service["metadata"]["name"])
            assert set(by_job) == {strategy_job, operator_job}, up
            targets = await prometheus.targets()
            assert len(targets["activeTargets"]) == 2, targets["activeTargets"]
            dropped = [t["discoveredLabels"]["__address__"] for t in targets["droppedTargets"]]
            assert dropped == [operator_targets[1].address]  # the health port: not the monitor's
            assert by_job[strategy_job] == {
                "__name__": "up",
                "job": strategy_job,
                "namespace": NAMESPACE,
                "strategy": NAME,
                "pod": pod["metadata"]["name"],
                "container": runtime["name"],
                "endpoint": strategies["spec"]["podMetricsEndpoints"][0]["port"],
                "instance": strategy_target.address,
            }
            assert by_job[operator_job] == {
                "__name__": "up",
                "job": operator_job,
                "namespace": operator_set["metadata"]["namespace"],
                "pod": operator_pod,
                "container": operator_container["name"],
                "endpoint": "metrics",
                "instance": operator_targets[0].address,
            } | ({"service": service["metadata"]["name"]} if via_service else {})

            # Grafana's variables: the namespace and the strategy are offered, then chosen (and "All")
            all_selected: dict[str, list[str] | None] = {"namespace": None, "strategy": None}
            assert NAMESPACE in await variable_options(prometheus, board, "namespace", all_selected)
            assert NAME in await variable_options(prometheus, board, "strategy", {"namespace": [NAMESPACE]})
            one = {"namespace": [NAMESPACE], "strategy": [NAME]}

            empty: list[str] = []
            for selection in (one, all_selected):
                for title, expr in panel_queries(board):
                    query = substitute(expr, selection, board)
                    if not await prometheus.query_until(query, bool):  # a rate needs two scrapes first
                        empty.append(f"{title}: {query}")
            assert empty == [], "dashboard queries that return nothing:\n" + "\n".join(empty)

            # and every series the alert rules watch is scraped with the labels they select by (a counter of
            # events that have not happened, such as reconcile errors, has no series yet: its target declares it)
            unwatched = [
                f"{alert}: {selector}"
                for alert, selector in alert_selectors(only(docs, "PrometheusRule"))
                if not await prometheus.query(selector) and not await declared(prometheus, selector)
            ]
            assert unwatched == [], "alert rules watching series the real scrape does not give:\n" + "\n".join(
                unwatched
            )
        finally:
            prometheus.stop()
        assert prometheus.process.returncode is not None
