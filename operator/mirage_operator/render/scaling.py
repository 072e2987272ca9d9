"""Builders of how a MirageService scales and survives disruption: HPA and PDB."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mirage_operator.api.mirageservice import MirageServiceSpec
from mirage_operator.render.meta import child, selector_labels


def build_hpa(
    *, name: str, namespace: str, spec: MirageServiceSpec, owner: Mapping[str, Any] | None
) -> dict[str, Any]:
    """An autoscaling/v2 HorizontalPodAutoscaler for ``spec.autoscaling`` (which must be set)."""
    scaling = spec.autoscaling
    assert scaling is not None, "build_hpa needs spec.autoscaling"
    targets = [
        ("cpu", scaling.target_cpu_utilization),
        ("memory", scaling.target_memory_utilization),
    ]
    metrics = [
        {
            "type": "Resource",
            "resource": {
                "name": resource,
                "target": {"type": "Utilization", "averageUtilization": utilization},
            },
        }
        for resource, utilization in targets
        if utilization is not None
    ]
    hpa = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicas": scaling.min_replicas,
        "maxReplicas": scaling.max_replicas,
        "metrics": metrics,
    }
    return child("autoscaling/v2", "HorizontalPodAutoscaler", name, namespace, owner, spec=hpa)


def build_pdb(
    *, name: str, namespace: str, spec: MirageServiceSpec, owner: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A policy/v1 PodDisruptionBudget; at most one pod evicted at a time unless told otherwise."""
    budget: dict[str, Any] = {"selector": {"matchLabels": selector_labels(name=name)}}
    if spec.disruption.min_available is not None:
        budget["minAvailable"] = spec.disruption.min_available
    else:
        budget["maxUnavailable"] = (
            spec.disruption.max_unavailable if spec.disruption.max_unavailable is not None else 1
        )
    return child("policy/v1", "PodDisruptionBudget", name, namespace, owner, spec=budget)
