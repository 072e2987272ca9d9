"""The Kubernetes CEL library functions celpy lacks, as celpy extension functions.

celpy calls a method ``x.f(a)`` as ``f(x, a)`` and turns a ``ValueError``/``TypeError`` raised
here into a CEL evaluation error. Provided:

- the ``strings`` extension: ``charAt``, ``indexOf``, ``lastIndexOf``, ``lowerAscii``,
  ``upperAscii``, ``replace``, ``split``, ``substring``, ``trim``, ``join``, ``reverse``;
- Kubernetes list functions: ``isSorted``, ``sum``, ``min``, ``max``, ``indexOf``,
  ``lastIndexOf``;
- Kubernetes regex functions: ``find``, ``findAll``;
- Kubernetes quantities: ``quantity``, ``isQuantity`` and the methods ``sign``, ``isInteger``,
  ``asInteger``, ``asApproximateFloat``, ``add``, ``sub``, ``compareTo``, ``isGreaterThan``,
  ``isLessThan`` (quantities also compare with ``==``);
- Kubernetes URLs: ``url``, ``isURL`` and the methods ``getScheme``, ``getHost``,
  ``getHostname``, ``getPort``, ``getEscapedPath``, ``getQuery`` (Istio's CRDs use them);
- ``dyn`` (the identity: celpy is dynamically typed anyway).
"""

from __future__ import annotations

import itertools
import urllib.parse
from collections.abc import Callable
from decimal import Context, Decimal
from typing import Any

from celpy import celtypes

from mirage_operator.quantity import is_quantity, parse_quantity
from mirage_operator.schema.regex import compile_re2


def _ascii(text: str, convert: Callable[[str], str]) -> celtypes.StringType:
    return celtypes.StringType("".join(convert(c) if c.isascii() else c for c in text))


def _lower_ascii(text: str) -> celtypes.StringType:
    return _ascii(text, str.lower)


def _upper_ascii(text: str) -> celtypes.StringType:
    return _ascii(text, str.upper)


def _char_at(text: str, i: int) -> celtypes.StringType:
    if not 0 <= i <= len(text):
        raise ValueError(f"index out of range: {i}")
    return celtypes.StringType(text[i : i + 1])


def _index_of(target: Any, item: Any, start: int = 0) -> celtypes.IntType:
    if isinstance(target, list):
        for i, candidate in enumerate(target):
            if candidate == item:
                return celtypes.IntType(i)
        return celtypes.IntType(-1)
    if not 0 <= start <= len(target):
        raise ValueError(f"index out of range: {start}")
    return celtypes.IntType(str(target).find(str(item), int(start)))


def _last_index_of(target: Any, item: Any, end: int | None = None) -> celtypes.IntType:
    if isinstance(target, list):
        for i in range(len(target) - 1, -1, -1):
            if target[i] == item:
                return celtypes.IntType(i)
        return celtypes.IntType(-1)
    text = str(target)
    stop = len(text) if end is None else int(end) + len(str(item))
    return celtypes.IntType(text.rfind(str(item), 0, stop))


def _replace(text: str, old: str, new: str, count: int = -1) -> celtypes.StringType:
    return celtypes.StringType(str(text).replace(str(old), str(new), int(count)))


def _split(text: str, sep: str, limit: int = -1) -> celtypes.ListType:
    # Go's strings.SplitN: n == 0 gives no parts, n < 0 all of them, "" splits into runes.
    text, sep, limit = str(text), str(sep), int(limit)
    if limit == 0:
        return celtypes.ListType([])
    if sep == "":
        parts = list(text)
        if 0 < limit < len(parts):
            parts = [*parts[: limit - 1], "".join(parts[limit - 1 :])]
    else:
        parts = text.split(sep, limit - 1 if limit > 0 else -1)
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def _substring(text: str, start: int, end: int | None = None) -> celtypes.StringType:
    stop = len(text) if end is None else int(end)
    if not 0 <= int(start) <= stop <= len(text):
        raise ValueError(f"index out of range: {start}..{stop}")
    return celtypes.StringType(text[int(start) : stop])


def _trim(text: str) -> celtypes.StringType:
    return celtypes.StringType(str(text).strip())


def _join(items: list[Any], sep: str = "") -> celtypes.StringType:
    if not all(isinstance(i, str) for i in items):
        raise TypeError("join: list of strings expected")
    return celtypes.StringType(str(sep).join(items))


def _reverse(text: str) -> celtypes.StringType:
    return celtypes.StringType(str(text)[::-1])


def _is_sorted(items: list[Any]) -> celtypes.BoolType:
    return celtypes.BoolType(all(a <= b for a, b in itertools.pairwise(items)))


def _sum(items: list[Any]) -> Any:
    if not items:
        return celtypes.IntType(0)
    total = items[0]
    for item in items[1:]:
        total = total + item
    return total


def _min(items: list[Any]) -> Any:
    if not items:
        raise ValueError("min called on empty list")
    return min(items)


def _max(items: list[Any]) -> Any:
    if not items:
        raise ValueError("max called on empty list")
    return max(items)


def _find(text: str, pattern: str) -> celtypes.StringType:
    match = compile_re2(str(pattern)).search(str(text))
    return celtypes.StringType(match.group(0) if match else "")


def _find_all(text: str, pattern: str, limit: int = -1) -> celtypes.ListType:
    found = [m.group(0) for m in compile_re2(str(pattern)).finditer(str(text))]
    if int(limit) >= 0:
        found = found[: int(limit)]
    return celtypes.ListType([celtypes.StringType(f) for f in found])


# ---------------------------------------------------------------------------------------------
# Quantities (k8s.io/apimachinery resource.Quantity), kept exact as decimals.


# Sums and differences stay exact (Go's inf.Dec is unbounded too).
_EXACT = Context(prec=100_000, Emax=10**15, Emin=-(10**15))


class Quantity:
    """A Kubernetes quantity (``500m``, ``1Gi``, ``1e3``) as CEL rules see it."""

    __slots__ = ("text", "value")

    def __init__(self, text: str, value: Decimal) -> None:
        self.text = text
        self.value = value

    @classmethod
    def parse(cls, text: str) -> Quantity:
        """Parse ``text``; ``ValueError`` with the API server's message if it is not a quantity."""
        return cls(str(text), parse_quantity(str(text)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quantity) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"Quantity({self.text!r})"


def _quantity_operand(value: Any) -> Decimal:
    if isinstance(value, Quantity):
        return value.value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(int(value))
    raise TypeError("no such overload")


def _quantity(text: str) -> Quantity:
    return Quantity.parse(text)


def _is_quantity(text: str) -> celtypes.BoolType:
    return celtypes.BoolType(is_quantity(str(text)))


def _sign(q: Quantity) -> celtypes.IntType:
    value = _quantity_operand(q)
    return celtypes.IntType((value > 0) - (value < 0))


def _is_integer(q: Quantity) -> celtypes.BoolType:
    value = _quantity_operand(q)
    return celtypes.BoolType(value == value.to_integral_value())


def _as_integer(q: Quantity) -> celtypes.IntType:
    value = _quantity_operand(q)
    if value != value.to_integral_value() or not -(2**63) <= value <= 2**63 - 1:
        raise ValueError("cannot convert value to integer")
    return celtypes.IntType(int(value))


def _as_approximate_float(q: Quantity) -> celtypes.DoubleType:
    return celtypes.DoubleType(float(_quantity_operand(q)))


def _add(q: Quantity, other: Any) -> Quantity:
    total = _EXACT.add(_quantity_operand(q), _quantity_operand(other))
    return Quantity(str(total), total)


def _sub(q: Quantity, other: Any) -> Quantity:
    difference = _EXACT.subtract(_quantity_operand(q), _quantity_operand(other))
    return Quantity(str(difference), difference)


def _compare_to(q: Quantity, other: Quantity) -> celtypes.IntType:
    a, b = _quantity_operand(q), _quantity_operand(other)
    return celtypes.IntType((a > b) - (a < b))


def _is_greater_than(q: Quantity, other: Quantity) -> celtypes.BoolType:
    return celtypes.BoolType(_quantity_operand(q) > _quantity_operand(other))


def _is_less_than(q: Quantity, other: Quantity) -> celtypes.BoolType:
    return celtypes.BoolType(_quantity_operand(q) < _quantity_operand(other))


class URL:
    """A Kubernetes CEL URL: an absolute URI or an absolute path (Go's ``url.ParseRequestURI``)."""

    __slots__ = ("parts",)

    def __init__(self, parts: urllib.parse.SplitResult) -> None:
        self.parts = parts

    @classmethod
    def parse(cls, text: str) -> URL:
        """Parse ``text``; ``ValueError`` if it is neither an absolute URI nor an absolute path."""
        if any(c.isspace() or ord(c) < 0x20 for c in text):
            raise ValueError(f"URL parse error during conversion from string: {text}")
        parts = urllib.parse.urlsplit(text)
        if parts.fragment or not (parts.scheme or text.startswith("/")):
            raise ValueError(f"URL parse error during conversion from string: {text}")
        return cls(parts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, URL) and self.parts == other.parts

    def __hash__(self) -> int:
        return hash(self.parts)


def _url(text: str) -> URL:
    return URL.parse(str(text))


def _is_url(text: str) -> celtypes.BoolType:
    try:
        URL.parse(str(text))
    except ValueError:
        return celtypes.BoolType(False)
    return celtypes.BoolType(True)


def _url_part(read: Callable[[urllib.parse.SplitResult], str | None]) -> Callable[..., Any]:
    def get(url: URL) -> celtypes.StringType:
        if not isinstance(url, URL):
            raise TypeError("no such overload")
        return celtypes.StringType(read(url.parts) or "")

    return get


def _url_query(url: URL) -> celtypes.MapType:
    if not isinstance(url, URL):
        raise TypeError("no such overload")
    query = urllib.parse.parse_qs(url.parts.query, keep_blank_values=True)
    return celtypes.MapType(
        {
            celtypes.StringType(k): celtypes.ListType([celtypes.StringType(v) for v in values])
            for k, values in query.items()
        }
    )


def _dyn(value: Any) -> Any:
    return value


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "lowerAscii": _lower_ascii,
    "upperAscii": _upper_ascii,
    "charAt": _char_at,
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "replace": _replace,
    "split": _split,
    "substring": _substring,
    "trim": _trim,
    "join": _join,
    "reverse": _reverse,
    "isSorted": _is_sorted,
    "sum": _sum,
    "min": _min,
    "max": _max,
    "find": _find,
    "findAll": _find_all,
    "quantity": _quantity,
    "isQuantity": _is_quantity,
    "sign": _sign,
    "isInteger": _is_integer,
    "asInteger": _as_integer,
    "asApproximateFloat": _as_approximate_float,
    "add": _add,
    "sub": _sub,
    "compareTo": _compare_to,
    "isGreaterThan": _is_greater_than,
    "isLessThan": _is_less_than,
    "url": _url,
    "isURL": _is_url,
    "getScheme": _url_part(lambda p: p.scheme),
    "getHost": _url_part(lambda p: p.netloc.rpartition("@")[2]),
    "getHostname": _url_part(lambda p: p.hostname),
    "getPort": _url_part(
        lambda p: p.netloc.rpartition("@")[2].rpartition("]")[2].partition(":")[2]
    ),
    "getEscapedPath": _url_part(lambda p: p.path),
    "getQuery": _url_query,
    "dyn": _dyn,
}
"""Kubernetes CEL library functions added to celpy's, by name (methods take the receiver
first)."""
