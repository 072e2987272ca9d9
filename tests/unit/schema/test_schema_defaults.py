"""Defaulting as the apiserver does it: nulls pruned, missing fields of existing objects filled."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mirage_operator.schema import apply_defaults

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer", "default": 1},
                "image": {"type": "string"},
                "note": {"type": "string", "nullable": True},
                "tier": {"type": "string", "nullable": True, "default": "gold"},
                "resources": {
                    "type": "object",
                    "default": {},
                    "properties": {
                        "cpu": {"type": "string", "default": "100m"},
                        "limits": {
                            "type": "object",
                            "properties": {"memory": {"type": "string", "default": "1Gi"}},
                        },
                    },
                },
                "probe": {
                    "type": "object",
                    "properties": {"path": {"type": "string", "default": "/healthz"}},
                },
                "ports": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "protocol": {"type": "string", "default": "TCP"},
                        },
                    },
                },
                "weights": {
                    "type": "array",
                    "items": {"type": "integer", "default": 5},
                },
                "env": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "properties": {"secret": {"type": "boolean", "default": False}},
                    },
                },
            },
        }
    },
}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {},
            {"replicas": 1, "tier": "gold", "resources": {"cpu": "100m"}},
            id="missing-properties-of-an-existing-object",
        ),
        pytest.param(
            {"replicas": 3, "resources": {"cpu": "2"}, "tier": "bronze"},
            {"replicas": 3, "resources": {"cpu": "2"}, "tier": "bronze"},
            id="given-values-win",
        ),
        pytest.param(
            {"resources": {"limits": {}}},
            {
                "replicas": 1,
                "tier": "gold",
                "resources": {"cpu": "100m", "limits": {"memory": "1Gi"}},
            },
            id="recurses-into-existing-nested-objects",
        ),
        pytest.param(
            {"probe": {}},
            {
                "replicas": 1,
                "tier": "gold",
                "resources": {"cpu": "100m"},
                "probe": {"path": "/healthz"},
            },
            id="nested-object-only-defaulted-when-present",
        ),
        pytest.param(
            {"ports": [{"name": "http"}, {"name": "dns", "protocol": "UDP"}]},
            {
                "replicas": 1,
                "tier": "gold",
                "resources": {"cpu": "100m"},
                "ports": [{"name": "http", "protocol": "TCP"}, {"name": "dns", "protocol": "UDP"}],
            },
            id="array-items",
        ),
        pytest.param(
            {"weights": [1, None, 3]},
            {"replicas": 1, "tier": "gold", "resources": {"cpu": "100m"}, "weights": [1, 5, 3]},
            id="null-array-item-takes-the-item-default",
        ),
        pytest.param(
            {"env": {"A": {}, "B": {"secret": True}}},
            {
                "replicas": 1,
                "tier": "gold",
                "resources": {"cpu": "100m"},
                "env": {"A": {"secret": False}, "B": {"secret": True}},
            },
            id="map-values",
        ),
        pytest.param(
            {"replicas": None, "image": None, "resources": None},
            {"replicas": 1, "tier": "gold", "resources": {"cpu": "100m"}},
            id="non-nullable-nulls-defaulted-or-removed",
        ),
        pytest.param(
            {"note": None, "tier": None},
            {"replicas": 1, "note": None, "tier": None, "resources": {"cpu": "100m"}},
            id="nullable-nulls-are-kept",
        ),
    ],
)
def test_apply_defaults(spec: dict[str, Any], expected: dict[str, Any]) -> None:
    assert apply_defaults(SCHEMA, {"spec": spec}) == {"spec": expected}


def test_absent_objects_are_not_created() -> None:
    assert apply_defaults(SCHEMA, {"metadata": {"name": "x"}}) == {"metadata": {"name": "x"}}


def test_defaults_are_copies_and_the_input_is_untouched() -> None:
    schema = copy.deepcopy(SCHEMA)
    obj: dict[str, Any] = {"spec": {}}
    first = apply_defaults(schema, obj)
    first["spec"]["resources"]["cpu"] = "changed"
    second = apply_defaults(schema, obj)
    assert obj == {"spec": {}}
    assert second["spec"]["resources"] == {"cpu": "100m"}
    assert schema == SCHEMA


def test_default_null_counts_as_no_default() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "default": None}}}
    assert apply_defaults(schema, {}) == {}
    assert apply_defaults(schema, {"a": None}) == {}
