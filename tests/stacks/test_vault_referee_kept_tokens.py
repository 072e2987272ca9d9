"""A real OpenBao as the referee of kept Vault tokens (docs/adr/0111).

The stack's Vault configuration replayed into OpenBao (the fixture of
``test_vault_referee``), plus a role for ``team-a`` whose tokens live 6 s. One operator
process issues database credentials and dies; the next one, sharing the token store, keeps
renewing that process's token and lease past the token's TTL — when OpenBao would have
revoked the lease with the token — and the password still opens PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time

from mirage_operator import tenancy
from mirage_operator.api.vaultsecret import VaultSource
from mirage_operator.config import Config
from mirage_operator.vault import Lease, VaultClient
from tests.stacks.test_vault_referee import (  # noqa: F401 - pytest finds the fixture by name
    A,
    Referee,
    referee,
    request_token,
)
from tests.unit.vault.vaultkit import MemoryStore

TOKEN_TTL = 6


async def test_the_next_process_keeps_the_issuers_token_and_lease_alive(
    referee: Referee,  # noqa: F811 - the fixture imported above
) -> None:
    root = referee.bao.client()
    role = tenancy.vault_role(A)
    answer = root.auth.kubernetes.read_role(name=role, mount_point=tenancy.AUTH_MOUNT)
    declared = answer.get("data", answer)
    root.auth.kubernetes.create_role(
        name=f"{tenancy.vault_role(A)}-short",
        bound_service_account_names=declared["bound_service_account_names"],
        bound_service_account_namespaces=declared["bound_service_account_namespaces"],
        policies=declared["token_policies"],
        ttl=f"{TOKEN_TTL}s",
        max_ttl="10m",
        audience=declared.get("audience") or tenancy.TOKEN_AUDIENCE,
        mount_point=tenancy.AUTH_MOUNT,
    )

    async def token_for(namespace: str, _account: str, audience: str, _seconds: int) -> str:
        return await asyncio.to_thread(request_token, referee.api.url, namespace, audience)

    config = Config(
        vault_address=referee.bao.address,
        vault_retries=0,
        vault_role_template="mirage-{namespace}-short",
    )
    assert config.vault_role_template.format(namespace=A) == f"{tenancy.vault_role(A)}-short"
    store = MemoryStore()
    source = VaultSource(engine="database", mount="database", path="team-a.readonly")
    issuer = VaultClient(config, token_for=token_for, store=store)
    lease, data = await issuer.ensure_credentials(A, source, None)
    assert data is not None
    # The issuer dies without a word; its successor starts from the VaultSecret's status.
    successor = VaultClient(config, token_for=token_for, store=store)
    kept = Lease.from_status(lease.lease_id, lease.duration, lease.expires_at)
    outlived = time.time() + TOKEN_TTL + 3
    try:
        while time.time() < outlived:
            kept, fresh = await successor.ensure_credentials(A, source, kept)
            assert fresh is None, "new credentials instead of the kept lease"
            await asyncio.sleep(0.5)  # time itself is what is tested: the token's TTL passing
        assert kept.lease_id == lease.lease_id
        assert root.sys.read_lease(lease.lease_id)["data"]["ttl"] > 0
        assert referee.db.can_login(data.data["username"], data.data["password"])
    finally:
        await issuer.close()
        await successor.close()
