"""Reading LiveStrategy manifests from YAML files (several documents per file allowed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from livestrat.api import resource


class ManifestError(Exception):
    """A file that cannot be read as manifests at all."""


def load_documents(path: Path) -> list[Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: not valid YAML: {exc}") from None


def is_strategy(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == resource.KIND


def load_strategies(path: Path) -> Iterator[tuple[int, Any]]:
    """The LiveStrategy documents of a file with their index; other kinds (a Secret) are skipped."""
    docs = load_documents(path)
    found = [(i, d) for i, d in enumerate(docs) if is_strategy(d) or not isinstance(d, dict)]
    if not found:
        raise ManifestError(f"{path}: no {resource.KIND} document in this file")
    yield from found


def load_one_strategy(path: Path) -> dict[str, Any]:
    """The single LiveStrategy of a file (what `run` and `backtest` take)."""
    docs = [d for _, d in load_strategies(path)]
    if len(docs) != 1:
        raise ManifestError(f"{path}: expected one {resource.KIND} document, found {len(docs)}")
    return docs[0]
