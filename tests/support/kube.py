"""Fixtures for the HTTP Kubernetes API emulator (kmock, extended in kube_emulator.py).

kmock's pytest plugin provides the ``kmock`` fixture (a real aiohttp server on
127.0.0.1); ``kmock_options`` makes it our extended emulator. ``emulator`` registers the
generated LiveStrategy and RiskBudget CRDs and the admission policy the chart installs with it (on Kubernetes
1.30+), so the API the tests talk to is the one users install.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from livestrat.api.admission import policy
from livestrat.api.crd import build_budget_crd, build_crd
from tests.support.kube_emulator import ADMIN_HEADERS, KubernetesEmulator, kubeconfig

LIVESTRATEGIES = "livestrat.io/v1alpha1/livestrategies"
ADMISSION_PLURALS = {
    "ValidatingAdmissionPolicy": "admissionregistration.k8s.io/v1/validatingadmissionpolicies",
    "ValidatingAdmissionPolicyBinding": "admissionregistration.k8s.io/v1/validatingadmissionpolicybindings",
}


def install_admission_policy(emulator: KubernetesEmulator) -> None:
    """The chart's ValidatingAdmissionPolicy and its binding (livestrat.api.admission)."""
    for document in policy():
        emulator.create_object(ADMISSION_PLURALS[document["kind"]], document)


@pytest.fixture
def kmock_options() -> dict[str, Any]:
    # strict: fail the test at teardown if the emulator itself crashed on a request
    # (API errors such as 404/409/422 are regular responses, not crashes).
    return {"cls": KubernetesEmulator, "strict": True}


@pytest.fixture
async def emulator(kmock: KubernetesEmulator) -> KubernetesEmulator:
    for client in kmock.clients:  # kmock's own client (``emulator.get(...)``) is the test's: the admin
        client.headers.update(ADMIN_HEADERS)
    kmock.add_crd(build_crd())
    kmock.add_crd(build_budget_crd())
    install_admission_policy(kmock)
    return kmock


@pytest.fixture
def kubeconfig_path(tmp_path: Path, emulator: KubernetesEmulator) -> Path:
    path = tmp_path / "kubeconfig.json"  # JSON is valid YAML
    path.write_text(json.dumps(kubeconfig(str(emulator.url))))
    return path


async def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll until ``predicate()`` is truthy; its value is returned. Fails the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        await asyncio.sleep(interval)


async def call(
    emulator: KubernetesEmulator, method: str, path: str, *, token: str | None = None, json: Any = None, **params: str
) -> tuple[int, Any]:
    """A raw request to the emulator as ``token``'s user (none: anonymous); PATCH is a merge patch. (status, body)"""
    headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, str(emulator.url).rstrip("/") + path, json=json, headers=headers, params=params) as answer,
    ):
        return answer.status, await answer.json(content_type=None)
