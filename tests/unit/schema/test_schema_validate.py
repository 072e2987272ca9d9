"""OpenAPI keyword validation, worded as a real kube-apiserver words it."""

from __future__ import annotations

from typing import Any

import pytest

from mirage_operator.errors import Problem
from mirage_operator.schema import validate
from mirage_operator.schema.regex import compile_re2


def _wrap(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"x": schema}}},
    }


def _problems(schema: dict[str, Any], value: Any) -> list[tuple[str, str]]:
    return [(p.field, p.reason) for p in validate(_wrap(schema), {"spec": {"x": value}})]


INVALID = [
    # type
    (
        {"type": "integer"},
        "3",
        [("spec.x", 'Invalid value: "string": spec.x in body must be of type integer: "string"')],
    ),
    (
        {"type": "integer"},
        1.5,
        [("spec.x", 'Invalid value: "number": spec.x in body must be of type integer: "number"')],
    ),
    (
        {"type": "integer"},
        True,
        [("spec.x", 'Invalid value: "boolean": spec.x in body must be of type integer: "boolean"')],
    ),
    (
        {"type": "number"},
        "1",
        [("spec.x", 'Invalid value: "string": spec.x in body must be of type number: "string"')],
    ),
    (
        {"type": "string"},
        1,
        [("spec.x", 'Invalid value: "integer": spec.x in body must be of type string: "integer"')],
    ),
    (
        {"type": "boolean"},
        "true",
        [("spec.x", 'Invalid value: "string": spec.x in body must be of type boolean: "string"')],
    ),
    (
        {"type": "object"},
        [],
        [("spec.x", 'Invalid value: "array": spec.x in body must be of type object: "array"')],
    ),
    (
        {"type": "array", "items": {"type": "string"}},
        {},
        [("spec.x", 'Invalid value: "object": spec.x in body must be of type array: "object"')],
    ),
    (
        {"type": "string"},
        None,
        [("spec.x", 'Invalid value: "null": spec.x in body must be of type string: "null"')],
    ),
    (
        {"x-kubernetes-int-or-string": True},
        1.5,
        [
            (
                "spec.x",
                'Invalid value: "number": spec.x in body must be of type integer,string: "number"',
            )
        ],
    ),
    # enum
    (
        {"type": "string", "enum": ["a", "b"]},
        "c",
        [("spec.x", 'Unsupported value: "c": supported values: "a", "b"')],
    ),
    (
        {"type": "integer", "enum": [1, 2]},
        3,
        [("spec.x", 'Unsupported value: 3: supported values: "1", "2"')],
    ),
    (
        {"type": "string", "nullable": True, "enum": ["a"]},
        None,
        [("spec.x", 'Unsupported value: "null": supported values: "a"')],
    ),
    # numbers
    (
        {"type": "integer", "minimum": 0},
        -1,
        [("spec.x", "Invalid value: -1: spec.x in body should be greater than or equal to 0")],
    ),
    (
        {"type": "integer", "minimum": 0, "exclusiveMinimum": True},
        0,
        [("spec.x", "Invalid value: 0: spec.x in body should be greater than 0")],
    ),
    (
        {"type": "number", "maximum": 1.5},
        2.25,
        [("spec.x", "Invalid value: 2.25: spec.x in body should be less than or equal to 1.5")],
    ),
    (
        {"type": "integer", "maximum": 10, "exclusiveMaximum": True},
        10,
        [("spec.x", "Invalid value: 10: spec.x in body should be less than 10")],
    ),
    (
        {"type": "integer", "multipleOf": 5},
        7,
        [("spec.x", "Invalid value: 7: spec.x in body should be a multiple of 5")],
    ),
    (
        {"type": "number", "multipleOf": 0.5},
        0.7,
        [("spec.x", "Invalid value: 0.7: spec.x in body should be a multiple of 0.5")],
    ),
    (
        {"type": "integer", "format": "int32"},
        2**31,
        [
            (
                "spec.x",
                'Invalid value: 2147483648: spec.x in body must be of type int32: "2147483648"',
            )
        ],
    ),
    # strings
    (
        {"type": "string", "maxLength": 3},
        "abcd",
        [("spec.x", "Too long: may not be longer than 3")],
    ),
    (
        {"type": "string", "minLength": 2},
        "a",
        [("spec.x", 'Invalid value: "a": spec.x in body should be at least 2 chars long')],
    ),
    (
        {"type": "string", "pattern": "^[a-z]+$"},
        "A1",
        [("spec.x", "Invalid value: \"A1\": spec.x in body should match '^[a-z]+$'")],
    ),
    (
        {"type": "string", "format": "date-time"},
        "yesterday",
        [
            (
                "spec.x",
                'Invalid value: "yesterday": spec.x in body must be of type date-time: "yesterday"',
            )
        ],
    ),
    (
        {"type": "string", "format": "duration"},
        "5 fortnights",
        [
            (
                "spec.x",
                'Invalid value: "5 fortnights": '
                'spec.x in body must be of type duration: "5 fortnights"',
            )
        ],
    ),
    (
        {"type": "string", "format": "byte"},
        "not base64!",
        [
            (
                "spec.x",
                'Invalid value: "not base64!": spec.x in body must be of type byte: "not base64!"',
            )
        ],
    ),
    # arrays
    (
        {"type": "array", "maxItems": 2, "items": {"type": "integer"}},
        [1, 2, 3],
        [("spec.x", "Too many: 3: must have at most 2 items")],
    ),
    (
        {"type": "array", "minItems": 1, "items": {"type": "integer"}},
        [],
        [("spec.x", "Invalid value: 0: spec.x in body should have at least 1 items")],
    ),
    (
        {"type": "array", "uniqueItems": True, "items": {"type": "integer"}},
        [1, 2, 1],
        [("spec.x", 'Invalid value: "": spec.x in body shouldn\'t contain duplicates')],
    ),
    (
        {"type": "array", "items": {"type": "integer", "minimum": 1}},
        [1, 0],
        [("spec.x[1]", "Invalid value: 0: spec.x[1] in body should be greater than or equal to 1")],
    ),
    (
        {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        ["a", "b", "a", "a", "b"],
        [("spec.x[2]", 'Duplicate value: "a"'), ("spec.x[4]", 'Duplicate value: "b"')],
    ),
    (
        {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
            },
        },
        [{"name": "a", "port": 1}, {"name": "b", "port": 1}, {"name": "a", "port": 2}],
        [("spec.x[2]", 'Duplicate value: map[string]interface {}{"name":"a"}')],
    ),
    (
        {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["port", "protocol"],
            "items": {
                "type": "object",
                "properties": {
                    "port": {"type": "integer"},
                    "protocol": {"type": "string", "default": "TCP"},
                },
            },
        },
        [{"port": 80}, {"port": 80, "protocol": "UDP"}, {"port": 80, "protocol": "TCP"}],
        [("spec.x[2]", 'Duplicate value: map[string]interface {}{"port":80, "protocol":"TCP"}')],
    ),
    # objects
    (
        {
            "type": "object",
            "required": ["b", "a"],
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        },
        {},
        [("spec.x.b", "Required value"), ("spec.x.a", "Required value")],
    ),
    (
        {"type": "object", "maxProperties": 1, "additionalProperties": {"type": "string"}},
        {"a": "1", "b": "2"},
        [("spec.x", "Too many: 2: must have at most 1 items")],
    ),
    (
        {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"}},
        {},
        [("spec.x", "Invalid value: 0: spec.x in body should have at least 1 properties")],
    ),
    (
        {"type": "object", "additionalProperties": {"type": "string", "maxLength": 1}},
        {"k": "long"},
        [("spec.x[k]", "Too long: may not be longer than 1")],
    ),
    # logical junctors
    (
        {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
        },
        {"a": "1", "b": "2"},
        [
            (
                "spec.x",
                'Invalid value: "": "spec.x" must validate one and only one schema (oneOf). '
                "Found 2 valid alternatives",
            )
        ],
    ),
    (
        {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
        },
        {},
        [
            (
                "spec.x",
                'Invalid value: "": "spec.x" must validate one and only one schema (oneOf). '
                "Found none valid",
            ),
            ("spec.x.a", "Required value"),
        ],
    ),
    (
        {"type": "integer", "anyOf": [{"minimum": 10}, {"maximum": 0}]},
        5,
        [
            ("spec.x", 'Invalid value: "": "spec.x" must validate at least one schema (anyOf)'),
            ("spec.x", "Invalid value: 5: spec.x in body should be greater than or equal to 10"),
        ],
    ),
    (
        {"type": "string", "not": {"enum": ["forbidden"]}},
        "forbidden",
        [("spec.x", 'Invalid value: "": "spec.x" must not validate the schema (not)')],
    ),
    (
        {"type": "string", "allOf": [{"minLength": 2}, {"pattern": "^a"}]},
        "b",
        [
            ("spec.x", 'Invalid value: "b": spec.x in body should be at least 2 chars long'),
            ("spec.x", "Invalid value: \"b\": spec.x in body should match '^a'"),
        ],
    ),
]


@pytest.mark.parametrize(("schema", "value", "expected"), INVALID)
def test_invalid_values_are_reported_like_the_apiserver(
    schema: dict[str, Any], value: Any, expected: list[tuple[str, str]]
) -> None:
    assert _problems(schema, value) == expected


VALID = [
    ({"type": "integer"}, 3),
    ({"type": "integer"}, 3.0),  # an integral float is an integer, as in kube-openapi
    ({"type": "number"}, 3),
    ({"type": "string", "nullable": True}, None),
    ({"x-kubernetes-int-or-string": True}, 8080),
    ({"x-kubernetes-int-or-string": True}, "http"),
    ({"type": "integer", "minimum": 0, "maximum": 10}, 10),
    ({"type": "number", "multipleOf": 0.1}, 0.3),
    ({"type": "string", "maxLength": 2}, "é€"),  # counted in characters (runes), not bytes
    ({"type": "string", "pattern": "[0-9]"}, "abc1def"),  # Go's MatchString is unanchored
    ({"type": "string", "format": "date-time"}, "2024-02-29T12:00:00Z"),
    ({"type": "string", "format": "date"}, "2024-02-29"),
    ({"type": "string", "format": "duration"}, "1h30m"),
    ({"type": "string", "format": "byte"}, "aGVsbG8="),
    ({"type": "string", "format": "ipv4"}, "10.0.0.1"),
    ({"type": "string", "format": "cidr"}, "10.0.0.0/8"),
    ({"type": "string", "format": "uuid"}, "123e4567-e89b-12d3-a456-426614174000"),
    ({"type": "string", "format": "no-such-format"}, "anything"),
    ({"type": "integer", "format": "int32"}, 2**31 - 1),
    ({"type": "string", "enum": ["a", "b"]}, "b"),
    ({"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "integer"}}, [1, 2, 3]),
    ({"type": "object", "x-kubernetes-preserve-unknown-fields": True}, {"any": ["thing"]}),
    ({"x-kubernetes-preserve-unknown-fields": True}, None),
]


@pytest.mark.parametrize(("schema", "value"), VALID)
def test_valid_values_have_no_problems(schema: dict[str, Any], value: Any) -> None:
    assert _problems(schema, value) == []


def test_problems_come_in_document_order() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "b": {"type": "integer", "minimum": 0},
                    "a": {"type": "integer", "minimum": 0},
                },
            }
        },
    }
    obj = {"spec": {"b": -1, "a": -2}}
    fields = [p.field for p in validate(schema, obj)]
    assert fields == ["spec.name", "spec.b", "spec.a"]
    assert validate(schema, obj) == validate(schema, obj)


def test_problem_is_the_shared_problem_type_and_prints_like_kubectl() -> None:
    problems = validate(_wrap({"type": "integer", "minimum": 0}), {"spec": {"x": -1}})
    assert problems == [
        Problem("spec.x", "Invalid value: -1: spec.x in body should be greater than or equal to 0")
    ]
    assert str(problems[0]).startswith("spec.x: Invalid value: -1:")


def test_a_wrong_type_stops_checks_below_it() -> None:
    schema = _wrap({"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}})
    assert [p.field for p in validate(schema, {"spec": {"x": "str"}})] == ["spec.x"]


def test_unknown_fields_are_not_validation_problems() -> None:
    # Pruning drops them before validation; validation itself ignores them.
    assert validate(_wrap({"type": "object", "properties": {}}), {"spec": {"x": {"y": 1}}}) == []


def test_embedded_resource_needs_api_version_and_kind() -> None:
    schema = _wrap(
        {
            "type": "object",
            "x-kubernetes-embedded-resource": True,
            "x-kubernetes-preserve-unknown-fields": True,
        }
    )
    problems = validate(schema, {"spec": {"x": {"kind": "Pod"}}})
    assert problems == [Problem("spec.x.apiVersion", "Required value: must not be empty")]


def test_validating_again_compiles_no_pattern_again() -> None:
    """Cost is measured in benchmarks/; here the behaviour that keeps it low: a pattern is
    compiled once per text, not once per field or per call (counted by the cache)."""
    properties: dict[str, Any] = {}
    spec: dict[str, Any] = {}
    for i in range(100):
        properties[f"s{i}"] = {"type": "string", "maxLength": 64, "pattern": f"^[a-z0-9-]*{i}$"}
        properties[f"n{i}"] = {"type": "integer", "minimum": 0, "format": "int32"}
        spec[f"s{i}"] = f"value-{i}"
        spec[f"n{i}"] = i
    schema = {
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": properties}},
    }
    obj = {"spec": spec}
    assert validate(schema, obj) == []
    compiled = compile_re2.cache_info().misses
    for _ in range(50):
        assert validate(schema, obj) == []
    assert compile_re2.cache_info().misses == compiled
