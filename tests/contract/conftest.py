"""Both Vaults, set up alike, reviewing ServiceAccount tokens at one emulated Kubernetes API.

Namespaces ``team`` and ``other`` each have the ServiceAccount ``mirage-vault``, the tenant
policy and role the sandbox gives a tenant (:func:`mirage_sandbox.tenants.tenant_policy`),
KV data and a database role. The emulated Vault asks the API's TokenReview through
:func:`~mirage_sandbox.vault.apiserver_reviewer`; OpenBao calls it over loopback and
checks signatures with the keys the API publishes. Tokens come from the TokenRequest API,
asked through the official ``kubernetes`` client.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from mirage_sandbox.apiserver.server import APIServer, run_apiserver_in_thread
from mirage_sandbox.tenants import STANDARD_MOUNTS, tenant_policy
from mirage_sandbox.vault import EmulatedVault, VaultThread, apiserver_reviewer
from tests.realservers import OpenBao, Postgres
from tests.vaultbackends import (
    EmulatedBackend,
    RealBackend,
    VaultBackend,
    configure_real_vault,
)

NAMESPACES = ("team", "other")
SERVICE_ACCOUNT = "mirage-vault"
ROLE_TTL = 3600
DB_TTL = 10
DB_MAX_TTL = 60
GLOB_RULES = {
    # Vault's path rules: `*` is a glob only at the end, `+` is one segment.
    "secret/data/mid/*/x": ["read"],
    "secret/data/plus/+/x": ["read"],
    "secret/data/plus/+/+/deep": ["read"],
    "secret/data/pre*": ["read"],
    "secret/data/open/*": ["read"],
    "secret/data/open/closed": ["deny"],
    "secret/data/open/+/inner": ["deny"],
    "secret/data/exact": ["read"],
}
"""A policy exercising the rules, bound to the role ``globs`` (ServiceAccount of ``team``)."""
GLOB_PATHS = (
    "mid/q/x",
    "mid/*/x",
    "plus/q/x",
    "plus/q/r/x",
    "plus/q/r/deep",
    "prefix/any/depth",
    "pre",
    "open/a",
    "open/closed",
    "open/closed/sub",
    "open/z/inner",
    "exact",
    "exact/sub",
)
"""KV paths the ``globs`` role reads: each exists in both Vaults."""


@dataclass
class Setup:
    """Both Vaults and a way to get ServiceAccount tokens."""

    apiserver: APIServer
    core: Any
    backends: dict[str, VaultBackend]

    def token(self, namespace: str, audience: str = "vault") -> str:
        """A TokenRequest token of ``namespace``'s ``mirage-vault`` ServiceAccount."""
        request = kubernetes.client.AuthenticationV1TokenRequest(
            spec=kubernetes.client.V1TokenRequestSpec(audiences=[audience], expiration_seconds=600)
        )
        answer = self.core.create_namespaced_service_account_token(
            SERVICE_ACCOUNT, namespace, request
        )
        return str(answer.status.token)


def seed(backend: VaultBackend) -> None:
    """The same content in either Vault."""
    for namespace in NAMESPACES:
        backend.add_policy(f"tenant-{namespace}", tenant_policy(namespace, STANDARD_MOUNTS))
        backend.add_role(
            f"mirage-{namespace}",
            service_accounts=[SERVICE_ACCOUNT],
            namespaces=[namespace],
            policies=[f"tenant-{namespace}"],
            ttl=ROLE_TTL,
            max_ttl=2 * ROLE_TTL,
        )
        backend.put(f"{namespace}/app", {"user": "app", "n": 1})
        backend.put(f"{namespace}/app", {"user": "app", "n": 2})
        backend.put(f"{namespace}/gone", {"user": "gone"})
        backend.delete_latest(f"{namespace}/gone")
        backend.put_v1(f"{namespace}/legacy", {"user": "legacy"})
        backend.add_database_role(f"{namespace}.app", default_ttl=DB_TTL, max_ttl=DB_MAX_TTL)
    backend.add_policy("globs", GLOB_RULES)
    backend.add_role(
        "globs", service_accounts=[SERVICE_ACCOUNT], namespaces=["team"], policies=["globs"]
    )
    for path in GLOB_PATHS:
        backend.put(path, {"path": path})


@pytest.fixture(scope="session")
def contract(
    tmp_path_factory: pytest.TempPathFactory, openbao: OpenBao, postgres: Postgres
) -> Iterator[Setup]:
    """The emulated API, the emulated Vault and OpenBao (with PostgreSQL), seeded alike."""
    with run_apiserver_in_thread() as server:
        kubeconfig = server.write_kubeconfig(tmp_path_factory.mktemp("contract") / "kubeconfig")
        client = kubernetes.config.new_client_from_config(config_file=str(Path(kubeconfig)))
        core = kubernetes.client.CoreV1Api(client)
        for namespace in NAMESPACES:
            core.create_namespace(kubernetes.client.V1Namespace(metadata={"name": namespace}))
            core.create_namespaced_service_account(
                namespace, kubernetes.client.V1ServiceAccount(metadata={"name": SERVICE_ACCOUNT})
            )
        emulated_vault = EmulatedVault(token_reviewer=apiserver_reviewer(server))
        with VaultThread(emulated_vault) as thread:
            emulated = EmulatedBackend(emulated_vault, thread.address)
            admin = openbao.client()
            configure_real_vault(
                admin,
                kubernetes_url=server.url,
                reviewer_token=server.admin_token,
                postgres=postgres,
            )
            real = RealBackend(admin, openbao.address, server=openbao, _audit=openbao.audit)
            for backend in (emulated, real):
                seed(backend)
            yield Setup(server, core, {"emulated": emulated, "openbao": real})
            client.close()
