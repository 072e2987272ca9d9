"""Helpers and fixtures for the Vault client tests (the ``conftest`` loads them): an emulated
Vault seeded for two tenants, a clock that tests move by hand, and a client wired to both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from mirage_operator import tenancy
from mirage_operator.config import Config
from mirage_operator.vault import VaultClient
from mirage_operator.vault.tokenstore import StoredToken
from mirage_sandbox.vault import EmulatedVault, static_reviewer

TENANTS = ("team-a", "team-b")
TOKEN_TTL = 600
TOKEN_MAX_TTL = 3600
SA = "mirage-vault"


class MemoryStore:
    """A :class:`~mirage_operator.vault.tokenstore.TokenStore` in a dict, shared by the
    processes of a test (the Secret-backed store is exercised end to end)."""

    def __init__(self) -> None:
        self.tokens: dict[str, StoredToken] = {}

    async def load(self, key: str) -> StoredToken | None:
        return self.tokens.get(key)

    async def save(self, key: str, token: StoredToken) -> None:
        self.tokens[key] = token


class FakeClock:
    """Epoch seconds that move only when told to."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class TokenRequests:
    """The ``token_for`` coroutine the Kubernetes client would supply; records its calls."""

    calls: list[tuple[str, str, str, int]] = field(default_factory=list)

    async def __call__(self, namespace: str, service_account: str, audience: str, exp: int) -> str:
        self.calls.append((namespace, service_account, audience, exp))
        return f"jwt-{namespace}-{service_account}"


@dataclass
class Sleeps:
    """A ``sleep`` that records delays and can run a hook (e.g. bring Vault back)."""

    delays: list[float] = field(default_factory=list)
    hook: Callable[[], Any] | None = None

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.hook is not None:
            result = self.hook()
            if hasattr(result, "__await__"):
                await result


def seed(vault: EmulatedVault) -> None:
    """Per tenant: a policy reading its own KV paths and database roles, and a role."""
    for ns in TENANTS:
        vault.add_policy(ns, tenancy.tenant_policy_rules(ns))
        vault.add_role(
            f"mirage-{ns}",
            service_accounts=[SA],
            namespaces=[ns],
            policies=[ns],
            ttl=TOKEN_TTL,
            max_ttl=TOKEN_MAX_TTL,
        )
        vault.add_database_role(f"{ns}.app", default_ttl=300, max_ttl=900)
    vault.add_policy("operator", {"secret/data/*": ["read"], "kv/*": ["read"]})
    vault.add_role(
        "mirage-operator",
        service_accounts=["mirage-operator"],
        namespaces=["mirage-system"],
        policies=["operator"],
        ttl=TOKEN_TTL,
    )


def identities() -> dict[str, tuple[str, str]]:
    names = [*TENANTS, "mirage-system"]
    accounts = [SA, "mirage-operator"]
    return {f"jwt-{ns}-{sa}": (ns, sa) for ns in names for sa in accounts}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def token_requests() -> TokenRequests:
    return TokenRequests()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def vault(clock: FakeClock) -> AsyncIterator[EmulatedVault]:
    emulated = EmulatedVault(token_reviewer=static_reviewer(identities()), clock=clock)
    seed(emulated)
    await emulated.start()
    yield emulated
    await emulated.stop()


@pytest.fixture
def make_client(
    vault: EmulatedVault, clock: FakeClock, token_requests: TokenRequests, sleeps: Sleeps
) -> Callable[..., VaultClient]:
    clients: list[VaultClient] = []

    def make(**overrides: Any) -> VaultClient:
        config = Config(**{"vault_address": vault.address, "vault_retries": 2, **overrides})
        client = VaultClient(config, token_for=token_requests, clock=clock, sleep=sleeps)
        clients.append(client)
        return client

    return make


@pytest.fixture
async def client(make_client: Callable[..., VaultClient]) -> AsyncIterator[VaultClient]:
    made = make_client()
    yield made
    await made.close()
