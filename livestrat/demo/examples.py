"""Which examples can run on this machine, and at what pace.

An example runs here when it needs nothing outside: paper mode on the sandbox venue, its catalog a scratch
volume filled with the spec's sample data. The others are skipped with the reason (a live venue's keys, a
feed from the network, a bucket or a volume of a cluster). The sample is replayed at ``speed`` market
seconds per wall second instead of the example's own pace (which is "as fast as possible": over in a few
seconds, nothing to watch).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livestrat import manifests
from livestrat.api.spec import Adapter, Mode
from livestrat.api.validation import InvalidManifest, parse

# Kinds of an example file the demo applies besides its LiveStrategies, with the API path of their collection.
COMPANION_KINDS = {"ConfigMap": "api/v1/namespaces/{namespace}/configmaps"}


@dataclass(frozen=True)
class Example:
    path: Path
    name: str
    document: dict[str, Any] | None  # what is applied (paced), or None: skipped
    skipped: str | None = None  # why it does not run here
    # the file's other objects the strategy needs, applied before it (kubectl apply -f applies the whole file):
    # the ConfigMap holding a shipped strategy's code
    companions: tuple[dict[str, Any], ...] = ()

    @property
    def replicas(self) -> int:
        return int(((self.document or {}).get("spec") or {}).get("replicas", 1))


def why_not_here(document: dict[str, Any]) -> str | None:
    """Why this LiveStrategy cannot run without a venue or a cluster, or None: it can."""
    try:
        strategy = parse(document)
    except InvalidManifest as exc:
        return f"not a valid LiveStrategy: {exc}"
    spec = strategy.spec
    if spec.mode == Mode.LIVE:
        return f"live mode: needs {spec.venue.adapter} API keys (a Secret) and the network"
    if spec.venue.adapter != Adapter.SANDBOX:
        return f"paper on {spec.venue.adapter}'s live feed: needs the network"
    catalog = spec.data.catalog
    if catalog.empty_dir is None:
        return "its catalog is a bucket or a volume of a cluster"
    if spec.data.sample is None:
        return "its catalog is empty and it has no sample data to write"
    return None


def paced(document: dict[str, Any], speed: float) -> dict[str, Any]:
    paced = copy.deepcopy(document)
    paced["spec"]["data"].setdefault("replay", {})["speed"] = speed
    return paced


def choose(where: Path, speed: float) -> list[Example]:
    """Every LiveStrategy of ``where`` (a file, or a directory's ``*.yaml``): the ones that run here paced at
    ``speed``, the others skipped."""
    found = []
    for path in [where] if where.is_file() else sorted(where.glob("*.yaml")):
        companions = tuple(
            d for d in manifests.load_documents(path) if isinstance(d, dict) and d.get("kind") in COMPANION_KINDS
        )
        if not any(manifests.is_strategy(d) for d in manifests.load_documents(path)):
            # another kind of example (examples/risk-budget.yaml): named, with where it belongs, not applied
            kinds = sorted({str(d.get("kind")) for d in manifests.load_documents(path) if isinstance(d, dict)})
            found.append(Example(path, path.stem, None, f"a {', '.join(kinds) or 'file'} with no LiveStrategy in it"))
            continue
        for _, document in manifests.load_strategies(path):
            name = str((document.get("metadata") or {}).get("name", "?"))
            reason = why_not_here(document)
            found.append(Example(path, name, None if reason else paced(document, speed), reason, companions))
    return found
