"""Validate Kubernetes manifests (dicts) against the official OpenAPI-derived JSON
schemas bundled in kubernetes-validate (1.37.0 bundles v1.28 .. v1.37, each
"-local" and "-local-strict").

    from k8s_validate import validate_manifest, manifest_errors
    validate_manifest(doc, "1.34", strict=True)   # raises kubernetes_validate ValidationError (first error)
    manifest_errors(doc, "1.34", strict=True)      # -> list[str] of *all* errors, "" path = root

Notes
* kubernetes_validate.validate() raises on the FIRST error only (jsonschema .validate);
  manifest_errors() iterates all errors with the same schemas/registry.
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

import re

import jsonschema
import kubernetes_validate
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

K8S_VERSION = "1.34"  # default target; bundled: kv_utils.all_versions()


def validate_manifest(doc: dict, version: str = K8S_VERSION, strict: bool = True) -> str:
    """Returns the schema version used (e.g. '1.34'); raises on first error."""
    return kubernetes_validate.validate(doc, version, strict=strict)


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


def _validator(doc: dict, version: str, strict: bool) -> jsonschema.protocols.Validator:
    sdir = _schema_dir(version, strict)
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", doc["apiVersion"])
    fname = f"kubernetes-json-schema/{sdir}/{doc['kind'].lower()}-{api}.json"
    try:
        schema = kv_utils.schema_contents(fname, version)
    except FileNotFoundError:
        raise kv_utils.SchemaNotFoundError(kind=doc["kind"], version=version, api_version=doc["apiVersion"]) from None
    defs = kv_utils.schema_contents(f"kubernetes-json-schema/{sdir}/_definitions.json", version)
    registry = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def manifest_errors(doc: dict, version: str = K8S_VERSION, strict: bool = True) -> list[str]:
    v = _validator(doc, version, strict)
    out = []
    for e in sorted(v.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        path = ".".join(str(p) for p in e.absolute_path)
        out.append(f"{path or '<root>'}: {e.message}")
    return out


def validate_yaml_file(path: str, version: str = K8S_VERSION, strict: bool = True) -> dict[str, list[str]]:
    """All docs of a multi-doc YAML (e.g. `helm template` output) -> {kind/name: errors}."""
    import yaml

    result = {}
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            if not doc:
                continue
            key = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            try:
                result[key] = manifest_errors(doc, version, strict)
            except kv_utils.SchemaNotFoundError as e:
                result[key] = [f"<no schema>: {e.message}"]
    return result
