import copy

import pytest

from tests.support.crd_structural import check_crd, check_schema

GOOD = {
    "type": "object",
    "x-kubernetes-validations": [{"rule": "has(self.spec)", "message": "spec required"}],
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "required": ["mode"],
            "x-kubernetes-validations": [
                {
                    "rule": "self.mode == 'live' ? has(self.venue.credentialsSecret) : true",
                    "message": "live needs creds",
                },
                {"rule": "self.mode == oldSelf.mode", "message": "mode is immutable"},
            ],
            "properties": {
                "mode": {"type": "string", "enum": ["backtest", "paper", "live"]},
                "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "cpu": {
                    "x-kubernetes-int-or-string": True,
                    "allOf": [{"anyOf": [{"type": "integer"}, {"type": "string"}]}, {"pattern": "^[0-9]+m?$"}],
                },
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "x-kubernetes-preserve-unknown-fields": True,
                },
                "venue": {
                    "type": "object",
                    "properties": {"credentialsSecret": {"type": "string"}, "apiKey": {"type": "string"}},
                    "oneOf": [{"required": ["credentialsSecret"]}, {"required": ["apiKey"]}],
                },
                "ports": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                    },
                },
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            },
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def mutate(fn):
    s = copy.deepcopy(GOOD)
    fn(s)
    return check_schema(s, status_subresource=True)


def test_good():
    assert check_schema(GOOD, status_subresource=True) == []
    crd = {"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": GOOD}, "subresources": {"status": {}}}]}}
    assert check_crd(crd) == []


S = "openAPIV3Schema.properties[spec]"
CASES = [
    (
        "missing type on field",
        lambda s: s["properties"]["spec"]["properties"]["mode"].pop("type"),
        f"{S}.properties[mode].type: must not be empty for specified object fields",
    ),
    (
        "missing type on items",
        lambda s: s["properties"]["spec"]["properties"]["tags"]["items"].pop("type"),
        f"{S}.properties[tags].items.type: must not be empty for specified array items",
    ),
    (
        "array without items",
        lambda s: s["properties"]["spec"]["properties"]["tags"].pop("items"),
        f"{S}.properties[tags].items: must be specified",
    ),
    (
        "root not object",
        lambda s: s.update(type="array", items={"type": "string"}),
        "openAPIV3Schema.type: must be object at the root",
    ),
    (
        "properties + additionalProperties",
        lambda s: s["properties"]["spec"].update(additionalProperties={"type": "string"}),
        f"{S}.additionalProperties: additionalProperties and properties are mutual exclusive",
    ),
    (
        "additionalProperties false + properties",
        lambda s: s["properties"]["spec"].update(additionalProperties=False),
        f"{S}.additionalProperties: additionalProperties and properties are mutual exclusive",
    ),
    (
        "type inside oneOf",
        lambda s: s["properties"]["spec"]["properties"]["venue"]["oneOf"][0].update(type="object"),
        f"{S}.properties[venue].oneOf[0].type: must be empty to be structural",
    ),
    (
        "description inside anyOf",
        lambda s: s["properties"]["spec"].update(anyOf=[{"description": "x", "required": ["mode"]}]),
        f"{S}.anyOf[0].description: must be empty to be structural",
    ),
    (
        "junctor names unknown property",
        lambda s: s["properties"]["spec"]["properties"]["venue"]["oneOf"].append(
            {"required": ["x"], "properties": {"x": {"minLength": 1}}}
        ),
        f"{S}.properties[venue].properties[x]: Required value: because it is defined in {S}.properties[venue].oneOf[2].properties[x]",
    ),
    (
        "metadata restricted",
        lambda s: s["properties"]["metadata"].update(properties={"labels": {"type": "object"}}),
        "openAPIV3Schema.properties[metadata]: must not specify anything other than name and generateName, but metadata is implicitly specified",
    ),
    (
        "metadata name ok",
        lambda s: s["properties"]["metadata"].update(properties={"name": {"type": "string", "maxLength": 63}}),
        None,
    ),
    (
        "kind not string",
        lambda s: s["properties"]["kind"].update(type="integer"),
        "openAPIV3Schema.properties[kind].type: must be string",
    ),
    (
        "preserve false",
        lambda s: s["properties"]["status"].update({"x-kubernetes-preserve-unknown-fields": False}),
        "openAPIV3Schema.properties[status].x-kubernetes-preserve-unknown-fields: must be true or undefined",
    ),
    (
        "int-or-string + preserve",
        lambda s: s["properties"]["spec"]["properties"]["port"].update({"x-kubernetes-preserve-unknown-fields": True}),
        f"{S}.properties[port].x-kubernetes-preserve-unknown-fields: must be false if x-kubernetes-int-or-string is true",
    ),
    (
        "anyOf types without int-or-string",
        lambda s: s["properties"]["spec"]["properties"]["port"].pop("x-kubernetes-int-or-string"),
        f"{S}.properties[port].type: must not be empty for specified object fields",
    ),
    (
        "uniqueItems",
        lambda s: s["properties"]["spec"]["properties"]["tags"].update(uniqueItems=True),
        f"{S}.properties[tags].uniqueItems: uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
    ),
    (
        "list map key not required",
        lambda s: s["properties"]["spec"]["properties"]["ports"]["items"].pop("required"),
        f"{S}.properties[ports].items.properties[name].default: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
    ),
    (
        "$ref",
        lambda s: s["properties"]["spec"]["properties"].update(x={"$ref": "#/foo"}),
        f"{S}.properties[x].$ref: $ref is not supported",
    ),
    (
        "nullable root",
        lambda s: s.update(nullable=True),
        "openAPIV3Schema.nullable: nullable cannot be true at the root",
    ),
    (
        "default in top-level metadata",
        lambda s: s["properties"]["metadata"].update(default={}),
        "openAPIV3Schema.properties[metadata].default: must not be set in top-level metadata",
    ),
    (
        "bad pattern",
        lambda s: s["properties"]["spec"]["properties"]["mode"].update(pattern="(?<=x)y"),
        f"{S}.properties[mode].pattern: must be a valid regular expression",
    ),
    (
        "oldSelf under atomic list item",
        lambda s: s["properties"]["spec"]["properties"]["tags"]["items"].update(
            {"x-kubernetes-validations": [{"rule": "self == oldSelf"}]}
        ),
        f"{S}.properties[tags].items.x-kubernetes-validations[0].rule: oldSelf cannot be used on the uncorrelatable portion of the schema within {S}.properties[tags]",
    ),
    (
        "multiline rule without message",
        lambda s: s["properties"]["spec"]["x-kubernetes-validations"].append({"rule": "true &&\ntrue"}),
        f"{S}.x-kubernetes-validations[2].message: message must be specified if rule contains line breaks",
    ),
    ("status subresource root extras", lambda s: s.update(anyOf=[{"required": ["spec"]}]), "openAPIV3Schema: only "),
]


@pytest.mark.parametrize("name,fn,expected", CASES, ids=[c[0] for c in CASES])
def test_rules(name, fn, expected):
    errs = mutate(fn)
    if expected is None:
        assert errs == []
    else:
        assert any(e.startswith(expected) for e in errs), errs
