"""ServiceLevelObjective handlers: parse the spec, build the PrometheusRule and the dashboard,
converge them, report the rule set in status. Same shape as the MirageService handlers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from mirage_operator import GROUP, VERSION, metrics
from mirage_operator.api.slo import ServiceLevelObjectiveSpec
from mirage_operator.api.validation import admit
from mirage_operator.errors import InvalidSpecError, KubernetesAPIError, TransientError
from mirage_operator.handlers import common
from mirage_operator.handlers.common import now, owner_of
from mirage_operator.handlers.context import OperatorContext
from mirage_operator.k8s import resources
from mirage_operator.k8s.children import converge_children, observe_children
from mirage_operator.render.meta import MANAGED_BY, MANAGED_BY_LABEL
from mirage_operator.render.slo import (
    CHILD_KINDS,
    build_slo_children,
    build_slo_status,
    rules_unavailable_status,
)
from mirage_operator.render.status import (
    get_condition,
    invalid_spec_conditions,
    merge_conditions,
    status_differs,
)

KIND = "ServiceLevelObjective"
PLURAL = "servicelevelobjectives"
# Without prometheus-operator there is nothing to retry quickly for.
UNAVAILABLE_RETRY_DELAY = 60.0


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


class SLOReconciler:
    """Level-based reconciliation of one ServiceLevelObjective at a time."""

    def __init__(self, context: OperatorContext) -> None:
        self.context = context

    async def _write_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
        """Patch ``status`` unless it is already what the object says; whether it wrote."""
        if not status_differs(body.get("status") or {}, status):
            return False
        meta = body["metadata"]
        await self.context.kube.client.patch_status(
            resources.SLO_STATUS, namespace=meta["namespace"], name=meta["name"], status=status
        )
        return True

    async def reconcile(self, body: Mapping[str, Any], logger: kopf.Logger) -> None:
        """Bring the PrometheusRule and dashboard of ``body`` to their desired state."""
        config, kube = self.context.config, self.context.kube.client
        meta = body["metadata"]
        name, namespace, generation = meta["name"], meta["namespace"], meta.get("generation", 1)
        old_status = body.get("status") or {}

        slo = ServiceLevelObjectiveSpec.from_spec(admit(body)["spec"])
        desired = build_slo_children(
            name=name, namespace=namespace, slo=slo, config=config, owner=body
        )
        # A rule name in status means the children existed after the last successful sync, so
        # one found missing or changed now is drift.
        known = {_key(d) for d in desired} if old_status.get("ruleName") else set()
        try:
            observed = await observe_children(kube, owner=body, kinds=CHILD_KINDS)
            result = await converge_children(
                kube,
                owner=body,
                desired=desired,
                observed=observed,
                field_manager=config.field_manager,
                known=known,
            )
        except KubernetesAPIError as error:
            if error.status != 404:
                raise
            # The PrometheusRule resource is not served: say so, and retry slowly.
            message = (
                "monitoring.coreos.com/v1 PrometheusRule is not served by this cluster; "
                f"install prometheus-operator ({error})"
            )
            status = rules_unavailable_status(
                generation=generation, old_status=old_status, message=message, now=now()
            )
            if await self._write_status(body, status):
                common.post_event(body, "PrometheusRuleUnavailable", message, warning=True)
            raise TransientError(message, delay=UNAVAILABLE_RETRY_DELAY) from error
        common.post_sync_events(body, result)
        status = build_slo_status(
            generation=generation, old_status=old_status, rule=desired[0], now=now()
        )
        await self._write_status(body, status)
        logger.debug("reconciled: %d applied, %d deleted", len(result.applied), len(result.deleted))

    async def report_invalid(self, body: Mapping[str, Any], error: InvalidSpecError) -> None:
        """Set ``Ready=False/InvalidSpec`` naming the fields (no write if already reported)."""
        generation = body["metadata"].get("generation", 1)
        old_status = body.get("status") or {}
        status = {
            "observedGeneration": generation,
            "conditions": merge_conditions(
                old_status.get("conditions"),
                invalid_spec_conditions(str(error), generation=generation),
                now=now(),
            ),
        }
        if await self._write_status(body, status):
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
        """Reconcile the SLO ``namespace/name`` as it is now (after a child event)."""
        body = await self.context.kube.client.get(resources.SLO, namespace=namespace, name=name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return
        try:
            await self._run_locked(body, logger, raise_invalid=False)
        except kopf.TemporaryError as error:
            # The periodic resync retries; a child event has no retry of its own.
            logger.warning("reconcile after child event failed, will retry on resync: %s", error)


def register(registry: kopf.OperatorRegistry, context: OperatorContext) -> SLOReconciler:
    """Register the ServiceLevelObjective handlers; return the reconciler they share."""
    reconciler = SLOReconciler(context)
    managed: dict[str, str] = {MANAGED_BY_LABEL: MANAGED_BY}

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry)
    async def on_slo_change(body: kopf.Body, uid: str, logger: kopf.Logger, **_: Any) -> None:
        metrics.track_managed(KIND, uid, present=True)
        await reconciler.run(body, logger, raise_invalid=True)

    @kopf.timer(GROUP, VERSION, PLURAL, interval=context.config.resync_interval, registry=registry)
    async def slo_resync(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
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

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, optional=True)
    async def on_slo_delete(uid: str, **_: Any) -> None:
        # The PrometheusRule and dashboard go by garbage collection (owner references).
        metrics.track_managed(KIND, uid, present=False)

    async def on_slo_child_event(
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
            group,
            version,
            resource.plural,
            labels=managed,
            registry=registry,
            id=f"slo-child-{kind}",
        )(on_slo_child_event)
    return reconciler
