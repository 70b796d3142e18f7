"""The operator's own Kubernetes API calls (kopf does the watching and its own bookkeeping).

A thin layer over kubernetes_asyncio's ``ApiClient.call_api``: JSON in, JSON out, merge patches
only (``application/merge-patch+json``: the same semantics for built-in and custom
resources, unlike strategic merge), every request counted in the operator's metrics, every
failure an :class:`ApiError` with the status code. Credentials: the pod's service account
in a cluster, else the kubeconfig named by ``$KUBECONFIG`` (read when the client is made).

Why not kubernetes_asyncio's generated APIs (``CoreV1Api``, ``AppsV1Api``, ``CustomObjectsApi``
with ``_content_type``): they would work, but

- the operator handles nine kinds by kind name (children built as plain manifests, compared
  with what kopf's watch caches hold, which are plain dicts too); the generated APIs are five
  classes with a method per kind and verb, and return model objects that must be turned back
  into dicts (``sanitize_for_serialization``) before they can be compared with anything;
- a generated call reads the response with ``_preload_content=True``, and then
  ``kubernetes_asyncio.client.rest`` logs the whole response body at DEBUG: a ``read_namespaced_secret``
  would write the Secret's values into the operator's log. Here every body is read by this
  module and never logged (the operator also pins that logger to WARNING: ``main.configure_logging``);
- one place counts every request by verb, resource and response code
  (``livestrat_operator_api_requests_total``), which is what the chart's RBAC is measured from.

What this module adds over ``call_api`` is the path of a kind (from the operator's one kind
table, :mod:`strategy_operator.kinds`), the content type, and the error; nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from livestrat.api.contract import MERGE_PATCH
from livestrat.kube_config import client_configuration
from strategy_operator.kinds import KINDS
from strategy_operator.metrics import OperatorMetrics

USER_AGENT = "livestrat-operator/0.1.0"
REQUEST_TIMEOUT = 30.0


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


def path(kind: str, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
    found = KINDS[kind]
    scope = f"/namespaces/{namespace}" if found.namespaced else ""  # cluster-scoped: no namespace
    url = f"{found.prefix}{scope}/{found.plural}"
    if name is not None:
        url += f"/{name}"
    if subresource is not None:
        url += f"/{subresource}"
    return url


class KubeClient:
    def __init__(self, api_client: client.ApiClient, metrics: OperatorMetrics) -> None:
        self._api = api_client
        self._metrics = metrics

    @classmethod
    async def connect(cls, metrics: OperatorMetrics, pool_size: int = 32) -> KubeClient:
        configuration = await client_configuration()
        configuration.connection_pool_maxsize = pool_size
        api_client = client.ApiClient(configuration)
        api_client.user_agent = USER_AGENT
        return cls(api_client, metrics)

    async def close(self) -> None:
        await self._api.close()

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        content_type: str | None = None,
        query: Mapping[str, str] | None = None,
        resource: str = "",
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        elif body is not None:
            headers["Content-Type"] = "application/json"
        verb = _verb(method)
        try:
            response = await self._api.call_api(
                url,
                method,
                query_params=list((query or {}).items()),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        except ApiException as exc:
            self._metrics.api_requests.labels(verb, resource, str(exc.status)).inc()
            raise _api_error(exc.status, exc.reason, exc.body) from None
        except Exception:
            self._metrics.api_requests.labels(verb, resource, "error").inc()
            raise
        async with response:
            text = await response.text()
            self._metrics.api_requests.labels(verb, resource, str(response.status)).inc()
            if response.status >= 400:
                raise _api_error(response.status, response.reason or "", text)
        return json.loads(text) if text else {}

    # ---------------------------------------------------------------------------------------- verbs

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self.request("GET", path(kind, namespace, name), resource=KINDS[kind].plural)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def list(self, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        found = await self.request(
            "GET", path(kind, namespace), query={"labelSelector": label_selector}, resource=KINDS[kind].plural
        )
        return list(found.get("items") or [])

    async def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        kind, namespace = manifest["kind"], manifest["metadata"]["namespace"]
        return await self.request("POST", path(kind, namespace), body=dict(manifest), resource=KINDS[kind].plural)

    async def patch(
        self, kind: str, namespace: str, name: str, patch: Mapping[str, Any], subresource: str | None = None
    ) -> dict[str, Any]:
        resource = KINDS[kind].plural + (f"/{subresource}" if subresource else "")
        return await self.request(
            "PATCH",
            path(kind, namespace, name, subresource),
            body=dict(patch),
            content_type=MERGE_PATCH,
            resource=resource,
        )

    async def delete(self, kind: str, namespace: str, name: str, *, uid: str | None = None) -> None:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            await self.request("DELETE", path(kind, namespace, name), body=body, resource=KINDS[kind].plural)
        except ApiError as exc:
            if exc.status not in (404, 409):  # gone already, or another object by that name now
                raise


def _verb(method: str) -> str:
    return {"GET": "get", "POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}.get(method, method)


def _api_error(status: int, reason: str | None, body: Any) -> ApiError:
    message = ""
    try:
        message = str(json.loads(body).get("message", ""))
    except Exception:
        message = str(body or "")[:300]
    return ApiError(int(status or 0), str(reason or ""), message[:1000])
