"""Builders of how a MirageService is reached: Service, NetworkPolicy and Ingress."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from mirage_operator.api.mirageservice import MirageServiceSpec
from mirage_operator.api.names import (
    oidc_middleware_name,
    oidc_sign_in_middleware_name,
    tls_secret_name,
)
from mirage_operator.config import Config, parse_service_reference
from mirage_operator.render.meta import object_meta, selector_labels, standard_labels

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
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(
            name=name, namespace=namespace, labels=standard_labels(name=name), owner=owner
        ),
        "spec": {"type": "ClusterIP", "selector": selector_labels(name=name), "ports": ports},
    }


def _namespace_selector(namespace: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}}


def build_network_policy(
    *,
    name: str,
    namespace: str,
    spec: MirageServiceSpec,
    config: Config,
    owner: Mapping[str, Any] | None,
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
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": object_meta(
            name=name, namespace=namespace, labels=standard_labels(name=name), owner=owner
        ),
        "spec": policy_spec,
    }


def build_ingress(
    *,
    name: str,
    namespace: str,
    spec: MirageServiceSpec,
    config: Config,
    owner: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """A Traefik Ingress for ``spec.ingress`` (which must be set)."""
    ingress = spec.ingress
    assert ingress is not None, "build_ingress needs spec.ingress"
    annotations = dict(ingress.annotations)
    middlewares = list(ingress.middlewares)
    if ingress.oidc is not None:
        # Sign-in first: the user's middlewares see only signed-in requests. The errors
        # Middleware wraps the forwardAuth one, so that it sees (and turns into a redirect to
        # sign in) the 401 OAuth2 Proxy answers for a request without a session.
        middlewares[:0] = [
            f"{namespace}-{oidc_sign_in_middleware_name(name)}@kubernetescrd",
            f"{namespace}-{oidc_middleware_name(name)}@kubernetescrd",
        ]
    # A middleware listed twice would run twice (the user may also list the operator's own).
    middlewares = list(dict.fromkeys(middlewares))
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
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": object_meta(
            name=name,
            namespace=namespace,
            labels=standard_labels(name=name),
            owner=owner,
            annotations=annotations,
        ),
        "spec": ingress_spec,
    }


# What OAuth2 Proxy (--set-xauthrequest) answers about the signed-in person, passed on to the
# service by Traefik.
IDENTITY_HEADERS = (
    "X-Auth-Request-User",
    "X-Auth-Request-Email",
    "X-Auth-Request-Preferred-Username",
    "X-Auth-Request-Groups",
)


def build_oidc_middlewares(
    *,
    name: str,
    namespace: str,
    spec: MirageServiceSpec,
    config: Config,
    owner: Mapping[str, Any] | None,
) -> list[dict[str, Any]]:
    """The Traefik Middlewares of ``spec.ingress.auth.oidc``, in the order the Ingress lists
    them (ADR 0094):

    - ``<name>-oidc-sign-in`` (errors): answers OAuth2 Proxy's 401 (no session) with its
      ``/oauth2/sign_in`` on the OAuth2 Proxy Service, which (``--skip-provider-button``)
      redirects to the IdP; the 401 becomes that redirect (``statusRewrites``: Traefik
      otherwise keeps the caught status and only copies the page's headers). A 403 (signed
      in, not in an allowed group) is left alone: sending that person to sign in again would
      loop. Traefik's ``{url}`` is the request's path and query only, so the service's own
      origin is written before it: OAuth2 Proxy, on its own host, sends the person back there.
    - ``<name>-oidc`` (forwardAuth): asks OAuth2 Proxy whether the person is signed in (and,
      with ``allowedGroups``, in one of the groups). With ``spec.auth.jwt``, OAuth2 Proxy's
      ``Authorization`` (the person's ID token, ``--set-authorization-header``) also reaches
      the service, whose sidecar requires a token.
    """
    ingress = spec.ingress
    assert ingress is not None and ingress.oidc is not None, "needs spec.ingress.auth.oidc"
    service_namespace, service, port = parse_service_reference(config.oauth2_proxy_service)
    origin = f"{'https' if ingress.tls_enabled else 'http'}://{ingress.host}"
    address = f"{config.oauth2_proxy_url}/oauth2/auth"
    if ingress.oidc.allowed_groups:
        address += "?" + urlencode({"allowed_groups": ",".join(ingress.oidc.allowed_groups)})
    headers = list(IDENTITY_HEADERS)
    if spec.jwt is not None:
        headers.append("Authorization")
    specs = {
        oidc_sign_in_middleware_name(name): {
            "errors": {
                "status": ["401"],
                "statusRewrites": {"401": 302},
                "service": {"name": service, "namespace": service_namespace, "port": port},
                "query": "/oauth2/sign_in?rd=" + quote(origin, safe="") + "{url}",
            }
        },
        oidc_middleware_name(name): {
            "forwardAuth": {
                "address": address,
                "trustForwardHeader": True,
                "authResponseHeaders": headers,
            }
        },
    }
    labels = standard_labels(name=name)
    return [
        {
            "apiVersion": "traefik.io/v1alpha1",
            "kind": "Middleware",
            "metadata": object_meta(name=key, namespace=namespace, labels=labels, owner=owner),
            "spec": middleware_spec,
        }
        for key, middleware_spec in specs.items()
    ]
