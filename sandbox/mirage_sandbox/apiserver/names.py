"""Kubernetes' name rules, as ``k8s.io/apimachinery/pkg/util/validation`` states them: each
function returns the messages the real server gives (empty when the value is valid).

The emulated API server is the referee of the objects the operator writes, so these are
written from apimachinery, independently of the operator's own checks.
"""

from __future__ import annotations

import re

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63
CONFIG_KEY_MAX = 253
PORT_NAME_MAX = 15

_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + "(\\." + _DNS1123_LABEL + ")*"
_DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = "(" + _QUALIFIED_NAME + ")?"
_CONFIG_KEY = "[-._a-zA-Z0-9]+"


def _full(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value) is not None


def _too_long(limit: int) -> str:
    return f"must be no more than {limit} characters"


def _regex_error(what: str, pattern: str, *examples: str) -> str:
    shown = ",  or ".join(f"'{e}'" for e in examples)
    return f"{what} (e.g. {shown}, regex used for validation is '{pattern}')"


DNS1123_LABEL_ERROR = _regex_error(
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character",
    _DNS1123_LABEL,
    "my-name",
    "123-abc",
)
DNS1123_SUBDOMAIN_ERROR = _regex_error(
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character",
    _DNS1123_SUBDOMAIN,
    "example.com",
)
DNS1035_LABEL_ERROR = _regex_error(
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character",
    _DNS1035_LABEL,
    "my-name",
    "abc-123",
)
_QUALIFIED_NAME_ERROR = _regex_error(
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character",
    _QUALIFIED_NAME,
    "MyName",
    "my.name",
    "123-abc",
)
_LABEL_VALUE_ERROR = _regex_error(
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character",
    _LABEL_VALUE,
    "MyValue",
    "my_value",
    "12345",
)
_CONFIG_KEY_ERROR = _regex_error(
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
    _CONFIG_KEY,
    "key.name",
    "KEY_NAME",
    "key-name",
)


def dns1123_label(value: str) -> list[str]:
    """IsDNS1123Label: Namespace names, container names, Service port names."""
    errors = [_too_long(DNS1123_LABEL_MAX)] if len(value) > DNS1123_LABEL_MAX else []
    if not _full(_DNS1123_LABEL, value):
        errors.append(DNS1123_LABEL_ERROR)
    return errors


def dns1123_subdomain(value: str) -> list[str]:
    """IsDNS1123Subdomain: the names of most kinds (Secret, ConfigMap, Deployment...)."""
    errors = [_too_long(DNS1123_SUBDOMAIN_MAX)] if len(value) > DNS1123_SUBDOMAIN_MAX else []
    if not _full(_DNS1123_SUBDOMAIN, value):
        errors.append(DNS1123_SUBDOMAIN_ERROR)
    return errors


def dns1035_label(value: str) -> list[str]:
    """IsDNS1035Label: Service names (they become DNS names and must start with a letter)."""
    errors = [_too_long(DNS1123_LABEL_MAX)] if len(value) > DNS1123_LABEL_MAX else []
    if not _full(_DNS1035_LABEL, value):
        errors.append(DNS1035_LABEL_ERROR)
    return errors


def qualified_name(value: str) -> list[str]:
    """IsQualifiedName: label keys and annotation keys (``[prefix/]name``)."""
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return ["prefix part must be non-empty"]
        errors = dns1123_subdomain(prefix)
        if errors:
            return [f"prefix part {e}" for e in errors]
    else:
        return [
            "a qualified name "
            + _QUALIFIED_NAME_ERROR
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        return ["name part must be non-empty"]
    errors = (
        [f"name part {_too_long(QUALIFIED_NAME_MAX)}"] if len(name) > QUALIFIED_NAME_MAX else []
    )
    if not _full(_QUALIFIED_NAME, name):
        errors.append("name part " + _QUALIFIED_NAME_ERROR)
    return errors


def label_value(value: str) -> list[str]:
    """IsValidLabelValue."""
    errors = [_too_long(LABEL_VALUE_MAX)] if len(value) > LABEL_VALUE_MAX else []
    if not _full(_LABEL_VALUE, value):
        errors.append(_LABEL_VALUE_ERROR)
    return errors


def config_key(value: str) -> list[str]:
    """IsConfigMapKey: the keys of Secret and ConfigMap data."""
    errors = [_too_long(CONFIG_KEY_MAX)] if len(value) > CONFIG_KEY_MAX else []
    if not _full(_CONFIG_KEY, value):
        errors.append(_CONFIG_KEY_ERROR)
    if value == ".":
        errors.append("must not be '.'")
    elif value == "..":
        errors.append("must not be '..'")
    elif value.startswith(".."):
        errors.append("must not start with '..'")
    return errors


def port_name(value: str) -> list[str]:
    """IsValidPortName (IANA_SVC_NAME): container port names."""
    errors = []
    if len(value) > PORT_NAME_MAX:
        errors.append(_too_long(PORT_NAME_MAX))
    if not _full("[-a-z0-9]+", value):
        errors.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", value):
        errors.append("must contain at least one letter (a-z)")
    if "--" in value:
        errors.append("must not contain consecutive hyphens")
    if value.startswith("-") or value.endswith("-"):
        errors.append("must not begin or end with a hyphen")
    return errors
