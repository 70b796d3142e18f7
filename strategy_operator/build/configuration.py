"""The runtime configuration a strategy's pod gets, and the hashes that say what a pod runs.

Pure functions: ``render_runtime_config`` is the ``runtime.json`` of the strategy's ConfigMap
(the contract's ``RuntimeConfig``, never a secret); ``config_hash`` and ``spec_hash`` summarise
what a pod runs (everything, and the part the LiveStrategy itself asks for) in the pod
template's annotations, so a running pod can be compared with what would be built now.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from livestrat.api.contract import RISK_ACK_ANNOTATION, SQLITE_FILE_NAME
from livestrat.api.resource import LiveStrategy
from livestrat.api.runtime_config import (
    CATALOG_MOUNT_DIR,
    CODE_MOUNT_DIR,
    CONFIG_FILE_NAME,
    DEFAULT_HTTP_HOST,
    HTTP_PORT,
    STATE_DIR,
    LedgerKind,
    LedgerTarget,
    RuntimeConfig,
    StrategyIdentity,
    halt_budget_seconds,
)
from strategy_operator.build.policy import ledger_secret
from strategy_operator.settings import OperatorSettings

# Spec fields that do not change what the pod runs: scaling is the StatefulSet's replicas,
# the nonce is a pod-template annotation, the policy only decides when changes apply.
NOT_CONFIGURATION = ("replicas", "restartNonce", "updatePolicy")


def strategy_uid(strategy: LiveStrategy) -> str:
    return str((strategy.metadata.model_extra or {}).get("uid") or "")


def strategy_generation(strategy: LiveStrategy) -> int | None:
    generation = (strategy.metadata.model_extra or {}).get("generation")
    return int(generation) if generation is not None else None


def render_runtime_config(strategy: LiveStrategy, settings: OperatorSettings) -> RuntimeConfig:
    """The configuration the pod's runtime reads from ``/etc/livestrat/runtime.json``."""
    spec = strategy.spec
    ledger = (
        LedgerTarget(kind=LedgerKind.POSTGRESQL)
        if ledger_secret(strategy, settings) is not None
        else LedgerTarget(kind=LedgerKind.SQLITE, sqlite_path=f"{STATE_DIR}/{SQLITE_FILE_NAME}")
    )
    fields: dict[str, Any] = {
        "strategy": StrategyIdentity(
            namespace=strategy.metadata.namespace or "", name=strategy.metadata.name, uid=strategy_uid(strategy) or None
        ),
        # spec.promotion is the operator's gate and spec.twin its paper twin, not the pod's configuration: neither
        # restarts a pod.
        "spec": spec.model_copy(update={"promotion": None, "twin": None}),
        "generation": strategy_generation(strategy),
        "catalog_path": CATALOG_MOUNT_DIR,
        "state_dir": STATE_DIR,
        "code_path": CODE_MOUNT_DIR if spec.strategy.code is not None else None,
        "ledger": ledger,
        # Only another address than the default is written: runtime.json stays as it was for every strategy
        # (a running one is not told its configuration changed), and a runtime older than the field reads it.
        "http_host": settings.runtime_http_host if settings.runtime_http_host != DEFAULT_HTTP_HOST else None,
        "http_port": HTTP_PORT,
        "halt_budget_seconds": halt_budget_seconds(spec.pod.termination_grace_period_seconds),
        "log_level": settings.log_level,
    }
    # A risk halt the ledger keeps is lifted when the runtime starts with a new acknowledgement.
    fields["risk_acknowledgement"] = (strategy.metadata.annotations or {}).get(RISK_ACK_ANNOTATION) or None
    return RuntimeConfig(**fields)


def config_substance(document: dict[str, Any]) -> dict[str, Any]:
    """A rendered ``runtime.json`` without what does not change the pod's behaviour (generation, scaling), with
    every default written out: the operator writes none (``RuntimeConfig.dumps``), older versions wrote them
    all, and both mean the same configuration."""
    substance = {key: value for key, value in RuntimeConfig.complete(document).items() if key != "generation"}
    spec = dict(substance.get("spec") or {})
    for key in NOT_CONFIGURATION:
        spec.pop(key, None)
    substance["spec"] = spec
    return substance


def digest(value: Any) -> str:
    """16 hex digits of a JSON document's SHA-256: the operator's one way of hashing what it builds."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def spec_hash(document: dict[str, Any], restart_nonce: str | None) -> str:
    """The part of what the pod runs that the LiveStrategy itself asks for, in 16 hex digits: its spec
    as rendered into ``runtime.json`` (without scaling and the update policy), its identity and its
    restart nonce. What ``config_hash`` covers beyond this comes from the operator (its settings, such
    as the default runtime image, and its version's way of building the pod): a change there never
    restarts a running strategy by itself."""
    substance = config_substance(document)
    return digest(
        {"strategy": substance.get("strategy"), "spec": substance.get("spec"), "restartNonce": restart_nonce or None}
    )


def config_hash(document: dict[str, Any], template: dict[str, Any]) -> str:
    """What the pod runs, in 16 hex digits: the configuration's substance and the pod template."""
    return digest({"config": config_substance(document), "template": template})


def runtime_json(configmap: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The ``runtime.json`` a ConfigMap holds, as a document (None when absent or unreadable)."""
    if configmap is None:
        return None
    text = (configmap.get("data") or {}).get(CONFIG_FILE_NAME)
    if not text:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None
