"""Vault for the e2e tests: the emulated Vault, or a real one (OpenBao started by the tests, or
the Vault ``MIRAGE_E2E_VAULT_ADDR`` names).

Per test namespace, :meth:`VaultAdmin.add_tenant` does what the Pulumi stacks do for a tenant:
the ServiceAccount ``mirage-vault`` in the namespace, the tenant policy (reading only the
namespace's own KV paths and database roles), the kubernetes auth role ``mirage-<namespace>``
bound to that ServiceAccount, and the database roles ``<namespace>.app`` and
``<namespace>.long`` (short and longer leases). Calls are counted from
the emulator's request log or the real server's audit log, so the same assertions hold on both.
Faults are real on OpenBao (seal and unseal, a revoked token); tests that need the emulator's
fault injection call :meth:`VaultAdmin.require_emulator`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from mirage_operator import tenancy
from mirage_sandbox.tenants import STANDARD_MOUNTS, tenant_policy
from mirage_sandbox.vault import EmulatedVault
from tests.e2e.kube import Kube
from tests.realservers import Postgres
from tests.vaultbackends import EmulatedBackend, RealBackend, VaultBackend

SERVICE_ACCOUNT = tenancy.SERVICE_ACCOUNT
DB_TTL = 10
"""Seconds a database lease lasts (renewed at two thirds): short, so that renewals happen
within a test."""
DB_MAX_TTL = 60
LONG_DB_TTL = 30
"""Seconds a lease of the role ``<namespace>.long`` lasts: longer than the operator process
takes to stop and start again on a loaded 2-core machine (seen: 12 s), for the tests that
restart it with a lease in flight."""


@dataclass
class VaultAdmin:
    """Seeds, counts and breaks one Vault for the tests."""

    kube: Kube
    backend: VaultBackend
    postgres: Postgres | None = None
    """The PostgreSQL behind a real Vault's database engine, when the tests started it."""

    @property
    def address(self) -> str:
        """Where the operator reaches this Vault."""
        return self.backend.address

    @property
    def name(self) -> str:
        """``emulated`` or ``openbao``."""
        return self.backend.name

    @property
    def emulator(self) -> EmulatedVault | None:
        """The emulated Vault, if this is it."""
        return self.backend.vault if isinstance(self.backend, EmulatedBackend) else None

    def require_emulator(self) -> EmulatedVault:
        """The emulated Vault; skips with a real one (fault injection it cannot do)."""
        if self.emulator is None:
            pytest.skip("needs the emulated Vault's fault injection")
        return self.emulator

    def require_postgres(self) -> Postgres:
        """The PostgreSQL behind a real Vault; skips when there is none the tests know."""
        if self.postgres is None:
            pytest.skip("needs the PostgreSQL the tests started")
        return self.postgres

    def add_tenant(self, namespace: str) -> None:
        """Make ``namespace`` a Vault tenant, as the Pulumi stacks do."""
        self.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace},
            }
        )
        policy = tenancy.vault_policy_name(namespace)
        self.backend.add_policy(policy, tenant_policy(namespace, STANDARD_MOUNTS))
        self.backend.add_role(
            tenancy.vault_role(namespace),
            service_accounts=[SERVICE_ACCOUNT],
            namespaces=[namespace],
            policies=[policy],
        )
        if self.emulator is not None or self.postgres is not None:
            for role, ttl in (("app", DB_TTL), ("long", LONG_DB_TTL)):
                self.backend.add_database_role(
                    f"{namespace}.{role}", default_ttl=ttl, max_ttl=DB_MAX_TTL
                )

    def put(self, path: str, data: Mapping[str, Any], *, mount: str = "secret") -> None:
        """Write ``data`` at ``path`` of a KV v2 mount (a new version)."""
        self.backend.put(path, data, mount=mount)

    def reads(self, path: str) -> int:
        """KV v2 reads of ``path`` (under ``secret``) so far."""
        return self.backend.reads(f"secret/data/{path}")

    def logins(self, role: str) -> int:
        """Successful logins with ``role`` so far."""
        return self.backend.logins(role)

    def denials(self, path: str) -> int:
        """KV v2 reads of ``path`` refused so far."""
        return self.backend.denials(f"secret/data/{path}")

    def seal(self) -> None:
        """Seal Vault (the real server's own seal, or the emulator's)."""
        if isinstance(self.backend, RealBackend):
            self.backend.require_server().seal()
        else:
            self.require_emulator().seal()

    def unseal(self) -> None:
        """Undo :meth:`seal`."""
        if isinstance(self.backend, RealBackend):
            self.backend.require_server().unseal()
        else:
            self.require_emulator().unseal()

    def restart(self, while_down: Callable[[], None]) -> None:
        """Stop the real server, call ``while_down``, start it again (unsealed: state kept).
        Real Vault only: the emulator's connection faults are ``tests/e2e/test_faults.py``'s."""
        assert isinstance(self.backend, RealBackend), "stop and start is a real server's fault"
        server = self.backend.require_server()
        server.stop()
        try:
            while_down()
        finally:
            server.start()

    def revoke_token_of(self, path: str) -> str:
        """Revoke, behind the operator's back, the token that last read ``path``; its accessor."""
        return self.backend.revoke_reader(f"secret/data/{path}")

    def lease_alive(self, lease_id: str) -> bool:
        """Whether Vault still holds the lease."""
        return self.backend.lease_alive(lease_id)

    def credentials_work(self, username: str, password: str) -> bool:
        """Whether database credentials log in: a real driver connection to PostgreSQL behind
        a real Vault, the lease's liveness in the emulator."""
        if self.postgres is not None:
            return self.postgres.can_login(username, password)
        return self.require_emulator().credentials_valid(username, password)
