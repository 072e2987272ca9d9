"""Kubernetes resource quantities (``500m``, ``1Gi``, ``1e3``): the one parser of the package.

A port of ``resource.ParseQuantity`` (k8s.io/apimachinery): the same grammar, quirks included
(``1.`` and a lone ``-`` are quantities), the same error messages, and the same value: rounded
up to whole nano-units, binary-suffixed values capped at the largest int64 (docs/adr/0135).
Values are :class:`~decimal.Decimal`: exact, and ``1e999999`` costs no more than ``1``.
"""

from __future__ import annotations

from decimal import ROUND_UP, Context, Decimal

FORMAT_ERROR = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
"""``resource.ErrFormatWrong``, word for word."""
SUFFIX_ERROR = "unable to parse quantity's suffix"
"""``resource.ErrSuffix``, word for word."""

_DIGITS = frozenset("0123456789")
_SUFFIX_LETTERS = frozenset("eEinumkKMGTP")
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12}
_DECIMAL_SUFFIXES |= {"P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_INT32 = 2**31
_MAX_INT64 = Decimal(2**63 - 1)
_NANO = Decimal("1e-9")
# Exact for any quantity a person writes (the exponent alone can be huge: it costs nothing).
_WIDE = Context(prec=10_000, Emax=10**15, Emin=-(10**15))


class QuantityError(ValueError):
    """Not a quantity; the message is the API server's."""


def parse_quantity(text: str) -> Decimal:
    """The value of quantity ``text``; :class:`QuantityError` when it is none."""
    if not text:
        raise QuantityError(FORMAT_ERROR)
    negative, number, suffix = _split(text)
    if suffix in _DECIMAL_SUFFIXES:
        value = number.scaleb(_DECIMAL_SUFFIXES[suffix], _WIDE)
    elif suffix in _BINARY_SUFFIXES:
        value = min(_WIDE.multiply(number, 2 ** _BINARY_SUFFIXES[suffix]), _MAX_INT64)
    elif len(suffix) > 1 and suffix[0] in "eE" and _is_int64(suffix[1:]):
        # Go reads the exponent as an int64 and keeps its low 32 bits: 1e4294967296 is 1.
        value = number.scaleb((int(suffix[1:]) + _INT32) % (2 * _INT32) - _INT32, _WIDE)
    else:
        raise QuantityError(SUFFIX_ERROR)
    # Go rounds any non-zero amount up to the nano-unit: asking for a little gets a little.
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -9:
        value = value.quantize(_NANO, rounding=ROUND_UP, context=_WIDE)
    return value.copy_negate() if negative else value


def is_quantity(text: str) -> bool:
    """Whether ``text`` is a quantity."""
    try:
        parse_quantity(text)
    except QuantityError:
        return False
    return True


def _split(text: str) -> tuple[bool, Decimal, str]:
    """Sign, unsigned number and suffix, as Go's ``parseQuantityString`` reads them."""
    pos, end = 0, len(text)
    negative = text[0] == "-"
    if text[0] in "+-":
        pos = 1
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    whole = text[start:pos]
    fraction = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        fraction = text[start:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_LETTERS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise QuantityError(FORMAT_ERROR)
    # An empty whole part or fraction reads as zero (``.5``, ``1.``, even ``-``).
    return negative, Decimal(f"{whole or 0}.{fraction or 0}"), text[suffix_start:]


def _is_int64(text: str) -> bool:
    # strconv.ParseInt(text, 10, 64): an optional sign, then decimal digits only.
    digits = text[1:] if text[:1] in "+-" else text
    return (
        bool(digits)
        and set(digits) <= _DIGITS
        and len(digits.lstrip("0")) <= 19
        and -(2**63) <= int(text) < 2**63
    )
