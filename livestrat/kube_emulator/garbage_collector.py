"""Foreground and orphan propagation of deletions, as Kubernetes' garbage collector does them.

From the documentation ("Garbage Collection" and "Use Cascading Deletion"):

- **Foreground**: the owner enters "deletion in progress": the API server sets its
  ``deletionTimestamp`` and adds the ``foregroundDeletion`` finalizer; the object stays visible.
  The garbage collector then deletes its dependents; once every dependent whose owner reference has
  ``blockOwnerDeletion: true`` is gone, it removes the finalizer and the owner goes (after any other
  finalizers it carries). A dependent that has dependents of its own is deleted in the foreground
  too (the collector's ``attemptToDeleteItem``), others in the background.
- **Orphan**: the API server adds the ``orphan`` finalizer; the garbage collector removes the owner's
  reference from every dependent, then the finalizer. The dependents stay, owned by nobody.

The real collector works asynchronously from its own informers; here each step runs at once, inside
the request that makes it due (the deletion, or the removal of a dependent), so tests see the end
state without waiting. What the operator can observe is the same: the owner in deletion with the
finalizer while dependents go, dependents deleted or orphaned before the owner goes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from livestrat.kube_emulator.emulator import Body, Key, KubernetesEmulator

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
FINALIZERS = {"Orphan": ORPHAN, "Foreground": FOREGROUND}


def deletion_finalizer(propagation: str) -> str | None:
    """The finalizer the API server adds to an object deleted with this ``propagationPolicy``."""
    return FINALIZERS.get(propagation)


def _live(emulator: KubernetesEmulator, key: Key) -> Body | None:
    found = emulator._objects[key] if key in emulator._objects else None  # noqa: SIM401 (kmock has no .get)
    return None if found is None or found.deleted else found.last.raw


def _dependents(emulator: KubernetesEmulator, uid: str) -> list[tuple[Key, Body]]:
    keys = sorted(emulator._dependents.get(uid, ()), key=str)
    return [(key, body) for key in keys if (body := _live(emulator, key)) is not None]


def _remove_finalizer(emulator: KubernetesEmulator, key: Key, finalizer: str) -> None:
    def without(target: dict[str, Any]) -> dict[str, Any]:
        target["metadata"]["finalizers"] = [f for f in target["metadata"].get("finalizers") or [] if f != finalizer]
        return target

    emulator._update(key[0], key[1], key[2], None, without)


def process(emulator: KubernetesEmulator, key: Key) -> None:
    """Do what the owner's propagation finalizer asks, as far as it can be done now."""
    owner = _live(emulator, key)
    if owner is None:
        return
    uid, finalizers = owner["metadata"]["uid"], owner["metadata"].get("finalizers") or []
    if ORPHAN in finalizers:
        for dependent, body in _dependents(emulator, uid):
            refs = [ref for ref in body["metadata"].get("ownerReferences") or [] if ref.get("uid") != uid]

            def orphaned(target: dict[str, Any], refs: list[Any] = refs) -> dict[str, Any]:
                target["metadata"]["ownerReferences"] = refs
                return target

            emulator._update(dependent[0], dependent[1], dependent[2], None, orphaned)
        _remove_finalizer(emulator, key, ORPHAN)
    elif FOREGROUND in finalizers:
        for dependent, body in _dependents(emulator, uid):
            if "deletionTimestamp" not in body["metadata"]:
                has_own = bool(_dependents(emulator, body["metadata"]["uid"]))
                emulator._delete_quietly(dependent, {"propagationPolicy": "Foreground" if has_own else "Background"})
        blocking = [
            dependent
            for dependent, body in _dependents(emulator, uid)
            if any(
                r.get("uid") == uid and r.get("blockOwnerDeletion")
                for r in body["metadata"].get("ownerReferences") or []
            )
        ]
        if not blocking and _live(emulator, key) is not None:
            _remove_finalizer(emulator, key, FOREGROUND)


def owners_waiting(emulator: KubernetesEmulator, removed: Body) -> list[Key]:
    """The owners of a removed object that wait in the foreground for their dependents to go."""
    keys = []
    for ref in removed["metadata"].get("ownerReferences") or []:
        key = emulator._uids.get(ref.get("uid"))
        body = _live(emulator, key) if key is not None else None
        if body is not None and FOREGROUND in (body["metadata"].get("finalizers") or []):
            keys.append(key)
    return keys
