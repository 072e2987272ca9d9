"""The installation's HMAC key: ``status.secretMAC`` is an HMAC of each Secret's data under it,
so that status can say whether the Secret holds the synced data without holding the data.

The key lives in one Secret (``Config.hmac_key_secret`` in ``Config.operator_namespace``),
created on first use and never overwritten: every MAC in every status depends on it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from mirage_operator.errors import HMACKeyError
from mirage_operator.handlers.context import OperatorContext
from mirage_operator.k8s import resources
from mirage_operator.render.secret import HMAC_KEY_BYTES, build_hmac_key_secret, hmac_key_of

log = logging.getLogger(__name__)


class HMACKey:
    """The key, loaded once per process."""

    def __init__(self, context: OperatorContext) -> None:
        self.context = context
        self._key: bytes | None = None
        self._lock = asyncio.Lock()

    async def get(self, *, synced_before: bool) -> bytes:
        """The key, from its Secret; created there when missing. ``synced_before``: the
        caller's VaultSecret has a MAC, so a new key means a lost one."""
        if self._key is None:
            async with self._lock:
                if self._key is None:
                    self._key = await self._load(synced_before=synced_before)
        return self._key

    async def _load(self, *, synced_before: bool) -> bytes:
        config, kube = self.context.config, self.context.kube.client
        where = f"{config.operator_namespace}/{config.hmac_key_secret}"
        secret = await kube.get(
            resources.SECRET, namespace=config.operator_namespace, name=config.hmac_key_secret
        )
        if secret is None:
            body = build_hmac_key_secret(
                name=config.hmac_key_secret,
                namespace=config.operator_namespace,
                key=secrets.token_bytes(HMAC_KEY_BYTES),
            )
            # No force: a key another replica created first wins (this apply then conflicts).
            secret = await kube.apply(
                resources.SECRET, body, field_manager=config.field_manager, force=False
            )
            if synced_before:
                log.warning(
                    "Created the HMAC key Secret %s although VaultSecrets were synced before: "
                    "their Secrets' MACs change, and their workloads restart once",
                    where,
                )
            else:
                log.info("Created the HMAC key Secret %s", where)
        key = hmac_key_of(secret)
        if key is None:
            raise HMACKeyError(
                f"Secret {where} holds no HMAC key (data.key, at least {HMAC_KEY_BYTES} bytes); "
                "repair or delete it",
                delay=60.0,
            )
        return key
