"""Vault tokens kept across operator processes, encrypted, in a Secret of the operator's namespace.

A dynamic secret's lease dies with the token that created it. So that the next leader (after a
failover, a restart or an upgrade) keeps renewing the leases this process issued, every
tenant's token is written to ``Config.vault_token_secret`` when it is obtained or renewed, and
read back by a process that has none cached (docs/adr/0111).

Each entry is AES-256-GCM with a random nonce; the associated data binds it to its Secret and
key, so an entry copied under another namespace's key does not decrypt (one tenant's token
cannot be made another's). The key lives in ``Config.vault_token_key_secret``, created on
first use. Nothing here logs a token, a key or a ciphertext.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mirage_operator.config import Config
from mirage_operator.errors import MirageError
from mirage_operator.k8s import resources
from mirage_operator.k8s.client import KubeConnection
from mirage_operator.render.secret import secret_labels

log = logging.getLogger(__name__)

KEY_FIELD = "key"
KEY_BYTES = 32
NONCE_BYTES = 12
OPERATOR_ENTRY = "_operator"
"""Entry of the one token of ``operator`` auth mode (namespace names cannot start with ``_``)."""


@dataclass(frozen=True)
class StoredToken:
    """What a process needs to keep using (and renewing) a token it did not log in for."""

    token: str = field(repr=False)
    accessor: str
    ttl: float
    obtained_at: float
    """Epoch seconds of the login or last renewal."""
    first_ttl: float
    renewable: bool


class TokenStore(Protocol):
    """Where the Vault client keeps its tokens beyond the process."""

    async def load(self, key: str) -> StoredToken | None:
        """The stored token of ``key`` (a namespace, or "" in operator mode), if any."""

    async def save(self, key: str, token: StoredToken) -> None:
        """Keep ``token`` for ``key``; failures are logged, never raised."""


def entry_name(key: str) -> str:
    """The Secret data key of one token."""
    return key or OPERATOR_ENTRY


def seal(aes_key: bytes, slot: str, token: StoredToken) -> str:
    """``token`` encrypted for ``slot`` (Secret name and entry), base64 text."""
    nonce = os.urandom(NONCE_BYTES)
    plain = json.dumps(asdict(token), separators=(",", ":")).encode()
    return base64.b64encode(nonce + AESGCM(aes_key).encrypt(nonce, plain, slot.encode())).decode()


def unseal(aes_key: bytes, slot: str, sealed: str) -> StoredToken | None:
    """The token ``seal`` wrote for ``slot``; ``None`` when it does not decrypt or parse."""
    try:
        raw = base64.b64decode(sealed, validate=True)
        plain = AESGCM(aes_key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], slot.encode())
        fields: dict[str, Any] = json.loads(plain)
        return StoredToken(**fields)
    except (binascii.Error, InvalidTag, ValueError, TypeError):
        return None


class SecretTokenStore:
    """:class:`TokenStore` in two Secrets of the operator's namespace (tokens, key)."""

    def __init__(self, config: Config, kube: KubeConnection) -> None:
        self._config = config
        self._kube = kube
        self._aes_key: bytes | None = None
        self._entries: dict[str, str] | None = None
        self._lock = asyncio.Lock()

    def _slot(self, key: str) -> str:
        return f"{self._config.vault_token_secret}/{entry_name(key)}"

    async def _key(self) -> bytes:
        if self._aes_key is None:
            config, kube = self._config, self._kube.client
            name, namespace = config.vault_token_key_secret, config.operator_namespace
            secret = await kube.get(resources.SECRET, namespace=namespace, name=name)
            if secret is None:
                body = _secret(name, namespace, {KEY_FIELD: secrets.token_bytes(KEY_BYTES)})
                body["immutable"] = True  # a new key would make every stored token unreadable
                # No force: a key another replica created first wins (this apply conflicts).
                secret = await kube.apply(
                    resources.SECRET, body, field_manager=config.field_manager, force=False
                )
                log.info("Created the Vault token key Secret %s/%s", namespace, name)
            encoded = (secret.get("data") or {}).get(KEY_FIELD, "")
            key = base64.b64decode(encoded) if isinstance(encoded, str) else b""
            if len(key) != KEY_BYTES:
                raise MirageError(f"Secret {namespace}/{name} holds no {KEY_BYTES}-byte key")
            self._aes_key = key
        return self._aes_key

    async def _load_entries(self) -> dict[str, str]:
        if self._entries is None:
            config = self._config
            secret = await self._kube.client.get(
                resources.SECRET,
                namespace=config.operator_namespace,
                name=config.vault_token_secret,
            )
            data: Mapping[str, Any] = (secret or {}).get("data") or {}
            self._entries = {
                k: base64.b64decode(v).decode() for k, v in data.items() if isinstance(v, str)
            }
        return self._entries

    async def load(self, key: str) -> StoredToken | None:
        """The stored token of ``key``; ``None`` when there is none or it cannot be read."""
        try:
            async with self._lock:
                sealed = (await self._load_entries()).get(entry_name(key))
                if sealed is None:
                    return None
                token = unseal(await self._key(), self._slot(key), sealed)
        except (MirageError, binascii.Error, UnicodeDecodeError) as exc:
            log.warning("Could not read the stored Vault token of %r: %s", key, exc)
            return None
        if token is None:
            log.warning("The stored Vault token of %r does not decrypt; logging in", key)
        return token

    async def save(self, key: str, token: StoredToken) -> None:
        """Write ``token`` for ``key`` (one merge patch of one entry)."""
        config = self._config
        try:
            async with self._lock:
                sealed = seal(await self._key(), self._slot(key), token)
                patch = {"data": {entry_name(key): base64.b64encode(sealed.encode()).decode()}}
                where = {"namespace": config.operator_namespace, "name": config.vault_token_secret}
                kube = self._kube.client
                if await kube.merge_patch(resources.SECRET, **where, patch=patch) is None:
                    body = _secret(config.vault_token_secret, config.operator_namespace, {})
                    await kube.apply(
                        resources.SECRET, body, field_manager=config.field_manager, force=False
                    )
                    await kube.merge_patch(resources.SECRET, **where, patch=patch)
                if self._entries is not None:
                    self._entries[entry_name(key)] = sealed
        except MirageError as exc:
            log.warning("Could not store the Vault token of %r: %s", key, exc)


def _secret(name: str, namespace: str, data: Mapping[str, bytes]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": secret_labels()},
        "type": "Opaque",
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }
