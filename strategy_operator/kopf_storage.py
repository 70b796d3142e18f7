"""kopf's bookkeeping annotations, kept on objects whose labels or annotations do not read.

kopf keeps its own state of a LiveStrategy in annotations (``livestrat.io/last-handled-configuration``,
the deletion handler's progress) and reads them before any handler runs. On an object whose
``metadata.annotations`` (or labels) is not a map of strings (only possible past the API server's
validation: a direct etcd write, an old CRD; a real API server even drops such fields when it reads
the object) kopf's own storages fail (``TypeError: The structure is not a dict``) in the processing
of every event of that object, before any handler: no daemon would start, no deletion would finish,
and the operator could not even say why.

These storages are kopf's, reading a copy of the object without the labels and annotations that do
not read (as the API server reads it), and writing nothing into annotations that do not read: kopf's
merge patch of an annotations object would replace whatever is stored there, silently, before the
operator could say what it was. The reconciler reports the broken field (``MetadataInvalid``:
:mod:`strategy_operator.observe.reading`), and the user, not kopf, puts it right. Meanwhile kopf
remembers nothing on that object: it takes each of its events for the first one it sees, which
matters to no handler of this operator (none reacts to a creation or an update; the deletion
handler's progress is not needed to resume it: it starts over, from the StatefulSet, harmlessly).

One write is let through: kopf's wake-up. When kopf must look at an object again later (while a
deletion waits for the reconciler to stop), it sleeps, then "touches" the object (an annotation with
the time) to get a watch event; without it, it would wait for an event that may never come, and the
deletion would hang. Only kopf's own waits do that, and here only during a deletion, where replacing
the annotations of an object on its way out loses nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import kopf

from strategy_operator.observe.reading import readable_metadata


def readable(body: kopf.Body) -> kopf.Body:
    """``body``, or a copy without the labels and annotations that are not maps of strings."""
    meta = body.get("metadata")
    if not isinstance(meta, dict):
        return body
    kept, dropped = readable_metadata(meta)
    return kopf.Body({**body, "metadata": kept}) if dropped else body


def writable(body: kopf.Body) -> bool:
    """Whether kopf may write its annotations: not over labels or annotations that do not read."""
    return readable(body) is body


class DiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's last-handled configuration, read (one left by an older operator does no harm) and never written.

    kopf diffs it only for change handlers (creation, update, resume), and the operator has none: a daemon and a
    deletion handler, which kopf calls on the deletion whatever the diff base says. Without a stored one kopf takes
    each event for a creation with no handler to call, and does nothing. Storing it cost a write on every new
    LiveStrategy (with kopf's ``kopf-managed`` marker), and a copy of a large spec would count against the 256 KiB
    the API server allows all annotations together."""

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> Any:
        return super().build(body=readable(body), extra_fields=extra_fields)

    def fetch(self, *, body: kopf.Body) -> Any:
        return super().fetch(body=readable(body))

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        return  # never written: see the class


class ProgressStorage(kopf.AnnotationsProgressStorage):
    def fetch(self, *, key: Any, body: kopf.Body) -> Any:
        return super().fetch(key=key, body=readable(body))

    def store(self, *, key: Any, record: Any, body: kopf.Body, patch: kopf.Patch) -> None:
        if writable(body):
            super().store(key=key, record=record, body=body, patch=patch)

    def purge(self, *, key: Any, body: kopf.Body, patch: kopf.Patch) -> None:
        if writable(body):
            super().purge(key=key, body=body, patch=patch)

    def touch(self, *, body: kopf.Body, patch: kopf.Patch, value: str | None) -> None:
        if writable(body) or value is not None:  # a wake-up (a value) always: see above
            super().touch(body=readable(body), patch=patch, value=value)
