"""A real Prometheus server for tests, scraping what the chart's monitors would select, labelled as they would.

There is no Kubernetes service discovery here (no cluster): each target is a static one whose ``__meta_kubernetes_*``
labels are those Prometheus's Kubernetes discovery gives a pod (its namespace, name, labels, container and port
names; a Service's name and labels for a ServiceMonitor), and its ``relabel_configs`` are the ones prometheus-operator
generates for the monitor (pkg/prometheus/promcfg.go: ``generatePodMonitorConfig`` and
``generateServiceMonitorConfig``): keep a pod only if the monitor's selector and port match it, then ``namespace``,
``container``, ``pod`` (and ``service``), ``podTargetLabels``, ``job`` (``NAMESPACE/NAME`` of a PodMonitor, the
Service's name for a ServiceMonitor, a ``jobLabel``'s value when the pod or Service has it), ``endpoint``, then the
endpoint's own ``relabelings`` from the rendered chart. Prometheus applies them itself: a target the monitor would
not select is dropped here too, and the labels the queries see are the ones a cluster's Prometheus attaches.

``PrometheusServer`` is the ``prometheus`` binary (``make tools``: scripts/ensure-prometheus.sh) on 127.0.0.1, its
data in a temporary directory, stopped by PID.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.support.runtime_process import free_port


def sanitize(name: str) -> str:
    """A Kubernetes label name as a Prometheus label name (prometheus-operator's ``sanitizeLabelName``)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


@dataclass(frozen=True)
class PodTarget:
    """One container port of a pod, as Kubernetes service discovery sees it, answering at ``address`` here."""

    address: str
    namespace: str
    pod: str
    container: str
    port: str  # the container port's name
    pod_labels: Mapping[str, str]
    service: str | None = None  # the Service a ServiceMonitor selects it through
    service_labels: Mapping[str, str] = field(default_factory=dict)
    service_port: str | None = None  # the Service's port backed by it; None: a container port the Service lacks

    def meta_labels(self) -> dict[str, str]:
        labels = {
            "__meta_kubernetes_namespace": self.namespace,
            "__meta_kubernetes_pod_name": self.pod,
            "__meta_kubernetes_pod_container_name": self.container,
            "__meta_kubernetes_pod_container_port_name": self.port,
            "__meta_kubernetes_pod_phase": "Running",
        }
        for key, value in self.pod_labels.items():
            labels[f"__meta_kubernetes_pod_label_{sanitize(key)}"] = value
            labels[f"__meta_kubernetes_pod_labelpresent_{sanitize(key)}"] = "true"
        if self.service is not None:
            labels |= {
                "__meta_kubernetes_service_name": self.service,
                "__meta_kubernetes_endpoint_address_target_kind": "Pod",
                "__meta_kubernetes_endpoint_address_target_name": self.pod,
            }
            if self.service_port is not None:
                labels["__meta_kubernetes_endpoint_port_name"] = self.service_port
            for key, value in self.service_labels.items():
                labels[f"__meta_kubernetes_service_label_{sanitize(key)}"] = value
                labels[f"__meta_kubernetes_service_labelpresent_{sanitize(key)}"] = "true"
        return labels


def _relabeling(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A monitor's relabeling (the CRD's camelCase) as Prometheus's ``relabel_config`` (generateRelabelConfig)."""
    keys = {
        "sourceLabels": "source_labels",
        "separator": "separator",
        "targetLabel": "target_label",
        "regex": "regex",
        "modulus": "modulus",
        "replacement": "replacement",
        "action": "action",
    }
    unknown = set(rule) - set(keys)
    assert not unknown, f"relabeling fields this stand-in does not translate: {sorted(unknown)}"
    out = {keys[k]: v for k, v in rule.items()}
    if "action" in out:
        out["action"] = out["action"].lower()
    return out


def _keep_selected(selector: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    assert not selector.get("matchExpressions"), "matchExpressions: not translated by this stand-in"
    return [
        {
            "action": "keep",
            "source_labels": [
                f"__meta_kubernetes_{kind}_label_{sanitize(k)}",
                f"__meta_kubernetes_{kind}_labelpresent_{sanitize(k)}",
            ],
            "regex": f"({v});true",
        }
        for k, v in sorted(selector.get("matchLabels", {}).items())
    ]


def _copy(source: str, target: str) -> dict[str, Any]:
    return {"source_labels": [source], "target_label": target}


def _from_label(source: str, target: str) -> dict[str, Any]:
    return {"source_labels": [source], "target_label": target, "regex": "(.+)", "replacement": "${1}"}


def relabel_configs(monitor: Mapping[str, Any], index: int = 0) -> list[dict[str, Any]]:
    """What prometheus-operator generates for endpoint ``index`` of a PodMonitor or ServiceMonitor."""
    spec, meta = monitor["spec"], monitor["metadata"]
    rules: list[dict[str, Any]] = [_copy("job", "__tmp_prometheus_job_name")]
    running = {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"}
    if monitor["kind"] == "PodMonitor":
        endpoint = spec["podMetricsEndpoints"][index]
        rules.append(running)
        rules += _keep_selected(spec["selector"], "pod")
        rules.append(
            {
                "action": "keep",
                "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                "regex": endpoint["port"],
            }
        )
        rules += [
            _copy("__meta_kubernetes_namespace", "namespace"),
            _copy("__meta_kubernetes_pod_container_name", "container"),
            _copy("__meta_kubernetes_pod_name", "pod"),
        ]
        rules += [
            _from_label(f"__meta_kubernetes_pod_label_{sanitize(lab)}", sanitize(lab))
            for lab in spec.get("podTargetLabels", [])
        ]
        rules.append({"target_label": "job", "replacement": f"{meta['namespace']}/{meta['name']}"})
        if spec.get("jobLabel"):
            rules.append(_from_label(f"__meta_kubernetes_pod_label_{sanitize(spec['jobLabel'])}", "job"))
    else:
        assert monitor["kind"] == "ServiceMonitor", monitor["kind"]
        endpoint = spec["endpoints"][index]
        rules += _keep_selected(spec["selector"], "service")
        rules.append(
            {"action": "keep", "source_labels": ["__meta_kubernetes_endpoint_port_name"], "regex": endpoint["port"]}
        )
        kind_and_name = [
            "__meta_kubernetes_endpoint_address_target_kind",
            "__meta_kubernetes_endpoint_address_target_name",
        ]
        rules += [
            {
                "source_labels": kind_and_name,
                "separator": ";",
                "regex": "Node;(.*)",
                "replacement": "${1}",
                "target_label": "node",
            },
            {
                "source_labels": kind_and_name,
                "separator": ";",
                "regex": "Pod;(.*)",
                "replacement": "${1}",
                "target_label": "pod",
            },
            _copy("__meta_kubernetes_namespace", "namespace"),
            _copy("__meta_kubernetes_service_name", "service"),
            _copy("__meta_kubernetes_pod_name", "pod"),
            _copy("__meta_kubernetes_pod_container_name", "container"),
            running,
        ]
        rules += [
            _from_label(f"__meta_kubernetes_service_label_{sanitize(lab)}", sanitize(lab))
            for lab in spec.get("targetLabels", [])
        ]
        rules += [
            _from_label(f"__meta_kubernetes_pod_label_{sanitize(lab)}", sanitize(lab))
            for lab in spec.get("podTargetLabels", [])
        ]
        rules.append(
            {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job", "replacement": "${1}"}
        )
        if spec.get("jobLabel"):
            rules.append(_from_label(f"__meta_kubernetes_service_label_{sanitize(spec['jobLabel'])}", "job"))
    rules.append({"target_label": "endpoint", "replacement": endpoint["port"]})
    return rules + [_relabeling(r) for r in endpoint.get("relabelings", [])]


def scrape_config(
    monitor: Mapping[str, Any], targets: Sequence[PodTarget], interval: str, index: int = 0
) -> dict[str, Any]:
    """The scrape job prometheus-operator would generate for the monitor, over these pods instead of discovery."""
    meta, spec = monitor["metadata"], monitor["spec"]
    kind = "podMonitor" if monitor["kind"] == "PodMonitor" else "serviceMonitor"
    endpoint = (spec.get("podMetricsEndpoints") or spec.get("endpoints"))[index]
    return {
        "job_name": f"{kind}/{meta['namespace']}/{meta['name']}/{index}",
        "scrape_interval": interval,  # the chart's own (monitoring.interval) is too slow for a test
        "metrics_path": endpoint.get("path", "/metrics"),
        "static_configs": [{"targets": [t.address], "labels": t.meta_labels()} for t in targets],
        "relabel_configs": relabel_configs(monitor, index),
    }


def monitor_job(monitor: Mapping[str, Any], *, service: str | None = None, index: int = 0) -> str:
    """The ``job`` label a monitor's targets end up with, for the rules tests that run no Prometheus: the
    operator's default (or ``service``'s name), then the endpoint's relabelings that set ``job`` outright.
    (tests/chart/test_dashboard_in_prometheus.py checks it against the labels a real Prometheus attaches.)"""
    spec, meta = monitor["spec"], monitor["metadata"]
    assert not spec.get("jobLabel"), "jobLabel: the job comes from a pod or Service label, not known here"
    if monitor["kind"] == "PodMonitor":
        job, endpoint = f"{meta['namespace']}/{meta['name']}", spec["podMetricsEndpoints"][index]
    else:
        assert service is not None, "a ServiceMonitor's job is its Service's name"
        job, endpoint = service, spec["endpoints"][index]
    for rule in endpoint.get("relabelings", []):
        if rule.get("targetLabel") == "job":
            assert not rule.get("sourceLabels"), f"a job relabeling from source labels: not followed here: {rule}"
            job = rule["replacement"]
    return job


class PrometheusMissing(AssertionError):
    pass


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise PrometheusMissing(
            "no prometheus binary: run `make tools` (scripts/ensure-prometheus.sh), then put .tools/bin on PATH"
        )
    return found


@dataclass
class PrometheusServer:
    """``prometheus`` on 127.0.0.1:PORT with its configuration and data in ``directory``."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes]

    @classmethod
    async def start(cls, directory: Path, scrape_configs: Sequence[Mapping[str, Any]]) -> PrometheusServer:
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": list(scrape_configs),
                }
            )
        )
        port = free_port()
        with open(directory / "prometheus.log", "ab") as log:
            process = subprocess.Popen(
                [
                    prometheus_binary(),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=directory,
            )
        server = cls(directory, port, process)
        await server._wait_ready()
        return server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return (self.directory / "prometheus.log").read_text(errors="replace")

    async def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"prometheus exited ({self.process.returncode}):\n{self.log()[-4000:]}")
                try:
                    async with session.get(self.url + "/-/ready") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"prometheus not ready after {timeout}s:\n{self.log()[-4000:]}")

    async def api(self, path: str, **params: str) -> Any:
        """``/api/v1/PATH``'s data; fails with Prometheus's error (a query it cannot parse, ...)."""
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}/api/v1/{path}", params=params) as response,
        ):
            body = await response.json()
        assert body.get("status") == "success", f"{path} {params}: {body}"
        return body["data"]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector ``expr`` evaluates to now."""
        return (await self.api("query", query=expr))["result"]

    async def query_until(
        self, expr: str, enough: Callable[[list[dict[str, Any]]], bool], timeout: float = 30
    ) -> list[dict[str, Any]]:
        """``expr``'s result once ``enough(result)``, or its last result after ``timeout`` (the caller judges it)."""
        deadline = time.monotonic() + timeout
        while not enough(result := await self.query(expr)) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        return result

    async def targets(self) -> dict[str, list[dict[str, Any]]]:
        """The scrape targets: ``activeTargets`` and ``droppedTargets`` (their relabeling dropped them)."""
        return await self.api("targets")

    def stop(self) -> None:
        """SIGTERM by PID, then SIGKILL if it has not exited in 10 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
