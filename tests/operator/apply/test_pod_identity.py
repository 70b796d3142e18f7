"""The operator adds its finalizer to those a child has, never replaces them, and adds none during a deletion."""

from __future__ import annotations

from strategy_operator.apply.pod_identity import with_finalizers
from strategy_operator.build.labels import POD_IDENTITY_FINALIZER

DESIRED = {"kind": "Role", "metadata": {"name": "s", "finalizers": [POD_IDENTITY_FINALIZER]}}


def finalizers(desired: dict) -> list[str] | None:
    return desired["metadata"].get("finalizers")


def test_the_operators_finalizer_joins_the_childs_own():
    existing = {"metadata": {"finalizers": ["example.com/backup"]}}
    assert finalizers(with_finalizers(DESIRED, existing, deleting=False)) == [
        "example.com/backup",
        POD_IDENTITY_FINALIZER,
    ]
    assert finalizers(with_finalizers(DESIRED, None, deleting=False)) == [POD_IDENTITY_FINALIZER]


def test_while_the_strategy_is_deleted_nothing_is_added():
    assert finalizers(with_finalizers(DESIRED, {"metadata": {}}, deleting=True)) is None
    kept = {"metadata": {"finalizers": ["example.com/backup"]}}
    assert finalizers(with_finalizers(DESIRED, kept, deleting=True)) == ["example.com/backup"]
