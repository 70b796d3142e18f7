"""What machine a benchmark ran on: printed at the top of every benchmark's report."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_header(title: str) -> list[str]:
    """The benchmark's title with the date, then the CPU, cores, OS and Python version."""
    return [
        f"{title}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}",
        # Other work on the machine moves every absolute figure: say how busy it was.
        "load average (1, 5, 15 min) at the start: {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg()),
    ]
