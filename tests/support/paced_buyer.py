"""A paper strategy that buys 0.01 BTC at market on every bar of a paced replay, and its LiveStrategy in the emulator.

Shared by the runtime tests that play the operator's and the API server's part around a real ``livestrat runtime``
process (tests/runtime/test_budget_share_push.py, test_another_object.py): the strategy keeps trying to trade, so
a gate that holds it shows at once as denials in its events file (``tests.support.scripted``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livestrat.api.runtime_config import StrategyIdentity
from livestrat.kube_emulator.emulator import NAMESPACES
from tests.support.catalogs import write_price_path
from tests.support.kube import LIVESTRATEGIES
from tests.support.runtime_process import RuntimeProcess, paper_spec, strategy_config
from tests.support.scripted import read_events, scripted_strategy

NAMESPACE = "desk"
NAME = "scalper"
PACED = {"catalog": {"emptyDir": {}}, "replay": {"speed": 600}}  # a one-minute bar every 0.1 s
RUNNING = {"phase": "Running", "replicas": 1, "observedGeneration": 1}  # the operator's part, as it writes it
HEARTBEAT = 2.0


@dataclass(frozen=True)
class PacedBuyer:
    events: Path  # what the strategy saw: every order and its events, with the denial reasons
    catalog: Path
    spec: dict[str, Any]

    def rows(self, kind: str) -> list[dict]:
        """The strategy's events of ``kind`` (``OrderFilled``, ``OrderDenied``, …), oldest first."""
        return [e for e in read_events(str(self.events)) if e.get("event") == kind] if self.events.exists() else []

    def denials(self, containing: str) -> list[dict]:
        return [r for r in self.rows("OrderDenied") if containing in (r.get("reason") or "")]

    def create(self, emulator: Any) -> str:
        """Its LiveStrategy in the emulator (the namespace made if need be), Running as the operator says; its uid."""
        if emulator.read_object(NAMESPACES, NAMESPACE) is None:
            emulator.add_namespace(NAMESPACE)
        manifest = {
            "apiVersion": "livestrat.io/v1alpha1",
            "kind": "LiveStrategy",
            "metadata": {"name": NAME},
            "spec": self.spec,
        }
        emulator.create_object(LIVESTRATEGIES, manifest, namespace=NAMESPACE)
        emulator.patch_object(LIVESTRATEGIES, NAME, {"status": RUNNING}, namespace=NAMESPACE, subresource="status")
        return emulator.read_object(LIVESTRATEGIES, NAME, namespace=NAMESPACE)["metadata"]["uid"]

    def start(self, directory: Path, kubeconfig: Path, uid: str | None = None) -> RuntimeProcess:
        """``livestrat runtime`` running it, pushing its status (a heartbeat every ``HEARTBEAT`` s) to the API server
        of ``kubeconfig``; ``uid``: the LiveStrategy's, as the operator writes it into the configuration."""
        config, path = strategy_config(
            directory,
            self.spec,
            name=NAME,
            namespace=NAMESPACE,
            catalog=self.catalog,
            report_status=True,
            heartbeat_interval_seconds=HEARTBEAT,
            strategy=StrategyIdentity(namespace=NAMESPACE, name=NAME, uid=uid),
        )
        return RuntimeProcess.start(config, path, env={"KUBECONFIG": str(kubeconfig)})


def paced_buyer(directory: Path, prices: Any) -> PacedBuyer:
    """The strategy over ``prices`` (``tests.support.catalogs``: ``flat``, ``falling``), its files in ``directory``."""
    events = directory / "events.jsonl"
    catalog = write_price_path(directory / "catalog", prices)
    spec = paper_spec(scripted_strategy(str(events), keep_trying_from=2, keep_trying_quantity="0.01"), data=PACED)
    return PacedBuyer(events, catalog, spec)
