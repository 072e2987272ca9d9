"""A cluster without Istio's or Traefik's CRDs serves every service that does not use them;
a service turning the mesh off gets its mesh children deleted (ADR 0091, ADR 0023)."""

from __future__ import annotations

import copy
import logging
import math
from typing import Any, cast

import kopf
import pytest

from mirage_operator.config import Config
from mirage_operator.errors import KubernetesAPIError
from mirage_operator.handlers import common
from mirage_operator.handlers import mirageservice as service_handler
from mirage_operator.handlers.context import OperatorContext
from mirage_operator.handlers.watches import RELIST_KEY, register_children_index
from mirage_operator.k8s.resources import Resource
from mirage_operator.render.mirageservice import CHILD_KINDS, OPTIONAL_CHILD_KINDS
from tests.unit.handlers.fakes import Connection, FakeKube

LOGGER = logging.getLogger("test")
MESH_KINDS = {kind for _, kind in OPTIONAL_CHILD_KINDS}


class NoMeshKube(FakeKube):
    """A cluster whose API serves none of the Istio and Traefik kinds, and which records the
    kinds listed."""

    def __init__(self, *, serves_mesh: bool) -> None:
        super().__init__()
        self.serves_mesh = serves_mesh
        self.listed: list[str] = []

    def _served(self, resource: Resource) -> None:
        if resource.kind in MESH_KINDS and not self.serves_mesh:
            raise KubernetesAPIError(404, "the server could not find the requested resource")

    async def list(
        self, resource: Resource, *, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        self.listed.append(resource.kind)
        return await super().list(resource, namespace=namespace, label_selector=label_selector)


@pytest.fixture(autouse=True)
def no_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "post_event", lambda *_, **__: None)


def _service(fake: FakeKube, **spec: Any) -> dict[str, Any]:
    old = fake.objects.get(("MirageService", "shop", "api"), {})
    body = {
        "apiVersion": "mirage.dev/v1alpha1",
        "kind": "MirageService",
        "metadata": {"name": "api", "namespace": "shop", "uid": "uid-api", "generation": 1},
        "spec": {"image": "registry.example/app:1", **spec},
        **({"status": old["status"]} if "status" in old else {}),
    }
    fake.objects[("MirageService", "shop", "api")] = body
    return body


def _owned(fake: FakeKube) -> set[str]:
    return {kind for kind, _, _ in fake.objects if kind in MESH_KINDS}


async def test_a_service_without_mesh_needs_no_mesh_crds() -> None:
    fake = NoMeshKube(serves_mesh=False)
    reconciler = service_handler.ServiceReconciler(
        OperatorContext(config=Config(), kube=cast(Any, Connection(fake)))
    )
    await reconciler.run(copy.deepcopy(_service(fake)), LOGGER)
    assert not set(fake.listed) & MESH_KINDS
    assert ("Deployment", "shop", "api") in fake.objects


async def test_turning_the_mesh_off_deletes_its_children_then_stops_listing_them() -> None:
    fake = NoMeshKube(serves_mesh=True)
    reconciler = service_handler.ServiceReconciler(
        OperatorContext(config=Config(), kube=cast(Any, Connection(fake)))
    )
    meshed = {
        "mesh": {"enabled": True, "resilience": {"outlierDetection": {"interval": "5s"}}},
        "auth": {"jwt": {"issuer": "https://id.example.com"}},
        "ingress": {"host": "a.example.com", "auth": {"oidc": {}}},
    }
    await reconciler.run(copy.deepcopy(_service(fake, **meshed)), LOGGER)
    assert _owned(fake) == MESH_KINDS

    await reconciler.run(copy.deepcopy(_service(fake)), LOGGER)
    assert _owned(fake) == set()

    fake.listed.clear()
    await reconciler.run(copy.deepcopy(_service(fake)), LOGGER)
    assert not set(fake.listed) & MESH_KINDS


async def test_the_relist_repair_skips_the_kinds_the_cluster_does_not_serve() -> None:
    """After a restarted watch the operator lists each child kind once; a kind without its CRD
    (404) has nothing in the index to drop, and must not make the repair retry forever."""
    fake = NoMeshKube(serves_mesh=False)
    context = OperatorContext(config=Config(), kube=cast(Any, Connection(fake)))
    register_children_index(
        kopf.OperatorRegistry(), context, [service_handler.ServiceReconciler(context)]
    )
    outcome = await context.queue.process[RELIST_KEY[0]](RELIST_KEY)
    assert outcome.delay == math.inf and not outcome.hold
    assert set(fake.listed) == {kind for _, kind in CHILD_KINDS}
