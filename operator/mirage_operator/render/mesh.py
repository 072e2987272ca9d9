"""Builders of a MirageService's place in the Istio mesh: the pod-template labels that put its
pods in the mesh, PeerAuthentication (mTLS), AuthorizationPolicy (who may call, ADR 0090),
RequestAuthentication with its token-requiring policy (``spec.auth.jwt``) and DestinationRule
(``spec.mesh.resilience``)."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from mirage_operator.api.mirageservice import MirageServiceSpec
from mirage_operator.api.names import jwt_policy_name
from mirage_operator.config import Config
from mirage_operator.render.meta import object_meta, selector_labels, standard_labels

SECURITY_API_VERSION = "security.istio.io/v1"
NETWORKING_API_VERSION = "networking.istio.io/v1"


def mesh_pod_labels(*, name: str, version: str | None) -> dict[str, str]:
    """Labels that have Istio inject its sidecar and name the workload in telemetry."""
    return {
        "sidecar.istio.io/inject": "true",
        "service.istio.io/canonical-name": name,
        "service.istio.io/canonical-revision": version or "latest",
    }


# Kubelet probes reach the app through the sidecar agent (port 15020), outside mTLS and the
# AuthorizationPolicies, whatever the mesh-wide default says.
MESH_POD_ANNOTATIONS = {"sidecar.istio.io/rewriteAppHTTPProbers": "true"}


def _workload(name: str) -> dict[str, Any]:
    return {"matchLabels": selector_labels(name=name)}


def _meta(
    name: str, namespace: str, service: str, owner: Mapping[str, Any] | None
) -> dict[str, Any]:
    return object_meta(
        name=name, namespace=namespace, labels=standard_labels(name=service), owner=owner
    )


def _metrics_port(spec: MirageServiceSpec) -> int | None:
    """The port Prometheus may scrape without a mesh identity or a token: the metrics port
    when metrics are on, it is TCP, and it serves nothing else — not the first port (the
    default for traffic, probes and ingress) nor the ingress port. A metrics port that is also
    a serving port gets no exception, or the exception would open the whole service; its
    scrapes then go through the mesh like any other call (README, "Mesh, identity and logs")."""
    if not spec.monitoring.metrics.enabled:
        return None
    port = spec.port_named(spec.monitoring.metrics.port)
    serving = {spec.primary_port.name}
    if spec.ingress is not None:
        serving.add(spec.port_named(spec.ingress.port).name)
    if port.protocol != "TCP" or port.name in serving:
        return None
    return port.port


def build_peer_authentication(
    *, name: str, namespace: str, spec: MirageServiceSpec, owner: Mapping[str, Any] | None
) -> dict[str, Any]:
    """mTLS for the service's pods; the metrics port also takes plain text, so that a
    Prometheus outside the mesh can scrape it."""
    policy: dict[str, Any] = {"selector": _workload(name), "mtls": {"mode": spec.mesh.mtls_mode}}
    metrics_port = _metrics_port(spec)
    if metrics_port is not None and spec.mesh.mtls_mode == "STRICT":
        policy["portLevelMtls"] = {str(metrics_port): {"mode": "PERMISSIVE"}}
    return {
        "apiVersion": SECURITY_API_VERSION,
        "kind": "PeerAuthentication",
        "metadata": _meta(name, namespace, name, owner),
        "spec": policy,
    }


def principal(*, trust_domain: str, namespace: str, service_account: str) -> str:
    """The SPIFFE-style identity Istio gives a pod running as ``service_account``."""
    return f"{trust_domain}/ns/{namespace}/sa/{service_account}"


def _tcp_ports(spec: MirageServiceSpec, names: list[str | None]) -> list[str]:
    # The sidecar proxies TCP only: a UDP port is left to the NetworkPolicy.
    ports = [spec.port_named(n) for n in names]
    return sorted({str(p.port) for p in ports if p.protocol == "TCP"}, key=int)


def build_authorization_policy(
    *,
    name: str,
    namespace: str,
    spec: MirageServiceSpec,
    config: Config,
    owner: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """ALLOW exactly the callers the NetworkPolicy admits, by mesh identity (ADR 0090).

    A caller ``service`` is the ServiceAccount of that MirageService (named after it), in the
    caller's ``namespace`` or this one; a ``namespace`` alone is every identity of that
    namespace. The ingress controller reaches the ingress port, Prometheus the metrics port
    (also in plain text: it may live outside the mesh; the NetworkPolicy keeps other
    namespaces out). An ALLOW policy without rules admits nobody, as the NetworkPolicy's empty
    ingress list does.
    """
    rules: list[dict[str, Any]] = []
    every_port = _tcp_ports(spec, [p.name for p in spec.ports])
    for caller in spec.allow_from:
        source_namespace = caller.namespace or namespace
        if caller.service:
            who = {
                "principals": [
                    principal(
                        trust_domain=config.mesh_trust_domain,
                        namespace=source_namespace,
                        service_account=caller.service,
                    )
                ]
            }
        else:
            who = {"namespaces": [source_namespace]}
        if every_port:
            rules.append(
                {"from": [{"source": who}], "to": [{"operation": {"ports": list(every_port)}}]}
            )
    if spec.ingress is not None and (ports := _tcp_ports(spec, [spec.ingress.port])):
        rules.append(
            {
                "from": [{"source": {"namespaces": [config.ingress_controller_namespace]}}],
                "to": [{"operation": {"ports": ports}}],
            }
        )
    if spec.monitoring.metrics.enabled and (
        ports := _tcp_ports(spec, [spec.monitoring.metrics.port])
    ):
        sources: list[dict[str, Any]] = [{"source": {"namespaces": [config.prometheus_namespace]}}]
        if _metrics_port(spec) is not None:
            # A dedicated metrics port is PERMISSIVE: a Prometheus outside the mesh has no
            # identity (the NetworkPolicy still limits it to its namespace).
            sources.append({"source": {"notPrincipals": ["*"]}})
        rules.append({"from": sources, "to": [{"operation": {"ports": ports}}]})
    policy: dict[str, Any] = {"selector": _workload(name), "action": "ALLOW"}
    if rules:
        policy["rules"] = rules
    return {
        "apiVersion": SECURITY_API_VERSION,
        "kind": "AuthorizationPolicy",
        "metadata": _meta(name, namespace, name, owner),
        "spec": policy,
    }


def build_request_authentication(
    *, name: str, namespace: str, spec: MirageServiceSpec, owner: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Which tokens the sidecar verifies (``spec.auth.jwt``, which must be set)."""
    jwt = spec.jwt
    assert jwt is not None, "build_request_authentication needs spec.auth.jwt"
    rule: dict[str, Any] = {"issuer": jwt.issuer, "forwardOriginalToken": True}
    if jwt.jwks_uri:
        rule["jwksUri"] = jwt.jwks_uri
    if jwt.audiences:
        rule["audiences"] = list(jwt.audiences)
    return {
        "apiVersion": SECURITY_API_VERSION,
        "kind": "RequestAuthentication",
        "metadata": _meta(name, namespace, name, owner),
        "spec": {"selector": _workload(name), "jwtRules": [rule]},
    }


def claim_key(claim: str) -> str:
    """Istio's condition key of a claim; dots separate the levels of a nested claim."""
    return "request.auth.claims" + "".join(f"[{part}]" for part in claim.split("."))


def build_jwt_policy(
    *, name: str, namespace: str, spec: MirageServiceSpec, owner: Mapping[str, Any] | None
) -> dict[str, Any]:
    """DENY requests without a valid token, or without a required claim's value.

    A DENY policy, because ALLOW policies add up: a token requirement written as ALLOW would
    let any caller of the caller policy through without one. Health probes (their paths) and
    the metrics port stay open: kubelet and Prometheus carry no token.
    """
    jwt = spec.jwt
    assert jwt is not None, "build_jwt_policy needs spec.auth.jwt"
    operation: dict[str, Any] = {}
    metrics_port = _metrics_port(spec)
    if metrics_port is not None:
        operation["notPorts"] = [str(metrics_port)]
    # Istio matches the path without its query or fragment: `/ready?full=1` would match
    # nothing and leave the probe behind the token.
    probe_paths = sorted(
        {
            re.split(r"[?#]", p.path, maxsplit=1)[0]
            for p in (spec.liveness, spec.readiness, spec.startup)
            if p is not None and p.enabled
        }
    )
    if probe_paths:
        operation["notPaths"] = probe_paths

    def target() -> dict[str, Any]:
        # A fresh copy per rule: shared lists would print as YAML anchors.
        return {"to": [{"operation": copy.deepcopy(operation)}]} if operation else {}

    rules: list[dict[str, Any]] = [
        {"from": [{"source": {"notRequestPrincipals": ["*"]}}], **target()}
    ]
    rules += [
        {**target(), "when": [{"key": claim_key(c.claim), "notValues": list(c.values)}]}
        for c in jwt.required_claims
    ]
    return {
        "apiVersion": SECURITY_API_VERSION,
        "kind": "AuthorizationPolicy",
        "metadata": _meta(jwt_policy_name(name), namespace, name, owner),
        "spec": {"selector": _workload(name), "action": "DENY", "rules": rules},
    }


def build_destination_rule(
    *,
    name: str,
    namespace: str,
    spec: MirageServiceSpec,
    config: Config,
    owner: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Connection pool and outlier detection of ``spec.mesh.resilience`` for every caller."""
    pool, outliers = spec.mesh.connection_pool or {}, spec.mesh.outlier_detection
    traffic: dict[str, Any] = {}
    tcp = {k: pool[k] for k in ("maxConnections", "connectTimeout") if k in pool}
    http = {
        key: pool[field]
        for field, key in (
            ("maxPendingRequests", "http1MaxPendingRequests"),
            ("maxRequestsPerConnection", "maxRequestsPerConnection"),
        )
        if field in pool
    }
    if tcp or http:
        traffic["connectionPool"] = {
            **({"tcp": tcp} if tcp else {}),
            **({"http": http} if http else {}),
        }
    if outliers:
        traffic["outlierDetection"] = dict(outliers)
    rule: dict[str, Any] = {"host": f"{name}.{namespace}.svc.{config.cluster_domain}"}
    if traffic:
        rule["trafficPolicy"] = traffic
    return {
        "apiVersion": NETWORKING_API_VERSION,
        "kind": "DestinationRule",
        "metadata": _meta(name, namespace, name, owner),
        "spec": rule,
    }
