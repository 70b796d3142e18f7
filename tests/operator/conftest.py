"""Fixtures of the operator tests: the desk (kubectl), the stand-in kubelet."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from livestrat.kube_emulator.emulator import KubernetesEmulator
from livestrat.kube_emulator.kubelet import Kubelet
from tests.support.desk import Desk


@pytest.fixture
def desk(emulator: KubernetesEmulator, kube_env: Path) -> Desk:
    return Desk(emulator, kube_env)


@pytest.fixture
async def kubelet(emulator: KubernetesEmulator, kube_env: Path, tmp_path: Path) -> AsyncIterator[Kubelet]:
    """Pods without a process (ready at once): for tests about the operator, not about trading."""
    async with Kubelet(emulator, workdir=tmp_path / "pods", kubeconfig=kube_env) as kubelet:
        yield kubelet
