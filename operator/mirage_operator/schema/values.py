"""JSON value helpers shared by the schema engine: type names, equality, copying, paths.

Values are what ``json.loads`` / ``yaml.safe_load`` produce: ``dict``, ``list``, ``str``,
``int``, ``float``, ``bool`` and ``None``. Python's ``bool`` is an ``int`` subclass, so every
type test here checks ``bool`` first, as Go's JSON decoding keeps them apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ROOT_PATH = "<nil>"
"""How Kubernetes prints the path of the object's root (``field.Path(nil).String()``)."""


# In this order: a bool is an int to Python, not to JSON.
_JSON_TYPES: tuple[tuple[Any, str], ...] = (
    (type(None), "null"),
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (Mapping, "object"),
    (list | tuple, "array"),
)


def json_type(value: Any) -> str:
    """The JSON-schema type name of ``value``, as the apiserver's validator names it."""
    return next(
        (name for kind, name in _JSON_TYPES if isinstance(value, kind)), type(value).__name__
    )


def is_integer(value: Any) -> bool:
    """Whether ``value`` is a JSON integer (an integral float counts, as in kube-openapi)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and value.is_integer()


def is_number(value: Any) -> bool:
    """Whether ``value`` is a JSON number (integer or float, never a boolean)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(a: Any, b: Any) -> bool:
    """Deep equality of JSON values where ``True != 1`` (unlike Python's ``==``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, Mapping):
        if not isinstance(b, Mapping) or a.keys() != b.keys():
            return False
        return all(json_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list | tuple):
        if not isinstance(b, list | tuple) or len(a) != len(b):
            return False
        return all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(b, Mapping | list | tuple):
        return False
    return bool(a == b) and (is_number(a) == is_number(b))


def deep_copy(value: Any) -> Any:
    """Copy a JSON value (much faster than :func:`copy.deepcopy` for plain JSON)."""
    if isinstance(value, Mapping):
        return {k: deep_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [deep_copy(v) for v in value]
    return value


def child(path: str, name: str) -> str:
    """Path of property ``name`` under ``path`` (``spec`` + ``replicas`` = ``spec.replicas``)."""
    return f"{path}.{name}" if path else name


def index(path: str, i: int) -> str:
    """Path of list item ``i`` under ``path`` (``spec.ports[1]``)."""
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    """Path of map entry ``k`` under ``path`` (``spec.labels[app]``), as ``field.Path.Key``."""
    return f"{path}[{k}]"


def shown(path: str) -> str:
    """``path`` as Kubernetes prints it: the root is ``<nil>``."""
    return path or ROOT_PATH
