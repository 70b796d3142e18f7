"""The ``RuntimeConfig`` of a local run (``livestrat run`` / ``livestrat backtest``), built from a manifest.

In a cluster the operator renders the configuration; on a laptop the manifest is validated
exactly as the API server would (schema and CEL rules) and everything the operator would
decide gets a local default under a work directory:

- catalog: ``WORKDIR/catalogs/NAME`` (or ``--catalog``);
- state (ledger file): ``WORKDIR/state/NAME``; the ledger is SQLite there unless told otherwise.
"""

from __future__ import annotations

from pathlib import Path

from livestrat import manifests
from livestrat.api.contract import SQLITE_FILE_NAME as LEDGER_FILE_NAME
from livestrat.api.runtime_config import (
    LedgerKind,
    LedgerTarget,
    RuntimeConfig,
    StrategyIdentity,
    halt_budget_seconds,
)
from livestrat.api.validation import parse

LOCAL_NAMESPACE = "local"


def local_runtime_config(
    manifest: Path,
    *,
    workdir: Path,
    catalog: Path | None = None,
    ledger: LedgerTarget | None = None,
    log_level: str = "ERROR",
) -> RuntimeConfig:
    """The configuration for running the manifest's strategy on this machine (InvalidManifest if invalid)."""
    doc = manifests.load_one_strategy(manifest)
    return runtime_config_of(
        doc, source=str(manifest), workdir=workdir, catalog=catalog, ledger=ledger, log_level=log_level
    )


def runtime_config_of(
    doc: dict,
    *,
    source: str,
    workdir: Path,
    catalog: Path | None = None,
    ledger: LedgerTarget | None = None,
    log_level: str = "ERROR",
) -> RuntimeConfig:
    """:func:`local_runtime_config` of one manifest document already read (``source`` names it in errors)."""
    strategy = parse(doc, source=source)
    name = strategy.metadata.name
    state_dir = workdir / "state" / name
    return RuntimeConfig(
        strategy=StrategyIdentity(namespace=strategy.metadata.namespace or LOCAL_NAMESPACE, name=name),
        spec=strategy.spec,
        catalog_path=str((catalog or workdir / "catalogs" / name).absolute()),
        state_dir=str(state_dir.absolute()),
        ledger=ledger
        or LedgerTarget(kind=LedgerKind.SQLITE, sqlite_path=str((state_dir / LEDGER_FILE_NAME).absolute())),
        report_status=False,
        halt_budget_seconds=halt_budget_seconds(strategy.spec.pod.termination_grace_period_seconds),
        log_level=log_level,
    )


def paper_only(file: str | Path, config: RuntimeConfig, command: str) -> str:
    """Why ``command`` does not take a live manifest: the field, what is allowed, and what to do instead."""
    spec = config.spec
    venue = spec.instruments[0].rsplit(".", 1)[-1] if spec.instruments else "VENUE"
    return (
        f"{file}: spec.mode is live (adapter {spec.venue.adapter}), and {command} takes only spec.mode: paper: "
        "simulated fills on a sandbox venue fed by a catalog, never real orders from this machine. "
        f"To run it here, copy the manifest and set spec.mode: paper, spec.venue.adapter: sandbox, "
        f"spec.venue.name: {venue}, spec.venue.accountType: margin (or cash), spec.venue.startingBalances "
        '(for example ["100000 USDT"]) and spec.data.replay (with spec.data.sample for synthetic bars); '
        "remove spec.venue.credentialsSecret and spec.venue.testnet. "
        f"To trade it live, apply it to a cluster running the operator: kubectl apply -f {file}"
    )


def halted_note(file: str | Path, config: RuntimeConfig, command: str) -> str | None:
    """What ``command`` says about a manifest with ``spec.replicas: 0`` (None for any other): in a cluster the
    strategy is halted and no pod runs; here it runs anyway, as a paper test of the spec (a local run trades
    nothing real, and refusing would only make the user edit the file to try it)."""
    if config.spec.replicas != 0:
        return None
    name = config.strategy.name
    return (
        f"note: {file} has spec.replicas: 0: applied to a cluster, {name} is halted (no pod runs) until "
        f"`kubectl scale livestrategy/{name} --replicas=1`; {command} runs it anyway, on paper"
    )
