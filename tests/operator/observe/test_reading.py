"""Reading a LiveStrategy: the spec strictly, the status leniently, any JSON anywhere; a broken part never stops a halt."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from livestrat.api.status import LiveStrategyStatus
from strategy_operator.decide.plan import plan
from strategy_operator.observe.reading import read_object, read_status
from tests.support.malformed import Malformation, malformations, oddities, paper_strategy
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


def test_the_desks_halt_is_read_on_its_own_also_when_the_other_annotations_do_not_read():
    strategy = paper_strategy("m")
    assert read_object(strategy).halt_request is None and read_object(strategy).annotations_writable
    strategy["metadata"]["annotations"] = {"livestrat.io/halt": "desk: alice", "odd": 7}
    reading = read_object(strategy)
    assert reading.halt_request == "desk: alice" and reading.strategy is None  # MetadataInvalid, halted all the same
    assert not reading.annotations_writable  # a merge patch of one key would keep 7, which the server refuses
    strategy["metadata"]["annotations"] = {"livestrat.io/halt": True}
    assert read_object(strategy).halt_request == "(a note that is a boolean)"
    strategy["metadata"]["annotations"] = ["livestrat.io/halt"]  # not a map: nothing to read a halt from
    assert read_object(strategy).halt_request is None and not read_object(strategy).annotations_writable


# ------------------------------------------------------------------------------------------------
# Whatever is stored (tests/support/malformed.py): never an exception, always what does not read.
# ------------------------------------------------------------------------------------------------

RUNNING_STATUS = {
    "phase": "Running",
    "replicas": 1,
    "selector": "livestrat.io/strategy=m",
    "conditions": [READY],
    "trading": {"fills": 3, "nodeState": "Running"},
    "risk": {"state": "Active"},
}


def stored(case: Malformation) -> dict:
    return case.applied_to({**paper_strategy(case.name), "status": copy.deepcopy(RUNNING_STATUS)})


@pytest.mark.parametrize("case", malformations(), ids=lambda case: case.name)
def test_every_malformed_object_reads_to_what_does_not_read(case: Malformation):
    reading = read_object(stored(case))
    if case.path[0] in ("spec", "metadata"):
        assert reading.strategy is None
        [problem] = reading.problems
        assert problem.reason == case.answer.reason and case.field in problem.message
    elif case.answer.repaired:
        assert reading.strategy is not None and [str(u) for u in reading.status_repairs if case.field in u.field]
    else:
        assert reading.strategy is not None and [str(u) for u in reading.unreadable_status if case.field in u.field]


@pytest.mark.parametrize("case", oddities(), ids=lambda case: case.name)
def test_an_odd_but_valid_object_reads_whole(case: Malformation):
    reading = read_object(stored(case))
    assert reading.strategy is not None and reading.problems == []
    assert reading.unreadable_status == () and reading.status_repairs == () and reading.scalable


def test_what_does_not_read_is_named_never_echoed():
    secret = read_object(stored(next(c for c in malformations() if c.name == "unknown-api-secret")))
    assert "spec.venue.apiSecret" in secret.problems[0].message
    assert "s3cr3t" not in secret.problems[0].message and "Secret" in secret.problems[0].message
    long = read_object(stored(next(c for c in malformations() if c.name == "huge-strategy-path")))
    assert "at most 512 characters" in long.problems[0].message and len(long.problems[0].message) < 1024
    listed = read_object({**paper_strategy("m"), "spec": {"replicas": "1", "mode": 7, "risk": [], "data": 1}})
    assert listed.problems[0].message.count("spec.") >= 5 and "more" in listed.problems[0].message


def test_what_the_api_server_would_refuse_is_not_coerced():
    # Read laxly, "1" would be 1 and true a position limit of 1.0; the API server stores neither.
    for spec in ({"replicas": "1"}, {"risk": {"maxPosition": True}}, {"risk": {"maxNotionalPerOrder": "7"}}):
        doc = paper_strategy("m")
        doc["spec"].update(spec)
        assert read_object(doc).problems[0].reason == "SpecInvalid", spec
    assert [u.field for u in read_object({**paper_strategy("m"), "status": {"replicas": "1"}}).status_repairs] == [
        "status.replicas"
    ]


@pytest.mark.parametrize(
    ("spec", "status", "replicas", "scalable"),
    [
        ({"replicas": 0}, None, 0, True),
        ({}, {"replicas": 1, "selector": "x"}, 1, True),
        ({"replicas": "0"}, None, None, False),
        ({"replicas": 10**20}, None, None, False),
        ({"replicas": 0, "mode": "yolo"}, None, 0, True),  # the rest does not read: replicas does
        ("a string", None, None, False),
        ({"replicas": 1}, {"replicas": "one"}, 1, False),  # until the operator writes its status back
        ({"replicas": 1}, {"selector": ["x"]}, 1, False),
        ({"replicas": 1}, "a string", 1, False),
    ],
)
def test_spec_replicas_reads_on_its_own_and_the_scale_subresource_needs_its_fields_readable(
    spec, status, replicas, scalable
):
    reading = read_object({**paper_strategy("m"), "spec": spec, "status": status})
    assert (reading.spec_replicas, reading.scalable) == (replicas, scalable)
