"""Vault for the sandbox: tenants as the Pulumi stacks make them, demo data for every source
the applied resources name, read through the operator's own Vault client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from mirage_operator.api.vaultsecret import VaultSecretSpec
from mirage_operator.config import Config
from mirage_operator.errors import VaultPermissionDenied
from mirage_operator.vault import VaultClient
from mirage_sandbox.tenants import (
    STANDARD_MOUNTS,
    seed_sources,
    template_keys,
    tenant_policy,
)
from mirage_sandbox.vault import EmulatedVault, static_reviewer

SA = Config().vault_service_account


async def token_for(namespace: str, service_account: str, audience: str, seconds: int) -> str:
    return f"jwt-{namespace}-{service_account}"


@pytest.fixture
async def vault() -> AsyncIterator[EmulatedVault]:
    identities = {f"jwt-{ns}-{SA}": (ns, SA) for ns in ("default", "shop", "other")}
    emulated = EmulatedVault(token_reviewer=static_reviewer(identities))
    await emulated.start()
    yield emulated
    await emulated.stop()


@pytest.fixture
async def client(vault: EmulatedVault) -> AsyncIterator[VaultClient]:
    made = VaultClient(Config(vault_address=vault.address, vault_retries=0), token_for=token_for)
    yield made
    await made.close()


def vault_secret(namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mirage.dev/v1alpha1",
        "kind": "VaultSecret",
        "metadata": {"name": "x", "namespace": namespace},
        "spec": spec,
    }


def test_tenant_policy_covers_each_engine_for_the_namespace_only() -> None:
    assert tenant_policy("shop", STANDARD_MOUNTS) == {
        "database/creds/shop": ["read"],
        "database/creds/shop.*": ["read"],
        "kv/shop/*": ["read"],
        "secret/data/shop/*": ["read"],
        "sys/leases/renew/database/creds/shop/*": ["update"],
        "sys/leases/renew/database/creds/shop.*": ["update"],
        "sys/leases/revoke/database/creds/shop/*": ["update"],
        "sys/leases/revoke/database/creds/shop.*": ["update"],
        "auth/token/lookup-self": ["read"],
        "auth/token/renew-self": ["update"],
        "auth/token/revoke-self": ["update"],
    }


def test_template_keys() -> None:
    assert template_keys("{{ data.user }}:{{ data['pass-word'] }}@{{ data[\"h\"] }}") == {
        "user",
        "pass-word",
        "h",
    }


async def test_every_named_source_is_seeded_and_readable_by_its_namespace_only(
    vault: EmulatedVault, client: VaultClient
) -> None:
    documents = [
        vault_secret(
            "default",
            vault={"path": "default/orders/db"},
            keys=[{"from": "username"}],
            templates={"url": "{{ data.username }}:{{ data.password }}"},
        ),
        {
            "apiVersion": "mirage.dev/v1alpha1",
            "kind": "MirageService",
            "metadata": {"name": "pay", "namespace": "shop"},
            "spec": {
                "image": "x",
                "secrets": [
                    {"name": "db", "vault": {"engine": "database", "path": "shop.pay"}},
                    {"name": "sig", "vault": {"engine": "kv-v1", "mount": "kv", "path": "shop/s"}},
                ],
            },
        },
    ]
    assert seed_sources(vault, documents, config=Config()) == ["default", "shop"]

    specs = [VaultSecretSpec.from_spec(documents[0]["spec"])]
    specs += [VaultSecretSpec.from_spec(s) for s in documents[1]["spec"]["secrets"]]
    orders = await client.read("default", specs[0].vault)
    assert set(orders.data) == {"username", "password"}
    assert all(value.startswith("demo-") for value in orders.data.values())
    creds = await client.read("shop", specs[1].vault)
    assert creds.lease is not None and set(creds.data) == {"username", "password"}
    assert (await client.read("shop", specs[2].vault)).data

    # Another tenant's role cannot read them (the operator's own check relaxed to prove it).
    seed_sources(vault, [vault_secret("other", vault={"path": "other/x"})], config=Config())
    wide = VaultClient(
        Config(vault_address=vault.address, vault_retries=0, vault_allowed_paths=("*",)),
        token_for=token_for,
    )
    try:
        with pytest.raises(VaultPermissionDenied):
            await wide.read("other", specs[0].vault)
    finally:
        await wide.close()


async def test_existing_data_is_kept(vault: EmulatedVault, client: VaultClient) -> None:
    vault.put_kv("default/app", {"token": "mine"})
    document = vault_secret("default", vault={"path": "default/app"})
    seed_sources(vault, [document, document], config=Config())
    read = await client.read("default", VaultSecretSpec.from_spec(document["spec"]).vault)
    assert read.data == {"token": "mine"} and read.version == 1
