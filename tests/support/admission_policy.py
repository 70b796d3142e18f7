"""ValidatingAdmissionPolicies as the API server applies them, for the emulator (tests/support/kube_emulator.py).

As the Kubernetes documentation describes them (reference/access-authn-authz/validating-admission-policy):
a policy acts only through a binding (``spec.policyName``) whose ``validationActions`` include ``Deny``; it
applies to the requests its ``matchConstraints.resourceRules`` name (group, version, operation, resource: a
subresource such as ``livestrategies/status`` only when named so); each validation's ``expression`` is CEL over
``object``, ``oldObject`` (null for CREATE) and ``request``; the first that is not true refuses the request with
its ``messageExpression`` (else ``message``) and its ``reason`` (``Invalid`` when unset: 422); an expression that
cannot be evaluated refuses the request under ``failurePolicy: Fail`` (the default) and is passed over under
``Ignore``. The admission runs after the object is decoded (pruned, defaulted).

Where it differs: CEL is python-cel (``celpy``), not cel-go; a comparison the two evaluate differently (cel-go's
heterogeneous equality, ``map != null``) errors here, so policies under test avoid it. ``matchResources``,
``paramKind``, ``variables``, ``auditAnnotations`` and ``matchConditions`` are not read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import celpy

REASON_STATUS = {"Invalid": 422, "Forbidden": 403, "Unauthorized": 401, "RequestEntityTooLarge": 413}


@dataclass(frozen=True)
class Denial:
    status: int
    reason: str
    message: str


@cache
def _program(expression: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(expression))


def _matches(policy: Mapping[str, Any], group: str, version: str, resource: str, operation: str) -> bool:
    rules = ((policy.get("spec") or {}).get("matchConstraints") or {}).get("resourceRules") or []
    for rule in rules:
        if not all(
            value in (rule.get(key) or []) or "*" in (rule.get(key) or [])
            for key, value in (
                ("apiGroups", group),
                ("apiVersions", version),
                ("operations", operation),
                ("resources", resource),
            )
        ):
            continue
        return True
    return False


def denial(
    policies: Iterable[Mapping[str, Any]],
    bindings: Iterable[Mapping[str, Any]],
    *,
    group: str,
    version: str,
    resource: str,
    operation: str,
    obj: Any,
    old: Any,
) -> Denial | None:
    """Why the bound policies refuse this request, or None. ``resource``: the plural, with ``/SUBRESOURCE``."""
    bindings = list(bindings)
    if not bindings:  # nothing bound: no policy applies (and no object is converted for CEL)
        return None
    by_name = {(p.get("metadata") or {}).get("name"): p for p in policies}
    try:
        activation: dict[str, Any] | None = {
            "object": celpy.json_to_cel(obj),
            "oldObject": celpy.json_to_cel(old),
            "request": celpy.json_to_cel({"operation": operation, "resource": {"group": group, "resource": resource}}),
        }
    except ValueError:  # a number CEL cannot hold (an object stored past validation): no expression evaluates
        activation = None
    for binding in bindings:
        spec = binding.get("spec") or {}
        policy = by_name.get(spec.get("policyName"))
        if policy is None or "Deny" not in (spec.get("validationActions") or []):
            continue
        if not _matches(policy, group, version, resource, operation):
            continue
        fail = (policy.get("spec") or {}).get("failurePolicy", "Fail") == "Fail"
        for validation in (policy.get("spec") or {}).get("validations") or []:
            try:
                if activation is None:
                    raise ValueError("the object holds a value CEL cannot represent")
                passed = _program(validation["expression"]).evaluate(activation)
            except Exception as exc:  # an expression that cannot be evaluated
                if fail:
                    return Denial(500, "InternalError", f"policy '{policy['metadata']['name']}' failed: {exc}")
                continue
            if passed is True or passed == celpy.celtypes.BoolType(True):
                continue
            message = validation.get("message") or f"failed expression: {validation['expression']}"
            if validation.get("messageExpression"):
                with contextlib.suppress(Exception):  # as the API server: the static message instead
                    message = str(_program(validation["messageExpression"]).evaluate(activation))
            reason = validation.get("reason") or "Invalid"
            return Denial(
                REASON_STATUS.get(reason, 422),
                reason,
                f"ValidatingAdmissionPolicy '{policy['metadata']['name']}' with binding "
                f"'{binding['metadata']['name']}' denied request: {message}",
            )
    return None
