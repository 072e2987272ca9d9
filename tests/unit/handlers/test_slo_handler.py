"""The ServiceLevelObjective reconciler against an in-memory Kubernetes API."""

from __future__ import annotations

import copy
import logging
import math
from typing import Any, cast

import kopf
import pytest

from mirage_operator import metrics
from mirage_operator.config import Config
from mirage_operator.handlers import common
from mirage_operator.handlers import slo as handler
from mirage_operator.handlers.context import OperatorContext
from mirage_operator.handlers.watches import register_reconciler
from mirage_operator.k8s.children import ChildIndex
from tests.unit.handlers.fakes import Connection, FakeKube

LOGGER = logging.getLogger("test")

SPEC = {
    "service": "checkout",
    "objective": 99.9,
    "window": "28d",
    "sli": {"preset": {"type": "http-availability"}},
}


def _setup(**kube: Any) -> tuple[FakeKube, handler.SLOReconciler]:
    fake = FakeKube(**kube)
    context = OperatorContext(config=Config(), kube=cast(Any, Connection(fake)))
    body = {
        "apiVersion": "mirage.dev/v1alpha1",
        "kind": "ServiceLevelObjective",
        "metadata": {
            "name": "checkout-availability",
            "namespace": "shop",
            "uid": "slo-uid",
            "generation": 1,
        },
        "spec": copy.deepcopy(SPEC),
    }
    fake.objects[("ServiceLevelObjective", "shop", "checkout-availability")] = body
    return fake, handler.SLOReconciler(context)


def _body(fake: FakeKube) -> dict[str, Any]:
    return copy.deepcopy(fake.objects[("ServiceLevelObjective", "shop", "checkout-availability")])


def _watch(fake: FakeKube, reconciler: handler.SLOReconciler) -> None:
    """What the watches would tell the operator's child index about ``fake``'s objects now."""
    reconciler.context.children = ChildIndex()
    for obj in fake.objects.values():
        reconciler.context.children.update(obj)


def _rule(fake: FakeKube) -> dict[str, Any]:
    return fake.objects[("PrometheusRule", "shop", "checkout-availability")]


async def test_creates_rule_and_dashboard_and_reports_them(events: list[tuple[str, str]]) -> None:
    fake, reconciler = _setup()
    await reconciler.run(_body(fake), LOGGER)
    rule = _rule(fake)
    dashboard = fake.objects[("ConfigMap", "shop", "checkout-availability-slo-dashboard")]
    for child in (rule, dashboard):
        (ref,) = child["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["uid"], ref["controller"]) == (
            "ServiceLevelObjective",
            "slo-uid",
            True,
        )
    status = _body(fake)["status"]
    assert status["ruleName"] == "checkout-availability"
    assert status["ruleCount"] == sum(len(g["rules"]) for g in rule["spec"]["groups"])
    assert status["observedGeneration"] == 1
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["lastTransitionTime"]
    # Creating the children is the SLO's first sync: its status reports it, no Event (a
    # later apply does: test_spec_change_reapplies_without_calling_it_drift).
    assert events == []


async def test_steady_state_writes_nothing(events: list[tuple[str, str]]) -> None:
    fake, reconciler = _setup()
    await reconciler.run(_body(fake), LOGGER)
    fake.writes.clear()
    events.clear()
    await reconciler.run(_body(fake), LOGGER)
    assert fake.writes == []
    assert events == []


@pytest.mark.parametrize("drift", ["edited", "deleted"])
async def test_drift_is_corrected(events: list[tuple[str, str]], drift: str) -> None:
    fake, reconciler = _setup()
    await reconciler.run(_body(fake), LOGGER)
    before = copy.deepcopy(_rule(fake))
    if drift == "edited":
        _rule(fake)["spec"]["groups"][0]["rules"].pop()
    else:
        del fake.objects[("PrometheusRule", "shop", "checkout-availability")]
    _watch(fake, reconciler)
    corrections = metrics.DRIFT_CORRECTIONS.labels(kind="PrometheusRule")._value.get()
    fake.writes.clear()
    await reconciler.run(_body(fake), LOGGER)
    assert fake.writes == [("apply", "PrometheusRule", "checkout-availability")]
    assert _rule(fake)["spec"] == before["spec"]
    assert "DriftCorrected" in [reason for reason, _ in events]
    assert metrics.DRIFT_CORRECTIONS.labels(kind="PrometheusRule")._value.get() == corrections + 1


async def test_spec_change_reapplies_without_calling_it_drift(
    events: list[tuple[str, str]],
) -> None:
    fake, reconciler = _setup()
    await reconciler.run(_body(fake), LOGGER)
    body = _body(fake)
    body["spec"]["objective"] = 99.5
    body["metadata"]["generation"] = 2
    fake.objects[("ServiceLevelObjective", "shop", "checkout-availability")] = body
    await reconciler.run(_body(fake), LOGGER)
    assert "vector(0.995)" in str(_rule(fake)["spec"])
    # None for the creation, one for the change.
    ((reason, message),) = events
    assert reason == "Applied" and "PrometheusRule/checkout-availability" in message
    assert _body(fake)["status"]["observedGeneration"] == 2


async def test_invalid_spec_is_reported_once_and_not_retried(events: list[tuple[str, str]]) -> None:
    fake, reconciler = _setup()
    body = _body(fake)
    body["spec"]["window"] = "2d"  # schema-valid, but shorter than the 3d alert window
    fake.objects[("ServiceLevelObjective", "shop", "checkout-availability")] = body
    outcome = await reconciler.run(_body(fake), LOGGER)
    assert outcome.delay == math.inf  # not retried until the object changes
    ready = next(c for c in _body(fake)["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "spec.window" in ready["message"]
    assert ("PrometheusRule", "shop", "checkout-availability") not in fake.objects
    fake.writes.clear()
    await reconciler.run(_body(fake), LOGGER)
    assert fake.writes == []
    assert [reason for reason, _ in events] == ["InvalidSpec"]


async def test_missing_prometheus_operator_is_reported_and_retried_slowly(
    events: list[tuple[str, str]],
) -> None:
    fake, reconciler = _setup(serves_prometheus_rules=False)
    outcome = await reconciler.run(_body(fake), LOGGER)
    assert outcome.delay == handler.UNAVAILABLE_RETRY_DELAY
    ready = next(c for c in _body(fake)["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "PrometheusRuleUnavailable")
    # Once prometheus-operator is installed, the next attempt converges.
    fake.serves_prometheus_rules = True
    await reconciler.run(_body(fake), LOGGER)
    ready = next(c for c in _body(fake)["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"


def test_owner_of_reads_the_controller_reference() -> None:
    child = {
        "metadata": {
            "ownerReferences": [
                {
                    "apiVersion": "mirage.dev/v1alpha1",
                    "kind": "MirageService",
                    "name": "a",
                    "controller": False,
                },
                {
                    "apiVersion": "mirage.dev/v1alpha1",
                    "kind": "ServiceLevelObjective",
                    "name": "b",
                    "controller": True,
                },
            ]
        }
    }
    assert common.owner_of(child, handler.SLOReconciler.kind) == "b"
    assert common.owner_of({"metadata": {}}, handler.SLOReconciler.kind) is None


def test_register_adds_the_handlers() -> None:
    registry = kopf.OperatorRegistry()
    register_reconciler(registry, handler.SLOReconciler(OperatorContext(config=Config())))
    assert {h.id for h in registry._watching.get_all_handlers()} == {
        "servicelevelobjectives-events"
    }
    # No change handler, timer or daemon: kopf puts no finalizer and no annotation on SLOs.
    assert not registry._changing.get_all_handlers()
    assert not registry._spawning.get_all_handlers()
