"""The emulated Vault set up the way the Pulumi stacks set up a real one, for the sandbox and
the e2e tests.

Per tenant namespace: the policy of the tenant contract (:mod:`mirage_operator.tenancy`:
reading only the namespace's own KV paths and database roles, renewing and revoking only its
own leases), and the kubernetes auth role ``mirage-<namespace>`` bound to the ServiceAccount
``mirage-vault`` of that namespace (names from :class:`Config`, as the operator uses them).
:func:`seed_sources` writes demo values (random, never printed) at every
Vault source the given custom resources name, so that they converge without a real Vault.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from mirage_operator import tenancy
from mirage_operator.api.vaultsecret import VaultSecretSpec
from mirage_operator.config import Config
from mirage_sandbox.vault import EmulatedVault

STANDARD_MOUNTS: Mapping[str, str] = tenancy.MOUNTS
"""The secrets engines the Pulumi stacks mount (mount path to engine)."""

_TEMPLATE_KEY = re.compile(r"""data\.([A-Za-z_][A-Za-z0-9_]*)|data\[\s*['"]([^'"]+)['"]\s*\]""")


def tenant_policy(
    namespace: str, mounts: Mapping[str, str], *, config: Config | None = None
) -> dict[str, list[str]]:
    """A tenant's policy (:func:`tenancy.tenant_policy_rules` with the templates of
    ``config``): path glob to capabilities, for each mount by its engine."""
    config = config or Config()
    rules = tenancy.tenant_policy_rules(
        namespace,
        mounts,
        kv_paths=config.vault_allowed_paths,
        database_roles=config.vault_allowed_database_roles,
    )
    return {path: list(caps) for path, caps in rules.items()}


def add_tenant(vault: EmulatedVault, namespace: str, *, config: Config) -> None:
    """Make ``namespace`` a tenant: its policy and its kubernetes auth role."""
    policy = tenancy.vault_policy_name(namespace)
    vault.add_policy(policy, tenant_policy(namespace, vault.mounts, config=config))
    vault.add_role(
        config.vault_role_template.format(namespace=namespace),
        service_accounts=[config.vault_service_account],
        namespaces=[namespace],
        policies=[policy],
        mount=config.vault_auth_mount,
    )


def _specs(document: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    spec = document.get("spec") or {}
    if document.get("kind") == "VaultSecret" and "vault" in spec:
        yield spec
    elif document.get("kind") == "MirageService":
        yield from (s for s in spec.get("secrets") or () if "vault" in s)


def template_keys(template: str) -> set[str]:
    """The Vault keys a template reads (``data.x`` and ``data['x']``)."""
    return {a or b for a, b in _TEMPLATE_KEY.findall(template)}


def seed_sources(
    vault: EmulatedVault, documents: Iterable[Mapping[str, Any]], *, config: Config
) -> list[str]:
    """Seed every Vault source ``documents`` name and make their namespaces tenants; the
    tenant namespaces, sorted. Paths already holding data are left as they are."""
    for mount, engine in STANDARD_MOUNTS.items():
        vault.mounts.setdefault(mount, engine)
    namespaces = set()
    for document in documents:
        namespace = (document.get("metadata") or {}).get("namespace", "default")
        for raw in _specs(document):
            spec = VaultSecretSpec.from_spec(raw)
            source = spec.vault
            namespaces.add(namespace)
            vault.mounts.setdefault(source.mount, source.engine)
            if source.engine == "database":
                vault.add_database_role(source.path, mount=source.mount)
                continue
            if vault.has_data(source.path, mount=source.mount):
                continue
            keys = {m.source for m in spec.keys}
            for template in spec.templates.values():
                keys |= template_keys(template)
            names = sorted(keys) or ["username", "password"]
            vault.put_kv(
                source.path, {k: f"demo-{secrets.token_hex(8)}" for k in names}, mount=source.mount
            )
    for namespace in namespaces:
        add_tenant(vault, namespace, config=config)
    return sorted(namespaces)
