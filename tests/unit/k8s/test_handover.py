"""When a field the operator stops applying is handed over first (ADR 0081)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mirage_operator.k8s.handover import applies, handover_body, handover_manager

MANAGER = "mirage-operator"


def _deployment(replicas: int | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"spec": {"containers": [{"name": "app"}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": spec,
    }


def _entry(manager: str, operation: str, fields: dict[str, Any], sub: str = "") -> dict[str, Any]:
    entry = {"manager": manager, "operation": operation, "fieldsV1": fields}
    if sub:
        entry["subresource"] = sub
    return entry


OURS = _entry(MANAGER, "Apply", {"f:spec": {"f:replicas": {}, "f:template": {}}})
NOT_REPLICAS = _entry(MANAGER, "Apply", {"f:spec": {"f:template": {}}})
SCALER = _entry("kube-controller-manager", "Update", {"f:spec": {"f:replicas": {}}}, "scale")
OUR_UPDATE = _entry(MANAGER, "Update", {"f:spec": {"f:replicas": {}}})


def _live(replicas: int, *entries: dict[str, Any]) -> dict[str, Any]:
    live = _deployment(replicas)
    live["metadata"]["managedFields"] = list(entries)
    return live


@pytest.mark.parametrize("replicas", [0, 3, 6])
def test_replicas_we_applied_are_handed_over_with_the_live_count(replicas: int) -> None:
    body = handover_body(_deployment(None), _live(replicas, OURS), field_manager=MANAGER)
    assert body == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {"replicas": replicas},
    }


@pytest.mark.parametrize(
    ("desired", "live"),
    [
        # Still applied: nothing stops.
        (_deployment(3), _live(3, OURS)),
        # Already taken by the scaler (or handed over on an earlier reconcile).
        (_deployment(None), _live(5, NOT_REPLICAS, SCALER)),
        # Owned through an update, not an apply: a later apply does not remove it.
        (_deployment(None), _live(3, NOT_REPLICAS, OUR_UPDATE)),
        # Nothing live yet: the first apply creates the Deployment.
        (_deployment(None), None),
    ],
    ids=["still-applied", "scaler-owns", "owned-by-update", "not-created"],
)
def test_nothing_to_hand_over(desired: dict[str, Any], live: dict[str, Any] | None) -> None:
    assert handover_body(desired, live, field_manager=MANAGER) is None


@pytest.mark.parametrize("kind", ["Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"])
def test_only_listed_fields_are_handed_over(kind: str) -> None:
    desired = {**_deployment(None), "kind": kind}
    live = copy.deepcopy({**_live(3, OURS), "kind": kind})
    assert handover_body(desired, live, field_manager=MANAGER) is None


def test_ownership_is_read_from_the_apply_entry_of_the_main_resource() -> None:
    live = _live(3, _entry(MANAGER, "Apply", {"f:spec": {"f:replicas": {}}}, "status"))
    assert not applies(live, MANAGER, ("spec", "replicas"))
    assert applies(_live(3, OURS), MANAGER, ("spec", "replicas"))
    assert handover_manager(MANAGER) == "mirage-operator-handover"
