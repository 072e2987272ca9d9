"""Mesh, JWT and OIDC children end to end (issue 15): created, restored after deletion or
edit, removed when turned off, free at steady state, one pod restart per mesh switch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import Cluster, service, wait_ready
from tests.e2e.helpers import assert_steady
from tests.e2e.kube import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

MESH_CHILDREN = {
    ("PeerAuthentication", "api"),
    ("AuthorizationPolicy", "api"),
    ("AuthorizationPolicy", "api-jwt"),
    ("RequestAuthentication", "api"),
    ("DestinationRule", "api"),
    ("Middleware", "api-oidc"),
    ("Middleware", "api-oidc-sign-in"),
}


ADDITIONS: list[tuple[str, str, dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
    (
        "PeerAuthentication",
        "api",
        {"portLevelMtls": {"8080": {"mode": "DISABLE"}}},
        lambda spec: "8080" in spec.get("portLevelMtls", {}),
    ),
    (
        "AuthorizationPolicy",
        "api-jwt",
        {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/nothing"]}}]}]},
        lambda spec: any("paths" in t["operation"] for r in spec["rules"] for t in r.get("to", [])),
    ),
    (
        "DestinationRule",
        "api",
        {"trafficPolicy": {"tls": {"mode": "DISABLE"}}},
        lambda spec: "tls" in spec["trafficPolicy"],
    ),
    (
        "Middleware",
        "api-oidc",
        {"forwardAuth": {"tls": {"insecureSkipVerify": True}}},
        lambda spec: "tls" in spec["forwardAuth"],
    ),
    (
        "Middleware",
        "api-oidc-sign-in",
        {"errors": {"status": ["401", "403"]}},
        lambda spec: "403" in spec["errors"]["status"],
    ),
    (
        "NetworkPolicy",
        "api",
        {"egress": [{}], "policyTypes": ["Ingress", "Egress"]},
        lambda spec: "egress" in spec,
    ),
]
"""A field someone adds to a policy child, and how to tell it is still there."""


DRY_RUN = "istio.io/dry-run"


def annotations(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


def meshed(namespace: str, allow_from: list[dict[str, str]]) -> dict[str, Any]:
    return service(
        "api",
        namespace,
        networkPolicy={"allowFrom": allow_from},
        ingress={"host": "api.example.com", "auth": {"oidc": {"allowedGroups": ["ops"]}}},
        mesh={"enabled": True, "resilience": {"outlierDetection": {"consecutive5xxErrors": 5}}},
        auth={"jwt": {"issuer": "https://id.example.com", "audiences": ["api"]}},
        # Prometheus carries no token: metrics on a port of their own.
        ports=[{"name": "http", "port": 8080}, {"name": "admin", "port": 9090}],
        monitoring={"metrics": {"port": "admin"}},
        logging={"format": "json"},
    )


def template_generation(cluster: Cluster, namespace: str) -> tuple[int, dict[str, Any]]:
    deployment = cluster.kube.get("Deployment", namespace, "api")
    assert deployment is not None
    return deployment["metadata"]["generation"], deployment["spec"]["template"]


def present(cluster: Cluster, namespace: str) -> set[tuple[str, str]]:
    kinds = {kind for kind, _ in MESH_CHILDREN}
    return {
        (kind, item["metadata"]["name"])
        for kind in kinds
        for item in cluster.kube.list(kind, namespace)
    }


def test_mesh_children_lifecycle(cluster: Cluster, ns: str) -> None:
    kube = cluster.kube
    kube.apply(meshed(ns, [{"service": "checkout"}]))
    wait_ready(kube, ns, "api")
    assert present(cluster, ns) == MESH_CHILDREN
    generation, template = template_generation(cluster, ns)
    assert template["metadata"]["labels"]["sidecar.istio.io/inject"] == "true"
    assert template["metadata"]["annotations"]["fluentbit.io/parser"] == "json"

    # Drift: a deleted policy comes back, an edited mTLS mode is put back.
    kube.delete("AuthorizationPolicy", ns, "api")
    kube.merge_patch("PeerAuthentication", ns, "api", {"spec": {"mtls": {"mode": "DISABLE"}}})
    wait_for(lambda: kube.get("AuthorizationPolicy", ns, "api"), what="policy restored")
    wait_for(
        lambda: kube.get("PeerAuthentication", ns, "api")["spec"]["mtls"]["mode"] == "STRICT",
        what="mTLS mode restored",
    )
    assert_steady(cluster, ns)

    # Drift by addition: what another field manager adds to a policy is removed too (an
    # apply alone would keep it). Each would open what the policy closes.
    for kind, name, patch, added in ADDITIONS:
        kube.merge_patch(kind, ns, name, {"spec": patch})
        wait_for(
            lambda: not added(kube.get(kind, ns, name)["spec"]),  # noqa: B023
            what=f"addition to {kind}/{name} removed",
        )
    # Istio's dry-run annotation would only log what the policy denies.
    kube.merge_patch(
        "AuthorizationPolicy", ns, "api-jwt", {"metadata": {"annotations": {DRY_RUN: "true"}}}
    )
    wait_for(
        lambda: DRY_RUN not in annotations(kube.get("AuthorizationPolicy", ns, "api-jwt")),
        what="dry-run annotation removed",
    )
    assert_steady(cluster, ns)

    # An annotation that routes the traffic port around the sidecar is reverted (ADR 0080).
    bypass = "traffic.sidecar.istio.io/excludeInboundPorts"
    kube.merge_patch(
        "Deployment",
        ns,
        "api",
        {"spec": {"template": {"metadata": {"annotations": {bypass: "8080"}}}}},
    )
    wait_for(
        lambda: bypass not in annotations(template_generation(cluster, ns)[1]),
        what="sidecar bypass annotation removed",
    )
    generation = template_generation(cluster, ns)[0]

    # New callers change the policies, not the pods.
    kube.apply(meshed(ns, [{"service": "checkout"}, {"namespace": "billing"}]))
    wait_ready(kube, ns, "api")
    wait_for(
        lambda: len(kube.get("AuthorizationPolicy", ns, "api")["spec"]["rules"]) == 4,
        what="caller added to the AuthorizationPolicy",
    )
    # The Deployment is applied before the policies in one reconcile: already final here.
    assert template_generation(cluster, ns)[0] == generation

    # Off: the mesh children go, the pod template changes once.
    kube.apply(service("api", ns, ingress={"host": "api.example.com"}))
    wait_ready(kube, ns, "api")
    wait_for(lambda: not present(cluster, ns), what="mesh children removed")
    after, template = template_generation(cluster, ns)
    assert after == generation + 1
    assert "sidecar.istio.io/inject" not in template["metadata"]["labels"]

    # On again, with other callers in the same change: one more pod template, no more.
    kube.apply(meshed(ns, [{"namespace": "billing"}]))
    wait_ready(kube, ns, "api")
    wait_for(lambda: present(cluster, ns) == MESH_CHILDREN, what="mesh children back")
    assert_steady(cluster, ns)
    assert template_generation(cluster, ns)[0] == after + 1
