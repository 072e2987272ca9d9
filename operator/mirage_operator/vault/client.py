"""All Vault I/O, through ``hvac``: per-tenant login, token cache, KV and database reads, leases.

``hvac`` is synchronous; :class:`VaultClient` runs each request in a worker thread and exposes
coroutines. One ``requests`` session (connection pool, TLS settings) is shared; each cached
token has its own ``hvac.Client`` (the token travels per request, so sharing is safe).

Authentication (``tenant`` mode): for a namespace, a short-lived token of its ServiceAccount
(``Config.vault_service_account``, audience ``Config.vault_token_audience``) comes from the
caller's ``token_for`` coroutine (a Kubernetes TokenRequest), and logs in at
``auth/<Config.vault_auth_mount>/login`` with the role ``Config.vault_role_template``. The Vault
token is cached per namespace, renewed at two thirds of its TTL when next used, and replaced by
a new login when renewal fails or the token nears its max TTL. ``operator`` mode logs in once,
as the operator's own ServiceAccount.

Every error is one of :class:`VaultPermissionDenied` (403), :class:`VaultPathNotFound` (404),
:class:`VaultUnavailable` (sealed, 5xx, connection errors, timeouts) or
:class:`VaultPathNotAllowed` (the operator's own check, before any call). Messages carry
operations, paths and status codes only: never values, tokens or JWTs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import hvac
import hvac.exceptions
import requests
from requests.adapters import HTTPAdapter

from mirage_operator.api.vaultsecret import VaultSource
from mirage_operator.config import Config
from mirage_operator.errors import (
    VaultError,
    VaultPathNotAllowed,
    VaultPathNotFound,
    VaultPermissionDenied,
    VaultUnavailable,
)
from mirage_operator.metrics import (
    VAULT_LEASE_RENEWALS,
    VAULT_LOGINS,
    VAULT_READS,
    VAULT_REQUEST_DURATION,
    VAULT_TOKEN_RENEWALS,
    VAULT_TOKENS_CACHED,
)
from mirage_operator.vault.policy import check_allowed
from mirage_operator.vault.tokenstore import StoredToken, TokenStore

log = logging.getLogger(__name__)

T = TypeVar("T")

TokenFor = Callable[[str, str, str, int], Awaitable[str]]
"""``token_for(namespace, service_account, audience, expiration_seconds)``: a ServiceAccount
token (TokenRequest). Supplied by the Kubernetes client."""

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

RENEW_FRACTION = 2 / 3
"""Tokens and leases are renewed once this fraction of their TTL has passed."""

_LEASE_SUFFIX = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
"""The random part of a Vault lease ID (base62, and ``.<namespace id>`` in Enterprise; the
emulated Vault's are URL-safe base64, so ``-`` or ``_`` may come first): one path segment,
never ``.`` or ``..``."""

BACKOFF_BASE = 0.2
BACKOFF_CAP = 5.0


@dataclass(frozen=True)
class Lease:
    """A dynamic secret's lease, as far as the operator needs to keep it alive."""

    lease_id: str
    duration: float
    """Seconds granted by the last issue or renewal."""
    renewed_at: float
    """Epoch seconds of the last issue or renewal."""
    renewable: bool = True
    increment: float = 0.0
    """Seconds asked for at each renewal (the first grant); 0 means ``duration``."""
    capped: bool = False
    """Vault granted less than asked: the lease is near its max TTL and will be replaced."""
    token_accessor: str = ""
    """Accessor of the token that created the lease (the lease dies with that token)."""

    @property
    def expires_at(self) -> float:
        """Epoch seconds when the lease ends unless renewed."""
        return self.renewed_at + self.duration

    @property
    def renew_at(self) -> float:
        """Epoch seconds when the lease is due for renewal (or replacement)."""
        return self.renewed_at + self.duration * RENEW_FRACTION

    @classmethod
    def from_status(cls, lease_id: str, duration: float, expires_at: float) -> Lease:
        """Rebuild from what a VaultSecret's status keeps (after an operator restart)."""
        return cls(lease_id=lease_id, duration=duration, renewed_at=expires_at - duration)


@dataclass(frozen=True)
class VaultData:
    """What one read returned. ``data`` is secret: it is kept out of ``repr``."""

    data: Mapping[str, str] = field(repr=False)
    version: int | None = None
    """kv-v2: the version read."""
    lease: Lease | None = None
    """database: the credentials' lease."""


@dataclass(frozen=True)
class _Token:
    client: hvac.Client = field(repr=False)
    accessor: str
    ttl: float
    obtained_at: float
    first_ttl: float
    renewable: bool

    @property
    def renew_at(self) -> float:
        return self.obtained_at + self.ttl * RENEW_FRACTION

    @property
    def expires_at(self) -> float:
        return self.obtained_at + self.ttl


class _ServerNameAdapter(HTTPAdapter):
    """Send ``server_name`` as SNI and check the certificate against it (not the address)."""

    def __init__(self, server_name: str) -> None:
        self._server_name = server_name
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self._server_name
        kwargs["assert_hostname"] = self._server_name
        super().init_poolmanager(*args, **kwargs)


_STATUS = {
    hvac.exceptions.InvalidRequest: 400,
    hvac.exceptions.Unauthorized: 401,
    hvac.exceptions.Forbidden: 403,
    hvac.exceptions.InvalidPath: 404,
    hvac.exceptions.RateLimitExceeded: 429,
    hvac.exceptions.InternalServerError: 500,
    hvac.exceptions.VaultNotInitialized: 501,
    hvac.exceptions.BadGateway: 502,
    hvac.exceptions.VaultDown: 503,
}


def _status_of(exc: hvac.exceptions.VaultError) -> int:
    return next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 0)


def classify(exc: BaseException, *, operation: str, path: str) -> VaultError | None:
    """The operator's error for an ``hvac``/``requests`` exception (``None``: not Vault's).

    Vault's own error strings are passed on only for logins and 400 answers, where they name
    roles and parameters; never the request or response bodies.
    """
    where = f"{operation} {path}"
    if isinstance(exc, hvac.exceptions.VaultError):
        status = _status_of(exc)
        if status in {401, 403}:
            return VaultPermissionDenied(
                f"Vault denied {where} ({status} permission denied)", path=path
            )
        if status == 404:
            return VaultPathNotFound(f"Vault has no secret for {where} (404)", path=path)
        if status == 503:
            return VaultUnavailable(
                f"Vault is sealed or unavailable during {where} (503)", path=path
            )
        if status == 400:
            detail = "; ".join(str(e) for e in (exc.errors or ()))[:200]
            return VaultError(
                f"Vault refused {where} (400 {detail or 'invalid request'})", path=path
            )
        return VaultUnavailable(f"Vault answered {status or 'an error'} during {where}", path=path)
    if isinstance(exc, requests.exceptions.SSLError):
        return VaultUnavailable(f"TLS handshake with Vault failed during {where}", path=path)
    if isinstance(exc, requests.exceptions.Timeout):
        return VaultUnavailable(f"Vault timed out during {where}", path=path)
    if isinstance(exc, requests.exceptions.ConnectionError):
        return VaultUnavailable(f"Vault is unreachable during {where}", path=path)
    if isinstance(exc, requests.exceptions.RequestException):
        return VaultUnavailable(f"request to Vault failed during {where}", path=path)
    return None


def _secret_data(data: Mapping[str, Any] | None) -> dict[str, str]:
    """Vault's answer as Secret data: strings as they are, other JSON values compact JSON."""
    return {
        key: value
        if isinstance(value, str)
        else json.dumps(value, sort_keys=True, separators=(",", ":"))
        for key, value in (data or {}).items()
    }


_OUTCOMES = (
    (VaultPathNotAllowed, "not_allowed"),
    (VaultPermissionDenied, "denied"),
    (VaultPathNotFound, "not_found"),
    (VaultUnavailable, "unavailable"),
)
"""The ``outcome`` label of a failed read or login, by error class."""


def _outcome(exc: BaseException) -> str:
    return next((outcome for kind, outcome in _OUTCOMES if isinstance(exc, kind)), "error")


class VaultClient:
    """The operator's one door to Vault. Create one per process; :meth:`close` at shutdown."""

    def __init__(
        self,
        config: Config,
        *,
        token_for: TokenFor,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        store: TokenStore | None = None,
    ) -> None:
        self._config = config
        self._kept = store
        self._restored: set[str] = set()
        self._token_for = token_for
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._session = requests.Session()
        # hvac prefers a given session's own ``verify`` over its argument: set it here.
        self._session.verify = config.vault_ca_path or True
        if config.vault_tls_server_name:
            self._session.mount("https://", _ServerNameAdapter(config.vault_tls_server_name))
        self._tokens: dict[str, _Token] = {}
        self._retired: set[str] = set()
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    # --- plumbing -----------------------------------------------------------------------

    def _hvac(self, token: str) -> hvac.Client:
        config = self._config
        return hvac.Client(
            url=config.vault_address,
            token=token,  # never None: hvac would read VAULT_TOKEN from the environment
            verify=config.vault_ca_path or True,
            timeout=config.vault_timeout,
            namespace=config.vault_namespace or None,
            session=self._session,
        )

    def _backoff(self, attempt: int) -> float:
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2.0**attempt)
        return ceiling / 2 + self._jitter() * ceiling / 2

    async def _call(
        self, operation: str, path: str, fn: Callable[[], T], *, idempotent: bool = True
    ) -> T:
        """Run ``fn`` in a thread; classify failures; retry unavailability with backoff."""
        attempts = self._config.vault_retries + 1
        for attempt in range(attempts):
            started = time.perf_counter()
            try:
                return await asyncio.to_thread(fn)
            except Exception as exc:
                error = classify(exc, operation=operation, path=path)
                if error is None:
                    raise
                # A request that may have reached Vault is repeated only when that is harmless.
                sent = not isinstance(exc, requests.exceptions.ConnectionError)
                again = isinstance(error, VaultUnavailable) and attempt + 1 < attempts
                if not again or (sent and not idempotent):
                    raise error from None
                log.info("Vault %s %s failed (%s); retrying", operation, path, type(error).__name__)
            finally:
                VAULT_REQUEST_DURATION.labels(operation=operation).observe(
                    time.perf_counter() - started
                )
            await self._sleep(self._backoff(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    # --- tokens -------------------------------------------------------------------------

    def _key(self, namespace: str) -> str:
        return "" if self._config.vault_auth_mode == "operator" else namespace

    @property
    def tokens_cached(self) -> int:
        """How many Vault tokens are cached."""
        return len(self._tokens)

    def token_renew_at(self, namespace: str) -> float | None:
        """When the namespace's cached token is due for renewal (``None``: none cached)."""
        token = self._tokens.get(self._key(namespace))
        return token.renew_at if token else None

    def _store(self, key: str, token: _Token | None) -> None:
        old = self._tokens.pop(key, None)
        if old is not None and (token is None or old.accessor != token.accessor):
            self._retired.add(old.accessor)
        if token is not None:
            self._tokens[key] = token
        VAULT_TOKENS_CACHED.set(len(self._tokens))

    async def _token(self, namespace: str, *, fresh: bool = False) -> _Token:
        key = self._key(namespace)
        async with self._locks[key]:
            token = self._tokens.get(key)
            if token is None and not fresh:
                token = await self._restore(key)
            now = self._clock()
            if token is not None and not fresh:
                if now < token.renew_at:
                    return token
                if token.renewable and now < token.expires_at:
                    renewed = await self._renew_token(token)
                    if renewed is not None:
                        self._store(key, renewed)
                        await self._keep(key, renewed)
                        return renewed
            self._store(key, None)
            token = await self._login(key)
            self._store(key, token)
            await self._keep(key, token)
            return token

    async def _restore(self, key: str) -> _Token | None:
        """The token a previous process kept for ``key`` (once per process): its leases live
        as long as it does, so it is renewed rather than replaced by a new login."""
        if self._kept is None or key in self._restored:
            return None
        self._restored.add(key)
        stored = await self._kept.load(key)
        if stored is None or self._clock() >= stored.obtained_at + stored.ttl:
            return None
        token = _Token(
            client=self._hvac(stored.token),
            accessor=stored.accessor,
            ttl=stored.ttl,
            obtained_at=stored.obtained_at,
            first_ttl=stored.first_ttl,
            renewable=stored.renewable,
        )
        self._store(key, token)
        log.info("Using the Vault token kept by a previous operator process (%r)", key)
        return token

    async def _keep(self, key: str, token: _Token) -> None:
        if self._kept is not None and math.isfinite(token.ttl):
            await self._kept.save(
                key,
                StoredToken(
                    token=str(token.client.token),
                    accessor=token.accessor,
                    ttl=token.ttl,
                    obtained_at=token.obtained_at,
                    first_ttl=token.first_ttl,
                    renewable=token.renewable,
                ),
            )

    async def _renew_token(self, token: _Token) -> _Token | None:
        try:
            answer = await self._call(
                "renew_token", "auth/token/renew-self", token.client.auth.token.renew_self
            )
        except VaultError as exc:
            VAULT_TOKEN_RENEWALS.labels(result="failed").inc()
            log.info("Vault token renewal failed (%s); logging in again", type(exc).__name__)
            return None
        ttl = float(answer["auth"]["lease_duration"])
        if ttl < token.first_ttl * (1 - RENEW_FRACTION):
            # Capped by the token's max TTL: a new login beats a token about to die.
            VAULT_TOKEN_RENEWALS.labels(result="capped").inc()
            return None
        VAULT_TOKEN_RENEWALS.labels(result="renewed").inc()
        return replace(token, ttl=ttl, obtained_at=self._clock())

    async def _login(self, key: str) -> _Token:
        config = self._config
        if config.vault_auth_mode == "operator":
            namespace = config.operator_namespace
            service_account = config.vault_operator_service_account
            role = config.vault_operator_role
        else:
            namespace, service_account = key, config.vault_service_account
            role = config.vault_role_template.format(namespace=key)
        mount = config.vault_auth_mount
        jwt = await self._token_for(
            namespace, service_account, config.vault_token_audience, config.vault_token_expiration
        )
        client = self._hvac("")
        started = self._clock()
        try:
            answer = await self._call(
                "login",
                f"auth/{mount}/login",
                lambda: client.auth.kubernetes.login(role=role, jwt=jwt, mount_point=mount),
            )
        except VaultError as exc:
            VAULT_LOGINS.labels(namespace=key, result=_outcome(exc)).inc()
            who = f"ServiceAccount {namespace}/{service_account}"
            # 400 (no such role) and 404 (no such auth mount) are login refusals too.
            if (
                isinstance(exc, VaultPermissionDenied | VaultPathNotFound)
                or type(exc) is VaultError
            ):
                raise VaultPermissionDenied(
                    f"Vault login as {who} with role {role!r} at auth/{mount} failed: {exc}",
                    path=f"auth/{mount}/login",
                ) from None
            raise
        VAULT_LOGINS.labels(namespace=key, result="success").inc()
        auth = answer["auth"]
        ttl = float(auth["lease_duration"])
        log.info("Logged in to Vault as %s (role %s, ttl %ss)", service_account, role, int(ttl))
        return _Token(
            client=client,
            accessor=str(auth.get("accessor", "")),
            ttl=ttl if ttl > 0 else float("inf"),
            obtained_at=started,
            first_ttl=ttl if ttl > 0 else float("inf"),
            renewable=bool(auth.get("renewable", False)),
        )

    async def _authed(
        self,
        namespace: str,
        operation: str,
        path: str,
        fn: Callable[[hvac.Client], T],
        *,
        idempotent: bool = True,
    ) -> tuple[T, _Token]:
        """Call ``fn`` with the namespace's token. On 403, if the token itself turns out to be
        invalid (revoked or expired behind our back), log in again and try once more."""
        token = await self._token(namespace)
        try:
            return await self._call(
                operation, path, lambda: fn(token.client), idempotent=idempotent
            ), token
        except VaultPermissionDenied:
            if await self._token_valid(token):
                raise  # a policy denial, not a dead token
        token = await self._token(namespace, fresh=True)
        return await self._call(
            operation, path, lambda: fn(token.client), idempotent=idempotent
        ), token

    async def _token_valid(self, token: _Token) -> bool:
        try:
            await self._call(
                "lookup_token", "auth/token/lookup-self", token.client.auth.token.lookup_self
            )
        except VaultPermissionDenied:
            return False
        return True

    # --- reads --------------------------------------------------------------------------

    def check_allowed(self, namespace: str, source: VaultSource) -> None:
        """The operator's allowed-path check (:class:`VaultPathNotAllowed`); no Vault call."""
        check_allowed(self._config, namespace, source)

    async def read(self, namespace: str, source: VaultSource) -> VaultData:
        """Read ``source`` for a custom resource in ``namespace``: KV data (and version), or
        new database credentials (with their lease)."""
        readers = {
            "kv-v2": self._read_kv2,
            "kv-v1": self._read_kv1,
            "database": self._new_credentials,
        }
        try:
            check_allowed(self._config, namespace, source)
            result = await readers[source.engine](namespace, source)
        except (VaultError, VaultPathNotAllowed) as exc:
            VAULT_READS.labels(engine=source.engine, outcome=_outcome(exc)).inc()
            raise
        VAULT_READS.labels(engine=source.engine, outcome="success").inc()
        return result

    async def _get(
        self, namespace: str, path: str, fn: Callable[[hvac.Client], dict[str, Any]]
    ) -> dict[str, Any]:
        """A KV read's answer (the namespace's token, retried when Vault is unavailable)."""
        answer, _ = await self._authed(namespace, "read", path, fn)
        return answer

    async def _read_kv2(self, namespace: str, source: VaultSource) -> VaultData:
        path = f"{source.mount}/data/{source.path}"
        answer = await self._get(
            namespace,
            path,
            lambda c: c.secrets.kv.v2.read_secret_version(
                path=source.path,
                version=source.version,
                mount_point=source.mount,
                raise_on_deleted_version=True,
            ),
        )
        body = answer.get("data") or {}
        if body.get("data") is None:
            raise VaultPathNotFound(
                f"Vault has no data for read {path} (deleted version)", path=path
            )
        version = (body.get("metadata") or {}).get("version")
        return VaultData(
            data=_secret_data(body["data"]), version=int(version) if version is not None else None
        )

    async def _read_kv1(self, namespace: str, source: VaultSource) -> VaultData:
        answer = await self._get(
            namespace,
            f"{source.mount}/{source.path}",
            lambda c: c.secrets.kv.v1.read_secret(path=source.path, mount_point=source.mount),
        )
        return VaultData(data=_secret_data(answer.get("data")))

    async def _new_credentials(self, namespace: str, source: VaultSource) -> VaultData:
        path = f"{source.mount}/creds/{source.path}"
        # Not idempotent: every call creates a database user, so no blind retries.
        answer, token = await self._authed(
            namespace,
            "creds",
            path,
            lambda c: c.secrets.database.generate_credentials(
                name=source.path, mount_point=source.mount
            ),
            idempotent=False,
        )
        duration = float(answer.get("lease_duration") or 0)
        lease = Lease(
            lease_id=str(answer.get("lease_id", "")),
            duration=duration,
            renewed_at=self._clock(),
            renewable=bool(answer.get("renewable", False)),
            increment=duration,
            token_accessor=token.accessor,
        )
        return VaultData(data=_secret_data(answer.get("data")), lease=lease)

    # --- leases -------------------------------------------------------------------------

    def _check_lease(self, namespace: str, source: VaultSource, lease_id: str) -> None:
        # Only leases of the source's own role are touched: a status cannot point elsewhere.
        check_allowed(self._config, namespace, source)
        prefix = f"{source.mount}/creds/{source.path}/"
        # The ID goes into a URL path: one plain segment after the prefix, nothing else.
        if not lease_id.startswith(prefix) or not _LEASE_SUFFIX.fullmatch(lease_id[len(prefix) :]):
            raise VaultPathNotAllowed("status.leaseID", f"Forbidden: lease is not one of {prefix}*")

    def next_check_at(self, namespace: str, lease: Lease) -> float:
        """When :meth:`ensure_credentials` should run next for ``lease``: its renewal time, or
        earlier if the namespace's token must be renewed first (the lease dies with it)."""
        token_due = self.token_renew_at(namespace)
        return min(lease.renew_at, token_due) if token_due is not None else lease.renew_at

    async def renew_lease(self, namespace: str, source: VaultSource, lease: Lease) -> Lease:
        """Renew ``lease`` by its first grant; the answer may be capped by the max TTL."""
        self._check_lease(namespace, source, lease.lease_id)
        increment = int(lease.increment or lease.duration)
        # The path form (not hvac's sys.renew_lease, which sends the ID in the body): only a
        # path names the lease to Vault policy, so a tenant's policy can scope it (ADR 0102).
        path = f"sys/leases/renew/{lease.lease_id}"
        answer, _ = await self._authed(
            namespace,
            "renew_lease",
            path,
            lambda c: c.adapter.put(f"/v1/{path}", json={"increment": increment}),
        )
        duration = float(answer.get("lease_duration") or 0)
        return replace(
            lease,
            duration=duration,
            renewed_at=self._clock(),
            increment=float(increment),
            renewable=bool(answer.get("renewable", lease.renewable)),
            capped=duration < increment,
        )

    async def ensure_credentials(
        self, namespace: str, source: VaultSource, lease: Lease | None
    ) -> tuple[Lease, VaultData | None]:
        """Keep database credentials alive: renew the lease at two thirds of its TTL, issue
        new credentials when it is capped by its max TTL, gone, or tied to a token the
        operator no longer holds; renew the namespace's token when it is due. Returns the lease
        to keep and, only when new credentials were issued, their data. The old lease is left
        to expire (pods may still use it)."""
        if lease is not None:
            self._check_lease(namespace, source, lease.lease_id)
        if self._kept is not None and self._key(namespace) not in self._tokens:
            # A new process: the kept token is the lease's lifeline, so it is taken up (and
            # from now on renewed when due) even while the lease itself needs nothing.
            await self._token(namespace)
        now = self._clock()
        token_due = self.token_renew_at(namespace)
        if token_due is not None and now >= token_due:
            # next_check_at woke the caller for the token: the lease dies with it. A failed
            # renewal means a new login, which retires the token and so replaces the lease.
            await self._token(namespace)
        if lease is not None and lease.token_accessor not in self._retired:
            if now < lease.renew_at:
                return lease, None
            if lease.renewable and not lease.capped and now < lease.expires_at:
                try:
                    renewed = await self.renew_lease(namespace, source, lease)
                except VaultUnavailable:
                    VAULT_LEASE_RENEWALS.labels(result="failed").inc()
                    raise
                except VaultError as exc:
                    VAULT_LEASE_RENEWALS.labels(result="failed").inc()
                    log.info(
                        "Lease renewal refused (%s); issuing new credentials", type(exc).__name__
                    )
                else:
                    VAULT_LEASE_RENEWALS.labels(result="renewed").inc()
                    return renewed, None
        fresh = await self.read(namespace, source)
        assert fresh.lease is not None
        VAULT_LEASE_RENEWALS.labels(result="rotated").inc()
        return fresh.lease, fresh

    async def revoke_lease(self, namespace: str, source: VaultSource, lease_id: str) -> None:
        """Revoke a lease (on delete). A lease Vault no longer knows counts as revoked."""
        self._check_lease(namespace, source, lease_id)
        try:
            path = f"sys/leases/revoke/{lease_id}"  # the path form, as in renew_lease
            await self._authed(
                namespace, "revoke_lease", path, lambda c: c.adapter.put(f"/v1/{path}")
            )
        except VaultError as exc:
            if type(exc) is not VaultError:  # 400 "lease not found": already gone
                raise
        VAULT_LEASE_RENEWALS.labels(result="revoked").inc()

    async def close(self) -> None:
        """Forget cached tokens and close connections. Tokens are not revoked: the leases
        they created would die with them."""
        self._tokens.clear()
        VAULT_TOKENS_CACHED.set(0)
        await asyncio.to_thread(self._session.close)
