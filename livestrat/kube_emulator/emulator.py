"""
A Kubernetes API emulator for operator tests, built on ``kmock.KubernetesEmulator`` (kmock 0.8).

kmock's own emulator is a JSON store: no ``resourceVersion``/``generation``/``uid``,
``/status`` patches merge into the whole object, no scale subresource, no PUT,
JSON-patch ``test`` ops on ``metadata.resourceVersion`` fail with HTTP 500 (so kopf
cannot even add its finalizer), every watch replays all objects, and
``GET /api/v1/namespaces`` answers 500 (its path parser). This subclass keeps kmock's
public surface (``emu.objects``, ``emu.resources``, request recording and the
``emu[criteria] << payload`` DSL, the discovery endpoints) and replaces the storage
semantics with those of a real API server, as far as an operator can observe them:

* ``metadata.uid``, ``creationTimestamp``, ``namespace``, ``generateName``, 409 on duplicates;
* a cluster-wide monotonic ``resourceVersion`` (bumped only on real changes, as etcd does);
  lists carry the collection's resourceVersion; optimistic concurrency (409/422);
* ``metadata.generation``: 1 on creation, +1 on any change outside ``metadata`` (and
  outside ``status`` when the status subresource is on), and when deletion starts;
* the status subresource: ``PATCH``/``PUT .../status`` change only ``.status``;
  the main endpoint ignores ``.status`` (also on create);
* the scale subresource (``autoscaling/v1`` Scale) from CRD ``specReplicasPath`` /
  ``statusReplicasPath`` / ``labelSelectorPath``, and for ``apps/v1`` workloads; like
  apiextensions, it answers 500 for an object whose replicas or selector field has another type
  (or sits under something that is not an object): such an object cannot be scaled;
* merge-patch (RFC 7386), JSON-patch (RFC 6902, incl. ``test``), PUT; strategic merge
  patch is 415 for custom resources (as in Kubernetes) and a plain merge for builtins;
* deletion with finalizers (``deletionTimestamp``; removing the last finalizer deletes),
  no new finalizers during deletion, ``ownerReferences`` garbage collection, asynchronous as Kubernetes'
  garbage collector (garbage_collector.py: the owner of a background deletion is gone at once and its
  dependents later, foreground and orphan through their finalizers ``foregroundDeletion`` and ``orphan``,
  dependents of an owner uid that does not exist collected, an owner recreated under the same name
  inheriting nothing);
* a namespace's life (namespace_controller.py): created ``Active`` with the ``kubernetes`` finalizer, ``Terminating``
  when deleted while the namespace controller deletes its content, later, and gone once nothing is left;
  NamespaceLifecycle's 403 for any creation in a terminating namespace (Events too), 404 in one that does not exist;
* watches that honour ``resourceVersion`` (no replay on reconnection; 410 Gone when
  the history is exhausted), ``labelSelector``/``fieldSelector`` (with the
  ADDED/DELETED transitions), ``timeoutSeconds``, ``sendInitialEvents`` and bookmarks;
  a gap in one client's watches, after which it must relist (tests/support/watch_gap.py,
  through ``watch_gate`` and ``end_watches``);
* CRD objects (``apiextensions.k8s.io/v1``) register/unregister their resources;
* correct routing of ``/api/v1/namespaces[/NAME[/status|finalize]]``, and the core group's discovery named
  ``v1`` (kmock says ``/v1``), so kubectl finds built-in kinds;
* resource quantities of pods and pod templates stored in canonical form
  (quantities.py: ``0.5`` is stored as ``500m``), so a write of the same value
  spelt otherwise is a no-op;
* fields an update may not change (immutable.py: a StatefulSet's spec
  outside replicas, template, updateStrategy, ...), refused with 422 as the API server does;
* the Eviction API honouring PodDisruptionBudgets (disruption.py);
* a container's log (``pods/NAME/log``, with ``container``, ``previous``, ``sinceSeconds``/``sinceTime``,
  ``tailLines``, ``limitBytes``, ``timestamps``, ``follow``) from the stand-in kubelet's CRI log files
  (pod_logs.py);
* a pod's ``status.qosClass``, set when it is created (qos.py);
* the metadata checks of every write (validation.py): names per resource
  (a DNS-1035 label for Services, ...), ``generateName`` completed as the API server does, and
  256 KiB of annotations in all; and ConfigMaps' keys (file names a configMap volume can hold); refused
  with 422 ``Invalid`` and apimachinery's messages.

* a custom object's structural schema (crd_schema.py): unknown fields pruned before it
  is stored, unless the schema preserves them; refused with 400 under ``fieldValidation=Strict``, told
  in ``Warning`` headers under ``Warn`` (the default when a request names none), silent under
  ``Ignore``; defaults applied on every write, and to what is read once a CRD gains one;
* ValidatingAdmissionPolicies and their bindings, applied to every write they match, with the requesting
  user in ``request.userInfo`` (admission_policy.py);
* authentication (authn.py): the static admin token ``kmock`` (group ``system:masters``:
  never refused by authorization), service-account tokens issued by :meth:`KubernetesEmulator.issue_token`
  (bound to a pod if asked, as the kubelet mounts them) and checked on every request against the
  ServiceAccount and pod they name, anonymous requests without a token; 401 with the API server's body;
* authorization: RBAC (rbac.py) from the Roles, ClusterRoles and bindings stored here, with the
  bootstrap policy every cluster has (``system:discovery``, ``system:basic-user``,
  ``system:public-info-viewer``); 403 with the API server's message
  (``User "..." cannot patch resource "livestrategies/status" in API group ... in the namespace ...``);
  RBAC's escalation prevention on writes of roles and bindings (grant only what you hold, or ``escalate`` /
  ``bind``; a binding to a missing role is 404 for such a user);
* the ServiceAccount admission plugin on pods and the ServiceAccount controller's ``default`` ServiceAccount
  in every namespace (service_account_admission.py);
* server-side printing (tables.py): ``kubectl get lstrat`` (and ``-w``) shows the CRD's printer columns,
  ``kubectl get pods`` / ``statefulsets`` the API server's own; discovery as kubectl reads it (the core
  group version ``v1``, subresources without short names), so ``kubectl get pods`` finds the core pods.

What it still does not do: Tables for the other built-in resources (kubectl prints them with NAME and AGE), the rest of admission/validation (no type, enum or bound checks, no CEL),
server-side apply, field managers, dry-run, ``deletecollection``, pods & controllers (nothing ever
populates a StatefulSet's status: tests must do it), quotas, impersonation, client certificates, the
Node authorizer, the default user-facing ClusterRoles (``admin``, ``edit``, ``view``, ``cluster-admin``),
the ``kube-root-ca.crt`` ConfigMap. The test-side helpers below act as the admin (``kubernetes-admin``).

Everything happens in the event loop thread, and each write is applied synchronously: no locks are
needed. The garbage collector's work is the exception: a write only queues it, and the collector does it
later in the same loop (``garbage_collection_delay``; ``emu.garbage_collector.paused()`` / ``.drain()``). Requests are served concurrently all the same (aiohttp serves each in its own task), and one
may be suspended at an await while others are served to their end: a watch, a followed log, a user
reaction that awaits. So what belongs to the request being served (its user, its subresource, its
``fieldValidation`` and the warnings it collects) lives in a :class:`contextvars.ContextVar`, never on
the emulator: each request is judged as its own user with its own settings (RBAC's escalation
prevention, admission's ``userInfo``, Strict decoding), as the API server judges it by its own
request context. The test-side helpers (``create_object``, ``patch_object``,
``replace_object``, ``delete_object``, ``read_object``, ``list_objects``) mutate the state
out-of-band (no HTTP, not recorded as requests) as the admin, a plain write (no subresource,
``fieldValidation`` Warn with the warnings dropped) whatever request is in flight, and must be called
from the loop thread; ``store_unchecked`` stores an object that a stale or bypassed schema let into etcd.

Built-in reactions are dispatched directly, not via kmock's DSL: kmock checks each
reaction against the whole request history (``request in reaction._source``), which
is O(history) per request. User reactions (``emu['patch', ...] << 500``) still work and
take precedence over the emulation (a matched request changes nothing in the store).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import copy
import dataclasses
import datetime
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import kmock

from livestrat.kube_emulator import (
    admission_policy,
    authn,
    crd_schema,
    disruption,
    garbage_collector,
    immutable,
    namespace_controller,
    pod_logs,
    qos,
    quantities,
    rbac,
    service_account_admission,
    tables,
    validation,
)

try:  # Private in kmock 0.8; only needed to unwrap errors of user-defined streaming reactions.
    from kmock._internal.rendering import StreamingError as _StreamingError
except ImportError:  # pragma: no cover

    class _StreamingError(Exception):  # type: ignore[no-redef]
        pass


__all__ = ["ADMIN_HEADERS", "WRITE_METHODS", "KubernetesEmulator", "ScaleSubresource", "kubeconfig"]

Body = dict[str, Any]
Key = tuple[kmock.resource, str | None, str]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What a test's own HTTP client sends to act as the admin (a request without a token is system:anonymous).
ADMIN_HEADERS = {"Authorization": f"Bearer {authn.ADMIN_TOKEN}"}

# The fieldValidation levels of a write; Warn when the request names none (the API server's default).
IGNORE, WARN, STRICT = "Ignore", "Warn", "Strict"

CRDS = kmock.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
NAMESPACES = namespace_controller.NAMESPACES
POLICIES = kmock.resource("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies")
POLICY_BINDINGS = kmock.resource("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings")
PODS = kmock.resource("", "v1", "pods")
SERVICE_ACCOUNTS = service_account_admission.SERVICE_ACCOUNTS
ROLES = kmock.resource(rbac.RBAC_GROUP, "v1", "roles")
CLUSTER_ROLES = kmock.resource(rbac.RBAC_GROUP, "v1", "clusterroles")
ROLE_BINDINGS = kmock.resource(rbac.RBAC_GROUP, "v1", "rolebindings")
CLUSTER_ROLE_BINDINGS = kmock.resource(rbac.RBAC_GROUP, "v1", "clusterrolebindings")

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

# Builtin groups whose objects carry metadata.generation (approximation of the real list).
GENERATION_GROUPS = frozenset({"apps", "batch", "policy", "networking.k8s.io", "autoscaling"})

# Immutable or server-managed metadata: restored from the stored object on every update.
SERVER_METADATA = (
    "uid",
    "creationTimestamp",
    "generation",
    "resourceVersion",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "name",
    "namespace",
    "selfLink",
    "managedFields",
)


@dataclasses.dataclass(frozen=True)
class ScaleSubresource:
    """Where the scale subresource maps to in the object (CRD ``subresources.scale``)."""

    spec_replicas_path: str = ".spec.replicas"
    status_replicas_path: str = ".status.replicas"
    label_selector_path: str | None = None
    selector_from_spec: bool = False  # builtin apps/v1 workloads: ``.spec.selector`` as a string


BUILTIN_SCALES = {
    kmock.resource("apps", "v1", plural): ScaleSubresource(selector_from_spec=True)
    for plural in ("deployments", "statefulsets", "replicasets")
}


@dataclasses.dataclass(frozen=True)
class _Served:
    """What belongs to the request being served: set by ``_handle`` (the user) and ``_serve`` (the rest) in the
    request's own task, read by the checks of its writes. Out of band (the test-side helpers, the stand-in
    controllers): the admin, a plain write, its warnings dropped (``warnings`` None)."""

    user: authn.UserInfo = authn.ADMIN
    field_validation: str = WARN
    subresource: str | None = None
    warnings: list[str] | None = None  # for its Warning headers


_OUT_OF_BAND = _Served()  # no warnings list: nothing shared between out-of-band writes
# A ContextVar, not an attribute: aiohttp serves requests concurrently, one task (so one context) each, and a request
# suspended at an await must neither see another's user or settings nor leave its own to the others.
_SERVED: contextvars.ContextVar[_Served] = contextvars.ContextVar("kube_emulator_served", default=_OUT_OF_BAND)


@contextlib.contextmanager
def _serving(served: _Served) -> Iterator[None]:
    token = _SERVED.set(served)
    try:
        yield
    finally:
        _SERVED.reset(token)


def api_error(status: int, reason: str, message: str, **details: Any) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=status, reason=reason, message=message, details=details or None)


def kubeconfig(server: str, *, namespace: str = "default", token: str = "kmock") -> Body:
    """A kubeconfig dict pointing to the emulator (dump it as YAML/JSON for other processes)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kmock", "cluster": {"server": server}}],
        "users": [{"name": "kmock", "user": {"token": token}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock", "namespace": namespace}}],
        "current-context": "kmock",
    }


@attrs.define(kw_only=True)
class KubernetesEmulator(kmock.KubernetesEmulator):
    """
    Usage with kmock's pytest plugin (the ``kmock`` fixture builds the handler + a real server)::

        @pytest.fixture
        def kmock_options():
            return {'cls': KubernetesEmulator, 'strict': True}

        async def test_it(kmock: KubernetesEmulator):
            kmock.add_crd(LIVESTRATEGY_CRD)
            ...  # point the client/operator to str(kmock.url)

    Or standalone::

        async with KubernetesEmulator() as emu, kmock.Server(emu) as server:
            emu.add_crd(LIVESTRATEGY_CRD)
            url = str(server.url)
    """

    builtin_resources: bool = True  # kmock's bundled discovery of a recent K3s: core, apps, rbac, events…
    namespaces: Iterable[str] = ("default",)  # pre-created namespaces
    require_namespaces: bool = True  # 404 on creation in an absent namespace, as in Kubernetes
    # a namespace's deletion deletes its pods first, the rest once they are gone (Kubernetes 1.33+); False: all at once
    ordered_namespace_deletion: bool = True
    garbage_collection: bool = True  # delete dependents via ownerReferences (garbage_collector.py)
    garbage_collection_delay: float = garbage_collector.DEFAULT_DELAY  # seconds from a request to the collector's work
    history_limit: int = 100_000  # watch events kept for resuming watches by resourceVersion
    bookmark_interval: float | None = None  # seconds; BOOKMARK events if the client allows them
    max_watch_seconds: float | None = None  # end every watch after N seconds (tests reconnections)
    resume_watches: bool = True  # False: ignore ?resourceVersion=, replay all objects (as vanilla kmock)
    anonymous_auth: bool = True  # kube-apiserver's default; False: a request without a token is 401

    _revision: int = attrs.field(default=0, init=False)
    _scales: dict[kmock.resource, ScaleSubresource] = attrs.field(factory=dict, init=False)
    _custom: set[kmock.resource] = attrs.field(factory=set, init=False)
    _uids: dict[str, Key] = attrs.field(factory=dict, init=False)
    _dependents: dict[str, set[Key]] = attrs.field(factory=lambda: collections.defaultdict(set), init=False)
    # The garbage collector: asynchronous, as Kubernetes' (garbage_collector.py); tests may pause or drain it.
    garbage_collector: garbage_collector.GarbageCollector = attrs.field(init=False)
    # The namespace controller: a deleted namespace's content goes later (namespace_controller.py); tests may pause it.
    namespace_controller: namespace_controller.NamespaceController = attrs.field(init=False)
    _log: collections.deque[tuple[int, kmock.resource, str, Body, Body | None]] = attrs.field(init=False)
    _watchers: set[_Watcher] = attrs.field(factory=set, init=False)
    _unchecked: bool = attrs.field(default=False, init=False)  # store_unchecked is writing
    _schemas: dict[kmock.resource, Body] = attrs.field(factory=dict, init=False)  # CRD openAPIV3Schema
    _printer_columns: dict[kmock.resource, list[Body]] = attrs.field(factory=dict, init=False)  # tables.py
    # The stored keys by resource, in the order first stored: kept up to date with kmock's _objects, which only grows
    # (deletions are soft). Without it every write scanned every object (admission reads the policies): quadratic in N.
    _keys: dict[tuple[str | None, str | None, str | None], list[Key]] = attrs.field(factory=dict, init=False)
    _keys_indexed: int = attrs.field(default=0, init=False)
    # Asked before a watch starts: None admits it, an ERROR event refuses it (tests/support/watch_gap.py).
    watch_gate: Callable[[kmock.Request], Awaitable[Body | None]] | None = attrs.field(default=None, init=False)
    # Authentication: static tokens and service-account tokens (authn.py); tests may move its clock.
    tokens: authn.TokenIssuer = attrs.field(init=False)
    forbidden: list[str] = attrs.field(factory=list, init=False)  # the messages of the 403s authorization answered
    # Where ``pods/NAME/log`` reads a container's log: the stand-in kubelet registers itself (livestrat/kube_emulator/pod_logs.py).
    log_source: pod_logs.LogSource | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._payloads.clear()  # drop kmock's built-in fallback reactions: we dispatch directly
        self._log = collections.deque(maxlen=self.history_limit)
        if self.builtin_resources:
            self.resources.load_bundled()
            self._scales.update(BUILTIN_SCALES)
        self.resources[NAMESPACES] = kmock.ResourceInfo(
            kind="Namespace",
            singular="namespace",
            namespaced=False,
            shortnames={"ns"},
            verbs={"create", "delete", "get", "list", "patch", "update", "watch"},
            subresources={"status", "finalize"},
        )
        self.resources[CRDS] = kmock.ResourceInfo(
            kind="CustomResourceDefinition",
            singular="customresourcedefinition",
            namespaced=False,
            shortnames={"crd", "crds"},
            categories={"api-extensions"},
            subresources={"status"},
            verbs={"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"},
        )
        self.garbage_collector = garbage_collector.GarbageCollector(self, delay=self.garbage_collection_delay)
        self.namespace_controller = namespace_controller.NamespaceController(self, delay=self.garbage_collection_delay)
        self.tokens = authn.TokenIssuer(read=self._read_for_authentication)
        for resource, document in rbac.bootstrap_policy():  # as the API server stores it at startup
            self.create_object(resource, document)
        for name in self.namespaces:
            self.create_object(NAMESPACES, {"metadata": {"name": name}})

    # --------------------------------------------------------------------------------------------
    # Test-side API: out-of-band (not recorded as requests), synchronous, from the loop thread.
    # --------------------------------------------------------------------------------------------

    def add_crd(self, crd: Mapping[str, Any]) -> Body:
        """Store a CustomResourceDefinition; its served versions become API resources."""
        return self.create_object(CRDS, copy.deepcopy(dict(crd)))

    def issue_token(
        self, namespace: str, service_account: str, *, pod: str | None = None, expiration_seconds: int = 3600
    ) -> str:
        """A bearer token of ServiceAccount ``namespace/service_account`` (bound to ``pod`` if given), as the
        TokenRequest API (``serviceaccounts/NAME/token``) issues it; its requests are that user (and its pod's)."""
        return self.tokens.issue(namespace, service_account, pod=pod, expiration_seconds=expiration_seconds)

    def add_static_token(self, token: str, user: authn.UserInfo = authn.ADMIN) -> None:
        """A token of ``--token-auth-file``: ``token`` authenticates as ``user`` (the admin unless told)."""
        self.tokens.static[token] = user

    def add_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> Body:
        return self.create_object(NAMESPACES, {"metadata": {"name": name, "labels": dict(labels or {})}})

    def create_object(self, resource: Any, body: Mapping[str, Any], namespace: str | None = None) -> Body:
        with _serving(_OUT_OF_BAND):  # the admin's, whatever request is in flight (a reaction may call this)
            return self._create(kmock.resource(resource), namespace, copy.deepcopy(dict(body)))

    def patch_object(
        self,
        resource: Any,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        subresource: str | None = None,
        content_type: str = MERGE_PATCH,
    ) -> Body:
        with _serving(_OUT_OF_BAND):
            return self._patch(
                kmock.resource(resource), namespace, name, subresource, copy.deepcopy(patch), content_type
            )

    def replace_object(
        self,
        resource: Any,
        name: str,
        body: Mapping[str, Any],
        *,
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> Body:
        with _serving(_OUT_OF_BAND):
            return self._replace(kmock.resource(resource), namespace, name, subresource, copy.deepcopy(dict(body)))

    def delete_object(
        self, resource: Any, name: str, *, namespace: str | None = None, propagation: str = "Background"
    ) -> Body:
        with _serving(_OUT_OF_BAND):
            return self._delete(kmock.resource(resource), namespace, name, {"propagationPolicy": propagation})

    def store_unchecked(self, resource: Any, body: Mapping[str, Any], *, namespace: str | None = None) -> Body:
        """Store ``body`` whole (``status`` included) as etcd would hold it after a write that skipped validation.

        Why: the API server validates a custom object against its CRD's schema only when it is
        written, so etcd can hold what today's schema refuses: objects written under an older or
        laxer CRD (a stale schema, ``x-kubernetes-preserve-unknown-fields``), written to etcd
        directly (a restore, a migration tool), or left by a conversion bug. The operator reads
        whatever is stored. This writes such an object: any JSON value anywhere (``spec`` a
        string, ``metadata.annotations`` a list, ``status.risk`` a list), no validation, no
        defaulting, no pruning, none of the metadata checks of a write (names, annotation sizes).
        What stays is what the storage itself needs: ``metadata`` is an object with a name; uid,
        creationTimestamp, resourceVersion and generation are kept or set as for any write;
        watchers are told (MODIFIED, or ADDED for a new object). Later writes to the object are
        checked as usual (labels and annotations that are not maps excepted, see below).

        Where a real API server differs: it decodes what it reads from etcd with the CRD's schema,
        so it drops ``metadata.labels``/``annotations`` that are not string maps (apiextensions'
        ``schemaCoercingDecoder`` with ``dropInvalidMetadata``) and prunes unknown fields and nulls
        the schema does not allow; a later write stores that decoded object. This emulator serves
        what was stored, and keeps it through later writes that do not replace it: harsher than a
        real server, never more lenient (an operator that survives it survives the real one).
        """
        resource = kmock.resource(resource)
        body = copy.deepcopy(dict(body))
        meta = body.get("metadata")
        if not isinstance(meta, dict) or not meta.get("name"):
            raise ValueError("store_unchecked: metadata must be an object with a name (etcd's key needs it)")
        namespace = namespace or meta.get("namespace")
        has_status = "status" in body
        status = body.pop("status", None)
        self._unchecked = True
        try:
            try:
                self._get_live(resource, namespace, meta["name"])
            except kmock.KubernetesError:
                stored = self._create(resource, namespace, body)
            else:
                stored = self._update(resource, namespace, meta["name"], None, lambda _old: body)
            if not self._has_status_subresource(resource):
                return stored
            whole = {"status": status} if has_status else {}
            return self._update(
                resource,
                namespace,
                meta["name"],
                "status",
                lambda old: {**{k: v for k, v in old.items() if k != "status"}, **whole},
            )
        finally:
            self._unchecked = False

    def read_object(self, resource: Any, name: str, *, namespace: str | None = None) -> Body | None:
        try:
            _, body = self._get_live(kmock.resource(resource), namespace, name)
        except kmock.KubernetesError:
            return None
        return copy.deepcopy(body)

    def list_objects(self, resource: Any, namespace: str | None = None) -> list[Body]:
        return [copy.deepcopy(body) for _, body in self._iter_live(kmock.resource(resource), namespace)]

    @property
    def resource_version(self) -> int:
        return self._revision

    # The request being served (_SERVED: its own in each request's task), read-only: set only by _handle and _serve.
    @property
    def _user(self) -> authn.UserInfo:
        return _SERVED.get().user

    @property
    def _field_validation(self) -> str:
        return _SERVED.get().field_validation

    @property
    def _subresource(self) -> str | None:
        return _SERVED.get().subresource

    @property
    def _warnings(self) -> list[str] | None:  # None: out of band, told to no one
        return _SERVED.get().warnings

    def end_watches(self, predicate: Callable[[kmock.Request], bool]) -> int:
        """End the watch streams whose request matches (the server closes them, as on a lost connection); how many."""
        ended = [w for w in self._watchers if w.request is not None and predicate(w.request)]
        for watcher in ended:
            watcher.queue.put_nowait(_END_OF_STREAM)
        return len(ended)

    def writes(self, *, user_agent: str | re.Pattern[str] | None = None, since: int = 0) -> list[kmock.Request]:
        """Recorded write requests (POST/PUT/PATCH/DELETE), optionally by client (User-Agent prefix)."""
        result = []
        for request in list(self)[since:]:
            if request.method.value not in WRITE_METHODS:
                continue
            agent = request.headers.get("User-Agent", "")
            if isinstance(user_agent, str) and not agent.startswith(user_agent):
                continue
            if isinstance(user_agent, re.Pattern) and not user_agent.search(agent):
                continue
            result.append(request)
        return result

    # --------------------------------------------------------------------------------------------
    # HTTP entry point & routing.
    # --------------------------------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        # Mirrors kmock.RawHandler.__call__ (0.8), but with our own request parser (kmock's
        # crashes on /api/v1/namespaces) and with API errors (4xx/5xx Status objects) treated
        # as regular responses rather than server failures accumulated in `self.errors`.
        await raw_request.read()
        raw_response: aiohttp.web.StreamResponse | None = None
        try:
            if self.limit is not None and len(self._requests) >= self.limit:
                raise kmock.KMockError("Too many requests have been served so far.")
            request = await _parse_request(raw_request, id=len(self._requests))
            self._requests.append(request)
            try:
                return await self._handle(request)
            except _StreamingError as e:
                raw_response = e.args[0]
                raise (e.__cause__ or e) from None
        except kmock.KubernetesError as e:
            if raw_response is None or not raw_response.prepared:
                return await self._render_error(e)
            await self._stream_error(e, raw_response)
            await raw_response.write_eof()
            return raw_response
        except Exception as e:
            if not self._errors:
                raise
            self._errors[-1].append(e)
            if raw_response is None or not raw_response.prepared:
                return await self._render_error(e)
            await self._stream_error(e, raw_response)
            await raw_response.write_eof()
            return raw_response

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        # Authentication and authorization first, as the API server's filters do; then user-defined reactions
        # (kmock's DSL, in their priorities), then the emulation.
        try:
            user = self.tokens.authenticate(request.headers.get("Authorization"), request.headers.get("User-Agent", ""))
            if user is authn.ANONYMOUS and not self.anonymous_auth:
                raise authn.Unauthorized("anonymous requests are disabled")
        except authn.Unauthorized:
            return _json(authn.UNAUTHORIZED_BODY, status=401)
        self._authorize(user, request)
        with _serving(_Served(user=user)):
            return await self._handle_authorized(request)

    def _authorize(self, user: authn.UserInfo, request: kmock.Request) -> None:
        """RBAC over the stored roles and bindings (``system:masters`` passes, as the API server's privileged-group
        authorizer lets it); 403 with the API server's Status otherwise."""
        if "system:masters" in user.groups:
            return
        attributes = _request_attributes(request)
        allowed, reason = rbac.authorize(user.username, user.groups, attributes, **self._rbac_objects())
        if allowed:
            return
        self.forbidden.append(rbac.forbidden_message(user.username, attributes, reason))
        details: dict[str, Any] = {}
        if attributes.path is None:
            details = {
                "name": attributes.name,
                "group": attributes.group,
                "kind": attributes.resource.partition("/")[0],
            }
        raise api_error(
            403,
            "Forbidden",
            rbac.forbidden_message(user.username, attributes, reason),
            **{key: value for key, value in details.items() if value},
        )

    def _rbac_objects(self) -> dict[str, Any]:
        return {
            "roles": {(key[1] or "", key[2]): body for key, body in self._iter_live(ROLES, None)},
            "cluster_roles": {key[2]: body for key, body in self._iter_live(CLUSTER_ROLES, None)},
            "role_bindings": [body for _, body in self._iter_live(ROLE_BINDINGS, None)],
            "cluster_role_bindings": [body for _, body in self._iter_live(CLUSTER_ROLE_BINDINGS, None)],
        }

    def _confirm_no_escalation(
        self, resource: kmock.resource, namespace: str | None, new: Body, old: Body | None
    ) -> None:
        """RBAC's escalation prevention (reference/access-authn-authz/rbac, "Privilege escalation prevention and
        bootstrapping"; pkg/registry/rbac/*/policybased): a user may write a Role or ClusterRole only with every
        permission it grants (or ``escalate`` on it), and a binding only to a role whose permissions it holds (or
        ``bind`` on that role; a binding to a role that does not exist is then that role's 404). Writes that change
        only ownerReferences and finalizers, and ``system:masters``, pass."""
        kinds = {
            ROLES: "roles",
            CLUSTER_ROLES: "clusterroles",
            ROLE_BINDINGS: "rolebindings",
            CLUSTER_ROLE_BINDINGS: "clusterrolebindings",
        }
        user = self._user
        if resource not in kinds or self._unchecked or "system:masters" in user.groups:
            return
        if old is not None:

            def essence(body: Body) -> Body:
                meta = {
                    k: v
                    for k, v in body["metadata"].items()
                    if k not in ("ownerReferences", "finalizers", *SERVER_METADATA)
                }
                return {**body, "metadata": meta}

            if essence(new) == essence(old):  # IsOnlyMutatingGCFields
                return
        objects = self._rbac_objects()
        scope = namespace if resource in (ROLES, ROLE_BINDINGS) else ""
        name = new["metadata"]["name"]

        def may(verb: str, plural: str, target: str) -> bool:
            request = rbac.Request(verb, rbac.RBAC_GROUP, plural, namespace=scope or None, name=target)
            return rbac.authorize(user.username, user.groups, request, **objects)[0]

        if resource in (ROLES, CLUSTER_ROLES):
            if may("escalate", kinds[resource], name):
                return
            granted = new.get("rules") or []
        else:
            ref = new.get("roleRef") or {}
            plural = "clusterroles" if ref.get("kind") == "ClusterRole" else "roles"
            if may("bind", plural, ref.get("name", "")):
                return
            role = (
                objects["cluster_roles"].get(ref.get("name", ""))
                if plural == "clusterroles"
                else objects["roles"].get((scope or "", ref.get("name", "")))
            )
            if role is None:
                raise api_error(
                    404,
                    "NotFound",
                    f'{plural}.{rbac.RBAC_GROUP} "{ref.get("name")}" not found',
                    name=ref.get("name"),
                    group=rbac.RBAC_GROUP,
                    kind=plural,
                )
            granted = role.get("rules") or []
        held = rbac.rules_for(user.username, user.groups, scope or "", **objects)
        refused = rbac.escalation(user.username, user.groups, held, granted)
        if refused is not None:
            raise api_error(
                403,
                "Forbidden",
                f'{kinds[resource]}.{rbac.RBAC_GROUP} "{name}" is forbidden: {refused}',
                name=name,
                group=rbac.RBAC_GROUP,
                kind=kinds[resource],
            )

    def _read_for_authentication(self, resource: str, name: str, namespace: str | None) -> Body | None:
        """The token authenticator's lookups: the live object (one being deleted included), read-only."""
        try:
            return self._get_live(kmock.resource(resource), namespace, name)[1]
        except kmock.KubernetesError:
            return None

    async def _handle_authorized(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if self._payloads:
            try:
                return await super(kmock.KubernetesEmulator, self)._handle(request)
            except NotImplementedError:
                pass  # no user reaction matched: serve as Kubernetes
        return await self._serve(request)

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        if isinstance(exc, kmock.KubernetesError):
            return aiohttp.web.json_response(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": exc.message or "",
                    "reason": exc.reason or "",
                    "details": exc.details or {},
                    "code": exc.status,
                },
                status=exc.status,
            )
        return await super()._render_error(exc)

    async def _serve(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        level = request.params.get("fieldValidation") or WARN
        if level not in (IGNORE, WARN, STRICT):
            raise api_error(400, "BadRequest", f'fieldValidation: invalid value "{level}"')
        warnings: list[str] = []
        served = dataclasses.replace(
            _SERVED.get(), field_validation=level, subresource=request.subresource, warnings=warnings
        )
        with _serving(served):
            response = await self._serve_request(request)
        for warning in warnings:  # the standard Warning header: 299, no agent, the text quoted
            escaped = warning.replace("\\", "\\\\").replace('"', '\\"')
            response.headers.add("Warning", f'299 - "{escaped}"')
        return response

    async def _serve_version(self, request: kmock.Request) -> Any:
        payload = await super()._serve_version(request)
        # kmock names the core group's version "/v1"; the API server says "v1", and kubectl finds no built-in kind
        # (ConfigMap, Secret, ...) in a list named otherwise.
        if isinstance(payload, dict) and str(payload.get("groupVersion", "")).startswith("/"):
            payload["groupVersion"] = payload["groupVersion"][1:]
        return payload

    async def _serve_request(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        resource, method = request.resource, request.method.value
        if resource is None:  # non-resource URLs: discovery roots
            path = request.url.path.rstrip("/") or "/"
            route = {
                "/": self._serve_root,
                "/version": self._serve_server_version,
                "/api": self._serve_api,
                "/apis": self._serve_apis,
            }.get(path)
            if method != "GET" or route is None:
                raise kmock.KubernetesEndpointNotFoundError()
            return _json(await route(request))
        if resource.plural is None:  # /api/v1, /apis/GROUP, /apis/GROUP/VERSION
            if method != "GET":
                raise api_error(405, "MethodNotAllowed", f"{method} is not supported here")
            if resource.version is None:
                return _json(await self._serve_group(request))
            return _json(await self._serve_version(request))

        if (resource.group, resource.plural) == ("authentication.k8s.io", "selfsubjectreviews"):
            return _json(self._self_subject_review(request), status=201)
        self._require_known(resource)
        namespace, name, sub = request.namespace, request.name, request.subresource
        if request.action == kmock.action.WATCH:
            return await self._watch(request)
        table = tables.requested_version(request.headers.get("Accept", "")) if self._printable(resource) else None
        if name is None:
            if method == "GET":
                listed = self._list(request)
                if table is not None:  # kubectl get: server-side printing
                    return _json(self._table(request, listed["items"], table, metadata=listed["metadata"]))
                return _json(listed)
            if method == "POST":
                return _json(self._create(resource, namespace, _json_body(request, dict)), status=201)
            raise api_error(405, "MethodNotAllowed", f"{method} on a collection is not supported")
        if method == "GET" and sub == "log" and resource == PODS:  # livestrat/kube_emulator/pod_logs.py
            _key, pod = self._get_live(resource, namespace, name)
            return await pod_logs.serve(request, pod, self.log_source)
        if method == "GET":
            fetched = self._fetch(resource, namespace, name, sub)
            if table is not None and sub is None:
                return _json(self._table(request, [fetched], table, metadata=fetched["metadata"]))
            return _json(fetched)
        if method == "PATCH":
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
            return _json(self._patch(resource, namespace, name, sub, _json_body(request, object), content_type))
        if method == "PUT":
            return _json(self._replace(resource, namespace, name, sub, _json_body(request, dict)))
        if method == "POST" and sub == "eviction" and resource == PODS:  # disruption.py
            return _json(disruption.evict(self, namespace or "", name, _json_body(request, dict)))
        if method == "DELETE" and sub is None:
            options = _json_body(request, dict, optional=True) or {}
            if "propagationPolicy" in request.params:
                options["propagationPolicy"] = request.params["propagationPolicy"]
            return _json(self._delete(resource, namespace, name, options))
        raise api_error(405, "MethodNotAllowed", f"{method} is not supported for this URL")

    def _self_subject_review(self, request: kmock.Request) -> Body:
        """``kubectl auth whoami``: authentication.k8s.io/v1 SelfSubjectReview, create only, never stored; its
        status is the caller's user info as authentication found it (every authenticated user may create one:
        the API server's default ``system:basic-user`` role grants it)."""
        if request.method.value != "POST" or request.name is not None or request.namespace is not None:
            raise api_error(405, "MethodNotAllowed", "selfsubjectreviews: only create (POST) is supported")
        return {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "SelfSubjectReview",
            "metadata": {"creationTimestamp": None},
            "status": {"userInfo": self._user.admission()},
        }

    # --------------------------------------------------------------------------------------------
    # Storage semantics.
    # --------------------------------------------------------------------------------------------

    def _list(self, request: kmock.Request) -> Body:
        resource = request.resource
        assert resource is not None
        labels = _Selector.parse(request.params.get("labelSelector", ""), fields=False)
        fields = _Selector.parse(request.params.get("fieldSelector", ""), fields=True)
        items = [
            body
            for _, body in self._iter_live(resource, request.namespace)
            if labels.matches(body) and fields.matches(body)
        ]
        items.sort(key=lambda b: (b["metadata"].get("namespace") or "", b["metadata"]["name"]))
        offset = int(request.params.get("continue") or 0)
        limit = int(request.params.get("limit") or 0)
        chunk = items[offset : offset + limit] if limit > 0 else items[offset:]
        more = limit > 0 and offset + limit < len(items)
        return {
            "apiVersion": _api_version(resource),
            "kind": f"{self._kind(resource)}List",
            "metadata": {"resourceVersion": str(self._revision), "continue": str(offset + limit) if more else ""},
            "items": chunk,
        }

    def _fetch(self, resource: kmock.resource, namespace: str | None, name: str, sub: str | None) -> Body:
        _key, body = self._get_live(resource, namespace, name)
        if sub is None or sub == "status":
            return body
        if sub == "scale":
            return self._scale_of(resource, body)
        raise api_error(404, "NotFound", f"subresource {sub!r} is not supported by the emulator")

    def _create(self, resource: kmock.resource, namespace: str | None, body: Body) -> Body:
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise api_error(400, "BadRequest", "metadata must be an object")
        namespaced = self._namespaced(resource, namespace)
        if namespaced:
            namespace = namespace or meta.get("namespace")
            if not namespace:
                raise api_error(400, "BadRequest", "the namespace of the object is not set")
            if meta.get("namespace", namespace) != namespace:
                raise api_error(400, "BadRequest", "the namespace of the object does not match the URL")
            if self.require_namespaces:
                self._admit_into_namespace(resource, namespace, meta)
            meta["namespace"] = namespace
        else:
            namespace = None
            meta.pop("namespace", None)
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise api_error(422, "Invalid", "metadata.name or metadata.generateName is required")
            meta["name"] = validation.generated_name(meta["generateName"])
        name = meta["name"]
        self._validate_metadata(resource, meta, names=True)
        self._validate_object(resource, body)
        key: Key = (resource, namespace, name)
        if key in self._objects and not self._objects[key].deleted:
            raise api_error(
                409,
                "AlreadyExists",
                f'{resource.plural} "{name}" already exists',
                name=name,
                kind=resource.plural,
                group=resource.group,
            )

        for field in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion", "generation", "selfLink"):
            meta.pop(field, None)
        if self._has_status_subresource(resource):
            body.pop("status", None)
        if resource == PODS and not self._unchecked:  # mutating admission (service_account_admission.py)
            refused = service_account_admission.admit_pod(
                body, namespace or "", lambda ns, sa: self.read_object(SERVICE_ACCOUNTS, sa, namespace=ns)
            )
            if refused is not None:
                raise api_error(403, "Forbidden", f'pods "{name}" is forbidden: {refused}', name=name, kind="pods")
        if resource == PODS:  # the API server sets it at creation, once (qos.py)
            body["status"] = {"qosClass": qos.qos_class(body.get("spec") or {})}
        if resource == NAMESPACES:
            namespace_controller.prepare_for_create(body)
        body = {"apiVersion": _api_version(resource), "kind": self._kind(resource), **body}
        body = self._against_schema(resource, body, None)
        if not self._unchecked:
            quantities.canonicalise(resource, body)
        self._confirm_no_escalation(resource, namespace, body, None)
        self._admit(resource, None, "CREATE", body, None)
        meta = body["metadata"]
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = timestamp_now()
        if self._tracks_generation(resource):
            meta["generation"] = 1
        _drop_empty_metadata(meta)
        if resource == CRDS:
            self._validate_crd(body)
        self._revision += 1
        meta["resourceVersion"] = str(self._revision)

        if key in self._objects:
            self._objects[key].history.append(body)  # re-creation after a (soft) deletion
        else:
            self._objects[key] = body
        self._uids[meta["uid"]] = key
        self._reindex_owners(key, None, body)
        self._notify(resource, "ADDED", body, None)
        if self.garbage_collection:
            self.garbage_collector.stored(None, body)  # a dangling owner reference makes it garbage
        if resource == CRDS:
            self._register_crd(body)
        if resource == NAMESPACES and not self._unchecked:  # the ServiceAccount controller's part
            with contextlib.suppress(kmock.KubernetesError):
                self._create(SERVICE_ACCOUNTS, name, service_account_admission.default_service_account(name))
        return body

    def _patch(
        self, resource: kmock.resource, namespace: str | None, name: str, sub: str | None, patch: Any, content_type: str
    ) -> Body:
        if content_type == JSON_PATCH:
            if not isinstance(patch, list):
                raise api_error(
                    400, "BadRequest", "json: cannot unmarshal object into Go value of type []jsonpatch.Operation"
                )
        elif content_type in (MERGE_PATCH, STRATEGIC_PATCH):
            if not isinstance(patch, dict):
                raise api_error(
                    400, "BadRequest", "json: cannot unmarshal array into Go value of type map[string]interface {}"
                )
            if content_type == STRATEGIC_PATCH and resource in self._custom:
                raise api_error(
                    415, "UnsupportedMediaType", "strategic merge patch is not supported for custom resources"
                )
        else:
            raise api_error(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format ({content_type!r}) - accepted "
                f"media types include: {JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC_PATCH} (builtins)",
            )

        def apply(target: Body) -> Body:
            if isinstance(patch, list):
                try:
                    return jsonpatch.apply_patch(target, patch, in_place=False)
                except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
                    raise api_error(
                        422, "Invalid", f"the server rejected our request due to an error in our request: {e}"
                    ) from None
            precondition = (patch.get("metadata") or {}).get("resourceVersion")
            if precondition is not None and precondition != target["metadata"]["resourceVersion"]:
                raise self._conflict(resource, name)
            return _merge_patch(target, patch)

        if sub == "scale":
            return self._update_scale(resource, namespace, name, apply)
        return self._update(resource, namespace, name, sub, apply)

    def _replace(self, resource: kmock.resource, namespace: str | None, name: str, sub: str | None, body: Body) -> Body:
        precondition = (body.get("metadata") or {}).get("resourceVersion")
        if (body.get("metadata") or {}).get("name", name) != name:
            raise api_error(400, "BadRequest", "the name of the object does not match the name in the URL")

        def apply(target: Body) -> Body:
            if precondition is None and resource in self._custom and sub != "scale":
                raise api_error(
                    422, "Invalid", "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
                )
            if precondition is not None and precondition != target["metadata"]["resourceVersion"]:
                raise self._conflict(resource, name)
            return copy.deepcopy(body)

        if sub == "scale":
            return self._update_scale(resource, namespace, name, apply)
        return self._update(resource, namespace, name, sub, apply)

    def _update(
        self, resource: kmock.resource, namespace: str | None, name: str, sub: str | None, apply: Callable[[Body], Body]
    ) -> Body:
        if sub not in (None, "status") and not (sub == "finalize" and resource == NAMESPACES):
            raise api_error(404, "NotFound", f"subresource {sub!r} is not supported by the emulator")
        if sub == "status" and not self._has_status_subresource(resource):
            raise api_error(
                404, "NotFound", f"the server could not find the requested resource ({resource.plural}/status)"
            )
        key, old = self._get_live(resource, namespace, name)
        candidate = apply(copy.deepcopy(old))
        if not isinstance(candidate, dict):
            raise api_error(422, "Invalid", "the patched object is not an object")

        # What the endpoint is allowed to change (the status subresource splits the object).
        if sub == "status":
            new = copy.deepcopy(old)
            if "status" in candidate:
                new["status"] = candidate["status"]
            else:
                new.pop("status", None)
        else:
            new = candidate
            new.setdefault("metadata", {})
            if self._has_status_subresource(resource):
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
        if resource == NAMESPACES:
            namespace_controller.prepare_for_update(new, old, sub)
        new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]
        meta = new["metadata"] if isinstance(new.get("metadata"), dict) else {}
        new["metadata"] = meta
        for field in SERVER_METADATA:
            if field in old["metadata"]:
                meta[field] = old["metadata"][field]
            else:
                meta.pop(field, None)
        _drop_empty_metadata(meta)
        new = self._against_schema(resource, new, old)
        if not self._unchecked:
            quantities.canonicalise(resource, new)  # as decoded: before admission sees it
        self._confirm_no_escalation(resource, namespace, new, old)
        self._admit(resource, sub, "UPDATE", new, old)
        meta = new["metadata"]

        deleting = "deletionTimestamp" in old["metadata"]
        added_finalizers = set(meta.get("finalizers", [])) - set(old["metadata"].get("finalizers", []))
        if deleting and added_finalizers:
            raise api_error(
                422,
                "Invalid",
                f"metadata.finalizers: Forbidden: no new finalizers can be added "
                f"if the object is being deleted, found new finalizers "
                f"{sorted(added_finalizers)}",
            )
        if new == old:
            return old  # a no-op: no new resourceVersion, no watch event (as in Kubernetes)
        self._validate_metadata(resource, meta, names=False)  # the name cannot change
        self._validate_object(resource, new)
        if not self._unchecked:
            immutable.check_update(resource, old, new)
        if resource == CRDS:
            self._validate_crd(new)

        if deleting and not meta.get("finalizers") and not (resource == NAMESPACES and namespace_controller.held(new)):
            # The last finalizer is gone: the object is deleted instead of being updated. Like
            # Kubernetes, the response is the patched object with the OLD resourceVersion, and
            # the DELETED event carries the last stored state (i.e. with the last finalizer).
            self._remove(key, old)
            return new

        if "generation" in meta and _essence(old, self._has_status_subresource(resource)) != _essence(
            new, self._has_status_subresource(resource)
        ):
            meta["generation"] = old["metadata"]["generation"] + 1
        self._revision += 1
        meta["resourceVersion"] = str(self._revision)
        self._objects[key].history.append(new)
        self._reindex_owners(key, old, new)
        self._notify(resource, "MODIFIED", new, old)
        if self.garbage_collection:
            self.garbage_collector.stored(old, new)
        if resource == CRDS:
            self._register_crd(new)
        return new

    def _against_schema(self, resource: kmock.resource, body: Body, old: Body | None) -> Body:
        """A custom object to be stored, pruned and defaulted by its CRD's schema (crd_schema.py);
        its unknown fields refused under ``fieldValidation=Strict``, told in Warning headers under ``Warn`` (the
        default), dropped silently under ``Ignore``. An unknown field ``old`` already holds is kept (stored past
        validation, see :meth:`store_unchecked`): harsher than the real server, which prunes it when it reads it."""
        schema = self._schemas.get(resource)
        if schema is None or self._unchecked:
            return body
        pruned, unknown = crd_schema.prune(body, schema, kept=old)
        fields = [f'unknown field "{path}"' for path in unknown]
        if fields and self._field_validation == STRICT:
            raise api_error(400, "BadRequest", f"strict decoding error: {', '.join(fields)}")
        if self._field_validation == WARN and self._warnings is not None:
            self._warnings.extend(fields)
        return crd_schema.default(pruned, schema)

    def _admit(self, resource: kmock.resource, sub: str | None, operation: str, new: Body, old: Body | None) -> None:
        """The ValidatingAdmissionPolicies stored here, applied to a write (admission_policy.py).
        The request's own subresource counts: a write through ``/scale`` is a ``RESOURCE/scale`` request."""
        if self._unchecked:
            return
        sub = self._subresource or sub
        refused = admission_policy.denial(
            (body for _, body in self._iter_live(POLICIES, None)),
            (body for _, body in self._iter_live(POLICY_BINDINGS, None)),
            group=resource.group or "",
            version=resource.version or "",
            resource=f"{resource.plural}/{sub}" if sub else str(resource.plural),
            operation=operation,
            obj=new,
            old=old,
            user=self._user.admission(),
            name=str((new.get("metadata") or {}).get("name") or ""),
            namespace=str((new.get("metadata") or {}).get("namespace") or ""),
            kind=str(new.get("kind") or ""),
        )
        if refused is not None:  # admission.NewForbidden's message and details, the policy's reason and code
            name = str((new.get("metadata") or {}).get("name") or "")
            qualified = f"{resource.plural}.{resource.group}" if resource.group else str(resource.plural)
            details = {"name": name, "group": resource.group, "kind": resource.plural}
            raise api_error(
                refused.status,
                refused.reason,
                f'{qualified} "{name}" is forbidden: {refused.message}',
                **{key: value for key, value in details.items() if value},
                causes=[{"message": refused.message}],
            )

    def _update_scale(
        self, resource: kmock.resource, namespace: str | None, name: str, apply: Callable[[Body], Body]
    ) -> Body:
        scale = self._scales.get(resource)
        if scale is None:
            raise api_error(
                404, "NotFound", f"the server could not find the requested resource ({resource.plural}/scale)"
            )

        def apply_to_object(target: Body) -> Body:
            new_scale = apply(self._scale_of(resource, target))
            replicas = (new_scale.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise api_error(422, "Invalid", f"spec.replicas: Invalid value: {replicas!r}")
            _set_path(target, scale.spec_replicas_path, replicas)
            return target

        updated = self._update(resource, namespace, name, None, apply_to_object)
        return self._scale_of(resource, updated)

    def _delete(self, resource: kmock.resource, namespace: str | None, name: str, options: Mapping[str, Any]) -> Body:
        key, old = self._get_live(resource, namespace, name)
        preconditions = options.get("preconditions") or {}
        if preconditions.get("uid") not in (None, old["metadata"]["uid"]):
            raise api_error(409, "Conflict", f"Precondition failed: UID in precondition: {preconditions['uid']}")
        if preconditions.get("resourceVersion") not in (None, old["metadata"]["resourceVersion"]):
            raise self._conflict(resource, name)
        if "deletionTimestamp" in old["metadata"]:
            return old  # the deletion is already in progress
        propagation = str(options.get("propagationPolicy") or "Background")
        gc_finalizer = garbage_collector.deletion_finalizer(propagation) if self.garbage_collection else None
        if resource == NAMESPACES and namespace_controller.held(old):
            return self._terminate_namespace(key, old)
        if old["metadata"].get("finalizers") or gc_finalizer:
            new = copy.deepcopy(old)
            if gc_finalizer and gc_finalizer not in (new["metadata"].get("finalizers") or []):
                new["metadata"]["finalizers"] = [*(new["metadata"].get("finalizers") or []), gc_finalizer]
            new["metadata"]["deletionTimestamp"] = timestamp_now()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            if "generation" in new["metadata"]:
                new["metadata"]["generation"] += 1
            self._revision += 1
            new["metadata"]["resourceVersion"] = str(self._revision)
            self._objects[key].history.append(new)
            self._notify(resource, "MODIFIED", new, old)
            if gc_finalizer:
                self.garbage_collector.deletion_started(new)  # its part, later: orphan or delete the dependents
            return new
        return self._remove(key, old)

    def _terminate_namespace(self, key: Key, old: Body) -> Body:
        """A namespace's deletion: ``Terminating`` while its finalizers hold it; the controller empties it."""
        new = copy.deepcopy(old)
        new["metadata"]["deletionTimestamp"] = timestamp_now()
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        new["status"] = {**(new.get("status") or {}), "phase": namespace_controller.TERMINATING}
        self._revision += 1
        new["metadata"]["resourceVersion"] = str(self._revision)
        self._objects[key].history.append(new)
        self._notify(NAMESPACES, "MODIFIED", new, old)
        self.namespace_controller.deletion_started(key[2])
        return new

    def _remove(self, key: Key, last: Body) -> Body:
        resource, _namespace, name = key
        final = copy.deepcopy(last)
        self._revision += 1
        final["metadata"]["resourceVersion"] = str(self._revision)
        self._objects[key].delete()  # soft-deletion: kmock keeps the history for assertions
        self._uids.pop(last["metadata"]["uid"], None)
        self._reindex_owners(key, last, None)
        self._notify(resource, "DELETED", final, last)
        if resource == CRDS:
            for removed in self._unregister_crd(last):  # the custom objects go with their CRD
                for dependent_key, body in list(self._iter_live(removed, None)):
                    self._remove(dependent_key, body)
        if resource == NAMESPACES:  # one that nothing held (no finalizers left): what is in it goes with it
            for dependent_key, _ in list(self._iter_all_live()):
                if dependent_key[1] == name:
                    self._delete_quietly(dependent_key, {})
        elif _namespace is not None:
            self.namespace_controller.removed_from(_namespace)
        if self.garbage_collection:
            # later: its dependents collected, its owners waiting for it in the foreground let go
            self.garbage_collector.removed(last)
        return final

    def _reindex_owners(self, key: Key, old: Body | None, new: Body | None) -> None:
        def owners(body: Body | None) -> set[str]:
            refs = (body or {}).get("metadata", {}).get("ownerReferences") or []
            return {ref["uid"] for ref in refs if isinstance(ref, dict) and ref.get("uid")}

        for uid in owners(old) - owners(new):
            self._dependents[uid].discard(key)
            if not self._dependents[uid]:
                del self._dependents[uid]
        for uid in owners(new) - owners(old):
            self._dependents[uid].add(key)

    def _as_controller(self) -> contextlib.AbstractContextManager[None]:
        """What a stand-in controller writes is written out of band (the admin), not as the request it follows."""
        return _serving(_OUT_OF_BAND)

    def _delete_quietly(self, key: Key, options: Mapping[str, Any]) -> None:
        with contextlib.suppress(kmock.KubernetesError):  # already gone
            self._delete(key[0], key[1], key[2], options)

    # --------------------------------------------------------------------------------------------
    # Watching.
    # --------------------------------------------------------------------------------------------

    def _notify(self, resource: kmock.resource, type_: str, new: Body, old: Body | None) -> None:
        self._log.append((self._revision, resource, type_, new, old))
        for watcher in self._watchers:
            if watcher.resource == resource:
                event = watcher.translate(type_, new, old)
                if event is not None:
                    watcher.queue.put_nowait(event)

    async def _watch(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        resource = request.resource
        assert resource is not None
        params = request.params
        refusal = await self.watch_gate(request) if self.watch_gate is not None else None
        watcher = _Watcher(
            resource=resource,
            namespace=request.namespace,
            name=request.name,
            labels=_Selector.parse(params.get("labelSelector", ""), fields=False),
            fields=_Selector.parse(params.get("fieldSelector", ""), fields=True),
            request=request,
        )
        since = params.get("resourceVersion") or ""
        initial_events = params.get("sendInitialEvents") == "true"
        bookmarks = params.get("allowWatchBookmarks") == "true"

        # Snapshot & subscription are atomic: no awaits in between, so no events are lost.
        backlog: list[Body] = []
        if refusal is not None:
            backlog.append(refusal)
        elif initial_events or since in ("", "0") or not self.resume_watches:
            live = sorted(
                self._iter_live(resource, request.namespace),  # etcd's key order
                key=lambda kb: (kb[0][1] or "", kb[0][2]),
            )
            for _, body in live:
                event = watcher.translate("ADDED", body, None)
                if event is not None:
                    backlog.append(event)
            if initial_events and bookmarks:
                backlog.append(self._bookmark(resource, initial_events_end=True))
        elif not since.isdigit() or int(since) > self._revision:
            backlog.append(_gone(f"invalid resourceVersion: {since}", code=400 if not since.isdigit() else 410))
        elif len(self._log) == self._log.maxlen and self._log and int(since) < self._log[0][0] - 1:
            backlog.append(_gone(f"too old resource version: {since} ({self._log[0][0] - 1})"))
        else:
            for revision, res, type_, new, old in self._log:
                if revision > int(since) and res == resource:
                    event = watcher.translate(type_, new, old)
                    if event is not None:
                        backlog.append(event)
        self._watchers.add(watcher)

        loop = asyncio.get_running_loop()
        timeouts = [float(params["timeoutSeconds"])] if params.get("timeoutSeconds") else []
        timeouts += [self.max_watch_seconds] if self.max_watch_seconds else []
        deadline = loop.time() + min(timeouts) if timeouts else None
        raw = request._raw_request
        assert raw is not None
        response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        as_table = tables.requested_version(request.headers.get("Accept", "")) if self._printable(resource) else None
        headers_sent = False

        def render(event: Body) -> bytes:
            nonlocal headers_sent
            if as_table is None or event["type"] not in ("ADDED", "MODIFIED", "DELETED"):
                return _line(event)
            obj = self._table(request, [event["object"]], as_table, headers=not headers_sent)
            headers_sent = True  # the column definitions go with the first event only
            return _line({"type": event["type"], "object": obj})

        try:
            await response.prepare(raw)
            for event in backlog:
                await response.write(render(event))
                if event["type"] == "ERROR":
                    return response
            while True:
                # Wake up periodically: to notice disconnected clients (aiohttp does not cancel
                # handlers by default), to send bookmarks, and to honour timeoutSeconds.
                wait = 1.0 if self.bookmark_interval is None or not bookmarks else min(1.0, self.bookmark_interval)
                if deadline is not None:
                    wait = min(wait, deadline - loop.time())
                    if wait <= 0:
                        break
                try:
                    event = await asyncio.wait_for(watcher.queue.get(), timeout=wait)
                except TimeoutError:
                    if raw.transport is None or raw.transport.is_closing():
                        break
                    if (
                        bookmarks
                        and self.bookmark_interval is not None
                        and loop.time() - watcher.last_sent >= self.bookmark_interval
                    ):
                        await response.write(_line(self._bookmark(resource)))
                        watcher.last_sent = loop.time()
                    continue
                if event is _END_OF_STREAM:
                    break
                await response.write(render(event))
                watcher.last_sent = loop.time()
            await response.write_eof()
        except ConnectionError:
            pass  # the client has gone; the stream ends silently
        finally:
            self._watchers.discard(watcher)
        return response

    def _table(
        self,
        request: kmock.Request,
        documents: list[Body],
        api_version: str,
        *,
        headers: bool = True,
        metadata: Mapping[str, Any] | None = None,
    ) -> Body:
        resource = request.resource
        assert resource is not None
        options: dict[str, Any] = {
            "api_version": api_version,
            "include": request.params.get("includeObject") or "Metadata",
            "headers": headers,
            "metadata": {k: v for k, v in (metadata or {}).items() if k in ("resourceVersion", "continue")},
        }
        if resource in self._printer_columns:
            return tables.table(documents, self._printer_columns[resource], **options)
        return tables.builtin_table((resource.group or "", resource.plural or ""), documents, **options)

    def _printable(self, resource: kmock.resource) -> bool:
        """Whether a Table can be served for it: a custom resource, or a built-in one tables.py knows."""
        return resource in self._printer_columns or (resource.group or "", resource.plural or "") in tables.BUILTIN

    def _bookmark(self, resource: kmock.resource, initial_events_end: bool = False) -> Body:
        meta: Body = {"resourceVersion": str(self._revision)}
        if initial_events_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {
            "type": "BOOKMARK",
            "object": {"apiVersion": _api_version(resource), "kind": self._kind(resource), "metadata": meta},
        }

    # --------------------------------------------------------------------------------------------
    # Resources: discovery info, CRDs, subresources.
    # --------------------------------------------------------------------------------------------

    async def _serve_version(self, request: kmock.Request) -> Body:
        """kmock's APIResourceList, as kubectl needs it: the core group's version is ``v1`` (kmock writes ``/v1``,
        and kubectl then finds no core resource: ``kubectl get pods`` asks metrics.k8s.io); a subresource has no
        singular or short names of its own (kmock copies its resource's, and kubectl warns that ``lstrat`` could
        also be ``livestrategies/status``)."""
        listing = await super()._serve_version(request)
        assert request.resource is not None
        if request.resource.group == "":
            listing["groupVersion"] = request.resource.version
        for entry in listing["resources"]:
            if "/" in entry["name"]:
                entry.update(singularName="", shortNames=[], categories=[])
        return listing

    def _info(self, resource: kmock.resource) -> kmock.ResourceInfo | None:
        # NB: `self.resources[...]` auto-creates entries (a defaultdict) and thus pollutes discovery.
        return self._resources.get(resource, None)

    def _require_known(self, resource: kmock.resource) -> None:
        if resource not in self._resources and not any(res == resource for res, _, _ in self._objects):
            raise api_error(
                404,
                "NotFound",
                f"the server could not find the requested resource "
                f"({resource.group or 'core'}/{resource.version} {resource.plural})",
            )

    def _kind(self, resource: kmock.resource) -> str:
        info = self._info(resource)
        return info.kind if info is not None and info.kind else (resource.plural or "").capitalize()

    def _namespaced(self, resource: kmock.resource, namespace: str | None) -> bool:
        info = self._info(resource)
        return info.namespaced if info is not None and info.namespaced is not None else namespace is not None

    def _has_status_subresource(self, resource: kmock.resource) -> bool:
        info = self._info(resource)
        return info is not None and "status" in info.subresources

    def _tracks_generation(self, resource: kmock.resource) -> bool:
        return resource in self._custom or resource == CRDS or resource.group in GENERATION_GROUPS

    def _admit_into_namespace(self, resource: kmock.resource, namespace: str, meta: Body) -> None:
        """NamespaceLifecycle: no creation in a namespace that does not exist (404) or is terminating (403)."""
        body = self.read_object(NAMESPACES, namespace)
        if body is None:
            raise api_error(404, "NotFound", f'namespaces "{namespace}" not found', name=namespace, kind="namespaces")
        if namespace_controller.terminating(body):
            name = str(meta.get("name") or meta.get("generateName") or "Unknown")  # before a name is generated
            group_resource = f"{resource.plural}.{resource.group}" if resource.group else resource.plural
            message, cause = namespace_controller.creation_refusal(group_resource, name, namespace)
            raise api_error(403, "Forbidden", message, name=name, kind=resource.plural, causes=[cause])

    def _validate_metadata(self, resource: kmock.resource, meta: Body, *, names: bool) -> None:
        if self._unchecked:
            return
        # Labels or annotations that are not maps can only have been stored past validation: a real server drops
        # them when it reads the object, before it checks a write; so are they left out of the checks here.
        meta = {k: v for k, v in meta.items() if k not in ("labels", "annotations") or isinstance(v, dict)}
        errors = validation.metadata_errors(resource, meta, names=names)
        if errors:
            raise validation.invalid(self._kind(resource), resource.group or "", meta["name"], errors)

    def _validate_object(self, resource: kmock.resource, body: Body) -> None:
        if self._unchecked:
            return
        errors = validation.object_errors(resource, body)
        if errors:
            raise validation.invalid(self._kind(resource), resource.group or "", body["metadata"]["name"], errors)

    def _validate_crd(self, body: Body) -> None:
        spec = body.get("spec") or {}
        names = spec.get("names") or {}
        if not spec.get("group") or not names.get("plural") or not names.get("kind") or not spec.get("versions"):
            raise api_error(422, "Invalid", "spec.group, spec.names.plural/kind, spec.versions are required")
        expected = f"{names['plural']}.{spec['group']}"
        if body["metadata"].get("name") != expected:
            raise api_error(
                422, "Invalid", f'metadata.name: Invalid value: must be spec.names.plural+"."+spec.group ({expected})'
            )

    def _register_crd(self, body: Body) -> None:
        self._unregister_crd(body)
        spec = body["spec"]
        names = spec["names"]
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            resource = kmock.resource(spec["group"], version["name"], names["plural"])
            subresources = version.get("subresources") or spec.get("subresources") or {}
            self._resources[resource] = kmock.ResourceInfo(
                kind=names["kind"],
                singular=names.get("singular") or names["kind"].lower(),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                shortnames=set(names.get("shortNames") or []),
                categories=set(names.get("categories") or []),
                verbs={"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"},
                subresources={sub for sub in ("status", "scale") if sub in subresources},
            )
            self._custom.add(resource)
            self._printer_columns[resource] = tables.columns_of(version, spec)
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if isinstance(schema, dict):
                self._schemas[resource] = schema
                # The API server defaults what it reads from etcd with the schema it has now: a CRD that adds a
                # defaulted field shows it in every object read (GET, LIST, the objects of later watch events),
                # without writing it back or telling watchers. The stored copies are what the emulator reads.
                for key, stored in list(self._iter_live(resource, None)):
                    defaulted = crd_schema.default(stored, schema)
                    if defaulted != stored:
                        self._objects[key].history.append(defaulted)  # same resourceVersion: not a write
            if "scale" in subresources:
                scale = subresources["scale"] or {}
                self._scales[resource] = ScaleSubresource(
                    spec_replicas_path=scale.get("specReplicasPath", ".spec.replicas"),
                    status_replicas_path=scale.get("statusReplicasPath", ".status.replicas"),
                    label_selector_path=scale.get("labelSelectorPath"),
                )

    def _unregister_crd(self, body: Body) -> list[kmock.resource]:
        spec = body.get("spec") or {}
        removed = [
            res
            for res in self._custom
            if res.group == spec.get("group") and res.plural == (spec.get("names") or {}).get("plural")
        ]
        for resource in removed:
            self._custom.discard(resource)
            self._scales.pop(resource, None)
            self._schemas.pop(resource, None)
            self._printer_columns.pop(resource, None)
            if resource in self._resources:
                del self._resources[resource]
        return removed

    def _scale_of(self, resource: kmock.resource, body: Body) -> Body:
        scale = self._scales.get(resource)
        if scale is None:
            raise api_error(
                404, "NotFound", f"the server could not find the requested resource ({resource.plural}/scale)"
            )
        status: Body = {"replicas": _nested(body, scale.status_replicas_path, int) or 0}
        if scale.selector_from_spec:
            match_labels = ((body.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            status["selector"] = ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))
        elif scale.label_selector_path:
            selector = _nested(body, scale.label_selector_path, str)
            if selector:
                status["selector"] = selector
        meta = body["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                key: meta[key]
                for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if key in meta
            },
            "spec": {"replicas": _nested(body, scale.spec_replicas_path, int) or 0},
            "status": status,
        }

    # --------------------------------------------------------------------------------------------
    # Object access.
    # --------------------------------------------------------------------------------------------

    def _iter_all_live(self) -> Iterator[tuple[Key, Body]]:
        for key, obj in list(self._objects.items()):
            if not obj.deleted:
                yield key, obj.last.raw

    def _iter_live(self, resource: kmock.resource, namespace: str | None) -> Iterator[tuple[Key, Body]]:
        if len(self._objects) > self._keys_indexed:
            for key in list(self._objects)[self._keys_indexed :]:
                self._keys.setdefault((key[0].group, key[0].version, key[0].plural), []).append(key)
            self._keys_indexed = len(self._objects)
        for key in list(self._keys.get((resource.group, resource.version, resource.plural), ())):
            obj = self._objects[key]
            if not obj.deleted and (namespace is None or key[1] == namespace):
                yield key, obj.last.raw

    def _get_live(self, resource: kmock.resource, namespace: str | None, name: str) -> tuple[Key, Body]:
        key: Key = (resource, namespace if self._namespaced(resource, namespace) else None, name)
        if key not in self._objects or self._objects[key].deleted:
            raise api_error(
                404,
                "NotFound",
                f'{resource.plural}.{resource.group or "core"} "{name}" not found',
                name=name,
                group=resource.group,
                kind=resource.plural,
            )
        return key, self._objects[key].last.raw

    def _conflict(self, resource: kmock.resource, name: str) -> kmock.KubernetesError:
        return api_error(
            409,
            "Conflict",
            f"Operation cannot be fulfilled on {resource.plural}.{resource.group} "
            f'"{name}": the object has been modified; please apply your changes '
            f"to the latest version and try again",
            name=name,
            group=resource.group,
            kind=resource.plural,
        )


# ------------------------------------------------------------------------------------------------
# Watch helpers.
# ------------------------------------------------------------------------------------------------


_END_OF_STREAM: Body = {}  # put in a watcher's queue: the server ends the stream (end_watches)


@dataclasses.dataclass(eq=False)
class _Watcher:
    resource: kmock.resource
    namespace: str | None
    name: str | None
    labels: _Selector
    fields: _Selector
    queue: asyncio.Queue[Body] = dataclasses.field(default_factory=asyncio.Queue)
    last_sent: float = 0.0
    request: kmock.Request | None = None

    def matches(self, body: Body | None) -> bool:
        if body is None:
            return False
        meta = body.get("metadata", {})
        return (
            (self.namespace is None or meta.get("namespace") == self.namespace)
            and (self.name is None or meta.get("name") == self.name)
            and self.labels.matches(body)
            and self.fields.matches(body)
        )

    def translate(self, type_: str, new: Body, old: Body | None) -> Body | None:
        """The event as this watcher sees it: selectors turn MODIFIED into ADDED/DELETED."""
        if type_ == "MODIFIED":
            was, now = self.matches(old), self.matches(new)
            type_ = "MODIFIED" if was and now else "ADDED" if now else "DELETED" if was else ""
        elif not self.matches(new):
            return None
        return {"type": type_, "object": new} if type_ else None


@dataclasses.dataclass(frozen=True)
class _Selector:
    requirements: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    fields: bool = False

    _SPLIT = re.compile(r",(?![^(]*\))")
    _SET = re.compile(r"^\s*(\S+)\s+(in|notin)\s*\(([^)]*)\)\s*$")
    _CMP = re.compile(r"^\s*([^\s!=]+)\s*(==|=|!=)\s*(\S*)\s*$")
    _EXISTS = re.compile(r"^\s*(!?)\s*([^\s!=]+)\s*$")

    @classmethod
    def parse(cls, text: str, *, fields: bool) -> _Selector:
        requirements = []
        for part in (p for p in cls._SPLIT.split(text) if p.strip()):
            if (m := cls._SET.match(part)) and not fields:
                requirements.append((m[1], m[2], tuple(v.strip() for v in m[3].split(",") if v.strip())))
            elif m := cls._CMP.match(part):
                requirements.append((m[1], "!=" if m[2] == "!=" else "=", (m[3],)))
            elif (m := cls._EXISTS.match(part)) and not fields:
                requirements.append((m[2], "!" if m[1] else "exists", ()))
            else:
                raise api_error(400, "BadRequest", f"unable to parse requirement: {part!r}")
        return cls(tuple(requirements), fields)

    def matches(self, body: Body) -> bool:
        labels = (body.get("metadata") or {}).get("labels") or {}
        if not isinstance(labels, dict):  # stored past validation: a real server drops such labels when it reads them
            labels = {}
        for key, op, values in self.requirements:
            if self.fields:
                value = _get_path(body, "." + key)
                present, value = value is not None, str(value) if value is not None else ""
            else:
                present, value = key in labels, labels.get(key, "")
            if op == "=" and not (present and value == values[0]):
                return False
            if op == "!=" and present and value == values[0]:
                return False
            if op == "in" and not (present and value in values):
                return False
            if op == "notin" and present and value in values:
                return False
            if op == "exists" and not present:
                return False
            if op == "!" and present:
                return False
        return True


def _gone(message: str, code: int = 410) -> Body:
    return {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "Expired" if code == 410 else "BadRequest",
            "code": code,
        },
    }


def _line(event: Body) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"


# ------------------------------------------------------------------------------------------------
# Request parsing & payloads.
# ------------------------------------------------------------------------------------------------


async def _parse_request(raw: aiohttp.web.BaseRequest, *, id: int) -> kmock.Request:
    body = await raw.read()
    text = body.decode("utf-8", errors="replace")
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    group, version, namespace, plural, name, sub = _parse_path(raw.path)
    resource = None if group is None else kmock.resource(group=group, version=version, plural=plural)
    action: kmock.action | None = None
    if resource is not None:
        method = raw.method.upper()
        if method == "GET" and raw.query.get("watch") in ("true", "1"):
            action = kmock.action.WATCH
        elif name is None:
            action = {"GET": kmock.action.LIST, "POST": kmock.action.CREATE}.get(method)
        else:
            action = {"GET": kmock.action.FETCH, "PATCH": kmock.action.UPDATE, "DELETE": kmock.action.DELETE}.get(
                method
            )
    return kmock.Request(
        id=id,
        raw_request=raw,
        url=raw.url,
        method=raw.method,
        params=dict(raw.query),
        headers=dict(raw.headers),
        cookies=dict(raw.cookies),
        body=body,
        text=text,
        data=data,
        action=action,
        resource=resource,
        namespace=namespace,
        name=name,
        subresource=sub,
    )


def _request_attributes(request: kmock.Request) -> rbac.Request:
    """The authorizer's attributes of a request (apiserver's RequestInfoFactory): the verb from the method, a list
    or watch named by a ``metadata.name`` field selector, a Namespace's own namespace being its name."""
    method = request.method.value.upper()
    if request.resource is None or request.resource.plural is None:
        return rbac.Request(verb=method.lower(), group="", resource="", path=request.url.path or "/")
    resource = request.resource
    name, namespace = request.name, request.namespace
    if name is None:
        watching = request.params.get("watch") in ("true", "1")
        verb = {"GET": "watch" if watching else "list", "POST": "create", "DELETE": "deletecollection"}.get(
            method, method.lower()
        )
        if verb in ("list", "watch"):
            for requirement in (request.params.get("fieldSelector") or "").split(","):
                key, op, value = re.split(r"(==|=)", requirement, maxsplit=1) if "=" in requirement else ("", "", "")
                if key.strip() == "metadata.name" and op and "!" not in key and value.strip():
                    name = value.strip()
    else:
        verb = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, "delete")
    if resource.plural == "namespaces" and name is not None and resource.group == "":
        namespace = name
    combined = f"{resource.plural}/{request.subresource}" if request.subresource else str(resource.plural)
    return rbac.Request(verb=verb, group=resource.group or "", resource=combined, namespace=namespace, name=name)


def _parse_path(path: str) -> tuple[str | None, str | None, str | None, str | None, str | None, str | None]:
    """(group, version, namespace, plural, name, subresource) — with `namespaces` as a resource too."""
    parts = [part for part in path.split("/") if part]
    if len(parts) >= 2 and parts[0] == "apis":
        group, version, rest = parts[1], (parts[2] if len(parts) > 2 else None), parts[3:]
    elif len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    else:
        return None, None, None, None, None, None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    plural = rest[0] if rest else None
    name = rest[1] if len(rest) > 1 else None
    sub = "/".join(rest[2:]) or None
    return group, version, namespace, plural, name, sub


def _json(data: Any, status: int = 200) -> aiohttp.web.Response:
    return aiohttp.web.json_response(data, status=status, dumps=lambda obj: json.dumps(obj, separators=(",", ":")))


def _json_body(request: kmock.Request, type_: type, optional: bool = False) -> Any:
    if not request.body:
        if optional:
            return None
        raise api_error(400, "BadRequest", "the request body is empty")
    try:
        data = json.loads(request.body)
    except ValueError as e:
        raise api_error(400, "BadRequest", f"the request body is not JSON: {e}") from None
    if type_ is not object and not isinstance(data, type_):
        raise api_error(400, "BadRequest", f"the request body must be a JSON {type_.__name__}")
    return data


# ------------------------------------------------------------------------------------------------
# Object manipulation.
# ------------------------------------------------------------------------------------------------


def timestamp(moment: datetime.datetime) -> str:
    """A time as the API server writes it (RFC 3339, seconds, UTC)."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def timestamp_now() -> str:
    """The current time as the API server writes it."""
    return timestamp(datetime.datetime.now(datetime.UTC))


def _api_version(resource: kmock.resource) -> str:
    return f"{resource.group}/{resource.version}" if resource.group else str(resource.version)


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: dicts merge recursively, ``None`` deletes, everything else (lists too) replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _essence(body: Body, status_is_subresource: bool) -> Body:
    """What metadata.generation tracks: everything but metadata (and status, if a subresource)."""
    return {k: v for k, v in body.items() if k != "metadata" and not (status_is_subresource and k == "status")}


def _drop_empty_metadata(meta: Body) -> None:
    for field in ("finalizers", "labels", "annotations", "ownerReferences"):
        if field in meta and not meta[field]:
            del meta[field]


def _split_path(path: str) -> list[str]:
    return [part for part in path.strip().lstrip(".").split(".") if part]


def _get_path(body: Body, path: str) -> Any:
    value: Any = body
    for part in _split_path(path):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _nested(body: Body, path: str, type_: type) -> Any:
    """A field the scale subresource reads, as apiextensions reads it (``unstructured.NestedInt64`` /
    ``NestedString``): None when absent; a 500 when a level on the way is not an object or the value has
    another type (a custom object stored past validation cannot be scaled until it is repaired)."""
    value: Any = body
    parts = _split_path(path)
    for depth, part in enumerate(parts):
        if value is None:
            return None  # a null on the way: not found
        if not isinstance(value, dict):
            where = "." + ".".join(parts[:depth])
            raise api_error(
                500,
                "",
                f"{where} accessor error: {value!r} is of the type {_go_type(value)}, "
                "expected map[string]interface{}",
            )
        if part not in value:
            return None
        value = value[part]
    if type_ is int and (isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63):
        raise api_error(500, "", f"{path} accessor error: {value!r} is of the type {_go_type(value)}, expected int64")
    if type_ is str and not isinstance(value, str):
        raise api_error(500, "", f"{path} accessor error: {value!r} is of the type {_go_type(value)}, expected string")
    return value


def _go_type(value: Any) -> str:
    """The Go type of a decoded JSON value, as Kubernetes' error messages name it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return "int64"
    if isinstance(value, int | float):
        return "float64"
    return {str: "string", list: "[]interface {}", dict: "map[string]interface {}"}.get(type(value), "<nil>")


def _set_path(body: Body, path: str, value: Any) -> None:
    *parents, last = _split_path(path)
    target = body
    for part in parents:
        if not isinstance(target.get(part), dict):
            target[part] = {}
        target = target[part]
    target[last] = value
