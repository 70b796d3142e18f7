"""kopf's bookkeeping annotations on an object whose annotations do not read: kopf reads around them, writes nothing."""

from __future__ import annotations

import kopf
import pytest

from strategy_operator.build import labels
from strategy_operator.kopf_storage import DiffBaseStorage, ProgressStorage

LAST_HANDLED = f"{labels.KOPF_PREFIX}/last-handled-configuration"


def body(annotations) -> kopf.Body:
    return kopf.Body({"metadata": {"name": "m", "annotations": annotations, "labels": 7}, "spec": {"replicas": 1}})


@pytest.mark.parametrize("annotations", [["a", "list"], 7, "a string", {"k": {"not": "a string"}}])
def test_kopf_reads_around_annotations_that_do_not_read_and_writes_nothing_over_them(annotations):
    # kopf's own storages fail here ("The structure is not a dict") in every event, before any handler runs.
    with pytest.raises(TypeError):
        kopf.AnnotationsDiffBaseStorage(prefix=labels.KOPF_PREFIX).fetch(body=body(["a", "list"]))
    diffbase, progress = DiffBaseStorage(prefix=labels.KOPF_PREFIX), ProgressStorage(prefix=labels.KOPF_PREFIX)
    broken, patch = body(annotations), kopf.Patch()
    assert diffbase.fetch(body=broken) is None
    essence = diffbase.build(body=broken)
    assert essence == {"spec": {"replicas": 1}}
    diffbase.store(body=broken, patch=patch, essence=essence)
    assert progress.fetch(key="halt-before-release", body=broken) is None
    progress.store(key="halt-before-release", record={"started": "now"}, body=broken, patch=patch)
    progress.purge(key="halt-before-release", body=broken, patch=patch)
    progress.touch(body=broken, patch=patch, value=None)  # the removal of a wake-up that cannot be there
    assert dict(patch) == {}  # a merge patch of annotations would replace what the user must see and fix
    # kopf's wake-up is written all the same: without it, a deletion waiting for the reconciler to stop would hang
    progress.touch(body=broken, patch=patch, value="2026-03-02T12:00:00")
    assert f"{labels.KOPF_PREFIX}/touch-dummy" in patch["metadata"]["annotations"]


def test_kopf_stores_no_last_handled_configuration_it_would_never_diff():
    """The operator has no change handlers: the diff base cost a write on every new strategy, for nothing."""
    diffbase, patch = DiffBaseStorage(prefix=labels.KOPF_PREFIX, key="last-handled-configuration"), kopf.Patch()
    fine = kopf.Body({"metadata": {"name": "m", "annotations": {"team": "a"}}, "spec": {"replicas": 1}})
    diffbase.store(body=fine, patch=patch, essence=diffbase.build(body=fine))
    assert dict(patch) == {}
    # one an older operator left is read as kopf reads it (and changes nothing: no handler diffs it)
    left = kopf.Body({"metadata": {"name": "m", "annotations": {LAST_HANDLED: "{}\n"}}, "spec": {"replicas": 1}})
    assert diffbase.fetch(body=left) == {}


def test_on_an_object_that_reads_kopf_keeps_its_deletion_progress_as_usual():
    progress, patch = ProgressStorage(prefix=labels.KOPF_PREFIX), kopf.Patch()
    fine = kopf.Body({"metadata": {"name": "m", "annotations": {"team": "a"}}, "spec": {"replicas": 1}})
    progress.store(key="halt-before-release", record={"started": "now"}, body=fine, patch=patch)
    assert any("halt-before-release" in key for key in patch["metadata"]["annotations"])
