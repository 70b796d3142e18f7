"""Fields the API server refuses to change once an object exists, as its update validation does.

A StatefulSet's spec may change only in ``replicas``, ``ordinals``, ``template``, ``updateStrategy``,
``revisionHistoryLimit``, ``persistentVolumeClaimRetentionPolicy`` and ``minReadySeconds``
(``ValidateStatefulSetUpdate`` in kubernetes' ``pkg/apis/apps/validation``: it copies those fields
from the old object into the new one and refuses the update when the rest differs). Everything
else (``selector``, ``serviceName``, ``podManagementPolicy``, ``volumeClaimTemplates``, ...) is
refused with 422 ``Invalid`` and the API server's message, whoever sends it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kmock

from livestrat.kube_emulator import validation

STATEFULSETS = kmock.resource("apps", "v1", "statefulsets")
STATEFULSET_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)
STATEFULSET_FORBIDDEN = (
    "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
    "are forbidden"
)


def _fixed(spec: Any, mutable: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in (spec if isinstance(spec, Mapping) else {}).items() if k not in mutable}


def check_update(resource: kmock.resource, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """Raise the API server's 422 when ``new`` changes what ``resource`` may not change."""
    if resource == STATEFULSETS and _fixed(old.get("spec"), STATEFULSET_MUTABLE) != _fixed(
        new.get("spec"), STATEFULSET_MUTABLE
    ):
        error = validation.FieldError("spec", "FieldValueForbidden", STATEFULSET_FORBIDDEN)
        raise validation.invalid("StatefulSet", "apps", str(old["metadata"]["name"]), [error])
