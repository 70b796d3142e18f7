"""Server-side printing: a custom resource as a ``meta.k8s.io`` Table, as ``kubectl get`` asks for it.

kubectl sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io,…`` and prints the Table the API
server returns: for a custom resource, a ``Name`` column and the CRD's ``additionalPrinterColumns`` (or
``Age`` alone when it declares none), each evaluated on the object as apiextensions-apiserver's table
convertor does (``tableconvertor.go``): a ``string`` column prints the value, ``integer``/``number``/
``boolean`` cells keep a value of their type (anything else: an empty cell), a ``date`` column becomes an
age as ``duration.HumanDuration`` writes it. Only simple JSON paths (``.a.b.c``, what CRDs may use here).
A row carries the object as ``includeObject`` asks (``Metadata`` unless told: PartialObjectMetadata).
A watch asked for as Tables sends one Table per event, the column definitions in the first only.

Of the built-in resources, pods and StatefulSets get the API server's own columns (``printers.go`` in
kubernetes' ``pkg/printers/internalversion``: ``printPod``, ``printStatefulSet``), the common cases only:
a pod's READY, STATUS (a waiting or terminated container's reason, ``Terminating`` once deleted),
RESTARTS, AGE; a StatefulSet's READY and AGE. Other built-in resources stay lists, which kubectl prints
itself (NAME and AGE).
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

Body = dict[str, Any]
TABLE_GROUP = "meta.k8s.io"
DEFAULT_COLUMNS = [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}


def requested_version(accept: str) -> str | None:
    """``meta.k8s.io/v1`` (or v1beta1) when the Accept header prefers a Table, else None."""
    for media in accept.split(","):
        params = dict(p.strip().split("=", 1) for p in media.split(";")[1:] if "=" in p)
        if params.get("as") == "Table" and params.get("g") == TABLE_GROUP:
            return f"{TABLE_GROUP}/{params.get('v', 'v1')}"
    return None


def columns_of(version: Mapping[str, Any], spec: Mapping[str, Any]) -> list[Body]:
    """The printer columns of one CRD version (or the CRD's top-level ones, as v1beta1 had them)."""
    return list(version.get("additionalPrinterColumns") or spec.get("additionalPrinterColumns") or DEFAULT_COLUMNS)


def _lookup(document: Any, path: str) -> tuple[bool, Any]:
    value = document
    for key in [k for k in re.split(r"\.", path.strip().lstrip("{").rstrip("}")) if k]:
        if not isinstance(value, Mapping) or key not in value:
            return False, None
        value = value[key]
    return True, value


def human_duration(seconds: float) -> str:
    """apimachinery's ``duration.HumanDuration``: two units at most, coarser as the age grows."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    s = int(seconds)
    minutes, hours, days = s // 60, s // 3600, s // 86400
    years = days // 365
    if s < 120:
        return f"{s}s"
    if minutes < 10:
        return f"{minutes}m" + (f"{s % 60}s" if s % 60 else "")
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h" + (f"{minutes % 60}m" if minutes % 60 else "")
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d" + (f"{hours % 24}h" if hours % 24 else "")
    if years < 2:
        return f"{days}d"
    if years < 8:
        return f"{years}y" + (f"{days % 365}d" if days % 365 else "")
    return f"{years}y"


def _printed(value: Any) -> str:
    """A value as kubectl's JSONPath printer writes it (Go's formatting of JSON values)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def cell(column: Mapping[str, Any], document: Any, now: datetime.datetime) -> Any:
    found, value = _lookup(document, str(column.get("jsonPath", "")))
    if not found or value is None:
        return None
    kind = column.get("type")
    if kind == "string":
        return _printed(value)
    if kind == "integer":
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if kind == "number":
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if kind == "date":
        try:
            moment = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
        return human_duration((now - moment).total_seconds())
    return None


def definitions(columns: Iterable[Mapping[str, Any]]) -> list[Body]:
    return [
        NAME_COLUMN,
        *(
            {
                "name": c["name"],
                "type": c.get("type", "string"),
                "format": c.get("format", ""),
                "description": c.get("description", ""),
                "priority": int(c.get("priority", 0)),
            }
            for c in columns
        ),
    ]


def _row_object(document: Mapping[str, Any], include: str) -> Body | None:
    if include == "None":
        return None
    if include == "Object":
        return dict(document)
    return {"kind": "PartialObjectMetadata", "apiVersion": f"{TABLE_GROUP}/v1", "metadata": document["metadata"]}


def table(
    documents: Iterable[Mapping[str, Any]],
    columns: list[Body],
    *,
    api_version: str,
    include: str = "Metadata",
    headers: bool = True,
    metadata: Mapping[str, Any] | None = None,
) -> Body:
    now = datetime.datetime.now(datetime.UTC)
    rows = []
    for document in documents:
        row: Body = {"cells": [document["metadata"]["name"], *(cell(c, document, now) for c in columns)]}
        if (obj := _row_object(document, include)) is not None:
            row["object"] = obj
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": dict(metadata or {}),
        "columnDefinitions": definitions(columns) if headers else [],
        "rows": rows,
    }


def _age(document: Mapping[str, Any], now: datetime.datetime) -> Any:
    return cell({"type": "date", "jsonPath": ".metadata.creationTimestamp"}, document, now)


def _pod_cells(pod: Mapping[str, Any], now: datetime.datetime) -> list[Any]:
    status = pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    reason = status.get("reason") or status.get("phase") or "Unknown"
    running = False
    for container in reversed(containers):
        state = container.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state:
            terminated = state["terminated"]
            reason = terminated.get("reason") or (
                f"Signal:{terminated['signal']}"
                if terminated.get("signal")
                else f"ExitCode:{terminated.get('exitCode')}"
            )
        elif "running" in state and container.get("ready"):
            running = True
    if reason == "Completed" and running:
        reason = "Running"
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    ready = sum(1 for c in containers if c.get("ready"))
    total = len((pod.get("spec") or {}).get("containers") or [])
    restarts = sum(int(c.get("restartCount") or 0) for c in containers)
    return [pod["metadata"]["name"], f"{ready}/{total}", reason, restarts, _age(pod, now)]


def _statefulset_cells(statefulset: Mapping[str, Any], now: datetime.datetime) -> list[Any]:
    ready = (statefulset.get("status") or {}).get("readyReplicas") or 0
    wanted = (statefulset.get("spec") or {}).get("replicas", 1)
    return [statefulset["metadata"]["name"], f"{ready}/{wanted}", _age(statefulset, now)]


def _column(name: str, kind: str, description: str, format_: str = "") -> Body:
    return {"name": name, "type": kind, "format": format_, "description": description, "priority": 0}


AGE = _column(
    "Age", "string", "CreationTimestamp is a timestamp representing the server time when this object was created."
)
# The built-in resources converted here: their column definitions and their cells.
BUILTIN: dict[tuple[str, str], tuple[list[Body], Any]] = {
    ("", "pods"): (
        [
            NAME_COLUMN,
            _column("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
            _column("Status", "string", "The aggregate status of the containers in this pod."),
            _column("Restarts", "string", "The number of times the containers in this pod have been restarted."),
            AGE,
        ],
        _pod_cells,
    ),
    ("apps", "statefulsets"): (
        [NAME_COLUMN, _column("Ready", "string", "Number of the pod with ready state"), AGE],
        _statefulset_cells,
    ),
}


def builtin_table(
    key: tuple[str, str],
    documents: Iterable[Mapping[str, Any]],
    *,
    api_version: str,
    include: str = "Metadata",
    headers: bool = True,
    metadata: Mapping[str, Any] | None = None,
) -> Body:
    """A Table of pods or StatefulSets (``key``: group and plural, one of :data:`BUILTIN`)."""
    columns, cells = BUILTIN[key]
    now = datetime.datetime.now(datetime.UTC)
    rows = []
    for document in documents:
        row: Body = {"cells": cells(document, now)}
        if (obj := _row_object(document, include)) is not None:
            row["object"] = obj
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": dict(metadata or {}),
        "columnDefinitions": columns if headers else [],
        "rows": rows,
    }
