"""End to end on kind (scripts/e2e-kind.sh, `make e2e-kind`): install the chart, run the
paper example until it fills, scale it to zero and see it Halted. Runs only where Docker
has a daemon and kind is installed; everywhere else it skips and says why."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.helm import ROOT, helm_binary

SCRIPT = ROOT / "scripts" / "e2e-kind.sh"


def why_not() -> str | None:
    if shutil.which("docker") is None:
        return "docker is not installed"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "docker info timed out"
    if info.returncode != 0:
        return "docker has no reachable daemon (docker info failed)"
    if shutil.which("kind") is None:
        return "kind is not installed"
    return None


@pytest.mark.slow  # runs a process: the slow tier (tests/support/tiers.py)
def test_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_script_loads_the_images_make_images_builds():
    """No `docker build` of its own: the images are scripts/build-images.sh's (tests/chart/test_images.py)."""
    text = SCRIPT.read_text()
    assert 'bash "$ROOT/scripts/build-images.sh"' in text
    assert "docker build" not in text
    assert 'kind load docker-image --name "$CLUSTER" "$OPERATOR_IMAGE" "$RUNTIME_IMAGE"' in text


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_paper_example_fills_then_halts_on_kind():
    reason = why_not()
    if reason:
        pytest.skip(f"kind e2e needs Docker and kind: {reason}")
    env = dict(os.environ, PATH=f"{Path(helm_binary()).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=3500, check=False)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-10000:]
    assert "e2e-kind passed" in result.stderr
