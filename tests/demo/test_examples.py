"""Which examples the demo applies: those that run with nothing outside this machine, paced to be watched."""

from __future__ import annotations

from livestrat.demo.examples import choose, paced, why_not_here
from tests.support.desk import EXAMPLES, example


def test_the_paper_examples_on_sample_data_run_here_and_the_others_say_what_they_need():
    chosen = {e.path.name: e for e in choose(EXAMPLES, speed=60)}
    assert {name for name, e in chosen.items() if e.skipped is None} == {
        "paper-ema-cross.yaml",
        "halted.yaml",
        "paper-shipped-code.yaml",
    }
    # its code travels in a ConfigMap of the same file, applied with it as `kubectl apply -f` would
    assert [c["kind"] for c in chosen["paper-shipped-code.yaml"].companions] == ["ConfigMap"]
    assert chosen["paper-ema-cross.yaml"].companions == ()
    assert "keys" in chosen["live-binance-testnet.yaml"].skipped
    assert "network" in chosen["paper-live-binance.yaml"].skipped
    assert "bucket" in chosen["gcs-fuse-catalog.yaml"].skipped
    assert chosen["risk-budget.yaml"].skipped == "a RiskBudget with no LiveStrategy in it"
    assert chosen["halted.yaml"].replicas == 0 and chosen["paper-ema-cross.yaml"].replicas == 1


def test_an_applied_example_replays_at_the_demos_pace_and_the_file_is_untouched():
    original = example("paper-ema-cross")
    assert paced(original, 60)["spec"]["data"]["replay"]["speed"] == 60
    assert original["spec"]["data"]["replay"]["speed"] == 0
    (applied,) = [e.document for e in choose(EXAMPLES, speed=120) if e.name == "ema-cross-btc"]
    assert applied["spec"]["data"]["replay"]["speed"] == 120


def test_a_sandbox_strategy_without_sample_data_has_nothing_to_replay():
    doc = example("paper-ema-cross")
    del doc["spec"]["data"]["sample"]
    assert "no sample data" in why_not_here(doc)
    doc = example("paper-ema-cross")
    doc["spec"]["venue"]["adapter"] = "sandboxx"
    assert why_not_here(doc).startswith("not a valid LiveStrategy")
