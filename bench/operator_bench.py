"""Operator benchmark: N LiveStrategies created at once against the API emulator.

    .venv/bin/python bench/operator_bench.py                 # N = 100, 500, 1000
    .venv/bin/python bench/operator_bench.py --n 100 --steady 20

The operator is a real ``livestrat operator`` process (its RSS is measured from /proc); the
emulator and the stand-in kubelet (imaginary pods, ready at once) run in this process. For
each N it measures:

- the time from creating N LiveStrategies at once until every one has its children and its
  ``status.observedGeneration`` current (and until every one is Running);
- the operator's API requests per strategy during that time (kopf's and its own), and writes;
- the operator's CPU time per strategy until all are reconciled, and its writes by kind;
- the operator's resident memory afterwards, and again after the steady state;
- the operator's CPU at steady state (percent of one core);
- writes per minute at steady state, while every strategy's "runtime" pushes a heartbeat
  every 10 s (the goal is zero);
- latency from ``spec.replicas: 0`` (through the scale subresource) to the StatefulSet scaled;
- latency from a runtime status push (a risk halt) to the operator's RiskHalted condition.

``--identity shared`` (the default, as the chart where the cluster serves admission policies): strategy pods share
their namespace's identity; ``perStrategy``: each has its own ServiceAccount, Role and RoleBinding.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import kmock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine_header  # noqa: E402
from livestrat.api.crd import build_crd  # noqa: E402
from livestrat.kube_emulator.emulator import KubernetesEmulator, kubeconfig  # noqa: E402
from livestrat.kube_emulator.kubelet import Kubelet  # noqa: E402
from tests.support.desk import example  # noqa: E402
from tests.support.operator import free_port, is_operator_request  # noqa: E402

LS = "livestrat.io/v1alpha1/livestrategies"
STS = "apps/v1/statefulsets"
LIVESTRAT = str(Path(sys.executable).with_name("livestrat"))
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_kind(request: kmock.Request) -> str:
    """What a write was: verb and resource (``PATCH livestrategies/status``); a LiveStrategy's own patch by what it
    touched (kopf's finalizer, kopf's annotations, the operator's annotations)."""
    parts = request.url.path.strip("/").split("/")
    parts = parts[parts.index("namespaces") + 2 :] if "namespaces" in parts else parts[2:]
    resource = parts[0] + (f"/{parts[2]}" if len(parts) > 2 else "")
    kind = f"{request.method.value} {resource}"
    if resource == "livestrategies" and request.method.value == "PATCH":
        data = request.data
        if isinstance(data, list):  # a JSON patch: the paths it touches
            touched = {str(op.get("path", "")).split("/")[2] for op in data if str(op.get("path", "")).count("/") > 1}
        else:
            meta = (data or {}).get("metadata") or {}
            touched = {k for k in meta if meta[k] is not None}
        kind += " (" + ", ".join(sorted(touched) or ["other"]) + ")"
    return kind


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def strategy(i: int) -> dict:
    doc = example("paper-ema-cross")
    doc["metadata"] = {"name": f"s{i:04d}"}
    return doc


def operator_requests(emulator: KubernetesEmulator, since: int) -> list[kmock.Request]:
    return [r for r in list(emulator)[since:] if is_operator_request(r)]


async def until(predicate, timeout: float, interval: float = 0.05) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"not reached within {timeout}s")
        await asyncio.sleep(interval)
    return time.monotonic() - started


def percentiles(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return f"p50 {statistics.median(values) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {values[-1] * 1000:.0f} ms"


async def memory_report(pid: int, path: Path) -> dict:
    """The operator's memory report (bench/operator_memory.py), asked for with SIGUSR1, into ``path``."""
    (path.parent / "memory-report-path").write_text(str(path))
    os.kill(pid, signal.SIGUSR1)
    await until(lambda: path.exists() and path.stat().st_size > 0, 180, 0.2)
    await asyncio.sleep(0.5)  # written in one go; let it finish
    return json.loads(path.read_text())


async def run(
    n: int, steady_seconds: float, samples: int, memory: bool = False, frames: int = 0, identity: str = "shared"
) -> dict:
    async with KubernetesEmulator() as emulator, kmock.Server(emulator) as server:
        emulator.add_crd(build_crd())
        workdir = Path(tempfile.mkdtemp(prefix="operator-bench-"))
        config = workdir / "kubeconfig.json"
        config.write_text(json.dumps(kubeconfig(str(server.url))))
        env = {
            **os.environ,
            "KUBECONFIG": str(config),
            "LIVESTRAT_METRICS_PORT": str(free_port()),
            "LIVESTRAT_HEALTH_PORT": str(free_port()),
            "LIVESTRAT_LOG_LEVEL": "WARNING",
            "LIVESTRAT_START_TIMEOUT_SECONDS": "3600",
            # the chart's default where the cluster serves admission policies (docs/install.md)
            "LIVESTRAT_RUNTIME_IDENTITY": identity,
        }
        log = (workdir / "operator.log").open("wb")
        command = os.environ.get("BENCH_OPERATOR_COMMAND", f"{LIVESTRAT} operator").split()
        report_path = workdir / "memory.json"
        if memory:  # the same operator, with a memory report on SIGUSR1 (and tracemalloc when frames > 0)
            command = [sys.executable, str(ROOT / "bench" / "operator_memory.py")]
            env["LIVESTRAT_MEMORY_REPORT"] = str(workdir / "memory-report-path")
            env["LIVESTRAT_TRACEMALLOC_FRAMES"] = str(frames)
        operator = await asyncio.create_subprocess_exec(*command, env=env, stdout=log, stderr=log)
        async with Kubelet(emulator, workdir=workdir, interval=0.5, ready_delay=0.0):
            try:
                await until(lambda: any(r.action == kmock.action.WATCH for r in operator_requests(emulator, 0)), 60)
                idle_rss = rss_mib(operator.pid)
                idle_report = await memory_report(operator.pid, workdir / "memory-idle.json") if memory else None
                await asyncio.sleep(1)
                since = len(emulator)
                cpu_before = cpu_seconds(operator.pid)
                emulator_cpu = time.process_time()  # the emulator and the stand-in kubelet: this process
                for i in range(n):
                    emulator.create_object(LS, strategy(i), namespace="default")

                def observed() -> bool:
                    for body in emulator.list_objects(LS, "default"):
                        if (body.get("status") or {}).get("observedGeneration") != body["metadata"]["generation"]:
                            return False
                    return len(emulator.list_objects(STS, "default")) == n

                reconciled = await until(observed, timeout=1800, interval=0.5)
                at_reconciled = len(emulator)
                cpu_reconciled = cpu_seconds(operator.pid) - cpu_before
                emulator_cpu = time.process_time() - emulator_cpu

                def all_running() -> bool:
                    return all(
                        (b.get("status") or {}).get("phase") == "Running" for b in emulator.list_objects(LS, "default")
                    )

                running = await until(all_running, timeout=1800, interval=0.5)
                running += reconciled
                requests = operator_requests(emulator, since)
                requests_to_reconciled = [r for r in requests if r.id < at_reconciled]
                writes = [r for r in requests if r.method.value in WRITES]
                loaded_rss = rss_mib(operator.pid)
                report = await memory_report(operator.pid, report_path) if memory else None

                # Steady state: every runtime reports a heartbeat every 10 s; the operator must not write.
                names = [f"s{i:04d}" for i in range(n)]

                async def heartbeats(seconds: float) -> None:
                    started = time.monotonic()
                    while time.monotonic() - started < seconds:
                        for name in names:
                            emulator.patch_object(
                                LS,
                                name,
                                {"status": {"trading": {"nodeState": "Running", "heartbeat": now_text()}}},
                                namespace="default",
                                subresource="status",
                            )
                            await asyncio.sleep(10.0 / n)

                await heartbeats(10)  # the first report turns Trading true: a real change, written once
                await asyncio.sleep(2)
                quiet_since = len(emulator)
                quiet_started = time.monotonic()
                quiet_cpu = cpu_seconds(operator.pid)
                await heartbeats(steady_seconds)
                quiet_cpu = cpu_seconds(operator.pid) - quiet_cpu
                quiet_minutes = (time.monotonic() - quiet_started) / 60
                quiet_writes = [r for r in operator_requests(emulator, quiet_since) if r.method.value in WRITES]
                rest_rss = rss_mib(operator.pid)  # after the steady state: what a burst's transients left
                rest_report = await memory_report(operator.pid, workdir / "memory-rest.json") if memory else None
                if memory:
                    await asyncio.sleep(2)  # the heartbeats that queued while it reported

                # Latency: spec.replicas 0 through the scale subresource -> StatefulSet at 0.
                scale_latencies = []
                for name in names[:samples]:
                    t0 = time.monotonic()
                    emulator.patch_object(LS, name, {"spec": {"replicas": 0}}, namespace="default", subresource="scale")

                    def scaled(name: str = name) -> bool:
                        return emulator.read_object(STS, name, namespace="default")["spec"]["replicas"] == 0

                    await until(scaled, 60, 0.002)
                    scale_latencies.append(time.monotonic() - t0)

                # Latency: a runtime's status push (a risk halt) -> the operator's RiskHalted condition.
                push_latencies = []
                for name in names[samples : 2 * samples]:
                    t0 = time.monotonic()
                    emulator.patch_object(
                        LS,
                        name,
                        {
                            "status": {
                                "risk": {"state": "Halted", "breachedLimit": "maxDrawdown", "breachedAt": now_text()}
                            }
                        },
                        namespace="default",
                        subresource="status",
                    )

                    def halted(name: str = name) -> bool:
                        status = emulator.read_object(LS, name, namespace="default").get("status") or {}
                        conditions = status.get("conditions") or []
                        return any(c["type"] == "RiskHalted" and c["status"] == "True" for c in conditions)

                    await until(halted, 60, 0.002)
                    push_latencies.append(time.monotonic() - t0)
            finally:
                operator.terminate()
                await operator.wait()
                log.close()
    return {
        "n": n,
        "reconciled_s": reconciled,
        "running_s": running,
        "requests_per_strategy": len(requests_to_reconciled) / n,
        "requests_per_strategy_to_running": len(requests) / n,
        "writes_per_strategy": len(writes) / n,
        "non_event_writes_per_strategy": len([w for w in writes if "events" not in w.url.path]) / n,
        "writes_by_kind_per_strategy": {
            kind: round(count / n, 2) for kind, count in sorted(Counter(write_kind(w) for w in writes).items())
        },
        "cpu_ms_per_strategy_to_reconciled": 1000 * cpu_reconciled / n,
        "emulator_cpu_ms_per_strategy_to_reconciled": 1000 * emulator_cpu / n,
        "rss_idle_mib": idle_rss,
        "rss_mib": loaded_rss,
        "rss_at_rest_mib": rest_rss,
        "steady_minutes": quiet_minutes,
        "steady_writes_per_minute": len(quiet_writes) / quiet_minutes,
        "steady_cpu_percent_of_a_core": 100 * quiet_cpu / (quiet_minutes * 60),
        "steady_writes_by_kind": dict(Counter(write_kind(w) for w in quiet_writes)),
        "scale_latency": percentiles(scale_latencies),
        "push_latency": percentiles(push_latencies),
        **({"memory_idle": idle_report, "memory": report, "memory_at_rest": rest_report} if memory else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--steady", type=float, default=60.0, help="seconds of steady state measured (default 60)")
    parser.add_argument("--samples", type=int, default=20, help="latency samples (default 20)")
    parser.add_argument(
        "--identity",
        choices=["shared", "perStrategy"],
        default="shared",
        help="the strategy pods' identity (the operator's runtimeIdentity; default shared, as the chart where the "
        "cluster serves ValidatingAdmissionPolicy)",
    )
    parser.add_argument(
        "--memory", action="store_true", help="report where the operator's memory is, once loaded (operator_memory.py)"
    )
    parser.add_argument(
        "--tracemalloc", type=int, default=0, metavar="FRAMES", help="with --memory: trace allocations (slower)"
    )
    args = parser.parse_args()
    print("\n".join(machine_header("operator benchmark")))
    for n in args.n:
        result = asyncio.run(run(n, args.steady, args.samples, args.memory, args.tracemalloc, args.identity))
        print(json.dumps(result, indent=1), flush=True)


if __name__ == "__main__":
    main()
