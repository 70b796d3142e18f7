"""Server-side printing: a custom resource as a ``meta.k8s.io`` Table, as ``kubectl get`` asks for it.

kubectl sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io,…`` and prints the Table the API
server returns: for a custom resource, a ``Name`` column and the CRD's ``additionalPrinterColumns`` (or
``Age`` alone when it declares none), each evaluated on the object as apiextensions-apiserver's table
convertor does (``tableconvertor.go``): a ``string`` column prints the value, ``integer``/``number``/
``boolean`` cells keep a value of their type (anything else: an empty cell), a ``date`` column becomes an
age as ``duration.HumanDuration`` writes it. Only simple JSON paths (``.a.b.c``, what CRDs may use here).
A row carries the object as ``includeObject`` asks (``Metadata`` unless told: PartialObjectMetadata).
A watch asked for as Tables sends one Table per event, the column definitions in the first only.
Built-in resources are not converted: their answer stays a list, which kubectl prints itself.
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
