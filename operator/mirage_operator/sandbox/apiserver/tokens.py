"""ServiceAccount tokens: the TokenRequest subresource and TokenReview.

Tokens are JWTs signed with HMAC-SHA256 by a key that lives only in the server process
(the real server signs with RSA; only the server verifies them, through TokenReview, so the
algorithm is not observable). Claims follow the real bound tokens: ``iss``, ``sub``
(``system:serviceaccount:<ns>:<name>``), ``aud``, ``exp``, ``iat``, ``nbf`` and
``kubernetes.io`` (namespace, serviceaccount name and uid). TokenReview accepts a token only
while it has not expired, its audiences intersect the requested ones, and the
ServiceAccount still exists with the same uid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

from mirage_operator.errors import Problem

ISSUER = "https://kubernetes.default.svc.cluster.local"
MIN_EXPIRATION = 600
DEFAULT_EXPIRATION = 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Issues and verifies ServiceAccount tokens with a per-process key."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def issue(
        self,
        namespace: str,
        name: str,
        uid: str,
        audiences: list[str],
        expiration_seconds: int,
        *,
        now: float | None = None,
    ) -> tuple[str, int]:
        """A signed token and its expiry (epoch seconds)."""
        issued = int(now if now is not None else time.time())
        claims = {
            "aud": audiences,
            "exp": issued + expiration_seconds,
            "iat": issued,
            "iss": ISSUER,
            "jti": secrets.token_hex(16),
            "nbf": issued,
            "sub": f"system:serviceaccount:{namespace}:{name}",
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
        }
        header = _b64(json.dumps({"alg": "HS256", "kid": "mirage", "typ": "JWT"}).encode())
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = _b64(
            hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        )
        return f"{header}.{payload}.{signature}", claims["exp"]  # type: ignore[return-value]

    def verify(self, token: str, *, now: float | None = None) -> dict[str, Any] | None:
        """The claims of a valid, unexpired token signed here; ``None`` otherwise."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        expected = _b64(
            hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        )
        if not hmac.compare_digest(expected, parts[2]):
            return None
        try:
            claims: dict[str, Any] = json.loads(_unb64(parts[1]))
        except ValueError:
            return None
        moment = now if now is not None else time.time()
        if claims.get("exp", 0) <= moment or claims.get("nbf", 0) > moment + 60:
            return None
        return claims


def token_request_problems(spec: Mapping[str, Any]) -> list[Problem]:
    """What the real server refuses in a TokenRequest spec."""
    seconds = spec.get("expirationSeconds", DEFAULT_EXPIRATION)
    if not isinstance(seconds, int) or seconds < MIN_EXPIRATION:
        return [
            Problem(
                "spec.expirationSeconds",
                f"Invalid value: {seconds}: may not specify a duration less than 10 minutes",
            )
        ]
    if seconds > 2**32:
        return [
            Problem(
                "spec.expirationSeconds",
                f"Invalid value: {seconds}: may not specify a duration larger than 2^32 seconds",
            )
        ]
    return []
