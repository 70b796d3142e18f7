"""Kubernetes' namespace lifecycle: the API server's part, the NamespaceLifecycle admission plugin's and the
namespace controller's, as documented ("Namespaces", the Namespace API reference, "Admission Controllers":
NamespaceLifecycle).

- **Created** ``Active``, with ``kubernetes`` in ``spec.finalizers`` (the API server adds it). ``spec.finalizers``
  changes only through the ``finalize`` subresource; ``status`` only through ``status``.
- **Deleted**: the API server sets ``deletionTimestamp`` and ``status.phase: Terminating`` and keeps the namespace
  while ``spec.finalizers`` or ``metadata.finalizers`` hold it.
- **NamespaceLifecycle**: nothing new is created in a terminating namespace (Events neither): 403 ``Forbidden``,
  "unable to create new content in namespace NAME because it is being terminated", with the cause
  ``NamespaceTerminating`` on ``metadata.namespace``. Updates and deletions pass: a finalizer can still be removed.
  A creation in a namespace that does not exist is 404 NotFound.
- **The namespace controller** deletes everything in a terminating namespace (``DeleteCollection`` of each resource,
  background propagation: pods get their graceful termination, objects with finalizers stay until those are
  removed), looks again while anything is left, and once nothing is, removes ``kubernetes`` from
  ``spec.finalizers``; the namespace then goes (after its ``metadata.finalizers``, if any).
- **Pods first** (``OrderedNamespaceDeletion``: beta and on by default in Kubernetes 1.33, GA and locked on from
  1.34): the controller deletes the namespace's pods, waits until every one is gone, and only then deletes the rest
  (so a strategy's pod gets its SIGTERM while its LiveStrategy, ServiceAccount and Role are all still there, and not
  being deleted). ``KubernetesEmulator(ordered_namespace_deletion=False)`` deletes everything at once, as 1.32 and
  earlier did.

Where it differs: the real controller lists every resource through discovery and retries with a backoff (its
``NamespaceContentRemaining`` / ``NamespaceFinalizersRemaining`` conditions tell what it waits for; these are not
written here); this one looks at a namespace ``delay`` after it began terminating and again after each removal of
an object in it (work_queue.py).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import kmock

from livestrat.kube_emulator.work_queue import DelayedWork

if TYPE_CHECKING:
    from livestrat.kube_emulator.emulator import Body, KubernetesEmulator

NAMESPACES = kmock.resource("", "v1", "namespaces")
KUBERNETES_FINALIZER = "kubernetes"
ACTIVE, TERMINATING = "Active", "Terminating"
DEFAULT_DELAY = 0.3  # seconds between a namespace's deletion (or a removal in it) and the controller's look


def prepare_for_create(body: Body) -> None:
    """What the API server does to a namespace it creates: ``Active``, with the ``kubernetes`` finalizer."""
    spec = body.setdefault("spec", {})
    finalizers = list(spec.get("finalizers") or [])
    if KUBERNETES_FINALIZER not in finalizers:
        finalizers.append(KUBERNETES_FINALIZER)
    spec["finalizers"] = finalizers
    body["status"] = {"phase": ACTIVE}


def prepare_for_update(new: Body, old: Body, sub: str | None) -> None:
    """``spec.finalizers`` is the ``finalize`` subresource's, and only that: the main endpoint keeps the old ones,
    the ``finalize`` endpoint changes nothing else."""
    old_finalizers = (old.get("spec") or {}).get("finalizers")
    if sub == "finalize":
        finalizers = (new.get("spec") or {}).get("finalizers")
        new.clear()
        new.update(copy.deepcopy(old))
        new.setdefault("spec", {})["finalizers"] = list(finalizers or [])
        return
    spec = new.setdefault("spec", {})
    if old_finalizers is None:
        spec.pop("finalizers", None)
    else:
        spec["finalizers"] = list(old_finalizers)


def held(body: Body) -> bool:
    """Whether a namespace being deleted is still held: by ``spec.finalizers`` or ``metadata.finalizers``."""
    return bool((body.get("spec") or {}).get("finalizers")) or bool(body["metadata"].get("finalizers"))


def terminating(body: Body | None) -> bool:
    return body is not None and (body.get("status") or {}).get("phase") == TERMINATING


def creation_refusal(group_resource: str, name: str, namespace: str) -> tuple[str, dict[str, str]]:
    """NamespaceLifecycle's 403 to a creation in a terminating namespace (``group_resource``: ``roles.rbac.…``,
    ``configmaps``): its message and its cause."""
    message = (
        f'{group_resource} "{name}" is forbidden: unable to create new content in namespace {namespace} because it is '
        f"being terminated"
    )
    cause = {
        "reason": "NamespaceTerminating",
        "message": f"namespace {namespace} is being terminated",
        "field": "metadata.namespace",
    }
    return message, cause


class NamespaceController(DelayedWork):
    """The namespace controller of one emulator: a queue of namespace names to look at."""

    def __init__(self, emulator: KubernetesEmulator, delay: float = DEFAULT_DELAY) -> None:
        super().__init__(delay)
        self.emulator = emulator

    def deletion_started(self, namespace: str) -> None:
        self._enqueue(namespace)

    def removed_from(self, namespace: str) -> None:
        """An object in ``namespace`` is gone: if the namespace is terminating, it may be empty now."""
        if terminating(self.emulator.read_object(NAMESPACES, namespace)):
            self._enqueue(namespace)

    def _process(self, namespace: Any) -> None:
        emu = self.emulator
        with emu._as_controller():
            body = emu.read_object(NAMESPACES, namespace)
            if body is None or not terminating(body):
                return
            left = [(key, found) for key, found in emu._iter_all_live() if key[1] == namespace]
            pods = [(key, found) for key, found in left if _is_pod(key[0])]
            if emu.ordered_namespace_deletion and pods:
                left = pods  # the rest waits until every pod is gone (looked at again as each goes)
            for key, found in left:
                if not found["metadata"].get("deletionTimestamp"):
                    emu._delete_quietly(key, {"propagationPolicy": "Background"})
            if any(key[1] == namespace for key, _ in emu._iter_all_live()):
                return  # held by finalizers (or a pod terminating): looked at again when something goes
            if KUBERNETES_FINALIZER in ((body.get("spec") or {}).get("finalizers") or []):
                finalized = copy.deepcopy(body)
                finalized["spec"]["finalizers"] = [
                    f for f in finalized["spec"]["finalizers"] if f != KUBERNETES_FINALIZER
                ]
                try:
                    emu._update(NAMESPACES, None, namespace, "finalize", lambda _old: finalized)
                except kmock.KubernetesError:  # refused or changed meanwhile: the real controller retries
                    self._enqueue(namespace)


def _is_pod(resource: kmock.resource) -> bool:
    return resource.group == "" and resource.plural == "pods"
