"""Every metric the chart's alerts and dashboard query is one the runtime or the operator
exports: a renamed metric would otherwise silence an alert without anyone noticing."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from prometheus_client import generate_latest

from strategy_operator import metrics as operator_metrics
from strategy_runtime.report import metrics as runtime_metrics
from tests.support.helm import find, only, render

# Every test here runs a process (helm, kubectl, livestrat): the slow tier (tests/support/tiers.py).
pytestmark = pytest.mark.slow

SUFFIXES = ("", "_total", "_bucket", "_sum", "_count")


def queried_metrics() -> set[str]:
    docs = render("prod")
    rule = only(docs, "PrometheusRule")
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    (dashboard,) = find(docs, "ConfigMap")
    panels = json.loads(next(iter(dashboard["data"].values())))["panels"]
    exprs += [t["expr"] for p in panels for t in p["targets"]]
    return set(re.findall(r"\blivestrat_[a-z_]+\b", " ".join(exprs)))


def exported(exposition: bytes) -> set[str]:
    names = set()
    for line in exposition.decode().splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def covered(name: str, names: set[str]) -> bool:
    return any(name == n + s or n == name + s for n in names for s in SUFFIXES)


def runtime_exports() -> set[str]:
    metrics = runtime_metrics
    # Every optional number present, so that every family is exported.
    values = {
        f.name: ("Active" if f.name == "risk_state" else 1)
        for f in dataclasses.fields(metrics.RuntimeMetrics)
        if f.default is None
    }
    sample = metrics.RuntimeMetrics(
        strategy="trading-paper/ema-cross-btc",
        mode="paper",
        pnl={"total": {"USDT": 1}, "realized": {"USDT": 1}, "unrealized": {"USDT": 0}},
        positions={"BTCUSDT.BINANCE": 1},
        daily_pnl={"USDT": 1},
        drawdown={"USDT": 0},
        order_events={"OrderFilled": 1},
        **values,
    )
    registry = metrics.new_registry(lambda: sample)
    return exported(generate_latest(registry))


def operator_exports() -> set[str]:
    return exported(operator_metrics.OperatorMetrics({}).exposition())


def test_alerts_and_dashboard_query_only_metrics_the_runtime_exports():
    wanted = {m for m in queried_metrics() if not m.startswith("livestrat_operator_")}
    names = runtime_exports()
    assert sorted(m for m in wanted if not covered(m, names)) == []


def test_alerts_query_only_metrics_the_operator_exports():
    wanted = {m for m in queried_metrics() if m.startswith("livestrat_operator_")}
    assert wanted, "the operator's metrics are not used"
    names = operator_exports()
    assert sorted(m for m in wanted if not covered(m, names)) == []
