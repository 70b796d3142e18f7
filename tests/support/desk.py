"""What a trading desk does to LiveStrategies, and what it reads back, in tests.

Actions go through the real ``kubectl`` (``make tools`` installs it in .tools/bin) against
the emulator, exactly as a user types them; without kubectl, the same requests are sent
over HTTP. Reads are out-of-band reads of the emulator's store.

Also the runtime's side, for tests that run no real runtime: ``push_runtime_status`` patches
``status.trading``/``status.risk`` the way ``livestrat runtime`` does.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from livestrat.kube_emulator.emulator import KubernetesEmulator
from strategy_operator.build import labels

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
LIVESTRATEGIES = "livestrat.io/v1alpha1/livestrategies"
RISKBUDGETS = "livestrat.io/v1alpha1/riskbudgets"
STATEFULSETS = "apps/v1/statefulsets"
PODS = "v1/pods"
CHILD_RESOURCES = {
    "ConfigMap": "v1/configmaps",
    "ServiceAccount": "v1/serviceaccounts",
    "Role": "rbac.authorization.k8s.io/v1/roles",
    "RoleBinding": "rbac.authorization.k8s.io/v1/rolebindings",
    "Service": "v1/services",
    "StatefulSet": STATEFULSETS,
}
MERGE = {"Content-Type": "application/merge-patch+json"}


def kubectl_binary() -> str | None:
    local = ROOT / ".tools" / "bin" / "kubectl"
    return str(local) if local.exists() else shutil.which("kubectl")


def example(name: str) -> dict[str, Any]:
    """The LiveStrategy document of ``examples/NAME.yaml``."""
    docs = [d for d in yaml.safe_load_all((EXAMPLES / f"{name}.yaml").read_text()) if d]
    return copy.deepcopy(next(d for d in docs if d.get("kind") == "LiveStrategy"))


def paper(name: str, **spec: Any) -> dict[str, Any]:
    """The paper example under another name, with spec fields replaced."""
    doc = example("paper-ema-cross")
    doc["metadata"] = {"name": name}
    doc["spec"].update(spec)
    return doc


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Desk:
    def __init__(self, emulator: KubernetesEmulator, kubeconfig: Path, namespace: str = "default") -> None:
        self.emulator = emulator
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.binary = kubectl_binary()

    def in_namespace(self, namespace: str) -> Desk:
        return Desk(self.emulator, self.kubeconfig, namespace)

    # ---------------------------------------------------------------------------------- actions

    async def kubectl(self, *args: str, stdin: str | None = None) -> str:
        assert self.binary is not None
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig))
        process = await asyncio.create_subprocess_exec(
            self.binary,
            "--namespace",
            self.namespace,
            *args,
            env=env,
            stdin=asyncio.subprocess.PIPE if stdin is not None else None,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate(stdin.encode() if stdin is not None else None)
        if process.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {err.decode()}")
        return out.decode()

    def _url(self, name: str | None = None, sub: str | None = None) -> str:
        url = f"/apis/livestrat.io/v1alpha1/namespaces/{self.namespace}/livestrategies"
        return url + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")

    async def apply(self, manifest: dict[str, Any]) -> None:
        """``kubectl apply -f`` (client-side validation needs OpenAPI, which the emulator lacks)."""
        if self.binary is not None:
            await self.kubectl("apply", "--validate=false", "-f", "-", stdin=yaml.safe_dump(manifest))
            return
        name = manifest["metadata"]["name"]
        if self.get(name) is None:
            response = await self.emulator.post(self._url(), json=manifest)
        else:
            response = await self.emulator.patch(self._url(name), json=manifest, headers=MERGE)
        assert response.status < 300, await response.text()

    async def scale(self, name: str, replicas: int) -> None:
        """``kubectl scale livestrategy/NAME --replicas=N`` (the scale subresource)."""
        if self.binary is not None:
            await self.kubectl("scale", f"livestrategy/{name}", f"--replicas={replicas}")
            return
        response = await self.emulator.patch(
            self._url(name, "scale"), json={"spec": {"replicas": replicas}}, headers=MERGE
        )
        assert response.status < 300, await response.text()

    async def annotate(self, name: str, key: str, value: str | None) -> None:
        if self.binary is not None:
            await self.kubectl(
                "annotate", f"livestrategy/{name}", f"{key}={value}" if value else f"{key}-", "--overwrite"
            )
            return
        response = await self.emulator.patch(
            self._url(name), json={"metadata": {"annotations": {key: value}}}, headers=MERGE
        )
        assert response.status < 300, await response.text()

    async def edit_spec(self, name: str, spec: dict[str, Any]) -> None:
        """``kubectl patch --type merge`` of the spec (what an edit or a re-apply does)."""
        if self.binary is not None:
            await self.kubectl("patch", f"livestrategy/{name}", "--type", "merge", "-p", json.dumps({"spec": spec}))
            return
        response = await self.emulator.patch(self._url(name), json={"spec": spec}, headers=MERGE)
        assert response.status < 300, await response.text()

    async def delete(self, name: str) -> None:
        """``kubectl delete`` (which waits for the finalizers, as it does by default)."""
        if self.binary is not None:
            await self.kubectl("delete", f"livestrategy/{name}", "--timeout=60s")
            return
        response = await self.emulator.delete(self._url(name))
        assert response.status < 300, await response.text()

    # ---------------------------------------------------------------------------------- reads

    def get(self, name: str) -> dict[str, Any] | None:
        return self.emulator.read_object(LIVESTRATEGIES, name, namespace=self.namespace)

    def status(self, name: str) -> dict[str, Any]:
        return (self.get(name) or {}).get("status") or {}

    def phase(self, name: str) -> str | None:
        return self.status(name).get("phase")

    def condition(self, name: str, type_: str) -> dict[str, Any]:
        return next((c for c in self.status(name).get("conditions") or [] if c.get("type") == type_), {})

    def is_true(self, name: str, type_: str) -> bool:
        return self.condition(name, type_).get("status") == "True"

    def child(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.emulator.read_object(CHILD_RESOURCES[kind], name, namespace=self.namespace)

    def store_legacy_service(self, name: str) -> None:
        """The headless Service the operator made for each strategy before issue 15 (strategy NAME's, owned by it)."""
        uid = self.get(name)["metadata"]["uid"]
        owner = {"apiVersion": "livestrat.io/v1alpha1", "kind": "LiveStrategy", "name": name, "uid": uid}
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "labels": labels.child_labels(name),
                "ownerReferences": [{**owner, "controller": True, "blockOwnerDeletion": True}],
            },
            "spec": {
                "clusterIP": "None",
                "selector": labels.selector_labels(name),
                "ports": [{"name": "metrics", "port": 8080, "targetPort": "http", "protocol": "TCP"}],
            },
        }
        self.emulator.store_unchecked(CHILD_RESOURCES["Service"], service, namespace=self.namespace)

    def statefulset(self, name: str) -> dict[str, Any] | None:
        return self.child("StatefulSet", name)

    def pods(self, name: str) -> list[dict[str, Any]]:
        return [
            p
            for p in self.emulator.list_objects(PODS, self.namespace)
            if (p["metadata"].get("labels") or {}).get("livestrat.io/strategy") == name
        ]

    def events(self, name: str) -> list[str]:
        """Reasons of the Events about the LiveStrategy, oldest first."""
        events = [
            e
            for e in self.emulator.list_objects("v1/events", self.namespace)
            if (e.get("involvedObject") or {}).get("name") == name
            and (e.get("involvedObject") or {}).get("kind") == "LiveStrategy"
        ]
        events.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
        return [e["reason"] for e in events]

    def event_messages(self, name: str, reason: str) -> list[str]:
        return [
            e.get("message", "")
            for e in self.emulator.list_objects("v1/events", self.namespace)
            if (e.get("involvedObject") or {}).get("name") == name and e.get("reason") == reason
        ]

    # ---------------------------------------------------------------------------------- the runtime's side

    def push_runtime_status(
        self,
        name: str,
        *,
        node_state: str = "Running",
        fills: int = 0,
        heartbeat: str | None = None,
        risk: dict[str, Any] | None = None,
        total_pnl: str | None = None,
        positions: list[dict[str, Any]] | None = None,
        open_orders: int | None = None,
        strategy_uid: str | None = None,
    ) -> None:
        """What ``livestrat runtime`` patches into its own status (trading and risk); ``strategy_uid``: the uid of
        the LiveStrategy whose pod pushes it (None: a runtime older than the stamp)."""
        trading: dict[str, Any] = {"fills": fills, "nodeState": node_state, "heartbeat": heartbeat or now_text()}
        if strategy_uid is not None:
            trading["strategyUid"] = strategy_uid
        if total_pnl is not None:
            trading["totalPnl"] = total_pnl
        if positions is not None:
            trading["positions"] = positions
        if open_orders is not None:
            trading["openOrders"] = open_orders
        patch = {"status": {"trading": trading, "risk": risk or {"state": "Active"}}}
        self.emulator.patch_object(LIVESTRATEGIES, name, patch, namespace=self.namespace, subresource="status")

    # ---------------------------------------------------------------------------------- RiskBudgets

    async def apply_budget(self, manifest: dict[str, Any]) -> None:
        """``kubectl apply -f`` of a RiskBudget."""
        if self.binary is not None:
            await self.kubectl("apply", "--validate=false", "-f", "-", stdin=yaml.safe_dump(manifest))
            return
        url = f"/apis/livestrat.io/v1alpha1/namespaces/{self.namespace}/riskbudgets"
        response = await self.emulator.post(url, json=manifest)
        assert response.status < 300, await response.text()

    async def annotate_budget(self, name: str, key: str, value: str | None) -> None:
        """``kubectl annotate riskbudget/NAME KEY=VALUE --overwrite``."""
        if self.binary is not None:
            await self.kubectl(
                "annotate", f"riskbudget/{name}", f"{key}={value}" if value else f"{key}-", "--overwrite"
            )
            return
        url = f"/apis/livestrat.io/v1alpha1/namespaces/{self.namespace}/riskbudgets/{name}"
        response = await self.emulator.patch(url, json={"metadata": {"annotations": {key: value}}}, headers=MERGE)
        assert response.status < 300, await response.text()

    async def delete_budget(self, name: str) -> None:
        """``kubectl delete riskbudget/NAME`` (waiting for the finalizers, as it does by default)."""
        if self.binary is not None:
            await self.kubectl("delete", f"riskbudget/{name}", "--timeout=60s")
            return
        url = f"/apis/livestrat.io/v1alpha1/namespaces/{self.namespace}/riskbudgets/{name}"
        response = await self.emulator.delete(url)
        assert response.status < 300, await response.text()

    def budget(self, name: str) -> dict[str, Any]:
        return self.emulator.read_object(RISKBUDGETS, name, namespace=self.namespace) or {}

    def budget_status(self, name: str) -> dict[str, Any]:
        return self.budget(name).get("status") or {}

    def budget_events(self, name: str) -> list[tuple[str, str]]:
        """(reason, message) of the Events about the RiskBudget (what `kubectl describe` lists), oldest first."""
        events = [
            e
            for e in self.emulator.list_objects("v1/events", self.namespace)
            if (e.get("involvedObject") or {}).get("name") == name
            and (e.get("involvedObject") or {}).get("kind") == "RiskBudget"
        ]
        events.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
        return [(e["reason"], e.get("message", "")) for e in events]

    def set_namespace_annotation(self, key: str, value: str | None, namespace: str | None = None) -> None:
        self.emulator.patch_object(
            "v1/namespaces", namespace or self.namespace, {"metadata": {"annotations": {key: value}}}
        )
