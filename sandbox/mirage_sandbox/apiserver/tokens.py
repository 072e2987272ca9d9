"""ServiceAccount tokens: the TokenRequest subresource, TokenReview and the issuer discovery.

Tokens are RS256 JWTs, as a real API server issues them, signed with an RSA key that lives only
in the server process; its public half is published as a JWK set at ``/openid/v1/jwks`` and
the issuer at ``/.well-known/openid-configuration`` (ServiceAccountIssuerDiscovery), so that
a relying party (Vault's kubernetes auth, an OIDC verifier) can check them without the server.
Claims follow the real bound tokens: ``iss``, ``sub`` (``system:serviceaccount:<ns>:<name>``),
``aud``, ``exp``, ``iat``, ``nbf``, ``jti`` and ``kubernetes.io`` (namespace, serviceaccount
name and uid). TokenReview accepts a token only while it has not expired, its audiences
intersect the requested ones, and the ServiceAccount still exists with the same uid.

Signing and verification are PyJWT's (with ``cryptography`` for RSA), not ours.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mirage_operator.errors import Problem

ISSUER = "https://kubernetes.default.svc.cluster.local"
MIN_EXPIRATION = 600
DEFAULT_EXPIRATION = 3600
ALGORITHM = "RS256"
JWKS_PATH = "/openid/v1/jwks"
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_CONTENT_TYPE = "application/jwk-set+json"
"""What the real server answers ``/openid/v1/jwks`` with."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenSigner:
    """Issues and verifies ServiceAccount tokens with a per-process RSA key (made on first use:
    2048-bit generation costs tens of milliseconds, and most servers never issue a token)."""

    def __init__(self, key: rsa.RSAPrivateKey | None = None) -> None:
        self._key = key
        self._lock = threading.Lock()

    @property
    def key(self) -> rsa.RSAPrivateKey:
        """The signing key."""
        with self._lock:
            if self._key is None:
                self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._key

    @property
    def key_id(self) -> str:
        """``kid``: base64url SHA-256 of the public key's DER (SubjectPublicKeyInfo), as the
        real server derives it."""
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return _b64(hashlib.sha256(der).digest())

    def jwks(self) -> dict[str, Any]:
        """The JWK set served at ``/openid/v1/jwks``."""
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{"use": "sig", **public, "kid": self.key_id, "alg": ALGORITHM}]}

    def public_key_pem(self) -> str:
        """The verification key in PEM (what Vault's ``pem_keys`` takes)."""
        return (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

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
        expires = issued + expiration_seconds
        claims = {
            "aud": audiences,
            "exp": expires,
            "iat": issued,
            "iss": ISSUER,
            "jti": secrets.token_hex(16),
            "nbf": issued,
            "sub": f"system:serviceaccount:{namespace}:{name}",
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
        }
        token = jwt.encode(claims, self.key, algorithm=ALGORITHM, headers={"kid": self.key_id})
        return token, expires

    def verify(self, token: str, *, now: float | None = None) -> dict[str, Any] | None:
        """The claims of a valid, unexpired token signed here; ``None`` otherwise. Audiences
        are the caller's to check (TokenReview matches them against the request's)."""
        moment = now if now is not None else time.time()
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.key.public_key(),
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False},
            )
        except jwt.PyJWTError:
            return None
        # Checked here rather than by PyJWT so that ``now`` can be moved in tests.
        if claims.get("exp", 0) <= moment or claims.get("nbf", 0) > moment + 60:
            return None
        return claims


def discovery_document(issuer: str, jwks_uri: str) -> dict[str, Any]:
    """``/.well-known/openid-configuration`` as the real server serves it."""
    return {
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
    }


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
