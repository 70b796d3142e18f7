"""Kubernetes' garbage collector: cascading deletion through ``ownerReferences``, asynchronous as the real one.

From the documentation ("Garbage Collection", "Owners and Dependents", "Use Cascading Deletion", and the
``OwnerReference`` API reference):

- **Background** (the default): the API server deletes the owner at once; the garbage collector deletes the
  dependents afterwards, in the background. A client can see the owner gone while its dependents still exist.
- **Foreground**: the owner enters "deletion in progress": the API server sets its ``deletionTimestamp`` and adds
  the ``foregroundDeletion`` finalizer; the object stays visible. The garbage collector then deletes its
  dependents; once every dependent whose owner reference has ``blockOwnerDeletion: true`` is gone, it removes the
  finalizer and the owner goes (after any other finalizers it carries). A dependent that has dependents of its own
  is deleted in the foreground too, others in the background.
- **Orphan**: the API server adds the ``orphan`` finalizer; the garbage collector removes the owner's reference from
  every dependent, then the finalizer. The dependents stay, owned by nobody.
- **An owner reference names its owner by uid**: a dependent whose every owner is absent (no object of that uid,
  with that kind and name, in the dependent's namespace or cluster-scoped) is deleted, whenever that is found:
  when its owner goes, and as well when the dependent is created or given a reference to an owner that does not
  exist (a dangling reference). So an owner deleted and recreated under the same name does not inherit the old
  one's dependents: they name the old uid, and are collected. A dependent that still has a live owner only loses
  its references to absent owners (and to owners deleting it in the foreground).

Like the real collector (``attemptToDeleteItem``, ``attemptToOrphan`` and ``processDeletingDependentsItem`` of
kube-controller-manager, fed by its graph builder's informers), this one works apart from the requests: a request
that makes work due (a deletion, the removal of an object, an object created or updated with owner references)
only queues it, and the collector does it ``delay`` seconds later, in the event loop, as its own user (the admin
here), deleting with a uid precondition (work_queue.py, with ``paused`` and ``drain`` for tests). Each level of a
cascade takes its own turn.

Where it differs: the real collector may take far longer under load (its queues, its informers' lag, retries with
backoff); this one runs each piece of work once, ``delay`` after it became due (0.3 s by default), or at the next
turn after that if it was paused. An emulator built outside an event loop keeps its work until one runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import kmock

from livestrat.kube_emulator.work_queue import DelayedWork

if TYPE_CHECKING:
    from livestrat.kube_emulator.emulator import Body, Key, KubernetesEmulator

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
FINALIZERS = {"Orphan": ORPHAN, "Foreground": FOREGROUND}
DEFAULT_DELAY = 0.3  # seconds between the request that makes work due and the collector doing it


def deletion_finalizer(propagation: str) -> str | None:
    """The finalizer the API server adds to an object deleted with this ``propagationPolicy``."""
    return FINALIZERS.get(propagation)


def owner_uids(body: Body | None, *, blocking: bool = False) -> set[str]:
    """The uids of the owners ``body`` names (``blocking``: only those whose reference has ``blockOwnerDeletion``)."""
    refs = ((body or {}).get("metadata") or {}).get("ownerReferences") or []
    return {
        ref["uid"]
        for ref in refs
        if isinstance(ref, dict) and ref.get("uid") and (ref.get("blockOwnerDeletion") or not blocking)
    }


class GarbageCollector(DelayedWork):
    """The collector of one emulator: a queue of uids to look at (the object, an owner's dependents, a dependent's
    owners), each when its time comes (work_queue.py)."""

    def __init__(self, emulator: KubernetesEmulator, delay: float = DEFAULT_DELAY) -> None:
        super().__init__(delay)
        self.emulator = emulator

    # ----------------------------------------------------------------------------------------------
    # What the API server tells it (the informers' events).
    # ----------------------------------------------------------------------------------------------

    def stored(self, old: Body | None, new: Body) -> None:
        """An object created or updated: if its owner references changed, its owners are checked (dangling ones
        make it garbage), and an owner a changed reference no longer blocks may finish its foreground deletion."""
        before, after = owner_uids(old), owner_uids(new)
        if before == after and owner_uids(old, blocking=True) == owner_uids(new, blocking=True):
            return
        self._enqueue(new["metadata"]["uid"])
        for uid in sorted(before | after):
            self._enqueue(uid)

    def deletion_started(self, body: Body) -> None:
        """An owner given the ``orphan`` or ``foregroundDeletion`` finalizer by its deletion."""
        self._enqueue(body["metadata"]["uid"])

    def removed(self, last: Body) -> None:
        """An object gone from the store: its dependents are checked, and its owners waiting for it in the
        foreground may go."""
        self._enqueue(last["metadata"]["uid"])
        for uid in sorted(owner_uids(last)):
            self._enqueue(uid)

    # ----------------------------------------------------------------------------------------------
    # The work.
    # ----------------------------------------------------------------------------------------------

    def _process(self, uid: Any) -> None:
        """Look at the object of ``uid`` (if it still exists) and at its dependents (all of them if it is gone)."""
        emu = self.emulator
        with emu._as_controller():
            key = emu._uids.get(uid)
            body = _live(emu, key) if key is not None else None
            if body is None:
                for dependent, found in _dependents(emu, uid):
                    self._attempt_to_delete(dependent, found)
                return
            meta = body["metadata"]
            finalizers = meta.get("finalizers") or []
            if meta.get("deletionTimestamp") and ORPHAN in finalizers:
                self._orphan_dependents(key, body)
            elif meta.get("deletionTimestamp") and FOREGROUND in finalizers:
                for dependent, found in _dependents(emu, uid):
                    if not found["metadata"].get("deletionTimestamp"):
                        self._attempt_to_delete(dependent, found)
                self._finish_foreground(key, uid)
            elif meta.get("ownerReferences"):
                self._attempt_to_delete(key, body)

    def _attempt_to_delete(self, key: Key, body: Body) -> None:
        """A dependent: deleted when no owner of it is left, its dangling references dropped when one is."""
        emu = self.emulator
        meta = body["metadata"]
        if meta.get("deletionTimestamp"):
            if FOREGROUND in (meta.get("finalizers") or []):
                self._finish_foreground(key, meta["uid"])
            return
        refs = meta.get("ownerReferences") or []
        if not refs:
            return
        solid, dropped, waiting = [], [], []
        for ref in refs:
            owner = self._owner(key, ref)
            if owner is None:
                dropped.append(ref)
            elif owner["metadata"].get("deletionTimestamp") and FOREGROUND in (
                owner["metadata"].get("finalizers") or []
            ):
                waiting.append(ref)
                dropped.append(ref)
            else:
                solid.append(ref)
        uid = meta["uid"]
        if solid:
            if dropped:
                self._set_owner_references(key, uid, [ref for ref in refs if ref in solid])
            return
        if waiting and _dependents(emu, uid):
            policy = "Foreground"
        else:
            finalizers = meta.get("finalizers") or []
            policy = "Orphan" if ORPHAN in finalizers else "Foreground" if FOREGROUND in finalizers else "Background"
        emu._delete_quietly(key, {"propagationPolicy": policy, "preconditions": {"uid": uid}})

    def _owner(self, dependent: Key, ref: Any) -> Body | None:
        """The live owner a reference names (by uid, kind and name, in the dependent's namespace or cluster-scoped)."""
        emu = self.emulator
        if not isinstance(ref, dict):
            return None
        key = emu._uids.get(str(ref.get("uid") or ""))
        body = _live(emu, key) if key is not None else None
        if body is None or key is None:
            return None
        if key[1] is not None and key[1] != dependent[1]:
            return None  # a namespaced owner elsewhere is treated as absent ("Owners and Dependents")
        if body["metadata"].get("name") != ref.get("name") or body.get("kind") != ref.get("kind"):
            return None
        return body

    def _orphan_dependents(self, key: Key, owner: Body) -> None:
        uid = owner["metadata"]["uid"]
        for dependent, body in _dependents(self.emulator, uid):
            refs = [ref for ref in body["metadata"].get("ownerReferences") or [] if ref.get("uid") != uid]
            self._set_owner_references(dependent, body["metadata"]["uid"], refs)
        self._remove_finalizer(key, uid, ORPHAN)

    def _set_owner_references(self, key: Key, uid: str, refs: list[Any]) -> None:
        def kept(target: dict[str, Any]) -> dict[str, Any]:
            target["metadata"]["ownerReferences"] = refs
            return target

        self._write(key, uid, kept)

    def _finish_foreground(self, key: Key, uid: str) -> None:
        """The owner goes once no dependent whose reference blocks its deletion is left."""
        blocking = [
            dependent
            for dependent, body in _dependents(self.emulator, uid)
            if any(
                r.get("uid") == uid and r.get("blockOwnerDeletion")
                for r in body["metadata"].get("ownerReferences") or []
            )
        ]
        if not blocking:
            self._remove_finalizer(key, uid, FOREGROUND)

    def _remove_finalizer(self, key: Key, uid: str, finalizer: str) -> None:
        def without(target: dict[str, Any]) -> dict[str, Any]:
            target["metadata"]["finalizers"] = [f for f in target["metadata"].get("finalizers") or [] if f != finalizer]
            return target

        self._write(key, uid, without)

    def _write(self, key: Key, uid: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """An update of that very object (its uid), as the collector's patches are: nothing if it went meanwhile."""
        body = _live(self.emulator, key)
        if body is None or body["metadata"]["uid"] != uid:
            return
        try:
            self.emulator._update(key[0], key[1], key[2], None, change)
        except kmock.KubernetesError:  # refused (admission, say): the real collector retries later, and so does this
            self._enqueue(uid)


def _live(emulator: KubernetesEmulator, key: Key) -> Body | None:
    found = emulator._objects[key] if key in emulator._objects else None  # noqa: SIM401 (kmock has no .get)
    return None if found is None or found.deleted else found.last.raw


def _dependents(emulator: KubernetesEmulator, uid: str) -> list[tuple[Key, Body]]:
    keys = sorted(emulator._dependents.get(uid, ()), key=str)
    return [(key, body) for key in keys if (body := _live(emulator, key)) is not None and uid in owner_uids(body)]
