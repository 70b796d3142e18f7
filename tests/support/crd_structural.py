"""Compact offline checker for CRD openAPIV3Schema "structural schema" rules.

No Python library implements these rules (checked: kubernetes-validate only validates
the CRD object's *shape* against the JSONSchemaProps definition; openapi-schema-validator /
openapi-spec-validator know nothing about Kubernetes' extra rules). This module
re-implements, from the apiextensions-apiserver sources (k8s 1.3x):

  pkg/apiserver/schema/validation.go      ValidateStructural   -> rules S*
  pkg/apiserver/schema/complete.go        completeness         -> rule S5
  pkg/apis/apiextensions/validation/validation.go
        ValidateCustomResourceDefinitionOpenAPISchema / specStandardValidatorV3 -> rules C*

Not covered: default-value validation/pruning (structuraldefaulting), CEL compile/cost
checks, CRD names/versions/conversion checks, fieldPath resolution.

    from crd_structural import check_crd, check_schema
    errors = check_crd(crd_dict)                 # all versions' schemas
    errors = check_schema(schema, status_subresource=True)
"""

from __future__ import annotations

from typing import Any

try:  # Kubernetes compiles `pattern` with Go's RE2; google-re2 is the closest match
    import re2 as _re
except ImportError:  # pragma: no cover
    import re as _re

OPENAPI_TYPES = {"string", "number", "integer", "boolean", "array", "object"}
# specStandardValidatorV3: keywords that are never allowed
UNSUPPORTED = {
    "id": "id is not supported",
    "additionalItems": "additionalItems is not supported",
    "patternProperties": "patternProperties is not supported",
    "definitions": "definitions is not supported",
    "dependencies": "dependencies is not supported",
    "$ref": "$ref is not supported",
}
# allowedFieldsAtRootSchema (JSON names) when the status subresource is enabled
ROOT_ALLOWED_WITH_STATUS = {
    "description",
    "type",
    "format",
    "title",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "required",
    "items",
    "properties",
    "externalDocs",
    "example",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
}
# Inside allOf/anyOf/oneOf/not ("value validation") these make a schema non-structural
JUNCTOR_FORBIDDEN = {
    "type": "must be empty to be structural",
    "default": "must be undefined to be structural",
    "title": "must be empty to be structural",
    "description": "must be empty to be structural",
    "nullable": "must be false to be structural",
    "externalDocs": "must be undefined to be structural",
    "additionalProperties": "must be undefined to be structural",
    "x-kubernetes-preserve-unknown-fields": "must be false to be structural",
    "x-kubernetes-embedded-resource": "must be false to be structural",
    "x-kubernetes-int-or-string": "must be false to be structural",
    "x-kubernetes-list-map-keys": "must be empty to be structural",
    "x-kubernetes-list-type": "must be undefined to be structural",
    "x-kubernetes-map-type": "must be undefined to be structural",
    "x-kubernetes-validations": "must be empty to be structural",
}
VALIDATION_REASONS = {"FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate"}
JUNCTORS = ("allOf", "anyOf", "oneOf")
INT_OR_STRING_ANYOF = [{"type": "integer"}, {"type": "string"}]


def _truthy(s: dict, key: str) -> bool:
    return bool(s.get(key))


def _is_falsy_value(key: str, v: Any) -> bool:
    """Go zero values: a junctor key set to its zero value is not 'set'."""
    return v in (None, False, "", [], {}) and key != "default"


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def err(self, path: str, msg: str) -> None:
        self.errors.append(f"{path}: {msg}")

    # ------------------------------------------------------------ structural part
    def node(
        self,
        s: dict,
        path: str,
        level: str,
        *,
        root_meta: bool = False,
        in_meta: bool = False,
        forbid_defaults: str | None = None,
        uncorrelatable: str | None = None,
    ) -> None:
        """level: 'root' | 'items' | 'field'"""
        if not isinstance(s, dict):
            self.err(path, "schema must be an object")
            return
        t = s.get("type", "")
        ios = _truthy(s, "x-kubernetes-int-or-string")
        pres = _truthy(s, "x-kubernetes-preserve-unknown-fields")
        emb = _truthy(s, "x-kubernetes-embedded-resource")

        # C6: keywords / types
        for k, msg in UNSUPPORTED.items():
            if k in s:
                self.err(f"{path}.{k}", msg)
        if t == "null":
            self.err(f"{path}.type", "type cannot be set to null, use nullable as an alternative")
        elif t and t not in OPENAPI_TYPES:
            self.err(f"{path}.type", f"Unsupported value {t!r}: supported values: {sorted(OPENAPI_TYPES)}")
        if isinstance(s.get("items"), list):
            self.err(f"{path}.items", "items must be a schema object and not an array")
        if s.get("uniqueItems"):
            self.err(
                f"{path}.uniqueItems",
                "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            )
        if in_meta and emb:
            self.err(f"{path}.x-kubernetes-embedded-resource", "must not be used inside of resource meta")
        # C7: defaults
        if "default" in s and forbid_defaults:
            self.err(f"{path}.default", f"must not be set {forbid_defaults}")
        # C3
        if s.get("x-kubernetes-preserve-unknown-fields") is False:
            self.err(f"{path}.x-kubernetes-preserve-unknown-fields", "must be true or undefined")
        # S6
        if ios and pres:
            self.err(
                f"{path}.x-kubernetes-preserve-unknown-fields", "must be false if x-kubernetes-int-or-string is true"
            )
        if ios and emb:
            self.err(f"{path}.x-kubernetes-embedded-resource", "must be false if x-kubernetes-int-or-string is true")
        # S1 / S7: type required
        if emb and t != "object":
            self.err(f"{path}.type", "must be object if x-kubernetes-embedded-resource is true")
        elif not t and not ios and not pres:
            self.err(
                f"{path}.type",
                {
                    "root": "must not be empty at the root",
                    "items": "must not be empty for specified array items",
                    "field": "must not be empty for specified object fields",
                }[level],
            )
        if level == "root" and t and t != "object":
            self.err(f"{path}.type", "must be object at the root")
        # S2
        if t == "array" and "items" not in s:
            self.err(f"{path}.items", "must be specified")
        # additionalProperties (S3, C1, S7)
        ap = s.get("additionalProperties")
        props = s.get("properties") or {}
        if ap is not None:
            if level == "root":
                self.err(f"{path}.additionalProperties", "must not be used at the root")
            if emb:
                self.err(f"{path}.additionalProperties", "must not be used if x-kubernetes-embedded-resource is set")
            if props and (ap is False or isinstance(ap, dict)):
                self.err(f"{path}.additionalProperties", "additionalProperties and properties are mutual exclusive")
        # C4: map type
        mt = s.get("x-kubernetes-map-type")
        if mt is not None:
            if t != "object":
                self.err(f"{path}.type", "must be object if x-kubernetes-map-type is specified")
            if mt not in ("atomic", "granular"):
                self.err(
                    f"{path}.x-kubernetes-map-type", f"Unsupported value {mt!r}: supported values: atomic, granular"
                )
        self._list_rules(s, path)
        # S7: TypeMeta/ObjectMeta at root or embedded resource
        check_meta = level == "root" or emb
        for k in ("kind", "apiVersion"):
            if check_meta and k in props and props[k].get("type") != "string":
                self.err(f"{path}.properties[{k}].type", "must be string")
        if "metadata" in props:
            self._metadata(props["metadata"], f"{path}.properties[metadata]", check_meta, level == "root")
        if emb and not pres and not props:
            self.err(
                f"{path}.properties",
                "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
            )
        # C8: CEL rules (static parts only)
        self._xvalidations(s, path, uncorrelatable)
        # pattern must compile
        self._pattern(s, path)
        # S4: value validations (junctors)
        skip_anyof = s.get("anyOf") == INT_OR_STRING_ANYOF
        skip_first_allof_anyof = (
            bool(s.get("allOf"))
            and isinstance(s["allOf"][0], dict)
            and s["allOf"][0].get("anyOf") == INT_OR_STRING_ANYOF
        )
        self._junctors(s, path, skip_anyof, skip_first_allof_anyof)
        # S5: completeness of junctor properties/items vs the structural part
        self._completeness(s, s, path, path)

        # recurse
        map_correlatable = mt != "atomic"
        for k, v in props.items():
            sub_meta = (level == "root" or emb) and k in ("metadata", "kind", "apiVersion")
            fd = forbid_defaults
            if level == "root" and sub_meta:
                fd = f"in top-level {k}"
            self.node(
                v,
                f"{path}.properties[{k}]",
                "field",
                in_meta=in_meta or sub_meta,
                forbid_defaults=fd,
                uncorrelatable=uncorrelatable or (None if map_correlatable else path),
            )
        if isinstance(ap, dict):
            fd = "inside additionalProperties applying to object metadata" if in_meta else forbid_defaults
            self.node(
                ap,
                f"{path}.additionalProperties",
                "field",
                in_meta=in_meta,
                forbid_defaults=fd,
                uncorrelatable=uncorrelatable,
            )
        if isinstance(s.get("items"), dict):
            lt = s.get("x-kubernetes-list-type")
            self.node(
                s["items"],
                f"{path}.items",
                "items",
                in_meta=in_meta,
                forbid_defaults=forbid_defaults,
                uncorrelatable=uncorrelatable or (None if lt == "map" else path),
            )

    def _metadata(self, m: dict, path: str, check_meta: bool, at_root: bool) -> None:
        if check_meta and m.get("type") != "object":
            self.err(f"{path}.type", "must be object")
        if at_root:
            rest = {k: v for k, v in m.items() if k not in ("type", "default")}
            props = rest.pop("properties", None) or {}
            if props and not set(props) <= {"name", "generateName"}:
                rest["properties"] = props
            if any(not _is_falsy_value(k, v) for k, v in rest.items()):
                self.err(
                    path,
                    "must not specify anything other than name and generateName, but metadata is implicitly specified",
                )

    def _list_rules(self, s: dict, path: str) -> None:
        t = s.get("type", "")
        lt = s.get("x-kubernetes-list-type")
        keys = s.get("x-kubernetes-list-map-keys") or []
        items = s.get("items") if isinstance(s.get("items"), dict) else None
        if lt is not None:
            if t != "array":
                self.err(f"{path}.type", "must be array if x-kubernetes-list-type is specified")
            elif lt == "set" and items:
                it = items.get("type")
                if it == "array" and items.get("x-kubernetes-list-type", "atomic") != "atomic":
                    self.err(
                        f"{path}.items.x-kubernetes-list-type",
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    )
                if it == "object" and items.get("x-kubernetes-map-type") != "atomic":
                    self.err(
                        f"{path}.items.x-kubernetes-map-type",
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    )
            if lt not in ("atomic", "set", "map"):
                self.err(
                    f"{path}.x-kubernetes-list-type", f"Unsupported value {lt!r}: supported values: atomic, set, map"
                )
        if keys and lt != "map":
            self.err(f"{path}.x-kubernetes-list-type", "must be map if x-kubernetes-list-map-keys is non-empty")
        if lt == "map":
            if not keys:
                self.err(f"{path}.x-kubernetes-list-map-keys", "must not be empty if x-kubernetes-list-type is map")
            if items is None:
                self.err(f"{path}.items", "must have a schema if x-kubernetes-list-type is map")
            elif items.get("type") != "object":
                self.err(f"{path}.items.type", "must be object if parent array's x-kubernetes-list-type is map")
            else:
                iprops, req = items.get("properties") or {}, set(items.get("required") or [])
                if len(set(keys)) != len(keys):
                    self.err(f"{path}.x-kubernetes-list-map-keys", "must not contain duplicate entries")
                for k in keys:
                    if k not in iprops:
                        self.err(f"{path}.x-kubernetes-list-map-keys", "entries must all be names of item properties")
                        continue
                    if iprops[k].get("type") in ("array", "object"):
                        self.err(
                            f"{path}.items.properties[{k}].type",
                            "must be a scalar type if parent array's x-kubernetes-list-type is map",
                        )
                    if k not in req and "default" not in iprops[k]:
                        self.err(
                            f"{path}.items.properties[{k}].default",
                            "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                        )
                    if iprops[k].get("nullable"):
                        self.err(
                            f"{path}.items.properties[{k}].nullable",
                            "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                        )
        if lt in ("set", "map") and items and items.get("nullable"):
            self.err(f"{path}.items.nullable", f"cannot be nullable when x-kubernetes-list-type is {lt}")

    def _xvalidations(self, s: dict, path: str, uncorrelatable: str | None) -> None:
        for i, r in enumerate(s.get("x-kubernetes-validations") or []):
            p = f"{path}.x-kubernetes-validations[{i}]"
            rule, msg = (r.get("rule") or "").strip(), r.get("message")
            if not rule:
                self.err(f"{p}.rule", "rule is not specified")
            elif msg is not None and msg != "" and not msg.strip():
                self.err(f"{p}.message", "message must be non-empty if specified")
            elif msg and ("\n" in msg.strip() or "\r" in msg.strip()):
                self.err(f"{p}.message", "message must not contain line breaks")
            elif ("\n" in rule or "\r" in rule) and not (msg or "").strip():
                self.err(f"{p}.message", "message must be specified if rule contains line breaks")
            me = r.get("messageExpression")
            if me is not None and me != "" and not me.strip():
                self.err(f"{p}.messageExpression", "messageExpression must be non-empty if specified")
            if "reason" in r and r["reason"] not in VALIDATION_REASONS:
                self.err(
                    f"{p}.reason", f"Unsupported value {r['reason']!r}: supported values: {sorted(VALIDATION_REASONS)}"
                )
            fp = r.get("fieldPath")
            if fp is not None and fp != "" and not fp.strip():
                self.err(f"{p}.fieldPath", "fieldPath must be non-empty if specified")
            uses_old = "oldSelf" in rule  # approximation of the CEL AST check
            if uses_old and uncorrelatable:
                self.err(
                    f"{p}.rule",
                    f"oldSelf cannot be used on the uncorrelatable portion of the schema within {uncorrelatable}",
                )
            if not uses_old and "optionalOldSelf" in r:
                self.err(f"{p}.optionalOldSelf", "may not be set if oldSelf is not used in rule")

    def _pattern(self, s: dict, path: str) -> None:
        if s.get("pattern"):
            try:
                _re.compile(s["pattern"])
            except Exception as e:
                self.err(f"{path}.pattern", f"must be a valid regular expression, but isn't: {e}")

    # ------------------------------------------------------------ value validation part
    def _junctors(self, s: dict, path: str, skip_anyof: bool, skip_first_allof_anyof: bool) -> None:
        if not skip_anyof:
            for i, v in enumerate(s.get("anyOf") or []):
                self._nested(v, f"{path}.anyOf[{i}]", False)
        for i, v in enumerate(s.get("allOf") or []):
            self._nested(v, f"{path}.allOf[{i}]", skip_first_allof_anyof and i == 0)
        for i, v in enumerate(s.get("oneOf") or []):
            self._nested(v, f"{path}.oneOf[{i}]", False)
        if s.get("not") is not None:
            self._nested(s["not"], f"{path}.not", False)

    def _nested(self, v: dict, path: str, skip_anyof: bool) -> None:
        if not isinstance(v, dict):
            self.err(path, "schema must be an object")
            return
        self._junctors(v, path, skip_anyof, False)
        self._pattern(v, path)
        if isinstance(v.get("items"), dict):
            self._nested(v["items"], f"{path}.items", False)
        for k, p in (v.get("properties") or {}).items():
            self._nested(p, f"{path}.properties[{k}]", False)
        for k, msg in JUNCTOR_FORBIDDEN.items():
            if k in v and not _is_falsy_value(k, v[k]):
                self.err(f"{path}.{k}", msg)
        if "metadata" in (v.get("properties") or {}):
            self.err(f"{path}.properties[metadata]", "must not be specified in a nested context")
        for k, msg in UNSUPPORTED.items():
            if k in v:
                self.err(f"{path}.{k}", msg)

    def _completeness(self, v: dict, s: dict | None, spath: str, vpath: str) -> None:
        """Every property/items named under a junctor must exist in the structural schema."""
        for j in JUNCTORS:
            for i, sub in enumerate(v.get(j) or []):
                self._complete_nested(sub, s, spath, f"{vpath}.{j}[{i}]")
        if isinstance(v.get("not"), dict):
            self._complete_nested(v["not"], s, spath, f"{vpath}.not")

    def _complete_nested(self, v: dict, s: dict | None, spath: str, vpath: str) -> None:
        if not isinstance(v, dict):
            return
        if s is None:
            self.err(spath, f"Required value: because it is defined in {vpath}")
            return
        self._completeness(v, s, spath, vpath)
        if isinstance(v.get("items"), dict):
            si = s.get("items") if isinstance(s.get("items"), dict) else None
            self._complete_nested(v["items"], si, f"{spath}.items", f"{vpath}.items")
        sprops = s.get("properties") or {}
        for k, vf in (v.get("properties") or {}).items():
            self._complete_nested(vf, sprops.get(k), f"{spath}.properties[{k}]", f"{vpath}.properties[{k}]")


def check_schema(schema: dict, status_subresource: bool = False, path: str = "openAPIV3Schema") -> list[str]:
    c = _Checker()
    if not isinstance(schema, dict):
        return [f"{path}: Required value"]
    if status_subresource:
        if schema.get("type", "object") != "object":
            c.err(
                f"{path}.type",
                'only "object" is allowed as the type at the root of the schema if the status subresource is enabled',
            )
        extra = sorted(k for k, v in schema.items() if k not in ROOT_ALLOWED_WITH_STATUS and not _is_falsy_value(k, v))
        if extra:
            c.err(
                path,
                f"only {sorted(ROOT_ALLOWED_WITH_STATUS)} fields are allowed at the root of the schema "
                f"if the status subresource is enabled (found {extra})",
            )
    if schema.get("nullable"):
        c.err(f"{path}.nullable", "nullable cannot be true at the root")
    c.node(schema, path, "root")
    return sorted(set(c.errors))


def check_crd(crd: dict) -> list[str]:
    errors: list[str] = []
    for i, v in enumerate(crd.get("spec", {}).get("versions") or []):
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        p = f"spec.versions[{i}].schema.openAPIV3Schema"
        if schema is None:
            errors.append(f"{p}: Required value: schemas are required")
            continue
        errors += check_schema(schema, "status" in (v.get("subresources") or {}), p)
    return errors
