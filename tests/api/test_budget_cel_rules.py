"""The RiskBudget CRD's CEL rules, each read from the generated CRD and evaluated by a real CEL
implementation on an object it must accept and one it must refuse (as tests/api/test_cel_rules.py
does for the LiveStrategy's)."""

from __future__ import annotations

import pytest

from livestrat.api.budget_spec import ALLOCATION_RULES, AllocationRule
from livestrat.api.crd import build_budget_crd
from tests.api.test_cel_rules import evaluate, rules_by_message, unbounded_fields

SCHEMA = build_budget_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
RULES = rules_by_message(SCHEMA)
MEMBERS = ["ema-a", "ema-b"]

CASES = [
    ("the name must be a DNS-1035 label", {"metadata": {"name": "account-a"}}, {"metadata": {"name": "Account"}}),
    ("the name must be a DNS-1035 label", {"metadata": {"name": "a" * 51}}, {"metadata": {"name": "a" * 52}}),
    ("at least one limit", {"maxDailyLoss": 100.0}, {}),
    ("at least one limit", {"instruments": [{"instrument": "BTCUSDT.BINANCE"}]}, {}),
    (
        "rule Weights needs allocation.weights",
        {"rule": "Weights", "weights": {"ema-a": 1.0}},
        {"rule": "Weights"},
    ),
    (
        "rule Equal computes the weights itself",
        {"rule": "Equal"},
        {"rule": "Equal", "weights": {"ema-a": 1.0}},
    ),
    (
        "rule Performance computes the weights itself",
        {"rule": "Performance"},
        {"rule": "Performance", "weights": {"ema-a": 1.0}},
    ),
    (
        "every key of allocation.weights must be a member",
        {"members": MEMBERS, "allocation": {"rule": "Weights", "weights": {"ema-a": 2.0, "ema-b": 1.0}}},
        {"members": MEMBERS, "allocation": {"rule": "Weights", "weights": {"ema-a": 2.0, "ema-c": 1.0}}},
    ),
    (
        "Performance scales weights by limits.maxDrawdown",
        {"members": MEMBERS, "allocation": {"rule": "Performance"}, "limits": {"maxDrawdown": 500.0}},
        {"members": MEMBERS, "allocation": {"rule": "Performance"}, "limits": {"maxDailyLoss": 500.0}},
    ),
]


@pytest.mark.parametrize(("fragment", "good", "bad"), CASES, ids=[c[0][:40] for c in CASES])
def test_budget_rule_accepts_good_and_refuses_bad(fragment, good, bad):
    assert evaluate(fragment, good, SCHEMA) is True
    assert evaluate(fragment, bad, SCHEMA) is False


def test_every_budget_rule_has_a_case():
    covered = {message for message in RULES if any(fragment in message for fragment, _, _ in CASES)}
    assert covered == set(RULES), set(RULES) - covered


def test_the_allocation_rules_come_from_the_table():
    """One rule per allocation rule of the table: a rule added there is checked by the API server at once."""
    messages = [m for m, (path, _rule) in RULES.items() if path == ".spec.allocation"]
    assert len(messages) == len(ALLOCATION_RULES)
    assert all(any(f"rule {rule}" in m for m in messages) for rule in AllocationRule)


def test_every_field_a_budget_rule_reads_is_bounded_for_the_cost_estimator():
    assert unbounded_fields(SCHEMA, RULES) == []
