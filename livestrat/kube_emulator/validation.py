"""What the API server checks of every object's metadata, for the emulator (kube_emulator.py).

- **Names**, per resource, as the Kubernetes documentation lists them ("Object Names and IDs",
  and the StatefulSet page: "The name of a StatefulSet object must be a valid DNS label"):
  a DNS-1035 label for Services (a letter first), a DNS-1123 label for Namespaces and
  StatefulSets, a path segment for the RBAC kinds, and a DNS-1123 subdomain for everything
  else, custom resources included. ``metadata.generateName`` is checked as a prefix (a trailing
  ``-`` is allowed) and completed as the API server does: at most 58 characters kept, then 5
  random ones.
- **Annotations**: keys and values together at most 256 KiB (the annotations page: "the total
  size of all annotations (keys and values combined) must not exceed 256 KiB"). The keys'
  syntax is not checked.
- **ConfigMap keys** (``data`` and ``binaryData``), as ``ValidateConfigMap`` checks them
  (``IsConfigMapKey``): at most 253 characters of ``[-._a-zA-Z0-9]``, not ``.`` or ``..`` and not starting
  with ``..`` (so every key is a file name a configMap volume can hold beside its ``..data`` link), and no key
  in both maps. The 1 MiB total is not checked.

The messages are apimachinery's (``k8s.io/apimachinery/pkg/util/validation``), so a test that
reads one reads what a real cluster answers; :func:`invalid` wraps them in the 422 ``Invalid``
Status the API server sends. Where this differs: the StatefulSet rule follows the documentation
(a DNS label), which is stricter than the subdomain some API server versions accept.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import kmock

DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = rf"{DNS1123_LABEL}(\.{DNS1123_LABEL})*"
DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
LABEL_MAX_LENGTH = 63
SUBDOMAIN_MAX_LENGTH = 253
TOTAL_ANNOTATION_SIZE = 256 * 1024
# names.SimpleNameGenerator: a generateName is cut to 58 characters and completed with 5 random ones.
GENERATED_PREFIX_MAX_LENGTH = 58
GENERATED_SUFFIX_LENGTH = 5
GENERATED_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # utilrand's: no vowels, no 0, 1 or 3

NameCheck = Callable[[str, bool], list[str]]


def _regex_error(message: str, pattern: str, *examples: str) -> str:
    """apimachinery's RegexError, double space included."""
    shown = "".join(f"{' or ' if i else ''}'{example}', " for i, example in enumerate(examples))
    return f"{message} (e.g. {shown}regex used for validation is '{pattern}')"


def _mask_trailing_dash(name: str) -> str:
    # A prefix may end with '-': the API server checks it as if that '-' were a letter.
    return name[:-1] + "a" if name.endswith("-") else name


def _pattern_check(pattern: str, max_length: int, message: str, *examples: str) -> NameCheck:
    def check(name: str, prefix: bool) -> list[str]:
        name = _mask_trailing_dash(name) if prefix else name
        errors = [f"must be no more than {max_length} characters"] if len(name) > max_length else []
        if not re.fullmatch(pattern, name):
            errors.append(_regex_error(message, pattern, *examples))
        return errors

    return check


dns1123_subdomain = _pattern_check(
    DNS1123_SUBDOMAIN,
    SUBDOMAIN_MAX_LENGTH,
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character",
    "example.com",
)
dns1123_label = _pattern_check(
    DNS1123_LABEL,
    LABEL_MAX_LENGTH,
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character",
    "my-name",
    "123-abc",
)
dns1035_label = _pattern_check(
    DNS1035_LABEL,
    LABEL_MAX_LENGTH,
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character",
    "my-name",
    "abc-123",
)


def path_segment(name: str, prefix: bool) -> list[str]:
    errors = [] if prefix or name not in (".", "..") else [f"may not be '{name}'"]
    return errors + [f"may not contain '{c}'" for c in ("/", "%") if c in name]


RBAC = "rbac.authorization.k8s.io"
NAME_CHECKS: dict[tuple[str, str], NameCheck] = {
    ("", "services"): dns1035_label,
    ("", "namespaces"): dns1123_label,
    ("apps", "statefulsets"): dns1123_label,
    **{(RBAC, plural): path_segment for plural in ("roles", "rolebindings", "clusterroles", "clusterrolebindings")},
}


def name_check(group: str, plural: str) -> NameCheck:
    """The rule a name of this resource must follow (a DNS-1123 subdomain unless the table says otherwise)."""
    return NAME_CHECKS.get((group, plural), dns1123_subdomain)


def generated_name(prefix: str) -> str:
    kept = prefix[:GENERATED_PREFIX_MAX_LENGTH]
    return kept + "".join(random.choices(GENERATED_ALPHABET, k=GENERATED_SUFFIX_LENGTH))


@dataclass(frozen=True)
class FieldError:
    """One ``field.Error`` of apimachinery: where, which kind of error, and what it says."""

    field: str
    reason: str  # FieldValueInvalid, FieldValueTooLong
    body: str  # "Invalid value: \"x\": ..." or "Too long: ..."

    @classmethod
    def invalid_value(cls, field: str, value: str, detail: str) -> FieldError:
        return cls(field, "FieldValueInvalid", f"Invalid value: {json.dumps(value)}: {detail}")

    @classmethod
    def too_long(cls, field: str, limit: int) -> FieldError:
        return cls(field, "FieldValueTooLong", f"Too long: may not be more than {limit} bytes")

    def __str__(self) -> str:
        return f"{self.field}: {self.body}"


def metadata_errors(resource: kmock.resource, meta: Mapping[str, Any], *, names: bool) -> list[FieldError]:
    """What the API server refuses in ``meta``; ``names``: check the name too (on creation)."""
    errors: list[FieldError] = []
    if names:
        check = name_check(resource.group or "", resource.plural or "")
        if meta.get("generateName"):
            prefix = meta["generateName"]
            errors += [FieldError.invalid_value("metadata.generateName", prefix, d) for d in check(prefix, True)]
        errors += [FieldError.invalid_value("metadata.name", meta["name"], d) for d in check(meta["name"], False)]
    annotations = meta.get("annotations") or {}
    if sum(len(k) + len(v) for k, v in annotations.items() if isinstance(v, str)) > TOTAL_ANNOTATION_SIZE:
        errors.append(FieldError.too_long("metadata.annotations", TOTAL_ANNOTATION_SIZE))
    return errors


CONFIG_MAP_KEY = "[-._a-zA-Z0-9]+"
CONFIG_MAP_KEY_MESSAGE = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"


def config_map_key(key: str) -> list[str]:
    """apimachinery's ``IsConfigMapKey``."""
    errors = []
    if len(key) > SUBDOMAIN_MAX_LENGTH:
        errors.append(f"must be no more than {SUBDOMAIN_MAX_LENGTH} characters")
    if not re.fullmatch(CONFIG_MAP_KEY, key):
        errors.append(_regex_error(CONFIG_MAP_KEY_MESSAGE, CONFIG_MAP_KEY, "key.name", "KEY_NAME", "key-name"))
    if key == ".":
        errors.append("must not be '.'")
    elif key == "..":
        errors.append("must not be '..'")
    elif key.startswith(".."):
        errors.append("must not start with '..'")
    return errors


def object_errors(resource: kmock.resource, body: Mapping[str, Any]) -> list[FieldError]:
    """What the API server's validation of the kind refuses beyond metadata (ConfigMaps' keys, so far)."""
    if resource.group or resource.plural != "configmaps":
        return []
    errors: list[FieldError] = []
    data, binary = body.get("data") or {}, body.get("binaryData") or {}
    for field, keys in (("data", data), ("binaryData", binary)):
        for key in keys if isinstance(keys, dict) else {}:
            errors += [FieldError.invalid_value(f"{field}[{key}]", key, d) for d in config_map_key(str(key))]
    if isinstance(data, dict) and isinstance(binary, dict):
        errors += [
            FieldError.invalid_value(f"binaryData[{key}]", key, "duplicate of key present in data")
            for key in binary
            if key in data
        ]
    return errors


def invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> kmock.KubernetesError:
    """The 422 Invalid Status of ``errors`` (apimachinery's ``NewInvalid``)."""
    qualified = f"{kind}.{group}" if group else kind
    listed = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(map(str, errors)) + "]"
    causes = [{"reason": e.reason, "message": e.body, "field": e.field} for e in errors]
    return kmock.KubernetesError(
        status=422,
        reason="Invalid",
        message=f"{qualified} {json.dumps(name)} is invalid: {listed}",
        details={"name": name, "group": group, "kind": kind, "causes": causes},
    )
