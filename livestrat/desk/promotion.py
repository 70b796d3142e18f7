"""``kubectl livestrat promote PAPER --to LIVE [-f live.yaml]``: ask the operator to admit a live strategy on the
track record of a paper one (docs/promotion.md).

The desk decides nothing: it writes the request, and the operator checks it. The live LiveStrategy gets
``spec.promotion.from: PAPER`` (with the criteria of ``live.yaml``, or those it has, or the defaults), the paper
strategy's own strategy (class, config, instruments: a promotion vouches for exactly what the paper strategy ran)
and the annotation ``livestrat.io/promoted-by`` with the user the API server authenticates the session as (a
SelfSubjectReview, as ``kubectl auth whoami``). The operator then reads the paper strategy's status, records its
decision with the figures in ``status.promotion`` and an Event, and gives the live strategy a pod only when every
criterion holds; it never restarts a live strategy that runs the same strategy already.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from livestrat.api.contract import PROMOTED_BY_ANNOTATION
from livestrat.api.promotion import PromotionState
from livestrat.api.resource import API_VERSION, KIND
from livestrat.api.spec import LiveStrategySpec
from livestrat.api.status import LiveStrategyStatus, own_status
from livestrat.desk.actions import Action
from livestrat.desk.cluster import Cluster, DeskError, NotFound

# What a promotion carries over from the paper strategy: what it vouches for.
CARRIED = ("strategy", "instruments")


def merge_patch(old: Any, new: Any) -> Any:
    """The JSON merge patch (RFC 7386) that turns ``old`` into ``new``: keys ``old`` has and ``new`` lacks are
    deleted (null), objects are patched key by key, anything else is replaced."""
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return new
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_patch(old[key], value)
    return patch


def _track_record(paper: Mapping[str, Any]) -> str:
    try:
        status = LiveStrategyStatus.model_validate(own_status(paper) or {})
    except ValidationError:
        return "its status does not read"
    trading = next((c for c in status.conditions if c.type == "Trading"), None)
    since = f"trading since {trading.last_transition_time}" if trading and trading.status == "True" else "not trading"
    fills = status.trading.fills if status.trading else 0
    drawdown = (status.risk.max_drawdown if status.risk else None) or "not reported"
    risk = status.risk.state if status.risk else "not reported"
    return f"phase {status.phase}, {since}, {fills} fills, largest drawdown {drawdown}, risk state {risk}"


def _live_spec(paper_name: str, paper: Mapping[str, Any], base: Mapping[str, Any], source: str) -> dict[str, Any]:
    paper_spec = paper.get("spec") or {}
    spec = dict(base)
    for key in CARRIED:
        if key in base and base[key] != paper_spec.get(key):
            raise DeskError(
                f"{source} sets spec.{key} unlike the paper strategy {paper_name}: a promotion runs exactly what the "
                f"paper strategy ran; remove spec.{key} from it (the paper strategy's is taken) or make it the same"
            )
        spec[key] = paper_spec.get(key)
    promotion = dict(spec.get("promotion") or {})
    if promotion.get("from") not in (None, paper_name):
        raise DeskError(
            f"{source} promotes from {promotion['from']!r} (spec.promotion.from), not {paper_name!r}: "
            "make them the same"
        )
    spec["promotion"] = {**promotion, "from": paper_name}
    if spec.get("mode") != "live":
        raise DeskError(
            f"{source} is mode {spec.get('mode') or 'paper'}: a promotion admits a live strategy; set spec.mode: live "
            "with its venue, credentialsSecret, risk limits and ledger (examples/live-ema-cross-promoted.yaml)"
        )
    try:
        LiveStrategySpec.model_validate(spec)
    except ValidationError as exc:
        problems = "; ".join(f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise DeskError(f"the live strategy would not be valid: {problems} (see livestrat validate)") from None
    return spec


async def promote(
    cluster: Cluster, namespace: str, paper_name: str, live_name: str, manifest: Mapping[str, Any] | None
) -> Action:
    """The promotion request: create the live strategy (from ``manifest``), or update it (with ``manifest``'s
    settings if given), with ``spec.promotion.from`` the paper strategy and the requester's identity."""
    paper = await cluster.get_strategy(namespace, paper_name)
    if (paper.get("spec") or {}).get("mode") != "paper":
        raise DeskError(f"LiveStrategy {paper_name} in namespace {namespace} is not mode paper: promote a paper one")
    try:
        existing: dict[str, Any] | None = await cluster.get_strategy(namespace, live_name)
    except NotFound:
        existing = None
    if manifest is not None:
        named = (manifest.get("metadata") or {}).get("name")
        if manifest.get("kind") != KIND or named not in (None, live_name):
            raise DeskError(f"-f must hold a LiveStrategy named {live_name} (or unnamed); it holds {named!r}")
        base, source = manifest.get("spec") or {}, "the file given with -f"
    elif existing is not None:
        base, source = existing.get("spec") or {}, f"LiveStrategy {live_name}"
    else:
        raise DeskError(
            f"LiveStrategy {live_name} does not exist in namespace {namespace}: give its live settings (venue, "
            "credentialsSecret, risk limits, ledger, promotion criteria) with -f live.yaml "
            "(examples/live-ema-cross-promoted.yaml)"
        )
    spec = _live_spec(paper_name, paper, base, source)
    user = await cluster.whoami()
    criteria = LiveStrategySpec.model_validate(spec).promotion
    assert criteria is not None
    target = f"LiveStrategy {live_name} in namespace {namespace}"
    shown = criteria.criteria
    plan = [
        f"paper strategy {paper_name} now: {_track_record(paper)}",
        f"criteria: traded at least {shown.min_duration_seconds}s, at least {shown.min_fills} fills, "
        + (f"largest drawdown below {shown.max_drawdown:g}, " if shown.max_drawdown is not None else "")
        + "no risk halt, the same strategy",
    ]
    annotations = {PROMOTED_BY_ANNOTATION: user}
    if existing is None:
        meta = dict(manifest.get("metadata") or {}) if manifest else {}
        meta.update(name=live_name, namespace=namespace)
        meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
        body = {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": spec}
        plan.append(f"create {live_name} (mode live) running {paper_name}'s strategy, promoted by {user}")

        async def create(c: Cluster) -> str:
            await c.create_strategy(namespace, body)
            return f"created LiveStrategy {live_name}, promoted from {paper_name} by {user}"

        step = create
    else:
        old_spec = existing.get("spec") or {}
        record = (existing.get("status") or {}).get("promotion") or {}
        same_strategy = all(old_spec.get(k) == spec.get(k) for k in CARRIED)
        if (
            spec == old_spec
            and record.get("state") == PromotionState.ACCEPTED
            and (record.get("from") == paper_name)
            and same_strategy
        ):
            return Action(
                "promote",
                target,
                tuple(plan),
                nothing_to_do=f"promoted from {paper_name} already, by {record.get('promotedBy')} at "
                f"{record.get('decidedAt')}",
            )
        if same_strategy:
            plan.append(f"{live_name} runs {paper_name}'s strategy already: a running pod keeps running, unrestarted")
        else:
            plan.append(
                f"{live_name} takes {paper_name}'s strategy; the operator applies it only once the promotion is "
                "accepted (a running pod keeps its strategy until then; then updatePolicy says when it restarts)"
            )
        patch = {"metadata": {"annotations": annotations}, "spec": merge_patch(old_spec, spec)}

        async def update(c: Cluster) -> str:
            await c.patch_strategy(namespace, live_name, patch)
            return f"updated LiveStrategy {live_name}: promotion from {paper_name} asked by {user}"

        step = update
    plan.append(
        f"the operator checks {paper_name}'s track record against the criteria, records its decision with the figures "
        f"in status.promotion and an Event, and gives {live_name} a pod only when every criterion holds: watch it "
        f"with `kubectl livestrat status {live_name}`"
    )
    return Action("promote", target, tuple(plan), (step,), lambda c: c.get_strategy(namespace, live_name))
