"""Reading a LiveStrategy: the status through the API's models, leniently; a broken part never stops a halt."""

from __future__ import annotations

import dataclasses

from livestrat.api.status import LiveStrategyStatus
from strategy_operator.decide.plan import plan
from strategy_operator.observe.reading import read_status
from tests.support.observations import observe, parsed, pod

READY = {"type": "Ready", "status": "True", "reason": "PodReady", "lastTransitionTime": "2026-03-02T11:00:00Z"}


def test_a_status_is_read_through_the_models_both_sides_write_it_with():
    status = read_status(
        {"phase": "Running", "conditions": [READY], "trading": {"fills": 3, "nodeState": "Running"}, "newer": 1}
    )
    assert isinstance(status, LiveStrategyStatus)
    assert status.phase == "Running" and status.conditions[0].reason == "PodReady" and status.trading.fills == 3


def test_a_part_of_the_status_that_does_not_read_is_left_out_and_the_rest_kept():
    broken = {
        "phase": "Running",
        "replicas": 7,  # beyond the model's bound
        "conditions": [READY, {"type": "Stale", "status": "Maybe", "reason": "x"}],
        "trading": {"fills": "many"},
        "risk": {"state": "Halted", "breachedAt": "2026-03-02T11:00:00Z"},
    }
    status = read_status(broken)
    assert status.phase == "Running" and status.replicas == 0 and status.trading is None
    assert [c.type for c in status.conditions] == ["Ready"]
    assert status.risk is not None and status.risk.state == "Halted"
    assert read_status(None) == LiveStrategyStatus() and read_status("garbage") == LiveStrategyStatus()


def test_a_halt_holds_whatever_else_in_the_status_is_broken():
    broken = read_status({"replicas": 7, "trading": {"fills": "many"}, "conditions": "not a list"})
    obs = observe(parsed(replicas=0), pods=[pod()])
    assert plan(dataclasses.replace(obs, status=broken)).replicas == 0
