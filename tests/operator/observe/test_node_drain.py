"""What a node being drained looks like to the operator (the DisruptionBlocked condition's cause)."""

from __future__ import annotations

from strategy_operator.observe.caches import node_drain


def test_a_cordoned_node_or_one_the_autoscaler_removes_is_being_drained():
    assert "cordoned" in (node_drain({"unschedulable": True}) or "")
    removal = {"taints": [{"key": "ToBeDeletedByClusterAutoscaler", "value": "1700000000", "effect": "NoSchedule"}]}
    assert "cluster autoscaler" in (node_drain(removal) or "")


def test_a_schedulable_node_with_other_taints_is_not():
    assert node_drain({}) is None
    assert node_drain(None) is None
    assert node_drain({"unschedulable": False}) is None
    assert node_drain({"taints": [{"key": "dedicated", "value": "trading", "effect": "NoSchedule"}]}) is None
