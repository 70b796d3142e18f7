"""Validate Kubernetes manifests (dicts) against the official OpenAPI-derived JSON
schemas bundled in kubernetes-validate (1.37.0 bundles v1.28 .. v1.37, each
"-local" and "-local-strict").

    from tests.support.k8s_schemas import manifest_errors
    manifest_errors(doc, "1.34", strict=True)      # -> list[str] of *all* errors, "" path = root

Notes
* kubernetes_validate.validate() raises on the FIRST error only (jsonschema .validate);
  manifest_errors() iterates all errors with the same schemas/registry.
* Each schema file (and the 1.5 MB _definitions.json) is read once per process: the
  validator for a (schema version, apiVersion, kind) is built once and reused.
* strict=True -> schema dir "vX.Y.0-local-strict": every object has
  additionalProperties: false, so unknown/misspelled fields are rejected.
  Non-strict silently accepts unknown fields.
* Unknown kind/apiVersion (e.g. your own CR kinds) -> SchemaNotFoundError; custom
  resources must be validated against the CRD's openAPIV3Schema yourself.
* It is purely structural JSON-schema validation: no defaulting, no server-side
  semantic validation (name formats, label syntax, quantities, immutable fields,
  selector/labels matching, CRD structural-schema rules, CEL rules ...).
"""

from __future__ import annotations

import functools
import re

import jsonschema
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

K8S_VERSION = "1.34"  # default target; bundled: kv_utils.all_versions()


@functools.cache
def _schema_dir(version: str, strict: bool) -> str:
    version = version.lstrip("v")
    mm = kv_utils.major_minor(version)
    candidates = [
        v
        for v in kv_utils.all_versions()
        if tuple(map(int, kv_utils.major_minor(v).split("."))) <= tuple(map(int, mm.split(".")))
    ]
    if not candidates:
        raise kv_utils.VersionNotSupportedError(mm)
    return "v{}-local{}".format(candidates[-1], "-strict" if strict else "")


@functools.cache
def _definitions(sdir: str, version: str) -> Resource:
    return Resource.from_contents(kv_utils.schema_contents(f"kubernetes-json-schema/{sdir}/_definitions.json", version))


@functools.cache
def _compiled(sdir: str, api_version: str, kind: str, version: str) -> jsonschema.protocols.Validator:
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    fname = f"kubernetes-json-schema/{sdir}/{kind.lower()}-{api}.json"
    try:
        schema = kv_utils.schema_contents(fname, version)
    except FileNotFoundError:
        raise kv_utils.SchemaNotFoundError(kind=kind, version=version, api_version=api_version) from None
    registry = _definitions(sdir, version) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _validator(doc: dict, version: str, strict: bool) -> jsonschema.protocols.Validator:
    return _compiled(_schema_dir(version, strict), doc["apiVersion"], doc["kind"], version)


def manifest_errors(doc: dict, version: str = K8S_VERSION, strict: bool = True) -> list[str]:
    v = _validator(doc, version, strict)
    out = []
    for e in sorted(v.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        path = ".".join(str(p) for p in e.absolute_path)
        out.append(f"{path or '<root>'}: {e.message}")
    return out
