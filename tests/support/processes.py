"""What a test needs to know about another process's state beyond its exit code."""

from __future__ import annotations

import time
from pathlib import Path


def process_state(pid: int) -> str:
    """The state letter of ``/proc/PID/stat`` (R running, S sleeping, T stopped, Z zombie, …)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]  # the command name in parentheses may hold spaces


def wait_stopped(pid: int, timeout: float = 10.0) -> None:
    """Wait until ``pid`` is stopped (SIGSTOP is delivered asynchronously)."""
    deadline = time.monotonic() + timeout
    while process_state(pid) != "T":
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} did not stop within {timeout}s (state {process_state(pid)})")
        time.sleep(0.01)
