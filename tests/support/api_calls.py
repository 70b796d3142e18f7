"""Which Kubernetes API calls the operator makes: the input of the Helm chart's RBAC test.

The emulator records every request. ``api_calls(requests)`` turns the operator's requests
(kopf's and its own, told apart from kubectl's and the runtime's by User-Agent) into the set
of ``ApiCall(verb, group, resource)``, ``resource`` with its subresource
(``livestrategies/status``), verbs as RBAC names them (``get list watch create update patch
delete deletecollection``). ``exercise_operator(...)`` runs a representative flow that uses
every feature of the operator and returns that set, split by scope.

Use in the chart's RBAC test (the ``operator_api_calls`` fixture runs the flow once)::

    async def test_the_chart_grants_what_the_operator_uses(operator_api_calls):
        used = operator_api_calls              # OperatorApiUse(cluster=..., namespaced=...)
        rules = render_chart_rbac()            # the chart's ClusterRole/Role rules
        missing = [c for c in used.all if not grants(rules, c)]
        assert missing == []

``used.cluster`` holds the calls made across all namespaces or on cluster-scoped resources
(a ClusterRole is needed for them); ``used.namespaced`` those made inside one namespace.
``as_rules(calls)`` renders a set as RBAC rules (one per group and resource), for comparing or
for printing. Besides what is recorded here, an operator that creates a Role granting
``patch`` on ``livestrategies/status`` and ``get`` on its own ``namespaces`` must itself hold them (it sends the
first, never the second) or ``escalate`` on roles; and setting ``blockOwnerDeletion``
in ownerReferences needs ``update`` on ``livestrategies/finalizers`` where the
OwnerReferencesPermissionEnforcement admission plugin runs (the emulator does not check it):
``REQUIRED_BEYOND_RECORDED`` lists them; grant ``used.all | REQUIRED_BEYOND_RECORDED``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import kmock
import pytest

from livestrat.kube_emulator.emulator import KubernetesEmulator
from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk, example, paper
from tests.support.kube import wait_for
from tests.support.operator import OperatorThread, fast_settings, is_operator_request, peering_crd


class ApiCall(NamedTuple):
    verb: str
    group: str  # "" for the core group
    resource: str  # plural, with "/subresource" if any


@dataclass(frozen=True)
class OperatorApiUse:
    cluster: frozenset[ApiCall]  # across all namespaces, or cluster-scoped resources
    namespaced: frozenset[ApiCall]  # inside a namespace

    @property
    def all(self) -> frozenset[ApiCall]:
        return self.cluster | self.namespaced


# Needed although the operator never sends these requests itself:
# - a Role may grant only what its creator holds (or the creator needs `escalate` on roles):
#   the runtime's Role grants patch on livestrategies/status;
# - ownerReferences with blockOwnerDeletion need update on the owner's finalizers where the
#   OwnerReferencesPermissionEnforcement admission plugin runs (the emulator does not check it).
REQUIRED_BEYOND_RECORDED = frozenset(
    {
        ApiCall("patch", "livestrat.io", "livestrategies/status"),
        ApiCall("update", "livestrat.io", "livestrategies/finalizers"),
        # the Roles it creates let each strategy pod get its own Namespace (read at SIGTERM: a namespace being
        # deleted is a halt): RBAC's escalation prevention lets it grant that only if it holds it (the operator
        # reads one itself only to confirm a kill switch its watch shows engaged: not in every recorded flow)
        ApiCall("get", "", "namespaces"),
    }
)


def verb_of(request: kmock.Request) -> str | None:
    method = request.method.value
    if method == "GET":
        if request.params.get("watch") in ("true", "1"):
            return "watch"
        return "get" if request.name else "list"
    if method == "DELETE":
        return "delete" if request.name else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method)


def _calls(requests: Iterable[kmock.Request]) -> Iterator[tuple[ApiCall, bool]]:
    for request in requests:
        resource = request.resource
        if resource is None or resource.plural is None:
            continue  # discovery (/api, /apis, /apis/GROUP/VERSION): open to every authenticated user
        verb = verb_of(request)
        if verb is None:
            continue
        plural = resource.plural + (f"/{request.subresource}" if request.subresource else "")
        yield ApiCall(verb, resource.group or "", plural), request.namespace is not None


def api_calls(requests: Iterable[kmock.Request], *, operator_only: bool = True) -> set[ApiCall]:
    """The (verb, group, resource[/subresource]) of the requests (the operator's only, by default)."""
    chosen = [r for r in requests if not operator_only or is_operator_request(r)]
    return {call for call, _ in _calls(chosen)}


def api_use(requests: Iterable[kmock.Request]) -> OperatorApiUse:
    cluster, namespaced = set(), set()
    for call, in_namespace in _calls(r for r in requests if is_operator_request(r)):
        (namespaced if in_namespace else cluster).add(call)
    return OperatorApiUse(frozenset(cluster), frozenset(namespaced))


def as_rules(calls: Iterable[ApiCall]) -> list[dict[str, list[str]]]:
    """RBAC rules granting exactly ``calls``: one rule per (group, resource)."""
    grouped: dict[tuple[str, str], set[str]] = {}
    for call in calls:
        grouped.setdefault((call.group, call.resource), set()).add(call.verb)
    return [
        {"apiGroups": [group], "resources": [resource], "verbs": sorted(verbs)}
        for (group, resource), verbs in sorted(grouped.items())
    ]


@contextlib.contextmanager
def _kubeconfig(path: Path) -> Iterator[None]:
    before = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = before


async def exercise_operator(emulator: KubernetesEmulator, kubeconfig: Path, workdir: Path) -> OperatorApiUse:
    """Run the operator through every feature (peering included) and return the API calls it made."""
    since = len(emulator)
    emulator.add_crd(peering_crd(clusterwide=True))
    emulator.create_object("kopf.dev/v1/clusterkopfpeerings", {"metadata": {"name": "livestrat"}})
    emulator.add_namespace("live")
    desk, live = Desk(emulator, kubeconfig), Desk(emulator, kubeconfig, "live")
    for namespace, name, keys in (
        ("live", "binance-testnet", ("api-key", "api-secret")),
        ("live", "ledger-dsn", ("dsn",)),
        ("default", "ledger-dsn", ("dsn",)),
    ):
        emulator.create_object(
            "v1/secrets", {"metadata": {"name": name}, "data": dict.fromkeys(keys, "eA==")}, namespace=namespace
        )
    settings = fast_settings(
        peering="livestrat",
        replica_ordinal=0,
        live_namespaces=["live"],
        default_ledger_secret="ledger-dsn",
        allow_service_account_name=True,  # a strategy may move to its own account: livestrat's is then deleted
    )
    with _kubeconfig(kubeconfig):
        async with (
            Kubelet(emulator, workdir=workdir, kubeconfig=kubeconfig),
            OperatorThread(settings, name="rbac") as operator,
        ):
            await wait_for(lambda: operator.context is not None, timeout=15)
            await desk.apply(example("paper-ema-cross"))
            await desk.apply(example("gcs-fuse-catalog"))
            await desk.apply(example("halted"))
            await desk.apply(paper("missing-secret", ledger={"dsnSecret": {"name": "absent", "key": "dsn"}}))
            await desk.apply(paper("own-account", pod={"serviceAccountName": "team"}))
            await live.apply(example("live-binance-testnet"))
            await desk.apply(example("live-binance-testnet"))  # live where it is not allowed
            name = "ema-cross-btc"
            await wait_for(
                lambda: desk.phase(name) == "Running" and live.phase("ema-cross-binance-testnet") == "Running",
                timeout=15,
            )
            desk.push_runtime_status(name, fills=1)
            budget = {
                "metadata": {"name": "desk-usdt"},
                "spec": {"members": [name], "currency": "USDT", "limits": {"maxGrossExposure": 1000}},
            }
            emulator.create_object("livestrat.io/v1alpha1/riskbudgets", budget, namespace="default")
            await wait_for(lambda: desk.status(name).get("budget"))  # its share, in its status
            await desk.edit_spec(name, {"risk": {"maxDailyLoss": 1000}})  # Auto: restart
            await live.edit_spec("ema-cross-binance-testnet", {"risk": {"maxDailyLoss": 50}})  # Manual: drift
            await wait_for(lambda: live.is_true("ema-cross-binance-testnet", "ConfigDrift"))
            await live.edit_spec("ema-cross-binance-testnet", {"restartNonce": "1"})
            # its paper twin: created as a LiveStrategy, deleted when spec.twin goes
            await live.edit_spec("ema-cross-binance-testnet", {"twin": {"startingBalances": ["10000 USDT"]}})
            await wait_for(lambda: live.get("ema-cross-binance-testnet-twin") is not None)
            await live.edit_spec("ema-cross-binance-testnet", {"twin": None})
            await wait_for(lambda: live.get("ema-cross-binance-testnet-twin") is None, timeout=30)
            await desk.scale(name, 0)
            await wait_for(lambda: desk.phase(name) == "Halted")
            emulator.create_object(
                "v1/pods",
                {
                    "metadata": {"name": "rogue", "labels": {"livestrat.io/strategy": name}},
                    "spec": {"containers": [{"name": "c", "image": "x"}]},
                },
                namespace="default",
            )
            await wait_for(lambda: desk.pods(name) == [])
            await desk.scale(name, 1)
            await wait_for(lambda: desk.phase(name) == "Running")
            desk.push_runtime_status(
                name, risk={"state": "Halted", "breachedLimit": "maxDailyLoss", "breachedAt": "2026-01-01T00:00:00Z"}
            )
            await wait_for(lambda: desk.phase(name) == "RiskHalted")
            await desk.annotate(name, "livestrat.io/risk-acknowledged", "2026-01-01T00:00:00Z")
            await wait_for(lambda: desk.phase(name) == "Running")
            # a RiskBudget over it: its breach halts the member, its acknowledgement releases it
            await desk.apply_budget(
                {
                    "apiVersion": "livestrat.io/v1alpha1",
                    "kind": "RiskBudget",
                    "metadata": {"name": "account"},
                    "spec": {"members": [name], "currency": "USDT", "limits": {"maxOpenOrders": 1}},
                }
            )
            desk.push_runtime_status(name, open_orders=5)
            await wait_for(lambda: desk.phase(name) == "RiskHalted")
            desk.push_runtime_status(name, open_orders=0)
            await wait_for(lambda: desk.budget_status("account").get("used") == "0%")
            at = desk.budget_status("account")["breach"]["breachedAt"]
            await desk.annotate_budget("account", "livestrat.io/risk-acknowledged", at)
            await wait_for(lambda: desk.phase(name) == "Running")
            for resource, patch in (  # children edited by hand are put back
                (
                    "v1/serviceaccounts",
                    {"metadata": {"labels": {"livestrat.io/strategy": name, "app.kubernetes.io/name": "x"}}},
                ),
                (
                    "rbac.authorization.k8s.io/v1/roles",
                    {"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
                ),
                ("v1/configmaps", {"data": {"runtime.json": "{}"}}),
                ("policy/v1/poddisruptionbudgets", {"spec": {"maxUnavailable": 1}}),
            ):
                emulator.patch_object(resource, name, patch, namespace="default")
                await wait_for(
                    lambda r=resource: (
                        (emulator.read_object(r, name, namespace="default") or {})
                        .get("metadata", {})
                        .get("labels", {})
                        .get("app.kubernetes.io/name")
                        == "livestrat"
                        and _restored(emulator, r, name)
                    )
                )
            # annotations stored past validation: the kill switch cannot add its halt to them, and scales the spec
            odd = paper("odd-annotations")
            odd["metadata"]["annotations"] = ["not", "a", "map"]
            emulator.store_unchecked("livestrat.io/v1alpha1/livestrategies", odd, namespace="default")
            await wait_for(lambda: desk.condition("odd-annotations", "InvalidSpec").get("reason") == "MetadataInvalid")
            desk.set_namespace_annotation("livestrat.io/kill-switch", "true")
            await wait_for(
                lambda: (
                    desk.phase(name) == "Halted"
                    and "livestrat.io/halt" in desk.get(name)["metadata"]["annotations"]
                    and desk.get("odd-annotations")["spec"]["replicas"] == 0
                )
            )
            desk.set_namespace_annotation("livestrat.io/kill-switch", None)
            await desk.apply(paper("own-account", pod={}))  # back to its own service account...
            await desk.apply(paper("own-account", pod={"serviceAccountName": "team"}))  # ...and away again
            await wait_for(  # livestrat's account goes once no pod runs with it
                lambda: emulator.read_object("v1/serviceaccounts", "own-account", namespace="default") is None,
                timeout=30,
            )
            await desk.delete(name)
        # The operator upgraded to the shared identity (the chart's default where the cluster serves admission
        # policies): the namespace's identity is made; what a halted strategy no longer uses goes, and the headless
        # Service every strategy had before issue 15.
        desk.store_legacy_service("ema-cross-halted")
        shared = settings.model_copy(update={"runtime_identity": "shared", "peering": None, "replica_ordinal": None})
        async with (
            Kubelet(emulator, workdir=workdir, kubeconfig=kubeconfig),
            OperatorThread(shared, name="rbac-shared") as operator,
        ):
            await wait_for(lambda: operator.context is not None, timeout=15)
            await desk.apply(paper("shares"))
            await wait_for(lambda: desk.phase("shares") == "Running", timeout=30)
            gone = [("v1/services", "ema-cross-halted"), ("rbac.authorization.k8s.io/v1/roles", "ema-cross-halted")]
            await wait_for(
                lambda: all(emulator.read_object(r, n, namespace="default") is None for r, n in gone), timeout=30
            )
            await desk.delete("ema-cross-halted")
    return api_use(list(emulator)[since:])


def _restored(emulator: KubernetesEmulator, resource: str, name: str) -> bool:
    body = emulator.read_object(resource, name, namespace="default") or {}
    if resource.endswith("/roles"):
        return body["rules"][0]["resources"] == ["livestrategies/status"]
    if resource == "v1/configmaps":
        return body["data"]["runtime.json"] != "{}"
    if resource.endswith("/poddisruptionbudgets"):
        return body["spec"]["maxUnavailable"] == 0
    return True


@pytest.fixture
async def operator_api_calls(emulator: KubernetesEmulator, kubeconfig_path: Path, tmp_path: Path) -> OperatorApiUse:
    """The API calls of a representative operator flow (see ``exercise_operator``)."""
    return await exercise_operator(emulator, kubeconfig_path, tmp_path / "pods")
