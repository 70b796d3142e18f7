"""Observations of a strategy built without any server or clock, for the tests of the operator's decisions.

``observe(...)`` is an :class:`~strategy_operator.observe.observation.Observation` of the paper
example (its desired children built by the operator's own builders) at a fixed time ``NOW``;
``run(obs)`` makes the plan and the report from it, as one reconciliation does.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from livestrat.api.resource import LiveStrategy
from livestrat.api.status import LiveStrategyStatus
from strategy_operator.build.manifests import build_children
from strategy_operator.build.policy import SpecProblem
from strategy_operator.decide.plan import Plan
from strategy_operator.decide.plan import plan as make_plan
from strategy_operator.decide.status import Report, report
from strategy_operator.observe.observation import Observation, PodView
from strategy_operator.settings import OperatorSettings
from tests.support.desk import example

NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
SETTINGS = OperatorSettings(stale_after_seconds=60, start_timeout_seconds=300, halt_timeout_margin_seconds=30)
STS_UID = "sts-uid"


BREACH = {
    "state": "Halted",
    "breachedLimit": "maxDrawdown",
    "reason": "3100 below peak",
    "breachedAt": "2026-03-02T11:00:00.250Z",
}


def stamp(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parsed(**spec: Any) -> LiveStrategy:
    doc = example("paper-ema-cross")
    doc["spec"].update(spec)
    doc["metadata"].update(namespace="desk", uid="uid-1", generation=3)
    return LiveStrategy.model_validate(doc)


def statefulset(strategy: LiveStrategy, replicas: int = 1, *, settled: bool = True) -> dict[str, Any]:
    sts = copy.deepcopy(build_children(strategy, SETTINGS, replicas=replicas)[-1])
    sts["metadata"].update(uid=STS_UID, generation=5)
    sts["status"] = {"observedGeneration": 5 if settled else 4}
    return sts


def pod(
    *,
    ready: bool = True,
    config_hash: str | None = None,
    controlled: bool = True,
    terminating_for: float | None = None,
    age: float = 30,
    ready_for: float = 20,
    running: bool = True,
    **extra: Any,
) -> PodView:
    return PodView(
        name="ema-cross-btc-0",
        uid="pod-uid",
        controlled=controlled,
        terminating=terminating_for is not None,
        deletion_started=NOW - timedelta(seconds=terminating_for) if terminating_for is not None else None,
        grace_seconds=60.0,
        created=NOW - timedelta(seconds=age),
        ready=ready,
        ready_since=NOW - timedelta(seconds=ready_for) if ready else None,
        running=running,
        config_hash=config_hash,
        **extra,
    )


def observe(
    strategy: LiveStrategy | None = None,
    *,
    sts: dict | bool | None = True,
    pods: list[PodView] | None = None,
    status: dict | None = None,
    kill_switch: bool = False,
    problems: list[SpecProblem] | None = None,
    acknowledgement: str | None = None,
    running_config: dict | None = None,
    since: float = 0,
    deleting: bool = False,
    settings: OperatorSettings = SETTINGS,
    recorded: str | None = None,
    deferred: list[SpecProblem] | None = None,
    spec_replicas: Any = 1,
) -> Observation:
    strategy = strategy or parsed()
    children = build_children(strategy, settings, replicas=1)
    desired_hash = children[-1]["metadata"]["annotations"]["livestrat.io/config-hash"]
    desired_config = json.loads(children[0]["data"]["runtime.json"])
    if sts is True:
        sts = statefulset(strategy, strategy.spec.replicas)
    pods = [dataclasses.replace(p, config_hash=p.config_hash or desired_hash) for p in (pods or [])]
    return Observation(
        name="ema-cross-btc",
        namespace="desk",
        generation=3,
        spec=strategy.spec,
        deleting=deleting,
        acknowledgement=acknowledgement,
        status=LiveStrategyStatus.model_validate(status or {}),
        kill_switch=kill_switch,
        problems=problems or [],
        statefulset=sts or None,
        pods=pods,
        desired_hash=desired_hash,
        running_config=running_config if running_config is not None else desired_config,
        desired_config=desired_config,
        now=NOW,
        phase_since=NOW - timedelta(seconds=since),
        settings=settings,
        spec_replicas=spec_replicas,
        risk_recorded=recorded,
        deferred_problems=deferred or [],
        desired_statefulset=children[-1],
    )


def run(obs: Observation) -> tuple[Plan, Report]:
    decided = make_plan(obs)
    return decided, report(obs, decided)


def condition(reported: Report, type_: str) -> dict[str, Any]:
    """A condition of the reported status, as it is written (camelCase)."""
    return next(c.to_wire() for c in reported.status.conditions if c.type == type_)


def status(**wire: Any) -> LiveStrategyStatus:
    """A status from its wire form; a condition without a transition time gets one (events do not read it)."""
    for item in wire.get("conditions", []):
        item.setdefault("lastTransitionTime", stamp(3600))
    return LiveStrategyStatus.model_validate(wire)
