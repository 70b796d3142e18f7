"""The images, built and run for real: ``make images`` (scripts/build-images.sh) builds both from
the Dockerfile with a real Docker daemon, on a Debian trixie base made from Debian's packages,
from the same lock file as the development virtualenv; then

- the runtime image runs the paper example exactly as its StatefulSet runs it (the pod template
  the operator builds, from settings as the chart sets them, turned into ``docker run`` by
  tests/support/docker_pod.py: UID 10001, read-only root filesystem, tmpfs where the pod has
  emptyDirs, the rendered configuration mounted read-only): its probes answer on port 8080, it
  trades and pushes its status to the API emulator, and ``docker stop -t GRACE`` (SIGTERM)
  halts it cleanly, exit code 0, inside the grace period;
- the operator image, run as the Helm chart's StatefulSet runs it, reconciles a LiveStrategy in
  the API emulator into its children and stops cleanly on SIGTERM.

A build is reused while nothing that goes into it changed (the script's content hash), so only
the first run on a machine, or after a change, builds. Where the images cannot be built (no
Docker daemon can be had: not root and none running, docker.io not installable, dockerd unable
to start; or the base cannot be made: debootstrap needs root) every test here skips and says
why. BASE_IMAGE and INSTALL_FROM in the environment go to the script: e.g.
``BASE_IMAGE=python:3.13-slim-trixie INSTALL_FROM=index`` where a registry and the package index
are reachable and the user is not root.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from livestrat.api.resource import LiveStrategy
from livestrat.api.runtime_config import HTTP_PORT, RuntimeConfig
from strategy_operator.build import manifests
from strategy_operator.settings import OperatorSettings
from tests.support.desk import CHILD_RESOURCES, Desk, example
from tests.support.docker_pod import Container, PodIdentity, pod_run_args
from tests.support.helm import RELEASE, RELEASE_NAMESPACE, ROOT, only, operator_environ, render_with_images
from tests.support.kube import LIVESTRATEGIES, wait_for
from tests.support.operator import free_port

# `make test` runs on two workers, a file on one (--dist loadfile): one worker builds the images, once.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

SCRIPT = ROOT / "scripts" / "build-images.sh"
LOCK = ROOT / "requirements.lock"
NAME = "ema-cross-btc"  # examples/paper-ema-cross.yaml
SKIP = 3  # build-images.sh: the images cannot be built here (no daemon, no base)
LABEL = f"livestrat.test={uuid.uuid4().hex}"  # this session's containers


@dataclass(frozen=True)
class Images:
    operator: str  # REPO/livestrat-operator:src-HASH, immutable for the session
    runtime: str
    base: str
    source_hash: str
    build_seconds: float


def build_images() -> tuple[int, dict[str, str], str, float]:
    env = dict(os.environ, PIP=str(Path(sys.executable).with_name("pip")))
    # BASE_IMAGE and INSTALL_FROM are the caller's to choose (e.g. the official base where a
    # registry is reachable, for a developer who is not root); the names are the script's.
    for name in ("IMAGE_TAG", "IMAGE_REPOSITORY", "FORCE_BUILD"):
        env.pop(name, None)
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=1500, check=False, cwd=ROOT
    )
    taken = time.monotonic() - started
    values = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return result.returncode, values, result.stderr, taken


@pytest.fixture(scope="session")
def images() -> Images:
    code, values, log, taken = build_images()
    if code == SKIP:
        said = [line for line in log.splitlines() if line.startswith(("ensure-docker:", "build-base-image:"))]
        pytest.skip(f"the images cannot be built here: {(said or log.splitlines() or ['no reason given'])[-1]}")
    assert code == 0, f"scripts/build-images.sh failed ({code}):\n{log[-8000:]}"
    source = values["SOURCE_HASH"]

    def pinned(image: str) -> str:
        return image.rsplit(":", 1)[0] + f":src-{source}"

    return Images(
        pinned(values["OPERATOR_IMAGE"]), pinned(values["RUNTIME_IMAGE"]), values["BASE_IMAGE"], source, taken
    )


def inspect(image: str) -> dict:
    result = subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)[0]


def locked_versions() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", LOCK.read_text(), flags=re.MULTILINE)
    return {canonical(name): version for name, version in pins}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed(image: str) -> dict[str, str]:
    """Every distribution in the image's virtualenv, by canonical name."""
    code = "import importlib.metadata as m, json; print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    result = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", "python3", image, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return {canonical(k): v for k, v in json.loads(result.stdout).items()}


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def chart(images: Images, **values: object) -> list[dict]:
    """The dev release's objects, with the images just built."""
    return render_with_images(images.operator, images.runtime, **values)


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session, session.get(url) as response:
        return response.status, await response.text()


def report(what: str, **numbers: object) -> None:
    """Measured numbers, in the test's output (pytest -s) and in .livestrat/image-measurements.jsonl."""
    line = json.dumps({"what": what, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **numbers})
    print(line)
    (ROOT / ".livestrat").mkdir(exist_ok=True)
    with (ROOT / ".livestrat" / "image-measurements.jsonl").open("a") as out:
        out.write(line + "\n")


# ------------------------------------------------------------------------------------------------


def test_images_run_as_10001_on_the_trixie_base_with_exactly_the_locked_versions(images):
    lock = locked_versions()
    sizes = {}
    for image, extra in ((images.operator, "operator"), (images.runtime, "runtime")):
        meta = inspect(image)
        sizes[extra] = meta["Size"]
        assert meta["Config"]["User"] == "10001:10001"
        assert meta["Config"]["Labels"]["io.livestrat.source-hash"] == images.source_hash
        assert meta["Config"]["Labels"]["org.opencontainers.image.base.name"] == images.base
        dists = installed(image)
        ours = {name: version for name, version in dists.items() if name not in {"livestrat", "pip"}}
        assert ours, image
        unlocked = {name: version for name, version in ours.items() if lock.get(name) != version}
        assert not unlocked, f"{image}: not the versions requirements.lock pins: {unlocked}"
        assert dists["livestrat"] == "0.1.0"
    operator, runtime = installed(images.operator), installed(images.runtime)
    assert "nautilus-trader" not in operator and "kopf" in operator and "pip" not in operator
    assert runtime["nautilus-trader"] == lock["nautilus-trader"] and "kopf" not in runtime
    python = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", "python3", images.runtime, "-V"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert python.startswith("Python 3.13."), python
    report(
        "image sizes",
        operator_mb=round(sizes["operator"] / 1e6),
        runtime_mb=round(sizes["runtime"] / 1e6),
        base_mb=round(inspect(images.base)["Size"] / 1e6),
        python=python.split()[1],
        first_build_call_seconds=round(images.build_seconds, 1),
    )


def test_an_unchanged_tree_builds_nothing_again(images):
    code, values, log, taken = build_images()
    assert code == 0, log[-4000:]
    assert values["SOURCE_HASH"] == images.source_hash
    assert log.count("is up to date") == 2, log[-4000:]
    assert "Step 1/" not in log and "building " not in log
    assert taken < 60, f"an up-to-date `make images` took {taken:.0f}s"


async def test_the_runtime_image_runs_the_paper_example_as_its_statefulset_does(
    images, emulator, kubeconfig_path, tmp_path
):
    desk = Desk(emulator, kubeconfig_path)
    await desk.apply(example("paper-ema-cross"))
    stored = emulator.read_object(LIVESTRATEGIES, NAME, namespace="default")
    strategy = LiveStrategy.from_manifest(stored)
    # The operator's settings exactly as the chart sets them (dev values, these images).
    settings = OperatorSettings.from_env(operator_environ(chart(images)))
    assert settings.runtime_image == images.runtime
    built = {d["kind"]: d for d in manifests.build_children(strategy, settings, replicas=1)}
    configmap, statefulset = built["ConfigMap"], built["StatefulSet"]
    template = statefulset["spec"]["template"]
    (main,) = template["spec"]["containers"]
    grace = template["spec"]["terminationGracePeriodSeconds"]
    assert main["image"] == images.runtime
    if not port_free(HTTP_PORT):
        pytest.skip(f"port {HTTP_PORT} is taken on this machine, and the container listens there (--network host)")

    run_args = pod_run_args(
        template,
        pod=PodIdentity(f"{NAME}-0", "default", template["metadata"]["labels"]),
        image=main["image"],
        volumes_dir=tmp_path / "volumes",
        configmaps={configmap["metadata"]["name"]: configmap["data"]},
        kubeconfig=kubeconfig_path,
    )
    # As the pod: read-only root, UID 10001, every capability dropped, writable only where emptyDirs are.
    assert (
        "--read-only" in run_args and "--user" in run_args and run_args[run_args.index("--user") + 1] == "10001:10001"
    )
    tmpfs = {run_args[i + 1].split(":")[0] for i, a in enumerate(run_args) if a == "--tmpfs"}
    assert tmpfs == {"/tmp", "/var/lib/livestrat", "/data/catalog"}, tmpfs  # the pod's three emptyDirs
    assert f"type=bind,source={tmp_path / 'volumes' / 'config'},target=/etc/livestrat,readonly" in run_args
    container = await Container.run(
        f"livestrat-test-runtime-{uuid.uuid4().hex[:8]}", run_args, grace=grace, label=LABEL
    )
    try:
        base = f"http://127.0.0.1:{HTTP_PORT}"
        healthy = await container.wait_http(f"{base}/healthz")
        ready = await container.wait_http(f"{base}/readyz")
        await wait_for(lambda: (desk.status(NAME).get("trading") or {}).get("fills", 0) > 0, timeout=120)
        status, state_text = await get(f"{base}/state")
        assert status == 200
        state = json.loads(state_text)
        status, metrics = await get(f"{base}/metrics")
        assert status == 200 and "livestrat_" in metrics
        assert (await container.state())["Running"]

        code, taken = await container.stop()
        logs = await container.logs()
        assert code == 0, f"exit code {code} after SIGTERM:\n{logs[-5000:]}"
        assert taken < grace, f"took {taken:.1f}s of a {grace}s grace period"
        assert not (await container.state())["OOMKilled"]
    finally:
        logs = await container.logs()
        await container.remove()
    trading = desk.status(NAME)["trading"]
    assert trading["fills"] > 0, trading
    report(
        "runtime container",
        healthz_seconds=round(healthy, 2),
        readyz_seconds=round(ready, 2),
        stop_seconds=round(taken, 2),
        grace_seconds=grace,
        fills=trading["fills"],
        state_keys=sorted(state)[:8],
    )
    assert "Traceback" not in logs, logs[-5000:]


async def test_the_operator_image_reconciles_a_livestrategy_as_the_charts_statefulset_runs_it(
    images, emulator, kubeconfig_path, tmp_path
):
    metrics_port, health_port = free_port(), free_port()
    docs = chart(images, **{"ports.metrics": metrics_port, "ports.health": health_port})
    statefulset = only(docs, "StatefulSet")
    template = statefulset["spec"]["template"]
    (main,) = template["spec"]["containers"]
    assert main["image"] == images.operator
    labels = {**template["metadata"]["labels"], "apps.kubernetes.io/pod-index": "0"}
    run_args = pod_run_args(
        template,
        pod=PodIdentity(f"{RELEASE}-0", RELEASE_NAMESPACE, labels),
        image=main["image"],
        volumes_dir=tmp_path / "volumes",
        kubeconfig=kubeconfig_path,
    )
    assert "--read-only" in run_args and run_args[run_args.index("--user") + 1] == "10001:10001"
    grace = template["spec"]["terminationGracePeriodSeconds"]
    container = await Container.run(
        f"livestrat-test-operator-{uuid.uuid4().hex[:8]}", run_args, grace=grace, label=LABEL
    )
    desk = Desk(emulator, kubeconfig_path)
    try:
        healthy = await container.wait_http(f"http://127.0.0.1:{health_port}/healthz")
        started = time.monotonic()
        await desk.apply(example("paper-ema-cross"))

        def reconciled() -> bool:
            made = desk.statefulset(NAME)
            # (no Service: strategies have none since issue 15)
            return made is not None and all(desk.child(kind, NAME) for kind in CHILD_RESOURCES if kind != "Service")

        try:
            await wait_for(reconciled, timeout=90)
        except AssertionError:
            raise AssertionError(
                f"the operator did not reconcile; its log:\n{(await container.logs())[-5000:]}"
            ) from None
        reconciled_after = time.monotonic() - started
        made = desk.statefulset(NAME)
        assert made["spec"]["replicas"] == 1
        (pod_container,) = made["spec"]["template"]["spec"]["containers"]
        assert pod_container["image"] == images.runtime
        configmap = desk.child("ConfigMap", NAME)
        # As the runtime in the image reads it (fields at their default are not written: docs/runtime.md).
        document = RuntimeConfig.model_validate_json(configmap["data"]["runtime.json"])
        assert document.strategy.name == NAME and document.http_port == HTTP_PORT
        # The same children the operator's code builds for the stored object with the chart's settings.
        settings = OperatorSettings.from_env(operator_environ(docs))
        expected = manifests.build_statefulset(
            LiveStrategy.from_manifest(emulator.read_object(LIVESTRATEGIES, NAME, namespace="default")),
            settings,
            replicas=1,
        )
        assert made["spec"]["template"]["spec"] == expected["spec"]["template"]["spec"]
        status, metrics = await get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert status == 200 and "livestrat_operator_strategies" in metrics

        code, taken = await container.stop()
        logs = await container.logs()
        assert code == 0, f"exit code {code} after SIGTERM:\n{logs[-5000:]}"
        assert taken < grace, f"took {taken:.1f}s of a {grace}s grace period"
    finally:
        logs = await container.logs()
        await container.remove()
    report(
        "operator container",
        healthz_seconds=round(healthy, 2),
        reconciled_seconds=round(reconciled_after, 2),
        stop_seconds=round(taken, 2),
        grace_seconds=grace,
    )
    assert "Traceback" not in logs, logs[-5000:]


def test_a_strategy_image_built_from_the_runtime_image_as_install_md_shows_imports_the_strategy(images, tmp_path):
    """docs/install.md, "Your strategies": FROM the runtime image, pip install a wheel, back to 10001."""
    text = (ROOT / "docs" / "install.md").read_text()
    snippet = re.search(r"### Your strategies.*?```dockerfile\n(.*?)```", text, flags=re.DOTALL).group(1)
    lines = snippet.splitlines()
    assert lines[0].startswith("FROM REGISTRY/livestrat-runtime:")
    (tmp_path / "Dockerfile").write_text("\n".join([f"FROM {images.runtime}", *lines[1:]]) + "\n")
    wheel_name = re.search(r"COPY dist/(\S+\.whl) ", snippet).group(1)
    name, version = wheel_name.split("-")[:2]
    (tmp_path / "dist").mkdir()
    with zipfile.ZipFile(tmp_path / "dist" / wheel_name, "w") as wheel:
        info = f"{name}-{version}.dist-info"
        files = {
            f"{name}/__init__.py": "class Strategy:\n    pass\n",
            f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
            f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        }
        files[f"{info}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{info}/RECORD"])
        for path, content in files.items():
            wheel.writestr(path, content)
    tag = f"livestrat-test-strategies:{uuid.uuid4().hex[:12]}"
    try:
        built = subprocess.run(
            ["docker", "build", "--network", "none", "--tag", tag, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
        assert inspect(tag)["Config"]["User"] == "10001:10001"
        code = f"import {name}, nautilus_trader; print({name}.Strategy.__name__, nautilus_trader.__version__)"
        ran = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", "--read-only", "--entrypoint", "python3", tag, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert ran.returncode == 0, ran.stderr[-4000:]
        assert ran.stdout.split() == ["Strategy", locked_versions()["nautilus-trader"]]
    finally:
        subprocess.run(["docker", "image", "rm", "--force", tag], capture_output=True, check=False)


def test_no_test_container_is_left_behind(images):
    result = subprocess.run(
        ["docker", "ps", "--all", "--quiet", "--filter", f"label={LABEL}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == ""
