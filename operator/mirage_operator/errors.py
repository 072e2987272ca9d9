"""The operator's own exceptions, in one place.

Handlers translate these into kopf's retry semantics: an :class:`InvalidSpecError` becomes a
``kopf.PermanentError`` (with a ``Ready=False/InvalidSpec`` condition), a
:class:`TransientError` a ``kopf.TemporaryError`` with its delay.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


class MirageError(Exception):
    """Base class of every error the operator raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One reason a custom resource is invalid: the field's path and why."""

    field: str
    """Dotted path of the offending field, e.g. ``spec.ports[1].name``."""
    reason: str
    """Human-readable reason, e.g. ``duplicate port name "http"``."""

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class InvalidSpecError(MirageError):
    """The custom resource cannot be reconciled as written; retrying will not help."""

    reason = "InvalidSpec"
    """The reason of the ``Ready=False`` condition that reports it."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class ChildNameConflictError(InvalidSpecError):
    """A child's name is taken by an object that another owner controls (two resources derive
    the same name). The operator writes none of the conflicting children and names the other
    owner; it tries again at each resync, so deleting or renaming either resource heals it."""

    reason = "ChildNameConflict"


class ConfigError(MirageError):
    """A ``MIRAGE_*`` environment variable is malformed."""


class StartupError(MirageError):
    """A server or the operator could not start; the message is the cause, in one line."""

    @classmethod
    def listening(cls, what: str, host: str, port: int, error: OSError) -> StartupError:
        """``what`` could not listen on ``host:port`` (busy, not an address here, ...)."""
        reason = os.strerror(error.errno) if error.errno else str(error)
        return cls(f"{what}: cannot listen on {host}:{port}: {reason}")


class TransientError(MirageError):
    """A failure that should heal by itself (API server or Vault unavailable, conflicts)."""

    def __init__(self, message: str, *, delay: float = 5.0) -> None:
        self.delay = delay
        super().__init__(message)


PERMANENT_API_STATUSES = frozenset({400, 413, 415, 422})
"""HTTP statuses that say the request itself is wrong: sending it again cannot succeed until
what the operator sends changes (a new generation of the spec). ``403`` (RBAC can be fixed)
and ``404`` (a CRD can be installed) heal without a spec change and are retried slowly."""


class KubernetesAPIError(TransientError):
    """The Kubernetes API answered with an error status.

    ``reason`` is the ``Status`` reason (``Invalid``, ``Forbidden``, ``Conflict``...; the
    condition reason is ``KubernetesAPI<reason>``), ``causes`` the ``(field, message)`` pairs of
    ``Status.details.causes`` (which field the API server refused, and why).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        delay: float = 5.0,
        reason: str = "",
        causes: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.status = status
        self.api_reason = reason
        self.causes = causes
        self.detail = message
        # The condition reason: a subclass's own, else KubernetesAPI + the Status reason.
        self.reason: str = getattr(type(self), "reason", "") or "KubernetesAPI" + (
            reason or ("Unreachable" if not status else "Error")
        )
        super().__init__(f"Kubernetes API {status}: {message}", delay=delay)

    @property
    def permanent(self) -> bool:
        """Whether retrying the same request cannot succeed (see ``PERMANENT_API_STATUSES``)."""
        return self.status in PERMANENT_API_STATUSES

    def about(self, what: str, *, quote_values: bool = True) -> KubernetesAPIError:
        """The same error, its message prefixed with ``what`` failed (``writing Secret x``).
        Without ``quote_values`` only the refused fields and the Status reason are kept: the
        API server's messages may quote what was sent (a Secret's data)."""
        if quote_values:
            detail = self.detail
        else:
            fields = ", ".join(sorted({field for field, _ in self.causes if field}))
            detail = self.api_reason or "Error"
            detail += f" (fields: {fields})" if fields else ""
        return KubernetesAPIError(
            self.status,
            f"{what} failed: {detail}",
            delay=self.delay,
            reason=self.api_reason,
            causes=self.causes if quote_values else tuple((f, "") for f, _ in self.causes),
        )


class NotLeaderError(MirageError):
    """A write was refused because this replica does not hold the leader election Lease."""


class SecretDataError(MirageError):
    """The data read from Vault does not fit the VaultSecret (a listed key is missing, a
    template fails, the Secret type's required keys are absent). Fixing Vault or the spec
    heals it; the existing Secret is kept meanwhile. Messages name keys, never values."""

    reason = "InvalidVaultData"


class InvalidTemplate(SecretDataError):
    """A template failed on the data read from Vault, or exceeded its memory or time budget
    (docs/adr/0066, docs/adr/0067). The message names the template's key, its line and the
    exception's class, never the exception's text (which can quote a value)."""

    reason = "InvalidTemplate"


class VaultError(TransientError):
    """A Vault call failed. ``reason`` is the condition reason; ``path`` the Vault path
    involved (paths are not secret). Messages never include secret values or tokens."""

    reason = "VaultError"

    def __init__(self, message: str, *, path: str = "", delay: float = 5.0) -> None:
        self.path = path
        super().__init__(message, delay=delay)


class VaultUnavailable(VaultError):
    """Vault is sealed, answered 5xx, or could not be reached (connection error, timeout)."""

    reason = "VaultUnavailable"


class VaultPermissionDenied(VaultError):
    """Vault answered 403: its policy (or the login role binding) denies the request."""

    reason = "VaultPermissionDenied"


class VaultPathNotFound(VaultError):
    """Vault answered 404: no secret (or no such version, or a deleted one) at the path."""

    reason = "VaultPathNotFound"


class VaultPathNotAllowed(InvalidSpecError):
    """The operator's own allowed-path check refused the path before any Vault call: the
    namespace may not read it. Retrying does not help until the spec changes."""

    reason = "VaultPathNotAllowed"

    def __init__(self, field: str, message: str) -> None:
        super().__init__([Problem(field, message)])


class ServiceAccountTokenError(KubernetesAPIError):
    """A TokenRequest for a tenant's Vault ServiceAccount failed: the ServiceAccount is missing,
    or the operator may not request its tokens. Messages never carry the token."""

    reason = "ServiceAccountTokenFailed"


class HMACKeyError(TransientError):
    """The operator's HMAC key Secret exists but holds no usable key. The operator never
    overwrites it (every ``status.secretMAC`` depends on it): an administrator repairs or
    deletes it, and the operator creates a new one when it is missing."""

    reason = "HMACKeyInvalid"


class SecretConflictError(TransientError):
    """The Secret a VaultSecret would write is controlled by another object (most often a
    second VaultSecret with the same destination). The operator leaves it alone instead of
    fighting over it, and tries again later."""

    reason = "SecretOwnedElsewhere"


class SecretExistsError(SecretConflictError):
    """The Secret a VaultSecret would write exists and was not created by Mirage (a user's
    own, docs/adr/0069). It is left alone unless the VaultSecret sets
    ``spec.destination.overwrite: true``."""

    reason = "SecretExists"


class ChildOwnedElsewhere(TransientError):
    """An object with the name of one of a resource's children exists and is not that
    resource's and nobody controls it (made by hand, by Helm...): it is never taken over
    (docs/adr/0069). Deleting or renaming it heals this. An object another owner controls is
    a :class:`ChildNameConflictError` instead."""

    reason = "ChildOwnedElsewhere"
