"""A pod template's container run with Docker, as a kubelet would run it: the project's images for real.

``pod_run_args`` turns a pod template (the StatefulSet the operator builds for a strategy, or
the one the Helm chart renders for the operator) into ``docker run`` arguments, rule by rule:

- the pod's ``runAsUser``/``runAsGroup`` → ``--user UID:GID``, its ``fsGroup`` → ``--group-add``;
- the container's ``readOnlyRootFilesystem`` → ``--read-only``, ``capabilities.drop: [ALL]``
  → ``--cap-drop ALL``, ``allowPrivilegeEscalation: false`` → ``no-new-privileges``;
  ``seccompProfile: RuntimeDefault`` is Docker's default profile;
- ``command``/``args`` → ``--entrypoint`` and the arguments (the image's own ENTRYPOINT and
  CMD are not used, as Kubernetes does not use them when ``command`` is set);
- ``env``: values as they are, ``fieldRef`` from the pod's name, namespace and labels,
  ``secretKeyRef`` from the secrets given;
- volumes: a ConfigMap's items are written to a folder here (``defaultMode``) and bind-mounted
  read-only at the mount path; an ``emptyDir`` is a tmpfs at the mount path, owned by the
  pod's user and ``fsGroup`` (``sizeLimit`` becomes its size); other volume kinds (PVC, CSI)
  are refused. (A kubelet's emptyDir is a folder of mode 0777, group ``fsGroup``; runc gives a
  tmpfs the mode of the image's folder under it, e.g. 0755, hence the owner.)
- ``resources.limits``: ``memory`` → ``--memory``, ``cpu`` → ``--cpus``.

Where it must differ from a cluster, and says so:
- the network is the host's (``--network host``): the container's ports are this machine's
  loopback ports, and the API server is the emulator on 127.0.0.1;
- the service account token is stood in for by a kubeconfig, mounted read-only and named by
  ``KUBECONFIG`` (both the operator and the runtime use a kubeconfig when
  ``KUBERNETES_SERVICE_HOST`` is not set), as livestrat/kube_emulator/kubelet.py does for processes;
- ``terminationGracePeriodSeconds`` is the ``docker stop -t`` of ``stop()``: SIGTERM, then
  SIGKILL after the grace period, as the kubelet does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

KUBECONFIG_MOUNT = "/var/run/secrets/livestrat.test/kubeconfig"
_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T|m)?$")
_FACTORS = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity_bytes(value: str) -> int:
    match = _QUANTITY.match(str(value))
    assert match and match.group(2) != "m", f"not a byte quantity: {value}"
    return int(float(match.group(1)) * _FACTORS[match.group(2)])


def quantity_cpus(value: str) -> float:
    text = str(value)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


@dataclass(frozen=True)
class PodIdentity:
    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)


def _env(container: Mapping[str, Any], pod: PodIdentity, secrets: Mapping[str, Mapping[str, str]]) -> list[str]:
    fields = {"metadata.name": pod.name, "metadata.namespace": pod.namespace}
    fields.update({f"metadata.labels['{k}']": v for k, v in pod.labels.items()})
    args: list[str] = []
    for item in container.get("env") or []:
        if "value" in item:
            value = str(item["value"])
        elif ref := (item.get("valueFrom") or {}).get("fieldRef"):
            value = fields[ref["fieldPath"]]
        elif ref := (item.get("valueFrom") or {}).get("secretKeyRef"):
            data = secrets[ref["name"]]
            value = base64.b64decode(data[ref["key"]]).decode()
        else:
            raise AssertionError(f"an env entry this stand-in cannot resolve: {item}")
        args += ["--env", f"{item['name']}={value}"]
    return args


def pod_run_args(
    template: Mapping[str, Any],
    *,
    pod: PodIdentity,
    image: str,
    volumes_dir: Path,
    configmaps: Mapping[str, Mapping[str, str]] | None = None,
    secrets: Mapping[str, Mapping[str, str]] | None = None,
    kubeconfig: Path | None = None,
    container_name: str | None = None,
) -> list[str]:
    """The ``docker run`` arguments (after ``docker run``) of the template's container."""
    spec = template["spec"]
    containers = spec["containers"]
    container = next(c for c in containers if c["name"] == container_name) if container_name else containers[0]
    pod_security = spec.get("securityContext") or {}
    security = container.get("securityContext") or {}
    fs_group = pod_security.get("fsGroup")
    args = ["--network", "host"]

    uid = security.get("runAsUser", pod_security.get("runAsUser"))
    gid = security.get("runAsGroup", pod_security.get("runAsGroup"))
    if uid is not None:
        args += ["--user", f"{uid}:{gid}" if gid is not None else str(uid)]
    if fs_group is not None:
        args += ["--group-add", str(fs_group)]
    if security.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    if security.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    for capability in (security.get("capabilities") or {}).get("drop") or []:
        args += ["--cap-drop", capability]
    seccomp = (pod_security.get("seccompProfile") or {}).get("type", "RuntimeDefault")
    assert seccomp == "RuntimeDefault", f"seccomp {seccomp}: only Docker's default profile is stood in for"

    limits = (container.get("resources") or {}).get("limits") or {}
    if "memory" in limits:
        args += ["--memory", str(quantity_bytes(limits["memory"]))]
    if "cpu" in limits:
        args += ["--cpus", str(quantity_cpus(limits["cpu"]))]

    args += _env(container, pod, secrets or {})
    if kubeconfig is not None:
        args += ["--mount", f"type=bind,source={kubeconfig},target={KUBECONFIG_MOUNT},readonly"]
        args += ["--env", f"KUBECONFIG={KUBECONFIG_MOUNT}"]

    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        volume = volumes[mount["name"]]
        target = mount["mountPath"]
        assert "subPath" not in mount, "subPath mounts are not stood in for"
        if "configMap" in volume:
            source = volume["configMap"]
            data = (configmaps or {})[source["name"]]
            folder = volumes_dir / mount["name"]
            folder.mkdir(parents=True, exist_ok=True)
            items = source.get("items") or [{"key": key, "path": key} for key in data]
            for item in items:
                path = folder / item["path"]
                path.write_text(data[item["key"]])
                path.chmod(item.get("mode", source.get("defaultMode", 0o644)))
            folder.chmod(0o755)
            args += ["--mount", f"type=bind,source={folder},target={target},readonly"]
        elif "emptyDir" in volume:
            options = ["rw", "nosuid", "nodev", "exec"]
            if uid is not None:
                options.append(f"uid={uid}")
            if fs_group is not None or gid is not None:
                options.append(f"gid={fs_group if fs_group is not None else gid}")
            if size := (volume["emptyDir"] or {}).get("sizeLimit"):
                options.append(f"size={quantity_bytes(size)}")
            args += ["--tmpfs", f"{target}:{','.join(options)}"]
        else:
            raise AssertionError(f"volume {mount['name']}: only configMap and emptyDir volumes are stood in for")

    command = list(container.get("command") or [])
    rest = list(container.get("args") or [])
    if command:
        args += ["--entrypoint", command[0]]
        rest = command[1:] + rest
    return [*args, image, *rest]


async def docker(*args: str, timeout: float = 120, check: bool = True) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        "docker", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"docker {' '.join(args[:3])} ... took more than {timeout}s") from None
    if check and process.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({process.returncode}): {err.decode()[-3000:]}")
    return process.returncode or 0, out.decode(), err.decode()


@dataclass
class Container:
    """A container started by ``run``: its id, when ``docker run`` was called, and its grace period."""

    name: str
    started_at: float
    grace: int

    @classmethod
    async def run(cls, name: str, run_args: Sequence[str], *, grace: int, label: str = "livestrat.test=1") -> Container:
        """``docker run --detach`` (no ``--rm``: the exit code is read after ``stop``; ``remove`` removes it)."""
        started = time.monotonic()
        await docker("run", "--detach", "--name", name, "--label", label, *run_args)
        return cls(name, started, grace)

    async def state(self) -> dict[str, Any]:
        _, out, _ = await docker("inspect", "--format", "{{json .State}}", self.name)
        return json.loads(out)

    async def logs(self) -> str:
        _, out, err = await docker("logs", self.name, check=False)
        return out + err

    async def wait_http(self, url: str, *, timeout: float = 120) -> float:
        """Poll ``url`` until it answers 200; the seconds since ``docker run`` was called."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while time.monotonic() < deadline:
                try:
                    async with session.get(url) as response:
                        if response.status == 200:
                            return time.monotonic() - self.started_at
                except (aiohttp.ClientError, TimeoutError):
                    pass
                state = await self.state()
                if not state["Running"]:
                    raise AssertionError(
                        f"{self.name} exited ({state['ExitCode']}) before {url} answered:\n{(await self.logs())[-5000:]}"
                    )
                await asyncio.sleep(0.02)
        raise AssertionError(f"{url} did not answer 200 within {timeout}s:\n{(await self.logs())[-5000:]}")

    async def stop(self) -> tuple[int, float]:
        """``docker stop -t GRACE`` (SIGTERM, SIGKILL after the grace period): exit code and seconds taken."""
        started = time.monotonic()
        await docker("stop", "--time", str(self.grace), self.name, timeout=self.grace + 60)
        taken = time.monotonic() - started
        state = await self.state()
        return int(state["ExitCode"]), taken

    async def remove(self) -> None:
        await docker("rm", "--force", self.name, check=False)
