"""A stand-in for the StatefulSet controller and the kubelet, which cannot exist here.

These machines have no control plane and no container engine: nothing would ever turn a
StatefulSet into a pod, or a pod into a running process. ``Kubelet`` plays both parts
against the emulator, as faithfully as the operator can observe them:

- the StatefulSet controller: ``spec.replicas`` 1 creates pod ``NAME-0`` from the template (a pod the API
  server refuses, such as one whose ServiceAccount does not exist, is not created: a ``FailedCreate``
  Warning event on the StatefulSet says why, and it is tried again until it succeeds)
  (labels, ``controller-revision-hash``, a controlling ownerReference), or adopts an orphan pod
  ``NAME-0`` its selector matches (as the controller's ControllerRefManager claims orphans: after
  ``kubectl delete statefulset --cascade=orphan`` a new StatefulSet takes the running pod over); a template change
  deletes the old pod and creates the new one only after it is gone (RollingUpdate, one
  identity, so never two pods); ``spec.replicas`` 0 deletes the pod; ``.status`` follows
  (replicas, readyReplicas, revisions, observedGeneration);
- the scheduler: every pod is bound to one Node (``node``, created if missing), ``spec.nodeName``;
- the kubelet: a pod it created gets a ``tests.livestrat.io/kubelet`` finalizer, so deleting
  it only marks it terminating (as graceful deletion does), the container is sent SIGTERM,
  waited for up to the grace period (then SIGKILL), and the pod disappears once it exited.
  With ``runtime=True`` the container is a REAL ``livestrat runtime`` process: its
  ``runtime.json`` is the ConfigMap's, with the mount paths (catalog, state) and the port
  mapped to a directory and a free port of this machine (nothing else changed); its environment is the
  container's, with ``secretKeyRef`` resolved from the emulator's Secrets; it reaches the
  API server through a kubeconfig of its own (standing in for the in-cluster configuration): the server
  of ``kubeconfig`` and, when the pod mounts its service account's token (the ``kube-api-access-*``
  projected volume the API server's ServiceAccount admission adds unless ``automountServiceAccountToken``
  is false on the pod or its ServiceAccount), a token bound to the pod (``emulator.issue_token(namespace,
  serviceAccountName, pod=NAME)``, as the kubelet asks the TokenRequest API for it; written to the
  mount's ``token`` file too), else no credentials at all (anonymous). So a runtime can do exactly what
  RBAC and the admission policies let its ServiceAccount do, never what the admin token could. The token
  is issued once per pod (a real kubelet refreshes it at 80% of its 3607 s; no test lasts that long).
  Before any container starts, every ``configMap`` volume is set up as the kubelet sets it up
  (livestrat/kube_emulator/configmap_volume.py: one file per key, or per ``items`` entry, behind the ``..data`` link;
  re-written when the ConfigMap changes, except under a ``subPath``): a missing ConfigMap (or listed key) of
  a volume that is not ``optional`` leaves the pod in ContainerCreating with a ``FailedMount`` Warning event
  (once per distinct message; the kubelet repeats it) until it appears. A mount's ``subPath`` is that
  directory of its volume (created if missing, as the kubelet does). A persistentVolumeClaim's volume is
  one directory per claim (``claim_directory``), kept across pods as a claim's data is (its binding and
  access modes are not modelled); other volumes live as long as their pod. The ConfigMap volume that holds
  ``runtime.json`` is the exception: the process reads the stand-in's rewritten copy of it. The pod
  is Ready when ``/readyz`` answers 200. A process that exits is restarted (restartPolicy
  Always) with a back-off, and its last log lines become the termination message
  (``FallbackToLogsOnError``). What the process writes on stdout and stderr is recorded line by line, with the
  time, in the CRI log format the real kubelet writes (one file per instance of the container), and the
  emulator serves it as ``pods/NAME/log`` (livestrat/kube_emulator/pod_logs.py; ``previous`` is the instance before). With ``runtime=False`` the container is imaginary: ready
  after ``ready_delay``, gone on SIGTERM at once, or, while ``hold_stops`` holds, once the test
  releases it (``release_stops``) or the grace period ends (SIGKILL), for tests that need no
  trading. A hold, not a delay: a test that must act while a pod is halting must not race a timer. Tests steer imaginary containers: ``unready`` (pods that never become
  ready), ``set_ready`` (a ready pod loses its readiness, or gets it back), ``broken_images``
  (an image that cannot be pulled: ``ImagePullBackOff``).

Everything runs in the test's event loop and changes the emulator out-of-band (no HTTP
requests, so the operator's request counts stay the operator's own).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import datetime
import hashlib
import json
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import kmock
import yaml

from livestrat.api.runtime_config import CONFIG_MOUNT_DIR
from livestrat.kube_emulator import configmap_volume, pod_logs
from livestrat.kube_emulator.emulator import KubernetesEmulator, timestamp, timestamp_now
from livestrat.kube_emulator.ports import free_port
from livestrat.kube_emulator.service_account_admission import service_account_token_path
from strategy_operator.clock import SYSTEM_CLOCK, Clock

STATEFULSETS = "apps/v1/statefulsets"
EVENTS = "v1/events"
PODS = "v1/pods"
CONFIGMAPS = "v1/configmaps"
SECRETS = "v1/secrets"
FINALIZER = "tests.livestrat.io/kubelet"
LIVESTRAT = str(Path(sys.executable).with_name("livestrat"))
RESTART_BACKOFF = (0.5, 1.0, 2.0, 4.0)


def revision_of(statefulset: Mapping[str, Any]) -> str:
    template = (statefulset.get("spec") or {}).get("template") or {}
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
    return f"{statefulset['metadata']['name']}-{digest}"


@dataclass
class Container:
    """One pod's container: a process (or an imaginary one) and what the kubelet knows of it."""

    namespace: str
    pod: str
    grace: float
    process: asyncio.subprocess.Process | None = None
    port: int | None = None
    log: Path | None = None  # the current instance's log, in the CRI format (livestrat/kube_emulator/pod_logs.py)
    logs: list[Path] = field(default_factory=list)  # every instance's log, oldest first (``previous``: the one before)
    started_at: str | None = None
    ready: bool = False
    stopping: bool = False
    stopped: bool = False
    exit_code: int | None = None
    exit_message: str | None = None
    restarts: int = 0
    waiting_reason: str | None = None
    ready_at: float | None = None
    task: asyncio.Task[None] | None = None
    history: list[str] = field(default_factory=list)
    signature: tuple[Any, ...] | None = None
    token: str | None = None  # the pod's bound service-account token, issued when it first starts
    # configMap volumes set up for the pod: volume name -> (its directory here, its source, the ConfigMap's
    # resourceVersion written there), re-written when the ConfigMap changes
    volumes: dict[str, tuple[Path, dict[str, Any], str | None]] = field(default_factory=dict)
    mount_failure: str | None = None  # the last FailedMount message, told once


class Kubelet:
    def __init__(
        self,
        emulator: KubernetesEmulator,
        *,
        workdir: Path,
        kubeconfig: Path | None = None,
        runtime: bool = False,
        ready_delay: float = 0.1,
        interval: float = 0.05,
        environ: Mapping[str, str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        node: str = "node-1",
    ) -> None:
        self.node = node  # the one node every pod is bound to (the stand-in is the scheduler too)
        self.emulator = emulator
        self.clock = clock  # the node's clock: the times of the pod's conditions
        self.workdir = workdir
        self.kubeconfig = kubeconfig
        self.runtime = runtime
        self.ready_delay = ready_delay
        self.interval = interval
        self.environ = dict(environ or {})
        self._stops_released = asyncio.Event()
        self._stops_released.set()
        self.unready: set[str] = set()  # "namespace/pod" of imaginary containers that never become ready
        self.broken_images: set[str] = set()  # images that cannot be pulled
        self.containers: dict[tuple[str, str], Container] = {}
        self.started_pods: list[str] = []  # every pod ever started, in order (for "never two" checks)
        self.max_running = 0  # most containers alive at the same time, per strategy
        self._task: asyncio.Task[None] | None = None
        self._stoppers: set[asyncio.Task[None]] = set()
        self._seen: dict[str, tuple[str, str | None]] = {}
        self.failed_creates: dict[str, str] = {}  # StatefulSet uid -> why its pod was last refused
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Kubelet:
        if self.emulator.read_object("v1/nodes", self.node) is None:
            self.emulator.create_object("v1/nodes", {"metadata": {"name": self.node}, "spec": {}})
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2))
        self._task = asyncio.create_task(self._loop(), name="kubelet")
        self.emulator.log_source = self  # the API server's pods/NAME/log reads the containers' logs here
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self.emulator.log_source is self:
            self.emulator.log_source = None
        try:
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        finally:
            await asyncio.gather(*self._stoppers, return_exceptions=True)
            await asyncio.gather(*(self._terminate(c, grace=5.0) for c in list(self.containers.values())))
            if self._session is not None:
                await self._session.close()

    # ------------------------------------------------------------------------------------- loop

    async def _loop(self) -> None:
        while True:
            try:
                self._sync()
            except Exception as exc:  # pragma: no cover - a bug here must be visible
                print(f"kubelet stand-in: {type(exc).__name__}: {exc}", file=sys.stderr)
                raise
            await asyncio.sleep(self.interval)

    def _live(self, resource: str) -> list[dict[str, Any]]:
        """The stored objects themselves (read-only: never mutated here), without the copies of ``list_objects``."""
        return [body for _, body in self.emulator._iter_live(kmock.resource(resource), None)]

    def _sync(self) -> None:
        for statefulset in self._live(STATEFULSETS):
            key = (kmock.resource(PODS), statefulset["metadata"]["namespace"], f"{statefulset['metadata']['name']}-0")
            pod = self.emulator._objects[key] if key in self.emulator._objects else None  # noqa: SIM401 (no .get)
            pod_version = None if pod is None or pod.deleted else pod.last.raw["metadata"]["resourceVersion"]
            seen = (statefulset["metadata"]["resourceVersion"], pod_version)
            if self._seen.get(statefulset["metadata"]["uid"]) != seen and self._sync_statefulset(statefulset):
                self._seen[statefulset["metadata"]["uid"]] = seen
        for pod in self._live(PODS):
            if FINALIZER in (pod["metadata"].get("finalizers") or []):
                self._sync_pod(pod)
        for container in self.containers.values():
            if not container.stopping:
                self._refresh_volumes(container)
        alive: dict[tuple[str, str], int] = {}
        for (namespace, name), container in self.containers.items():
            if not container.stopped:
                strategy = name.rsplit("-", 1)[0]
                alive[(namespace, strategy)] = alive.get((namespace, strategy), 0) + 1
        self.max_running = max([self.max_running, *alive.values()])

    # ------------------------------------------------------------------- the StatefulSet controller

    def _sync_statefulset(self, sts: dict[str, Any]) -> bool:
        """Reconcile one StatefulSet; False when its pod could not be created (looked at again next time)."""
        meta, spec = sts["metadata"], sts.get("spec") or {}
        namespace, name = meta["namespace"], meta["name"]
        want = int(spec.get("replicas", 1))
        revision = revision_of(sts)
        pod_name = f"{name}-0"
        pod = self.emulator.read_object(PODS, pod_name, namespace=namespace)
        if pod is not None and self._adoptable(pod, sts):
            pod = self._adopt(pod, sts)
        if want >= 1 and pod is None:
            try:
                pod = self._create_pod(sts, pod_name, revision)
            except kmock.KubernetesError as refused:
                self._failed_create(sts, pod_name, refused)
                return False
            self.failed_creates.pop(meta["uid"], None)
        elif pod is not None and not pod["metadata"].get("deletionTimestamp") and self._controlled(pod, sts):
            outdated = (pod["metadata"].get("labels") or {}).get("controller-revision-hash") != revision
            if want == 0 or outdated:
                self.emulator.delete_object(PODS, pod_name, namespace=namespace)
                pod = self.emulator.read_object(PODS, pod_name, namespace=namespace)
        ready = pod is not None and self._pod_ready(pod)
        status = {
            "observedGeneration": meta.get("generation"),
            "replicas": 1 if pod is not None else 0,
            "readyReplicas": 1 if ready else 0,
            "availableReplicas": 1 if ready else 0,
            "currentReplicas": 1 if pod is not None else 0,
            "updatedReplicas": 1
            if pod is not None and (pod["metadata"].get("labels") or {}).get("controller-revision-hash") == revision
            else 0,
            "currentRevision": revision,
            "updateRevision": revision,
        }
        if {k: v for k, v in (sts.get("status") or {}).items() if k in status} != status:
            self.emulator.patch_object(
                STATEFULSETS, name, {"status": status}, namespace=namespace, subresource="status"
            )
        return True

    def _failed_create(self, sts: dict[str, Any], pod_name: str, refused: kmock.KubernetesError) -> None:
        """The StatefulSet controller's Warning event, once per distinct refusal (it retries with a back-off)."""
        meta = sts["metadata"]
        message = f"create Pod {pod_name} in StatefulSet {meta['name']} failed error: {refused.message}"
        if self.failed_creates.get(meta["uid"]) == message:
            return
        self.failed_creates[meta["uid"]] = message
        event = {
            "metadata": {"name": f"{meta['name']}.{time.time_ns():x}"},  # client-go's event recorder names it so
            "involvedObject": {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "reason": "FailedCreate",
            "message": message,
            "type": "Warning",
            "source": {"component": "statefulset-controller"},
            "firstTimestamp": timestamp_now(),
            "lastTimestamp": timestamp_now(),
            "count": 1,
        }
        # client-go's event recorder drops an Event the API server refuses (one into a terminating namespace)
        with contextlib.suppress(kmock.KubernetesError):
            self.emulator.create_object(EVENTS, event, namespace=meta["namespace"])

    @staticmethod
    def _adoptable(pod: Mapping[str, Any], sts: Mapping[str, Any]) -> bool:
        """An orphan (no controller) the StatefulSet's selector matches, neither of them being deleted: the
        StatefulSet controller claims it (ControllerRefManager.ClaimPods) instead of creating another."""
        if pod["metadata"].get("deletionTimestamp") or sts["metadata"].get("deletionTimestamp"):
            return False
        if any(ref.get("controller") for ref in pod["metadata"].get("ownerReferences") or []):
            return False
        selector = ((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        labels = pod["metadata"].get("labels") or {}
        return bool(selector) and all(labels.get(key) == value for key, value in selector.items())

    def _adopt(self, pod: Mapping[str, Any], sts: Mapping[str, Any]) -> dict[str, Any]:
        meta = sts["metadata"]
        reference = {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        refs = [*(pod["metadata"].get("ownerReferences") or []), reference]
        return self.emulator.patch_object(
            PODS, pod["metadata"]["name"], {"metadata": {"ownerReferences": refs}}, namespace=meta["namespace"]
        )

    @staticmethod
    def _controlled(pod: Mapping[str, Any], sts: Mapping[str, Any]) -> bool:
        return any(
            ref.get("uid") == sts["metadata"]["uid"] and ref.get("controller")
            for ref in pod["metadata"].get("ownerReferences") or []
        )

    @staticmethod
    def _pod_ready(pod: Mapping[str, Any]) -> bool:
        return any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (pod.get("status") or {}).get("conditions") or []
        )

    def _create_pod(self, sts: dict[str, Any], pod_name: str, revision: str) -> dict[str, Any]:
        meta = sts["metadata"]
        template = copy.deepcopy((sts.get("spec") or {}).get("template") or {})
        tmeta = template.get("metadata") or {}
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "namespace": meta["namespace"],
                "labels": {
                    **(tmeta.get("labels") or {}),
                    "controller-revision-hash": revision,
                    "statefulset.kubernetes.io/pod-name": pod_name,
                },
                "annotations": dict(tmeta.get("annotations") or {}),
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "StatefulSet",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
                "finalizers": [FINALIZER],
            },
            "spec": {
                **template.get("spec", {}),
                "hostname": pod_name,
                "subdomain": sts["spec"].get("serviceName"),
                "nodeName": self.node,  # bound at once: the scheduler's part, played here too
            },
        }
        created = self.emulator.create_object(PODS, pod, namespace=meta["namespace"])
        self.started_pods.append(f"{meta['namespace']}/{pod_name}")
        grace = float(created["spec"].get("terminationGracePeriodSeconds", 30))
        container = Container(namespace=meta["namespace"], pod=pod_name, grace=grace)
        self.containers[(meta["namespace"], pod_name)] = container
        container.task = asyncio.create_task(self._run_container(container, created))
        return created

    # ------------------------------------------------------------------------------- the kubelet

    def _sync_pod(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"])
        container = self.containers.get(key)
        if container is None:  # created by someone else with our finalizer: nothing runs
            container = Container(namespace=key[0], pod=key[1], grace=0, stopped=True)
            self.containers[key] = container
        signature = (
            meta["resourceVersion"],
            container.ready,
            container.started_at,
            container.stopped,
            container.exit_code,
            container.waiting_reason,
            container.restarts,
        )
        if container.signature == signature:
            return  # nothing new since the last look
        container.signature = signature
        if meta.get("deletionTimestamp"):
            if not container.stopping:
                container.stopping = True
                grace = meta.get("deletionGracePeriodSeconds")
                grace = container.grace if not grace else float(grace)
                stopper = asyncio.create_task(self._stop_and_remove(container, grace))
                self._stoppers.add(stopper)
                stopper.add_done_callback(self._stoppers.discard)
            return
        status = self._pod_status(container, pod)
        current = pod.get("status") or {}
        if _comparable(current) != _comparable(status):
            self.emulator.patch_object(
                PODS, meta["name"], {"status": status}, namespace=meta["namespace"], subresource="status"
            )

    def _pod_status(self, container: Container, pod: Mapping[str, Any]) -> dict[str, Any]:
        previous = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}
        ready = container.ready and not container.stopped

        def condition(type_: str, value: bool) -> dict[str, Any]:
            old = previous.get(type_) or {}
            text = "True" if value else "False"
            since = old.get("lastTransitionTime") if old.get("status") == text else timestamp(self.clock.now())
            return {"type": type_, "status": text, "lastTransitionTime": since}

        if container.stopped and container.waiting_reason is None and container.exit_code is not None:
            state: dict[str, Any] = {
                "terminated": {
                    "exitCode": container.exit_code,
                    "reason": "Completed" if container.exit_code == 0 else "Error",
                    "message": container.exit_message or "",
                }
            }
        elif container.waiting_reason is not None or container.started_at is None:
            state = {"waiting": {"reason": container.waiting_reason or "ContainerCreating"}}
        else:
            state = {"running": {"startedAt": container.started_at}}
        status: dict[str, Any] = {
            "phase": "Running" if container.started_at else "Pending",
            "conditions": [condition("Ready", ready), condition("ContainersReady", ready)],
            "containerStatuses": [
                {
                    "name": "strategy",
                    "ready": ready,
                    "restartCount": container.restarts,
                    "state": state,
                    "started": "running" in state,
                }
            ],
        }
        if container.restarts and container.exit_code is not None:
            status["containerStatuses"][0]["lastState"] = {
                "terminated": {
                    "exitCode": container.exit_code,
                    "reason": "Error" if container.exit_code else "Completed",
                    "message": container.exit_message or "",
                }
            }
        return status

    async def _stop_and_remove(self, container: Container, grace: float) -> None:
        if container.process is None and not container.stopped:
            # an imaginary halt that takes its time: until the test releases it, or the kubelet's SIGKILL at grace
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stops_released.wait(), grace)
        await self._terminate(container, grace=grace)
        pod = self.emulator.read_object(PODS, container.pod, namespace=container.namespace)
        if pod is not None:
            finalizers = [f for f in pod["metadata"].get("finalizers") or [] if f != FINALIZER]
            self.emulator.patch_object(
                PODS, container.pod, {"metadata": {"finalizers": finalizers or None}}, namespace=container.namespace
            )
        self.containers.pop((container.namespace, container.pod), None)

    def container_log(self, namespace: str, pod: str, container: str, previous: bool) -> pod_logs.ContainerLog | None:
        """The emulator's ``pods/NAME/log`` (:class:`livestrat.kube_emulator.pod_logs.LogSource`): the pod's one container."""
        found = self.containers.get((namespace, pod))
        if found is None:
            return None
        if previous:
            return pod_logs.ContainerLog(found.logs[-2], running=False) if len(found.logs) >= 2 else None
        if found.logs:
            return pod_logs.ContainerLog(found.logs[-1], running=found.process is not None and not found.stopped)
        if found.started_at is None or found.waiting_reason is not None:
            return pod_logs.ContainerLog(
                None, running=False, waiting_reason=found.waiting_reason or "ContainerCreating"
            )
        return pod_logs.ContainerLog(None, running=not found.stopped)  # imaginary: it writes nothing

    def hold_stops(self) -> None:
        """Imaginary containers sent SIGTERM from now on keep halting until ``release_stops``."""
        self._stops_released.clear()

    def release_stops(self) -> None:
        self._stops_released.set()

    def set_ready(self, namespace: str, pod: str, ready: bool) -> None:
        """An imaginary container's readiness probe starts failing (or passing again)."""
        container = self.containers[(namespace, pod)]
        container.ready = ready
        if ready:
            self.unready.discard(f"{namespace}/{pod}")
        else:
            self.unready.add(f"{namespace}/{pod}")

    async def _terminate(self, container: Container, grace: float) -> None:
        container.stopping = True
        if container.task is not None and container.process is None:
            container.task.cancel()
        process = container.process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=grace)
            except TimeoutError:
                process.kill()
                await process.wait()
        if container.task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(container.task), timeout=1)
        container.stopped = True
        container.ready = False

    # ----------------------------------------------------------------------------- the container

    @staticmethod
    def pod_directory(workdir: Path, container: Container, pod: Mapping[str, Any]) -> Path:
        """The pod's directory here: its volumes, logs and kubeconfig. An emptyDir lives as long as its pod: a
        new pod (uid) gets new directories."""
        return workdir / container.namespace / f"{container.pod}-{pod['metadata']['uid'][:8]}"

    def _fail_mount(self, container: Container, pod: Mapping[str, Any], volume: str, message: str) -> None:
        """The kubelet's FailedMount Warning event on the pod (once per distinct message here)."""
        text = f'MountVolume.SetUp failed for volume "{volume}" : {message}'
        if container.mount_failure == text:
            return
        container.mount_failure = text
        meta = pod["metadata"]
        event = {
            "metadata": {"name": f"{meta['name']}.{time.time_ns():x}"},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "reason": "FailedMount",
            "message": text,
            "type": "Warning",
            "source": {"component": "kubelet", "host": self.node},
            "firstTimestamp": timestamp_now(),
            "lastTimestamp": timestamp_now(),
            "count": 1,
        }
        self.emulator.create_object(EVENTS, event, namespace=meta["namespace"])

    def _set_up_volumes(self, container: Container, pod: Mapping[str, Any]) -> bool:
        """Write every configMap volume of the pod (but the one holding runtime.json); False, with a FailedMount
        event, while one cannot be set up."""
        spec = pod["spec"]
        main = spec["containers"][0]
        directory = self.pod_directory(self.workdir, container, pod)
        mounts = main.get("volumeMounts") or []
        for volume in spec.get("volumes") or []:
            source = volume.get("configMap")
            if source is None:
                continue
            configmap = self.emulator.read_object(CONFIGMAPS, source.get("name", ""), namespace=container.namespace)
            try:
                files = configmap_volume.payload(source, configmap)
            except configmap_volume.MountFailed as failed:
                self._fail_mount(container, pod, volume["name"], str(failed))
                return False
            if any(m["name"] == volume["name"] and m["mountPath"] == CONFIG_MOUNT_DIR for m in mounts):
                continue  # the stand-in writes its own copy of runtime.json there (_mount)
            configmap_volume.write(directory / volume["name"], files)
            if any(m["name"] == volume["name"] and m.get("subPath") for m in mounts):
                continue  # a subPath mount is a bind mount of what was there: the kubelet never updates it
            version = (configmap or {}).get("metadata", {}).get("resourceVersion")
            container.volumes[volume["name"]] = (directory / volume["name"], dict(source), version)
        return True

    def _refresh_volumes(self, container: Container) -> None:
        """The kubelet's periodic sync of mounted ConfigMaps: a changed one is written anew (atomically)."""
        for name, (target, source, version) in list(container.volumes.items()):
            configmap = self.emulator.read_object(CONFIGMAPS, source.get("name", ""), namespace=container.namespace)
            if configmap is None or configmap["metadata"].get("resourceVersion") == version:
                continue  # a ConfigMap deleted under a running pod: the kubelet keeps the last files
            try:
                configmap_volume.write(target, configmap_volume.payload(source, configmap))
            except configmap_volume.MountFailed:
                continue  # the kubelet logs it and keeps the last files
            container.volumes[name] = (target, source, configmap["metadata"].get("resourceVersion"))

    async def _run_container(self, container: Container, pod: dict[str, Any]) -> None:
        while not container.stopping and not self._set_up_volumes(container, pod):
            await asyncio.sleep(self.interval)  # ContainerCreating: the kubelet retries the mount
        attempt = 0
        while not container.stopping:
            if self.runtime:
                await self._run_process(container, pod)
            else:
                await self._run_imaginary(container, pod["spec"]["containers"][0].get("image"))
            if container.stopping:
                break
            container.restarts += 1
            delay = RESTART_BACKOFF[min(attempt, len(RESTART_BACKOFF) - 1)]
            attempt += 1
            container.waiting_reason = "CrashLoopBackOff" if attempt >= 2 else None
            await asyncio.sleep(delay)
            container.waiting_reason = None

    async def _run_imaginary(self, container: Container, image: str | None) -> None:
        if image in self.broken_images:
            container.waiting_reason = "ImagePullBackOff"
            while not container.stopping:
                await asyncio.sleep(3600)
            return
        container.started_at = timestamp_now()
        container.stopped = False
        await asyncio.sleep(self.ready_delay)
        if f"{container.namespace}/{container.pod}" not in self.unready:
            container.ready = True
            container.ready_at = time.monotonic()
        while not container.stopping:
            await asyncio.sleep(3600)

    async def _run_process(self, container: Container, pod: dict[str, Any]) -> None:
        namespace = container.namespace
        spec = pod["spec"]
        main = spec["containers"][0]
        directory = self.pod_directory(self.workdir, container, pod)
        config_path, port = self._mount(namespace, spec, main, directory)
        env = self._environment(namespace, main, directory)
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self._pod_kubeconfig(container, pod, main, directory))
        command = [LIVESTRAT if part == "livestrat" else part for part in main.get("command") or []]
        command = [str(config_path) if part.endswith("/runtime.json") else part for part in command]
        container.log = directory / f"container-{container.restarts}.log"
        container.logs.append(container.log)
        log = container.log.open("ab")
        container.process = await asyncio.create_subprocess_exec(
            *command,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            limit=LOG_LINE_LIMIT,
        )
        assert container.process.stdout is not None and container.process.stderr is not None
        pumps = [
            asyncio.create_task(_record(container.process.stdout, "stdout", log)),
            asyncio.create_task(_record(container.process.stderr, "stderr", log)),
        ]
        container.port, container.started_at, container.stopped = port, timestamp_now(), False
        container.exit_code = None
        assert self._session is not None
        while container.process.returncode is None:
            try:
                async with self._session.get(f"http://127.0.0.1:{port}/readyz") as response:
                    ready = response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ready = False
            if ready and not container.ready:
                container.ready_at = time.monotonic()
            container.ready = ready and not container.stopping
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(container.process.wait()), timeout=0.2)
        container.ready = False
        _done, late = await asyncio.wait(pumps, timeout=2)  # the last lines (a child may hold the pipe: not for ever)
        for pump in late:
            pump.cancel()
        log.close()
        container.exit_code = container.process.returncode
        container.exit_message = _tail(container.log) if container.exit_code else None
        container.history.append(f"exit {container.exit_code}")
        container.stopped = True
        container.process = None

    def _mount(
        self, namespace: str, spec: Mapping[str, Any], main: Mapping[str, Any], directory: Path
    ) -> tuple[Path, int]:
        """The ConfigMap's runtime.json, its paths mapped to directories here and its port to a free one."""
        directory.mkdir(parents=True, exist_ok=True)
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        mounts = {m["mountPath"]: m for m in main.get("volumeMounts") or []}
        config_volume = volumes[mounts[CONFIG_MOUNT_DIR]["name"]] if CONFIG_MOUNT_DIR in mounts else None
        config_volume = config_volume or next(v for v in volumes.values() if "configMap" in v)
        configmap = self.emulator.read_object(CONFIGMAPS, config_volume["configMap"]["name"], namespace=namespace)
        assert configmap is not None, "the pod's ConfigMap does not exist"
        document = json.loads(configmap["data"]["runtime.json"])
        mapped = {
            path: self._volume_directory(namespace, volumes.get(mount["name"]) or {}, directory / mount["name"])
            / mount.get("subPath", "")
            for path, mount in mounts.items()
        }
        for path in mapped.values():
            path.mkdir(parents=True, exist_ok=True)  # a subPath that does not exist yet: the kubelet creates it

        def remap(value: str) -> str:
            for mount_path, local in mapped.items():
                if value == mount_path or value.startswith(mount_path + "/"):
                    return str(local) + value[len(mount_path) :]
            return value

        for key in ("stateDir", "catalogPath", "codePath"):
            if key in document:
                document[key] = remap(document[key])
        ledger = document.get("ledger") or {}
        if ledger.get("sqlitePath"):
            ledger["sqlitePath"] = remap(ledger["sqlitePath"])
        port = free_port()
        document["httpPort"] = port
        config_dir = mapped.get(CONFIG_MOUNT_DIR, directory / "config")
        config_dir.mkdir(parents=True, exist_ok=True)
        path = config_dir / "runtime.json"
        path.write_text(json.dumps(document, indent=2))
        return path, port

    def claim_directory(self, namespace: str, claim: str) -> Path:
        """What PersistentVolumeClaim ``claim`` holds: one directory per claim, kept across pods (a test puts the
        data a claim would have there before a pod mounts it)."""
        return self.workdir / namespace / f"pvc-{claim}"

    def _volume_directory(self, namespace: str, volume: Mapping[str, Any], pod_local: Path) -> Path:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        return self.claim_directory(namespace, claim) if claim else pod_local

    def _environment(self, namespace: str, main: Mapping[str, Any], directory: Path) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "LANG": "C.UTF-8",
            **self.environ,
        }
        for item in main.get("env") or []:
            if "value" in item:
                env[item["name"]] = str(item["value"])
            elif ref := (item.get("valueFrom") or {}).get("secretKeyRef"):
                secret = self.emulator.read_object(SECRETS, ref["name"], namespace=namespace)
                assert secret is not None, f"Secret {ref['name']} is missing (the kubelet would not start the pod)"
                data = secret.get("data") or {}
                if ref["key"] in data:
                    env[item["name"]] = base64.b64decode(data[ref["key"]]).decode()
                else:
                    env[item["name"]] = str((secret.get("stringData") or {})[ref["key"]])
        if env.get("HOME") == "/tmp":
            env["HOME"] = str(directory / "tmp")
        return env

    def _pod_kubeconfig(
        self, container: Container, pod: Mapping[str, Any], main: Mapping[str, Any], directory: Path
    ) -> Path:
        """The pod's own kubeconfig: the API server of ``self.kubeconfig``, with the pod's bound token if it mounts
        one (written to the mount's file as well), else no credentials."""
        assert self.kubeconfig is not None
        document = yaml.safe_load(self.kubeconfig.read_text())
        clusters = {c["name"]: c["cluster"] for c in document["clusters"]}
        current = next(c["context"] for c in document["contexts"] if c["name"] == document["current-context"])
        server = clusters[current["cluster"]]["server"]
        spec = pod["spec"]
        mounted = service_account_token_path(spec, dict(main))
        user: dict[str, Any] = {}
        if mounted is not None:
            token_file, expiration = mounted
            if container.token is None:
                container.token = self.emulator.issue_token(
                    container.namespace,
                    spec.get("serviceAccountName") or "default",
                    pod=container.pod,
                    expiration_seconds=expiration,
                )
            user = {"token": container.token}
            mount_path = token_file.rsplit("/", 1)[0]
            mount = next(m for m in main.get("volumeMounts") or [] if m["mountPath"].rstrip("/") == mount_path)
            local = directory / mount["name"]
            local.mkdir(parents=True, exist_ok=True)
            (local / token_file.rsplit("/", 1)[1]).write_text(container.token)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "kubeconfig.json"
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "cluster", "cluster": {"server": server}}],
                    "users": [{"name": "pod", "user": user}],
                    "contexts": [
                        {
                            "name": "pod",
                            "context": {"cluster": "cluster", "user": "pod", "namespace": container.namespace},
                        }
                    ],
                    "current-context": "pod",
                }
            )
        )
        return path


def _comparable(status: Mapping[str, Any]) -> Any:
    return json.dumps(status, sort_keys=True)


def _tail(path: Path | None, lines: int = 20) -> str:
    text = pod_logs.plain_text(path).splitlines()[-lines:]
    return "\n".join(text)[-2048:]


# Longest line read at once; a longer one is recorded in pieces (tag P), as the kubelet splits long lines.
LOG_LINE_LIMIT = 1 << 20


async def _record(stream: asyncio.StreamReader, name: str, log: Any) -> None:
    """Each line the container writes on ``name`` (stdout, stderr), with the time it was read, in the CRI log format
    the real kubelet writes (``TIME STREAM F LINE``)."""
    while True:
        try:
            line = await stream.readuntil(b"\n")
            partial = False
        except asyncio.IncompleteReadError as end:
            line, partial = end.partial, False
            if not line:
                return
        except asyncio.LimitOverrunError as long:
            line, partial = await stream.readexactly(long.consumed), True
        text = line.rstrip(b"\n").decode("utf-8", errors="replace")
        log.write(pod_logs.cri_line(datetime.datetime.now(datetime.UTC), name, text, partial))
        log.flush()
