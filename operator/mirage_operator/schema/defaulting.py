"""Defaulting, in the apiserver's two steps (``structuraldefaulting``).

1. ``PruneNonNullableNullsWithoutDefaults``: a ``null`` under a property (or map value) that is
   not ``nullable`` and has no ``default`` is removed, as if it had not been sent.
2. ``Default``: a missing property (or a non-nullable ``null`` one) of an object that exists
   takes a copy of its ``default`` (``default: null`` counts as no default); defaulting then
   recurses into every value, defaulted ones included, and into array items and map values (a
   non-nullable ``null`` item takes the item default). Objects that do not exist are never
   created, except by a parent's default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mirage_operator.schema.values import deep_copy


def apply_defaults(schema: Mapping[str, Any], obj: Any) -> Any:
    """Return a deep copy of ``obj`` with the schema's ``default`` values applied."""
    copied = deep_copy(obj)
    _prune_nulls(copied, schema)
    _default(copied, schema)
    return copied


def _nonnullable_null(value: Any, schema: Mapping[str, Any] | None) -> bool:
    return value is None and schema is not None and schema.get("nullable") is not True


def _value_schema(schema: Mapping[str, Any]) -> Mapping[str, Any] | None:
    additional = schema.get("additionalProperties")
    return additional if isinstance(additional, Mapping) else None


def _prune_nulls(value: Any, schema: Mapping[str, Any] | None) -> None:
    if schema is None:
        return
    if isinstance(value, dict):
        properties = schema.get("properties")
        value_schema = _value_schema(schema)
        for name in list(value):
            item = value[name]
            sub = properties.get(name) if properties else None
            if sub is None and value_schema is not None:
                sub = value_schema
            if sub is None:
                continue
            if _nonnullable_null(item, sub) and sub.get("default") is None:
                del value[name]
            else:
                _prune_nulls(item, sub)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for item in value:
                _prune_nulls(item, items)


def _default(value: Any, schema: Mapping[str, Any] | None) -> None:
    if schema is None:
        return
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name, sub in properties.items():
            if sub.get("default") is not None and (
                name not in value or _nonnullable_null(value[name], sub)
            ):
                value[name] = deep_copy(sub["default"])
        value_schema = _value_schema(schema)
        for name, item in value.items():
            sub = properties.get(name)
            if sub is not None:
                _default(item, sub)
            elif value_schema is not None:
                if (
                    _nonnullable_null(item, value_schema)
                    and value_schema.get("default") is not None
                ):
                    item = value[name] = deep_copy(value_schema["default"])
                _default(item, value_schema)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for i, item in enumerate(value):
                if _nonnullable_null(item, items) and items.get("default") is not None:
                    item = value[i] = deep_copy(items["default"])
                _default(item, items)
