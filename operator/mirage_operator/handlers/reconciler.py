"""The level-based reconcile loop every custom resource kind with children shares.

A kind supplies :meth:`Reconciler.reconcile` (parse, build, converge, report); this module
supplies the rest: the watch-fed caches it reads (the custom resources and the index of
their children), the work queue that schedules reconciles (events, resync, backoff), error
translation into status conditions (docs/adr/0020); :mod:`.watches` registers the watches.

kopf is used for its watches only: ``on.event`` for the custom resources and ``index`` for
the children (kopf holds every handler back until the indices have their initial listing, so
the first reconcile already sees every child). No change handler, timer or daemon is
registered for these kinds, so kopf writes nothing on them: no finalizer (there is nothing
to clean up: children go by garbage collection), no diff-base or progress annotation — and it
removes a finalizer an earlier version of the operator left (docs/adr/0022).
"""

from __future__ import annotations

import abc
import logging
import math
import random
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import kopf

from mirage_operator import metrics
from mirage_operator.errors import (
    ChildNameConflictError,
    InvalidSpecError,
    KubernetesAPIError,
    SecretDataError,
    TransientError,
)
from mirage_operator.handlers import common
from mirage_operator.handlers.common import now
from mirage_operator.handlers.context import ObjectKey, OperatorContext, Outcome
from mirage_operator.k8s.resources import Resource
from mirage_operator.logs import ObjectLogger
from mirage_operator.render.status import (
    condition,
    get_condition,
    invalid_spec_conditions,
    merge_conditions,
    status_differs,
)

log = logging.getLogger(__name__)

BACKOFF_MAX = 300.0
"""Longest wait between retries of a failing reconcile (a missing RBAC grant or CRD: retried
every five minutes, not every minute)."""
RESYNC_JITTER = 0.1
"""Resyncs are spread over ``interval * (1 + RESYNC_JITTER)`` so that objects created together
do not resync together."""


def backoff(first: float, failures: int, jitter: float) -> float:
    """Seconds before retry number ``failures``: ``first`` (the error's own: Retry-After, or
    1 s for a conflict, 5 s for an overloaded server) doubling per failure in a row, at most
    ``BACKOFF_MAX``, spread over the top fifth by ``jitter`` (0-1) so that objects failing
    together do not retry together."""
    ceiling = min(BACKOFF_MAX, max(first, 1.0) * 2.0 ** min(failures - 1, 16))
    return ceiling * (0.8 + 0.2 * jitter)


def key_of(obj: Mapping[str, Any]) -> ObjectKey:
    """``(kind, namespace, name)`` of a custom resource."""
    meta = obj["metadata"]
    return str(obj["kind"]), str(meta.get("namespace") or ""), str(meta["name"])


def failed_conditions(reason: str, message: str, *, generation: int | None) -> list[dict[str, Any]]:
    """Conditions of a resource whose last reconcile failed (not because of its spec)."""
    return [
        condition("Ready", False, reason, message, generation=generation),
        condition("Progressing", False, reason, "will retry", generation=generation),
        condition("Degraded", True, reason, message, generation=generation),
    ]


class Reconciler(abc.ABC):
    """Reconciliation of one custom resource at a time, for one kind."""

    kind: ClassVar[str]
    resource: ClassVar[Resource]
    status_resource: ClassVar[Resource]
    child_kinds: ClassVar[tuple[tuple[str, str], ...]]
    """``(apiVersion, kind)`` of every child; their events trigger a reconcile of the owner."""
    refused_writes_retried: ClassVar[bool] = False
    """Whether a write the API server refuses as malformed is retried with backoff. Where
    what is written follows from the spec alone it is not: it waits for the next change of
    the object. A VaultSecret's Secret holds Vault's data, which changes by itself."""

    def __init__(
        self, context: OperatorContext, *, jitter: Callable[[], float] = random.random
    ) -> None:
        self.context = context
        self.jitter = jitter
        """0-1, spreads retries and resyncs (tests fix it)."""
        self.failures: dict[ObjectKey, int] = {}
        self.fingerprints: dict[ObjectKey, tuple[str, int]] = {}
        """What the object and its children were when a reconcile last succeeded: a resync
        that finds the same needs no reconcile (nothing it reads has changed)."""
        self.stale: set[ObjectKey] = set()
        """Objects an event says must be reconciled, whatever their fingerprint."""
        self._unchanged = metrics.RESYNCS.labels(kind=self.kind, result="unchanged")
        self._reconciled = metrics.RESYNCS.labels(kind=self.kind, result="reconciled")

    @abc.abstractmethod
    async def reconcile(self, body: Mapping[str, Any], logger: kopf.Logger) -> float | None:
        """Bring every child of ``body`` to its desired state and report status. A number
        asks for another reconcile after at most that many seconds (status deferred until
        the children just written report theirs), ``None`` for the regular resync."""

    def last_status(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """The status a reconcile of ``body`` starts from, and compares its own with."""
        return body.get("status") or {}

    async def write_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
        """Patch ``status`` unless the object already says it; whether it wrote. The answer
        replaces the cached body, so that its watch echo is recognised as nothing new; when
        the object is itself a child (an SLO of a MirageService) it goes into the child index
        too, and its owner is reconciled at once: the owner's status waits for this one, and
        the child watch's echo may come after the owner's next reconcile."""
        if not status_differs(self.last_status(body), status):
            return False
        meta = body["metadata"]
        answer = await self.context.kube.client.patch_status(
            self.status_resource, namespace=meta["namespace"], name=meta["name"], status=status
        )
        self.context.cache_answer(key_of(body), body, answer)
        if isinstance(answer, dict) and answer.get("metadata", {}).get("ownerReferences"):
            self.context.store_child(answer)
        return True

    def failed_status(
        self, body: Mapping[str, Any], reason: str, message: str, *, invalid_spec: bool
    ) -> dict[str, Any]:
        """The status of ``body`` after a failed reconcile (``invalid_spec``: its spec is at
        fault, not a passing condition)."""
        generation = body["metadata"].get("generation", 1)
        conditions = (
            invalid_spec_conditions(message, generation=generation, reason=reason)
            if invalid_spec
            else failed_conditions(reason, message, generation=generation)
        )
        old_conditions = self.last_status(body).get("conditions")
        return {
            "observedGeneration": generation,
            "conditions": merge_conditions(old_conditions, conditions, now=now()),
        }

    async def report_failure(
        self, body: Mapping[str, Any], reason: str, message: str, *, invalid_spec: bool = False
    ) -> None:
        """Set ``Ready=False`` with the failure's reason and message, and post a Warning Event
        when that changed status (not again at each retry)."""
        status = self.failed_status(body, reason, message, invalid_spec=invalid_spec)
        try:
            if await self.write_status(body, status):
                common.post_event(body, reason, message, warning=True)
        except TransientError as error:
            log.warning("%s %s/%s: could not report %s: %s", *key_of(body), reason, error)

    def retry_delay(self, first: float, failures: int) -> float:
        """Seconds before retry number ``failures`` of a failing reconcile whose error asked
        for ``first``."""
        return backoff(first, failures, self.jitter())

    def resync_delay(self) -> float:
        """Seconds until the next level-based resync of an object."""
        interval = self.context.config.resync_interval
        return interval * (1 + RESYNC_JITTER * self.jitter())

    def touch(self, key: ObjectKey, *, urgent: bool = False, follow_up: bool = False) -> None:
        """An event says ``key`` must be reconciled: queue it (unless held in a backoff and
        not ``urgent``); ``follow_up`` for a child's report (see ``WorkQueue.add``)."""
        self.stale.add(key)
        self.context.queue.add(key, urgent=urgent, follow_up=follow_up)

    def forget(self, key: ObjectKey, uid: str) -> None:
        """The object is gone: drop what this process kept of it."""
        self.failures.pop(key, None)
        self.fingerprints.pop(key, None)
        self.stale.discard(key)
        self.context.queue.forget(key)
        self.context.children.forget_owner(uid)

    def _fingerprint(self, key: ObjectKey) -> tuple[str, int] | None:
        body = self.context.objects.get(key)
        if body is None:
            return None
        meta = body["metadata"]
        return str(meta.get("resourceVersion")), self.context.children.revision(meta["uid"])

    def resync(self, key: ObjectKey) -> float | None:
        """A resync of ``key`` that finds nothing changed since its last successful reconcile
        (neither the object nor a child, and no event asking for one): the seconds until the
        next resync. ``None`` when it must be reconciled. Dictionary lookups only: the work
        queue calls it from the resync's timer, without waking a worker (docs/adr/0026)."""
        last = self.fingerprints.get(key)
        if last is None or key in self.stale or last != self._fingerprint(key):
            return None
        self._unchanged.inc()
        return self.resync_delay()

    async def process(self, key: ObjectKey) -> Outcome:
        """The work queue's entry point: reconcile ``key`` as it is cached now."""
        body = self.context.objects.get(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return Outcome(math.inf)
        if key not in self.stale:
            delay = self.resync(key)
            if delay is not None:
                return Outcome(delay)
            self._reconciled.inc()
        self.stale.discard(key)
        logger = ObjectLogger(log, key[1], key[2])
        outcome = await self.run(body, logger)
        fingerprint = self._fingerprint(key)
        if outcome.hold or math.isinf(outcome.delay) or fingerprint is None:
            # A failed reconcile is retried whatever its fingerprint says.
            self.fingerprints.pop(key, None)
        else:
            self.fingerprints[key] = fingerprint
        return outcome

    async def run(self, body: Mapping[str, Any], logger: kopf.Logger) -> Outcome:
        """One reconcile of ``body``; failures go to its status, and decide when to retry:
        an invalid spec or a request the API server refuses as malformed waits for the next
        change of the object; other failures are retried with a growing backoff."""
        key = key_of(body)
        with metrics.time_reconcile(self.kind):
            try:
                again = await self.reconcile(body, logger)
            except InvalidSpecError as error:
                metrics.RECONCILES.labels(kind=self.kind, result="invalid").inc()
                await self.report_failure(body, error.reason, str(error), invalid_spec=True)
                if isinstance(error, ChildNameConflictError):
                    # Healed by the other owner going, which no event of ours tells: resync.
                    return Outcome(self.resync_delay(), hold=True)
                return Outcome(math.inf)
            except KubernetesAPIError as error:
                permanent = error.permanent and not self.refused_writes_retried
                metrics.RECONCILES.labels(
                    kind=self.kind, result="invalid" if permanent else "retry"
                ).inc()
                await self.report_failure(body, error.reason, str(error))
                if permanent:
                    logger.warning("not retried until the object changes: %s", error)
                    return Outcome(math.inf)
                return self._retry(key, error, logger, delay=error.delay)
            except (TransientError, SecretDataError) as error:
                # SecretDataError: Vault's data does not fit the spec; a change in Vault heals it.
                metrics.RECONCILES.labels(kind=self.kind, result="retry").inc()
                await self.report_failure(body, getattr(error, "reason", "SyncFailed"), str(error))
                return self._retry(key, error, logger, delay=getattr(error, "delay", 0.0))
            except Exception as error:
                metrics.RECONCILES.labels(kind=self.kind, result="error").inc()
                logger.exception("reconcile failed unexpectedly")
                await self.report_failure(body, "ReconcileFailed", type(error).__name__)
                return self._retry(key, error, logger, delay=0.0)
        metrics.RECONCILES.labels(kind=self.kind, result="success").inc()
        self.failures.pop(key, None)
        if again is not None:
            self.stale.add(key)  # the next run must not be skipped as a resync
            return Outcome(again)
        return Outcome(self.resync_delay())

    def _retry(
        self, key: ObjectKey, error: Exception, logger: kopf.Logger, *, delay: float
    ) -> Outcome:
        failures = self.failures[key] = self.failures.get(key, 0) + 1
        wait = self.retry_delay(delay, failures)
        logger.warning("reconcile failed (attempt %d), retry in %.0fs: %s", failures, wait, error)
        return Outcome(wait, hold=True)


def invalid_already_reported(body: Mapping[str, Any]) -> bool:
    """Whether ``Ready`` already says ``InvalidSpec`` for the current generation."""
    ready = get_condition(body, "Ready")
    return bool(
        ready
        and ready.get("reason") == "InvalidSpec"
        and ready.get("observedGeneration") == body["metadata"].get("generation")
    )
