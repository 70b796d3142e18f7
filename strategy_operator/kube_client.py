"""The operator's own Kubernetes API calls (kopf does the watching and its own bookkeeping).

A thin layer over an aiohttp session made from kopf's own login (:func:`login`: the pod's service
account in a cluster, else the kubeconfig named by ``$KUBECONFIG``, read by kopf's own parsers): JSON
in, JSON out, merge patches only (``application/merge-patch+json``: the same semantics for built-in
and custom resources, unlike strategic merge), every request counted in the operator's metrics, every
failure an :class:`ApiError` with the status code. A 401 logs in again (a service account's token is
rotated by the kubelet) and retries once, with the same connection pool (requests in flight on it are not
failed by the new login).

Why not a Kubernetes client library (kubernetes_asyncio, which this module used before):

- importing it costs 80 MiB: its package imports every generated model and API class, and kopf
  imports its models too whenever it is installed (to recognise them as objects; the operator hands
  kopf plain dicts only). Without it the idle operator takes 41 MiB instead of 98 MiB
  (docs/performance.md, "Operator"); ``livestrat operator`` even keeps kopf from importing it where
  it is installed for the runtime (:mod:`strategy_operator.client_libraries`);
- the operator handles nine kinds by kind name (children built as plain manifests, compared
  with what kopf's watch caches hold, which are plain dicts too); the generated APIs are five
  classes with a method per kind and verb, and return model objects;
- its generated calls log whole response bodies at DEBUG (a Secret's values among them). Here every
  body is read by this module and never logged (the operator also pins the HTTP clients' loggers to
  WARNING: ``main.configure_logging``);
- one place counts every request by verb, resource and response code
  (``livestrat_operator_api_requests_total``), which is what the chart's RBAC is measured from.

What this module adds over aiohttp is the path of a kind (from the operator's one kind table,
:mod:`strategy_operator.kinds`), the content type, the credentials, and the error; nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import kopf

from livestrat.api.contract import MERGE_PATCH
from strategy_operator.kinds import KINDS
from strategy_operator.metrics import OperatorMetrics

USER_AGENT = "livestrat-operator/0.1.0"
REQUEST_TIMEOUT = 30.0


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str, causes: tuple[str, ...] = ()) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.causes = causes  # the reasons of the Status's details.causes (NamespaceTerminating, FieldValueInvalid)

    @property
    def namespace_terminating(self) -> bool:
        """A creation refused because the namespace is being deleted (NamespaceLifecycle): nothing is created
        there any more, and the strategies in it are on their way out."""
        return self.status == 403 and "NamespaceTerminating" in self.causes


def path(kind: str, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
    found = KINDS[kind]
    scope = f"/namespaces/{namespace}" if found.namespaced else ""  # cluster-scoped: no namespace
    url = f"{found.prefix}{scope}/{found.plural}"
    if name is not None:
        url += f"/{name}"
    if subresource is not None:
        url += f"/{subresource}"
    return url


Login = Callable[[], kopf.ConnectionInfo]


def login(settings: kopf.OperatorSettings) -> kopf.ConnectionInfo:
    """The credentials kopf logs in with: in a pod its service account, elsewhere ``$KUBECONFIG`` (read now) or
    ``~/.kube/config``."""
    found = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(settings=settings)
    if found is None:
        raise kopf.LoginError("no service account token and no kubeconfig: cannot reach the Kubernetes API")
    return found


class KubeClient:
    def __init__(self, login: Login, metrics: OperatorMetrics, pool_size: int = 32) -> None:
        self._login = login
        self._metrics = metrics
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None
        self._server = ""
        self._credentials: dict[str, str] = {}

    @classmethod
    async def connect(cls, metrics: OperatorMetrics, login: Login, pool_size: int = 32) -> KubeClient:
        kube = cls(login, metrics, pool_size)
        await kube._open()
        return kube

    async def _open(self) -> None:
        info = self._login()
        self._server = info.server.rstrip("/")
        self._credentials = info.as_http_headers()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self._pool_size, ssl=False if info.insecure else info.as_ssl_context()
            ),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
            proxy=info.proxy_url,
            trust_env=info.trust_env,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

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
        headers: dict[str, str] = {}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        data = json.dumps(body) if body is not None else None
        verb = _verb(method)
        for attempt in (1, 2):
            assert self._session is not None, "connect() first"
            try:
                async with self._session.request(
                    method, self._server + url, params=query, data=data, headers={**self._credentials, **headers}
                ) as response:
                    text = await response.text()
                    status, reason = response.status, response.reason
            except Exception:
                self._metrics.api_requests.labels(verb, resource, "error").inc()
                raise
            self._metrics.api_requests.labels(verb, resource, str(status)).inc()
            if status == 401 and attempt == 1:
                # A rotated token: log in again, once, and take the new credentials for this request and the next
                # ones. The connection pool is kept: closing it would fail every request in flight on it.
                self._credentials = self._login().as_http_headers()
                continue
            if status >= 400:
                raise _api_error(status, reason or "", text)
            return json.loads(text) if text else {}
        raise AssertionError("unreachable")

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
    causes: tuple[str, ...] = ()
    try:
        parsed = json.loads(body)
        message = str(parsed.get("message", ""))
        found = (parsed.get("details") or {}).get("causes") or []
        causes = tuple(str(c.get("reason")) for c in found if isinstance(c, dict) and c.get("reason"))
    except Exception:
        message = str(body or "")[:300]
    return ApiError(int(status or 0), str(reason or ""), message[:1000], causes)
