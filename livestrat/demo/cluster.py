"""The demo's cluster: the API emulator, the stand-in kubelet with real runtimes, the real operator process.

Installed as the chart installs it: the LiveStrategy CRD (its printer columns are what ``kubectl get
lstrat`` shows), the admission policy, the operator's ServiceAccount with the chart's RBAC (the operator
logs in with that ServiceAccount's token, so the emulator refuses it what the chart does not grant).
The user's kubeconfig is the cluster admin, as on a fresh kind cluster.

The emulator and the kubelet run in this process's event loop; the operator is a ``livestrat operator``
process and each strategy pod a ``livestrat runtime`` process, each in a session of its own so that the
terminal's Ctrl-C reaches only the demo, which then stops them in order: the operator first (nothing
reacts to what follows), then the pods (SIGTERM: each runtime halts as in a cluster, reporting to the
emulator that is still up), then the emulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import signal
import sys
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import aiohttp
import kmock
import yaml

from livestrat.api.admission import policy
from livestrat.api.crd import build_crd
from livestrat.api.resource import GROUP, PLURAL, VERSION
from livestrat.demo import chart
from livestrat.demo.examples import COMPANION_KINDS
from livestrat.kube_emulator.emulator import ADMIN_HEADERS, KubernetesEmulator, kubeconfig
from livestrat.kube_emulator.kubelet import Kubelet
from livestrat.kube_emulator.ports import free_port

LIVESTRATEGIES = f"{GROUP}/{VERSION}/{PLURAL}"
LIVESTRAT = str(Path(sys.executable).with_name("livestrat"))
PLURALS = {
    "ServiceAccount": "v1/serviceaccounts",
    "ClusterRole": "rbac.authorization.k8s.io/v1/clusterroles",
    "ClusterRoleBinding": "rbac.authorization.k8s.io/v1/clusterrolebindings",
    "ValidatingAdmissionPolicy": "admissionregistration.k8s.io/v1/validatingadmissionpolicies",
    "ValidatingAdmissionPolicyBinding": "admissionregistration.k8s.io/v1/validatingadmissionpolicybindings",
}
OPERATOR_START_SECONDS = 60.0
OPERATOR_STOP_SECONDS = 30.0  # kopf stops its watches and handlers; then SIGKILL
# The operator's token outlives any demo (the TokenRequest default of an hour would log it out mid-demo).
OPERATOR_TOKEN_SECONDS = 7 * 24 * 3600


class DemoError(Exception):
    """The demo's cluster could not start: what failed, and where its log is."""


def hold_workdir(workdir: Path) -> IO[bytes]:
    """An exclusive lock on ``workdir`` for as long as the returned file stays open: a second demo on the same
    directory would delete the first one's pods' files when it starts."""
    workdir.mkdir(parents=True, exist_ok=True)
    lock = (workdir / "demo.lock").open("wb")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise DemoError(
            f"another livestrat demo is running in {workdir}: stop it (Ctrl-C in its terminal) or give this one "
            "its own --workdir"
        ) from None
    return lock


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class DemoCluster:
    """``async with DemoCluster(...) as cluster``: everything started; stopped (and waited for) at exit."""

    def __init__(self, workdir: Path, kubeconfig_path: Path, *, port: int = 0) -> None:
        self.workdir = workdir
        self.kubeconfig_path = kubeconfig_path
        self.operator_log = workdir / "operator.log"
        self.pods_dir = workdir / "pods"
        self.port = port
        self.emulator = KubernetesEmulator()
        self.server: kmock.Server | None = None
        self.kubelet: Kubelet | None = None
        self.operator: asyncio.subprocess.Process | None = None
        self._stack = contextlib.AsyncExitStack()
        self.stopped: list[str] = []  # filled at exit: what was stopped and how it ended

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.url).rstrip("/")

    async def __aenter__(self) -> DemoCluster:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        containers = list(self.kubelet.containers.items()) if self.kubelet is not None else []
        await self._stack.aclose()
        # How each process ended, for the user (and the test): a clean stop is exit 0, a SIGKILL would be -9.
        if self.operator is not None:
            self.stopped.append(f"the operator (exit {self.operator.returncode})")
        for (namespace, pod), container in containers:
            ended = container.history[-1] if container.history else "never started"
            self.stopped.append(f"pod {namespace}/{pod} ({ended})")

    async def _start(self) -> None:
        self._stack.enter_context(hold_workdir(self.workdir))
        shutil.rmtree(self.pods_dir, ignore_errors=True)  # a previous demo's pods: their emptyDirs are gone
        rbac = chart.operator_rbac()  # before anything starts: a checkout is needed for the chart
        await self._stack.enter_async_context(self.emulator)
        self.server = await self._stack.enter_async_context(kmock.Server(self.emulator, port=self.port or None))
        self._install(rbac)
        self.kubeconfig_path.parent.mkdir(parents=True, exist_ok=True)
        self.kubeconfig_path.write_text(yaml.safe_dump(kubeconfig(self.url)))
        self.kubelet = await self._stack.enter_async_context(
            Kubelet(self.emulator, workdir=self.pods_dir, kubeconfig=self.kubeconfig_path, runtime=True, interval=0.2)
        )
        self._stack.push_async_callback(self._stop_operator)  # stopped before the kubelet stops the pods
        await self._start_operator()

    def _install(self, rbac: list[dict[str, Any]]) -> None:
        self.emulator.add_crd(build_crd())
        self.emulator.add_namespace(chart.RELEASE_NAMESPACE)
        for document in [*policy(), *rbac]:
            namespace = document["metadata"].get("namespace")
            self.emulator.create_object(PLURALS[document["kind"]], document, namespace=namespace)

    async def _start_operator(self) -> None:
        token = self.emulator.issue_token(
            chart.RELEASE_NAMESPACE, chart.RELEASE, expiration_seconds=OPERATOR_TOKEN_SECONDS
        )
        operator_kubeconfig = self.workdir / "operator-kubeconfig.yaml"
        operator_kubeconfig.write_text(
            yaml.safe_dump(kubeconfig(self.url, namespace=chart.RELEASE_NAMESPACE, token=token))
        )
        operator_kubeconfig.chmod(0o600)  # a token
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVESTRAT_", "KUBERNETES_"))}
        env |= {
            "KUBECONFIG": str(operator_kubeconfig),
            "LIVESTRAT_HTTP_HOST": "127.0.0.1",
            "LIVESTRAT_RUNTIME_HTTP_HOST": "127.0.0.1",  # the runtimes' own endpoints: this machine only
            "LIVESTRAT_METRICS_PORT": str(free_port()),
            "LIVESTRAT_HEALTH_PORT": str(free_port()),
        }
        since = len(self.emulator)
        with self.operator_log.open("wb") as log:
            self.operator = await asyncio.create_subprocess_exec(
                LIVESTRAT, "operator", env=env, stdout=log, stderr=asyncio.subprocess.STDOUT, start_new_session=True
            )
        watched = kmock.resource(LIVESTRATEGIES)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + OPERATOR_START_SECONDS
        while not any(r.action == kmock.action.WATCH and r.resource == watched for r in list(self.emulator)[since:]):
            if self.operator.returncode is not None or loop.time() > deadline:
                what = "exited" if self.operator.returncode is not None else "is not watching LiveStrategies yet"
                raise DemoError(f"the operator {what}; its log ({self.operator_log}):\n{_tail(self.operator_log)}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.operator.wait(), timeout=0.1)

    async def _stop_operator(self) -> None:
        process = self.operator
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=OPERATOR_STOP_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()

    def operator_exited(self) -> int | None:
        """The operator's exit code if it has exited (then the demo cannot go on), else None."""
        return None if self.operator is None else self.operator.returncode

    def operator_log_tail(self) -> str:
        return _tail(self.operator_log)

    def pids(self) -> list[int]:
        """The processes running now: the operator and every strategy pod's runtime."""
        found = [self.operator.pid] if self.operator is not None and self.operator.returncode is None else []
        for container in (self.kubelet.containers if self.kubelet else {}).values():
            if container.process is not None and container.process.returncode is None:
                found.append(container.process.pid)
        return found

    async def apply(self, document: dict[str, Any]) -> str | None:
        """Create a LiveStrategy (or a companion of its file: livestrat/demo/examples.py COMPANION_KINDS)
        through the API as ``kubectl apply`` would (admission included): None, or the API server's refusal."""
        namespace = (document.get("metadata") or {}).get("namespace") or "default"
        collection = COMPANION_KINDS.get(
            document.get("kind", ""), f"apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{PLURAL}"
        )
        url = f"{self.url}/{collection.format(namespace=namespace)}"
        async with aiohttp.ClientSession(headers=ADMIN_HEADERS) as http, http.post(url, json=document) as answer:
            if answer.status < 300:
                return None
            body = await answer.json(content_type=None)
            return str((body or {}).get("message") or f"HTTP {answer.status}")
