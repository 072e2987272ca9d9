"""Reasons worded like the apiserver's ``field.Error`` bodies (k8s.io/apimachinery).

A real apiserver prints ``<path>: <body>`` where the body is, for example,
``Invalid value: -1: spec.replicas in body should be greater than or equal to 0``. The bad
value is printed the way Go's ``fmt`` prints the decoded JSON value: strings quoted, numbers
bare, ``null`` as the *string* ``"null"``, objects as ``map[string]interface {}{...}``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

_OMIT = object()


def go_float(value: float) -> str:
    """A float as Go's ``%v`` prints a ``float64`` (``10`` not ``10.0``, ``1e+21``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def go_quote(text: str) -> str:
    """A string as Go's ``%q`` quotes it (close enough: JSON escaping, non-ASCII kept)."""
    return json.dumps(text, ensure_ascii=False)


def go_syntax(value: Any) -> str:
    """A decoded JSON value as Go's ``%#v`` prints it (map keys sorted, like ``fmt``)."""
    if value is None:
        return "interface {}(nil)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, Mapping):
        items = ", ".join(f"{go_quote(str(k))}:{go_syntax(value[k])}" for k in sorted(value))
        return f"map[string]interface {{}}{{{items}}}"
    if isinstance(value, list | tuple):
        return "[]interface {}{" + ", ".join(go_syntax(v) for v in value) + "}"
    return go_quote(str(value))


def go_value(value: Any) -> str:
    """A bad value as ``field.Error.ErrorBody`` prints it (``%#v``, but null as ``"null"``)."""
    return '"null"' if value is None else go_syntax(value)


def _body(kind: str, value: Any, detail: str) -> str:
    text = kind if value is _OMIT else f"{kind}: {go_value(value)}"
    return f"{text}: {detail}" if detail else text


def invalid(value: Any, detail: str) -> str:
    """``Invalid value: <value>: <detail>``."""
    return _body("Invalid value", value, detail)


def required(detail: str = "") -> str:
    """``Required value`` (the value is never printed)."""
    return _body("Required value", _OMIT, detail)


def forbidden(detail: str) -> str:
    """``Forbidden: <detail>``."""
    return _body("Forbidden", _OMIT, detail)


def duplicate(value: Any) -> str:
    """``Duplicate value: <value>``."""
    return _body("Duplicate value", value, "")


def unsupported(value: Any, supported: Iterable[Any]) -> str:
    """``Unsupported value: "x": supported values: "a", "b"`` (non-strings as JSON)."""
    quoted = [
        go_quote(v if isinstance(v, str) else json.dumps(v, separators=(",", ":")))
        for v in supported
    ]
    detail = "supported values: " + ", ".join(quoted) if quoted else ""
    return _body("Unsupported value", value, detail)


def too_long(max_length: int) -> str:
    """``Too long: may not be longer than N`` (the value is omitted)."""
    return _body("Too long", _OMIT, f"may not be longer than {max_length}")


def too_many(actual: int, maximum: int) -> str:
    """``Too many: 5: must have at most 3 items``."""
    return _body("Too many", actual, f"must have at most {maximum} items")
