"""ValidatingAdmissionPolicies as the API server applies them, for the emulator (emulator.py).

As the Kubernetes documentation describes them (reference/access-authn-authz/validating-admission-policy) and
the API server does them (apiserver admission/plugin/policy/validating: dispatcher.go, validator.go; the
matchConditions matcher, webhook/matchconditions/matcher.go): a policy acts only through a binding
(``spec.policyName``) whose ``validationActions`` include ``Deny``; it applies to the requests its
``matchConstraints.resourceRules`` name (group, version, operation, resource: a subresource such as
``livestrategies/status`` only when named so); then its ``matchConditions`` filter them: any false skips the
policy, all true apply it, an error (and none false) refuses the request under ``failurePolicy: Fail`` (the
default) and skips the policy under ``Ignore``. Each validation's ``expression`` is CEL over ``object``,
``oldObject`` (null for CREATE), ``request`` (an AdmissionRequest: ``operation``, ``name``, ``namespace``,
``kind``, ``resource`` {group, version, resource}, ``subResource``, ``userInfo`` {username, uid, groups, extra}
with empty fields left out as in its JSON, ``dryRun``) and ``variables`` (``spec.variables``, in order, each
able to use the earlier ones); the first that is not true refuses the request with its ``messageExpression``
(else ``message``, else ``failed expression: EXPR``) and its ``reason`` (``Invalid`` when unset: 422). An
expression that cannot be evaluated refuses the request under ``Fail`` with reason ``Invalid`` (422) and
``expression 'EXPR' resulted in error: ...``, and is passed over under ``Ignore``. The emulator prefixes the
message as ``admission.NewForbidden`` does (``crontabs.stable.example.com "c" is forbidden: ...``). The admission
runs after the object is decoded (pruned, defaulted).

Where it differs: CEL is python-cel (``celpy``) with cel-go's strings extension added (``substring``,
``indexOf``, ``lastIndexOf``, ``split``, ``join``, ...: the API server's environment has them), not cel-go; a comparison the two evaluate differently (cel-go's
heterogeneous equality, ``map != null``) errors here, so policies under test avoid it; error texts after
``resulted in error:`` are celpy's. A variable that cannot be evaluated is left out of ``variables``, so an
expression that uses it errors (cel-go errors with the variable's own error: the same outcome, another
text). ``matchResources``, ``paramKind``/``params``, ``authorizer``, ``namespaceObject`` and
``auditAnnotations`` are not read; validationActions ``Warn``/``Audit`` are ignored.
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


def _index_of(text: str, part: str, start: int = 0) -> celpy.celtypes.IntType:
    if not 0 <= start <= len(text):
        raise ValueError(f"index out of range: {start}")
    return celpy.celtypes.IntType(text.find(part, start))


def _last_index_of(text: str, part: str, end: int | None = None) -> celpy.celtypes.IntType:
    limit = len(text) if end is None else end + len(part)
    if end is not None and not 0 <= end < max(len(text), 1):
        raise ValueError(f"index out of range: {end}")
    return celpy.celtypes.IntType(text.rfind(part, 0, limit))


def _substring(text: str, start: int, end: int | None = None) -> celpy.celtypes.StringType:
    end = len(text) if end is None else end
    if not 0 <= start <= end <= len(text):
        raise ValueError(f"index out of range: {start if not 0 <= start <= len(text) else end}")
    return celpy.celtypes.StringType(text[start:end])


def _split(text: str, separator: str, limit: int = -1) -> celpy.celtypes.ListType:
    if limit == 0:
        return celpy.celtypes.ListType([])
    parts = text.split(separator, limit - 1) if limit > 0 else text.split(separator)
    return celpy.celtypes.ListType([celpy.celtypes.StringType(part) for part in parts])


# cel-go's strings extension (ext.Strings), which the API server's CEL environment includes; python-cel lacks it.
STRING_FUNCTIONS = {
    "charAt": lambda text, index: celpy.celtypes.StringType(text[index : index + 1]),
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "lowerAscii": lambda text: celpy.celtypes.StringType(text.lower()),
    "upperAscii": lambda text: celpy.celtypes.StringType(text.upper()),
    "replace": lambda text, old, new, n=-1: celpy.celtypes.StringType(text.replace(old, new, n)),
    "split": _split,
    "substring": _substring,
    "trim": lambda text: celpy.celtypes.StringType(text.strip()),
    "join": lambda items, separator="": celpy.celtypes.StringType(separator.join(items)),
}


@cache
def _program(expression: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(expression), functions=STRING_FUNCTIONS)


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


def _evaluate(expression: str, activation: dict[str, Any] | None) -> Any:
    """The value of ``expression``; raises with the API server's text (cel filter.go) when it cannot be evaluated."""
    try:
        if activation is None:
            raise ValueError("the object holds a value CEL cannot represent")
        return _program(expression).evaluate(activation)
    except Exception as exc:
        cause = str(exc.args[0]) if exc.args else str(exc)
        cause = cause.split(" (in activation", 1)[0]  # celpy appends its whole activation
        raise ValueError(f"expression '{expression}' resulted in error: {cause}") from None


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, celpy.celtypes.BoolType) and bool(value))


def _is_false(value: Any) -> bool:
    return value is False or (isinstance(value, celpy.celtypes.BoolType) and not bool(value))


def _match_conditions(spec: Mapping[str, Any], activation: dict[str, Any] | None) -> bool | str:
    """matcher.go ``Match``: False if any condition is false; else the errors' aggregate text if any errored; else True.
    A condition that is not a boolean is an error (cel-go checks the type when the policy is written)."""
    errors: list[str] = []
    for condition in spec.get("matchConditions") or []:
        try:
            value = _evaluate(condition["expression"], activation)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        if _is_false(value):
            return False
        if not _is_true(value):
            errors.append(f"expression '{condition['expression']}' resulted in error: no such overload")
    if errors:
        return errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
    return True


def _with_variables(spec: Mapping[str, Any], activation: dict[str, Any] | None) -> dict[str, Any] | None:
    if activation is None or not spec.get("variables"):
        return activation
    values: dict[str, Any] = {}
    scope = {**activation, "variables": celpy.celtypes.MapType({})}
    for variable in spec["variables"]:
        with contextlib.suppress(Exception):  # left out: an expression that uses it errors
            values[variable["name"]] = _program(variable["expression"]).evaluate(scope)
        scope = {
            **activation,
            "variables": celpy.celtypes.MapType({celpy.celtypes.StringType(k): v for k, v in values.items()}),
        }
    return scope


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
    user: Mapping[str, Any] | None = None,
    name: str = "",
    namespace: str = "",
    kind: str = "",
) -> Denial | None:
    """Why the bound policies refuse this request, or None. ``resource``: the plural, with ``/SUBRESOURCE``;
    ``user``: the requester as ``AdmissionRequest.userInfo``."""
    bindings = list(bindings)
    if not bindings:  # nothing bound: no policy applies (and no object is converted for CEL)
        return None
    by_name = {(p.get("metadata") or {}).get("name"): p for p in policies}
    plural, _, sub = resource.partition("/")
    request: dict[str, Any] = {
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": plural},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "requestResource": {"group": group, "version": version, "resource": plural},
        "name": name,
        "operation": operation,
        "userInfo": dict(user or {"username": ""}),
        "dryRun": False,
    }
    if sub:
        request["subResource"] = request["requestSubResource"] = sub
    if namespace:
        request["namespace"] = namespace
    try:
        activation: dict[str, Any] | None = {
            "object": celpy.json_to_cel(obj),
            "oldObject": celpy.json_to_cel(old),
            "request": celpy.json_to_cel(request),
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
        policy_spec = policy.get("spec") or {}
        fail = policy_spec.get("failurePolicy", "Fail") == "Fail"
        refusal = f"ValidatingAdmissionPolicy '{policy['metadata']['name']}' with binding '{binding['metadata']['name']}' denied request: "
        matched = _match_conditions(policy_spec, activation)
        if isinstance(matched, str):  # a condition errored, none was false
            if fail:
                return Denial(422, "Invalid", refusal + matched)
            continue
        if not matched:
            continue
        scope = _with_variables(policy_spec, activation)
        for validation in policy_spec.get("validations") or []:
            try:
                passed = _evaluate(validation["expression"], scope)
            except ValueError as exc:  # an expression that cannot be evaluated
                if fail:
                    return Denial(422, "Invalid", refusal + str(exc))
                continue
            if _is_true(passed):
                continue
            message = (
                validation.get("message") or ""
            ).strip() or f"failed expression: {validation['expression'].strip()}"
            if validation.get("messageExpression"):
                with contextlib.suppress(Exception):  # as the API server: the static message instead
                    evaluated = _program(validation["messageExpression"]).evaluate(scope)
                    if isinstance(evaluated, str) and evaluated.strip() and "\n" not in evaluated:
                        message = evaluated.strip()
            reason = validation.get("reason") or "Invalid"
            return Denial(REASON_STATUS.get(reason, 422), reason, refusal + message)
    return None
