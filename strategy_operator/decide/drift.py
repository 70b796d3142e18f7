"""What differs between what a running strategy pod runs and what the operator would build now.

A running pod is left as it is under ``updatePolicy: Manual``, and under any policy when only
the operator changed (a new version, a new default runtime image); the ``ConfigDrift``
condition then names what differs, read from

- the two rendered ``runtime.json`` documents (the one in the ConfigMap the pod mounted, and
  the one the current spec renders to), split into what the LiveStrategy asks for (its spec,
  its identity, its risk acknowledgement) and what the operator adds (ledger target, log
  level, paths);
- the two pod templates (the StatefulSet's, and the one the operator would build now).

:func:`verdict` is the ``ConfigDrift`` condition: what differs, whose change it is (the
strategy's spec, or the operator's version or settings) and how it applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from livestrat.api.spec import UpdatePolicy
from livestrat.api.status import ConditionType
from strategy_operator.build import labels
from strategy_operator.build.configuration import config_substance
from strategy_operator.build.manifests import fixed_field_changes
from strategy_operator.decide.conditions import Verdict
from strategy_operator.decide.plan import Plan
from strategy_operator.observe.observation import Observation
from strategy_operator.quantities import QUANTITY_FIELDS, QUANTITY_MAPS, same_quantity

MAX_LISTED = 12
# runtime.json fields that come from the LiveStrategy itself; the others come from the operator.
STRATEGY_FIELDS = ("spec", "strategy", "riskAcknowledgement")
# Pod template annotations that summarise the rest: a difference in them is no news.
SUMMARY_ANNOTATIONS = (labels.CONFIG_HASH_ANNOTATION, labels.SPEC_HASH_ANNOTATION)


def _leaves(value: Any, path: str, out: dict[str, Any], depth: int) -> None:
    if isinstance(value, dict) and depth > 0 and value:
        for key, item in value.items():
            _leaves(item, f"{path}.{key}" if path else str(key), out, depth - 1)
    elif isinstance(value, list) and depth > 0 and value and all(isinstance(i, dict) and "name" in i for i in value):
        for item in value:  # containers, volumes, env: by name, not by position
            _leaves(item, f"{path}[{item['name']}]", out, depth - 1)
    else:
        out[path] = value


def _same(path: str, a: Any, b: Any) -> bool:
    """Equal values; quantities (resources, sizeLimit) by value, as the API server rewrites them (0.5 is 500m)."""
    *_, parent, key = ["", *path.split(".")]
    if key in QUANTITY_FIELDS or parent in QUANTITY_MAPS:
        return same_quantity(a, b)
    return a == b


def _differences(old: Any, new: Any, depth: int) -> list[str]:
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    _leaves(old, "", before, depth)
    _leaves(new, "", after, depth)
    return sorted(path for path in before.keys() | after.keys() if not _same(path, before.get(path), after.get(path)))


def changed_fields(running: dict[str, Any] | None, desired: dict[str, Any], *, depth: int = 4) -> list[str]:
    """Dotted paths (``spec.risk.maxDailyLoss``) whose values differ; ``[]`` when only scaling differs."""
    if running is None:
        return ["(no running configuration)"]
    return _differences(config_substance(running), config_substance(desired), depth)


def split(fields: list[str]) -> tuple[list[str], list[str]]:
    """(the fields the LiveStrategy asks for, the fields the operator adds)."""
    mine = [f for f in fields if f.split(".", 1)[0] in STRATEGY_FIELDS or f.startswith("(")]
    return mine, [f for f in fields if f not in mine]


def _without_summaries(template: Mapping[str, Any] | None) -> dict[str, Any]:
    template = dict(template or {})
    meta = dict(template.get("metadata") or {})
    meta["annotations"] = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in SUMMARY_ANNOTATIONS}
    template["metadata"] = meta
    return template


def template_changes(applied: Mapping[str, Any] | None, desired: Mapping[str, Any], *, depth: int = 8) -> list[str]:
    """Paths in the pod template (``spec.containers[strategy].image``) whose values differ."""
    return _differences(_without_summaries(applied), _without_summaries(desired), depth)


def _image(template: Mapping[str, Any] | None) -> str | None:
    containers = ((template or {}).get("spec") or {}).get("containers") or []
    return next((c.get("image") for c in containers if c.get("name") == labels.CONTAINER), None)


def image_change(applied: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(its template path, the image the operator would run now, the image the pod runs), if they differ."""
    before, after = _image(applied), _image(desired)
    if before is None or after is None or before == after:
        return None
    return f"spec.containers[{labels.CONTAINER}].image", after, before


def describe(fields: list[str]) -> str:
    listed = ", ".join(fields[:MAX_LISTED])
    more = f" and {len(fields) - MAX_LISTED} more" if len(fields) > MAX_LISTED else ""
    return f"{listed}{more}"


def pending_drift(obs: Observation) -> Verdict:
    """The running pod is left as it is, and differs from what the operator would build now: say what differs,
    whose change it is (the strategy's spec, or the operator's version or settings) and how it applies."""
    assert obs.spec is not None
    manual = obs.spec.update_policy == UpdatePolicy.MANUAL
    spec_fields, operator_fields = split(changed_fields(obs.running_config, obs.desired_config))
    applied_template = ((obs.statefulset or {}).get("spec") or {}).get("template")
    desired_template = ((obs.desired_statefulset or {}).get("spec") or {}).get("template") or {}
    image = image_change(applied_template, desired_template)
    template_fields = [f for f in template_changes(applied_template, desired_template) if not image or f != image[0]]
    restart = "change spec.restartNonce, or halt and resume the strategy" + ("" if manual else ", or change its spec")
    refused = [*obs.problems, *obs.deferred_problems]
    pending = " The pending configuration cannot start yet: " + " ".join(p.message for p in refused) if refused else ""
    generation = (obs.running_config or {}).get("generation", "?")
    if spec_fields:
        policy = "updatePolicy is Manual: " if manual else ""
        return Verdict.true(
            ConditionType.CONFIG_DRIFT,
            "SpecChanged",
            f"{policy}the running strategy keeps generation {generation}'s configuration; the spec differs in "
            f"{describe(spec_fields)}. To restart with it: {restart}.{pending}",
        )
    parts = []
    if image:
        parts.append(f"runtime image {image[1]} (the pod runs {image[2]})")
    if template_fields:
        parts.append(f"pod template ({describe(template_fields)})")
    if operator_fields:
        parts.append(f"runtime.json ({describe(operator_fields)})")
    what = "; ".join(parts) or "pod template"
    return Verdict.true(
        ConditionType.CONFIG_DRIFT,
        "RuntimeImageChanged" if image else "OperatorUpgraded",
        f"the operator (a new version, or new settings) would now build this strategy's pod differently: {what}. "
        f"A running strategy is never restarted for that; it gets the new pod at its next restart: {restart}.{pending}",
    )


def fixed_drift(obs: Observation, fields: list[str]) -> Verdict:
    """The StatefulSet was built with fixed fields (which no update may change) that this operator builds otherwise."""
    return Verdict.true(
        ConditionType.CONFIG_DRIFT,
        "OperatorUpgraded",
        f"StatefulSet {obs.name} was built with other {describe(fields)} than this operator builds, and the API "
        "server lets no update change them: it keeps them, and its pod is not affected (its other fields are kept "
        f"up to date). To build it anew: halt the strategy, then kubectl delete statefulset {obs.name} "
        "(the operator creates it again).",
    )


def verdict(obs: Observation, plan_: Plan) -> Verdict:
    spec = obs.spec
    pod = obs.pod
    if spec is None or obs.statefulset is None:
        return Verdict.false(ConditionType.CONFIG_DRIFT, "UpToDate", "")
    fixed = fixed_field_changes(obs.desired_statefulset, obs.statefulset)
    if fixed and (plan_.apply or obs.applied_hash == obs.desired_hash):
        return fixed_drift(obs, fixed)
    if not plan_.apply and obs.applied_hash != obs.desired_hash:
        return pending_drift(obs)
    if plan_.replicas == 1 and pod is not None and pod.config_hash not in (None, obs.desired_hash):
        return Verdict.true(
            ConditionType.CONFIG_DRIFT, "Restarting", f"pod {pod.name} restarts with the new configuration"
        )
    return Verdict.false(ConditionType.CONFIG_DRIFT, "UpToDate", "")
