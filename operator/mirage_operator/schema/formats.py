"""String formats the apiserver checks (its ``strfmt`` registry), implemented loosely.

Unknown formats are ignored, as in Kubernetes. ``int32``/``int64`` on integers are checked for
range too: the apiserver does not, but a value outside them can never reach a Go ``int32``
field of the operator's models, so ``mirage validate`` reports it early.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable

from mirage_operator.durations import DurationError, parse_go

_DATE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])\Z")
_DATE_TIME = re.compile(
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt ]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)"
    r"(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):?[0-5]\d)?\Z"
)
# go-openapi's "3 days"-style spelling, besides Go's own.
_WORD_DURATION = re.compile(
    r"^\d+\s*(ns|us|µs|ms|s|m|h|d|w|sec|secs|second|seconds|min|mins|minute|minutes|hr|hrs|hour"
    r"|hours|day|days|wk|wks|week|weeks)\Z"
)
_HOSTNAME = re.compile(
    r"^(?=.{1,255}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?\Z"
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\Z")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S*\Z|^/\S*\Z")
_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?([0-9a-fA-F])[0-9a-fA-F]{3}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\Z"
)
_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}\Z")
_HEXCOLOR = re.compile(r"^#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})\Z")
_BSON_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}\Z")

INT_RANGES: dict[str, tuple[int, int]] = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
}


def _byte(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _ip(version: int) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        try:
            return ipaddress.ip_address(value).version == version
        except ValueError:
            return False

    return check


def _cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return "/" in value


def _duration(value: str) -> bool:
    try:
        parse_go(value)
    except DurationError:
        return bool(_WORD_DURATION.match(value))
    return True


def _uuid(version: str | None) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        match = _UUID.match(value)
        return match is not None and (version is None or match[1] == version)

    return check


def _regex(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    return lambda value: bool(pattern.match(value))


STRING_FORMATS: dict[str, Callable[[str], bool]] = {
    "byte": _byte,
    "date": _regex(_DATE),
    "date-time": _regex(_DATE_TIME),
    "datetime": _regex(_DATE_TIME),
    "duration": _duration,
    "ipv4": _ip(4),
    "ipv6": _ip(6),
    "cidr": _cidr,
    "hostname": _regex(_HOSTNAME),
    "email": _regex(_EMAIL),
    "uri": _regex(_URI),
    "uuid": _uuid(None),
    "uuid3": _uuid("3"),
    "uuid4": _uuid("4"),
    "uuid5": _uuid("5"),
    "mac": _regex(_MAC),
    "hexcolor": _regex(_HEXCOLOR),
    "bsonobjectid": _regex(_BSON_OBJECT_ID),
    "password": lambda _value: True,
}
"""Format name to checker; formats not listed here are not checked."""


def string_format_ok(fmt: str, value: str) -> bool:
    """Whether ``value`` satisfies string format ``fmt`` (unknown formats always do)."""
    check = STRING_FORMATS.get(fmt)
    return check is None or check(value)


def int_format_ok(fmt: str, value: int) -> bool:
    """Whether integer ``value`` fits format ``fmt`` (``int32``/``int64``; others pass)."""
    bounds = INT_RANGES.get(fmt)
    return bounds is None or bounds[0] <= value <= bounds[1]
