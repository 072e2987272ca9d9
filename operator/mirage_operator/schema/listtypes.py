"""``x-kubernetes-list-type: set|map`` uniqueness, as ``structurallisttype`` checks it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mirage_operator.errors import Problem
from mirage_operator.schema import reasons
from mirage_operator.schema.values import index


def _scalar_key(value: Any) -> tuple[str, Any]:
    # Go compares decoded JSON by dynamic type: int64(1) != float64(1) != true.
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int):
        return ("i", value)
    if isinstance(value, float):
        return ("f", value)
    return ("s" if isinstance(value, str) else "n", value)


def _set_key(value: Any) -> tuple[str, Any]:
    if isinstance(value, Mapping | list):
        return ("c", json.dumps(value, sort_keys=True, separators=(",", ":")))
    return _scalar_key(value)


def check_list_type(schema: Mapping[str, Any], items: list[Any], path: str) -> list[Problem]:
    """Duplicate problems of a ``set`` or ``map`` list (nothing for ``atomic`` or unset)."""
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set":
        return _check_set(items, path)
    if list_type == "map":
        return _check_map(schema, items, path)
    return []


def _check_set(items: list[Any], path: str) -> list[Problem]:
    # Each duplicated value is reported once, at its second occurrence.
    seen: dict[tuple[str, Any], int] = {}
    problems: list[Problem] = []
    for i, item in enumerate(items):
        k = _set_key(item)
        times = seen.get(k, 0)
        seen[k] = times + 1
        if times == 1:
            problems.append(Problem(index(path, i), reasons.duplicate(item)))
    return problems


def _check_map(schema: Mapping[str, Any], items: list[Any], path: str) -> list[Problem]:
    for i, item in enumerate(items):
        if item is not None and not isinstance(item, Mapping):
            detail = "must be an object for an array of list-type map"
            return [Problem(index(path, i), reasons.invalid(item, detail))]
    keys: list[str] = list(schema.get("x-kubernetes-list-map-keys") or ())
    properties = (schema.get("items") or {}).get("properties") or {}
    seen: set[tuple[tuple[str, Any], ...]] = set()
    problems: list[Problem] = []
    for i, item in enumerate(items):
        if item is None:
            continue
        values: dict[str, Any] = {}
        for name in keys:
            if name in item:
                values[name] = item[name]
            elif (properties.get(name) or {}).get("default") is not None:
                values[name] = properties[name]["default"]
        # A missing key (no default) is its own value: two items missing it collide.
        k = tuple(_scalar_key(values[n]) if n in values else ("u", None) for n in keys)
        if k in seen:
            problems.append(Problem(index(path, i), reasons.duplicate(values)))
        else:
            seen.add(k)
    return problems
