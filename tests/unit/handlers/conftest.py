"""Fixtures of the handler tests: the emulated Vault of the Vault client tests."""

from tests.unit.vault.vaultkit import (  # noqa: F401 - pytest finds fixtures by name
    clock,
    sleeps,
    vault,
)
