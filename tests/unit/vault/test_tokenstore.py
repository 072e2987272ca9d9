"""Kept Vault tokens: sealed for one slot, unreadable anywhere else."""

from __future__ import annotations

import os

from mirage_operator.vault.tokenstore import StoredToken, entry_name, seal, unseal

TOKEN = StoredToken(
    token="hvs.not-a-real-token",
    accessor="acc",
    ttl=600.0,
    obtained_at=1.0,
    first_ttl=600.0,
    renewable=True,
)


def test_a_sealed_token_opens_with_its_key_in_its_slot_only() -> None:
    key = os.urandom(32)
    sealed = seal(key, "tokens/team-a", TOKEN)
    assert "not-a-real-token" not in sealed and "acc" not in sealed
    assert unseal(key, "tokens/team-a", sealed) == TOKEN
    # Copied under another namespace's entry, or read with another key: nothing.
    assert unseal(key, "tokens/team-b", sealed) is None
    assert unseal(os.urandom(32), "tokens/team-a", sealed) is None
    assert unseal(key, "tokens/team-a", "not base64!") is None
    assert unseal(key, "tokens/team-a", sealed[:-4] + "AAAA") is None


def test_the_token_is_kept_out_of_repr_and_operator_mode_has_its_own_entry() -> None:
    assert "not-a-real-token" not in repr(TOKEN)
    assert entry_name("") == "_operator"
    assert entry_name("team-a") == "team-a"
