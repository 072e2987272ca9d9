"""MirageService handlers: parse the spec, build the children, converge them, report status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from mirage_operator import GROUP, VERSION, metrics
from mirage_operator.api.mirageservice import MirageServiceSpec
from mirage_operator.api.validation import admit
from mirage_operator.errors import InvalidSpecError, TransientError
from mirage_operator.handlers import common
from mirage_operator.handlers.common import now, owner_of
from mirage_operator.handlers.context import OperatorContext
from mirage_operator.k8s import resources
from mirage_operator.k8s.children import Observed, converge_children, observe_children
from mirage_operator.render.meta import MANAGED_BY, MANAGED_BY_LABEL
from mirage_operator.render.mirageservice import CHILD_KINDS, build_children, pod_checksum
from mirage_operator.render.status import (
    build_service_status,
    get_condition,
    invalid_spec_conditions,
    merge_conditions,
    status_differs,
)
from mirage_operator.render.workload import secret_name

KIND = "MirageService"
PLURAL = "mirageservices"


def secret_state(
    spec: MirageServiceSpec, name: str, observed: Observed
) -> tuple[dict[str, str], list[str]]:
    """(HMAC by secret name, secrets not synced yet) from the live child VaultSecrets."""
    macs, pending = {}, []
    for secret in spec.secrets:
        child = observed.get(("VaultSecret", secret_name(name, secret.name)))
        mac = (child or {}).get("status", {}).get("secretMAC")
        if mac:
            macs[secret.name] = mac
        else:
            pending.append(secret.name)
    return macs, pending


def failing_children(observed: Observed) -> list[str]:
    """Child custom resources whose own Ready condition is False."""
    failing = []
    for (kind, child_name), child in sorted(observed.items()):
        if kind in ("VaultSecret", "ServiceLevelObjective"):
            ready = get_condition(child, "Ready")
            if ready is not None and ready.get("status") == "False":
                failing.append(f"{kind}/{child_name} ({ready.get('reason')})")
    return failing


class ServiceReconciler:
    """Level-based reconciliation of one MirageService at a time."""

    def __init__(self, context: OperatorContext) -> None:
        self.context = context

    async def reconcile(self, body: Mapping[str, Any], logger: kopf.Logger) -> None:
        """Bring every child of ``body`` to its desired state and report status."""
        config, kube = self.context.config, self.context.kube.client
        meta = body["metadata"]
        name, namespace, generation = meta["name"], meta["namespace"], meta.get("generation", 1)
        old_status = body.get("status") or {}

        spec = MirageServiceSpec.from_spec(admit(body)["spec"])
        observed = await observe_children(kube, owner=body, kinds=CHILD_KINDS)
        macs, pending = secret_state(spec, name, observed)
        desired = build_children(
            name=name, namespace=namespace, spec=spec, config=config, owner=body, secret_macs=macs
        )
        keep = []
        if pending:
            # Pods cannot start without their Secrets: hold the Deployment back (keeping an
            # existing one as it is) until every secret has synced once.
            desired = [d for d in desired if d["kind"] != "Deployment"]
            keep.append(("Deployment", name))
        known = {(c["kind"], c["name"]) for c in old_status.get("children", [])}
        result = await converge_children(
            kube,
            owner=body,
            desired=desired,
            observed=observed,
            field_manager=config.field_manager,
            known=known,
            keep=keep,
        )
        common.post_sync_events(body, result)

        children = [
            {"apiVersion": d["apiVersion"], "kind": d["kind"], "name": d["metadata"]["name"]}
            for d in desired
        ]
        status = build_service_status(
            generation=generation,
            old_status=old_status,
            deployment=result.live.get(("Deployment", name)) or observed.get(("Deployment", name)),
            children=children,
            pending_secrets=pending,
            failing_children=failing_children(observed),
            checksum=pod_checksum(spec=spec, secret_macs=macs),
            now=now(),
        )
        if status_differs(old_status, status):
            await kube.patch_status(
                resources.MIRAGE_SERVICE_STATUS, namespace=namespace, name=name, status=status
            )
        logger.debug("reconciled: %d applied, %d deleted", len(result.applied), len(result.deleted))

    async def report_invalid(self, body: Mapping[str, Any], error: InvalidSpecError) -> None:
        """Set ``Ready=False/InvalidSpec`` naming the fields (no write if already reported)."""
        meta = body["metadata"]
        generation = meta.get("generation", 1)
        old_status = body.get("status") or {}
        status = {
            "observedGeneration": generation,
            "conditions": merge_conditions(
                old_status.get("conditions"),
                invalid_spec_conditions(str(error), generation=generation),
                now=now(),
            ),
        }
        if status_differs(old_status, status):
            await self.context.kube.client.patch_status(
                resources.MIRAGE_SERVICE_STATUS,
                namespace=meta["namespace"],
                name=meta["name"],
                status=status,
            )
            common.post_event(body, "InvalidSpec", str(error), warning=True)

    async def run(
        self, body: Mapping[str, Any], logger: kopf.Logger, *, raise_invalid: bool
    ) -> None:
        """Reconcile under the object's lock, translating errors into kopf's retry semantics."""
        meta = body["metadata"]
        key = (KIND, meta["namespace"], meta["name"])
        with metrics.time_reconcile(KIND):
            async with self.context.serializer.lock(key):
                await self._run_locked(body, logger, raise_invalid=raise_invalid)

    async def _run_locked(
        self, body: Mapping[str, Any], logger: kopf.Logger, *, raise_invalid: bool
    ) -> None:
        try:
            await self.reconcile(body, logger)
        except InvalidSpecError as error:
            metrics.RECONCILES.labels(kind=KIND, result="invalid").inc()
            await self.report_invalid(body, error)
            if raise_invalid:
                raise kopf.PermanentError(f"invalid spec: {error}") from None
            return
        except TransientError as error:
            metrics.RECONCILES.labels(kind=KIND, result="retry").inc()
            raise kopf.TemporaryError(str(error), delay=error.delay) from error
        except Exception:
            metrics.RECONCILES.labels(kind=KIND, result="error").inc()
            raise
        metrics.RECONCILES.labels(kind=KIND, result="success").inc()

    async def reconcile_by_name(self, namespace: str, name: str, logger: kopf.Logger) -> None:
        """Reconcile the MirageService ``namespace/name`` as it is now (after a child event)."""
        body = await self.context.kube.client.get(
            resources.MIRAGE_SERVICE, namespace=namespace, name=name
        )
        if body is None or body["metadata"].get("deletionTimestamp"):
            return
        try:
            await self._run_locked(body, logger, raise_invalid=False)
        except kopf.TemporaryError as error:
            # The periodic resync retries; a child event has no retry of its own.
            logger.warning("reconcile after child event failed, will retry on resync: %s", error)


def register(registry: kopf.OperatorRegistry, context: OperatorContext) -> ServiceReconciler:
    """Register the MirageService handlers; return the reconciler they share."""
    reconciler = ServiceReconciler(context)
    managed: dict[str, str] = {MANAGED_BY_LABEL: MANAGED_BY}

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")
    async def on_change(body: kopf.Body, uid: str, logger: kopf.Logger, **_: Any) -> None:
        metrics.track_managed(KIND, uid, present=True)
        await reconciler.run(body, logger, raise_invalid=True)

    @kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        interval=context.config.resync_interval,
        registry=registry,
        id="resync",
    )
    async def resync(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
        # Level-based backstop: an invalid spec already reported costs nothing here.
        ready = get_condition(body, "Ready")
        generation = body["metadata"].get("generation")
        if (
            ready
            and ready.get("reason") == "InvalidSpec"
            and ready.get("observedGeneration") == generation
        ):
            return
        await reconciler.run(body, logger, raise_invalid=False)

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, optional=True, id="forget")
    async def on_delete(uid: str, **_: Any) -> None:
        # Children go by garbage collection through their owner references.
        metrics.track_managed(KIND, uid, present=False)

    async def on_child_event(
        body: kopf.Body, namespace: str | None, logger: kopf.Logger, **_: Any
    ) -> None:
        owner = owner_of(body, KIND)
        if owner is None or namespace is None:
            return
        context.serializer.request(
            (KIND, namespace, owner), lambda: reconciler.reconcile_by_name(namespace, owner, logger)
        )

    for api_version, kind in CHILD_KINDS:
        resource = resources.for_kind(api_version, kind)
        group, _, version = api_version.rpartition("/")
        kopf.on.event(
            group, version, resource.plural, labels=managed, registry=registry, id=f"child-{kind}"
        )(on_child_event)
    return reconciler
