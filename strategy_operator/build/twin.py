"""A live strategy's paper twin (``spec.twin``): the LiveStrategy ``NAME-twin`` the operator keeps for it.

The twin is the live strategy's spec in paper mode: the same strategy, instruments, data, risk limits,
update policy, restart nonce and replicas (it halts and resumes with the live one), on the same venue
adapter's public market data (paper on a live feed), with the twin's own starting balances and without
the live strategy's credentials, promotion or twin. It is owned by the live strategy (its controller), so
that deleting the live strategy deletes it, and labelled :data:`~livestrat.api.contract.TWIN_OF_LABEL`.
"""

from __future__ import annotations

from typing import Any

import kopf

from livestrat.api.contract import TWIN_OF_LABEL
from livestrat.api.resource import API_VERSION, KIND, LiveStrategy
from livestrat.api.spec import Mode
from livestrat.api.twin import twin_name
from strategy_operator.build import labels
from strategy_operator.build.configuration import strategy_uid


def build_twin(strategy: LiveStrategy) -> dict[str, Any] | None:
    """The twin's manifest, or None when the strategy keeps no twin (or is not stored yet: it has no uid to own it)."""
    spec, name, uid = strategy.spec, strategy.metadata.name, strategy_uid(strategy)
    if spec.twin is None or spec.mode != Mode.LIVE or not uid:
        return None
    venue = spec.venue.model_copy(
        update={"credentials_secret": None, "starting_balances": list(spec.twin.starting_balances)}
    )
    paper = spec.model_copy(update={"mode": Mode.PAPER, "venue": venue, "promotion": None, "twin": None})
    meta: dict[str, Any] = {
        "name": twin_name(name),
        "namespace": strategy.metadata.namespace,
        "labels": {
            TWIN_OF_LABEL: name,
            "app.kubernetes.io/name": labels.APP_NAME,
            "app.kubernetes.io/component": "paper-twin",
            "app.kubernetes.io/part-of": labels.APP_NAME,
            "app.kubernetes.io/managed-by": labels.MANAGED_BY,
        },
    }
    owner = {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name, "uid": uid}}
    kopf.append_owner_reference({"metadata": meta}, owner=kopf.Body(owner))
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": meta,
        # What the live spec sets (the API server has defaulted it), not every default of the model written out.
        "spec": paper.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True),
    }
