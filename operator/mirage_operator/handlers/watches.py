"""The kopf registrations of the reconciled kinds: the watch of each kind's objects, the
watch-fed index of their children (with the repair after a watch restarted), and each kind's
entry in the work queue (docs/adr/0020, 0023).

kopf is used for its watches only: ``on.event`` for the custom resources and ``index`` for
the children (kopf holds every handler back until the indices have their initial listing, so
the first reconcile already sees every child).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import kopf

from mirage_operator import GROUP, VERSION, metrics
from mirage_operator.errors import KubernetesAPIError, TransientError
from mirage_operator.handlers.context import ObjectKey, OperatorContext, Outcome, cacheable
from mirage_operator.handlers.reconciler import Reconciler, key_of
from mirage_operator.k8s import resources
from mirage_operator.k8s.ownership import controller_of
from mirage_operator.render.meta import MANAGED_BY, MANAGED_BY_LABEL

log = logging.getLogger(__name__)

RELIST_KEY: ObjectKey = ("ChildRelist", "", "")
"""The work queue's key of the repair after a watch of a child kind was restarted."""
RELIST_DELAY = 2.0
"""Seconds after a restarted watch's listing before the repair lists the children itself:
the watches of every kind restart together (a compaction expires them all), one repair
serves them all."""


def watch_objects(
    registry: kopf.OperatorRegistry,
    context: OperatorContext,
    plural: str,
    touch: Any,
    forget: Any,
) -> None:
    """Keep ``context.objects`` current for one kind and call ``touch(key, urgent=)`` for each
    event that can change a reconcile's outcome, ``forget(key, uid)`` when an object is gone.

    The echo of the operator's own status write (a version already cached) is nothing new;
    a new generation, new annotations or a deletion are urgent (they cut a backoff short).
    An object a Mirage resource controls (a service's SLO) is a follow-up of its owner's
    reconcile, not new work (``WorkQueue.add``).
    """

    @kopf.on.event(GROUP, VERSION, plural, registry=registry, id=f"{plural}-events")
    async def on_object(event: kopf.RawEvent, uid: str, **_: Any) -> None:
        context.queue.ensure_started()
        raw = cacheable(event["object"])
        key = key_of(raw)
        if event["type"] == "DELETED":
            context.objects.pop(key, None)
            metrics.track_managed(key[0], uid, present=False)
            forget(key, uid)
            return
        before = context.objects.get(key)
        context.objects[key] = raw
        if before is None:
            metrics.track_managed(key[0], uid, present=True)
        elif before["metadata"].get("resourceVersion") == raw["metadata"].get("resourceVersion"):
            return
        old_meta, meta = (before or {}).get("metadata", {}), raw["metadata"]
        urgent = (
            before is None
            or old_meta.get("uid") != meta.get("uid")
            or old_meta.get("generation") != meta.get("generation")
            or old_meta.get("annotations") != meta.get("annotations")
            or bool(meta.get("deletionTimestamp"))
        )
        touch(key, urgent=urgent, follow_up=_mirage_controller(raw) is not None)


def _mirage_controller(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``obj``'s controller owner reference if a Mirage kind is its controller."""
    ref = controller_of(obj)
    return ref if ref and str(ref.get("apiVersion", "")).startswith(f"{GROUP}/") else None


def register_children_index(
    registry: kopf.OperatorRegistry,
    context: OperatorContext,
    reconcilers: list[Reconciler],
) -> None:
    """Feed ``context.children`` from kopf's watches of every child kind, and reconcile the
    owner of each child whose change can matter to it."""
    owners: dict[str, Reconciler] = {r.kind: r for r in reconcilers}

    def owner_key(obj: Mapping[str, Any]) -> tuple[Reconciler, ObjectKey] | None:
        ref = _mirage_controller(obj)
        reconciler = None if ref is None else owners.get(str(ref.get("kind")))
        if ref is None or reconciler is None:
            return None
        namespace = obj["metadata"].get("namespace") or ""
        return reconciler, (reconciler.kind, namespace, str(ref.get("name")))

    def store_child(raw: Mapping[str, Any]) -> None:
        found = owner_key(raw)
        # Objects of others are kept too, by name only: a child's name may be taken.
        if context.children.update(raw) is not None and found is not None:
            found[0].touch(found[1], follow_up=True)

    async def index_child(body: kopf.Body, **_: Any) -> None:
        # Called for every version of every object of the child kinds (kopf's index handlers
        # run before anything else and hold other handlers back until the initial listing
        # is done); only objects a Mirage kind controls are kept.
        context.queue.ensure_started()
        store_child(dict(body))

    context.store_child = store_child

    async def on_child_event(event: kopf.RawEvent, **_: Any) -> None:
        raw = event["object"]
        if event["type"] is None and context.children.relisted(raw["metadata"].get("uid", "")):
            # A watch restarted with a listing: deletions in the gap come from a listing of ours.
            context.queue.add_after(RELIST_KEY, RELIST_DELAY)
        if event["type"] == "DELETED" and context.children.remove(raw) is not None:
            found = owner_key(raw)
            if found is not None:
                found[0].touch(found[1], follow_up=True)

    kinds = dict.fromkeys(kind for r in reconcilers for kind in r.child_kinds)

    async def repair(_: ObjectKey) -> Outcome:
        """Drop from the index the children deleted while a watch was down, and reconcile
        their owners: one LIST per child kind, only after a watch was restarted."""
        touched: set[str] = set()
        for api_version, child in kinds:
            since = time.monotonic()
            try:
                listed = await context.kube.client.list(
                    resources.for_kind(api_version, child),
                    namespace=None,
                    label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}",
                )
            except TransientError as error:
                if isinstance(error, KubernetesAPIError) and error.status == 404:
                    # Not served (Istio's or Traefik's CRDs absent): kopf does not watch it
                    # either, so the index holds none to drop (docs/adr/0023).
                    continue
                log.warning("relisting %s failed, retrying: %s", child, error)
                return Outcome(error.delay, hold=True)
            touched |= context.children.replace(child, listed, since)
        for reconciler in reconcilers:
            for key, body in list(context.objects.items()):
                if key[0] == reconciler.kind and body["metadata"].get("uid") in touched:
                    reconciler.touch(key, follow_up=True)
        return Outcome(math.inf)

    context.queue.process[RELIST_KEY[0]] = repair
    for api_version, child in kinds:
        group, _, version = api_version.rpartition("/")
        plural = resources.for_kind(api_version, child).plural
        kopf.index(group, version, plural, registry=registry, id="mirage-children")(index_child)
        kopf.on.event(group, version, plural, registry=registry, id=f"child-events-{plural}")(
            on_child_event
        )


def register_reconciler(registry: kopf.OperatorRegistry, reconciler: Reconciler) -> None:
    """Register ``reconciler``'s kind: its watch, and its entry in the work queue."""
    context = reconciler.context
    context.queue.process[reconciler.kind] = reconciler.process
    context.queue.resync[reconciler.kind] = reconciler.resync
    watch_objects(
        registry, context, reconciler.resource.plural, reconciler.touch, reconciler.forget
    )
