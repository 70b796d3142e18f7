"""A real ``livestrat runtime`` process for tests: its configuration, its HTTP endpoints, its output.

``strategy_config(...)`` renders the ``RuntimeConfig`` an operator would (from a manifest
validated like the API server does); ``RuntimeProcess.start(...)`` runs ``livestrat runtime
--config FILE`` with the environment a pod would get; its stdout and stderr go to files so a
test can search them after the process is gone (and a full pipe never blocks it).
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from livestrat.api.runtime_config import (
    ENV_LEDGER_DSN,
    LedgerKind,
    LedgerTarget,
    RuntimeConfig,
    StrategyIdentity,
    halt_budget_seconds,
    host_and_port,
)
from livestrat.api.validation import parse

ROOT = Path(__file__).resolve().parents[2]
LIVESTRAT = str(Path(sys.executable).with_name("livestrat"))
EXAMPLE = ROOT / "examples" / "paper-ema-cross.yaml"


_NEXT_PORT: list[int] = []


def free_port() -> int:
    """A port free now for a runtime to bind. Under pytest-xdist each worker takes its own range below the kernel's
    ephemeral ports (32768 and up), so neither the other worker nor an outgoing connection can take it meanwhile (a
    kernel-chosen port did: "address already in use")."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.removeprefix("gw").isdigit():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    first = 20000 + 2000 * int(worker.removeprefix("gw"))
    if not _NEXT_PORT:
        _NEXT_PORT.append(first)
    for _ in range(2000):
        port = _NEXT_PORT[0]
        _NEXT_PORT[0] = first + (port + 1 - first) % 2000
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}-{first + 1999}")


def paper_spec(strategy: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """A paper spec on the simulated BINANCE venue (MARGIN, 1,000,000 USDT) replaying bars at full speed."""
    spec: dict[str, Any] = {
        "mode": "paper",
        "strategy": dict(strategy),
        "venue": {
            "adapter": "sandbox",
            "name": "BINANCE",
            "accountType": "margin",
            "startingBalances": ["1000000 USDT"],
        },
        "instruments": ["BTCUSDT.BINANCE"],
        "data": {"catalog": {"emptyDir": {}}, "replay": {"speed": 0}},
        "pod": {"terminationGracePeriodSeconds": 15},
    }
    spec.update(overrides)
    return spec


def example_spec() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(EXAMPLE.read_text())["spec"])


def strategy_config(
    directory: Path,
    spec: Mapping[str, Any],
    *,
    name: str = "scripted",
    namespace: str = "desk",
    catalog: Path | None = None,
    ledger_kind: str = "sqlite",
    report_status: bool = False,
    **fields: Any,
) -> tuple[RuntimeConfig, Path]:
    """The rendered configuration of a LiveStrategy ``namespace/name`` with ``spec``, written to ``directory``."""
    manifest = {
        "apiVersion": "livestrat.io/v1alpha1",
        "kind": "LiveStrategy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": dict(spec),
    }
    strategy = parse(manifest, source=f"test {name}")
    directory.mkdir(parents=True, exist_ok=True)
    ledger = (
        LedgerTarget(kind=LedgerKind.POSTGRESQL)
        if ledger_kind == "postgresql"
        else LedgerTarget(kind=LedgerKind.SQLITE, sqlite_path=str(directory / "ledger.sqlite"))
    )
    values: dict[str, Any] = {
        "strategy": StrategyIdentity(namespace=namespace, name=name),
        "spec": strategy.spec,
        "generation": 1,
        "catalog_path": str(catalog or directory / "catalog"),
        "state_dir": str(directory / "state"),
        "ledger": ledger,
        "http_port": free_port(),
        "report_status": report_status,
        "report_interval_seconds": 0.2,
        "halt_budget_seconds": halt_budget_seconds(strategy.spec.pod.termination_grace_period_seconds),
        "log_level": "INFO",
    }
    values.update(fields)
    config = RuntimeConfig(**values)
    path = directory / "runtime.json"
    path.write_text(config.dumps())
    return config, path


@dataclass
class RuntimeProcess:
    config: RuntimeConfig
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    started_at: float

    @classmethod
    def start(
        cls,
        config: RuntimeConfig,
        config_path: Path,
        *,
        ledger_dsn: str | None = None,
        env: Mapping[str, str] | None = None,
        tag: str = "runtime",
        command: Sequence[str] | None = None,
    ) -> RuntimeProcess:
        """``livestrat runtime --config CONFIG_PATH``, or ``command`` (a wrapper that runs it)."""
        environ = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        environ.pop("KUBERNETES_SERVICE_HOST", None)
        if ledger_dsn is not None:
            environ[ENV_LEDGER_DSN] = ledger_dsn
        out, err = config_path.with_name(f"{tag}.stdout"), config_path.with_name(f"{tag}.stderr")
        started = time.monotonic()
        with open(out, "ab") as stdout, open(err, "ab") as stderr:
            process = subprocess.Popen(
                list(command or [LIVESTRAT, "runtime", "--config", str(config_path)]),
                cwd=ROOT,
                env=environ,
                stdout=stdout,
                stderr=stderr,
            )
        return cls(config, process, out, err, started)

    @property
    def url(self) -> str:
        """Where its endpoints answer: the address it listens on (its family's loopback for "every address")."""
        host = ipaddress.ip_address(self.config.http_bind_host)
        if host.is_unspecified:
            host = ipaddress.ip_address("::1" if host.version == 6 else "127.0.0.1")
        return f"http://{host_and_port(str(host), self.config.http_port)}"

    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as session, session.get(self.url + path) as response:
            return response.status, await response.text()

    async def state(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as session, session.get(self.url + "/state") as response:
            return await response.json()

    async def wait_until(
        self, condition: Callable[[dict[str, Any]], bool], timeout: float = 60, what: str = "condition"
    ) -> dict[str, Any]:
        """Poll /state until ``condition(state)``; fail with the process output if it exits or times out."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"runtime exited ({self.process.returncode}) waiting for {what}:\n{self.output()}")
            try:
                last = await self.state()
                if condition(last):
                    return last
            except (aiohttp.ClientError, ValueError):
                pass
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; last state {last}\n{self.output()[-4000:]}")

    async def wait_ready(self, timeout: float = 60) -> float:
        """Wait for /readyz 200; the seconds since the process started."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"runtime exited ({self.process.returncode}) before ready:\n{self.output()}")
            try:
                status, _ = await self.get("/readyz")
                if status == 200:
                    return time.monotonic() - self.started_at
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.02)
        raise AssertionError(f"not ready after {timeout}s:\n{self.output()[-4000:]}")

    def signal(self, sig: signal.Signals = signal.SIGTERM) -> float:
        self.process.send_signal(sig)
        return time.monotonic()

    async def wait_exit(self, timeout: float = 60) -> tuple[int, float]:
        """The exit code and the monotonic time the process was seen gone."""
        code = await asyncio.to_thread(self.process.wait, timeout)
        return code, time.monotonic()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
