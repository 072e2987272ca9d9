"""One source type per secrets engine: everything in a VaultSecret's reconcile that differs
between ``spec.vault.engine`` values lives here. Outside the reconcile, the engine still
decides how a spec is checked (``api/vaultsecret.py``), which globs apply
(``vault/policy.py``), the Vault request (``vault/client.py``) and the tenant's policy
(``tenancy.py``).

A source answers, for its engine: why a reconcile reads Vault (:meth:`Source.read_reasons`),
how it reads and what it keeps between reads (:meth:`Source.read`, :meth:`Source.lease`),
which status fields it sets (:meth:`Source.status_fields`), when the object must be
reconciled again (:meth:`Source.next_run_in`), and what deleting the VaultSecret releases
(:meth:`Source.revoke`, :data:`Source.holds_lease`).

- KV v2 and KV v1 (:class:`KVv2Source`, :class:`KVv1Source`) are read on a clock
  (``spec.refreshInterval``); KV v2 reports the version read in ``status.vaultVersion``.
- database (:class:`DatabaseSource`) issues credentials under a lease: read only when new data
  is needed, otherwise the lease is renewed at two thirds of its TTL and replaced near its max
  TTL (:meth:`VaultClient.ensure_credentials`); ``status.leaseID``/``leaseDuration``/
  ``leaseExpiry`` let a new operator process take the lease over; deleting the VaultSecret
  revokes it (docs/adr/0022).

The Vault calls themselves (paths, hvac, tokens, lease renewal) are
:class:`~mirage_operator.vault.client.VaultClient`'s; the decisions on time are the pure
functions of :mod:`mirage_operator.vault.schedule`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from mirage_operator.api.vaultsecret import VaultSource
from mirage_operator.render.vaultsecret import LeaseStatus
from mirage_operator.vault import Lease, VaultClient, VaultData
from mirage_operator.vault.schedule import (
    Facts,
    data_reasons,
    format_time,
    next_run_in,
    parse_time,
    refresh_reasons,
)


class Source:
    """What one engine's ``spec.vault`` means for a VaultSecret in ``namespace``. The base is
    the common part: a read only for new data, no lease, no engine-specific status."""

    holds_lease: ClassVar[bool] = False
    """Whether deleting the VaultSecret must release something in Vault (then it carries
    kopf's finalizer)."""

    def __init__(self, vault: VaultClient, namespace: str, spec: VaultSource) -> None:
        self.vault = vault
        self.namespace = namespace
        self.spec = spec

    @classmethod
    def read_reasons(cls, facts: Facts) -> tuple[str, ...]:
        """Why this reconcile must read Vault (empty: it must not); each reason is explained
        in :mod:`mirage_operator.vault.schedule`."""
        return tuple(data_reasons(facts))

    async def read(
        self, reasons: tuple[str, ...], lease: Lease | None
    ) -> tuple[Lease | None, VaultData | None]:
        """(lease to keep, data read or ``None`` when there was nothing to read)."""
        return None, (await self.vault.read(self.namespace, self.spec) if reasons else None)

    def lease(self, remembered: Lease | None, status: Mapping[str, Any]) -> Lease | None:
        """The lease the VaultSecret holds: the one this process ``remembered`` or, after a
        restart, the one ``status`` names."""
        return None

    def status_fields(
        self, read: VaultData | None, old_status: Mapping[str, Any], lease: Lease | None
    ) -> dict[str, Any]:
        """The engine's own arguments of :func:`~mirage_operator.render.vaultsecret.synced_status`
        (``None`` removes a field another engine set)."""
        return {"vault_version": None, "lease": None}

    def refresh_interval(self, facts: Facts) -> float:
        """Seconds between reads on the clock (0: none)."""
        return 0.0

    def next_run_in(
        self, facts: Facts, *, synced_at: float | None, lease: Lease | None, resync: float
    ) -> float:
        """Seconds until the object must be reconciled again: the refresh, the lease's renewal
        (or its token's, which it dies with), or the resync."""
        return next_run_in(
            refresh_interval=self.refresh_interval(facts),
            synced_at=synced_at,
            lease_check_at=self.vault.next_check_at(self.namespace, lease) if lease else None,
            resync_interval=resync,
            now=facts.now,
        )

    async def revoke(self, lease: Lease) -> None:
        """Release ``lease`` in Vault (the VaultSecret is being deleted)."""
        await self.vault.revoke_lease(self.namespace, self.spec, lease.lease_id)


class KVv1Source(Source):
    """A KV v1 path: read for new data and on the refresh clock; no version, no lease."""

    @classmethod
    def read_reasons(cls, facts: Facts) -> tuple[str, ...]:
        """The reasons for new data, and those of the refresh clock."""
        return (*super().read_reasons(facts), *refresh_reasons(facts))

    def refresh_interval(self, facts: Facts) -> float:
        """``spec.refreshInterval``."""
        return facts.refresh_interval


class KVv2Source(KVv1Source):
    """A KV v2 path: as KV v1, and ``status.vaultVersion`` says which version the Secret
    holds (the last one read; kept while nothing is read)."""

    def status_fields(
        self, read: VaultData | None, old_status: Mapping[str, Any], lease: Lease | None
    ) -> dict[str, Any]:
        """The version read, or the one status already shows."""
        version = read.version if read is not None else old_status.get("vaultVersion")
        return {"vault_version": version, "lease": None}


class DatabaseSource(Source):
    """A database role: credentials under a lease. New credentials cost a database user, so
    they are read only when new data is needed (never synced, spec, force-sync, drift); the
    lease, not a refresh interval or a failed read, decides when they are renewed."""

    holds_lease = True

    async def read(
        self, reasons: tuple[str, ...], lease: Lease | None
    ) -> tuple[Lease | None, VaultData | None]:
        """New credentials when the reasons ask for them; otherwise the lease kept alive
        (renewed when due, replaced when it cannot be kept, with the new data then)."""
        if reasons:
            fresh = await self.vault.read(self.namespace, self.spec)
            return fresh.lease, fresh
        return await self.vault.ensure_credentials(self.namespace, self.spec, lease)

    def lease(self, remembered: Lease | None, status: Mapping[str, Any]) -> Lease | None:
        """A lease of another role (the spec changed) is forgotten: it expires alone."""
        prefix = f"{self.spec.mount}/creds/{self.spec.path}/"
        if remembered is not None and remembered.lease_id.startswith(prefix):
            return remembered
        lease_id = status.get("leaseID")
        expiry = parse_time(status.get("leaseExpiry"))
        duration = status.get("leaseDuration")
        if not lease_id or not str(lease_id).startswith(prefix) or expiry is None or not duration:
            return None
        return Lease.from_status(str(lease_id), float(duration), expiry)

    def status_fields(
        self, read: VaultData | None, old_status: Mapping[str, Any], lease: Lease | None
    ) -> dict[str, Any]:
        """The lease: an identifier and times, never the credentials."""
        shown = (
            LeaseStatus(lease.lease_id, int(lease.duration), format_time(lease.expires_at))
            if lease is not None
            else None
        )
        return {"vault_version": None, "lease": shown}


SOURCES: Mapping[str, type[Source]] = {
    "kv-v2": KVv2Source,
    "kv-v1": KVv1Source,
    "database": DatabaseSource,
}
"""The source type of each ``spec.vault.engine`` the CRD allows."""


def source_for(vault: VaultClient, namespace: str, spec: VaultSource) -> Source:
    """The source of a parsed ``spec.vault``."""
    return SOURCES[spec.engine](vault, namespace, spec)


def holds_lease(engine: object) -> bool:
    """Whether a VaultSecret of ``engine`` (as written: absent means the default, kv-v2)
    holds something to release on delete."""
    source = SOURCES.get(str(engine or "kv-v2"))
    return source is not None and source.holds_lease
