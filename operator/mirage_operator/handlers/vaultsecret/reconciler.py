"""One VaultSecret reconcile, step by step, on the shared :class:`Reconciler` base (which runs
it, reports its failures in status and schedules its retries).

:meth:`VaultSecretReconciler.reconcile`: parse and admit the spec → the allowed-path check →
the HMAC key (:mod:`.hmackey`) → the destination Secret, live (:mod:`.destination`) → why read
Vault, then read it (the engine's source, :mod:`.sources`) → templates (a worker process) →
write the Secret (:mod:`.destination`: created when none was known, then read and checked if
its name was taken after all) → restart the targets if the data changed
(:mod:`.restarts`) → status (:func:`~mirage_operator.render.vaultsecret.synced_status`) → when to
run again (the source). :meth:`VaultSecretReconciler.release` revokes a lease on delete.

Secret values exist only in memory, between the Vault read and the Secret write: logs, Events,
status and errors carry keys, paths, versions, lease IDs and HMACs.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from mirage_operator.api.validation import admit
from mirage_operator.api.vaultsecret import VaultSecretSpec
from mirage_operator.errors import (
    InvalidSpecError,
    TransientError,
    VaultError,
    VaultPathNotAllowed,
)
from mirage_operator.handlers import common
from mirage_operator.handlers.context import ObjectKey, OperatorContext, Outcome
from mirage_operator.handlers.reconciler import Reconciler, key_of
from mirage_operator.handlers.vaultsecret import destination
from mirage_operator.handlers.vaultsecret.hmackey import HMACKey
from mirage_operator.handlers.vaultsecret.memory import Memories
from mirage_operator.handlers.vaultsecret.restarts import restart_targets
from mirage_operator.handlers.vaultsecret.sources import source_for
from mirage_operator.k8s import resources
from mirage_operator.render.secret import secret_mac
from mirage_operator.render.vaultsecret import failed_status, synced_status
from mirage_operator.template_worker import TemplateRunner
from mirage_operator.vault import VaultClient
from mirage_operator.vault.schedule import (
    FORCE_SYNC_ANNOTATION,
    Facts,
    format_time,
    parse_time,
    retry_delay,
)

REVOKE_ATTEMPTS = 3
"""Attempts at revoking a lease on delete before letting it expire by itself (a Vault outage
must not keep a VaultSecret from being deleted)."""


class VaultSecretReconciler(Reconciler):
    """Keeps each VaultSecret's Secret equal to what Vault holds."""

    kind = "VaultSecret"
    resource = resources.VAULT_SECRET
    status_resource = resources.VAULT_SECRET_STATUS
    child_kinds = (("v1", "Secret"),)
    """Its Secret, in the index by its metadata alone (docs/adr/0126); the watch sees only the
    Secrets Mirage labels."""
    refused_writes_retried = True

    def __init__(
        self,
        context: OperatorContext,
        *,
        vault: VaultClient,
        templates: TemplateRunner | None = None,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(context, jitter=jitter)
        self.vault = vault
        self.templates = templates or TemplateRunner()
        self.clock = clock
        self.hmac_key = HMACKey(context)
        self.memory = Memories()

    # --- the base's hooks -------------------------------------------------------------------

    def last_status(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """The status as this process last wrote it, else the body's."""
        return self.memory.status(body)

    async def write_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
        """As the base does, and remember what status now says."""
        old = self.last_status(body)
        if not await super().write_status(body, status):
            return False
        meta = body["metadata"]
        merged = {**old, **status}
        memory = self.memory.remember(meta["namespace"], meta["name"], meta["uid"])
        memory.status = {k: v for k, v in merged.items() if v is not None}
        return True

    def failed_status(
        self, body: Mapping[str, Any], reason: str, message: str, *, invalid_spec: bool
    ) -> dict[str, Any]:
        """``Ready=False``/``Synced=False``; the Secret keeps its last good data."""
        return failed_status(
            generation=body["metadata"].get("generation", 1),
            old_status=self.last_status(body),
            reason=reason,
            message=message,
            invalid_spec=invalid_spec,
            now=common.now(),
        )

    def retry_delay(self, first: float, failures: int) -> float:
        """5 s doubling to 60 s: Vault outages are retried sooner than the base's backoff."""
        return retry_delay(failures, self.jitter())

    def forget(self, key: ObjectKey, uid: str) -> None:
        """The object is gone: drop what this process kept of it."""
        super().forget(key, uid)
        self.memory.pop((key[1], key[2]), None)

    def parse(self, body: Mapping[str, Any]) -> VaultSecretSpec:
        """The admitted spec (:class:`InvalidSpecError` when it cannot be reconciled)."""
        return VaultSecretSpec.from_spec(
            admit(body)["spec"],
            default_refresh_interval=self.context.config.vault_default_refresh_interval,
        )

    # --- reconciliation ------------------------------------------------------------------

    async def run(self, body: Mapping[str, Any], logger: kopf.Logger) -> Outcome:
        """As the base does, under the object's lock (a delete handler may be releasing it),
        on a copy of ``body`` (kopf's bodies change in place as events arrive)."""
        async with self.context.serializer.lock(key_of(body)):
            return await super().run(copy.deepcopy(dict(body)), logger)

    async def reconcile(self, body: Mapping[str, Any], logger: kopf.Logger) -> float:
        """Sync the Secret; seconds until the object must be reconciled again."""
        config, kube = self.context.config, self.context.kube.client
        meta = body["metadata"]
        name, namespace, generation = meta["name"], meta["namespace"], meta.get("generation", 1)
        memory = self.memory.remember(namespace, name, meta["uid"])
        old = self.last_status(body)

        spec = self.parse(body)
        self.vault.check_allowed(namespace, spec.vault)
        source = source_for(self.vault, namespace, spec.vault)
        key = await self.hmac_key.get(synced_before=bool(old.get("secretMAC")))
        secret_name = spec.secret_name(name)
        # A Secret the index does not hold is not read but created after the Vault read (the
        # create fails on a name taken). It is read first where that read comes too late:
        # a Secret expected to be someone else's (overwrite), a read of Vault that issues
        # credentials, or a name a create already found taken (docs/adr/0126).
        check_first = (
            spec.destination.overwrite or source.holds_lease or memory.taken == secret_name
        )
        found = await destination.observe(
            self.context, body, spec, old.get("secretName"), check_first=check_first
        )

        def live_mac(found: destination.Destination) -> str | None:
            live = found.live
            return secret_mac(key, live.get("data") or {}) if live is not None else None

        force = (meta.get("annotations") or {}).get(FORCE_SYNC_ANNOTATION)
        facts = Facts(
            generation=generation,
            force_sync=force,
            status=old,
            live_mac=live_mac(found),
            first_check=not memory.checked,
            synced_at=memory.synced_at or parse_time(old.get("lastSyncTime")),
            refresh_interval=spec.refresh_interval,
            now=self.clock(),
        )
        reasons = source.read_reasons(facts)
        lease, read = await source.read(reasons, source.lease(memory.lease, old))
        if read is not None:
            logger.info("read Vault %s (%s)", spec.vault.display, ", ".join(reasons) or "lease")
            memory.synced_at = facts.now
        # Templates run in a bounded worker process, off the event loop (docs/adr/0067).
        rendered = (
            await self.templates.render_all(spec.templates, read.data) if read is not None else {}
        )
        # A Secret synced before that is found missing or changed is drift.
        known = bool(old.get("secretMAC"))
        for attempt in range(2):
            if attempt:
                # The name is taken by a Secret without Mirage's label: read it, and write it
                # only if it may be written (raises otherwise, before anything is written).
                memory.taken = secret_name
                found = await destination.observe(
                    self.context, body, spec, old.get("secretName"), check_first=True
                )
            desired = destination.desired_secret(
                body, spec, read, found.live, rendered, adopted=found.adopted
            )
            outcome = await destination.write(self.context, body, desired, found, known)
            if outcome is not None:
                break
        else:
            raise TransientError(f"Secret {secret_name} was created meanwhile", delay=1.0)
        memory.taken = None
        result, written = outcome
        mac = secret_mac(key, desired["data"])
        if written is not None:
            memory.secret_version = written["metadata"].get("resourceVersion")
        common.post_sync_events(body, result)

        # The MAC the workloads last saw: status (written last, so a crash before it repeats
        # the restart, which is idempotent), or the live data for a Secret not synced before.
        baseline = old.get("secretMAC") or live_mac(found)
        if baseline is not None and baseline != mac and spec.rollout_restart_targets:
            await restart_targets(kube, body, spec.rollout_restart_targets, mac)

        memory.lease = lease
        status = synced_status(
            generation=generation,
            old_status=old,
            secret_name=secret_name,
            mac=mac,
            source=spec.vault.display,
            last_sync=format_time(facts.now) if read is not None else old.get("lastSyncTime"),
            force_sync=force if read is not None else None,
            refresh_interval=spec.refresh_interval,
            now=common.now(),
            **source.status_fields(read, old, lease),
        )
        await self.write_status(body, status)
        memory.checked = True
        return source.next_run_in(
            facts,
            synced_at=memory.synced_at or parse_time(status["lastSyncTime"]),
            lease=lease,
            resync=config.resync_interval,
        )

    # --- deletion --------------------------------------------------------------------------

    async def release(self, body: Mapping[str, Any], *, retry: int, logger: kopf.Logger) -> None:
        """On delete: release what the source holds (a database lease; the Secret goes by
        garbage collection). Gives up after :data:`REVOKE_ATTEMPTS`: the lease then expires."""
        meta = body["metadata"]
        memory = self.memory.get((meta["namespace"], meta["name"]))
        try:
            spec = self.parse(copy.deepcopy(dict(body)))
        except InvalidSpecError:
            spec = None
        source = source_for(self.vault, meta["namespace"], spec.vault) if spec else None
        remembered = memory.lease if memory else None
        lease = source.lease(remembered, body.get("status") or {}) if source else None
        if source is not None and lease is not None:
            try:
                await source.revoke(lease)
            except VaultPathNotAllowed:
                pass  # not a lease of this source: nothing of ours to revoke
            except VaultError as error:
                if retry + 1 < REVOKE_ATTEMPTS:
                    raise kopf.TemporaryError(
                        f"revoking lease {lease.lease_id} failed: {error}",
                        delay=retry_delay(retry + 1, self.jitter()),
                    ) from None
                common.post_event(
                    body,
                    "LeaseNotRevoked",
                    f"could not revoke lease {lease.lease_id} ({error}); it expires by itself "
                    f"at {format_time(lease.expires_at)}",
                    warning=True,
                )
            else:
                logger.info("revoked lease %s", lease.lease_id)
        self.memory.pop((meta["namespace"], meta["name"]), None)
