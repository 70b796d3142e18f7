"""The desk's way to the Kubernetes API: the user's kubeconfig, the user's credentials, the user's RBAC.

Which client: the one the runtime already uses to push its status (kubernetes_asyncio, configured by
:mod:`livestrat.kube_config`), not the operator's (``strategy_operator.kube_client`` logs in through kopf, which
``livestrat`` never imports, and kopf's kubeconfig reader knows neither ``--context`` nor the ``exec`` credential
plugins a user's kubeconfig often names: ``gke-gcloud-auth-plugin``, ``aws eks get-token``, ``kubelogin``).
kubernetes_asyncio reads a kubeconfig as kubectl does: ``$KUBECONFIG`` (a list of files, merged), else
``~/.kube/config``, any context, tokens, client certificates, exec plugins.

Every request goes through :meth:`Cluster.request`, JSON in and JSON out as plain dicts (the object as the API
server sends it, so a report writes exactly that): the generated model classes are not used, and the library's
loggers, which write response bodies at DEBUG, are held at WARNING (a Secret's values never pass here anyway:
the desk never reads Secrets). Writes are JSON merge patches (:data:`livestrat.api.contract.MERGE_PATCH`), as
everywhere in the project.

Failures are :class:`DeskError` with a message the user can act on: a 403 names the verb, the resource and the
chart role that grants it (:mod:`livestrat.desk.roles`); a 404 names the strategy and its namespace; a missing
kubeconfig says where it was looked for.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from livestrat.api import budget_resource
from livestrat.api.contract import MERGE_PATCH
from livestrat.api.resource import GROUP, KIND, PLURAL, VERSION
from livestrat.desk import roles

STRATEGIES = f"/apis/{GROUP}/{VERSION}"
REQUEST_TIMEOUT = 30.0
USER_AGENT = "kubectl-livestrat/0.1.0"
# A watch the API server ends is started again from where it was; one it refuses (410 Gone: too old) is relisted.
WATCH_SECONDS = 300


class DeskError(Exception):
    """What went wrong, in words the user can act on (printed as it is, without a traceback)."""


class NotFound(DeskError):
    pass


class Forbidden(DeskError):
    """A 403: the message names the right and the chart's role; ``refusal`` holds them for a one-line note."""

    def __init__(self, message: str, refusal: roles.Refusal | None = None) -> None:
        super().__init__(message)
        self.refusal = refusal


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the API (``/api/v1`` or ``/apis/GROUP/VERSION``) and its plural."""

    prefix: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        return "" if self.prefix == "/api/v1" else self.prefix.split("/")[2]

    def path(self, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
        scope = f"/namespaces/{namespace}" if self.namespaced and namespace else ""
        return f"{self.prefix}{scope}/{self.plural}" + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")


LIVESTRATEGIES = Resource(STRATEGIES, PLURAL)
RISKBUDGETS = Resource(STRATEGIES, budget_resource.PLURAL)
EVENTS = Resource("/api/v1", "events")
PODS = Resource("/api/v1", "pods")
CONFIGMAPS = Resource("/api/v1", "configmaps")
SERVICES = Resource("/api/v1", "services")
NAMESPACES = Resource("/api/v1", "namespaces", namespaced=False)
STATEFULSETS = Resource("/apis/apps/v1", "statefulsets")
PDBS = Resource("/apis/policy/v1", "poddisruptionbudgets")


def kubeconfig_paths(explicit: str | None, environ: Mapping[str, str]) -> str:
    """The kubeconfig file(s) kubectl would read: ``--kubeconfig``, else ``$KUBECONFIG`` (a list), else
    ``~/.kube/config``."""
    return explicit or environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")


class Cluster:
    """One user's session with one cluster (one kubeconfig context)."""

    def __init__(self, api: Any, namespace: str, context: str, user: str, verb: str | None = None) -> None:
        self._api = api  # kubernetes_asyncio.client.ApiClient
        self.namespace = namespace  # the context's namespace (or --namespace): where a NAME is looked for
        self.context = context
        self.user = user  # the kubeconfig user's name, for messages
        self.verb = verb  # the plugin's verb this session runs: a 403 names that verb's role (roles.VERB_ROLES)

    @classmethod
    async def connect(
        cls,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        namespace: str | None = None,
        environ: Mapping[str, str] = os.environ,
        verb: str | None = None,
    ) -> Cluster:
        from kubernetes_asyncio import client, config

        for name in ("kubernetes_asyncio", "aiohttp.client"):  # never a response body in a log
            logging.getLogger(name).setLevel(logging.WARNING)
        paths = kubeconfig_paths(kubeconfig, environ)
        if not any(os.path.exists(os.path.expanduser(p)) for p in paths.split(os.pathsep) if p):
            raise DeskError(
                f"no kubeconfig at {paths}: point --kubeconfig or $KUBECONFIG at one (the file `kubectl` uses; "
                "`kubectl config view` shows it), or create one for your cluster (for GKE: `gcloud container "
                "clusters get-credentials CLUSTER`)"
            )
        configuration = client.Configuration()
        try:
            loader = await config.load_kube_config(
                config_file=paths, context=context, client_configuration=configuration, persist_config=False
            )
        except config.ConfigException as exc:
            raise DeskError(f"the kubeconfig {paths} cannot be used: {exc}") from None
        current = _plain(loader.current_context)  # {"name": ..., "context": {"cluster", "user", "namespace"}}
        details = _plain(current.get("context"))
        api = client.ApiClient(configuration)
        api.user_agent = USER_AGENT
        return cls(
            api,
            namespace=namespace or details.get("namespace") or "default",
            context=str(current.get("name") or ""),
            user=str(details.get("user") or ""),
            verb=verb,
        )

    async def close(self) -> None:
        await self._api.close()

    async def __aenter__(self) -> Cluster:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------------------------------- requests

    async def _send(
        self, method: str, path: str, query: Mapping[str, Any] | None, body: Any, content_type: str | None
    ) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        return await self._api.call_api(
            path,
            method,
            query_params=[(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (query or {}).items()],
            header_params=headers,
            body=body,  # JSON-encoded by the library for any JSON content type (merge-patch+json included)
            auth_settings=["BearerToken"],
            _preload_content=False,  # the raw response: read here, never logged by the library
            _request_timeout=REQUEST_TIMEOUT,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        what: str = "",
    ) -> dict[str, Any]:
        """One request; the answer as a dict. ``what`` names the object for a 404's message."""
        response = await self._send(method, path, query, body, content_type)
        try:
            text = (await response.read()).decode("utf-8", errors="replace")
        finally:
            response.release()
        if response.status >= 400:
            raise self._error(method, path, response.status, text, what)
        return json.loads(text) if text else {}

    def _error(self, method: str, path: str, status: int, text: str, what: str) -> DeskError:
        try:
            message = str(json.loads(text).get("message") or "")
        except (ValueError, AttributeError):
            message = text[:300]
        if status == 403:
            advice = roles.forbidden_advice(method, path, message, self.context, self.verb)
            return Forbidden(advice, roles.refusal(method, path, self.verb))
        if status == 404:
            return NotFound(f"{what or path} not found ({message})" if what else f"{path}: not found ({message})")
        if status == 401:
            return DeskError(
                f"the API server did not accept the credentials of context {self.context!r} (401 {message}): log in "
                "again (a token may have expired) and check with `kubectl auth whoami`"
            )
        return DeskError(f"{method} {path}: the API server answered {status}: {message}")

    # ------------------------------------------------------------------------------------------- strategies

    def strategy_label(self, namespace: str, name: str) -> str:
        return f"LiveStrategy {name!r} in namespace {namespace!r}"

    async def list_strategies(self, namespace: str | None) -> list[dict[str, Any]]:
        """Every LiveStrategy of ``namespace`` (None: of all namespaces), as stored."""
        found = await self.request("GET", LIVESTRATEGIES.path(namespace))
        return [_with_kind(item) for item in found.get("items") or []]

    async def get_strategy(self, namespace: str, name: str) -> dict[str, Any]:
        return _with_kind(
            await self.request(
                "GET",
                LIVESTRATEGIES.path(namespace, name),
                what=f"{self.strategy_label(namespace, name)} (`kubectl get lstrat -n {namespace}` lists them)",
            )
        )

    async def patch_strategy(self, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        return _with_kind(
            await self.request(
                "PATCH",
                LIVESTRATEGIES.path(namespace, name),
                body=dict(patch),
                content_type=MERGE_PATCH,
                what=self.strategy_label(namespace, name),
            )
        )

    async def create_strategy(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return _with_kind(
            await self.request(
                "POST",
                LIVESTRATEGIES.path(namespace),
                body=dict(body),
                what=f"namespace {namespace!r}",
            )
        )

    async def whoami(self) -> str:
        """The user the API server authenticates this session as (``kubectl auth whoami``: a SelfSubjectReview)."""
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        found = await self.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body=review)
        username = ((found.get("status") or {}).get("userInfo") or {}).get("username")
        if not username:
            raise DeskError("the API server's SelfSubjectReview named no user: see what `kubectl auth whoami` says")
        return str(username)

    async def scale_strategy(self, namespace: str, name: str, replicas: int) -> dict[str, Any]:
        """``kubectl scale livestrategy/NAME --replicas=N``: the scale subresource; the Scale it answers."""
        return await self.request(
            "PATCH",
            LIVESTRATEGIES.path(namespace, name, "scale"),
            body={"spec": {"replicas": replicas}},
            content_type=MERGE_PATCH,
            what=self.strategy_label(namespace, name),
        )

    async def watch_strategies(self, namespace: str | None) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(type, object) for every LiveStrategy now and every change after, for ever (:meth:`watch`)."""
        async for event in self.watch(LIVESTRATEGIES, namespace, KIND):
            yield event

    async def watch(
        self, resource: Resource, namespace: str | None, kind: str
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(type, object) for every object of ``resource`` now (``ADDED``) and every change after (``ADDED``,
        ``MODIFIED``, ``DELETED``), for ever. A watch the server ends is resumed from its last resourceVersion; one it
        refuses as too old (410 Gone: the history of a gap is compacted) starts over with a list, as the API
        documentation asks ("Efficient detection of changes"): its objects come again (``MODIFIED`` if known, ``ADDED``
        if new) and those that vanished during the gap, of which no event will ever come, as ``DELETED``."""
        known: dict[str, dict[str, Any]] = {}
        path = resource.path(namespace)
        while True:
            listed = await self.request("GET", path)
            now = {_key(item): _with_kind(item, kind) for item in listed.get("items") or []}
            for key in [k for k in known if k not in now]:
                yield "DELETED", known.pop(key)
            for key, item in now.items():
                yield ("MODIFIED" if key in known else "ADDED"), item
                known[key] = item
            version = (listed.get("metadata") or {}).get("resourceVersion") or ""
            while version:
                query = {"watch": True, "resourceVersion": version, "timeoutSeconds": WATCH_SECONDS}
                response = await self._send("GET", path, query, None, None)
                try:
                    if response.status == 410:  # the version is too old already: list again
                        version = ""
                        continue
                    if response.status >= 400:
                        text = (await response.read()).decode("utf-8", errors="replace")
                        raise self._error("GET", path + "?watch=1", response.status, text, "")
                    async for line in response.content:
                        if not line.strip():
                            continue
                        event = json.loads(line)
                        type_, obj = event.get("type"), event.get("object") or {}
                        if type_ == "ERROR":
                            version = "" if obj.get("code") == 410 else version
                            break
                        version = (obj.get("metadata") or {}).get("resourceVersion") or version
                        if type_ in ("ADDED", "MODIFIED"):
                            known[_key(obj)] = _with_kind(obj, kind)
                            yield type_, known[_key(obj)]
                        elif type_ == "DELETED":
                            known.pop(_key(obj), None)
                            yield type_, _with_kind(obj, kind)
                finally:
                    response.release()

    # ------------------------------------------------------------------------------------------- budgets

    async def list_budgets(self, namespace: str | None) -> list[dict[str, Any]]:
        """Every RiskBudget of ``namespace`` (None: of all namespaces), as stored."""
        found = await self.request("GET", RISKBUDGETS.path(namespace))
        return [_with_kind(item, budget_resource.KIND) for item in found.get("items") or []]

    async def get_budget(self, namespace: str, name: str) -> dict[str, Any]:
        what = f"RiskBudget {name!r} in namespace {namespace!r} (`kubectl livestrat budgets -n {namespace}` lists them)"
        return _with_kind(await self.request("GET", RISKBUDGETS.path(namespace, name), what=what), budget_resource.KIND)

    async def watch_budgets(self, namespace: str | None) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(type, object) for every RiskBudget now and every change after, for ever (:meth:`watch`)."""
        async for event in self.watch(RISKBUDGETS, namespace, budget_resource.KIND):
            yield event

    # ------------------------------------------------------------------------------------------- around it

    async def get_namespace(self, name: str) -> dict[str, Any]:
        return await self.request("GET", NAMESPACES.path(None, name), what=f"namespace {name!r}")

    async def patch_namespace(self, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request(
            "PATCH", NAMESPACES.path(None, name), body=dict(patch), content_type=MERGE_PATCH, what=f"namespace {name!r}"
        )

    async def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        """One object, or None when there is none by that name."""
        try:
            return await self.request("GET", resource.path(namespace, name))
        except NotFound:
            return None

    async def events_for(self, namespace: str, name: str, kind: str = KIND) -> list[dict[str, Any]]:
        """The Events about one object, oldest first (by the time they last happened)."""
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        found = await self.request("GET", EVENTS.path(namespace), query={"fieldSelector": selector})
        items = [e for e in found.get("items") or [] if (e.get("involvedObject") or {}).get("name") == name]
        return sorted(items, key=_event_time)

    async def pod_log(
        self,
        namespace: str,
        pod: str,
        *,
        container: str | None = None,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        limit_bytes: int | None = None,
        previous: bool = False,
    ) -> str:
        """``GET pods/NAME/log``: the container's log (its previous instance's with ``previous``)."""
        response = await self._send("GET", PODS.path(namespace, pod, "log"), _log_query(**locals()), None, None)
        try:
            raw = await response.read()
        finally:
            response.release()
        text = raw.decode("utf-8", errors="replace")
        if response.status >= 400:
            raise self._error("GET", PODS.path(namespace, pod, "log"), response.status, text, f"the log of pod {pod!r}")
        return text

    async def follow_log(
        self,
        namespace: str,
        pod: str,
        *,
        container: str | None = None,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
    ) -> AsyncIterator[str]:
        """``GET pods/NAME/log?follow=true``: the log's lines as they are written, until the container ends."""
        query = _log_query(container=container, tail_lines=tail_lines, since_seconds=since_seconds) | {"follow": True}
        response = await self._send("GET", PODS.path(namespace, pod, "log"), query, None, None)
        try:
            if response.status >= 400:
                text = (await response.read()).decode("utf-8", errors="replace")
                raise self._error("GET", PODS.path(namespace, pod, "log"), response.status, text, f"pod {pod!r}")
            async for line in response.content:
                yield line.decode("utf-8", errors="replace")
        finally:
            response.release()


def _plain(node: Any) -> dict[str, Any]:
    """A part of a kubeconfig as a dict (kubernetes_asyncio wraps them in ConfigNode, whose ``value`` is the dict)."""
    value = getattr(node, "value", node)
    return value if isinstance(value, dict) else {}


def _log_query(
    *,
    container: str | None = None,
    tail_lines: int | None = None,
    since_seconds: int | None = None,
    limit_bytes: int | None = None,
    previous: bool = False,
    **_: Any,
) -> dict[str, Any]:
    query: dict[str, Any] = {}
    for key, value in (
        ("container", container),
        ("tailLines", tail_lines),
        ("sinceSeconds", since_seconds),
        ("limitBytes", limit_bytes),
    ):
        if value is not None:
            query[key] = value
    if previous:
        query["previous"] = True
    return query


def _event_time(event: Mapping[str, Any]) -> str:
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def _key(body: Mapping[str, Any]) -> str:
    meta = body.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _with_kind(body: dict[str, Any], kind: str = KIND) -> dict[str, Any]:
    """Items of a list carry no apiVersion/kind; a report or ``-o yaml`` should show them as ``kubectl get`` does."""
    body.setdefault("apiVersion", f"{GROUP}/{VERSION}")
    body.setdefault("kind", kind)
    return body
