"""Which namespaces the operator takes for terminating (no Event is posted there), across a deletion and a namespace
created again under the same name, whose events kopf may handle before the last ones of the old (it orders events
by object, not across objects)."""

from __future__ import annotations

from typing import Any

from strategy_operator.apply.shared_identity import TerminatingNamespaces


class NothingThere:
    """A client that finds no shared identity: the release has nothing to wait for."""

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    async def list(self, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        return []


async def test_a_namespace_is_terminating_from_its_terminating_event_until_it_is_gone():
    seen = TerminatingNamespaces(NothingThere())  # type: ignore[arg-type]
    seen.seen("team", "uid-1")
    assert seen("team")
    seen.gone("team", "uid-1")
    assert not seen("team")
    await seen.close()


async def test_a_namespace_created_again_is_not_taken_for_the_old_one():
    seen = TerminatingNamespaces(NothingThere())  # type: ignore[arg-type]
    seen.seen("team", "uid-1")
    seen.active("team")  # the new namespace's ADDED, handled before the old one's DELETED
    assert not seen("team")
    seen.gone("team", "uid-1")  # the old one's DELETED, late
    assert not seen("team")

    seen.seen("team", "uid-2")  # the new one deleted in turn
    seen.gone("team", "uid-1")  # a late event of the old one changes nothing
    assert seen("team")
    await seen.close()
