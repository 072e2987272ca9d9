"""Vault for the e2e tests: the emulated Vault beside the emulated API, or a real one.

Per test namespace, :meth:`VaultAdmin.add_tenant` does what the Pulumi stacks do for a tenant:
the ServiceAccount ``mirage-vault`` in the namespace, a policy reading the namespace's own KV
paths and database roles, and the kubernetes auth role ``mirage-<namespace>`` bound to that
ServiceAccount. With a real Vault (``MIRAGE_E2E_VAULT_ADDR`` and ``MIRAGE_E2E_VAULT_TOKEN``, a
token allowed to write policies, roles and KV data) the same calls go through ``hvac``; tests
that need the emulator (faults, the request log, database leases) are skipped there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import hvac
import pytest

from mirage_operator import tenancy
from mirage_operator.config import Config
from mirage_operator.sandbox.tenants import STANDARD_MOUNTS, add_tenant
from mirage_operator.sandbox.vault import EmulatedVault
from tests.e2e.kube import Kube

SERVICE_ACCOUNT = tenancy.SERVICE_ACCOUNT
DB_TTL = 10
"""Seconds a database lease lasts (renewed at two thirds): short, so that renewals happen
within a test."""
DB_MAX_TTL = 60


@dataclass
class VaultAdmin:
    """Seeds Vault for the tests; exactly one of ``emulator`` and ``client`` is set."""

    kube: Kube
    address: str
    emulator: EmulatedVault | None = None
    client: hvac.Client | None = None

    def require_emulator(self) -> EmulatedVault:
        """The emulated Vault; skips with a real one (fault injection, request log, leases)."""
        if self.emulator is None:
            pytest.skip("needs the emulated Vault (fault injection / request log / leases)")
        return self.emulator

    def add_tenant(self, namespace: str) -> None:
        """Make ``namespace`` a Vault tenant, as the Pulumi stacks do."""
        self.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace},
            }
        )
        if self.emulator is not None:
            add_tenant(self.emulator, namespace, config=Config())
            self.emulator.add_database_role(
                f"{namespace}.app", default_ttl=DB_TTL, max_ttl=DB_MAX_TTL
            )
            return
        assert self.client is not None
        # The tenant contract, as the stacks configure it (stacks/components/vault.py).
        policy = tenancy.vault_policy_name(namespace)
        self.client.sys.create_or_update_policy(
            name=policy, policy=tenancy.tenant_policy_hcl(namespace, STANDARD_MOUNTS)
        )
        self.client.write(
            f"auth/{tenancy.AUTH_MOUNT}/role/{tenancy.vault_role(namespace)}",
            bound_service_account_names=[SERVICE_ACCOUNT],
            bound_service_account_namespaces=[namespace],
            token_policies=[policy],
            token_no_default_policy=True,
            token_ttl="1h",
            audience=tenancy.TOKEN_AUDIENCE,
        )

    def put(self, path: str, data: Mapping[str, Any], *, mount: str = "secret") -> None:
        """Write ``data`` at ``path`` of a KV v2 mount (a new version)."""
        if self.emulator is not None:
            self.emulator.put_kv(path, data, mount=mount)
            return
        assert self.client is not None
        self.client.secrets.kv.v2.create_or_update_secret(
            path=path, secret=dict(data), mount_point=mount
        )
