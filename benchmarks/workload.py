"""What the benchmark applies: MirageServices of one realistic shape, and their rendered children.

Each service has autoscaling, an ingress, a network policy, metrics and one SLO, so that it
owns a Deployment, Service, ServiceAccount, HPA, PDB, NetworkPolicy, Ingress, ServiceMonitor
and a ServiceLevelObjective (which owns a PrometheusRule and a dashboard ConfigMap).
"""

from __future__ import annotations

from typing import Any

from mirage_operator.config import Config
from mirage_operator.render.documents import render_document


def namespace_of(index: int, namespaces: int) -> str:
    """The namespace of service ``index`` when spread over ``namespaces`` namespaces."""
    return f"bench-{index % namespaces:03d}" if namespaces > 1 else "bench"


def service(index: int, *, namespace: str, secrets: int = 0) -> dict[str, Any]:
    """MirageService number ``index`` (with ``secrets`` KV v2 secrets)."""
    name = f"svc{index:05d}"
    spec: dict[str, Any] = {
        "image": f"registry.example/{name}:1.0.0",
        "replicas": 2,
        "ingress": {"host": f"{name}.example.com"},
        "autoscaling": {"minReplicas": 2, "maxReplicas": 4, "targetCPUUtilization": 70},
        "networkPolicy": {"enabled": True, "allowFrom": [{"service": "gateway"}]},
        "monitoring": {
            "metrics": {"enabled": True},
            "slos": [
                {
                    "name": "availability",
                    "objective": 99.9,
                    "window": "30d",
                    "sli": {"preset": {"type": "http-availability", "selector": {"service": name}}},
                }
            ],
        },
    }
    if secrets:
        spec["secrets"] = [
            {
                "name": f"s{k}",
                "vault": {"engine": "kv-v2", "mount": "secret", "path": f"{namespace}/{name}/s{k}"},
                "expose": {"mode": "env"},
            }
            for k in range(secrets)
        ]
    return {
        "apiVersion": "mirage.dev/v1alpha1",
        "kind": "MirageService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def rendered(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object ``mirage render`` makes of ``body`` (the MirageService's direct children
    and, for each child SLO, its own children), without owner references."""
    return render_document(body, config=Config())


STATUS_KINDS = ("MirageService", "ServiceLevelObjective", "VaultSecret")
"""The kinds whose status the operator writes: one write each at least, the Ready one."""


def minimum_writes(body: dict[str, Any]) -> int:
    """The fewest writes that take ``body`` from nothing to Ready: one apply (or create) of
    each object ``mirage render`` makes of it — its children, its SLOs' children, and for
    each VaultSecret the Secret it fills (rendered as a preview of that Secret) — and one
    status write of each custom resource among them and of the MirageService itself."""
    objects = rendered(body)
    statuses = 1 + sum(1 for obj in objects if obj["kind"] in STATUS_KINDS)
    return len(objects) + statuses
