"""The writes of a cold start, counted (issue 10): the operator's real watch handlers, work
queue and reconcilers against an in-memory API whose every write is echoed to the watches,
as a cluster's would be. A MirageService with an SLO costs one apply per child and one status
write per object — no Event, and no ``Progressing`` status written while its SLO's reconcile
waits in the queue behind the other services."""

from __future__ import annotations

import asyncio
import collections
import copy
import itertools
import logging
import types
from typing import Any, cast

import kopf
import pytest

from mirage_operator.config import Config
from mirage_operator.handlers import context as context_module
from mirage_operator.handlers import mirageservice
from mirage_operator.handlers.context import ObjectKey, OperatorContext, Outcome, WorkQueue
from mirage_operator.handlers.mirageservice import ServiceReconciler
from mirage_operator.handlers.slo import SLOReconciler
from mirage_operator.handlers.watches import register_children_index, register_reconciler
from mirage_operator.k8s import resources
from mirage_operator.k8s.resources import Resource
from tests.unit.handlers.fakes import Connection, FakeKube

LOGGER = logging.getLogger("test")
NS = "shop"
SERVICES = 4
SLO = {"name": "avail", "objective": 99.9, "sli": {"preset": {"type": "http-availability"}}}


class WatchedKube(FakeKube):
    """A :class:`FakeKube` whose writes reach the operator's watch handlers, in order, as
    watch events (each write gets a new resourceVersion), and whose Deployments roll out
    at once (as the emulated API's Deployment controller does)."""

    def __init__(self, registry: kopf.OperatorRegistry) -> None:
        super().__init__()
        self.registry = registry
        self.versions = itertools.count(1)
        self.deliveries: list[asyncio.Task[None]] = []
        self.status_echo_lags: set[str] = set()
        """Kinds whose status writes reach no watch (the watch's echo comes too late)."""

    def echo(self, key: tuple[str, str, str], *, deliver: bool = True) -> dict[str, Any]:
        """Give the stored object a new resourceVersion and send it to the watches (unless
        not ``deliver``: a watch that lags)."""
        obj = self.objects[key]
        obj["metadata"]["resourceVersion"] = str(next(self.versions))
        event = copy.deepcopy(obj)
        if deliver:
            self.deliveries.append(asyncio.get_running_loop().create_task(self._deliver(event)))
        return copy.deepcopy(obj)

    async def _deliver(self, obj: dict[str, Any]) -> None:
        plural = resources.for_kind(obj["apiVersion"], obj["kind"]).plural
        uid = obj["metadata"]["uid"]
        # kopf runs the index handlers of an event before its other handlers.
        indexing = self.registry._indexing.get_all_handlers()
        watching = self.registry._watching.get_all_handlers()
        for handler in [*indexing, *watching]:
            if handler.selector is not None and handler.selector.any_name == plural:
                fn = cast(Any, handler.fn)  # the operator's handlers take what they need
                await fn(event={"type": "MODIFIED", "object": obj}, body=obj, uid=uid)
        if obj["kind"] == "Deployment" and not obj.get("status"):
            deployment = self.objects[("Deployment", NS, obj["metadata"]["name"])]
            replicas = deployment["spec"].get("replicas", 1)
            deployment["status"] = {
                "observedGeneration": deployment["metadata"]["generation"],
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
            }
            self.echo(("Deployment", NS, obj["metadata"]["name"]))

    # A request is in flight while the loop runs (the watches deliver what came meanwhile);
    # its answer comes before its watch event.

    async def apply(
        self, resource: Resource, body: Any, *, field_manager: str, force: bool = True
    ) -> dict[str, Any]:
        await asyncio.sleep(0)
        key = (body["kind"], NS, body["metadata"]["name"])
        before = copy.deepcopy(self.objects.get(key))
        await super().apply(resource, body, field_manager=field_manager, force=force)
        generation = (before or {}).get("metadata", {}).get("generation", 0)
        if before is None or before.get("spec") != body.get("spec"):
            generation += 1
        self.objects[key]["metadata"]["generation"] = generation
        return self.echo(key)

    async def patch_status(
        self, resource: Resource, *, namespace: str | None, name: str, status: Any
    ) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        await super().patch_status(resource, namespace=namespace, name=name, status=status)
        lagging = resource.kind in self.status_echo_lags
        return self.echo((resource.kind, namespace or "", name), deliver=not lagging)


def _ready(obj: dict[str, Any] | None) -> bool:
    status = (obj or {}).get("status") or {}
    return status.get("observedGeneration") == (obj or {}).get("metadata", {}).get(
        "generation"
    ) and any(c["type"] == "Ready" and c["status"] == "True" for c in status["conditions"])


NAMES = [f"svc{i}" for i in range(SERVICES)]
OBJECTS = [("MirageService", n) for n in NAMES] + [
    ("ServiceLevelObjective", f"{n}-avail") for n in NAMES
]


@pytest.mark.parametrize("follow_ups_first", [True, False])
@pytest.mark.parametrize("slo_status_echo_lags", [False, True])
async def test_a_cold_start_writes_each_child_once_and_each_status_once(
    monkeypatch: pytest.MonkeyPatch,
    events: list[tuple[str, str]],
    slo_status_echo_lags: bool,
    follow_ups_first: bool,
) -> None:
    # A cold start of thousands, in its timing: a service's reconciles are more than
    # STATUS_DEFERRAL apart (the other services are reconciled between them), and its SLO,
    # the last child applied, reaches the queue behind the service's own second reconcile
    # (queued by its Deployment's status, which came during its first).
    clock = itertools.count(0.0, mirageservice.STATUS_DEFERRAL + 1)
    if not follow_ups_first:
        # New objects before every follow-up, as a backlog of new objects would have it.
        monkeypatch.setattr(context_module, "FOLLOW_UPS_PER_NEW", 0)
    monkeypatch.setattr(mirageservice, "time", types.SimpleNamespace(monotonic=lambda: next(clock)))
    registry = kopf.OperatorRegistry()
    kube = WatchedKube(registry)
    if slo_status_echo_lags:
        # The SLO's Ready reaches the service from the answer to the SLO's status write, not
        # from the child watch's echo (which, at a cold start, may come after the service's
        # next reconcile: it then wrote ChildNotReady before Ready).
        kube.status_echo_lags.add("ServiceLevelObjective")
    context = OperatorContext(
        config=Config(), kube=cast(Any, Connection(kube)), queue=WorkQueue(workers=1)
    )
    reconcilers = [ServiceReconciler(context), SLOReconciler(context)]
    for reconciler in reconcilers:
        register_reconciler(registry, reconciler)
    register_children_index(registry, context, reconcilers)
    queue = context.queue
    reconcile_service = queue.process["MirageService"]
    slo_queued: list[bool] = []  # at each reconcile of a service: its SLO's is under way?

    async def process(key: ObjectKey) -> Outcome:
        slo_queued.append(queue.pending(("ServiceLevelObjective", NS, f"{key[2]}-avail")))
        return await reconcile_service(key)

    queue.process["MirageService"] = process
    try:
        for name in NAMES:  # the initial listing: every service queued before any runs
            kube.put(
                {
                    "apiVersion": "mirage.dev/v1alpha1",
                    "kind": "MirageService",
                    "metadata": {"name": name, "namespace": NS, "generation": 1},
                    "spec": {"image": "registry.example/app:1", "monitoring": {"slos": [SLO]}},
                }
            )
            kube.echo(("MirageService", NS, name))

        def settled() -> bool:
            return (
                all(_ready(kube.objects.get((kind, NS, name))) for kind, name in OBJECTS)
                and all(task.done() for task in kube.deliveries)
                and not len(queue)
                and not queue._active
            )

        async with asyncio.timeout(10):
            while not settled():
                await asyncio.sleep(0.001)
    finally:
        await queue.stop()

    if not follow_ups_first:
        assert sum(slo_queued) >= SERVICES  # the case of issue 10: the SLO behind its service
    writes = collections.Counter(kube.writes)
    statuses = {(kind, name) for verb, kind, name in writes if verb == "status"}
    assert statuses == set(OBJECTS)
    assert set(writes.values()) == {1}, writes  # each child applied once, each status once
    assert {verb for verb, _, _ in writes} == {"apply", "status"}
    applies = sum(n for (verb, _, _), n in writes.items() if verb == "apply")
    children = {kind for verb, kind, _ in writes if verb == "apply"}
    assert applies == SERVICES * len(children)  # the same children for each service
    assert events == []  # creation is told by status, not by Events
