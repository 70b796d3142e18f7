"""Bringing an object the operator owns to what it wants: a merge patch of the fields that differ, written once.

Shared by a strategy's children (:mod:`strategy_operator.apply.children`) and its paper twin
(:mod:`strategy_operator.apply.twin`): the three-way merge against the record of applied fields
(:mod:`strategy_operator.apply.applied_fields`), and the memory of what each was converged to, so that an
unchanged object is not compared again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strategy_operator.apply import applied_fields
from strategy_operator.apply.merge import is_subset, patchable
from strategy_operator.build.configuration import digest
from strategy_operator.kube_client import KubeClient
from strategy_operator.memory import StrategyMemory


async def converge(
    kube: KubeClient,
    desired: dict[str, Any],
    existing: Mapping[str, Any],
    namespace: str,
    memory: StrategyMemory,
    slot: str,
) -> bool:
    """Merge-patch ``existing`` (ours) to ``desired`` wherever a field the operator sets differs or one it set
    before is no longer wanted; True when it wrote. ``desired`` is whole (its record of applied fields included:
    :func:`applied_fields.with_record`) or partial (no ``apiVersion``: no record, nothing removed). What it
    converged to is remembered under ``slot`` of ``memory.converged`` (digest and resourceVersion), and that
    version of the object is not compared again."""
    wanted = digest(desired)
    version = str((existing.get("metadata") or {}).get("resourceVersion"))
    if memory.converged.get(slot) == (wanted, version):
        return False
    patch = patchable(desired)
    whole = "apiVersion" in desired
    nulls, resend = (
        applied_fields.removals(applied_fields.recorded(existing), patch, existing) if whole else ({}, False)
    )
    if not nulls and not resend and is_subset(applied_fields.without_record(patch), existing):
        memory.converged[slot] = (wanted, version)
        return False
    name = desired["metadata"]["name"]
    patched = await kube.patch(desired["kind"], namespace, name, applied_fields.merged(patch, nulls))
    memory.converged[slot] = (wanted, str(patched.get("metadata", {}).get("resourceVersion")))
    return True
