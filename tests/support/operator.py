"""The real livestrat operator (kopf) in a thread of the test process, against the emulator.

``kopf.run()`` runs in its own thread and event loop (the emulator stays in pytest's loop;
they talk HTTP), with the operator's own registry and settings, and is stopped through its
stop flag. It logs in exactly as in production: ``$KUBECONFIG`` (the ``kube_env`` fixture
points it to the emulator). Nothing of kopf or of the operator is replaced.

    async with running_operator(emulator, fast_settings()) as op:
        ...
        op.context.metrics  # the operator's metrics, reconciler memory, ...
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import kmock
import kopf
import pytest

from livestrat.api.resource import LiveStrategy
from livestrat.kube_emulator.emulator import KubernetesEmulator
from livestrat.kube_emulator.ports import free_port
from strategy_operator.build import manifests
from strategy_operator.clock import SYSTEM_CLOCK, Clock
from strategy_operator.main import operator_kwargs
from strategy_operator.settings import OperatorSettings
from tests.support.kube import wait_for

LIVESTRATEGIES_PATH = "livestrat.io/v1alpha1/livestrategies"
LIVESTRATEGIES = kmock.resource(LIVESTRATEGIES_PATH)
OPERATOR_AGENTS = ("kopf/", "livestrat-operator/")


def fast_settings(**overrides: Any) -> OperatorSettings:
    """Operator settings for tests: free ports, short timeouts."""
    values: dict[str, Any] = {
        "http_host": "127.0.0.1",
        "metrics_port": free_port(),
        "health_port": free_port(),
        "stale_after_seconds": 5.0,
        "halt_timeout_margin_seconds": 5.0,
        "runtime_image": "livestrat-runtime:test",
    }
    values.update(overrides)
    return OperatorSettings(**values)


def fast_kopf_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.process.ultimate_exiting_timeout = None  # never SIGKILL the pytest process
    settings.networking.error_backoffs = [0.1, 0.2, 0.5]
    settings.networking.request_timeout = 10
    settings.queueing.exit_timeout = 0.5
    settings.posting.default_backoffs = [0.1, 0.2, 0.5]
    return settings


def is_operator_request(request: kmock.Request) -> bool:
    agent = request.headers.get("User-Agent", "")
    return agent.startswith(OPERATOR_AGENTS)


def operator_writes(emulator: KubernetesEmulator, since: int = 0) -> list[kmock.Request]:
    return [r for r in emulator.writes(since=since) if is_operator_request(r)]


class OperatorThread:
    """kopf.run() of the livestrat operator in its own thread and event loop."""

    def __init__(
        self,
        settings: OperatorSettings,
        *,
        namespaces: Sequence[str] = (),
        kopf_settings: kopf.OperatorSettings | None = None,
        priority: int | None = None,
        name: str = "operator",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.kwargs = operator_kwargs(settings, namespaces, clock=clock)
        self.reconciled_versions: dict[tuple[str, str], int] = {}
        # When each one's last pass asked to be looked at again (seconds; None: only by the periodic resync). 0 while
        # a pass is under way, and after a failed one (it is retried).
        self.rechecks: dict[tuple[str, str], float | None] = {}
        self._record_reconciled_versions()
        if priority is not None:
            self.kwargs["priority"] = priority
        self.kopf_settings = kopf_settings or fast_kopf_settings()
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"kopf-{name}", daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def memo(self) -> kopf.Memo:
        return self.kwargs["memo"]

    @property
    def context(self) -> Any:
        return self.memo.get("context")

    @property
    def liveness_url(self) -> str:
        return str(self.kwargs["liveness_endpoint"])

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.metrics_port}/metrics"

    def _record_reconciled_versions(self) -> None:
        """After the operator's own startup, wrap its reconciler to note the resourceVersion of each LiveStrategy
        it reconciled to the end without an error (kopf starts no watch before every startup handler is done)."""
        versions, rechecks = self.reconciled_versions, self.rechecks

        @kopf.on.startup(id="tests-record-reconciled-versions", registry=self.kwargs["registry"])
        def record(memo: kopf.Memo, **_: Any) -> None:
            context = memo.get("context")
            if context is None:
                raise kopf.TemporaryError("the operator's context is not made yet", delay=0.05)
            reconciler = context.reconciler
            reconcile = reconciler.reconcile

            async def reconcile_and_note(body: Any, caches: Any) -> float | None:
                meta = body.get("metadata") or {}
                key, version = (meta.get("namespace"), meta.get("name")), meta.get("resourceVersion")
                rechecks[key] = 0.0
                recheck = await reconcile(body, caches)
                rechecks[key] = recheck  # before the version: no moment at rest with the previous pass's recheck
                versions[key] = max(versions.get(key, 0), int(version))
                return recheck

            reconciler.reconcile = reconcile_and_note

    def reconciled(self, emulator: KubernetesEmulator, name: str, namespace: str = "default") -> bool:
        """Whether this operator has reconciled the LiveStrategy as it is stored now (its resourceVersion or a
        later one), to the end: what a test waits for before saying the operator did NOT do something."""
        stored = emulator.read_object(LIVESTRATEGIES_PATH, name, namespace=namespace)
        done = self.reconciled_versions.get((namespace, name))
        if stored is None or done is None:
            return False
        return done >= int(stored["metadata"]["resourceVersion"])

    def at_rest(self, emulator: KubernetesEmulator, name: str, namespace: str = "default") -> bool:
        """Reconciled as stored now (:meth:`reconciled`), no pass under way, and none due but the periodic resync: no
        write of the operator's is pending on it. What a test waits for before it writes a field the operator writes
        too (its status) and expects an answer: a pass that read the object before, woken or at a deadline (a runtime
        turning stale), would patch its own value over that field (last writer wins), which may then go unread."""
        return self.reconciled(emulator, name, namespace) and self.rechecks.get((namespace, name), 0.0) is None

    async def processed(self, emulator: KubernetesEmulator, *names: str, namespace: str = "default") -> None:
        """Until this operator has reconciled each of these LiveStrategies as they are now."""
        await wait_for(lambda: all(self.reconciled(emulator, n, namespace) for n in names), timeout=30)

    def metric(self, name: str, **labels: str) -> float:
        """The current value of one of this operator's metrics (summed over the samples matching ``labels``)."""
        return sum(
            sample.value
            for family in self.context.metrics.registry.collect()
            for sample in family.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )

    def _pending(self) -> str:
        """What the operator's loop still waits on (read from another thread: a diagnosis, not a synchronisation)."""
        if self.loop is None:
            return "(no loop)"
        lines = []
        for task in list(asyncio.all_tasks(self.loop)):
            lines.append(f"{task.get_name()}:")
            awaited: Any = task.get_coro()
            while awaited is not None:  # the await chain, innermost last: where the task really waits
                frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
                if frame is not None:
                    lines.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
                awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
        return "\n".join(lines)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        try:
            kopf.run(loop=loop, settings=self.kopf_settings, stop_flag=self.stop, ready_flag=self.ready, **self.kwargs)
        except BaseException as exc:
            self.error = exc
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def __aenter__(self) -> OperatorThread:
        self.thread.start()
        await asyncio.to_thread(self.ready.wait, 15)
        if not self.ready.is_set():
            await self.__aexit__(None, None, None)
            raise RuntimeError(f"the operator has not started: {self.error!r}")
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.stop.set()
        await asyncio.to_thread(self.thread.join, 30)
        assert not self.thread.is_alive(), f"the operator did not stop; its tasks:\n{self._pending()}"
        if self.error is not None:
            raise self.error


def watching(emulator: KubernetesEmulator, since: int) -> bool:
    return any(
        r.action == kmock.action.WATCH and r.resource == LIVESTRATEGIES and is_operator_request(r)
        for r in list(emulator)[since:]
    )


@contextlib.asynccontextmanager
async def running_operator(
    emulator: KubernetesEmulator, settings: OperatorSettings | None = None, *, wait: bool = True, **kwargs: Any
) -> AsyncIterator[OperatorThread]:
    """The operator, started and (with ``wait``) watching LiveStrategies; stopped at exit."""
    since = len(emulator)
    async with OperatorThread(settings or fast_settings(), **kwargs) as operator:
        if wait:
            await wait_for(lambda: watching(emulator, since), timeout=15)
        yield operator


@pytest.fixture
def kube_env(kubeconfig_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$KUBECONFIG pointing to the emulator, for the operator (and runtimes) in this process."""
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return kubeconfig_path


def peering_crd(clusterwide: bool = True) -> dict[str, Any]:
    """kopf's peering CRD (the Helm chart installs it when peering is on)."""
    kind, plural, scope = (
        ("ClusterKopfPeering", "clusterkopfpeerings", "Cluster")
        if clusterwide
        else ("KopfPeering", "kopfpeerings", "Namespaced")
    )
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.kopf.dev"},
        "spec": {
            "group": "kopf.dev",
            "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                        }
                    },
                }
            ],
        },
    }


def runtime_token(emulator: KubernetesEmulator, namespace: str, name: str) -> str:
    """A token of the identity the operator gives strategy ``name``'s pod, for a runtime a test starts itself: its
    ServiceAccount, Role and RoleBinding built by the operator's own builders (created unless there), then a token of
    that ServiceAccount as the TokenRequest API issues it. The runtime can do what its pod could, nothing more."""
    strategy = LiveStrategy.model_validate(emulator.read_object(LIVESTRATEGIES, name, namespace=namespace))
    settings = fast_settings()  # an identity of its own (runtimeIdentity perStrategy): its Role names the strategy
    children = (
        ("v1/serviceaccounts", manifests.build_service_account(strategy, settings)),
        ("rbac.authorization.k8s.io/v1/roles", manifests.build_role(strategy)),
        ("rbac.authorization.k8s.io/v1/rolebindings", manifests.build_role_binding(strategy, settings)),
    )
    for resource, document in children:
        if (
            document is not None
            and emulator.read_object(resource, document["metadata"]["name"], namespace=namespace) is None
        ):
            emulator.create_object(resource, document, namespace=namespace)
    return emulator.issue_token(namespace, manifests.service_account_name(strategy, settings))
