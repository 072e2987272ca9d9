"""Durations, in the two spellings Mirage's fields use: the one parser of the package.

- Go's ``time.ParseDuration`` (``1h30m``, ``1.5h``, ``500ms``, ``-2s``): what Kubernetes and
  Vault settings are written in, so what ``refreshInterval`` and the operator's settings take.
- Prometheus's ``model.ParseDuration`` (``5m``, ``1h30m``, ``30d``, ``1y``; whole numbers,
  units largest first, each at most once): what a PrometheusRule's ``for``, a ServiceMonitor's
  ``interval`` and a PromQL range take.

Each is a port of its original, with its limits (about 292 years) and its error messages
(docs/adr/0135).
"""

from __future__ import annotations

import re
from collections.abc import Callable

_NANOSECOND = 1
_MICROSECOND = 1000 * _NANOSECOND
_MILLISECOND = 1000 * _MICROSECOND
_SECOND = 1000 * _MILLISECOND
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_MAX = 1 << 63
_DIGITS = frozenset("0123456789")

_GO_UNITS = {"ns": _NANOSECOND, "us": _MICROSECOND, "µs": _MICROSECOND, "μs": _MICROSECOND}
_GO_UNITS |= {"ms": _MILLISECOND, "s": _SECOND, "m": _MINUTE, "h": _HOUR}
_PROMETHEUS_UNITS = {"y": 365 * _DAY, "w": 7 * _DAY, "d": _DAY, "h": _HOUR, "m": _MINUTE}
_PROMETHEUS_UNITS |= {"s": _SECOND, "ms": _MILLISECOND}
# Whole numbers, units largest first, each at most once.
_PROMETHEUS = re.compile("".join(f"(?:(?P<{u}>[0-9]+){u})?" for u in _PROMETHEUS_UNITS))


class DurationError(ValueError):
    """Not a duration of the spelling asked for."""


class DurationRangeError(DurationError):
    """A duration of more than about 292 years (2^63 nanoseconds)."""


def parse_go(text: str) -> float:
    """Seconds in Go duration ``text`` (``time.ParseDuration``)."""
    return _go_nanoseconds(text) / _SECOND


def parse_prometheus(text: str) -> float:
    """Seconds in Prometheus duration ``text`` (``model.ParseDuration`` of Prometheus 2.42)."""
    if text == "0":
        return 0.0
    if not text:
        raise DurationError("empty duration string")
    match = _PROMETHEUS.fullmatch(text)
    if match is None:
        raise DurationError(f"not a valid duration string: {_quote(text)}")
    total = 0
    for unit, count in match.groupdict().items():
        digits = (count or "").lstrip("0")
        if len(digits) > 19 or int(digits or 0) > (_MAX - 1) // _PROMETHEUS_UNITS[unit]:
            raise DurationRangeError("duration out of range")
        total += int(digits or 0) * _PROMETHEUS_UNITS[unit]
    if total > _MAX - 1:
        raise DurationRangeError("duration out of range")
    return total / _SECOND


def parse_interval(text: str) -> float:
    """Seconds in a refresh interval: a Go duration of whole seconds, not negative."""
    nanoseconds = _go_nanoseconds(text)
    if nanoseconds < 0 or nanoseconds % _SECOND:
        raise DurationError(f"expected whole seconds, not negative, got {_quote(text)}")
    return float(nanoseconds // _SECOND)


def format_interval(seconds: float) -> str:
    """Whole ``seconds`` as :func:`parse_interval` reads them back: ``1h30m``, ``45s``, ``0``."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "".join(parts) or "0"


def _go_nanoseconds(text: str) -> int:
    # Go's algorithm step by step: [-+]?([0-9]*(\.[0-9]*)?[a-z]+)+ in at most 2^63 ns.
    invalid = DurationError(f"time: invalid duration {_quote(text)}")
    rest, negative = text, text[:1] == "-"
    if text[:1] in ("-", "+"):
        rest = text[1:]
    if rest == "0":
        return 0
    if not rest:
        raise invalid
    total = 0
    while rest:
        if rest[0] != "." and rest[0] not in _DIGITS:
            raise invalid
        whole = _prefix(rest, lambda c: c in _DIGITS)
        rest = rest[len(whole) :]
        fraction = ""
        if rest[:1] == ".":
            fraction = _prefix(rest[1:], lambda c: c in _DIGITS)
            rest = rest[1 + len(fraction) :]
        if not whole and not fraction:
            raise invalid
        unit = _prefix(rest, lambda c: c != "." and c not in _DIGITS)
        rest = rest[len(unit) :]
        if not unit:
            raise DurationError(f"time: missing unit in duration {_quote(text)}")
        if unit not in _GO_UNITS:
            raise DurationError(f"time: unknown unit {_quote(unit)} in duration {_quote(text)}")
        scale = _GO_UNITS[unit]
        value = int(whole[-20:] or 0)
        if value > _MAX // scale or whole[:-20].strip("0"):
            raise invalid
        total += value * scale + _go_fraction(fraction, scale)
        if total > _MAX:
            raise invalid
    if not negative and total > _MAX - 1:
        raise invalid
    return -total if negative else total


def _go_fraction(digits: str, unit: int) -> int:
    # Go's leadingFraction: digits past what an int64 holds are dropped, and the sum is a
    # float64 (exact to the nanosecond for fractions of an hour).
    numerator, scale, overflow = 0, 1.0, False
    for digit in digits:
        if overflow or numerator > (_MAX - 1) // 10 or numerator * 10 + int(digit) > _MAX:
            overflow = True
            continue
        numerator, scale = numerator * 10 + int(digit), scale * 10
    return int(float(numerator) * (float(unit) / scale))


def _prefix(text: str, allowed: Callable[[str], bool]) -> str:
    end = 0
    while end < len(text) and allowed(text[end]):
        end += 1
    return text[:end]


def _quote(text: str) -> str:
    # Go's %q for the text people write (printable, no quotes or backslashes to escape).
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
