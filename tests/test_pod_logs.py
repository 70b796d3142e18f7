"""The emulator's ``pods/NAME/log`` checked against the Kubernetes API reference (core/v1 PodLogOptions: container,
previous, sinceSeconds, sinceTime, tailLines, limitBytes, timestamps, follow) and the kubelet's CRI log format."""

from __future__ import annotations

import asyncio
import datetime
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from livestrat.kube_emulator import pod_logs
from livestrat.kube_emulator.emulator import ADMIN_HEADERS, KubernetesEmulator
from livestrat.kube_emulator.kubelet import _record
from tests.support.desk_users import add_cluster_role, desk_user


@dataclass
class Instances:
    """A container's instances, their log files written in the CRI format at chosen times."""

    directory: Path
    now: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.UTC))  # when written
    files: list[Path] = field(default_factory=list)
    running: bool = True
    waiting: str | None = None

    def start(self, *lines: tuple[float, str]) -> None:
        """A new instance, with ``(seconds ago, text)`` lines."""
        path = self.directory / f"container-{len(self.files)}.log"
        path.write_bytes(
            b"".join(
                pod_logs.cri_line(self.now - datetime.timedelta(seconds=ago), "stdout", text) for ago, text in lines
            )
        )
        self.files.append(path)

    def write(self, text: str) -> None:
        with self.files[-1].open("ab") as log:
            log.write(pod_logs.cri_line(datetime.datetime.now(datetime.UTC), "stderr", text))

    def container_log(self, namespace, pod, container, previous):
        if self.waiting:
            return pod_logs.ContainerLog(None, running=False, waiting_reason=self.waiting)
        if previous:
            return pod_logs.ContainerLog(self.files[-2], running=False) if len(self.files) > 1 else None
        return pod_logs.ContainerLog(self.files[-1], running=self.running) if self.files else None


@pytest.fixture
def pod(emulator: KubernetesEmulator, tmp_path: Path) -> Instances:
    emulator.create_object(
        "v1/pods",
        {"metadata": {"name": "ema-0"}, "spec": {"containers": [{"name": "strategy", "image": "x"}]}},
        namespace="default",
    )
    instances = Instances(tmp_path)
    instances.start((3600, "an hour ago"), (30, "half a minute ago"), (5, "five seconds ago"))
    emulator.log_source = instances
    return instances


async def logs(emulator: KubernetesEmulator, headers=ADMIN_HEADERS, pod: str = "ema-0", **params) -> tuple[int, str]:
    query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()}
    url = str(emulator.url).rstrip("/") + f"/api/v1/namespaces/default/pods/{pod}/log"
    async with aiohttp.ClientSession() as http, http.get(url, params=query, headers=headers) as answer:
        return answer.status, await answer.text()


async def test_the_only_container_is_read_by_default(emulator, pod):
    assert await logs(emulator) == (200, "an hour ago\nhalf a minute ago\nfive seconds ago\n")


async def test_tail_lines_since_seconds_and_limit_bytes(emulator, pod):
    assert (await logs(emulator, tailLines=1))[1] == "five seconds ago\n"
    assert (await logs(emulator, tailLines=0))[1] == ""
    assert (await logs(emulator, sinceSeconds=60))[1] == "half a minute ago\nfive seconds ago\n"
    assert (await logs(emulator, limitBytes=6))[1] == "an hou"


async def test_since_time_and_timestamps(emulator, pod):
    since = (pod.now - datetime.timedelta(seconds=10)).isoformat().replace("+00:00", "Z")
    status, text = await logs(emulator, sinceTime=since, timestamps=True)
    assert status == 200
    stamp, _, line = text.rstrip("\n").partition(" ")
    assert line == "five seconds ago"
    assert stamp.endswith("Z") and datetime.datetime.fromisoformat(stamp[:26] + "+00:00") <= pod.now


async def test_invalid_options_are_refused_as_the_api_server_does(emulator, pod):
    status, text = await logs(emulator, tailLines=-1)
    assert status == 422 and "tailLines: Invalid value: -1: must be greater than or equal to 0" in text
    status, text = await logs(emulator, sinceSeconds=0)
    assert status == 422 and "must be greater than 0" in text
    status, text = await logs(emulator, sinceSeconds=5, sinceTime=pod.now.isoformat())
    assert status == 422 and "at most one of `sinceTime` or `sinceSeconds`" in text
    status, text = await logs(emulator, container="sidecar")
    assert status == 400 and "container sidecar is not valid for pod ema-0" in text


async def test_previous_is_the_instance_before_the_last_restart(emulator, pod):
    status, text = await logs(emulator, previous=True)
    assert status == 400
    assert json.loads(text)["message"] == 'previous terminated container "strategy" in pod "ema-0" not found'
    pod.start((1, "after the restart"))
    assert (await logs(emulator, previous=True))[1].endswith("five seconds ago\n")
    assert (await logs(emulator))[1] == "after the restart\n"


async def test_a_container_waiting_to_start_has_no_log_yet(emulator, pod):
    pod.waiting = "ImagePullBackOff"
    status, text = await logs(emulator)
    assert status == 400
    assert json.loads(text)["message"] == 'container "strategy" in pod "ema-0" is waiting to start: ImagePullBackOff'


async def test_an_unknown_pod_is_not_found(emulator, pod):
    assert (await logs(emulator, pod="nope"))[0] == 404


async def test_follow_carries_new_lines_until_the_container_ends(emulator, pod):
    reading = asyncio.create_task(logs(emulator, follow=True, tailLines=1))
    await asyncio.sleep(0.3)
    pod.write("written while followed")
    await asyncio.sleep(0.3)
    assert not reading.done()  # the container still runs: the response stays open
    pod.running = False
    status, text = await asyncio.wait_for(reading, timeout=10)
    assert (status, text) == (200, "five seconds ago\nwritten while followed\n")


async def test_reading_a_log_needs_the_pods_log_right_not_only_pods(emulator, pod, tmp_path):
    add_cluster_role(emulator, "pods-only", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])
    kubeconfig = desk_user(emulator, tmp_path, "erin", ["pods-only"], ["default"])
    token = kubeconfig.read_text().split('"token": "')[1].split('"')[0]
    status, text = await logs(emulator, headers={"Authorization": f"Bearer {token}"})
    assert status == 403 and 'cannot get resource "pods/log"' in json.loads(text)["message"]


@pytest.mark.slow  # starts a process
async def test_the_kubelet_records_each_line_with_its_stream_and_time(tmp_path):
    path = tmp_path / "container-0.log"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; print('to stdout', flush=True); print('to stderr', file=sys.stderr, flush=True); "
        "sys.stdout.write('no newline at the end')",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    with path.open("ab") as log:
        await asyncio.gather(_record(process.stdout, "stdout", log), _record(process.stderr, "stderr", log))
    await process.wait()
    records = path.read_text().splitlines()
    assert sorted(r.split(" ", 1)[1] for r in records) == [
        "stderr F to stderr",
        "stdout F no newline at the end",
        "stdout F to stdout",
    ]
    lines, _ = pod_logs.read_cri(path)
    assert all(abs((line.time - datetime.datetime.now(datetime.UTC)).total_seconds()) < 60 for line in lines)
