"""The CRD's CEL rules, evaluated one by one with a real CEL implementation (cel-python).

Each rule is read from the generated CRD, never retyped here, and exercised on an object
it must accept and one it must refuse, so a rule that is always true (or always false)
fails this test.
"""

from __future__ import annotations

import re
from typing import Any

import celpy
import pytest

from livestrat.api.crd import build_crd
from livestrat.api.names import NAME_MAX_LENGTH
from livestrat.api.validation import to_cel

SCHEMA = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def rules_by_message(schema: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """message fragment → (schema path, rule)."""
    found: dict[str, tuple[str, str]] = {}

    def walk(node: dict[str, Any], path: str) -> None:
        for rule in node.get("x-kubernetes-validations", []):
            found[rule["message"]] = (path, rule["rule"])
        for name, sub in node.get("properties", {}).items():
            walk(sub, f"{path}.{name}")

    walk(schema, "")
    return found


RULES = rules_by_message(SCHEMA)


def evaluate(fragment: str, obj: dict[str, Any], root: dict[str, Any] = SCHEMA) -> bool:
    """Evaluate the one rule of ``root`` (a CRD's schema) whose message holds ``fragment``."""
    rules = RULES if root is SCHEMA else rules_by_message(root)
    matches = [(path, rule) for message, (path, rule) in rules.items() if fragment in message]
    assert len(matches) == 1, f"{fragment!r} matches {len(matches)} rules"
    path, rule = matches[0]
    schema = root
    for part in path.strip(".").split("."):
        schema = schema["properties"][part] if part else schema
    env = celpy.Environment()
    return bool(env.program(env.compile(rule)).evaluate({"self": to_cel(obj, schema)}))


VENUE_SANDBOX = {"adapter": "sandbox", "name": "SIM", "startingBalances": ["1 USD"]}
VENUE_LIVE = {"adapter": "okx", "credentialsSecret": {"name": "k"}}

CASES = [
    # (rule message fragment, accepted object, refused object)
    (
        "paper mode trades in the sandbox",
        {"mode": "paper", "venue": {"adapter": "binance", "startingBalances": ["1 USDT"]}},
        {"mode": "paper", "venue": VENUE_LIVE},
    ),
    (
        "live mode needs a venue adapter",
        {"mode": "live", "venue": VENUE_LIVE},
        {"mode": "live", "venue": VENUE_SANDBOX},
    ),
    (
        "paper on a live feed takes its market data from the venue",
        {"mode": "paper", "venue": {"adapter": "binance"}, "data": {"catalog": {"emptyDir": {}}}},
        {"mode": "paper", "venue": {"adapter": "binance"}, "data": {"replay": {"speed": 0}}},
    ),
    (
        "paper on a live feed takes its market data from the venue",
        {"mode": "paper", "venue": VENUE_SANDBOX, "data": {"sample": {}, "replay": {"speed": 0}}},
        {"mode": "paper", "venue": {"adapter": "binance"}, "data": {"sample": {}}},
    ),
    (
        "live mode requires venue.credentialsSecret",
        {"mode": "live", "venue": VENUE_LIVE},
        {"mode": "live", "venue": {"adapter": "okx"}},
    ),
    (
        "paper mode must not reference",
        {"mode": "paper", "venue": VENUE_SANDBOX},
        {"mode": "paper", "venue": {**VENUE_SANDBOX, "credentialsSecret": {"name": "k"}}},
    ),
    (
        "paper mode requires venue.startingBalances",
        {"mode": "paper", "venue": VENUE_SANDBOX},
        {"mode": "paper", "venue": {"adapter": "sandbox"}},
    ),
    (
        "paper mode on the sandbox adapter requires data.replay",
        {"mode": "paper", "venue": VENUE_SANDBOX, "data": {"replay": {"speed": 0}}},
        {"mode": "paper", "venue": VENUE_SANDBOX, "data": {"catalog": {"emptyDir": {}}}},
    ),
    (
        "live mode must not set venue.startingBalances",
        {"mode": "live", "venue": VENUE_LIVE},
        {"mode": "live", "venue": {**VENUE_LIVE, "startingBalances": ["1 USD"]}},
    ),
    (
        "data.replay is for paper",
        {"mode": "live", "data": {"catalog": {}}},
        {"mode": "live", "data": {"replay": {"speed": 0}}},
    ),
    (
        "every instrument must be on the simulated venue",
        {"venue": VENUE_SANDBOX, "instruments": ["A.SIM", "B.SIM"]},
        {"venue": VENUE_SANDBOX, "instruments": ["A.SIM", "B.OTHER"]},
    ),
    (
        "accountType is not offered",
        {"adapter": "bybit", "accountType": "linear"},
        {"adapter": "bybit", "accountType": "usdtFutures"},
    ),
    (
        "accountType is not offered",
        {"adapter": "deribit", "accountType": "option"},
        {"adapter": "deribit", "accountType": "swap"},
    ),
    (
        "credentials must not be written inline in options",
        {"options": {"use_reduce_only": False}},
        {"options": {"API_KEY": "x"}},
    ),
    (
        "set exactly one code source",
        {"configMap": {"name": "ema-v3"}},
        {"configMap": {"name": "ema-v3"}, "catalogVolume": {"path": "strategies"}},
    ),
    (
        "an emptyDir catalog starts empty",
        {"strategy": {"code": {"catalogVolume": {"path": "s"}}}, "data": {"catalog": {"gcsFuse": {}}}},
        {"strategy": {"code": {"catalogVolume": {"path": "s"}}}, "data": {"catalog": {"emptyDir": {}}}},
    ),
    ("the sandbox adapter needs venue.name", {"adapter": "sandbox", "name": "SIM"}, {"adapter": "sandbox"}),
    ("exactly one catalog source", {"emptyDir": {}}, {"emptyDir": {}, "gcsFuse": {"bucket": "bkt"}}),
    (
        "replay.start must be before replay.end",
        {"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z"},
        {"start": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"},
    ),
    ("not both", {"serviceAccountName": "a"}, {"serviceAccountName": "a", "workloadIdentity": {}}),
    ("data.sample writes synthetic data", {"mode": "live", "data": {}}, {"mode": "live", "data": {"sample": {}}}),
    (
        "promotion admits a live strategy from a paper one",
        {"mode": "live", "promotion": {"from": "paper"}},
        {"mode": "paper", "promotion": {"from": "paper"}},
    ),
    (
        "a paper twin runs beside a live strategy",
        {"mode": "live", "twin": {"startingBalances": ["100000 USDT"]}},
        {"mode": "paper", "twin": {"startingBalances": ["100000 USDT"]}},
    ),
    (
        "a paper twin trades on the venue's public market data",
        {"venue": {"adapter": "binance"}, "twin": {"startingBalances": ["100000 USDT"]}},
        {"venue": {"adapter": "okx"}, "twin": {"startingBalances": ["100000 USDT"]}},
    ),
    (
        "the paper twin is named NAME-twin",
        {"metadata": {"name": "e" * (NAME_MAX_LENGTH - 5)}, "spec": {"twin": {"startingBalances": ["1 USDT"]}}},
        {"metadata": {"name": "e" * (NAME_MAX_LENGTH - 4)}, "spec": {"twin": {"startingBalances": ["1 USDT"]}}},
    ),
    (
        "real money does not trade without limits",
        {"mode": "live", "risk": {"maxDailyLoss": 1.0, "maxPosition": 1.0, "maxNotionalPerOrder": 1.0}},
        {"mode": "live", "risk": {"maxPosition": 1.0, "maxNotionalPerOrder": 1.0}},
    ),
    (
        "name must be a DNS-1035 label",
        {"metadata": {"name": "ema-cross-btc"}},
        {"metadata": {"name": "1st-ema-cross"}},
    ),
    (
        "interval must be at least one second",
        {"maxOrderSubmitRate": "5/00:00:01", "maxOrderModifyRate": "5/00:01:00"},
        {"maxOrderSubmitRate": "5/00:00:01", "maxOrderModifyRate": "5/00:00:00"},
    ),
]


@pytest.mark.parametrize(("fragment", "good", "bad"), CASES, ids=[c[0][:40] for c in CASES])
def test_rule_accepts_good_and_refuses_bad(fragment, good, bad):
    assert evaluate(fragment, good) is True
    assert evaluate(fragment, bad) is False


def test_every_rule_has_a_case():
    covered = {message for message in RULES if any(fragment in message for fragment, _, _ in CASES)}
    assert covered == set(RULES), set(RULES) - covered


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("e", True),
        ("ema-2", True),
        ("e" * NAME_MAX_LENGTH, True),
        ("e" * (NAME_MAX_LENGTH + 1), False),  # its pod's controller-revision-hash label would pass 63
        ("2-ema", False),  # the Service's name must start with a letter
        ("ema.cross", False),
        ("Ema", False),
        ("ema-", False),
        ("ema_cross", False),
    ],
)
def test_the_name_rule_allows_only_names_every_child_can_take(name, allowed):
    assert evaluate("name must be a DNS-1035 label", {"metadata": {"name": name}}) is allowed


def test_no_catalog_source_is_refused_too():
    assert evaluate("exactly one catalog source", {}) is False


def as_typed_for_cel(schema: dict[str, Any]) -> dict[str, Any]:
    """The root schema as the API server types it for CEL (WithTypeAndObjectMeta).

    Unless kind and apiVersion are strings and metadata declares both name and generateName
    as strings, it replaces them with unbounded strings: bounds on metadata.name alone are lost.
    """
    props = schema["properties"]
    meta = props.get("metadata", {}).get("properties", {})
    if all(props.get(f, {}).get("type") == "string" for f in ("kind", "apiVersion")) and all(
        meta.get(f, {}).get("type") == "string" for f in ("name", "generateName")
    ):
        return schema
    unbounded = {"type": "string"}
    metadata = {"type": "object", "properties": {"name": unbounded, "generateName": unbounded}}
    return {**schema, "properties": {**props, "kind": unbounded, "apiVersion": unbounded, "metadata": metadata}}


def bounded(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    if kind == "string":
        return "maxLength" in node or "enum" in node
    if kind == "array":
        return "maxItems" in node and bounded(node.get("items", {}))
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return "maxProperties" in node and bounded(node["additionalProperties"])
    return True  # numbers, booleans, objects with declared fields cost a constant


def test_every_field_a_rule_reads_is_bounded_for_the_cost_estimator():
    """The API server refuses a CRD whose rule may cost more than its budget.

    It prices a rule by the largest value each field it reads may hold, ignoring patterns:
    a string without maxLength counts as ~3 MB, a list without maxItems as unbounded. So
    every string, list and map a rule reads must be bounded. cel-python has no cost model,
    so this is the check that stands in for the API server's.
    """
    assert unbounded_fields(SCHEMA, RULES) == []


def unbounded_fields(schema: dict[str, Any], rules: dict[str, tuple[str, str]]) -> list[str]:
    """Every field a rule of ``schema`` reads that the cost estimator would take as unbounded."""
    unbounded = []
    for path, rule in rules.values():
        node = as_typed_for_cel(schema)
        for part in path.strip(".").split("."):
            if part:
                node = node["properties"][part]
        for reference in re.findall(r"self((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", rule):
            target = node
            for field in reference.strip(".").split("."):
                target = target.get("properties", {}).get(field)
                if target is None:
                    break
                if not bounded(target):
                    unbounded.append(f"{path}{reference} in {rule!r}")
    return unbounded


def test_the_bound_check_sees_metadata_as_the_api_server_types_it():
    name_only = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 9}}}
    schema = {"type": "object", "properties": {"kind": {"type": "string"}, "apiVersion": {"type": "string"}}}
    typed = as_typed_for_cel({**schema, "properties": {**schema["properties"], "metadata": name_only}})
    assert not bounded(typed["properties"]["metadata"]["properties"]["name"])


def test_the_bound_check_notices_an_unbounded_string():
    assert not bounded({"type": "string", "pattern": "^[A-Z]{1,32}$"})
    assert not bounded({"type": "array", "maxItems": 3, "items": {"type": "string"}})
    assert bounded({"type": "array", "maxItems": 3, "items": {"type": "string", "maxLength": 9}})
