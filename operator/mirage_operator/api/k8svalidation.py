"""Kubernetes' own rules for names, keys and values, ported from the API server.

Source: ``k8s.io/apimachinery/pkg/util/validation/validation.go`` (``Is*`` functions, their
messages word for word), ``k8s.io/apimachinery/pkg/api/validation/objectmeta.go`` (label and
annotation maps) and ``k8s.io/kubernetes/pkg/apis/apps/validation`` (int-or-percent fields of
Deployments and PodDisruptionBudgets). Each ``is_*`` returns the reasons a value is refused
(empty when valid), as Go does. Patterns are matched with :func:`re.fullmatch` and ASCII
classes, so that a value ending in a newline is refused as by Go's ``regexp``.

Mirage refuses, before anything is applied, every user value that would make the API server
refuse a child object; names the operator derives itself go through :func:`shorten` instead.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mirage_operator.errors import Problem

DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
DNS1035_LABEL_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63
QUALIFIED_NAME_MAX_LENGTH = 63
CONFIG_MAP_KEY_MAX_LENGTH = 253
PORT_NAME_MAX_LENGTH = 15
TOTAL_ANNOTATION_SIZE_LIMIT_B = 256 * (1 << 10)
MAX_DATA_SIZE = 1 << 20
"""``MaxSecretSize``: the data of a ConfigMap or Secret, keys and values together."""

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QNAME_CHAR_FMT = "[A-Za-z0-9]"
_QNAME_EXT_CHAR_FMT = "[-A-Za-z0-9_.]"
_QUALIFIED_NAME_FMT = "(" + _QNAME_CHAR_FMT + _QNAME_EXT_CHAR_FMT + "*)?" + _QNAME_CHAR_FMT
_LABEL_VALUE_FMT = "(" + _QUALIFIED_NAME_FMT + ")?"
_CONFIG_MAP_KEY_FMT = "[-._a-zA-Z0-9]+"
_ENV_VAR_NAME_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*"
_PERCENT_FMT = "[0-9]+%"


def _compile(fmt: str) -> re.Pattern[str]:
    return re.compile(fmt, re.ASCII)


_DNS1123_LABEL = _compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN = _compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL = _compile(_DNS1035_LABEL_FMT)
_QUALIFIED_NAME = _compile(_QUALIFIED_NAME_FMT)
_LABEL_VALUE = _compile(_LABEL_VALUE_FMT)
_CONFIG_MAP_KEY = _compile(_CONFIG_MAP_KEY_FMT)
_ENV_VAR_NAME = _compile(_ENV_VAR_NAME_FMT)
_PERCENT = _compile(_PERCENT_FMT)
_PORT_NAME_CHARSET = _compile("[-a-z0-9]+")


def empty_error() -> str:
    """``validation.EmptyError``."""
    return "must be non-empty"


def max_len_error(length: int) -> str:
    """``validation.MaxLenError``."""
    return f"must be no more than {length} characters"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """``validation.RegexError``: the message, examples and the regular expression."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    listed = " or ".join(f"'{example}', " for example in examples)
    return f"{msg} (e.g. {listed}regex used for validation is '{fmt}')"


@dataclass(frozen=True)
class _Bounded:
    """A name rule of Go's ``validation`` package: a length limit (0: none) and a pattern,
    each error reported as Go reports it; ``chdir`` adds ``hasChDirPrefix``."""

    max_length: int
    pattern: re.Pattern[str]
    message: str
    examples: tuple[str, ...]
    chdir: bool = False

    def __call__(self, value: str) -> list[str]:
        errors = []
        if self.max_length and len(value) > self.max_length:
            errors.append(max_len_error(self.max_length))
        if not self.pattern.fullmatch(value):
            errors.append(regex_error(self.message, self.pattern.pattern, *self.examples))
        return errors + (_chdir_prefix(value) if self.chdir else [])


is_dns1123_label = _Bounded(
    DNS1123_LABEL_MAX_LENGTH,
    _DNS1123_LABEL,
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character",
    ("my-name", "123-abc"),
)
"""``IsDNS1123Label``: names of namespaces, most label-named objects, volumes."""

is_dns1123_subdomain = _Bounded(
    DNS1123_SUBDOMAIN_MAX_LENGTH,
    _DNS1123_SUBDOMAIN,
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character",
    ("example.com",),
)
"""``IsDNS1123Subdomain``: names of most objects (Deployment, ConfigMap, Secret, ...)."""

is_dns1035_label = _Bounded(
    DNS1035_LABEL_MAX_LENGTH,
    _DNS1035_LABEL,
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
    "with an alphabetic character, and end with an alphanumeric character",
    ("my-name", "abc-123"),
)
"""``IsDNS1035Label``: names of Services."""


_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)


def is_qualified_name(value: str) -> list[str]:
    """``IsQualifiedName``: label and annotation keys, ``[prefix/]name`` (prefix a DNS
    subdomain, name at most 63 characters)."""
    parts = value.split("/")
    errors: list[str] = []
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append("prefix part " + empty_error())
        else:
            errors += ["prefix part " + msg for msg in is_dns1123_subdomain(prefix)]
    else:
        return [
            "a qualified name "
            + regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errors.append("name part " + empty_error())
    elif len(name) > QUALIFIED_NAME_MAX_LENGTH:
        errors.append("name part " + max_len_error(QUALIFIED_NAME_MAX_LENGTH))
    if not _QUALIFIED_NAME.fullmatch(name):
        errors.append(
            "name part "
            + regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errors


is_valid_label_value = _Bounded(
    LABEL_VALUE_MAX_LENGTH,
    _LABEL_VALUE,
    "a valid label must be an empty string or consist of alphanumeric characters, '-', "
    "'_' or '.', and must start and end with an alphanumeric character",
    ("MyValue", "my_value", "12345"),
)
"""``IsValidLabelValue``: empty, or at most 63 alphanumerics, '-', '_', '.' inside."""


def _chdir_prefix(value: str) -> list[str]:
    """``hasChDirPrefix``: names that would be read as a directory change."""
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


is_config_map_key = _Bounded(
    CONFIG_MAP_KEY_MAX_LENGTH,
    _CONFIG_MAP_KEY,
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
    ("key.name", "KEY_NAME", "key-name"),
    chdir=True,
)
"""``IsConfigMapKey``: keys of ConfigMap and Secret data."""

is_env_var_name = _Bounded(
    0,
    _ENV_VAR_NAME,
    "a valid environment variable name must consist of alphabetic characters, digits, "
    "'_', '-', or '.', and must not start with a digit",
    ("my.env-name", "MY_ENV.NAME", "MyEnvName1"),
    chdir=True,
)
"""``IsEnvVarName``: names of container environment variables (no length limit)."""


def is_valid_port_name(value: str) -> list[str]:
    """``IsValidPortName``: an IANA_SVC_NAME (RFC 6335), names of container and Service ports."""
    errors = []
    if len(value) > PORT_NAME_MAX_LENGTH:
        errors.append(max_len_error(PORT_NAME_MAX_LENGTH))
    if not _PORT_NAME_CHARSET.fullmatch(value):
        errors.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    elif not re.search("[a-z]", value):
        errors.append("must contain at least one letter (a-z)")
    if "--" in value:
        errors.append("must not contain consecutive hyphens")
    if value and (value[0] == "-" or value[-1] == "-"):
        errors.append("must not begin or end with a hyphen")
    return errors


def is_valid_percent(value: str) -> list[str]:
    """``IsValidPercent``: the string form of an int-or-percent field."""
    if _PERCENT.fullmatch(value):
        return []
    return [
        regex_error(
            "a valid percent string must be a numeric string followed by an ending '%'",
            _PERCENT_FMT,
            "1%",
            "93%",
        )
    ]


def is_not_ip(host: str) -> list[str]:
    """The Ingress rule host check: a DNS name, not an IP address (``ParseIPSloppy``)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return []
    return ["must be a DNS name, not an IP address"]


# --- field checks returning Problems ---------------------------------------------------------


def _quote(value: Any) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def invalid(field: str, value: Any, reasons: list[str]) -> list[Problem]:
    """One ``Invalid value`` problem per reason, as ``field.Invalid`` words it."""
    return [Problem(field, f"Invalid value: {_quote(value)}: {reason}") for reason in reasons]


def label_problems(labels: Mapping[str, Any], *, field: str) -> list[Problem]:
    """``ValidateLabels``: qualified-name keys and valid label values."""
    problems = []
    for key, value in labels.items():
        problems += invalid(field, key, is_qualified_name(str(key)))
        problems += invalid(field, value, is_valid_label_value(str(value)))
    return problems


def annotation_problems(annotations: Mapping[str, Any], *, field: str) -> list[Problem]:
    """``ValidateAnnotations``: qualified-name keys (case-insensitively) and 256 KiB in all."""
    problems = []
    total = 0
    for key, value in annotations.items():
        problems += invalid(field, key, is_qualified_name(str(key).lower()))
        total += len(str(key)) + len(str(value))
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_B:
        problems.append(
            Problem(field, f"Too long: must have at most {TOTAL_ANNOTATION_SIZE_LIMIT_B} bytes")
        )
    return problems


def data_size_problems(data: Mapping[str, str], *, field: str) -> list[Problem]:
    """``ValidateConfigMap``/``ValidateSecret``: at most 1 MiB of keys and values."""
    total = sum(len(key) + len(value) for key, value in data.items())
    if total > MAX_DATA_SIZE:
        return [Problem(field, f"Too long: must have at most {MAX_DATA_SIZE} bytes")]
    return []


def int_or_percent_value(value: int | str) -> int:
    """``getIntOrPercentValue``: the number of an int or a percent string (0 if unparsable)."""
    if isinstance(value, int):
        return value
    try:
        return int(value.removesuffix("%"))
    except ValueError:
        return 0


def int_or_percent_problems(
    value: int | str | None, *, field: str, at_most_100_percent: bool = False
) -> list[Problem]:
    """``ValidatePositiveIntOrPercent`` (and ``IsNotMoreThan100Percent`` when asked)."""
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, int | str):
        return invalid(field, value, ["must be an integer or a percentage"])
    if isinstance(value, str):
        problems = invalid(field, value, is_valid_percent(value))
        if not problems and at_most_100_percent and int_or_percent_value(value) > 100:
            problems = invalid(field, value, ["must not be greater than 100%"])
        return problems
    if value < 0:
        return invalid(field, value, ["must be greater than or equal to 0"])
    return []


def rolling_update_problems(
    max_surge: int | str | None, max_unavailable: int | str | None, *, field: str
) -> list[Problem]:
    """``ValidateRollingUpdateDeployment``: both non-negative, maxUnavailable at most 100%,
    not both 0. ``None`` is a field left unset (it takes a non-zero value)."""
    problems = int_or_percent_problems(
        max_unavailable, field=f"{field}.maxUnavailable", at_most_100_percent=True
    )
    problems += int_or_percent_problems(max_surge, field=f"{field}.maxSurge")
    if (
        max_surge is not None
        and max_unavailable is not None
        and int_or_percent_value(max_surge) == 0
        and int_or_percent_value(max_unavailable) == 0
    ):
        problems += invalid(
            f"{field}.maxUnavailable", max_unavailable, ["may not be 0 when `maxSurge` is 0"]
        )
    return problems


def name_problems(value: str, *, field: str, rule: str) -> list[Problem]:
    """Problems of ``value`` under the name rule ``rule`` (a key of :data:`NAME_RULES`)."""
    return invalid(field, value, NAME_RULES[rule](value))


NAME_RULES: dict[str, Callable[[str], list[str]]] = {
    "dns1123-label": is_dns1123_label,
    "dns1123-subdomain": is_dns1123_subdomain,
    "dns1035-label": is_dns1035_label,
    "qualified-name": is_qualified_name,
    "label-value": is_valid_label_value,
    "config-map-key": is_config_map_key,
    "env-var-name": is_env_var_name,
    "port-name": is_valid_port_name,
}
"""Every name rule by a short name, for callers that choose the rule by data."""


# --- names the operator derives --------------------------------------------------------------

_HASH_LENGTH = 10


def shorten(name: str, *, limit: int) -> str:
    """``name`` itself when it has at most ``limit`` characters; otherwise a prefix of it, ``-``
    and 10 hex digits of its SHA-256, ``limit`` characters at most.

    Deterministic (the same name always gives the same result) and unique in practice (two
    names share a result only if their hashes collide). The prefix loses trailing ``-``, ``.``
    and ``_`` so that a DNS label, subdomain or label value stays valid.
    """
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_HASH_LENGTH]
    prefix = name[: max(limit - _HASH_LENGTH - 1, 0)].rstrip("-._")
    return f"{prefix}-{digest}" if prefix else digest[:limit]


def subdomain_name(name: str) -> str:
    """``name`` shortened to a DNS-1123 subdomain's 253 characters (derived object names)."""
    return shorten(name, limit=DNS1123_SUBDOMAIN_MAX_LENGTH)


def label_value(value: str) -> str:
    """``value`` shortened to a label value's 63 characters (derived label values)."""
    return shorten(value, limit=LABEL_VALUE_MAX_LENGTH)
