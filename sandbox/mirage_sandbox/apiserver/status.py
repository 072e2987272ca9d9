"""``Status`` answers of the emulated API server, worded like kube-apiserver's.

Each helper returns an :class:`~mirage_sandbox.errors.EmulatedAPIError` to raise; the HTTP
layer turns it into a ``Status`` object with the same ``reason``, ``code`` and ``details`` the
real server sends (``k8s.io/apimachinery/pkg/api/errors``).
"""

from __future__ import annotations

from typing import Any

from mirage_operator.errors import Problem
from mirage_sandbox.apiserver.resources import ResourceType
from mirage_sandbox.errors import EmulatedAPIError


def status_body(error: EmulatedAPIError) -> dict[str, Any]:
    """The ``Status`` object of ``error``."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": error.message,
        "reason": error.reason,
        "code": error.code,
    }
    if error.details:
        body["details"] = error.details
    return body


def success_status(rt: ResourceType, name: str, uid: str | None = None) -> dict[str, Any]:
    """The ``Status`` answered by a delete that returns no object."""
    details: dict[str, Any] = {"name": name, "group": rt.group, "kind": rt.plural}
    if uid:
        details["uid"] = uid
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


def _details(rt: ResourceType, name: str, kind: str | None = None) -> dict[str, Any]:
    return {"name": name, "group": rt.group, "kind": kind or rt.plural}


def not_found(rt: ResourceType, name: str) -> EmulatedAPIError:
    """404 for a missing object."""
    return EmulatedAPIError(
        404, "NotFound", f'{rt.qualified} "{name}" not found', details=_details(rt, name)
    )


def already_exists(rt: ResourceType, name: str) -> EmulatedAPIError:
    """409 for a create whose name is taken."""
    return EmulatedAPIError(
        409, "AlreadyExists", f'{rt.qualified} "{name}" already exists', details=_details(rt, name)
    )


def conflict(rt: ResourceType, name: str, why: str) -> EmulatedAPIError:
    """409 Conflict: ``Operation cannot be fulfilled on <resource> "<name>": <why>``."""
    return EmulatedAPIError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rt.qualified} "{name}": {why}',
        details=_details(rt, name),
    )


STALE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def stale(rt: ResourceType, name: str) -> EmulatedAPIError:
    """409 for a write whose ``metadata.resourceVersion`` is not the current one."""
    return conflict(rt, name, STALE)


_CAUSE_TYPES = {
    "Invalid value": "FieldValueInvalid",
    "Required value": "FieldValueRequired",
    "Unsupported value": "FieldValueNotSupported",
    "Duplicate value": "FieldValueDuplicate",
    "Forbidden": "FieldValueForbidden",
    "Too long": "FieldValueTooLong",
    "Too many": "FieldValueTooMany",
    "Not found": "FieldValueNotFound",
}


def cause_type(reason: str) -> str:
    """The ``CauseType`` of a field error from its wording (``Required value`` ...)."""
    for prefix, kind in _CAUSE_TYPES.items():
        if reason.startswith(prefix):
            return kind
    return "FieldValueInvalid"


def invalid(rt: ResourceType, name: str, problems: list[Problem]) -> EmulatedAPIError:
    """422 Invalid naming every problem: ``Kind.group "name" is invalid: <field>: <reason>``."""
    rendered = [f"{p.field}: {p.reason}" if p.field else p.reason for p in problems]
    joined = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    causes = [
        {"reason": cause_type(p.reason), "message": p.reason, "field": p.field} for p in problems
    ]
    return EmulatedAPIError(
        422,
        "Invalid",
        f'{rt.qualified_kind} "{name}" is invalid: {joined}',
        details={**_details(rt, name, rt.kind), "causes": causes},
    )


def bad_request(message: str, details: dict[str, Any] | None = None) -> EmulatedAPIError:
    """400 BadRequest."""
    return EmulatedAPIError(400, "BadRequest", message, details=details)


def forbidden(rt: ResourceType, name: str, why: str) -> EmulatedAPIError:
    """403 Forbidden: ``<resource> "<name>" is forbidden: <why>``."""
    return EmulatedAPIError(
        403, "Forbidden", f'{rt.qualified} "{name}" is forbidden: {why}', details=_details(rt, name)
    )


def method_not_allowed(what: str) -> EmulatedAPIError:
    """405 for a verb a resource does not support."""
    return EmulatedAPIError(
        405,
        "MethodNotAllowed",
        f"the server does not allow this method on the requested resource{what}",
    )


def unsupported_media_type(content_type: str) -> EmulatedAPIError:
    """415 for a patch type the resource does not accept."""
    return EmulatedAPIError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"application/json-patch+json, application/merge-patch+json, "
        f"application/apply-patch+yaml (got {content_type!r})",
    )


def gone(message: str) -> EmulatedAPIError:
    """410 Gone / Expired for a resourceVersion outside the history window."""
    return EmulatedAPIError(410, "Expired", message)


def not_found_path(path: str) -> EmulatedAPIError:
    """404 for a URL that names no resource (what the real server says for unknown paths)."""
    return EmulatedAPIError(
        404,
        "NotFound",
        "the server could not find the requested resource",
        details={
            "causes": [
                {"reason": "UnexpectedServerResponse", "message": f"404 page not found: {path}"}
            ]
        },
    )
