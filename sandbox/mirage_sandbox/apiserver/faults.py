"""Fault injection for tests: failing calls, dropped and stalled watches, expired versions.

Rules are matched against each request before it is served: ``fail("patch", "deployments",
code=409, times=2)`` makes the next two PATCHes of deployments answer a 409 ``Status``
exactly as the real server words it. Watch faults act on the open streams.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from mirage_sandbox.errors import EmulatedAPIError

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


@dataclass
class FailureRule:
    """Fail the next ``remaining`` requests matching verb/resource/namespace/name."""

    verb: str
    resource: str | None
    namespace: str | None
    name: str | None
    code: int
    remaining: int
    retry_after: int
    subresource: str | None = None
    hits: int = 0

    def matches(
        self, verb: str, resource: str, namespace: str | None, name: str | None, subresource: str
    ) -> bool:
        """Whether a request is subject to this rule."""
        return (
            self.remaining > 0
            and self.verb in {verb, "*"}
            and self.resource in {None, "*", resource}
            and (self.namespace is None or self.namespace == namespace)
            and (self.name is None or self.name == name)
            and (self.subresource is None or self.subresource == subresource)
        )


def error_for(code: int, *, resource: str, name: str | None, retry_after: int) -> EmulatedAPIError:
    """The ``Status`` a real server would answer with this code."""
    details = {"name": name or "", "kind": resource}
    if code == 409:
        return EmulatedAPIError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {resource} "{name or ""}": the object has been '
            "modified; please apply your changes to the latest version and try again",
            details=details,
        )
    if code == 429:
        return EmulatedAPIError(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
            details={**details, "retryAfterSeconds": retry_after},
            headers={"Retry-After": str(retry_after)},
        )
    if code == 503:
        return EmulatedAPIError(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
            details={**details, "retryAfterSeconds": retry_after},
            headers={"Retry-After": str(retry_after)},
        )
    if code == 500:
        return EmulatedAPIError(
            500, "InternalError", "Internal error occurred: injected fault", details=details
        )
    return EmulatedAPIError(code, "Unknown", f"injected fault {code}", details=details)


class Faults:
    """The injected failures of one server (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rules: list[FailureRule] = []

    def fail(
        self,
        verb: str,
        resource: str | None = None,
        *,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
        code: int = 500,
        times: int = 1,
        retry_after: int = 1,
    ) -> FailureRule:
        """Fail the next ``times`` calls of ``verb`` (``*`` for any) on ``resource`` (plural;
        ``None`` for any) with ``code`` (409, 429, 500, 503...). Returns the rule (its
        ``hits`` count how many requests it failed)."""
        if verb not in VERBS and verb != "*":
            raise ValueError(f"unknown verb {verb!r}; expected one of {', '.join(VERBS)}")
        rule = FailureRule(verb, resource, namespace, name, code, times, retry_after, subresource)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Forget every rule."""
        with self._lock:
            self.rules.clear()

    def check(
        self, verb: str, resource: str, namespace: str | None, name: str | None, subresource: str
    ) -> EmulatedAPIError | None:
        """The error to answer this request with, consuming one use of the matching rule."""
        with self._lock:
            for rule in self.rules:
                if rule.matches(verb, resource, namespace, name, subresource):
                    rule.remaining -= 1
                    rule.hits += 1
                    return error_for(
                        rule.code, resource=resource, name=name, retry_after=rule.retry_after
                    )
        return None

    @property
    def pending(self) -> int:
        """Failures still to be served."""
        with self._lock:
            return sum(r.remaining for r in self.rules)
