"""Who a request to the emulator is (emulator.py): bearer tokens as the API server authenticates them.

Two kinds of token, as a real API server knows them:

* static tokens (kube-apiserver's ``--token-auth-file``): a fixed string names a user. ``kmock`` is the
  cluster admin (groups ``system:masters``, which the API server lets through every authorization check);
  tests and the operator use it. A test may add its own (``KubernetesEmulator.add_static_token``).
* service-account tokens, issued by :meth:`TokenIssuer.issue` as the TokenRequest API issues them
  (reference/access-authn-authz/service-accounts-admin, "Bound service account tokens"): a JWT whose private
  claims (``kubernetes.io``) name the namespace, the ServiceAccount (name, uid) and, for a token bound to a
  pod (what the kubelet mounts), the pod (name, uid) and its node (name, uid). The authenticator
  (k8s.io/kubernetes pkg/serviceaccount/claims.go ``validator.Validate``) checks the signature and expiry
  (with go-jose's one minute of leeway), then that the ServiceAccount and the pod still exist with the uids
  of the claims: an object being deleted stays valid until one minute after its ``deletionTimestamp``
  (``invalidIfDeletedBefore = now - jwt.DefaultLeeway``), an object gone (or re-created: another uid) makes
  the token invalid at once. The user is ``system:serviceaccount:NS:SA`` with uid the ServiceAccount's, groups
  ``system:serviceaccounts``, ``system:serviceaccounts:NS`` and ``system:authenticated``; a pod-bound token's
  ``extra`` holds ``authentication.kubernetes.io/pod-name``, ``pod-uid``, ``node-name``, ``node-uid``
  (ServiceAccountTokenPodNodeInfo, GA in 1.32) and ``credential-id`` (``JTI=<jti>``, ServiceAccountTokenJTI).

A request without an ``Authorization`` header is ``system:anonymous`` (group ``system:unauthenticated``), as
with the API server's default ``--anonymous-auth=true``; RBAC then lets it read only what the bootstrap
policy grants (``system:public-info-viewer``). A bearer token that is none of these: 401, with the API
server's body (message and reason ``Unauthorized``, no details): the cause is only in the server's log,
kept here in :attr:`TokenIssuer.refusals` for tests.

Where it differs: the signature is HMAC-SHA256 with a key of this emulator (a real cluster signs with RS256
and publishes the key); nobody but the emulator reads these tokens, so only the claims need be real. And the
emulator speaks plain HTTP, over which client-go (so ``kubectl`` and ``helm``) never sends a kubeconfig's
credentials (``clientcmd``: "only try to read the auth information if we are secure"): a token-less request
whose User-Agent is ``kubectl/...`` or ``Helm/...`` is taken as the admin's, standing in for the admin
kubeconfig the tests give those tools. Every other client (kopf, kubernetes_asyncio in the runtime) sends
its token over HTTP, so a pod's runtime is never taken for the admin.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

ADMIN_TOKEN = "kmock"
SERVICE_ACCOUNTS = "v1/serviceaccounts"
PODS = "v1/pods"
NODES = "v1/nodes"
CLIENT_GO_TOOLS = ("kubectl/", "Helm/")  # they send no credentials over plain HTTP: see "Where it differs"
LEEWAY = datetime.timedelta(minutes=1)  # go-jose's jwt.DefaultLeeway
KUBELET_TOKEN_SECONDS = 3607  # the projected volume's expirationSeconds, as the ServiceAccount admission plugin sets it

POD_NAME_KEY = "authentication.kubernetes.io/pod-name"
POD_UID_KEY = "authentication.kubernetes.io/pod-uid"
NODE_NAME_KEY = "authentication.kubernetes.io/node-name"
NODE_UID_KEY = "authentication.kubernetes.io/node-uid"
CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id"


@dataclass(frozen=True)
class UserInfo:
    """``user.Info`` of the API server: what authorization and admission (``request.userInfo``) see."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def admission(self) -> dict[str, Any]:
        """As ``AdmissionRequest.userInfo`` (authentication/v1 ``UserInfo``: every field omitempty)."""
        info: dict[str, Any] = {"username": self.username}
        if self.uid:
            info["uid"] = self.uid
        if self.groups:
            info["groups"] = list(self.groups)
        if self.extra:
            info["extra"] = {key: list(values) for key, values in self.extra.items()}
        return info


ADMIN = UserInfo("kubernetes-admin", groups=("system:masters", "system:authenticated"))
ANONYMOUS = UserInfo("system:anonymous", groups=("system:unauthenticated",))


def service_account_username(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


class Unauthorized(Exception):
    """The token does not authenticate; the message is the server log's, never the client's."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class TokenIssuer:
    """Issues and validates service-account tokens against the objects ``read`` finds in the emulator."""

    read: Callable[[str, str, str | None], dict[str, Any] | None]  # (resource, name, namespace) -> live object
    now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC)  # tests move it
    issuer: str = "https://kubernetes.default.svc.cluster.local"
    audience: str = "https://kubernetes.default.svc.cluster.local"
    static: dict[str, UserInfo] = field(default_factory=lambda: {ADMIN_TOKEN: ADMIN})
    refusals: list[str] = field(default_factory=list)  # why tokens were refused (the API server logs it)
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def issue(
        self, namespace: str, service_account: str, *, pod: str | None = None, expiration_seconds: int = 3600
    ) -> str:
        """A token of ``service_account`` (bound to ``pod`` if given), as ``serviceaccounts/NAME/token`` returns it.

        Refused as the TokenRequest API refuses: the ServiceAccount (and the pod) must exist, the pod must
        run as that ServiceAccount. A pod's token carries its node (``spec.nodeName``) when it is bound."""
        account = self.read(SERVICE_ACCOUNTS, service_account, namespace)
        if account is None:
            raise LookupError(f'serviceaccounts "{service_account}" not found')
        claims_k8s: dict[str, Any] = {
            "namespace": namespace,
            "serviceaccount": {"name": service_account, "uid": account["metadata"]["uid"]},
        }
        if pod is not None:
            body = self.read(PODS, pod, namespace)
            if body is None:
                raise LookupError(f'pods "{pod}" not found')
            runs_as = (body.get("spec") or {}).get("serviceAccountName") or "default"
            if runs_as != service_account:
                raise LookupError(
                    f"cannot bind token for serviceaccount {service_account!r} to pod running as {runs_as!r}"
                )
            claims_k8s["pod"] = {"name": pod, "uid": body["metadata"]["uid"]}
            node_name = (body.get("spec") or {}).get("nodeName")
            node = self.read(NODES, node_name, None) if node_name else None
            if node is not None:
                claims_k8s["node"] = {"name": node_name, "uid": node["metadata"]["uid"]}
        issued = int(self.now().timestamp())
        claims = {
            "aud": [self.audience],
            "exp": issued + expiration_seconds,
            "iat": issued,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": claims_k8s,
            "nbf": issued,
            "sub": service_account_username(namespace, service_account),
        }
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{header}.{payload}.{self._sign(f'{header}.{payload}')}"

    def _sign(self, signed: str) -> str:
        return _b64(hmac.new(self._key, signed.encode(), hashlib.sha256).digest())

    def authenticate(self, authorization: str | None, user_agent: str = "") -> UserInfo:
        """The user of a request's ``Authorization`` header; :class:`Unauthorized` if it names none."""
        if authorization is None:
            return ADMIN if user_agent.startswith(CLIENT_GO_TOOLS) else ANONYMOUS
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return self._refuse("not a bearer token")
        if token in self.static:
            return self.static[token]
        try:
            return self._service_account(token)
        except Unauthorized as refusal:
            return self._refuse(str(refusal))

    def _refuse(self, why: str) -> UserInfo:
        self.refusals.append(why)
        raise Unauthorized(why)

    def _service_account(self, token: str) -> UserInfo:
        parts = token.split(".")
        if len(parts) != 3 or not hmac.compare_digest(self._sign(f"{parts[0]}.{parts[1]}"), parts[2]):
            raise Unauthorized("invalid bearer token")  # not one of ours: no authenticator accepts it
        claims = json.loads(_unb64(parts[1]))
        now = self.now()
        if now - LEEWAY > datetime.datetime.fromtimestamp(claims["exp"], datetime.UTC):
            raise Unauthorized("service account token has expired")
        if now + LEEWAY < datetime.datetime.fromtimestamp(claims["nbf"], datetime.UTC):
            raise Unauthorized("service account token is not valid yet")
        invalid_if_deleted_before = now - LEEWAY
        private = claims["kubernetes.io"]
        namespace, sa_ref = private["namespace"], private["serviceaccount"]
        account = self.read(SERVICE_ACCOUNTS, sa_ref["name"], namespace)
        if account is None:
            raise Unauthorized(f'serviceaccounts "{sa_ref["name"]}" not found')
        if account["metadata"]["uid"] != sa_ref["uid"]:
            raise Unauthorized(
                f"service account UID ({account['metadata']['uid']}) does not match claim ({sa_ref['uid']})"
            )
        if _deleted_before(account, invalid_if_deleted_before):
            raise Unauthorized(f"service account {namespace}/{sa_ref['name']} has been deleted")
        extra: dict[str, tuple[str, ...]] = {}
        if pod_ref := private.get("pod"):
            pod = self.read(PODS, pod_ref["name"], namespace)
            if pod is None:
                raise Unauthorized("service account token has been invalidated")
            if pod["metadata"]["uid"] != pod_ref["uid"]:
                raise Unauthorized(
                    f"pod UID ({pod['metadata']['uid']}) does not match service account pod ref claim ({pod_ref['uid']})"
                )
            if _deleted_before(pod, invalid_if_deleted_before):
                raise Unauthorized("service account token has been invalidated")
            extra[POD_NAME_KEY], extra[POD_UID_KEY] = (pod_ref["name"],), (pod_ref["uid"],)
            if node_ref := private.get("node"):  # a pod-bound token: the node is carried, not checked
                extra[NODE_NAME_KEY], extra[NODE_UID_KEY] = (node_ref["name"],), (node_ref["uid"],)
        extra[CREDENTIAL_ID_KEY] = (f"JTI={claims['jti']}",)
        return UserInfo(
            service_account_username(namespace, sa_ref["name"]),
            uid=sa_ref["uid"],
            groups=("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
            extra=extra,
        )


def _deleted_before(body: Mapping[str, Any], moment: datetime.datetime) -> bool:
    stamp = (body.get("metadata") or {}).get("deletionTimestamp")
    if not stamp:
        return False
    deleted = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    return deleted < moment


UNAUTHORIZED_BODY: dict[
    str, Any
] = {  # apierrors.NewUnauthorized("Unauthorized"), as the authentication filter writes it
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Unauthorized",
    "reason": "Unauthorized",
    "code": 401,
}
