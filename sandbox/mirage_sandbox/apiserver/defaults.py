"""Built-in defaulting, as the real API server's ``SetDefaults_*`` functions do it, for the kinds
the operator writes: Deployment (and its pod template), Service, Secret, NetworkPolicy and
HorizontalPodAutoscaler (autoscaling/v2).

Defaults are applied on every write, not only on create, as the real server does: a field that
an apply or an update removes comes back with its default (a Deployment whose applied
configuration stops setting ``spec.replicas``, with nobody else owning it, is back to 1 —
the HPA hand-over fault). Sources: ``pkg/apis/apps/v1/defaults.go``,
``pkg/apis/core/v1/defaults.go``, ``pkg/apis/networking/v1/defaults.go``,
``pkg/apis/autoscaling/v2/defaults.go`` of Kubernetes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]

_PROBE = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
_SCALE_UP = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
_SCALE_DOWN = {
    "stabilizationWindowSeconds": 300,
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}


def _map(parent: Obj, key: str) -> Obj:
    value = parent.get(key)
    if not isinstance(value, dict):
        value = parent[key] = {}
    return value


def _items(parent: Any, key: str) -> list[Obj]:
    value = parent.get(key) if isinstance(parent, dict) else None
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _image_pull_policy(image: str) -> str:
    # SetDefaults_Container: ":latest" or no tag (and no digest) pulls always.
    if "@" in image:
        return "IfNotPresent"
    name = image.rsplit("/", 1)[-1]
    tag = name.rpartition(":")[2] if ":" in name else ""
    return "Always" if tag in {"", "latest"} else "IfNotPresent"


def _probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    for key, value in _PROBE.items():
        probe.setdefault(key, value)
    http = probe.get("httpGet")
    if isinstance(http, dict):
        http.setdefault("path", "/")
        http.setdefault("scheme", "HTTP")


def _container(container: Obj) -> None:
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    if isinstance(container.get("image"), str):
        container.setdefault("imagePullPolicy", _image_pull_policy(container["image"]))
    for port in _items(container, "ports"):
        port.setdefault("protocol", "TCP")
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(container.get(name))
    for env in _items(container, "env"):
        field_ref = (env.get("valueFrom") or {}).get("fieldRef")
        if isinstance(field_ref, dict):
            field_ref.setdefault("apiVersion", "v1")


def pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec and what it reaches (containers, probes, volumes)."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for container in (*_items(spec, "initContainers"), *_items(spec, "containers")):
        _container(container)
    for volume in _items(spec, "volumes"):
        for source in ("secret", "configMap"):
            if isinstance(volume.get(source), dict):
                volume[source].setdefault("defaultMode", 0o644)


def deployment(obj: Obj) -> None:
    """SetDefaults_Deployment (apps/v1)."""
    spec = _map(obj, "spec")
    spec.setdefault("replicas", 1)
    strategy = _map(spec, "strategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _map(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    template = spec.get("template")
    if isinstance(template, dict):
        pod_spec(_map(template, "spec"))


def service(obj: Obj) -> None:
    """SetDefaults_Service, without the allocations (cluster IPs) done once on create."""
    spec = _map(obj, "spec")
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] in {"ClusterIP", "NodePort", "LoadBalancer"}:
        spec.setdefault("internalTrafficPolicy", "Cluster")
    for port in _items(spec, "ports"):
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))


def secret(obj: Obj) -> None:
    """SetDefaults_Secret."""
    obj.setdefault("type", "Opaque")


def network_policy(obj: Obj) -> None:
    """SetDefaults_NetworkPolicy: port protocols, and policy types from the rules present."""
    spec = _map(obj, "spec")
    for direction in ("ingress", "egress"):
        for rule in _items(spec, direction):
            for port in _items(rule, "ports"):
                port.setdefault("protocol", "TCP")
    if not spec.get("policyTypes"):
        types = ["Ingress"]
        if spec.get("egress"):
            types.append("Egress")
        spec["policyTypes"] = types


def horizontal_pod_autoscaler(obj: Obj) -> None:
    """SetDefaults_HorizontalPodAutoscaler (autoscaling/v2): minReplicas, the CPU metric when
    none is given, and the scaling behavior."""
    spec = _map(obj, "spec")
    spec.setdefault("minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80},
                },
            }
        ]
    behavior = _map(spec, "behavior")
    for direction, defaults in (("scaleUp", _SCALE_UP), ("scaleDown", _SCALE_DOWN)):
        rules = _map(behavior, direction)
        for key, value in defaults.items():
            rules.setdefault(key, copy.deepcopy(value))


def replicas(obj: Obj) -> None:
    """SetDefaults_StatefulSet and SetDefaults_ReplicaSet, ``spec.replicas`` only: the
    operator writes neither kind; a workload a user applies beside it gets the default that
    an autoscaler hand-over depends on."""
    _map(obj, "spec").setdefault("replicas", 1)


_BY_KIND: dict[tuple[str, str], Callable[[Obj], None]] = {
    ("apps", "Deployment"): deployment,
    ("apps", "StatefulSet"): replicas,
    ("apps", "ReplicaSet"): replicas,
    ("", "Service"): service,
    ("", "Secret"): secret,
    ("networking.k8s.io", "NetworkPolicy"): network_policy,
    ("autoscaling", "HorizontalPodAutoscaler"): horizontal_pod_autoscaler,
}


def apply_defaults(group: str, kind: str, version: str, obj: Obj) -> None:
    """Default ``obj`` (a built-in, in place) as the real server does for its kind."""
    if (group, kind) == ("autoscaling", "HorizontalPodAutoscaler") and version != "v2":
        return  # v1 has no behavior; its objects are defaulted through their v2 form
    defaulting = _BY_KIND.get((group, kind))
    if defaulting is not None:
        defaulting(obj)
