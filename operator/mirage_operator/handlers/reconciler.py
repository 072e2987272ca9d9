"""The level-based reconcile loop every custom resource kind with children shares.

A kind supplies :meth:`Reconciler.reconcile` (parse, build, converge, report); this module
supplies the rest: per-object serialisation, error translation into kopf's retry semantics,
the ``InvalidSpec`` condition, status writes only when they change something, and the kopf
registrations (change handlers, the resync timer, child events, deletion bookkeeping).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar

import kopf

from mirage_operator import GROUP, VERSION, metrics
from mirage_operator.errors import ChildOwnedElsewhere, InvalidSpecError, TransientError
from mirage_operator.handlers import common
from mirage_operator.handlers.common import now, owner_of
from mirage_operator.handlers.context import OperatorContext
from mirage_operator.k8s import resources
from mirage_operator.k8s.resources import Resource
from mirage_operator.render.meta import MANAGED_BY, MANAGED_BY_LABEL
from mirage_operator.render.status import (
    get_condition,
    invalid_spec_conditions,
    merge_conditions,
    status_differs,
)


class Reconciler(abc.ABC):
    """Reconciliation of one custom resource at a time, for one kind."""

    kind: ClassVar[str]
    resource: ClassVar[Resource]
    status_resource: ClassVar[Resource]
    child_kinds: ClassVar[tuple[tuple[str, str], ...]]
    """``(apiVersion, kind)`` of every child; their events trigger a reconcile of the owner."""

    def __init__(self, context: OperatorContext) -> None:
        self.context = context

    @abc.abstractmethod
    async def reconcile(self, body: Mapping[str, Any], logger: kopf.Logger) -> None:
        """Bring every child of ``body`` to its desired state and report status."""

    async def write_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
        """Patch ``status`` unless the object already says it; whether it wrote."""
        if not status_differs(body.get("status") or {}, status):
            return False
        meta = body["metadata"]
        await self.context.kube.client.patch_status(
            self.status_resource, namespace=meta["namespace"], name=meta["name"], status=status
        )
        return True

    async def report_invalid(self, body: Mapping[str, Any], error: InvalidSpecError) -> None:
        """Set ``Ready=False/InvalidSpec`` naming the fields (no write if already reported)."""
        generation = body["metadata"].get("generation", 1)
        old_status = body.get("status") or {}
        status = {
            "observedGeneration": generation,
            "conditions": merge_conditions(
                old_status.get("conditions"),
                invalid_spec_conditions(str(error), generation=generation, reason=error.reason),
                now=now(),
            ),
        }
        if await self.write_status(body, status):
            common.post_event(body, error.reason, str(error), warning=True)

    async def run(
        self, body: Mapping[str, Any], logger: kopf.Logger, *, raise_invalid: bool
    ) -> None:
        """Reconcile under the object's lock, translating errors into kopf's retry semantics."""
        meta = body["metadata"]
        async with self.context.serializer.lock((self.kind, meta["namespace"], meta["name"])):
            await self.run_locked(body, logger, raise_invalid=raise_invalid)

    async def run_locked(
        self, body: Mapping[str, Any], logger: kopf.Logger, *, raise_invalid: bool
    ) -> None:
        """:meth:`run` for a caller that already holds the object's lock."""
        with metrics.time_reconcile(self.kind):
            try:
                await self.reconcile(body, logger)
            except InvalidSpecError as error:
                metrics.RECONCILES.labels(kind=self.kind, result="invalid").inc()
                await self.report_invalid(body, error)
                if raise_invalid:
                    raise kopf.PermanentError(f"invalid spec: {error}") from None
                return
            except TransientError as error:
                metrics.RECONCILES.labels(kind=self.kind, result="retry").inc()
                if isinstance(error, ChildOwnedElsewhere):
                    # Someone else's object: the user must act, so it is said on the object.
                    common.post_event(body, error.reason, str(error), warning=True)
                raise kopf.TemporaryError(str(error), delay=error.delay) from error
            except Exception:
                metrics.RECONCILES.labels(kind=self.kind, result="error").inc()
                raise
        metrics.RECONCILES.labels(kind=self.kind, result="success").inc()

    async def reconcile_by_name(self, namespace: str, name: str, logger: kopf.Logger) -> None:
        """Reconcile ``namespace/name`` as it is now (after a child event); lock held."""
        body = await self.context.kube.client.get(self.resource, namespace=namespace, name=name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return
        try:
            await self.run_locked(body, logger, raise_invalid=False)
        except kopf.TemporaryError as error:
            # The periodic resync retries; a child event has no retry of its own.
            logger.warning("reconcile after child event failed, will retry on resync: %s", error)


def invalid_already_reported(body: Mapping[str, Any]) -> bool:
    """Whether ``Ready`` already says ``InvalidSpec`` for the current generation."""
    ready = get_condition(body, "Ready")
    return bool(
        ready
        and ready.get("reason") == "InvalidSpec"
        and ready.get("observedGeneration") == body["metadata"].get("generation")
    )


def register_reconciler(registry: kopf.OperatorRegistry, reconciler: Reconciler) -> None:
    """Register ``reconciler``'s kind: changes, the resync timer, deletion, child events."""
    kind, plural = reconciler.kind, reconciler.resource.plural
    interval = reconciler.context.config.resync_interval
    prefix = kind.lower()

    @kopf.on.resume(GROUP, VERSION, plural, registry=registry, id="reconcile")
    @kopf.on.create(GROUP, VERSION, plural, registry=registry, id="reconcile")
    @kopf.on.update(GROUP, VERSION, plural, registry=registry, id="reconcile")
    async def on_change(body: kopf.Body, uid: str, logger: kopf.Logger, **_: Any) -> None:
        metrics.track_managed(kind, uid, present=True)
        await reconciler.run(body, logger, raise_invalid=True)

    @kopf.timer(GROUP, VERSION, plural, interval=interval, registry=registry, id="resync")
    async def resync(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
        # Level-based backstop; an invalid spec already reported costs nothing here.
        if not invalid_already_reported(body):
            await reconciler.run(body, logger, raise_invalid=False)

    @kopf.on.delete(GROUP, VERSION, plural, registry=registry, optional=True, id="forget")
    async def forget(uid: str, **_: Any) -> None:
        # Children go by garbage collection through their owner references.
        metrics.track_managed(kind, uid, present=False)

    async def on_child_event(
        body: kopf.Body, namespace: str | None, logger: kopf.Logger, **_: Any
    ) -> None:
        owner = owner_of(body, kind)
        if owner is None or namespace is None:
            return
        reconciler.context.serializer.request(
            (kind, namespace, owner), lambda: reconciler.reconcile_by_name(namespace, owner, logger)
        )

    for api_version, child in reconciler.child_kinds:
        group, _, version = api_version.rpartition("/")
        kopf.on.event(
            group,
            version,
            resources.for_kind(api_version, child).plural,
            labels={MANAGED_BY_LABEL: MANAGED_BY},
            registry=registry,
            id=f"{prefix}-child-{child}",
        )(on_child_event)
