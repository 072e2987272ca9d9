"""The two Vaults the tests run against, set up alike: the emulated Vault and a real one.

:class:`EmulatedBackend` seeds :class:`~mirage_sandbox.vault.EmulatedVault` through
its Python API and counts calls from its request log. :class:`RealBackend` seeds a real Vault
(OpenBao here, or the one ``MIRAGE_E2E_VAULT_ADDR`` names) through ``hvac`` with an admin token,
as the Pulumi stacks would, and counts calls from its audit log when it has one.

:func:`configure_real_vault` mounts what the operator reads (KV v2 at ``secret``, KV v1 at
``kv``, the database engine at ``database`` connected to a real PostgreSQL) and points the
kubernetes auth at the (emulated) Kubernetes API: its TokenReview, and the token keys it
publishes at ``/openid/v1/jwks``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Required, TypedDict, Unpack

import hvac
import hvac.exceptions
import pytest

from mirage_sandbox.vault import EmulatedVault
from tests.realservers import AuditEntry, OpenBao, Postgres, jwks_pem_keys, self_signed_ca_pem

POSTGRES_CONNECTION = "postgres"
"""The database engine's connection name."""

CREATION = [
    """CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';""",
    """GRANT CONNECT ON DATABASE postgres TO "{{name}}";""",
]
"""What a database role's credentials are: a login role valid until its lease ends. Renewal and
revocation use the PostgreSQL plugin's defaults (``ALTER ROLE ... VALID UNTIL``, then dropping
the role)."""


class AuthRole(TypedDict, total=False):
    """A kubernetes auth role as both Vaults take it: ``ttl`` and ``max_ttl`` (seconds) default
    to 3600 and 86400, ``audience`` to ``vault``."""

    service_accounts: Required[Sequence[str]]
    namespaces: Required[Sequence[str]]
    policies: Required[Sequence[str]]
    ttl: int
    max_ttl: int
    audience: str


class VaultBackend(Protocol):
    """What the tests need from either Vault."""

    name: str
    address: str

    def put(self, path: str, data: Mapping[str, Any], *, mount: str = "secret") -> int: ...

    def delete_latest(self, path: str, *, mount: str = "secret") -> None: ...

    def put_v1(self, path: str, data: Mapping[str, Any], *, mount: str = "kv") -> None: ...

    def add_policy(self, name: str, rules: Mapping[str, Sequence[str]]) -> None: ...

    def add_role(self, name: str, **role: Unpack[AuthRole]) -> None: ...

    def add_database_role(self, name: str, *, default_ttl: int, max_ttl: int) -> None: ...

    def reads(self, path: str) -> int: ...

    def logins(self, role: str) -> int: ...

    def denials(self, path: str) -> int: ...

    def revoke_reader(self, path: str) -> str: ...

    def lease_alive(self, lease_id: str) -> bool: ...


@dataclass
class EmulatedBackend:
    """The emulated Vault."""

    vault: EmulatedVault
    address: str
    name: str = "emulated"

    def put(self, path: str, data: Mapping[str, Any], *, mount: str = "secret") -> int:
        """Write a new KV v2 version; its number."""
        return self.vault.put_kv(path, data, mount=mount)

    def delete_latest(self, path: str, *, mount: str = "secret") -> None:
        """Soft-delete the latest KV v2 version."""
        self.vault.delete_kv(path, mount=mount)

    def put_v1(self, path: str, data: Mapping[str, Any], *, mount: str = "kv") -> None:
        """Write a KV v1 secret."""
        self.vault.mounts.setdefault(mount, "kv-v1")
        self.vault.put_kv(path, data, mount=mount)

    def add_policy(self, name: str, rules: Mapping[str, Sequence[str]]) -> None:
        """A policy: ACL path to capabilities."""
        self.vault.add_policy(name, rules)

    def add_role(self, name: str, **role: Unpack[AuthRole]) -> None:
        """A kubernetes auth role (the emulator's reviewer checks the ``vault`` audience; its
        TTLs default as :class:`AuthRole` says)."""
        settings = dict(role)
        assert settings.pop("audience", "vault") == "vault"
        self.vault.add_role(name, **settings)

    def add_database_role(self, name: str, *, default_ttl: int, max_ttl: int) -> None:
        """A database role."""
        self.vault.add_database_role(name, default_ttl=default_ttl, max_ttl=max_ttl)

    def reads(self, path: str) -> int:
        """Reads of ``path`` (API path, e.g. ``secret/data/ns/x``) so far, any outcome."""
        return self.vault.count("GET", path)

    def logins(self, role: str) -> int:
        """Successful logins with ``role`` so far."""
        return self.vault.logins(role=role)

    def denials(self, path: str) -> int:
        """Calls to ``path`` refused with 403 so far."""
        return self.vault.count(path=path, status=403)

    def revoke_reader(self, path: str) -> str:
        """Revoke the token that last read ``path``; its accessor."""
        accessor = next(r.accessor for r in reversed(self.vault.requests) if r.path == path)
        self.vault.revoke_accessor(accessor)
        return accessor

    def lease_alive(self, lease_id: str) -> bool:
        """Whether the lease is still valid."""
        return lease_id in self.vault.active_leases()


@dataclass
class RealBackend:
    """A real Vault (OpenBao), seeded with an admin token; counted by its audit log."""

    client: hvac.Client
    address: str
    server: OpenBao | None = None
    """The OpenBao process when the tests started it (faults, audit log); else ``None``."""
    name: str = "openbao"
    _audit: Callable[[], list[AuditEntry]] | None = field(default=None, repr=False)

    def require_server(self) -> OpenBao:
        """The OpenBao process; skips with a Vault the tests did not start."""
        if self.server is None:
            pytest.skip("needs the OpenBao server the tests started (faults, audit log)")
        return self.server

    def put(self, path: str, data: Mapping[str, Any], *, mount: str = "secret") -> int:
        """Write a new KV v2 version; its number."""
        answer = self.client.secrets.kv.v2.create_or_update_secret(
            path=path, secret=dict(data), mount_point=mount
        )
        return int(answer["data"]["version"])

    def delete_latest(self, path: str, *, mount: str = "secret") -> None:
        """Soft-delete the latest KV v2 version."""
        self.client.secrets.kv.v2.delete_latest_version_of_secret(path=path, mount_point=mount)

    def put_v1(self, path: str, data: Mapping[str, Any], *, mount: str = "kv") -> None:
        """Write a KV v1 secret."""
        self.client.secrets.kv.v1.create_or_update_secret(
            path=path, secret=dict(data), mount_point=mount
        )

    def add_policy(self, name: str, rules: Mapping[str, Sequence[str]]) -> None:
        """A policy: ACL path to capabilities, written as HCL."""
        policy = "\n".join(
            f"path {json.dumps(path)} {{ capabilities = {json.dumps(list(caps))} }}"
            for path, caps in rules.items()
        )
        self.client.sys.create_or_update_policy(name=name, policy=policy)

    def add_role(self, name: str, **role: Unpack[AuthRole]) -> None:
        """A kubernetes auth role."""
        self.client.auth.kubernetes.create_role(
            name=name,
            bound_service_account_names=list(role["service_accounts"]),
            bound_service_account_namespaces=list(role["namespaces"]),
            policies=list(role["policies"]),
            ttl=f"{role.get('ttl', 3600)}s",
            max_ttl=f"{role.get('max_ttl', 86400)}s",
            audience=role.get("audience", "vault"),
        )

    def add_database_role(self, name: str, *, default_ttl: int, max_ttl: int) -> None:
        """A database role whose credentials are PostgreSQL login roles."""
        self.client.secrets.database.create_role(
            name=name,
            db_name=POSTGRES_CONNECTION,
            creation_statements=CREATION,
            default_ttl=f"{default_ttl}s",
            max_ttl=f"{max_ttl}s",
        )

    def _entries(self) -> list[AuditEntry]:
        if self._audit is None:
            pytest.skip("needs the Vault's audit log (set MIRAGE_E2E_VAULT_AUDIT_LOG)")
        return self._audit()

    def reads(self, path: str) -> int:
        """Reads of ``path`` so far, any outcome (audit log)."""
        return sum(1 for e in self._entries() if e.operation == "read" and e.path == path)

    def logins(self, role: str) -> int:
        """Successful logins with ``role`` so far (audit log)."""
        return sum(
            1
            for e in self._entries()
            if e.path.endswith("/login") and not e.error and e.login_role == role
        )

    def denials(self, path: str) -> int:
        """Calls to ``path`` refused as permission denied so far (audit log)."""
        return sum(1 for e in self._entries() if e.path == path and "permission denied" in e.error)

    def revoke_reader(self, path: str) -> str:
        """Revoke the token that last read ``path`` (found in the audit log); its accessor."""
        accessor = next(e.accessor for e in reversed(self._entries()) if e.path == path)
        self.client.auth.token.revoke_accessor(accessor)
        return accessor

    def lease_alive(self, lease_id: str) -> bool:
        """Whether the lease is still valid (``sys/leases/lookup``)."""
        try:
            self.client.sys.read_lease(lease_id=lease_id)
        except hvac.exceptions.InvalidRequest:
            return False
        return True


def configure_real_vault(
    client: hvac.Client, *, kubernetes_url: str, reviewer_token: str, postgres: Postgres | None
) -> None:
    """Mount and configure what the operator reads, on a fresh real Vault (idempotent)."""
    mounts = client.sys.list_mounted_secrets_engines()["data"]
    if "secret/" not in mounts:
        client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    if "kv/" not in mounts:
        client.sys.enable_secrets_engine("kv", path="kv", options={"version": "1"})
    if "kubernetes/" not in client.sys.list_auth_methods()["data"]:
        client.sys.enable_auth_method("kubernetes")
    # hvac's configure() refuses PEM public keys (it expects certificates): write it plainly.
    client.write(
        "auth/kubernetes/config",
        kubernetes_host=kubernetes_url,
        token_reviewer_jwt=reviewer_token,
        disable_local_ca_jwt=True,
        kubernetes_ca_cert=self_signed_ca_pem(),
        pem_keys=jwks_pem_keys(kubernetes_url),
    )
    if postgres is not None:
        if "database/" not in mounts:
            client.sys.enable_secrets_engine("database", path="database")
        client.secrets.database.configure(
            name=POSTGRES_CONNECTION,
            plugin_name="postgresql-database-plugin",
            connection_url=(
                f"postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{postgres.port}"
                "/postgres?sslmode=disable"
            ),
            allowed_roles="*",
            username="postgres",
            password=postgres.password,
        )
