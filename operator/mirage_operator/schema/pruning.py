"""Structural pruning: drop every field the schema does not specify, like the apiserver.

Mirrors ``structuralpruning.PruneWithOptions``: unknown fields go, except under
``x-kubernetes-preserve-unknown-fields`` (which still prunes inside the properties it does
specify), ``apiVersion``/``kind``/``metadata`` of embedded resources, and ``apiVersion``/
``kind``/``metadata`` at the root (metadata is ObjectMeta, never pruned by the CRD schema).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mirage_operator.schema.values import child, deep_copy, index, key

_META_FIELDS = frozenset({"apiVersion", "kind", "metadata"})


def prune(schema: Mapping[str, Any], obj: Any) -> tuple[Any, list[str]]:
    """Return a pruned deep copy of ``obj`` and the sorted paths of the fields removed."""
    copied = deep_copy(obj)
    removed: list[str] = []
    _prune(copied, schema, "", removed, root=True)
    return copied, sorted(removed)


def _map_schema(schema: Mapping[str, Any]) -> tuple[bool, Mapping[str, Any] | None]:
    """Whether ``schema`` describes a map (additionalProperties), and its value schema."""
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping):
        return True, additional
    # additionalProperties: true keeps the keys but specifies nothing below them.
    return additional is True, None


def _prune(
    value: Any, schema: Mapping[str, Any] | None, path: str, removed: list[str], *, root: bool
) -> None:
    if schema is not None and schema.get("x-kubernetes-preserve-unknown-fields") is True:
        _skip_prune(value, schema, path, removed)
        return
    if isinstance(value, dict):
        if schema is None:
            removed.extend(child(path, k) for k in value)
            value.clear()
            return
        properties = schema.get("properties") or {}
        is_map, value_schema = _map_schema(schema)
        embedded = schema.get("x-kubernetes-embedded-resource") is True
        for name in list(value):
            item = value[name]
            if embedded and _kept_embedded_meta(name, item):
                continue
            if root and name == "metadata":
                continue  # ObjectMeta: the apiserver never prunes it by the CRD schema
            if name in properties:
                _prune(item, properties[name], child(path, name), removed, root=False)
            elif is_map:
                _prune(item, value_schema, key(path, name), removed, root=False)
            elif not (root and name in _META_FIELDS):
                removed.append(child(path, name))
                del value[name]
    elif isinstance(value, list):
        items = None if schema is None else schema.get("items")
        for i, item in enumerate(value):
            _prune(item, items, index(path, i), removed, root=False)


def _kept_embedded_meta(name: str, item: Any) -> bool:
    """apiVersion/kind (strings) and metadata (an object) of an embedded resource stay."""
    if name in ("apiVersion", "kind"):
        return isinstance(item, str)
    return name == "metadata" and isinstance(item, dict)


def _skip_prune(value: Any, schema: Mapping[str, Any], path: str, removed: list[str]) -> None:
    """Keep unknown fields here, but still prune inside the ones the schema specifies."""
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        is_map, value_schema = _map_schema(schema)
        embedded = schema.get("x-kubernetes-embedded-resource") is True
        for name, item in value.items():
            if embedded and name in _META_FIELDS:
                continue
            if name in properties:
                _prune(item, properties[name], child(path, name), removed, root=False)
            elif is_map and value_schema is not None:
                _prune(item, value_schema, key(path, name), removed, root=False)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for i, item in enumerate(value):
                _prune(item, items, index(path, i), removed, root=False)
