"""What differs between the configuration a strategy runs with and the one its spec asks for.

Under ``updatePolicy: Manual`` a running strategy keeps its configuration; the
``ConfigDrift`` condition names the fields that would change, read from the two rendered
``runtime.json`` documents (the one in the ConfigMap the pod mounted, and the one the
current spec renders to).
"""

from __future__ import annotations

from typing import Any

from strategy_operator.children import config_substance

MAX_LISTED = 12


def _leaves(value: Any, path: str, out: dict[str, Any], depth: int) -> None:
    if isinstance(value, dict) and depth > 0 and value:
        for key, item in value.items():
            _leaves(item, f"{path}.{key}" if path else str(key), out, depth - 1)
    else:
        out[path] = value


def changed_fields(running: dict[str, Any] | None, desired: dict[str, Any], *, depth: int = 4) -> list[str]:
    """Dotted paths (``spec.risk.maxDailyLoss``) whose values differ; ``[]`` when only scaling differs."""
    if running is None:
        return ["(no running configuration)"]
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    _leaves(config_substance(running), "", old, depth)
    _leaves(config_substance(desired), "", new, depth)
    return sorted(path for path in old.keys() | new.keys() if old.get(path) != new.get(path))


def describe(fields: list[str]) -> str:
    listed = ", ".join(fields[:MAX_LISTED])
    more = f" and {len(fields) - MAX_LISTED} more" if len(fields) > MAX_LISTED else ""
    return f"{listed}{more}"
