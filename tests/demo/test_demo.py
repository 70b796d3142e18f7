"""The newcomer's demo, used as the README says: ``livestrat demo`` in one terminal, the real ``kubectl`` in
another (get, scale), then Ctrl-C. The demo is a real process; its strategy pods are real runtimes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.desk import kubectl_binary

pytestmark = pytest.mark.slow
LIVESTRAT = str(Path(sys.executable).with_name("livestrat"))
TRADING, HALTED = "ema-cross-btc", "ema-cross-halted"  # examples/paper-ema-cross.yaml, examples/halted.yaml
SHIPPED = "desk-ema"  # examples/paper-shipped-code.yaml: its code from the ConfigMap applied with it


def poll(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Until ``predicate()`` is truthy (a bounded wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.5)
    return result


def descendants(root: int) -> dict[int, str]:
    """Every process below ``root`` (pid -> command line), from /proc."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = {}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = commands[pid]
                frontier.append(pid)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Terminal:
    """The demo's terminal: its process and what it printed so far."""

    def __init__(self, workdir: Path) -> None:
        self.process = subprocess.Popen(
            [LIVESTRAT, "demo", "--workdir", str(workdir), "--speed", "600"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # Ctrl-C is sent to it alone, below
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    def printed(self, pattern: str) -> re.Match[str] | None:
        return re.search(pattern, "".join(self.out), re.MULTILINE)

    def ended(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=10)
        return code


def kubectl(kubeconfig: str, home: Path, *args: str) -> str:
    binary = kubectl_binary()
    assert binary is not None, "kubectl is missing: `make tools` installs it in .tools/bin"
    result = subprocess.run(
        [binary, *args],
        env=dict(os.environ, KUBECONFIG=kubeconfig, HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
    return result.stdout


def test_a_newcomer_watches_a_strategy_trade_halts_it_with_kubectl_and_stops_the_demo_with_ctrl_c(tmp_path):
    demo = Terminal(tmp_path / "demo")
    try:
        printed = poll(
            lambda: demo.printed(r"export KUBECONFIG=(\S+)") or demo.process.poll() is not None,
            120,
            "the demo prints its kubeconfig",
        )
        assert isinstance(printed, re.Match), "".join(demo.out + demo.err)
        config = printed.group(1)

        def get(*args: str) -> str:
            return kubectl(config, tmp_path, *args)

        # kubectl get lstrat: a row for each example that runs here, with the CRD's printer columns.
        header, *rows = get("get", "lstrat").splitlines()
        assert header.split()[:4] == ["NAME", "MODE", "VENUE", "PHASE"]
        assert sorted(row.split()[0] for row in rows) == sorted([TRADING, HALTED, SHIPPED])
        assert "live-binance-testnet.yaml" in demo.printed(r"skipped live-binance-testnet\.yaml.*").group(0)

        def trading() -> bool:
            status = get("get", "lstrat", TRADING, "-o", "jsonpath={.status.phase},{.status.trading.fills}")
            phase, _, fills = status.partition(",")
            return phase == "Running" and int(fills or 0) > 0

        poll(trading, 180, f"{TRADING} Running with fills")
        row = next(r for r in get("get", "lstrat").splitlines() if r.startswith(TRADING)).split()
        assert row[3] == "Running" and int(row[4]) > 0
        assert next(r for r in get("get", "lstrat").splitlines() if r.startswith(HALTED)).split()[3] == "Halted"
        assert f"{TRADING}-0" in get("get", "pods")

        processes = descendants(demo.process.pid)
        runtimes = [pid for pid, command in processes.items() if " runtime " in command and f"{TRADING}-0" in command]
        operators = [pid for pid, command in processes.items() if command.rstrip().endswith("livestrat operator")]
        assert len(runtimes) == 1 and len(operators) == 1, processes

        # kubectl scale --replicas=0: the strategy halts, its runtime process ends, its pod is gone.
        get("scale", "lstrat", TRADING, "--replicas=0")
        poll(
            lambda: get("get", "lstrat", TRADING, "-o", "jsonpath={.status.phase},{.status.replicas}") == "Halted,0",
            120,
            f"{TRADING} Halted with 0 replicas",
        )
        poll(lambda: not alive(runtimes[0]), 60, "the halted strategy's runtime process has exited")
        assert f"{TRADING}-0" not in get("get", "pods")
        assert alive(operators[0])

        # kubectl scale --replicas=1: it resumes (a new runtime), and is running when the demo is stopped.
        get("scale", "lstrat", TRADING, "--replicas=1")
        poll(lambda: get("get", "lstrat", TRADING, "-o", "jsonpath={.status.phase}") == "Running", 120, "resumed")

        # Ctrl-C: everything the demo started stops, and it says so without a traceback.
        every = descendants(demo.process.pid)
        demo.process.send_signal(signal.SIGINT)
        code = demo.ended(timeout=120)
    finally:
        if demo.process.poll() is None:  # a step above failed: stop the demo as a user would, its children with it
            left = descendants(demo.process.pid)  # each in a session of its own: a killed demo would orphan them
            demo.process.send_signal(signal.SIGINT)
            try:
                demo.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                demo.process.kill()
                demo.process.wait()
            for pid in left:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
    assert code in (0, 130), "".join(demo.err)
    assert "Traceback" not in "".join(demo.err + demo.out)
    # Each stopped as asked (a process killed at exit instead would say -9).
    stopped = demo.printed(r"^livestrat demo: stopped (.*) and the API emulator\.$")
    assert stopped, "".join(demo.out)
    assert sorted(stopped.group(1).split(", ")) == sorted(
        ["the operator (exit 0)", f"pod default/{TRADING}-0 (exit 0)", f"pod default/{SHIPPED}-0 (exit 0)"]
    ), stopped.group(0)
    poll(lambda: not [pid for pid in every if alive(pid)], 30, f"no process of the demo left: {every}")
