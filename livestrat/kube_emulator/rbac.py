"""Kubernetes RBAC, evaluated offline: which requests a set of Roles, ClusterRoles and bindings allows.

Follows the RBAC authorizer (k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac, rbac.go and
pkg/apis/rbac/v1/evaluation_helpers.go): a request (verb, apiGroup, resource[/subresource], namespace,
name; or verb and path for a non-resource URL) is allowed when a rule of a role bound to the subject
matches it. ``*`` matches every verb, group or resource (subresources included), ``*/SUB`` every
resource's SUB; ``resourceNames`` restrict a rule to named objects, so a request without a name (create,
list, watch without a ``metadata.name`` field selector) never matches such a rule; a ``nonResourceURLs``
entry ending in ``*`` is a prefix. RoleBindings grant only inside their own namespace; ClusterRoleBindings
everywhere. Subjects: ServiceAccount (its namespace defaults to the RoleBinding's), User, Group. A request
on a Namespace object itself (GET /api/v1/namespaces/NAME) has that namespace as its namespace, so a Role in
NAME can allow it.

Two uses: :class:`Grants` reads rendered manifests (the chart's, the operator's children) for one
ServiceAccount; :func:`authorize` decides a request of any user from the objects an API server stores
(the emulator's), with the authorizer's denial reason (a binding whose role is missing:
``RBAC: role.rbac.authorization.k8s.io "NAME" not found``) and :func:`forbidden_message` its 403 text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

RBAC_GROUP = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class Request:
    verb: str
    group: str
    resource: str  # "livestrategies" or "livestrategies/status"
    namespace: str | None = None  # None: a cluster-scoped request (or all namespaces)
    name: str | None = None
    path: str | None = None  # set: a non-resource request (``/api``, ``/version``), ``resource`` unused

    @property
    def subresource(self) -> str:
        return self.resource.partition("/")[2]


def _matches(values: Iterable[str], wanted: str) -> bool:
    values = list(values)
    return "*" in values or wanted in values


def _resource_matches(resources: Iterable[str], request: Request) -> bool:
    sub = request.subresource
    return any(resource in ("*", request.resource) or (bool(sub) and resource == f"*/{sub}") for resource in resources)


def _url_matches(urls: Iterable[str], path: str) -> bool:
    return any(url in ("*", path) or (url.endswith("*") and path.startswith(url[:-1])) for url in urls)


def rule_allows(rule: Mapping[str, Any], request: Request) -> bool:
    if request.path is not None:
        return _matches(rule.get("verbs") or [], request.verb) and _url_matches(
            rule.get("nonResourceURLs") or [], request.path
        )
    return (
        _matches(rule.get("verbs") or [], request.verb)
        and _matches(rule.get("apiGroups") or [], request.group)
        and _resource_matches(rule.get("resources") or [], request)
        and (not rule.get("resourceNames") or request.name in rule["resourceNames"])
    )


@dataclass
class Grants:
    """The roles bound to one subject, from a list of rendered manifests."""

    cluster_rules: list[dict]
    namespaced_rules: dict[str, list[dict]]

    @classmethod
    def for_service_account(cls, docs: list[dict], namespace: str, name: str) -> Grants:
        subject = {"kind": "ServiceAccount", "name": name, "namespace": namespace}
        roles = {(d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in docs if d["kind"] == "Role"}
        cluster_roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ClusterRole"}
        cluster_rules: list[dict] = []
        namespaced: dict[str, list[dict]] = {}
        for binding in docs:
            if binding["kind"] not in {"RoleBinding", "ClusterRoleBinding"}:
                continue
            if subject not in [{**s, "namespace": s.get("namespace", namespace)} for s in binding["subjects"]]:
                continue
            ref = binding["roleRef"]
            assert ref["apiGroup"] == RBAC_GROUP
            if ref["kind"] == "ClusterRole":
                rules = cluster_roles[ref["name"]]["rules"]
            else:
                rules = roles[(binding["metadata"]["namespace"], ref["name"])]["rules"]
            if binding["kind"] == "ClusterRoleBinding":
                cluster_rules += rules
            else:
                namespaced.setdefault(binding["metadata"]["namespace"], []).extend(rules)
        return cls(cluster_rules, namespaced)

    def allows(self, request: Request) -> bool:
        rules = list(self.cluster_rules)
        if request.namespace is not None:
            rules += self.namespaced_rules.get(request.namespace, [])
        return any(rule_allows(rule, request) for rule in rules)

    def all_rules(self) -> list[dict]:
        return self.cluster_rules + [r for rules in self.namespaced_rules.values() for r in rules]


def triples(rules: Iterable[dict]) -> set[tuple[str, str, str]]:
    """Every (verb, apiGroup, resource) a list of rules names."""
    return {
        (verb, group, resource)
        for rule in rules
        for verb in rule.get("verbs", [])
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
    }


def applies_to(subject: Mapping[str, Any], username: str, groups: Sequence[str], namespace: str) -> bool:
    """rbac.go ``appliesToUser``: ``namespace`` is the RoleBinding's ("" for a ClusterRoleBinding)."""
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "ServiceAccount":
        sa_namespace = subject.get("namespace") or namespace
        return bool(sa_namespace) and username == f"system:serviceaccount:{sa_namespace}:{name}"
    if kind == "User":
        return username == name
    if kind == "Group":
        return name in groups
    return False


def _bound_roles(
    username: str,
    groups: Sequence[str],
    namespace: str,
    roles: Mapping[tuple[str, str], Mapping[str, Any]],
    cluster_roles: Mapping[str, Mapping[str, Any]],
    role_bindings: Iterable[Mapping[str, Any]],
    cluster_role_bindings: Iterable[Mapping[str, Any]],
) -> Iterator[tuple[Mapping[str, Any], Mapping[str, Any] | None]]:
    """(roleRef, the role or None when it does not exist) of every binding of this user that counts in ``namespace``
    ("": cluster-wide only), in the authorizer's order: ClusterRoleBindings first, then the namespace's RoleBindings."""
    bindings = [(b, "") for b in cluster_role_bindings]
    if namespace:
        bindings += [(b, namespace) for b in role_bindings if (b.get("metadata") or {}).get("namespace") == namespace]
    for binding, where in bindings:
        if not any(applies_to(s, username, groups, where) for s in binding.get("subjects") or []):
            continue
        ref = binding.get("roleRef") or {}
        if ref.get("kind") == "ClusterRole":
            yield ref, cluster_roles.get(ref.get("name", ""))
        else:
            yield ref, roles.get((where, ref.get("name", "")))


def authorize(
    username: str,
    groups: Sequence[str],
    request: Request,
    *,
    roles: Mapping[tuple[str, str], Mapping[str, Any]],
    cluster_roles: Mapping[str, Mapping[str, Any]],
    role_bindings: Iterable[Mapping[str, Any]],
    cluster_role_bindings: Iterable[Mapping[str, Any]],
) -> tuple[bool, str]:
    """(allowed, reason) as the RBAC authorizer decides: ClusterRoleBindings first, then the RoleBindings of the
    request's namespace; the reason names the roles that bindings of this user refer to and that do not exist."""
    errors: list[str] = []
    bound = _bound_roles(
        username, groups, request.namespace or "", roles, cluster_roles, role_bindings, cluster_role_bindings
    )
    for ref, role in bound:
        if role is None:
            kind = "clusterrole" if ref.get("kind") == "ClusterRole" else "role"
            errors.append(f'{kind}.rbac.authorization.k8s.io "{ref.get("name")}" not found')
        elif any(rule_allows(rule, request) for rule in role.get("rules") or []):
            return True, ""
    if not errors:
        return False, ""
    return False, "RBAC: " + (errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")


def forbidden_message(username: str, request: Request, reason: str = "") -> str:
    """The 403's message (apiserver responsewriters ``forbiddenMessage`` wrapped by ``apierrors.NewForbidden``)."""
    if request.path is not None:
        text = f'forbidden: User "{username}" cannot {request.verb} path "{request.path}"'
    else:
        where = f'in the namespace "{request.namespace}"' if request.namespace else "at the cluster scope"
        text = f'User "{username}" cannot {request.verb} resource "{request.resource}" in API group "{request.group}" {where}'
        plural = request.resource.partition("/")[0]
        qualified = f"{plural}.{request.group}" if request.group else plural
        prefix = f'{qualified} "{request.name}"' if request.name else qualified
        text = f"{prefix} is forbidden: {text}"
    return f"{text}: {reason}" if reason else text


def bootstrap_policy() -> list[tuple[str, dict[str, Any]]]:
    """(resource, object) of the bootstrap ClusterRoles and ClusterRoleBindings every API server stores at startup
    (plugin/pkg/auth/authorizer/rbac/bootstrappolicy) that concern any authenticated user or anonymous requests:
    discovery, the self-reviews, the public info (``/version``, ``/healthz``)."""
    meta = {
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    }
    public = ["/healthz", "/livez", "/readyz", "/version", "/version/"]
    roles = {
        "system:discovery": [
            {
                "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", *public],
                "verbs": ["get"],
            }
        ],
        "system:basic-user": [
            {
                "apiGroups": ["authorization.k8s.io"],
                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                "verbs": ["create"],
            },
            {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]},
        ],
        "system:public-info-viewer": [{"nonResourceURLs": public, "verbs": ["get"]}],
    }
    groups = {
        "system:discovery": ["system:authenticated"],
        "system:basic-user": ["system:authenticated"],
        "system:public-info-viewer": ["system:authenticated", "system:unauthenticated"],
    }
    documents: list[tuple[str, dict[str, Any]]] = []
    for name, rules in roles.items():
        documents.append((f"{RBAC_GROUP}/v1/clusterroles", {"metadata": {"name": name, **meta}, "rules": rules}))
    for name, members in groups.items():
        binding = {
            "metadata": {"name": name, **meta},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": group} for group in members],
        }
        documents.append((f"{RBAC_GROUP}/v1/clusterrolebindings", binding))
    return documents


def rules_for(
    username: str,
    groups: Sequence[str],
    namespace: str,
    *,
    roles: Mapping[tuple[str, str], Mapping[str, Any]],
    cluster_roles: Mapping[str, Mapping[str, Any]],
    role_bindings: Iterable[Mapping[str, Any]],
    cluster_role_bindings: Iterable[Mapping[str, Any]],
) -> list[Mapping[str, Any]]:
    """Every rule a user holds in ``namespace`` ("" : cluster-wide only), as the rule resolver's ``RulesFor``."""
    bound = _bound_roles(username, groups, namespace, roles, cluster_roles, role_bindings, cluster_role_bindings)
    return [rule for _, role in bound for rule in (role or {}).get("rules") or []]


def _atomic(rule: Mapping[str, Any]) -> list[tuple[Request, dict[str, Any]]]:
    """BreakdownRule: one (request, rule) per verb x group x resource x name, or verb x URL."""
    verbs = list(rule.get("verbs") or [])
    pieces: list[tuple[Request, dict[str, Any]]] = []
    for group in rule.get("apiGroups") or []:
        for resource in rule.get("resources") or []:
            for name in rule.get("resourceNames") or [None]:
                for verb in verbs:
                    atom: dict[str, Any] = {"apiGroups": [group], "resources": [resource], "verbs": [verb]}
                    if name is not None:
                        atom["resourceNames"] = [name]
                    pieces.append((Request(verb, group, resource, name=name), atom))
    for url in rule.get("nonResourceURLs") or []:
        for verb in verbs:
            pieces.append((Request(verb, "", "", path=url), {"nonResourceURLs": [url], "verbs": [verb]}))
    return pieces


def _go_strings(values: Sequence[str]) -> str:
    return "[" + " ".join(json.dumps(value) for value in values) + "]"


def compact_string(rule: Mapping[str, Any]) -> str:
    """rbacv1helpers.CompactString."""
    parts = [
        f"{label}:{_go_strings(rule[key])}"
        for key, label in (
            ("apiGroups", "APIGroups"),
            ("resources", "Resources"),
            ("nonResourceURLs", "NonResourceURLs"),
            ("resourceNames", "ResourceNames"),
            ("verbs", "Verbs"),
        )
        if rule.get(key)
    ]
    return "{" + ", ".join(parts) + "}"


def escalation(
    username: str, groups: Sequence[str], held: Sequence[Mapping[str, Any]], granted: Iterable[Mapping[str, Any]]
) -> str | None:
    """ConfirmNoEscalation (pkg/registry/rbac/validation/rule.go): why granting ``granted`` is an escalation for a user
    holding ``held`` (each atomic right must be covered by a held rule; ``*`` covers only as ``*``), or None."""
    missing: dict[tuple[str, ...], dict[str, Any]] = {}  # CompactRules: the atoms that differ only in their verb
    for rule in granted:
        for request, atom in _atomic(rule):
            if any(rule_allows(owner, request) for owner in held):
                continue
            key = tuple(json.dumps(atom.get(k)) for k in ("apiGroups", "resources", "nonResourceURLs", "resourceNames"))
            if key in missing:
                missing[key]["verbs"].append(request.verb)
            else:
                missing[key] = atom
    if not missing:
        return None
    lines = sorted(compact_string(atom) for atom in missing.values())
    return (
        f'user "{username}" (groups={_go_strings(groups)}) is attempting to grant RBAC permissions not currently held:\n'
        + "\n".join(lines)
    )
