"""What the desk may need to do in a namespace, and which of the chart's roles grants it.

The chart (``rbac.deskRoles``) installs four ClusterRoles, bound per namespace by a RoleBinding:

- ``desk``: read the fleet, its RiskBudgets and one strategy's story (LiveStrategies, RiskBudgets, Events, pods and
  their logs, the strategy's ConfigMap, StatefulSet and PodDisruptionBudget). Never Secrets.
- ``trader``: the desk's rights, and halt / resume / acknowledge a risk halt: ``patch`` on ``livestrategies`` (the
  desk's halt annotation, the acknowledgement; the same right changes the spec) and ``livestrategies/scale``.
- ``kill-switch``: ``get``/``patch`` on the Namespace itself (bound in a namespace, it reaches that namespace's
  object only). For the people on call, apart from the trader role (docs/operations.md, "Who may do what").
- ``promoter``: what ``promote`` does and nothing else: ``get`` the paper and the live LiveStrategy, ``create`` or
  ``patch`` the live one, ``create`` a SelfSubjectReview (who asks; most clusters let everyone, through
  ``system:basic-user``, but that binding may be gone). It includes no other role: a promoter who should also see the
  fleet is bound the desk role too.

:data:`RIGHTS` (with :data:`ALSO`) is the one table of rights: the chart's test checks each role against it.
:data:`VERB_ROLES` says which role each verb of the plugin needs; a 403 names the role of the verb being run when
that role grants the refused right, else the narrowest role that does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DESK, TRADER, KILL_SWITCH, PROMOTER = "desk", "trader", "kill-switch", "promoter"
ROLES = (DESK, TRADER, KILL_SWITCH, PROMOTER)
CHART_VALUE = "rbac.deskRoles"
# The release docs/install.md installs: the chart names its ClusterRoles after it (RELEASE-desk, ...).
DEFAULT_RELEASE = "livestrat-operator"


@dataclass(frozen=True)
class Right:
    verb: str
    group: str
    resource: str  # plural, or plural/subresource


# Every request the plugin makes, and the narrowest role that grants it (a trader has the desk's rights too).
RIGHTS: dict[Right, str] = {
    **{Right(verb, "livestrat.io", "livestrategies"): DESK for verb in ("get", "list", "watch")},
    **{Right(verb, "livestrat.io", "riskbudgets"): DESK for verb in ("get", "list", "watch")},
    **{Right(verb, "", "events"): DESK for verb in ("get", "list", "watch")},
    **{Right(verb, "", "pods"): DESK for verb in ("get", "list", "watch")},
    Right("get", "", "pods/log"): DESK,
    **{Right(verb, "", "configmaps"): DESK for verb in ("get", "list", "watch")},
    **{Right(verb, "apps", "statefulsets"): DESK for verb in ("get", "list", "watch")},
    **{Right(verb, "policy", "poddisruptionbudgets"): DESK for verb in ("get", "list", "watch")},
    Right("patch", "livestrat.io", "livestrategies"): TRADER,
    Right("get", "livestrat.io", "livestrategies/scale"): TRADER,
    Right("patch", "livestrat.io", "livestrategies/scale"): TRADER,
    Right("get", "", "namespaces"): KILL_SWITCH,
    Right("patch", "", "namespaces"): KILL_SWITCH,
    Right("create", "livestrat.io", "livestrategies"): PROMOTER,
    Right("create", "authentication.k8s.io", "selfsubjectreviews"): PROMOTER,
}
# Rights a role holds that a narrower role holds too, without including that role whole: the promoter reads and
# patches the strategies it promotes, but neither lists the fleet (desk) nor scales (trader).
ALSO: dict[str, frozenset[Right]] = {
    PROMOTER: frozenset(Right(verb, "livestrat.io", "livestrategies") for verb in ("get", "patch")),
}
# What each role holds: its own rights and those of the roles it includes.
INCLUDES = {DESK: (DESK,), TRADER: (DESK, TRADER), KILL_SWITCH: (KILL_SWITCH,), PROMOTER: (PROMOTER,)}
# Each verb of the plugin (livestrat.desk.plugin) and the chart's role that lets it do all it does.
VERB_ROLES: dict[str, str] = {
    **dict.fromkeys(("list", "top", "budgets", "status", "fills", "report", "logs", "desk"), DESK),
    **dict.fromkeys(("halt", "resume", "ack-risk"), TRADER),
    "kill-switch": KILL_SWITCH,  # with the desk role too, it names the strategies it halts
    "promote": PROMOTER,
}


def rights_of(role: str) -> set[Right]:
    return {right for right, needed in RIGHTS.items() if needed in INCLUDES[role]} | set(ALSO.get(role, ()))


def role_for(right: Right, verb: str | None = None) -> str | None:
    """The chart's role to ask for when ``right`` is refused: the plugin verb's own role when it grants it (a
    promote refused ``patch`` needs the promoter role, though the trader's has that right too), else the narrowest
    role that grants it, else None."""
    own = VERB_ROLES.get(verb or "")
    if own is not None and right in rights_of(own):
        return own
    return RIGHTS.get(right)


def rules_of(role: str) -> list[dict[str, list[str]]]:
    """The RBAC rules that grant exactly :func:`rights_of` ``role``, one rule per group and resource."""
    by_resource: dict[tuple[str, str], list[str]] = {}
    for right in sorted(rights_of(role), key=lambda r: (r.group, r.resource, r.verb)):
        by_resource.setdefault((right.group, right.resource), []).append(right.verb)
    return [{"apiGroups": [g], "resources": [r], "verbs": verbs} for (g, r), verbs in by_resource.items()]


_PATH = re.compile(r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)(?:/namespaces/(?P<ns>[^/]+))?/(?P<rest>.*)$")


@dataclass(frozen=True)
class Refusal:
    """What a 403 refused, read from the request, and the chart's role that grants it (None: none of them)."""

    verb: str
    resource: str
    namespace: str | None
    role: str | None

    @property
    def where(self) -> str:
        return f"in namespace {self.namespace!r}" if self.namespace else "in all namespaces"

    @property
    def what(self) -> str:
        """``you may not list riskbudgets in namespace 'x'``"""
        return f"you may not {self.verb} {self.resource} {self.where}"

    def line(self) -> str:
        """One line: ``you may not list riskbudgets in namespace 'x'; the chart's 'desk' role grants it``."""
        return self.what + (f"; the chart's {self.role!r} role grants it" if self.role else "")


def refusal(method: str, path: str, verb: str | None = None) -> Refusal | None:
    """The right a request refused with 403 needed, and the role to ask for when running the plugin's ``verb`` (None:
    the path is not one of the API's)."""
    found = _PATH.match(path.split("?")[0])
    if found is None:
        return None
    parts = found["rest"].split("/")
    namespace = found["ns"]
    if parts[0] == "namespaces" and len(parts) >= 2:  # the Namespace object itself
        namespace, resource = parts[1], "namespaces" + (f"/{parts[2]}" if len(parts) > 2 else "")
    else:
        resource = parts[0] + (f"/{parts[2]}" if len(parts) > 2 else "")
    asked = {"GET": "list" if len(parts) == 1 else "get", "PATCH": "patch", "POST": "create"}.get(
        method, method.lower()
    )
    if "watch=" in path:
        asked = "watch"
    return Refusal(asked, resource, namespace, role_for(Right(asked, found["group"] or "", resource), verb))


def forbidden_advice(method: str, path: str, message: str, context: str = "", verb: str | None = None) -> str:
    """A 403 in the user's words: what was refused, which role of the chart grants it (for the plugin's ``verb``,
    that verb's role when it does), and how to get it."""
    refused = refusal(method, path, verb)
    if refused is None:
        return f"forbidden: {message}"
    namespace, role = refused.namespace, refused.role
    text = f"forbidden: {refused.what}"
    if context:
        text += f" (kubeconfig context {context!r})"
    text += f".\nThe API server said: {message}"
    if role is None:
        return text
    binding_ns = namespace or "NAMESPACE"
    cluster_role = f"{DEFAULT_RELEASE}-{role}"
    return (
        f"{text}\nThe chart's {role!r} role grants it: ClusterRole {cluster_role} (the release's name, then -{role}; "
        f"Helm value {CHART_VALUE}.enabled; docs/desk.md, 'Roles'). Ask your cluster admin to bind it to you there:\n"
        f"  kubectl -n {binding_ns} create rolebinding YOU-{role} --clusterrole={cluster_role} --user=YOU"
    )
