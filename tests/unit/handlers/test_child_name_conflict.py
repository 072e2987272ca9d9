"""Two owners never write one child: the second reports ChildNameConflict naming the first
(issue 9 item 6, ADR 0011)."""

from __future__ import annotations

import copy
import logging
from typing import Any, cast

import pytest

from mirage_operator.config import Config
from mirage_operator.handlers import mirageservice as service_handler
from mirage_operator.handlers import slo as slo_handler
from mirage_operator.handlers.context import OperatorContext
from mirage_operator.k8s.ownership import conflicting_owner
from tests.unit.handlers.fakes import Connection, FakeKube

LOGGER = logging.getLogger("test")
pytestmark = pytest.mark.usefixtures("events")
SLO_SPEC = {"objective": 99.9, "sli": {"preset": {"type": "http-availability"}}}


def _service(fake: FakeKube, name: str, uid: str, **spec: Any) -> dict[str, Any]:
    body = {
        "apiVersion": "mirage.dev/v1alpha1",
        "kind": "MirageService",
        "metadata": {"name": name, "namespace": "shop", "uid": uid, "generation": 1},
        "spec": {"image": "registry.example/app:1", **spec},
    }
    fake.objects[("MirageService", "shop", name)] = body
    return body


def _slo(fake: FakeKube, name: str, uid: str) -> dict[str, Any]:
    body = {
        "apiVersion": "mirage.dev/v1alpha1",
        "kind": "ServiceLevelObjective",
        "metadata": {"name": name, "namespace": "shop", "uid": uid, "generation": 1},
        "spec": {**SLO_SPEC, "service": "shop"},
    }
    fake.objects[("ServiceLevelObjective", "shop", name)] = body
    return body


def _ready(fake: FakeKube, kind: str, name: str) -> dict[str, Any]:
    status = fake.objects[(kind, "shop", name)].get("status", {})
    return next(c for c in status["conditions"] if c["type"] == "Ready")


def _controller_uid(fake: FakeKube, kind: str, name: str) -> str:
    (ref,) = fake.objects[(kind, "shop", name)]["metadata"]["ownerReferences"]
    return str(ref["uid"])


async def _run(reconciler: Any, body: dict[str, Any]) -> None:
    outcome = await reconciler.run(copy.deepcopy(body), LOGGER)
    # Retried at the next resync (the other owner going sends no event of ours).
    assert outcome.hold and outcome.delay <= reconciler.context.config.resync_interval * 1.1


@pytest.mark.parametrize(
    ("first", "second", "kind", "child"),
    [
        # shop + SLO cart-avail and shop-cart + SLO avail both want SLO shop-cart-avail.
        (
            ("shop", "cart-avail"),
            ("shop-cart", "avail"),
            "ServiceLevelObjective",
            "shop-cart-avail",
        ),
        # a-b + secret c-d and a-b-c + secret d both want VaultSecret a-b-c-d.
        (("a-b", "c-d"), ("a-b-c", "d"), "VaultSecret", "a-b-c-d"),
    ],
)
async def test_second_mirageservice_reports_the_first_owner_and_writes_nothing(
    first: tuple[str, str], second: tuple[str, str], kind: str, child: str
) -> None:
    fake = FakeKube()
    context = OperatorContext(config=Config(), kube=cast(Any, Connection(fake)))
    reconciler = service_handler.ServiceReconciler(context)

    def spec(entry: str) -> dict[str, Any]:
        if kind == "ServiceLevelObjective":
            return {"monitoring": {"slos": [{"name": entry, **SLO_SPEC}]}}
        return {"secrets": [{"name": entry, "vault": {"path": "shop/x"}}]}

    one = _service(fake, first[0], "uid-one", **spec(first[1]))
    two = _service(fake, second[0], "uid-two", **spec(second[1]))
    await reconciler.run(copy.deepcopy(one), LOGGER)
    before = copy.deepcopy(fake.objects[(kind, "shop", child)])

    await _run(reconciler, two)
    assert _controller_uid(fake, kind, child) == "uid-one"
    assert fake.objects[(kind, "shop", child)] == before  # not written by the second owner
    ready = _ready(fake, "MirageService", second[0])
    assert (ready["status"], ready["reason"]) == ("False", "ChildNameConflict")
    assert f"{kind} {child} is controlled by MirageService {first[0]}" in ready["message"]
    # Its other children are converged all the same.
    assert _controller_uid(fake, "Service", second[0]) == "uid-two"

    # Once the first owner lets go of the name, the second takes it at the next reconcile.
    context.children.remove(fake.objects.pop((kind, "shop", child)))  # its watch event
    await reconciler.run(copy.deepcopy(fake.objects[("MirageService", "shop", second[0])]), LOGGER)
    assert _controller_uid(fake, kind, child) == "uid-two"


async def test_slo_and_custom_rules_of_another_service_do_not_overwrite_each_other() -> None:
    # A standalone SLO "api-custom" and MirageService "api"'s custom rules want one
    # PrometheusRule; whoever came first keeps it.
    fake = FakeKube()
    context = OperatorContext(config=Config(), kube=cast(Any, Connection(fake)))
    slo = _slo(fake, "api-custom", "uid-slo")
    await slo_handler.SLOReconciler(context).run(copy.deepcopy(slo), LOGGER)
    service = _service(
        fake, "api", "uid-api", monitoring={"alerts": [{"alert": "Down", "expr": "up == 0"}]}
    )
    await _run(service_handler.ServiceReconciler(context), service)
    assert _controller_uid(fake, "PrometheusRule", "api-custom") == "uid-slo"
    ready = _ready(fake, "MirageService", "api")
    assert ready["reason"] == "ChildNameConflict"
    assert "ServiceLevelObjective api-custom" in ready["message"]


@pytest.mark.parametrize(
    ("live", "expected"),
    [
        (None, None),
        ({"metadata": {}}, None),  # no controller: adoptable
        ({"metadata": {"ownerReferences": [{"kind": "X", "name": "x", "uid": "me"}]}}, None),
        (
            {"metadata": {"ownerReferences": [{"kind": "A", "name": "a", "uid": "u2"}]}},
            None,  # an owner that is not the controller
        ),
        (
            {
                "metadata": {
                    "ownerReferences": [
                        {"kind": "A", "name": "a", "uid": "u2"},
                        {"kind": "MirageService", "name": "b", "uid": "u3", "controller": True},
                    ]
                }
            },
            "MirageService b (uid u3)",
        ),
        (
            {
                "metadata": {
                    "ownerReferences": [{"kind": "X", "name": "x", "uid": "me", "controller": True}]
                }
            },
            None,
        ),
    ],
)
def test_conflicting_owner(live: dict[str, Any] | None, expected: str | None) -> None:
    assert conflicting_owner(live, {"metadata": {"uid": "me"}}) == expected


async def test_slo_created_second_leaves_the_custom_rules_alone() -> None:
    fake = FakeKube()
    context = OperatorContext(config=Config(), kube=cast(Any, Connection(fake)))
    service = _service(
        fake, "api", "uid-api", monitoring={"alerts": [{"alert": "Down", "expr": "up == 0"}]}
    )
    await service_handler.ServiceReconciler(context).run(copy.deepcopy(service), LOGGER)
    before = copy.deepcopy(fake.objects[("PrometheusRule", "shop", "api-custom")])
    slo = _slo(fake, "api-custom", "uid-slo")
    await _run(slo_handler.SLOReconciler(context), slo)
    assert fake.objects[("PrometheusRule", "shop", "api-custom")] == before
    ready = _ready(fake, "ServiceLevelObjective", "api-custom")
    assert ready["reason"] == "ChildNameConflict"
    assert "PrometheusRule api-custom is controlled by MirageService api" in ready["message"]
    # Its dashboard, a name nobody else has, is written all the same.
    assert _controller_uid(fake, "ConfigMap", "api-custom-slo-dashboard") == "uid-slo"
