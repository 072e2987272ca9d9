"""What each secrets engine's source decides without Vault: the status fields it sets, the
lease it holds (remembered, or rebuilt from status after a restart, never another role's),
and whether a VaultSecret of it carries a finalizer."""

from __future__ import annotations

from typing import Any, cast

import pytest

from mirage_operator.api.vaultsecret import VaultSource
from mirage_operator.handlers.vaultsecret.sources import (
    DatabaseSource,
    KVv1Source,
    KVv2Source,
    holds_lease,
    source_for,
)
from mirage_operator.vault import Lease, VaultData
from mirage_operator.vault.schedule import format_time

NOW = 1_700_000_000.0
ROLE = VaultSource(engine="database", mount="database", path="shop.api")
LEASE_ID = "database/creds/shop.api/abc123"
OTHER_ID = "database/creds/shop.old/abc123"


def _source(spec: VaultSource) -> Any:
    # Nothing here calls Vault: the client is never used.
    return source_for(cast(Any, None), "shop", spec)


def test_each_engine_has_its_source() -> None:
    assert isinstance(_source(VaultSource("kv-v2", "secret", "shop/app")), KVv2Source)
    assert type(_source(VaultSource("kv-v1", "kv", "shop/app"))) is KVv1Source
    assert isinstance(_source(ROLE), DatabaseSource)


def test_kv_v2_shows_the_version_read_or_keeps_the_one_shown() -> None:
    source = _source(VaultSource("kv-v2", "secret", "shop/app"))
    read = VaultData(data={"a": "1"}, version=7)
    assert source.status_fields(read, {"vaultVersion": 6}, None)["vault_version"] == 7
    assert source.status_fields(None, {"vaultVersion": 6}, None)["vault_version"] == 6


def test_kv_v1_and_database_show_no_version() -> None:
    read = VaultData(data={"a": "1"}, version=7)
    for spec in (VaultSource("kv-v1", "kv", "shop/app"), ROLE):
        assert _source(spec).status_fields(read, {"vaultVersion": 6}, None)["vault_version"] is None


def test_database_status_shows_the_lease_not_the_credentials() -> None:
    lease = Lease(lease_id=LEASE_ID, duration=300.0, renewed_at=NOW)
    shown = _source(ROLE).status_fields(VaultData(data={"password": "x"}), {}, lease)["lease"]
    assert (shown.lease_id, shown.duration, shown.expiry) == (LEASE_ID, 300, format_time(NOW + 300))


def test_a_kv_source_holds_no_lease_whatever_status_says() -> None:
    status = {"leaseID": LEASE_ID, "leaseDuration": 300, "leaseExpiry": format_time(NOW)}
    assert _source(VaultSource("kv-v2", "secret", "shop/app")).lease(None, status) is None


def test_database_lease_is_remembered_or_rebuilt_from_status() -> None:
    source = _source(ROLE)
    remembered = Lease(lease_id=LEASE_ID, duration=300.0, renewed_at=NOW, token_accessor="t")
    assert source.lease(remembered, {}) is remembered
    status = {"leaseID": LEASE_ID, "leaseDuration": 300, "leaseExpiry": format_time(NOW + 300)}
    rebuilt = source.lease(None, status)
    assert rebuilt is not None
    assert (rebuilt.lease_id, rebuilt.duration, rebuilt.expires_at) == (LEASE_ID, 300, NOW + 300)


@pytest.mark.parametrize(
    "status",
    [
        # another role's lease (the spec's path changed): left to expire, never touched
        {"leaseID": OTHER_ID, "leaseDuration": 300, "leaseExpiry": format_time(NOW)},
        {"leaseID": LEASE_ID, "leaseDuration": 300},  # no expiry
        {"leaseID": LEASE_ID, "leaseDuration": 300, "leaseExpiry": "yesterday"},
        {"leaseID": LEASE_ID, "leaseExpiry": format_time(NOW)},  # no duration
        {},
    ],
)
def test_database_lease_of_another_role_or_incomplete_is_none(status: dict[str, Any]) -> None:
    other = Lease(lease_id=OTHER_ID, duration=300.0, renewed_at=NOW)
    assert _source(ROLE).lease(other, status) is None


@pytest.mark.parametrize(
    ("engine", "holds"), [("database", True), ("kv-v2", False), ("kv-v1", False), (None, False)]
)
def test_only_a_leased_engine_needs_releasing(engine: str | None, holds: bool) -> None:
    assert holds_lease(engine) is holds
