"""An emulated HashiCorp Vault: the HTTP API that ``hvac`` (and so the operator) speaks.

It serves, on ``127.0.0.1`` and a free port:

- ``sys/health`` and ``sys/seal-status``;
- KV version 2 (``<mount>/data|metadata|delete|undelete|destroy/<path>``, ``?version=``) and
  KV version 1 (``<mount>/<path>``);
- kubernetes auth (``auth/<mount>/login``): the JWT is checked by a ``token_reviewer``
  (the emulated Kubernetes API provides one), then bound to a role by ServiceAccount name and
  namespace; the token gets the role's policies plus ``default``;
- tokens with TTL, max TTL, ``renew-self``, ``lookup-self``, ``revoke-self``;
- database credentials (``<mount>/creds/<role>``) with leases: ``sys/leases/renew``,
  ``revoke``, ``lookup``; max TTL; a token's expiry or revocation revokes its leases, as in
  Vault;
- policies as Vault ACL path rules (``*`` only as a suffix glob, ``+`` for one segment, the
  most specific rule decides; :mod:`.vault_acl`), checked on every authenticated call before
  routing, as Vault does: a token that may not touch a path gets 403 whether or not a mount
  is there; the root token gets 404 for an unknown mount;
- ``X-Vault-Namespace``: the root namespace (empty or ``root``) and those made with
  :meth:`EmulatedVault.add_namespace` are served (all from the one state: namespaces are not
  isolated here); any other answers 404 "namespace not found", as Vault and OpenBao do;
- TTLs as granted (a role's 3600 s answers 3600, not a floored 3599);
- fault modes: sealed (503), unavailable (connection refused, or 500), forced 403 on paths,
  slow answers (for client timeouts).

Listing takes ``GET ...?list=true`` (hvac's ``strict_http``): aiohttp's HTTP parser refuses
the ``LIST`` verb. Every request is recorded in :attr:`EmulatedVault.requests` (method, path,
status, token accessor, login role) so tests can count logins and reads; values and tokens
never are.
Time comes from a ``clock`` callable so tests can move it without sleeping.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import secrets
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from mirage_sandbox import vault_acl

TokenReviewer = Callable[[str], Awaitable[tuple[str, str] | None]]
"""Checks a ServiceAccount JWT: ``(namespace, service_account)``, or ``None`` if invalid."""

Clock = Callable[[], float]

DEFAULT_POLICY: Mapping[str, tuple[str, ...]] = {
    "auth/token/lookup-self": ("read",),
    "auth/token/renew-self": ("update",),
    "auth/token/revoke-self": ("update",),
    "sys/leases/renew": ("update",),
    "sys/leases/lookup": ("update",),
    "sys/renew": ("update",),
}
"""What Vault's built-in ``default`` policy grants every token (the parts used here)."""

_UNAUTHENTICATED = ("sys/health", "sys/seal-status")


_METHOD_CAPABILITIES: Mapping[str, tuple[str, ...]] = {
    "GET": ("read",),
    "LIST": ("list",),
    "DELETE": ("delete",),
    "POST": ("create", "update"),
    "PUT": ("create", "update"),
}
"""The ACL capabilities an HTTP method needs (one of them)."""


def _seconds(duration: float) -> int:
    """A granted duration in whole seconds, rounded (not floored: a TTL computed from clock
    readings is a hair short of what was granted)."""
    return max(round(duration), 0)


def _duration(value: Any) -> float:
    """A Vault duration parameter (seconds, or ``"90s"``, ``"5m"``, ``"1h"``); 0 when unset."""
    if value in (None, ""):
        return 0.0
    text = str(value).strip()
    units = {"s": 1, "m": 60, "h": 3600}
    if text[-1:] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it: no bodies, no tokens, no values."""

    method: str
    path: str
    """API path without ``/v1/`` and without the query string."""
    status: int
    accessor: str
    """Accessor of the calling token (``""`` when none): identifies, cannot authenticate."""
    role: str | None = None
    """For logins, the role asked for."""
    version: int | None = None
    """For KV v2 reads, the ``?version=`` asked for."""
    vault_namespace: str = ""
    """The ``X-Vault-Namespace`` header (Vault Enterprise namespaces), if any."""


@dataclass
class KubernetesRole:
    """A kubernetes auth role: who may log in, and what their token gets."""

    service_accounts: tuple[str, ...]
    namespaces: tuple[str, ...]
    policies: tuple[str, ...]
    ttl: float
    max_ttl: float


@dataclass
class DatabaseRole:
    """A database secrets engine role."""

    default_ttl: float
    max_ttl: float


@dataclass
class _Token:
    token: str
    accessor: str
    policies: tuple[str, ...]
    issued: float
    ttl: float
    expires: float
    max_expires: float
    renewable: bool
    meta: dict[str, str]
    revoked: bool = False

    def alive(self, now: float) -> bool:
        return not self.revoked and now < self.expires


@dataclass
class _Lease:
    lease_id: str
    path: str
    token: str
    issued: float
    last_renewal: float | None
    expires: float
    max_expires: float
    username: str
    password: str
    revoked: bool = False


@dataclass
class _Version:
    data: dict[str, Any] | None
    created: float
    deleted: float | None = None
    destroyed: bool = False


@dataclass
class _Fault:
    sealed: bool = False
    failing: bool = False  # answer 500 to everything
    delay: float = 0.0  # seconds to wait before answering (real time: for client timeouts)
    denied: list[str] = field(default_factory=list)


class _Reply(Exception):
    def __init__(self, status: int, body: Mapping[str, Any] | None = None) -> None:
        self.status = status
        self.body = body
        super().__init__(status)


def _error(status: int, *messages: str) -> _Reply:
    return _Reply(status, {"errors": list(messages)})


def _envelope(data: Any = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": None,
        "auth": None,
    }
    body.update(extra)
    return body


class EmulatedVault:
    """The emulated Vault's state and HTTP handlers; :meth:`start` serves it."""

    def __init__(
        self,
        *,
        token_reviewer: TokenReviewer | None = None,
        clock: Clock = time.time,
        mounts: Mapping[str, str] | None = None,
    ) -> None:
        self.token_reviewer = token_reviewer
        self.clock = clock
        self.mounts: dict[str, str] = dict(
            mounts or {"secret": "kv-v2", "kv": "kv-v1", "database": "database"}
        )
        """Mount path to engine: ``kv-v2``, ``kv-v1`` or ``database``."""
        self.auth_mounts: set[str] = {"kubernetes"}
        self.namespaces: set[str] = {"", "root"}
        self.requests: list[RequestRecord] = []
        self.fault = _Fault()
        self._lock = threading.RLock()
        self._kv2: dict[tuple[str, str], list[_Version]] = {}
        self._kv1: dict[tuple[str, str], dict[str, Any]] = {}
        self._roles: dict[tuple[str, str], KubernetesRole] = {}
        self._policies: dict[str, dict[str, tuple[str, ...]]] = {"default": dict(DEFAULT_POLICY)}
        self._db_roles: dict[tuple[str, str], DatabaseRole] = {}
        self._tokens: dict[str, _Token] = {}
        self._leases: dict[str, _Lease] = {}
        self.root_token = "hvs.root-" + secrets.token_hex(12)
        """A token with every capability, for seeding through the HTTP API."""
        now = clock()
        self._tokens[self.root_token] = _Token(
            self.root_token, "root", ("root",), now, 0, float("inf"), float("inf"), False, {}
        )
        self._runner: web.AppRunner | None = None
        self._site: web.BaseSite | None = None
        self._ssl: ssl.SSLContext | None = None
        self.port = 0

    # --- seeding ------------------------------------------------------------------------

    def put_kv(self, path: str, data: Mapping[str, Any], *, mount: str = "secret") -> int:
        """Write ``data`` at ``path`` (a new version for KV v2); returns the version (1 for v1)."""
        with self._lock:
            engine = self.mounts.setdefault(mount, "kv-v2")
            if engine == "kv-v1":
                self._kv1[(mount, path)] = dict(data)
                return 1
            versions = self._kv2.setdefault((mount, path), [])
            versions.append(_Version(dict(data), self.clock()))
            return len(versions)

    def delete_kv(self, path: str, *, mount: str = "secret", versions: Iterable[int] = ()) -> None:
        """Soft-delete versions (KV v2; default the latest) or the secret (KV v1)."""
        with self._lock:
            if self.mounts.get(mount) == "kv-v1":
                self._kv1.pop((mount, path), None)
                return
            stored = self._kv2.get((mount, path), [])
            for number in list(versions) or [len(stored)]:
                if 1 <= number <= len(stored):
                    stored[number - 1].deleted = self.clock()

    def destroy_kv(self, path: str, versions: Iterable[int], *, mount: str = "secret") -> None:
        """Destroy KV v2 versions for good."""
        with self._lock:
            stored = self._kv2.get((mount, path), [])
            for number in versions:
                if 1 <= number <= len(stored):
                    stored[number - 1].data = None
                    stored[number - 1].destroyed = True

    def add_policy(self, name: str, rules: Mapping[str, Iterable[str]]) -> None:
        """A policy: Vault ACL path (a trailing ``*`` is a prefix glob, ``+`` one segment) to
        capabilities (``read``, ``list``, ``create``, ``update``, ``delete``, ``sudo``,
        ``deny``)."""
        with self._lock:
            self._policies[name] = {path: tuple(caps) for path, caps in rules.items()}

    def add_role(
        self,
        name: str,
        *,
        service_accounts: Iterable[str],
        namespaces: Iterable[str],
        policies: Iterable[str],
        ttl: float = 3600,
        max_ttl: float = 86400,
        mount: str = "kubernetes",
    ) -> None:
        """A kubernetes auth role bound to ServiceAccount names and namespaces (``*`` = any)."""
        with self._lock:
            self.auth_mounts.add(mount)
            self._roles[(mount, name)] = KubernetesRole(
                tuple(service_accounts), tuple(namespaces), tuple(policies), ttl, max_ttl
            )

    def add_database_role(
        self,
        name: str,
        *,
        default_ttl: float = 3600,
        max_ttl: float = 86400,
        mount: str = "database",
    ) -> None:
        """A database role whose credentials carry leases of ``default_ttl`` up to ``max_ttl``."""
        with self._lock:
            self.mounts.setdefault(mount, "database")
            self._db_roles[(mount, name)] = DatabaseRole(default_ttl, max_ttl)

    def add_namespace(self, name: str) -> None:
        """Serve requests sent with ``X-Vault-Namespace: name`` (from the same state)."""
        self.namespaces.add(name.strip("/"))

    def revoke_accessor(self, accessor: str) -> None:
        """Revoke the token with ``accessor`` (as ``auth/token/revoke-accessor`` does)."""
        with self._lock:
            for entry in self._tokens.values():
                if entry.accessor == accessor:
                    entry.revoked = True

    # --- faults -------------------------------------------------------------------------

    def seal(self) -> None:
        """Answer 503 "Vault is sealed" to everything but the health endpoints."""
        self.fault.sealed = True

    def unseal(self) -> None:
        """Undo :meth:`seal`."""
        self.fault.sealed = False

    def fail(self, failing: bool = True) -> None:
        """Answer 500 to every request (``False`` to stop)."""
        self.fault.failing = failing

    def slow_down(self, seconds: float) -> None:
        """Wait ``seconds`` (real time) before answering each request; 0 to stop."""
        self.fault.delay = seconds

    def deny(self, glob: str) -> None:
        """Answer 403 to any request whose path matches ``glob`` (shell-style, ``*`` crossing
        ``/``), whatever the token."""
        self.fault.denied.append(glob)

    def allow(self) -> None:
        """Drop every forced denial."""
        self.fault.denied.clear()

    async def refuse_connections(self) -> None:
        """Stop listening: clients get "connection refused" until :meth:`accept_connections`."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        # Kept-alive connections would still answer: drop them as a dead server would.
        server = self._runner.server if self._runner is not None else None
        for connection in server.connections if server is not None else ():
            connection.force_close()

    async def accept_connections(self) -> None:
        """Listen again, on the same port."""
        if self._site is None and self._runner is not None:
            self._site = web.SockSite(self._runner, self._bind(self.port), ssl_context=self._ssl)
            await self._site.start()

    # --- inspection ---------------------------------------------------------------------

    def count(self, method: str | None = None, path: str | None = None, **match: Any) -> int:
        """How many recorded requests match (``path`` may be a shell-style glob)."""
        return sum(
            1
            for r in list(self.requests)
            if (method is None or r.method == method)
            and (path is None or fnmatch.fnmatchcase(r.path, path))
            and all(getattr(r, k) == v for k, v in match.items())
        )

    def logins(self, role: str | None = None) -> int:
        """Successful logins (for ``role``, or any)."""
        return sum(
            1
            for r in list(self.requests)
            if r.path.startswith("auth/")
            and r.path.endswith("/login")
            and r.status == 200
            and (role is None or r.role == role)
        )

    def has_data(self, path: str, *, mount: str = "secret") -> bool:
        """Whether a KV secret exists at ``path`` (any version, for KV v2)."""
        with self._lock:
            return (mount, path) in self._kv1 or bool(self._kv2.get((mount, path)))

    def credentials_valid(self, username: str, password: str) -> bool:
        """Whether database credentials still work (their lease is alive)."""
        with self._lock:
            now = self.clock()
            return any(
                lease.username == username
                and lease.password == password
                and self._lease_alive(lease, now)
                for lease in self._leases.values()
            )

    def active_leases(self, prefix: str = "") -> list[str]:
        """IDs of live leases starting with ``prefix``."""
        with self._lock:
            now = self.clock()
            return [
                lease_id
                for lease_id, lease in self._leases.items()
                if lease_id.startswith(prefix) and self._lease_alive(lease, now)
            ]

    # --- serving ------------------------------------------------------------------------

    @property
    def address(self) -> str:
        """``http://127.0.0.1:<port>`` (``https`` when serving TLS)."""
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def make_app(self) -> web.Application:
        """The aiohttp application (for callers serving it themselves, e.g. over TLS)."""
        app = web.Application()
        app.router.add_route("*", "/v1/{path:.*}", self._handle)
        return app

    @staticmethod
    def _bind(port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        return sock

    async def start(self, *, port: int = 0, ssl_context: ssl.SSLContext | None = None) -> str:
        """Serve on 127.0.0.1 (``port`` 0 picks a free one); returns the address."""
        self._ssl = ssl_context
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        sock = self._bind(port)
        self.port = sock.getsockname()[1]
        self._site = web.SockSite(self._runner, sock, ssl_context=ssl_context)
        await self._site.start()
        return self.address

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = self._site = None

    # --- request handling ---------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"].strip("/")
        method = request.method.upper()
        if method == "GET" and request.query.get("list") in {"true", "1"}:
            method = "LIST"
        token = request.headers.get("X-Vault-Token", "")
        record: dict[str, Any] = {
            "method": method,
            "path": path,
            "accessor": "",
            "vault_namespace": request.headers.get("X-Vault-Namespace", ""),
        }
        if self.fault.delay:
            await asyncio.sleep(self.fault.delay)
        try:
            body = await self._body(request)
            status, payload = await self._dispatch(method, path, token, body, request, record)
        except _Reply as reply:
            status, payload = reply.status, reply.body
        with self._lock:
            self.requests.append(RequestRecord(status=status, **record))
        if payload is None:
            return web.Response(status=status)
        # Exactly "application/json", as Vault sends it (hvac parses errors only then).
        encoded = json.dumps(payload).encode("utf-8")
        return web.Response(body=encoded, status=status, content_type="application/json")

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        try:
            parsed = await request.json()
        except ValueError:
            raise _error(400, "failed to parse JSON input") from None
        return parsed if isinstance(parsed, dict) else {}

    async def _dispatch(
        self,
        method: str,
        path: str,
        token: str,
        body: dict[str, Any],
        request: web.Request,
        record: dict[str, Any],
    ) -> tuple[int, Any]:
        if self.fault.failing:
            raise _error(500, "internal error")
        if path == "sys/health":
            return self._health()
        if path == "sys/seal-status":
            return 200, self._seal_status()
        if self.fault.sealed:
            raise _error(503, "Vault is sealed")
        if any(fnmatch.fnmatchcase(path, g) for g in self.fault.denied):
            raise _error(403, "permission denied")
        if record["vault_namespace"].strip("/") not in self.namespaces:
            raise _error(404, "namespace not found")

        parts = path.split("/")
        if parts[0] == "auth" and len(parts) == 3 and parts[2] == "login":
            record["role"] = str(body.get("role", ""))
            if parts[1] not in self.auth_mounts:
                # An unauthenticated call to no route: Vault answers as for a missing token.
                raise _error(403, "permission denied")
            return 200, await self._login(parts[1], body)

        with self._lock:
            entry = self._authenticate(token)
            record["accessor"] = entry.accessor
            # Vault checks the ACL before routing: no mount is revealed to a token that may
            # not use the path.
            self._require(entry, path, *_METHOD_CAPABILITIES[method])
            if path.startswith("auth/token/"):
                return self._token_endpoint(method, path.removeprefix("auth/token/"), entry, body)
            if path.startswith("sys/leases/") or path == "sys/renew":
                return self._lease_endpoint(path, entry, body)
            mount, engine, rest = self._route(path)
            if engine == "kv-v2":
                version = request.query.get("version")
                if version is not None and version.isdigit():
                    record["version"] = int(version)
                return self._kv2_endpoint(method, path, mount, rest, entry, body, version)
            if engine == "kv-v1":
                return self._kv1_endpoint(method, path, mount, rest, entry, body)
            return self._database_endpoint(method, path, mount, rest, entry)

    def _health(self) -> tuple[int, Any]:
        body = {
            "initialized": True,
            "sealed": self.fault.sealed,
            "standby": False,
            "version": "1.17.0-mirage-emulated",
            "server_time_utc": int(self.clock()),
        }
        return (503 if self.fault.sealed else 200), body

    def _seal_status(self) -> dict[str, Any]:
        return {
            "type": "shamir",
            "initialized": True,
            "sealed": self.fault.sealed,
            "t": 1,
            "n": 1,
            "progress": 0,
            "version": "1.17.0-mirage-emulated",
        }

    def _route(self, path: str) -> tuple[str, str, str]:
        for mount in sorted(self.mounts, key=len, reverse=True):
            if path.startswith(mount + "/"):
                return mount, self.mounts[mount], path[len(mount) + 1 :]
        raise _error(404, f"no handler for route '{path}'. route entry not found.")

    # --- auth ---------------------------------------------------------------------------

    def _authenticate(self, token: str) -> _Token:
        entry = self._tokens.get(token)
        if entry is None or not entry.alive(self.clock()):
            raise _error(403, "permission denied")
        return entry

    def _allowed(self, entry: _Token, path: str, *wanted: str) -> bool:
        if "root" in entry.policies:
            return True
        policies = (self._policies.get(name, {}) for name in (*entry.policies, "default"))
        granted = vault_acl.capabilities(policies, path)
        return any(c in granted for c in wanted)

    def _require(self, entry: _Token, path: str, *capabilities: str) -> None:
        if not self._allowed(entry, path, *capabilities):
            raise _error(403, "1 error occurred:\n\t* permission denied\n\n")

    def _new_token(
        self, policies: tuple[str, ...], ttl: float, max_ttl: float, meta: dict[str, str]
    ) -> _Token:
        now = self.clock()
        entry = _Token(
            token="hvs." + secrets.token_urlsafe(24),
            accessor=secrets.token_urlsafe(18),
            policies=policies,
            issued=now,
            ttl=ttl,
            expires=now + min(ttl, max_ttl),
            max_expires=now + max_ttl,
            renewable=True,
            meta=meta,
        )
        self._tokens[entry.token] = entry
        return entry

    async def _login(self, mount: str, body: dict[str, Any]) -> dict[str, Any]:
        role_name, jwt = str(body.get("role", "")), str(body.get("jwt", ""))
        with self._lock:
            role = self._roles.get((mount, role_name))
        if role is None:
            raise _error(400, f'invalid role name "{role_name}"')
        if not jwt:
            raise _error(400, "missing jwt")
        identity = await self.token_reviewer(jwt) if self.token_reviewer else None
        if identity is None:
            raise _error(403, "permission denied")
        namespace, service_account = identity
        if "*" not in role.service_accounts and service_account not in role.service_accounts:
            raise _error(403, "service account name not authorized")
        if "*" not in role.namespaces and namespace not in role.namespaces:
            raise _error(403, "namespace not authorized")
        meta = {
            "role": role_name,
            "service_account_name": service_account,
            "service_account_namespace": namespace,
        }
        with self._lock:
            entry = self._new_token(role.policies, role.ttl, role.max_ttl, meta)
        return _envelope(auth=self._auth_block(entry))

    def _auth_block(self, entry: _Token, granted: float | None = None) -> dict[str, Any]:
        return {
            "client_token": entry.token,
            "accessor": entry.accessor,
            "policies": sorted({*entry.policies, "default"}),
            "token_policies": sorted({*entry.policies, "default"}),
            "metadata": dict(entry.meta),
            "lease_duration": _seconds(
                min(entry.ttl, entry.max_expires - entry.issued) if granted is None else granted
            ),
            "renewable": entry.renewable,
            "entity_id": "",
            "token_type": "service",
            "orphan": True,
        }

    def _token_endpoint(
        self, method: str, action: str, entry: _Token, body: dict[str, Any]
    ) -> tuple[int, Any]:
        now = self.clock()
        if action == "lookup-self":
            data = {
                "accessor": entry.accessor,
                "creation_time": int(entry.issued),
                "creation_ttl": int(entry.ttl),
                "expire_time": None if entry.expires == float("inf") else _iso(entry.expires),
                "policies": sorted({*entry.policies, "default"}),
                "meta": dict(entry.meta),
                "renewable": entry.renewable,
                "ttl": 0 if entry.expires == float("inf") else int(entry.expires - now),
                "type": "service",
            }
            return 200, _envelope(data)
        if action == "renew-self":
            if not entry.renewable:
                raise _error(400, "token is not renewable")
            increment = _duration(body.get("increment")) or entry.ttl
            entry.expires = min(now + increment, entry.max_expires)
            return 200, _envelope(auth=self._auth_block(entry, entry.expires - now))
        if action == "revoke-self":
            entry.revoked = True
            return 204, None
        raise _error(404, f"no handler for route 'auth/token/{action}'")

    # --- leases -------------------------------------------------------------------------

    def _lease_alive(self, lease: _Lease, now: float) -> bool:
        # A lease dies with the token that created it, as in Vault.
        parent = self._tokens.get(lease.token)
        return not lease.revoked and now < lease.expires and (parent is None or parent.alive(now))

    def _lease_endpoint(self, path: str, entry: _Token, body: dict[str, Any]) -> tuple[int, Any]:
        action = "renew" if path == "sys/renew" else path.split("/")[2]
        # The lease ID comes in the body, or (revoke/lookup) as the rest of the URL.
        lease_id = str(body.get("lease_id") or "/".join(path.split("/")[3:]))
        now = self.clock()
        lease = self._leases.get(lease_id)
        if action == "revoke":
            # Revoking a lease Vault does not know (any more) succeeds, as in Vault.
            if lease is not None:
                lease.revoked = True
            return 204, None
        if lease is None or not self._lease_alive(lease, now):
            raise _error(400, "lease not found" if action == "renew" else "invalid lease")
        if action == "lookup":
            data = {
                "id": lease.lease_id,
                "issue_time": _iso(lease.issued),
                "expire_time": _iso(lease.expires),
                "last_renewal": _iso(lease.last_renewal) if lease.last_renewal else None,
                "renewable": True,
                "ttl": int(lease.expires - now),
            }
            return 200, _envelope(data)
        if action == "renew":
            role = self._db_roles.get(self._lease_role(lease))
            increment = _duration(body.get("increment")) or (role.default_ttl if role else 3600)
            lease.expires = min(now + increment, lease.max_expires)
            lease.last_renewal = now
            warnings = None
            if now + increment > lease.max_expires:
                warnings = [
                    f'TTL of "{_seconds(increment)}s" exceeded the effective max_ttl of '
                    f'"{_seconds(lease.max_expires - lease.issued)}s"; TTL value is capped '
                    "accordingly"
                ]
            return 200, {
                **_envelope(None),
                "lease_id": lease.lease_id,
                "renewable": True,
                "lease_duration": _seconds(lease.expires - now),
                "warnings": warnings,
            }
        raise _error(404, f"no handler for route '{path}'")

    @staticmethod
    def _lease_role(lease: _Lease) -> tuple[str, str]:
        mount, _, rest = lease.path.partition("/creds/")
        return mount, rest

    # --- engines ------------------------------------------------------------------------

    def _kv2_endpoint(
        self,
        method: str,
        path: str,
        mount: str,
        rest: str,
        entry: _Token,
        body: dict[str, Any],
        version: str | None,
    ) -> tuple[int, Any]:
        kind, _, key = rest.partition("/")
        now = self.clock()
        stored = self._kv2.get((mount, key), [])
        if kind == "data" and method == "GET":
            if not stored:
                raise _Reply(404, {"errors": []})
            number = int(version) if version and version != "0" else len(stored)
            if not 1 <= number <= len(stored):
                raise _Reply(404, {"errors": []})
            found = stored[number - 1]
            metadata = self._version_meta(found, number)
            if found.deleted is not None or found.destroyed:
                raise _Reply(404, _envelope({"data": None, "metadata": metadata}))
            return 200, _envelope({"data": dict(found.data or {}), "metadata": metadata})
        if kind == "data" and method in {"POST", "PUT"}:
            stored = self._kv2.setdefault((mount, key), [])
            stored.append(_Version(dict(body.get("data") or {}), now))
            return 200, _envelope(self._version_meta(stored[-1], len(stored)))
        if kind == "data" and method == "DELETE":
            if stored:
                stored[-1].deleted = now
            return 204, None
        if kind == "metadata" and method == "GET":
            if not stored:
                raise _Reply(404, {"errors": []})
            return 200, _envelope(
                {
                    "current_version": len(stored),
                    "oldest_version": 1,
                    "created_time": _iso(stored[0].created),
                    "updated_time": _iso(stored[-1].created),
                    "max_versions": 0,
                    "cas_required": False,
                    "delete_version_after": "0s",
                    "custom_metadata": None,
                    "versions": {
                        str(i + 1): self._version_meta(v, i + 1) for i, v in enumerate(stored)
                    },
                }
            )
        if kind == "metadata" and method == "LIST":
            return self._list(key, [k for (m, k) in self._kv2 if m == mount])
        if kind in {"delete", "undelete", "destroy"} and method in {"POST", "PUT"}:
            for number in body.get("versions") or []:
                if 1 <= int(number) <= len(stored):
                    target = stored[int(number) - 1]
                    if kind == "delete":
                        target.deleted = now
                    elif kind == "undelete" and not target.destroyed:
                        target.deleted = None
                    elif kind == "destroy":
                        target.data, target.destroyed = None, True
            return 204, None
        # A KV v1 style path on a v2 mount: Vault answers 404 with a hint.
        raise _Reply(
            404,
            _envelope(
                None,
                warnings=[
                    "Invalid path for a versioned K/V secrets engine. See the API docs for the "
                    "appropriate API endpoints to use."
                ],
            ),
        )

    @staticmethod
    def _version_meta(found: _Version, number: int) -> dict[str, Any]:
        return {
            "created_time": _iso(found.created),
            "custom_metadata": None,
            "deletion_time": _iso(found.deleted) if found.deleted is not None else "",
            "destroyed": found.destroyed,
            "version": number,
        }

    def _list(self, prefix: str, keys: Iterable[str]) -> tuple[int, Any]:
        base = prefix.rstrip("/") + "/" if prefix else ""
        children = sorted(
            {
                k[len(base) :].split("/")[0] + ("/" if "/" in k[len(base) :] else "")
                for k in keys
                if k.startswith(base)
            }
        )
        if not children:
            raise _Reply(404, {"errors": []})
        return 200, _envelope({"keys": children})

    def _kv1_endpoint(
        self, method: str, path: str, mount: str, key: str, entry: _Token, body: dict[str, Any]
    ) -> tuple[int, Any]:
        if method == "GET":
            found = self._kv1.get((mount, key))
            if found is None:
                raise _Reply(404, {"errors": []})
            return 200, _envelope(dict(found), lease_duration=2764800)
        if method in {"POST", "PUT"}:
            self._kv1[(mount, key)] = dict(body)
            return 204, None
        if method == "DELETE":
            self._kv1.pop((mount, key), None)
            return 204, None
        if method == "LIST":
            return self._list(key, [k for (m, k) in self._kv1 if m == mount])
        raise _error(405, "unsupported operation")

    def _database_endpoint(
        self, method: str, path: str, mount: str, rest: str, entry: _Token
    ) -> tuple[int, Any]:
        kind, _, name = rest.partition("/")
        if kind != "creds" or method != "GET":
            raise _error(404, f"no handler for route '{path}'. route entry not found.")
        role = self._db_roles.get((mount, name))
        if role is None:
            raise _error(400, f"unknown role: {name}")
        now = self.clock()
        lease = _Lease(
            lease_id=f"{mount}/creds/{name}/{secrets.token_urlsafe(18)}",
            path=f"{mount}/creds/{name}",
            token=entry.token,
            issued=now,
            last_renewal=None,
            expires=now + min(role.default_ttl, role.max_ttl),
            max_expires=now + role.max_ttl,
            username=f"v-k8s-{name}-{secrets.token_hex(6)}",
            password=secrets.token_urlsafe(18),
        )
        self._leases[lease.lease_id] = lease
        return 200, {
            **_envelope({"username": lease.username, "password": lease.password}),
            "lease_id": lease.lease_id,
            "renewable": True,
            "lease_duration": _seconds(min(role.default_ttl, role.max_ttl)),
        }


class VaultThread:
    """Run an :class:`EmulatedVault` on its own event loop in a thread, for sync callers.

    Use as a context manager; :attr:`vault` is the emulator (its seeding methods are
    thread-safe) and :meth:`run` executes one of its coroutines on the server's loop.
    """

    def __init__(self, vault: EmulatedVault | None = None) -> None:
        self.vault = vault or EmulatedVault()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.address = ""

    def run(self, coroutine: Awaitable[Any], timeout: float = 10) -> Any:
        """Run ``coroutine`` on the server's loop and return its result."""

        async def wrapper() -> Any:
            return await coroutine

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(timeout)

    def __enter__(self) -> VaultThread:
        self._thread.start()
        self.address = self.run(self.vault.start())
        return self

    def __exit__(self, *_: object) -> None:
        try:
            self.run(self.vault.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()


def static_reviewer(identities: Mapping[str, tuple[str, str]]) -> TokenReviewer:
    """A token reviewer backed by a fixed map of JWT to ``(namespace, service_account)``."""

    async def review(token: str) -> tuple[str, str] | None:
        return identities.get(token)

    return review


def apiserver_reviewer(apiserver: Any, *, audience: str = "vault") -> TokenReviewer:
    """A token reviewer backed by the emulated Kubernetes API: a token is accepted when the
    API server's TokenReview authenticates it for ``audience`` (as Vault's kubernetes auth
    does with a role's ``audience``). ``apiserver`` needs ``review_token(token, audiences)``
    answering ``(authenticated, user, audiences)``."""

    async def review(token: str) -> tuple[str, str] | None:
        ok, user, _ = apiserver.review_token(token, [audience])
        if not ok:
            return None
        # system:serviceaccount:<namespace>:<name>
        parts = str(user.get("username", "")).split(":")
        if len(parts) != 4 or parts[:2] != ["system", "serviceaccount"]:
            return None
        return parts[2], parts[3]

    return review
