"""The operator adds its finalizer to those a child has, never replaces them, and adds none during a deletion."""

from __future__ import annotations

import copy

from strategy_operator.apply.pod_identity import release, with_finalizers
from strategy_operator.build.labels import POD_IDENTITY_FINALIZER
from strategy_operator.kube_client import ApiError

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


class OneRole:
    """One Role as an API server keeps it: a merge patch carrying a resourceVersion other than the stored one is a
    409 Conflict (optimistic concurrency), a get returns the stored object."""

    def __init__(self, body: dict) -> None:
        self.body = body
        self.patches = 0

    async def get(self, kind: str, namespace: str, name: str) -> dict | None:
        return copy.deepcopy(self.body)

    async def patch(self, kind: str, namespace: str, name: str, patch: dict) -> dict:
        self.patches += 1
        meta = patch["metadata"]
        if meta.get("resourceVersion") not in (None, self.body["metadata"]["resourceVersion"]):
            raise ApiError(409, "Conflict", "the object has been modified; please apply your changes to the latest")
        self.body["metadata"]["finalizers"] = meta["finalizers"]
        self.body["metadata"]["resourceVersion"] = str(int(self.body["metadata"]["resourceVersion"]) + 1)
        return copy.deepcopy(self.body)


async def test_a_release_that_meets_a_change_reads_the_child_again_and_removes_the_finalizer():
    # Read by the halt, then marked for deletion by the garbage collector (a foreground deletion of the strategy):
    # the release's precondition fails once. Nothing else releases it later, so it must not give up.
    read = {"kind": "Role", "metadata": {"name": "s", "namespace": "d", "resourceVersion": "7"}}
    read["metadata"]["finalizers"] = ["other", POD_IDENTITY_FINALIZER]
    server = OneRole(copy.deepcopy(read))
    server.body["metadata"].update(resourceVersion="8", deletionTimestamp="2026-12-07T17:30:15Z")
    await release(server, read)
    assert server.body["metadata"]["finalizers"] == ["other"] and server.patches == 2
