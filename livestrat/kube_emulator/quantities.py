"""Resource quantities stored in canonical form, as the API server stores them.

The Quantity type of the Kubernetes API reference ("Quantity", common definitions): a quantity is
parsed (a signed decimal number, then a binary SI suffix ``Ki..Ei``, a decimal SI suffix ``m "" k M
G T P E`` -- apimachinery also takes ``n`` and ``u`` -- or a decimal exponent ``e<n>``/``E<n>``), at
most three decimal places (more precise values are rounded up: ``0.1m`` is ``1m``), and serialised in
canonical form: it keeps the kind of suffix it was written with; no precision is lost, no fractional
digits are written, and the exponent or suffix is as large as possible (``1.5`` is ``1500m``,
``1.5Gi`` is ``1536Mi``). A binary quantity that is not a whole number or is below 1024 is written
with a decimal suffix, as apimachinery's ``CanonicalizeBytes`` does.

Written independently of the operator's own parser (``strategy_operator/quantities.py``), so that a
mistake in one does not hide in the other. Where quantities sit in what is stored: container
resources (``containers``, ``initContainers``, ``ephemeralContainers``), the pod's own ``resources``
and ``overhead``, and ``emptyDir.sizeLimit``, in pods and in the pod templates of workloads.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

import kmock

_FORM = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$")
_BINARY = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_DECIMAL = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_DECIMAL_EXPONENTS = {suffix: exponent for exponent, suffix in _DECIMAL.items()}

# What the documentation says a written quantity becomes: "1.5 will be serialized as 1500m", "1.5Gi will be
# serialized as 1536Mi", "0.1m will rounded up to 1m"; and by the canonical form's rules (same kind of suffix, no
# fractional digits, the largest exponent or suffix that loses no precision) the others.
DOCUMENTED_EXAMPLES = [
    ("1.5", "1500m"),
    ("1.5Gi", "1536Mi"),
    ("0.1m", "1m"),
    ("0.5", "500m"),
    ("1000m", "1"),
    ("500m", "500m"),
    ("2000", "2k"),
    ("1024Mi", "1Gi"),
    ("100Mi", "100Mi"),
    ("0.5Gi", "512Mi"),
    ("1.5Ki", "1536"),  # a binary quantity that is no whole number of Ki: decimal
    ("512Ki", "512Ki"),
    ("1e3", "1e3"),
    ("0", "0"),
]

PODS = kmock.resource("", "v1", "pods")
TEMPLATES = {  # workloads whose spec.template (spec.jobTemplate.spec.template for CronJobs) is a pod template
    kmock.resource("apps", "v1", plural) for plural in ("statefulsets", "deployments", "replicasets", "daemonsets")
} | {kmock.resource("batch", "v1", "jobs"), kmock.resource("", "v1", "podtemplates")}


def _parsed(text: Any) -> tuple[Decimal, str] | None:
    """A quantity's exact value and the kind of its suffix (binary, decimal, exponent); None if not one."""
    found = _FORM.match(text.strip()) if isinstance(text, str) else None
    if found is None:
        return None
    number, suffix = Decimal(found[1]), found[2] or ""
    if suffix in _BINARY[1:]:
        return number * 1024 ** _BINARY.index(suffix), "binary"
    if suffix in _DECIMAL_EXPONENTS:
        return number.scaleb(_DECIMAL_EXPONENTS[suffix]), "decimal"
    return number.scaleb(int(suffix[1:])), "exponent"


def value(text: Any) -> Decimal:
    """A quantity's exact value (``500m`` is 0.5, ``1Gi`` is 1073741824, ``1e3`` is 1000); ValueError if not one."""
    parsed = _parsed(text if isinstance(text, str) else str(text))
    if parsed is None:
        raise ValueError(f"not a quantity: {text!r}")
    return parsed[0]


def canonical(text: str) -> str:
    """``text`` in canonical form; unchanged when it is not a quantity (validation is not emulated here)."""
    parsed = _parsed(text)
    if parsed is None:
        return text
    value, kind = parsed
    milli = math.ceil(value * 1000)  # at most three decimal places, rounded up
    if milli == 0:
        return "0"
    sign, milli = ("-" if milli < 0 else ""), abs(milli)
    if kind == "binary" and milli % 1000 == 0 and milli >= 1024 * 1000:
        whole, power = milli // 1000, 0
        while power < len(_BINARY) - 1 and whole % 1024 == 0:
            whole, power = whole // 1024, power + 1
        return f"{sign}{whole}{_BINARY[power]}"
    mantissa, exponent = milli, -3
    while mantissa % 1000 == 0 and exponent < 18:
        mantissa, exponent = mantissa // 1000, exponent + 3
    if kind == "exponent":
        return f"{sign}{mantissa}" + (f"e{exponent}" if exponent else "")
    return f"{sign}{mantissa}{_DECIMAL[exponent]}"


def _resources(resources: Any) -> None:
    if not isinstance(resources, dict):
        return
    for key in ("requests", "limits"):
        values = resources.get(key)
        if isinstance(values, dict):
            resources[key] = {name: canonical(value) for name, value in values.items()}


def canonicalise_pod_spec(spec: Any) -> None:
    """Every quantity of a pod spec in canonical form (in place)."""
    if not isinstance(spec, dict):
        return
    for field in ("containers", "initContainers", "ephemeralContainers"):
        for container in spec.get(field) or []:
            if isinstance(container, dict):
                _resources(container.get("resources"))
    _resources(spec.get("resources"))
    if isinstance(spec.get("overhead"), dict):
        spec["overhead"] = {name: canonical(value) for name, value in spec["overhead"].items()}
    for volume in spec.get("volumes") or []:
        empty = volume.get("emptyDir") if isinstance(volume, dict) else None
        if isinstance(empty, dict) and "sizeLimit" in empty:
            empty["sizeLimit"] = canonical(empty["sizeLimit"])


def canonicalise(resource: kmock.resource, body: dict[str, Any]) -> None:
    """The quantities of a pod, or of a workload's pod template, in canonical form (in place), as stored."""
    if resource == PODS:
        canonicalise_pod_spec(body.get("spec"))
    elif resource in TEMPLATES:
        template = (
            body.get("template") if resource.plural == "podtemplates" else (body.get("spec") or {}).get("template")
        )
        if isinstance(template, dict):
            canonicalise_pod_spec(template.get("spec"))
