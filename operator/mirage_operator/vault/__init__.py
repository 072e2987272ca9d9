"""All Vault I/O: per-tenant kubernetes auth, KV v2/v1 and database reads, leases.

:class:`~mirage_operator.vault.client.VaultClient` is the one entry point; the allowed-path
check lives in :mod:`mirage_operator.vault.policy`.
"""

from __future__ import annotations

from mirage_operator.vault.client import Lease, TokenFor, VaultClient, VaultData, classify
from mirage_operator.vault.policy import allowed_patterns, check_allowed, glob_matches

__all__ = [
    "Lease",
    "TokenFor",
    "VaultClient",
    "VaultData",
    "allowed_patterns",
    "check_allowed",
    "classify",
    "glob_matches",
]
