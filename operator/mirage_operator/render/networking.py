"""Builders of how a MirageService is reached: Service, NetworkPolicy and Ingress."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from mirage_operator.api.mirageservice import MirageServiceSpec
from mirage_operator.api.names import oidc_middleware_name, tls_secret_name
from mirage_operator.config import Config
from mirage_operator.render.meta import Owner, child, selector_labels

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def build_service(
    *, name: str, namespace: str, spec: MirageServiceSpec, owner: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A ClusterIP Service exposing every port under its name."""
    ports = []
    for p in spec.ports:
        port: dict[str, Any] = {
            "name": p.name,
            "port": p.port,
            "targetPort": p.name,
            "protocol": p.protocol,
        }
        if p.app_protocol:
            port["appProtocol"] = p.app_protocol
        ports.append(port)
    service = {"type": "ClusterIP", "selector": selector_labels(name=name), "ports": ports}
    return child("v1", "Service", name, namespace, owner, spec=service)


def _namespace_selector(namespace: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}}


def build_network_policy(
    *, name: str, namespace: str, spec: MirageServiceSpec, config: Config, owner: Owner
) -> dict[str, Any]:
    """Deny all ingress to the pods except the listed callers, the ingress controller (when
    the service has an Ingress) and Prometheus (when metrics are scraped)."""
    all_ports = [{"port": p.name, "protocol": p.protocol} for p in spec.ports]
    rules: list[dict[str, Any]] = []
    for caller in spec.allow_from:
        peer: dict[str, Any] = {}
        labels = selector_labels(name=caller.service) if caller.service else dict(caller.pod_labels)
        if labels:
            peer["podSelector"] = {"matchLabels": labels}
        if caller.namespace:
            peer.update(_namespace_selector(caller.namespace))
        rules.append({"from": [peer], "ports": all_ports})
    if spec.ingress is not None:
        port = spec.port_named(spec.ingress.port)
        rules.append(
            {
                "from": [_namespace_selector(config.ingress_controller_namespace)],
                "ports": [{"port": port.name, "protocol": port.protocol}],
            }
        )
    if spec.monitoring.metrics.enabled:
        port = spec.port_named(spec.monitoring.metrics.port)
        rules.append(
            {
                "from": [_namespace_selector(config.prometheus_namespace)],
                "ports": [{"port": port.name, "protocol": port.protocol}],
            }
        )
    # ``ingress`` is applied even when empty (deny all): owning the list means a rule another
    # manager adds (an allow-all ``{}``) is drift that the next apply removes (ADR 0080).
    policy_spec: dict[str, Any] = {
        "podSelector": {"matchLabels": selector_labels(name=name)},
        "policyTypes": ["Ingress"],
        "ingress": rules,
    }
    return child("networking.k8s.io/v1", "NetworkPolicy", name, namespace, owner, spec=policy_spec)


def build_ingress(
    *, name: str, namespace: str, spec: MirageServiceSpec, config: Config, owner: Owner
) -> dict[str, Any]:
    """A Traefik Ingress for ``spec.ingress`` (which must be set)."""
    ingress = spec.ingress
    assert ingress is not None, "build_ingress needs spec.ingress"
    annotations = dict(ingress.annotations)
    middlewares = list(ingress.middlewares)
    if ingress.oidc is not None:
        # Sign-in first: the user's middlewares see only signed-in requests.
        middlewares.insert(0, f"{namespace}-{oidc_middleware_name(name)}@kubernetescrd")
    if middlewares:
        annotations["traefik.ingress.kubernetes.io/router.middlewares"] = ",".join(middlewares)
    if ingress.tls_enabled:
        annotations["traefik.ingress.kubernetes.io/router.tls"] = "true"
    ingress_spec: dict[str, Any] = {
        "ingressClassName": config.ingress_class,
        "rules": [
            {
                "host": ingress.host,
                "http": {
                    "paths": [
                        {
                            "path": ingress.path,
                            "pathType": "Prefix",
                            "backend": {
                                "service": {
                                    "name": name,
                                    "port": {"name": spec.port_named(ingress.port).name},
                                }
                            },
                        }
                    ]
                },
            }
        ],
    }
    if ingress.tls_enabled:
        ingress_spec["tls"] = [
            {
                "hosts": [ingress.host],
                "secretName": ingress.tls_secret_name or tls_secret_name(name),
            }
        ]
    return child(
        "networking.k8s.io/v1",
        "Ingress",
        name,
        namespace,
        owner,
        annotations=annotations,
        spec=ingress_spec,
    )


# What OAuth2 Proxy (--set-xauthrequest) answers about the signed-in person, passed on to the
# service by Traefik.
IDENTITY_HEADERS = (
    "X-Auth-Request-User",
    "X-Auth-Request-Email",
    "X-Auth-Request-Preferred-Username",
    "X-Auth-Request-Groups",
)


def build_oidc_middleware(
    *, name: str, namespace: str, spec: MirageServiceSpec, config: Config, owner: Owner
) -> dict[str, Any]:
    """A Traefik forwardAuth Middleware asking the platform's OAuth2 Proxy whether the person
    is signed in (and, with ``allowedGroups``, in one of the groups)."""
    oidc = spec.ingress.oidc if spec.ingress else None
    assert oidc is not None, "build_oidc_middleware needs spec.ingress.auth.oidc"
    address = f"{config.oauth2_proxy_url}/oauth2/auth"
    if oidc.allowed_groups:
        address += "?" + urlencode({"allowed_groups": ",".join(oidc.allowed_groups)})
    forward = {
        "address": address,
        "trustForwardHeader": True,
        "authResponseHeaders": list(IDENTITY_HEADERS),
    }
    middleware = oidc_middleware_name(name)
    return child(
        "traefik.io/v1alpha1",
        "Middleware",
        name,
        namespace,
        owner,
        name=middleware,
        spec={"forwardAuth": forward},
    )
