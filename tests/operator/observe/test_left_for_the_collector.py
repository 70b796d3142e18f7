"""A child found under a strategy's name that only an earlier namesake owned is left to the garbage collector."""

from __future__ import annotations

import pytest

from strategy_operator.observe.observer import left_for_the_collector


def _ref(name: str = "s1", *, kind: str = "LiveStrategy", api_version: str = "livestrat.io/v1alpha1") -> dict:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": "old-uid", "controller": True}


@pytest.mark.parametrize(
    ("refs", "collected"),
    [
        ([_ref()], True),  # an earlier LiveStrategy of this name: gone, since this one holds the name
        ([_ref(), {**_ref(), "uid": "older-uid"}], True),
        ([], False),  # nobody's: adopted if livestrat's, else a NameConflict
        ([_ref("other")], False),  # another strategy's
        ([_ref(), _ref("keeper", kind="ConfigMap", api_version="v1")], False),  # a live owner may keep it
        ([_ref(api_version="example.com/v1")], False),  # someone else's kind of the same name
    ],
)
def test_only_a_child_owned_by_nothing_but_an_earlier_namesake_is_left_to_the_garbage_collector(refs, collected):
    child = {"kind": "ConfigMap", "metadata": {"name": "s1", "ownerReferences": refs}}
    assert left_for_the_collector(child, "s1") is collected
