"""A runtime's heartbeat alone wakes no reconciler; every other change of a LiveStrategy does."""

from __future__ import annotations

from strategy_operator.wakeups import Heartbeats

KEY = ("default", "ema-cross-btc")


def strategy(heartbeat: str, *, version: str = "1", stale: str = "False", fills: int = 3, replicas: int = 1) -> dict:
    return {
        "metadata": {"name": KEY[1], "namespace": KEY[0], "resourceVersion": version, "generation": 1},
        "spec": {"replicas": replicas},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Stale", "status": stale, "reason": "Fresh"}],
            "trading": {"nodeState": "Running", "fills": fills, "heartbeat": heartbeat},
        },
    }


def test_a_heartbeat_alone_is_told_from_every_other_change():
    heartbeats = Heartbeats()
    assert not heartbeats.only_heartbeat(KEY, strategy("12:00:00"))  # the first event: always a change
    assert heartbeats.only_heartbeat(KEY, strategy("12:00:10", version="2"))
    assert heartbeats.only_heartbeat(KEY, strategy("12:00:20", version="3"))
    assert not heartbeats.only_heartbeat(KEY, strategy("12:00:20", version="4", fills=4))  # a fill
    assert not heartbeats.only_heartbeat(KEY, strategy("12:00:30", version="5", fills=4, replicas=0))  # a halt
    # nothing changed at all (another resourceVersion only): looked at, as ever
    assert not heartbeats.only_heartbeat(KEY, strategy("12:00:30", version="6", fills=4, replicas=0))
    assert heartbeats.only_heartbeat(KEY, strategy("12:00:40", version="7", fills=4, replicas=0))


def test_a_heartbeat_of_a_stale_strategy_wakes_its_reconciler_to_resume_it():
    heartbeats = Heartbeats()
    heartbeats.only_heartbeat(KEY, strategy("12:00:00", stale="True"))
    assert not heartbeats.only_heartbeat(KEY, strategy("12:02:00", version="2", stale="True"))


def test_a_forgotten_strategy_starts_over_and_an_object_that_does_not_read_is_a_change():
    heartbeats = Heartbeats()
    heartbeats.only_heartbeat(KEY, strategy("12:00:00"))
    heartbeats.forget(KEY)
    assert not heartbeats.only_heartbeat(KEY, strategy("12:00:10"))
    broken = {"metadata": ["not", "a", "map"], "status": "a string"}
    assert not heartbeats.only_heartbeat(("default", "broken"), broken)
    assert not heartbeats.only_heartbeat(("default", "broken"), broken)
