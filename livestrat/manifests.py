"""Reading LiveStrategy manifests from YAML files (several documents per file allowed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from livestrat.api import budget_resource, resource


class ManifestError(Exception):
    """A file that cannot be read as manifests at all."""


class _ManifestLoader(yaml.SafeLoader):
    """YAML as kubectl reads it: an unquoted `2024-01-01T00:00:00Z` stays a string.

    PyYAML would turn it into a datetime, which JSON (and so the API server's view of the
    manifest) has no type for.
    """


_ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_documents(path: Path) -> list[Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return [doc for doc in yaml.load_all(text, Loader=_ManifestLoader) if doc is not None]
    except yaml.MarkedYAMLError as exc:
        # Position and problem only: the offending line could hold a credential.
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise ManifestError(f"{path}: not valid YAML at {where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: not valid YAML ({type(exc).__name__})") from None


def is_strategy(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == resource.KIND


def is_budget(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == budget_resource.KIND


def load_strategies(path: Path) -> Iterator[tuple[int, Any]]:
    """The LiveStrategy documents of a file with their index; other kinds (a Secret) are skipped."""
    docs = load_documents(path)
    found = [(i, d) for i, d in enumerate(docs) if is_strategy(d) or not isinstance(d, dict)]
    if not found:
        kinds = sorted({str(d.get("kind")) for d in docs if isinstance(d, dict)})
        seen = f" (found kind {', '.join(kinds)})" if kinds else " (the file is empty)"
        raise ManifestError(f"{path}: no {resource.KIND} document in this file{seen}")
    yield from found


def load_checkable(path: Path) -> Iterator[tuple[int, Any]]:
    """The documents `livestrat validate` checks (LiveStrategies and RiskBudgets) with their index."""
    docs = load_documents(path)
    found = [(i, d) for i, d in enumerate(docs) if is_strategy(d) or is_budget(d) or not isinstance(d, dict)]
    if not found:
        kinds = sorted({str(d.get("kind")) for d in docs if isinstance(d, dict)})
        seen = f" (found kind {', '.join(kinds)})" if kinds else " (the file is empty)"
        raise ManifestError(f"{path}: no {resource.KIND} or {budget_resource.KIND} document in this file{seen}")
    yield from found


def load_one_strategy(path: Path) -> dict[str, Any]:
    """The single LiveStrategy of a file (what `run` and `backtest` take)."""
    docs = [d for _, d in load_strategies(path)]
    if len(docs) != 1:
        raise ManifestError(f"{path}: expected one {resource.KIND} document, found {len(docs)}")
    return docs[0]
