"""The CRD schemas' defaults, applied to a spec before a typed model reads it.

``crds/`` is the one source of every default a schema can hold (docs/adr/0130): the models
default a spec with the CRD's own schema, exactly as the API server does, and then read each
field as present. A spec the API server has stored is already defaulted, so this changes
nothing there; a spec read from a file (``mirage render``, the tests) gets the same values.

The few defaults a schema cannot hold (ADR 0009, 0012: they depend on another field or on an
operator setting, or sit below an optional object) live once in the model, and the field's
description states them (checked by ``tests/unit/api/test_defaults.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from mirage_operator import API_VERSION
from mirage_operator.crds import schema_for
from mirage_operator.schema.defaulting import apply_defaults


@cache
def spec_schema(kind: str) -> Mapping[str, Any]:
    """The CRD schema of ``kind``'s ``spec``."""
    schema = schema_for(API_VERSION, kind)
    if schema is None:
        raise LookupError(f"no CRD for {kind}")
    spec: Mapping[str, Any] = schema["properties"]["spec"]
    return spec


def defaulted(kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``spec`` with the defaults of ``kind``'s CRD applied (``spec`` is untouched)."""
    result: dict[str, Any] = apply_defaults(spec_schema(kind), spec)
    return result


def schema_default(kind: str, *path: str) -> Any:
    """The ``default`` of the property at ``path`` of ``kind`` (property names from ``spec``;
    ``[]`` steps into an array's items)."""
    node = spec_schema(kind)
    for name in path:
        node = node["items"] if name == "[]" else node["properties"][name]
    return node["default"]


def defaulted_at(kind: str, spec: Mapping[str, Any], name: str) -> dict[str, Any]:
    """``spec[name]`` defaulted, or what an empty object there defaults to when it is unset
    (an optional object without a default of its own: its fields' defaults still apply)."""
    result: dict[str, Any] = apply_defaults(
        spec_schema(kind)["properties"][name], spec.get(name) or {}
    )
    return result
