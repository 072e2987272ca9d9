"""structural_problems: the apiextensions rules a CRD schema must satisfy."""

from __future__ import annotations

from typing import Any

import pytest

from mirage_operator.schema import structural_problems


def _root(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


GOOD = [
    pytest.param(
        _root(spec={"type": "object", "properties": {"a": {"type": "string"}}}), id="plain"
    ),
    pytest.param(_root(port={"x-kubernetes-int-or-string": True}), id="int-or-string"),
    pytest.param(
        _root(
            port={
                "x-kubernetes-int-or-string": True,
                "anyOf": [{"type": "integer"}, {"type": "string"}],
            }
        ),
        id="int-or-string-anyof-pattern",
    ),
    pytest.param(
        _root(free={"x-kubernetes-preserve-unknown-fields": True}), id="preserve-unknown-untyped"
    ),
    pytest.param(
        _root(
            spec={
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
            }
        ),
        id="junctor-with-value-validations",
    ),
    pytest.param(
        _root(
            ports={
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}},
                },
            }
        ),
        id="list-map",
    ),
    pytest.param(
        _root(
            metadata={"type": "object", "properties": {"name": {"type": "string", "maxLength": 63}}}
        ),
        id="metadata-name-restriction",
    ),
    pytest.param(
        _root(
            spec={
                "type": "object",
                "default": {"replicas": 1},
                "x-kubernetes-validations": [{"rule": "self.replicas >= 0", "message": "m"}],
                "properties": {"replicas": {"type": "integer", "default": 1, "minimum": 0}},
            }
        ),
        id="valid-defaults-and-rules",
    ),
    pytest.param(
        {
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.metadata.name.size() < 10 && self.spec.labels.anyKey == 'x'"},
                {"rule": "self.spec.free.whatever.below && self.spec.x__dash__y != ''"},
            ],
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        "x-y": {"type": "string"},
                    },
                }
            },
        },
        id="rules-selecting-declared-map-preserved-and-escaped-fields",
    ),
    pytest.param(
        _root(
            template={
                "type": "object",
                "x-kubernetes-embedded-resource": True,
                "x-kubernetes-preserve-unknown-fields": True,
            }
        ),
        id="embedded-resource",
    ),
]


@pytest.mark.parametrize("schema", GOOD)
def test_structural_schemas_have_no_problems(schema: dict[str, Any]) -> None:
    assert structural_problems(schema) == []


BAD = [
    pytest.param({"type": "string"}, "openAPIV3Schema.type: Invalid value", id="root-not-object"),
    pytest.param(
        _root(spec={"properties": {"a": {"type": "string"}}}),
        "openAPIV3Schema.properties[spec].type: Required value",
        id="missing-type",
    ),
    pytest.param(
        _root(a={"type": "array"}),
        "openAPIV3Schema.properties[a].items: Required value",
        id="array-without-items",
    ),
    pytest.param(
        _root(a={"type": "string", "x-kubernetes-int-or-string": True}),
        "openAPIV3Schema.properties[a].type: Invalid value",
        id="int-or-string-with-type",
    ),
    pytest.param(
        _root(
            a={
                "type": "object",
                "properties": {"b": {"type": "string"}},
                "additionalProperties": {"type": "string"},
            }
        ),
        "openAPIV3Schema.properties[a].additionalProperties: Forbidden",
        id="properties-and-additional-properties",
    ),
    pytest.param(
        _root(a={"type": "array", "uniqueItems": True, "items": {"type": "string"}}),
        "openAPIV3Schema.properties[a].uniqueItems: Forbidden",
        id="unique-items",
    ),
    pytest.param(
        _root(a={"type": "object", "$ref": "#/definitions/x"}),
        "openAPIV3Schema.properties[a].$ref: Forbidden",
        id="ref",
    ),
    pytest.param(
        _root(a={"type": "string", "anyOf": [{"type": "string"}]}),
        "openAPIV3Schema.properties[a].anyOf[0].type: Forbidden",
        id="type-in-junctor",
    ),
    pytest.param(
        _root(a={"type": "string", "oneOf": [{"default": "x"}]}),
        "openAPIV3Schema.properties[a].oneOf[0].default: Forbidden",
        id="default-in-junctor",
    ),
    pytest.param(
        _root(
            a={
                "type": "object",
                "properties": {},
                "allOf": [{"properties": {"z": {"minLength": 1}}}],
            }
        ),
        "openAPIV3Schema.properties[a].allOf[0].properties[z]: Forbidden",
        id="junctor-property-not-in-structure",
    ),
    pytest.param(
        _root(metadata={"type": "object", "properties": {"labels": {"type": "object"}}}),
        "openAPIV3Schema.properties[metadata].properties[labels]: Forbidden",
        id="metadata-beyond-name",
    ),
    pytest.param(
        _root(a={"type": "array", "x-kubernetes-list-type": "map", "items": {"type": "object"}}),
        "openAPIV3Schema.properties[a].x-kubernetes-list-map-keys: Required value",
        id="list-map-without-keys",
    ),
    pytest.param(
        _root(
            a={
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}}},
            }
        ),
        "openAPIV3Schema.properties[a].x-kubernetes-list-map-keys[0]: Invalid value",
        id="list-map-key-optional-without-default",
    ),
    pytest.param(
        _root(a={"type": "array", "x-kubernetes-list-type": "bag", "items": {"type": "string"}}),
        'openAPIV3Schema.properties[a].x-kubernetes-list-type: Unsupported value: "bag"',
        id="unknown-list-type",
    ),
    pytest.param(
        _root(a={"type": "integer", "default": "one"}),
        "openAPIV3Schema.properties[a].default: Invalid value",
        id="default-of-wrong-type",
    ),
    pytest.param(
        _root(a={"type": "object", "properties": {}, "default": {"unknown": 1}}),
        "openAPIV3Schema.properties[a].default: Invalid value",
        id="default-not-pruned",
    ),
    pytest.param(
        _root(
            a={
                "type": "object",
                "default": {},
                "x-kubernetes-validations": [{"rule": "self.mode == 'x'"}],
                "properties": {"mode": {"type": "string", "default": "x"}},
            }
        ),
        "openAPIV3Schema.properties[a].default: Invalid value",
        id="default-failing-rule-before-nested-defaults",
    ),
    pytest.param(
        _root(
            a={
                "type": "integer",
                "default": 3,
                "x-kubernetes-validations": [{"rule": "self == oldSelf && self < 3"}],
            }
        ),
        "openAPIV3Schema.properties[a].default: Invalid value",
        id="default-checked-by-transition-rules",
    ),
    pytest.param(
        _root(a={"type": "string", "x-kubernetes-validations": [{"rule": "self ==="}]}),
        "openAPIV3Schema.properties[a].x-kubernetes-validations[0].rule: Invalid value",
        id="rule-does-not-compile",
    ),
    pytest.param(
        _root(
            a={
                "type": "object",
                "x-kubernetes-validations": [{"rule": "has(self.b) || self.c.d > 0"}],
                "properties": {"b": {"type": "string"}, "c": {"type": "object", "properties": {}}},
            }
        ),
        "openAPIV3Schema.properties[a].x-kubernetes-validations[0].rule: Invalid value: "
        '"has(self.b) || self.c.d > 0": compilation failed: ERROR: <input>:1:16: '
        "undefined field 'd'",
        id="rule-selects-an-undeclared-field",
    ),
    pytest.param(
        _root(a={"type": "string", "pattern": "(unclosed"}),
        "openAPIV3Schema.properties[a].pattern: Invalid value",
        id="bad-pattern",
    ),
    pytest.param(
        _root(a={"type": "string", "nullable": False, "default": None}),
        "openAPIV3Schema.properties[a].default: Forbidden",
        id="null-default-non-nullable",
    ),
]


@pytest.mark.parametrize(("schema", "expected"), BAD)
def test_non_structural_schemas_are_reported(schema: dict[str, Any], expected: str) -> None:
    problems = structural_problems(schema)
    assert any(p.startswith(expected) for p in problems), problems
