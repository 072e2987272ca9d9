"""Fixtures of the Vault client tests (defined in ``vaultkit``)."""

from tests.unit.vault.vaultkit import (  # noqa: F401 - pytest finds fixtures by name
    client,
    clock,
    make_client,
    sleeps,
    token_requests,
    vault,
)
