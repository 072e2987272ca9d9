"""The emulated Kubernetes API server's refusal, in the shape of the real server's ``Status``."""

from __future__ import annotations

from typing import Any

from mirage_operator.errors import MirageError


class EmulatedAPIError(MirageError):
    """The emulated Kubernetes API server refuses a request.

    It carries what the real server puts in its ``Status`` answer, so that the HTTP layer
    renders it the same way: the HTTP ``code``, the machine ``reason`` (``NotFound``,
    ``Conflict``, ``Invalid``...), the human ``message`` and the ``details``.
    """

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}
        self.headers = headers or {}
        super().__init__(f"{code} {reason}: {message}")
