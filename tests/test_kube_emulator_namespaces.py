"""A namespace's life as the API server and the namespace controller lead it, as documented.

"Namespaces" and the Namespace API reference: a namespace is created ``Active`` with the ``kubernetes`` finalizer in
``spec.finalizers``; deleting it makes it ``Terminating`` (``deletionTimestamp`` set, ``status.phase``), and the
namespace controller deletes everything in it (in the background, as ``DeleteCollection`` with background
propagation), waits for what finalizers hold, then removes ``kubernetes`` from ``spec.finalizers`` (the ``finalize``
subresource) and the namespace goes. The NamespaceLifecycle admission plugin refuses to create anything in a
terminating namespace: 403 ``Forbidden``, "unable to create new content in namespace NAME because it is being
terminated", with the cause ``NamespaceTerminating`` on ``metadata.namespace``; updates and deletions pass. In a
namespace that does not exist, a creation is 404 NotFound.
"""

from __future__ import annotations

import json

import aiohttp
import pytest

from livestrat.kube_emulator.emulator import ADMIN_HEADERS, NAMESPACES
from tests.support.kube import wait_for

CONFIGMAPS = "v1/configmaps"


def _namespace(emulator) -> dict | None:
    return emulator.read_object(NAMESPACES, "team")


def _configmap(emulator, name: str) -> dict | None:
    return emulator.read_object(CONFIGMAPS, name, namespace="team")


async def _request(emulator, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    content_type = "application/merge-patch+json" if method == "PATCH" else "application/json"
    async with (
        aiohttp.ClientSession(headers=ADMIN_HEADERS) as session,
        session.request(
            method,
            f"{emulator.url}{path}",
            data=None if body is None else json.dumps(body),
            headers={"Content-Type": content_type},
        ) as response,
    ):
        return response.status, json.loads(await response.text())


def test_a_namespace_is_created_active_with_the_kubernetes_finalizer(emulator):
    created = emulator.add_namespace("team")
    assert created["status"] == {"phase": "Active"}
    assert created["spec"]["finalizers"] == ["kubernetes"]


async def test_a_deleted_namespace_terminates_its_content_goes_later_and_it_goes_once_nothing_is_left(emulator):
    emulator.add_namespace("team")
    emulator.create_object(CONFIGMAPS, {"metadata": {"name": "plain"}}, namespace="team")
    emulator.create_object(CONFIGMAPS, {"metadata": {"name": "held", "finalizers": ["x/hold"]}}, namespace="team")

    status, answer = await _request(emulator, "DELETE", "/api/v1/namespaces/team")
    assert status == 200
    assert answer["status"]["phase"] == "Terminating" and answer["metadata"]["deletionTimestamp"]
    assert _namespace(emulator)["spec"]["finalizers"] == ["kubernetes"]
    assert _configmap(emulator, "plain") is not None  # the controller has not come round yet

    await wait_for(lambda: _configmap(emulator, "plain") is None)
    assert _configmap(emulator, "held")["metadata"]["deletionTimestamp"]  # deleted, held by its finalizer
    emulator.namespace_controller.drain()  # all the controller would do
    assert _namespace(emulator)["status"]["phase"] == "Terminating"  # content remains: it waits

    emulator.patch_object(CONFIGMAPS, "held", {"metadata": {"finalizers": None}}, namespace="team")
    await wait_for(lambda: _namespace(emulator) is None)


async def test_nothing_new_is_created_in_a_terminating_namespace_but_what_is_there_can_be_changed(emulator):
    emulator.add_namespace("team")
    emulator.create_object(CONFIGMAPS, {"metadata": {"name": "held", "finalizers": ["x/hold"]}}, namespace="team")
    with emulator.namespace_controller.paused():
        await _request(emulator, "DELETE", "/api/v1/namespaces/team")
        status, answer = await _request(
            emulator, "POST", "/api/v1/namespaces/team/configmaps", {"metadata": {"name": "new"}}
        )
        assert status == 403
        assert answer["reason"] == "Forbidden"
        assert answer["message"] == (
            'configmaps "new" is forbidden: unable to create new content in namespace team because it is being '
            "terminated"
        )
        assert answer["details"]["causes"] == [
            {
                "reason": "NamespaceTerminating",
                "message": "namespace team is being terminated",
                "field": "metadata.namespace",
            }
        ]
        status, _ = await _request(
            emulator, "POST", "/api/v1/namespaces/team/events", {"metadata": {"name": "e"}, "involvedObject": {}}
        )
        assert status == 403  # Events too

        status, _ = await _request(emulator, "PATCH", "/api/v1/namespaces/team/configmaps/held", {"data": {"k": "v"}})
        assert status == 200
    await wait_for(lambda: _configmap(emulator, "held")["metadata"].get("deletionTimestamp"))


async def test_a_creation_in_a_namespace_that_does_not_exist_is_not_found(emulator):
    status, answer = await _request(
        emulator, "POST", "/api/v1/namespaces/nowhere/configmaps", {"metadata": {"name": "c"}}
    )
    assert (status, answer["reason"], answer["message"]) == (404, "NotFound", 'namespaces "nowhere" not found')


async def test_spec_finalizers_change_only_through_the_finalize_subresource(emulator):
    emulator.add_namespace("team")
    status, answer = await _request(emulator, "PATCH", "/api/v1/namespaces/team", {"spec": {"finalizers": []}})
    assert answer["spec"]["finalizers"] == ["kubernetes"]  # ignored on the main endpoint
    body = _namespace(emulator)
    body["spec"]["finalizers"] = []
    status, answer = await _request(emulator, "PUT", "/api/v1/namespaces/team/finalize", body)
    assert status == 200 and answer["spec"].get("finalizers", []) == []


@pytest.mark.parametrize("finalizers", [["x/hold"], []])
async def test_a_namespace_without_the_kubernetes_finalizer_goes_when_its_other_finalizers_do(emulator, finalizers):
    emulator.add_namespace("team")
    body = _namespace(emulator)
    body["spec"]["finalizers"] = []
    await _request(emulator, "PUT", "/api/v1/namespaces/team/finalize", body)
    emulator.patch_object(NAMESPACES, "team", {"metadata": {"finalizers": finalizers or None}})
    await _request(emulator, "DELETE", "/api/v1/namespaces/team")
    if finalizers:
        assert _namespace(emulator)["status"]["phase"] == "Terminating"
        emulator.patch_object(NAMESPACES, "team", {"metadata": {"finalizers": None}})
    assert _namespace(emulator) is None


async def test_a_namespace_deletes_its_pods_first_and_the_rest_once_they_are_gone(emulator):
    # OrderedNamespaceDeletion (on by default from Kubernetes 1.33): "the pods resources is going to be deleted
    # before the rest of resources"; the conformance test "namespace deletion should delete pod first" holds a pod
    # with a finalizer and finds a ConfigMap of the namespace not yet being deleted.
    emulator.add_namespace("team")
    pod = {"metadata": {"name": "p", "finalizers": ["x/hold"]}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    emulator.create_object("v1/pods", pod, namespace="team")
    emulator.create_object(CONFIGMAPS, {"metadata": {"name": "plain"}}, namespace="team")
    await _request(emulator, "DELETE", "/api/v1/namespaces/team")
    await wait_for(lambda: emulator.read_object("v1/pods", "p", namespace="team")["metadata"].get("deletionTimestamp"))
    emulator.namespace_controller.drain()
    assert "deletionTimestamp" not in _configmap(emulator, "plain")["metadata"]

    emulator.patch_object("v1/pods", "p", {"metadata": {"finalizers": None}}, namespace="team")
    await wait_for(lambda: _namespace(emulator) is None)


async def test_before_kubernetes_1_33_a_namespace_deletes_everything_at_once(emulator):
    emulator.ordered_namespace_deletion = False
    emulator.add_namespace("team")
    pod = {"metadata": {"name": "p", "finalizers": ["x/hold"]}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    emulator.create_object("v1/pods", pod, namespace="team")
    emulator.create_object(CONFIGMAPS, {"metadata": {"name": "plain"}}, namespace="team")
    await _request(emulator, "DELETE", "/api/v1/namespaces/team")
    await wait_for(lambda: _configmap(emulator, "plain") is None)
    assert emulator.read_object("v1/pods", "p", namespace="team")["metadata"]["deletionTimestamp"]
