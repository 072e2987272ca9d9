"""VaultSecret handlers: the operator's work queue keeps each VaultSecret's Secret in sync.

The queue is the object's only scheduler: it reconciles when the object or its Secret
changes (watch events; not the echoes of the operator's own writes), when the refresh
interval or the database lease asks for it, after a failure (backoff 5 s to 60 s with jitter,
not cut short by events that cannot change the outcome), and at each resync as a level-based
backstop. Every VaultSecret is reconciled when the operator starts (kopf's initial listing),
so changes made while the operator was down are caught. Whether a reconcile reads Vault is
decided by :func:`mirage_operator.vault.schedule.read_reasons`; the Secret is written only
when its data or metadata differ, and ``rolloutRestartTargets`` are restarted only when the
data's HMAC changed (docs/adr/0061, docs/adr/0063). Deleting a VaultSecret of the database
engine revokes its lease: only those carry a finalizer (docs/adr/0022).

Secret values exist only in memory, between the Vault read and the Secret write: logs, Events,
status and errors carry keys, paths, versions, lease IDs and HMACs.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import math
import random
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from mirage_operator import GROUP, VERSION, metrics
from mirage_operator.api.validation import admit
from mirage_operator.api.vaultsecret import RestartTarget, VaultSecretSpec, VaultSource
from mirage_operator.errors import (
    HMACKeyError,
    InvalidSpecError,
    KubernetesAPIError,
    SecretConflictError,
    SecretDataError,
    SecretExistsError,
    TransientError,
    VaultError,
    VaultPathNotAllowed,
)
from mirage_operator.handlers import common
from mirage_operator.handlers.context import ObjectKey, OperatorContext, Outcome
from mirage_operator.handlers.reconciler import watch_objects
from mirage_operator.k8s import resources
from mirage_operator.k8s.children import Observed, converge_children
from mirage_operator.k8s.ownership import ADOPTED_BY_ANNOTATION, controller_of, foreign_owner
from mirage_operator.logs import ObjectLogger
from mirage_operator.render.meta import MANAGED_BY, MANAGED_BY_LABEL, owner_reference
from mirage_operator.render.secret import (
    HMAC_KEY_BYTES,
    build_hmac_key_secret,
    build_secret,
    hmac_key_of,
    secret_labels,
    secret_mac,
    secret_with_data,
)
from mirage_operator.render.status import status_differs
from mirage_operator.render.vaultsecret import (
    LeaseStatus,
    failed_status,
    restart_done,
    restart_patch,
    synced_status,
)
from mirage_operator.template_worker import TemplateRunner
from mirage_operator.vault import Lease, VaultClient, VaultData
from mirage_operator.vault.schedule import (
    FORCE_SYNC_ANNOTATION,
    format_time,
    next_run_in,
    parse_time,
    read_reasons,
    retry_delay,
)
from mirage_operator.vault.tokenstore import SecretTokenStore

log = logging.getLogger(__name__)

KIND = "VaultSecret"
PLURAL = "vaultsecrets"
REVOKE_ATTEMPTS = 3
"""Attempts at revoking a lease on delete before letting it expire by itself (a Vault outage
must not keep a VaultSecret from being deleted)."""


@dataclass
class Memory:
    """What this process remembers of one VaultSecret between reconciles."""

    uid: str
    status: dict[str, Any] | None = None
    """The status as last written: fresher than a body whose watch event is still on its way."""
    synced_at: float | None = None
    """When Vault was last read successfully (to the sub-second; status keeps whole seconds)."""
    lease: Lease | None = None
    """database engine: the current lease, with what status cannot keep (its token)."""
    failures: int = 0
    """Failed syncs in a row, for the retry backoff."""
    checked: bool = False
    """Whether the object has been reconciled successfully since the operator started."""
    secret_version: str | None = None
    """resourceVersion of the Secret as the operator last wrote it (its watch echo is not
    a reason to reconcile)."""


def _reason(error: Exception) -> str:
    reason = getattr(error, "reason", None)
    if isinstance(reason, str):
        return reason
    if isinstance(error, KubernetesAPIError):
        return "KubernetesAPIError"
    return "InvalidSpec" if isinstance(error, InvalidSpecError) else "SyncFailed"


def _snapshot(body: Mapping[str, Any]) -> dict[str, Any]:
    # kopf updates a daemon's body in place as events arrive; a reconcile works on one version.
    return {key: copy.deepcopy(value) for key, value in body.items()}


def _desired_secret(
    body: Mapping[str, Any],
    spec: VaultSecretSpec,
    read: VaultData | None,
    live: Mapping[str, Any] | None,
    rendered: Mapping[str, bytes],
    *,
    adopted: bool,
) -> dict[str, Any]:
    """The Secret to converge: built from what was read, or — when there was no reason to
    read — the live Secret's data (known to be the synced data) with the spec's metadata, so
    that an edit of its labels or type is restored without Vault. ``adopted``: a Secret
    Mirage did not create, written under ``destination.overwrite`` (no owner reference)."""
    meta = body["metadata"]
    fields: dict[str, Any] = {
        "name": meta["name"],
        "namespace": meta["namespace"],
        "spec": spec,
        "labels": secret_labels(),
        "owner": owner_reference(body),
        "adopted_by": meta["name"] if adopted else None,
    }
    if read is not None:
        return build_secret(data=read.data, rendered=rendered, **fields)
    assert live is not None  # a missing Secret is always a reason to read
    return secret_with_data(data=live.get("data") or {}, **fields)


def _lease_status(lease: Lease | None) -> LeaseStatus | None:
    if lease is None:
        return None
    return LeaseStatus(lease.lease_id, int(lease.duration), format_time(lease.expires_at))


class VaultSecretReconciler:
    """Keeps each VaultSecret's Secret equal to what Vault holds."""

    def __init__(
        self,
        context: OperatorContext,
        *,
        vault: VaultClient,
        templates: TemplateRunner | None = None,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.context = context
        self.vault = vault
        self.templates = templates or TemplateRunner()
        self.clock = clock
        self.jitter = jitter
        self.memory: dict[tuple[str, str], Memory] = {}
        self._key: bytes | None = None
        self._key_lock = asyncio.Lock()

    # --- per-object memory ----------------------------------------------------------------

    def remember(self, namespace: str, name: str, uid: str) -> Memory:
        """The memory of ``namespace/name``; a new object of the same name starts afresh."""
        memory = self.memory.get((namespace, name))
        if memory is None or memory.uid != uid:
            memory = self.memory[namespace, name] = Memory(uid=uid)
        return memory

    def secret_changed(self, namespace: str, owner: str, secret: Mapping[str, Any]) -> bool:
        """Whether an event of ``owner``'s Secret is news (not the echo of our own write)."""
        memory = self.memory.get((namespace, owner))
        version = secret["metadata"].get("resourceVersion")
        return memory is None or memory.secret_version != version

    # --- the HMAC key ---------------------------------------------------------------------

    async def hmac_key(self, *, synced_before: bool) -> bytes:
        """The installation's HMAC key, from its Secret; created there when missing.
        ``synced_before``: the caller's VaultSecret has a MAC, so a new key means a lost one."""
        if self._key is None:
            async with self._key_lock:
                if self._key is None:
                    self._key = await self._load_key(synced_before=synced_before)
        return self._key

    async def _load_key(self, *, synced_before: bool) -> bytes:
        config, kube = self.context.config, self.context.kube.client
        where = f"{config.operator_namespace}/{config.hmac_key_secret}"
        secret = await kube.get(
            resources.SECRET, namespace=config.operator_namespace, name=config.hmac_key_secret
        )
        if secret is None:
            body = build_hmac_key_secret(
                name=config.hmac_key_secret,
                namespace=config.operator_namespace,
                key=secrets.token_bytes(HMAC_KEY_BYTES),
            )
            # No force: a key another replica created first wins (this apply then conflicts).
            secret = await kube.apply(
                resources.SECRET, body, field_manager=config.field_manager, force=False
            )
            if synced_before:
                log.warning(
                    "Created the HMAC key Secret %s although VaultSecrets were synced before: "
                    "their Secrets' MACs change, and their workloads restart once",
                    where,
                )
            else:
                log.info("Created the HMAC key Secret %s", where)
        key = hmac_key_of(secret)
        if key is None:
            raise HMACKeyError(
                f"Secret {where} holds no HMAC key (data.key, at least {HMAC_KEY_BYTES} bytes); "
                "repair or delete it",
                delay=60.0,
            )
        return key

    # --- reconciliation ---------------------------------------------------------------------

    async def run(self, body: Mapping[str, Any], logger: kopf.Logger) -> float:
        """Reconcile under the object's lock; seconds until the daemon should run it again."""
        meta = body["metadata"]
        with metrics.time_reconcile(KIND):
            async with self.context.serializer.lock((KIND, meta["namespace"], meta["name"])):
                return await self.sync(_snapshot(body), logger)

    async def sync(self, body: dict[str, Any], logger: kopf.Logger) -> float:
        """One reconcile, with failures reported in status and turned into a retry delay."""
        meta = body["metadata"]
        memory = self.remember(meta["namespace"], meta["name"], meta["uid"])
        try:
            delay = await self._sync(body, memory, logger)
        except InvalidSpecError as error:
            # Nothing to retry until the spec changes (a watch event wakes the daemon then).
            metrics.RECONCILES.labels(kind=KIND, result="invalid").inc()
            await self._report_failure(body, memory, error, invalid_spec=True, logger=logger)
            return math.inf
        except (TransientError, SecretDataError) as error:
            metrics.RECONCILES.labels(kind=KIND, result="retry").inc()
            memory.failures += 1
            delay = retry_delay(memory.failures, self.jitter())
            logger.warning("sync failed, retrying in %.0fs: %s", delay, error)
            await self._report_failure(body, memory, error, invalid_spec=False, logger=logger)
            return delay
        except Exception:
            metrics.RECONCILES.labels(kind=KIND, result="error").inc()
            memory.failures += 1
            logger.exception("sync failed unexpectedly")
            return retry_delay(memory.failures, self.jitter())
        metrics.RECONCILES.labels(kind=KIND, result="success").inc()
        memory.failures = 0
        return delay

    async def _sync(self, body: dict[str, Any], memory: Memory, logger: kopf.Logger) -> float:
        config, kube = self.context.config, self.context.kube.client
        meta = body["metadata"]
        name, namespace, generation = meta["name"], meta["namespace"], meta.get("generation", 1)
        old = memory.status if memory.status is not None else dict(body.get("status") or {})

        spec = VaultSecretSpec.from_spec(
            admit(body)["spec"], default_refresh_interval=config.vault_default_refresh_interval
        )
        self.vault.check_allowed(namespace, spec.vault)
        key = await self.hmac_key(synced_before=bool(old.get("secretMAC")))
        secret_name = spec.secret_name(name)
        observed, adopted = await self._observe(body, spec, old.get("secretName"))
        live = observed.get(("Secret", secret_name))
        live_mac = secret_mac(key, live.get("data") or {}) if live is not None else None

        now = self.clock()
        force = (meta.get("annotations") or {}).get(FORCE_SYNC_ANNOTATION)
        reasons = read_reasons(
            engine=spec.vault.engine,
            generation=generation,
            force_sync=force,
            status=old,
            live_mac=live_mac,
            first_check=not memory.checked,
            synced_at=memory.synced_at or parse_time(old.get("lastSyncTime")),
            refresh_interval=spec.refresh_interval,
            now=now,
        )
        lease, read = await self._read(
            namespace, spec.vault, reasons, self._lease(memory, old, spec)
        )
        if read is not None:
            logger.info("read Vault %s (%s)", spec.vault.display, ", ".join(reasons) or "lease")
            memory.synced_at = now
        # Templates run in a bounded worker process, off the event loop (docs/adr/0067).
        rendered = (
            await self.templates.render_all(spec.templates, read.data) if read is not None else {}
        )
        desired = _desired_secret(body, spec, read, live, rendered, adopted=adopted)
        mac = secret_mac(key, desired["data"])

        try:
            result = await converge_children(
                kube,
                owner=body,
                desired=[desired],
                observed=observed,
                field_manager=config.field_manager,
                known={("Secret", secret_name)} if old.get("secretMAC") else set(),
            )
        except KubernetesAPIError as error:
            # The API server's own message is left out: it might quote what was sent.
            raise error.about(f"writing Secret {secret_name}", quote_values=False) from None
        for failure in result.failed.values():
            # Only the fields and the reason: the API server's message might quote the data.
            raise failure.about("writing the Secret", quote_values=False) from None
        written = await self._remove_other_keys(
            namespace, desired, result.live.get(("Secret", secret_name))
        ) or result.live.get(("Secret", secret_name))
        if written is not None:
            memory.secret_version = written["metadata"].get("resourceVersion")
        common.post_sync_events(body, result)

        # The MAC the workloads last saw: status (written last, so a crash before it repeats
        # the restart, which is idempotent), or the live data for a Secret not synced before.
        baseline = old.get("secretMAC") or live_mac
        if baseline is not None and baseline != mac and spec.rollout_restart_targets:
            await self._restart(body, spec.rollout_restart_targets, mac)

        memory.lease = lease
        version = read.version if read is not None else old.get("vaultVersion")
        status = synced_status(
            generation=generation,
            old_status=old,
            secret_name=secret_name,
            mac=mac,
            source=spec.vault.display,
            last_sync=format_time(now) if read is not None else old.get("lastSyncTime"),
            vault_version=version if spec.vault.engine == "kv-v2" else None,
            lease=_lease_status(lease),
            force_sync=force if read is not None else None,
            refresh_interval=spec.refresh_interval,
            now=common.now(),
        )
        await self._write_status(body, memory, old, status)
        memory.checked = True
        return next_run_in(
            refresh_interval=spec.refresh_interval if spec.vault.engine != "database" else 0,
            synced_at=memory.synced_at or parse_time(status["lastSyncTime"]),
            lease_check_at=self.vault.next_check_at(namespace, lease) if lease else None,
            resync_interval=config.resync_interval,
            now=now,
        )

    async def _observe(
        self, body: Mapping[str, Any], spec: VaultSecretSpec, previous: str | None
    ) -> tuple[Observed, bool]:
        """The Secret this VaultSecret writes, and the one it wrote before under another
        destination name (so that it is deleted), each read by name; and whether the first is
        a Secret Mirage did not create that ``destination.overwrite`` lets it write into.

        A Secret controlled by another object is left alone (:class:`SecretConflictError`);
        one nobody controls (a user's own) too (:class:`SecretExistsError`), unless
        ``destination.overwrite`` is set (docs/adr/0069). A previous destination is deleted
        only when this VaultSecret controls it.
        """
        kube = self.context.kube.client
        meta = body["metadata"]
        namespace, secret_name = meta["namespace"], spec.secret_name(meta["name"])
        observed: Observed = {}
        adopted = False
        for name in dict.fromkeys(n for n in (secret_name, previous) if n):
            secret = await kube.get(resources.SECRET, namespace=namespace, name=name)
            foreign = foreign_owner(secret, body) if secret is not None else None
            if secret is None or (foreign is not None and name != secret_name):
                continue  # gone, or a previous destination that is not ours: left alone
            if foreign is not None:
                self._check_adoption(secret, spec, foreign, meta["name"])
                adopted = True
            observed["Secret", name] = secret
        return observed, adopted

    @staticmethod
    def _check_adoption(
        secret: Mapping[str, Any], spec: VaultSecretSpec, foreign: str, vault_secret: str
    ) -> None:
        """Raise unless ``destination.overwrite`` lets ``vault_secret`` write into the
        existing ``secret`` it does not control (``foreign`` says why)."""
        name = secret["metadata"]["name"]
        if controller_of(secret) is not None:
            raise SecretConflictError(
                f"{foreign}; choose another spec.destination.name", delay=60.0
            )
        adopter = (secret["metadata"].get("annotations") or {}).get(ADOPTED_BY_ANNOTATION)
        if adopter not in (None, vault_secret):
            raise SecretConflictError(
                f"Secret/{name} is written by VaultSecret {adopter}; choose another "
                "spec.destination.name",
                delay=60.0,
            )
        if not spec.destination.overwrite:
            raise SecretExistsError(
                f"{foreign}: left alone; set spec.destination.overwrite: true to replace its "
                "data with Vault's (it is then kept when this VaultSecret is deleted), or "
                "choose another spec.destination.name",
                delay=60.0,
            )
        live_type = secret.get("type", "Opaque")
        if live_type != spec.destination.type:
            raise SecretExistsError(
                f"Secret/{name} has type {live_type} and spec.destination.type is "
                f"{spec.destination.type}; a Secret's type cannot change",
                delay=60.0,
            )

    async def _remove_other_keys(
        self, namespace: str, desired: Mapping[str, Any], live: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        """Remove the keys of the live Secret that the VaultSecret does not write (another
        writer's, or a user's in a Secret written under ``destination.overwrite``): the Secret
        holds exactly Vault's data, and its HMAC stays equal to status. The Secret after the
        patch, if one was needed."""
        extra = set((live or {}).get("data") or {}) - set(desired["data"])
        if live is None or not extra:
            return None
        return await self.context.kube.client.merge_patch(
            resources.SECRET,
            namespace=namespace,
            name=live["metadata"]["name"],
            patch={"data": dict.fromkeys(sorted(extra))},
        )

    def _lease(
        self, memory: Memory, status: Mapping[str, Any], spec: VaultSecretSpec
    ) -> Lease | None:
        """The current lease of a database source: remembered, or rebuilt from status after a
        restart. A lease of another role (the spec changed) is forgotten: it expires alone."""
        if spec.vault.engine != "database":
            return None
        prefix = f"{spec.vault.mount}/creds/{spec.vault.path}/"
        if memory.lease is not None and memory.lease.lease_id.startswith(prefix):
            return memory.lease
        lease_id = status.get("leaseID")
        expiry = parse_time(status.get("leaseExpiry"))
        duration = status.get("leaseDuration")
        if not lease_id or not str(lease_id).startswith(prefix) or expiry is None or not duration:
            return None
        return Lease.from_status(str(lease_id), float(duration), expiry)

    async def _read(
        self,
        namespace: str,
        source: VaultSource,
        reasons: tuple[str, ...],
        lease: Lease | None,
    ) -> tuple[Lease | None, VaultData | None]:
        """(lease to keep, data read or ``None``). Database credentials are new only when the
        reasons need new data or the lease cannot be kept; otherwise the lease is renewed
        when due."""
        if source.engine != "database":
            return None, (await self.vault.read(namespace, source) if reasons else None)
        if reasons:
            fresh = await self.vault.read(namespace, source)
            return fresh.lease, fresh
        return await self.vault.ensure_credentials(namespace, source, lease)

    async def _restart(
        self, body: Mapping[str, Any], targets: tuple[RestartTarget, ...], mac: str
    ) -> None:
        """Set each target's pod-template annotation for this VaultSecret to ``mac``."""
        kube = self.context.kube.client
        meta = body["metadata"]
        restarted, missing = [], []
        for target in targets:
            resource = resources.for_kind("apps/v1", target.kind)
            workload = await kube.get(resource, namespace=meta["namespace"], name=target.name)
            if workload is None:
                missing.append(f"{target.kind}/{target.name}")
                continue
            if restart_done(workload, vault_secret=meta["name"], mac=mac):
                continue
            await kube.merge_patch(
                resource,
                namespace=meta["namespace"],
                name=target.name,
                patch=restart_patch(vault_secret=meta["name"], mac=mac),
            )
            restarted.append(f"{target.kind}/{target.name}")
            metrics.ROLLOUT_RESTARTS.labels(kind=target.kind).inc()
        if restarted:
            common.post_event(
                body, "RolloutRestarted", "secret data changed; restarted " + ", ".join(restarted)
            )
        if missing:
            common.post_event(
                body,
                "RestartTargetMissing",
                "secret data changed; not found: " + ", ".join(missing),
                warning=True,
            )

    async def _write_status(
        self,
        body: Mapping[str, Any],
        memory: Memory,
        old: Mapping[str, Any],
        status: Mapping[str, Any],
    ) -> bool:
        """Merge-patch ``status`` unless ``old`` already says it; whether it wrote."""
        if not status_differs(old, status):
            return False
        meta = body["metadata"]
        answer = await self.context.kube.client.patch_status(
            resources.VAULT_SECRET_STATUS,
            namespace=meta["namespace"],
            name=meta["name"],
            status=status,
        )
        self.context.cache_answer((KIND, meta["namespace"], meta["name"]), body, answer)
        merged = {**old, **status}
        memory.status = {k: v for k, v in merged.items() if v is not None}
        return True

    async def _report_failure(
        self,
        body: dict[str, Any],
        memory: Memory,
        error: Exception,
        *,
        invalid_spec: bool,
        logger: kopf.Logger,
    ) -> None:
        """``Ready=False``/``Synced=False`` with the error's reason; the Secret is untouched."""
        old = memory.status if memory.status is not None else dict(body.get("status") or {})
        reason = _reason(error)
        status = failed_status(
            generation=body["metadata"].get("generation", 1),
            old_status=old,
            reason=reason,
            message=str(error),
            invalid_spec=invalid_spec,
            now=common.now(),
        )
        try:
            if await self._write_status(body, memory, old, status):
                common.post_event(body, reason, str(error), warning=True)
        except TransientError as write_error:
            logger.warning("could not report the failure in status: %s", write_error)

    # --- deletion ---------------------------------------------------------------------------

    async def release(self, body: Mapping[str, Any], *, retry: int, logger: kopf.Logger) -> None:
        """On delete: revoke the database lease (the Secret goes by garbage collection)."""
        meta = body["metadata"]
        memory = self.memory.get((meta["namespace"], meta["name"]))
        try:
            spec = VaultSecretSpec.from_spec(
                admit(_snapshot(body))["spec"],
                default_refresh_interval=self.context.config.vault_default_refresh_interval,
            )
        except InvalidSpecError:
            spec = None
        lease = (
            self._lease(memory or Memory(uid=meta["uid"]), body.get("status") or {}, spec)
            if spec is not None
            else None
        )
        if spec is not None and lease is not None:
            try:
                await self.vault.revoke_lease(meta["namespace"], spec.vault, lease.lease_id)
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


def _holds_lease(spec: kopf.Spec, **_: Any) -> bool:
    """Whether a VaultSecret reads the database engine (whose lease is revoked on delete)."""
    return bool((spec.get("vault") or {}).get("engine") == "database")


def register(registry: kopf.OperatorRegistry, context: OperatorContext) -> VaultSecretReconciler:
    """Register the VaultSecret handlers; return the reconciler they share."""

    async def token_for(namespace: str, service_account: str, audience: str, seconds: int) -> str:
        return await context.kube.client.request_token(
            namespace, service_account, audience, seconds
        )

    # Tokens outlive the process, so that the next leader keeps renewing their leases.
    config = context.config
    store = SecretTokenStore(config, context.kube) if config.vault_token_secret else None
    reconciler = VaultSecretReconciler(
        context, vault=VaultClient(context.config, token_for=token_for, store=store)
    )

    async def process(key: ObjectKey) -> Outcome:
        body = context.objects.get(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return Outcome(math.inf)
        delay = await reconciler.run(body, ObjectLogger(log, key[1], key[2]))
        memory = reconciler.memory.get((key[1], key[2]))
        # After a failure, events that cannot change the outcome wait for the backoff.
        return Outcome(delay, hold=memory is not None and memory.failures > 0)

    def forget(key: ObjectKey, uid: str) -> None:
        reconciler.memory.pop((key[1], key[2]), None)
        context.queue.forget(key)

    context.queue.process[KIND] = process
    watch_objects(registry, context, PLURAL, context.queue.add, forget)

    # Only a database lease needs cleaning up when a VaultSecret goes: kopf puts its
    # finalizer on those alone (and takes it off others, where an older version left it).
    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, id="release", when=_holds_lease)
    async def release(
        body: kopf.Body,
        namespace: str | None,
        name: str,
        retry: int,
        logger: kopf.Logger,
        **_: Any,
    ) -> None:
        assert namespace is not None  # VaultSecrets are namespaced
        async with context.serializer.lock((KIND, namespace, name)):
            await reconciler.release(body, retry=retry, logger=logger)

    @kopf.on.event(
        "",
        "v1",
        "secrets",
        labels={MANAGED_BY_LABEL: MANAGED_BY},
        registry=registry,
        id="secret-event",
    )
    async def on_secret_event(body: kopf.Body, namespace: str | None, **_: Any) -> None:
        annotations = body.get("metadata", {}).get("annotations") or {}
        owner = common.owner_of(body, KIND) or annotations.get(ADOPTED_BY_ANNOTATION)
        if owner is not None and namespace and reconciler.secret_changed(namespace, owner, body):
            context.queue.add((KIND, namespace, owner))

    @kopf.on.cleanup(registry=registry, id="close-vault")
    async def close_vault(**_: Any) -> None:
        await reconciler.vault.close()
        await reconciler.templates.close()

    return reconciler
