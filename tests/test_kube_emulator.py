"""The emulator keeps the API semantics the operator and the runtime rely on."""

from __future__ import annotations

import kubernetes_asyncio
import pytest
from kubernetes_asyncio.client import CustomObjectsApi

from tests.support.kube import LIVESTRATEGIES

MANIFEST = {
    "apiVersion": "livestrat.io/v1alpha1",
    "kind": "LiveStrategy",
    "metadata": {"name": "s1", "namespace": "default"},
    "spec": {"replicas": 1},
}


@pytest.fixture
async def api(kubeconfig_path):
    await kubernetes_asyncio.config.load_kube_config(config_file=str(kubeconfig_path))
    async with kubernetes_asyncio.client.ApiClient() as client:
        yield CustomObjectsApi(client)


async def test_status_subresource_generation_and_scale(emulator, api):
    created = await api.create_namespaced_custom_object(
        "livestrat.io", "v1alpha1", "default", "livestrategies", MANIFEST
    )
    assert created["metadata"]["generation"] == 1

    patched = await api.patch_namespaced_custom_object_status(
        "livestrat.io",
        "v1alpha1",
        "default",
        "livestrategies",
        "s1",
        {"status": {"trading": {"fills": 3}}, "spec": {"replicas": 0}},
        _content_type="application/merge-patch+json",
    )
    # /status changes only .status and never bumps the generation
    assert patched["status"]["trading"]["fills"] == 3
    assert patched["spec"]["replicas"] == 1
    assert patched["metadata"]["generation"] == 1

    scale = await api.patch_namespaced_custom_object_scale(
        "livestrat.io",
        "v1alpha1",
        "default",
        "livestrategies",
        "s1",
        {"spec": {"replicas": 0}},
        _content_type="application/merge-patch+json",
    )
    assert scale["spec"]["replicas"] == 0
    stored = emulator.read_object(LIVESTRATEGIES, "s1", namespace="default")
    assert stored["spec"]["replicas"] == 0
    assert stored["metadata"]["generation"] == 2


async def test_writes_are_counted(emulator, api):
    before = len(emulator.writes())
    await api.create_namespaced_custom_object("livestrat.io", "v1alpha1", "default", "livestrategies", MANIFEST)
    await api.get_namespaced_custom_object("livestrat.io", "v1alpha1", "default", "livestrategies", "s1")
    assert len(emulator.writes()) == before + 1
