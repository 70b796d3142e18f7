"""Images benchmark: their sizes, and how fast their containers start and stop.

    .venv/bin/python bench/images_bench.py [--repeat 5]

Builds the images with scripts/build-images.sh (what `make images` runs; reused when nothing
changed), then, --repeat times each:

- runtime container: the paper example's pod as its StatefulSet runs it (the pod template the
  operator builds with the chart's dev settings, turned into ``docker run`` by
  tests/support/docker_pod.py, as tests/chart/test_images.py runs it), timed from calling
  ``docker run`` until ``/readyz`` answers 200 on port 8080 (``--network host``);
- the same configuration as a ``livestrat runtime`` process of the virtualenv (paths mapped to
  folders here, another port), from spawn until ``/readyz`` answers 200: what the container adds;
- operator container: the chart's operator pod, from ``docker run`` until ``/healthz`` answers 200.

Each container is then stopped with ``docker stop -t GRACE`` (SIGTERM) and removed; its exit code
and the time the stop took are reported. The API server the runtime pushes its status to and the
operator watches is the emulator, in this process, on 127.0.0.1. Port 8080 must be free.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import kmock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine_header  # noqa: E402
from livestrat.api.crd import build_crd  # noqa: E402
from livestrat.api.resource import LiveStrategy  # noqa: E402
from livestrat.api.runtime_config import HTTP_PORT  # noqa: E402
from livestrat.kube_emulator.emulator import KubernetesEmulator, kubeconfig  # noqa: E402
from strategy_operator.build import manifests  # noqa: E402
from strategy_operator.settings import OperatorSettings  # noqa: E402
from tests.support.desk import example  # noqa: E402
from tests.support.docker_pod import Container, PodIdentity, pod_run_args  # noqa: E402
from tests.support.helm import RELEASE, RELEASE_NAMESPACE, only, operator_environ, render_with_images  # noqa: E402
from tests.support.operator import free_port  # noqa: E402

LS = "livestrat.io/v1alpha1/livestrategies"
NAME = "ema-cross-btc"
LIVESTRAT = str(Path(sys.executable).with_name("livestrat"))


def build() -> dict[str, str]:
    env = dict(os.environ, PIP=str(Path(sys.executable).with_name("pip")))
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-images.sh")], env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.exit(f"scripts/build-images.sh failed ({result.returncode}):\n{result.stderr[-4000:]}")
    values = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    source = values["SOURCE_HASH"]
    return {key: values[key].rsplit(":", 1)[0] + f":src-{source}" for key in ("OPERATOR_IMAGE", "RUNTIME_IMAGE")} | {
        "BASE_IMAGE": values["BASE_IMAGE"]
    }


def size_mb(image: str) -> float:
    out = subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", image], capture_output=True, text=True)
    return int(out.stdout) / 1e6


def chart_docs(images: dict[str, str], **values: object) -> list[dict]:
    return render_with_images(images["OPERATOR_IMAGE"], images["RUNTIME_IMAGE"], **values)


async def ready_process(config: dict, workdir: Path, kube: Path) -> float:
    """The pod's runtime.json as a process of the virtualenv: spawn until /readyz 200."""
    for key in ("catalog", "state", "tmp"):
        (workdir / key).mkdir(parents=True, exist_ok=True)
    document = dict(config, catalogPath=str(workdir / "catalog"), stateDir=str(workdir / "state"), httpPort=free_port())
    document["ledger"] = dict(document["ledger"], sqlitePath=str(workdir / "state" / "ledger.sqlite"))
    path = workdir / "runtime.json"
    path.write_text(json.dumps(document))
    env = {"PATH": os.environ["PATH"], "HOME": str(workdir / "tmp"), "KUBECONFIG": str(kube), "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    with (workdir / "runtime.log").open("wb") as log:
        process = subprocess.Popen([LIVESTRAT, "runtime", "--config", str(path)], env=env, stdout=log, stderr=log)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                if process.poll() is not None:
                    sys.exit(f"the runtime process exited ({process.returncode}); {workdir / 'runtime.log'}")
                try:
                    async with session.get(f"http://127.0.0.1:{document['httpPort']}/readyz") as response:
                        if response.status == 200:
                            return time.monotonic() - started
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.02)
    finally:
        process.terminate()  # the emulator answers its final status push from this loop: wait off it
        await asyncio.to_thread(process.wait, 60)


async def run(repeat: int) -> list[str]:
    images = build()
    lines = [f"images (base {images['BASE_IMAGE']}, {size_mb(images['BASE_IMAGE']):.0f} MB):"]
    for key in ("OPERATOR_IMAGE", "RUNTIME_IMAGE"):
        lines.append(f"  {images[key]}: {size_mb(images[key]):.0f} MB")
    workdir = Path(tempfile.mkdtemp(prefix="images-bench-"))
    async with KubernetesEmulator() as emulator, kmock.Server(emulator) as server:
        emulator.add_crd(build_crd())
        kube = workdir / "kubeconfig.json"
        kube.write_text(json.dumps(kubeconfig(str(server.url))))
        kube.chmod(0o644)
        emulator.create_object(LS, example("paper-ema-cross"), namespace="default")
        stored = emulator.read_object(LS, NAME, namespace="default")
        docs = chart_docs(images, **{"ports.metrics": free_port(), "ports.health": free_port()})
        settings = OperatorSettings.from_env(operator_environ(docs))
        built = {
            d["kind"]: d for d in manifests.build_children(LiveStrategy.from_manifest(stored), settings, replicas=1)
        }
        configmap, template = built["ConfigMap"], built["StatefulSet"]["spec"]["template"]
        grace = template["spec"]["terminationGracePeriodSeconds"]

        runtime_ready, runtime_stops, process_ready, operator_ready, operator_stops = [], [], [], [], []
        for i in range(repeat):
            args = pod_run_args(
                template,
                pod=PodIdentity(f"{NAME}-0", "default", template["metadata"]["labels"]),
                image=images["RUNTIME_IMAGE"],
                volumes_dir=workdir / f"runtime-{i}",
                configmaps={configmap["metadata"]["name"]: configmap["data"]},
                kubeconfig=kube,
            )
            container = await Container.run(
                f"livestrat-bench-runtime-{uuid.uuid4().hex[:8]}", args, grace=grace, label="livestrat.bench=1"
            )
            try:
                runtime_ready.append(await container.wait_http(f"http://127.0.0.1:{HTTP_PORT}/readyz"))
                await asyncio.sleep(2)  # the replay of 3,000 bars is over by then: a halt of an idle node
                runtime_stops.append(await container.stop())
            finally:
                await container.remove()
            process_ready.append(
                await ready_process(json.loads(configmap["data"]["runtime.json"]), workdir / f"p{i}", kube)
            )

            operator_template = only(docs, "StatefulSet")["spec"]["template"]
            health = next(
                e["value"]
                for e in operator_template["spec"]["containers"][0]["env"]
                if e["name"] == "LIVESTRAT_HEALTH_PORT"
            )
            args = pod_run_args(
                operator_template,
                pod=PodIdentity(f"{RELEASE}-0", RELEASE_NAMESPACE, {"apps.kubernetes.io/pod-index": "0"}),
                image=images["OPERATOR_IMAGE"],
                volumes_dir=workdir / f"operator-{i}",
                kubeconfig=kube,
            )
            operator_grace = operator_template["spec"]["terminationGracePeriodSeconds"]
            container = await Container.run(
                f"livestrat-bench-operator-{uuid.uuid4().hex[:8]}", args, grace=operator_grace
            )
            try:
                operator_ready.append(await container.wait_http(f"http://127.0.0.1:{health}/healthz"))
                await asyncio.sleep(1)
                operator_stops.append(await container.stop())
            finally:
                await container.remove()

    shutil.rmtree(workdir, ignore_errors=True)

    def summary(values: list[float]) -> str:
        return f"median {statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f})"

    lines += [
        f"runtime container, docker run -> /readyz 200: {summary(runtime_ready)}",
        f"same config as a venv process, spawn -> /readyz 200: {summary(process_ready)}",
        f"runtime container, docker stop -t {grace}: exit codes {sorted({c for c, _ in runtime_stops})}, "
        f"{summary([t for _, t in runtime_stops])}",
        f"operator container, docker run -> /healthz 200: {summary(operator_ready)}",
        f"operator container, docker stop: exit codes {sorted({c for c, _ in operator_stops})}, "
        f"{summary([t for _, t in operator_stops])}",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    lines = machine_header("images benchmark")
    lines.append(
        subprocess.run(
            ["docker", "version", "--format", "docker {{.Server.Version}}"], capture_output=True, text=True
        ).stdout.strip()
    )
    lines += asyncio.run(run(args.repeat))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
