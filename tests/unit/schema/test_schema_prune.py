"""Structural pruning: unknown fields go, exactly where the apiserver drops them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mirage_operator.schema import prune

SPEC: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer"},
                "port": {"x-kubernetes-int-or-string": True},
                "ports": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "env": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "properties": {"value": {"type": "string"}},
                    },
                },
                "extra": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {
                        "known": {"type": "object", "properties": {"a": {"type": "string"}}}
                    },
                },
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {"spec": {"type": "object", "properties": {}}},
                },
                "raw": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "x-kubernetes-preserve-unknown-fields": True,
                },
            },
        },
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
    },
}


@pytest.mark.parametrize(
    ("obj", "expected", "removed"),
    [
        pytest.param(
            {"spec": {"replicas": 2, "foo": 1}, "bar": {"x": 1}},
            {"spec": {"replicas": 2}},
            ["bar", "spec.foo"],
            id="unknown-fields-at-two-levels",
        ),
        pytest.param(
            {"spec": {"ports": [{"name": "a"}, {"name": "b", "bar": 1}]}},
            {"spec": {"ports": [{"name": "a"}, {"name": "b"}]}},
            ["spec.ports[1].bar"],
            id="inside-list-items",
        ),
        pytest.param(
            {"spec": {"labels": {"anything": "goes", "x.y/z": "v"}}},
            {"spec": {"labels": {"anything": "goes", "x.y/z": "v"}}},
            [],
            id="map-keys-are-kept",
        ),
        pytest.param(
            {"spec": {"env": {"A": {"value": "1", "bogus": True}}}},
            {"spec": {"env": {"A": {"value": "1"}}}},
            ["spec.env[A].bogus"],
            id="inside-map-values",
        ),
        pytest.param(
            {"spec": {"extra": {"free": {"deep": [1, {"x": 2}]}, "known": {"a": "s", "b": 1}}}},
            {"spec": {"extra": {"free": {"deep": [1, {"x": 2}]}, "known": {"a": "s"}}}},
            ["spec.extra.known.b"],
            id="preserve-unknown-still-prunes-known-properties",
        ),
        pytest.param(
            {
                "spec": {
                    "template": {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {"name": "p", "labels": {"a": "b"}},
                        "spec": {"containers": []},
                        "junk": 1,
                    }
                }
            },
            {
                "spec": {
                    "template": {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {"name": "p", "labels": {"a": "b"}},
                        "spec": {},
                    }
                }
            },
            ["spec.template.junk", "spec.template.spec.containers"],
            id="embedded-resource-keeps-type-and-object-meta",
        ),
        pytest.param(
            {"spec": {"raw": {"apiVersion": "v1", "kind": "X", "anything": {"a": 1}}}},
            {"spec": {"raw": {"apiVersion": "v1", "kind": "X", "anything": {"a": 1}}}},
            [],
            id="embedded-preserve-unknown",
        ),
        pytest.param(
            {"spec": {"port": "http"}},
            {"spec": {"port": "http"}},
            [],
            id="int-or-string-scalar",
        ),
        pytest.param(
            {"spec": {"replicas": {"nested": 1}}},
            {"spec": {"replicas": {}}},
            ["spec.replicas.nested"],
            id="object-where-a-scalar-is-specified-loses-its-fields",
        ),
    ],
)
def test_prune_removes_unknown_fields(
    obj: dict[str, Any], expected: dict[str, Any], removed: list[str]
) -> None:
    pruned, paths = prune(SPEC, obj)
    assert pruned == expected
    assert paths == removed


def test_root_type_and_object_meta_are_never_pruned() -> None:
    obj = {
        "apiVersion": "mirage.dev/v1alpha1",
        "kind": "Thing",
        "metadata": {"name": "a", "annotations": {"x": "y"}, "whatever": 1},
        "spec": {},
    }
    pruned, removed = prune(SPEC, obj)
    assert pruned == obj
    assert removed == []


def test_prune_returns_a_copy_and_leaves_the_input_alone() -> None:
    obj: dict[str, Any] = {"spec": {"replicas": 1, "foo": 2, "ports": [{"name": "a", "x": 1}]}}
    before = copy.deepcopy(obj)
    pruned, _ = prune(SPEC, obj)
    assert obj == before
    pruned["spec"]["ports"][0]["name"] = "changed"
    assert obj["spec"]["ports"][0]["name"] == "a"


def test_removed_paths_are_sorted() -> None:
    _, removed = prune(SPEC, {"z": 1, "spec": {"b": 1, "a": 1}, "a": 1})
    assert removed == sorted(removed)
    assert set(removed) == {"z", "a", "spec.a", "spec.b"}


def test_additional_properties_true_keeps_keys_but_nothing_below_them() -> None:
    schema = {
        "type": "object",
        "properties": {"m": {"type": "object", "additionalProperties": True}},
    }
    pruned, removed = prune(schema, {"m": {"k": "v", "o": {"x": 1}}})
    assert pruned == {"m": {"k": "v", "o": {}}}
    assert removed == ["m[o].x"]
