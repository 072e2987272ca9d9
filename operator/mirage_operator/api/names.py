"""Names of the objects the operator derives from its custom resources' names.

Every derived name goes through :func:`~mirage_operator.api.k8svalidation.subdomain_name`, and
every derived label value through :func:`~mirage_operator.api.k8svalidation.label_value`: a
name that would be too long is shortened deterministically with a hash (ADR 0010), never left
for the API server to refuse. A MirageService ``N`` has:

=====================================================  =========================================
ServiceAccount, Deployment, Service, HPA, PDB,          ``N`` (a DNS-1035 label, as the Service
NetworkPolicy, Ingress, ServiceMonitor,                 needs)
PeerAuthentication, AuthorizationPolicy (callers),
RequestAuthentication, DestinationRule
AuthorizationPolicy requiring a JWT (``spec.auth.jwt``) ``N-jwt``
Middleware (``spec.ingress.auth.oidc``)                 ``N-oidc`` (forwardAuth) and
                                                        ``N-oidc-sign-in`` (errors: 401 to sign-in)
ConfigMap (``spec.config``)                             ``N-config``
VaultSecret and its Secret (``spec.secrets[i]``)        ``N-<secret name>``
ServiceLevelObjective (``spec.monitoring.slos[i]``)     ``N-<slo name>``, whose PrometheusRule has
                                                        the same name and whose dashboard
                                                        ConfigMap is ``N-<slo name>-slo-dashboard``
PrometheusRule (``spec.monitoring.alerts``)             ``N-custom``
=====================================================  =========================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mirage_operator.api.k8svalidation import subdomain_name


def config_map_name(service: str) -> str:
    """Name of the ConfigMap holding a service's ``spec.config.data``."""
    return subdomain_name(f"{service}-config")


def secret_name(service: str, secret: str) -> str:
    """Name of the child VaultSecret (and of its Secret) for one ``spec.secrets`` entry."""
    return subdomain_name(f"{service}-{secret}")


def slo_name(service: str, slo: str) -> str:
    """Name of the child ServiceLevelObjective for one ``spec.monitoring.slos`` entry."""
    return subdomain_name(f"{service}-{slo}")


def custom_rules_name(service: str) -> str:
    """Name of the PrometheusRule holding a MirageService's custom rules."""
    return subdomain_name(f"{service}-custom")


def rule_name(slo: str) -> str:
    """Name of the PrometheusRule of the ServiceLevelObjective ``slo`` (the same name)."""
    return slo


def slo_dashboard_name(slo: str) -> str:
    """Name of the ConfigMap of the ServiceLevelObjective ``slo``'s dashboard."""
    return subdomain_name(f"{slo}-slo-dashboard")


def tls_secret_name(service: str) -> str:
    """The Ingress's TLS Secret when ``spec.ingress.tls.secretName`` is unset."""
    return subdomain_name(f"{service}-tls")


def jwt_policy_name(service: str) -> str:
    """The AuthorizationPolicy that refuses requests without a valid JWT."""
    return subdomain_name(f"{service}-jwt")


def oidc_middleware_name(service: str) -> str:
    """The Traefik forwardAuth Middleware of ``spec.ingress.auth.oidc``."""
    return subdomain_name(f"{service}-oidc")


def oidc_sign_in_middleware_name(service: str) -> str:
    """The Traefik errors Middleware that sends a person without a session to sign in."""
    return subdomain_name(f"{service}-oidc-sign-in")


def derived_names(service: str, spec: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(kind, name, field)`` of every object written for the MirageService ``service`` with
    the (schema-valid) ``spec``, its child VaultSecrets and SLOs included; ``field`` is the
    spec field the name comes from."""
    names = [
        (kind, service, "metadata.name")
        for kind in (
            "ServiceAccount",
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "NetworkPolicy",
            "Ingress",
            "ServiceMonitor",
            "PeerAuthentication",
            "AuthorizationPolicy",
            "RequestAuthentication",
            "DestinationRule",
        )
    ]
    if "jwt" in spec.get("auth", {}):
        names.append(("AuthorizationPolicy", jwt_policy_name(service), "spec.auth.jwt"))
    if "oidc" in spec.get("ingress", {}).get("auth", {}):
        names += [
            ("Middleware", oidc_middleware_name(service), "spec.ingress.auth.oidc"),
            ("Middleware", oidc_sign_in_middleware_name(service), "spec.ingress.auth.oidc"),
        ]
    if "config" in spec:
        names.append(("ConfigMap", config_map_name(service), "spec.config"))
    for index, secret in enumerate(spec.get("secrets", [])):
        field = f"spec.secrets[{index}].name"
        target = secret_name(service, secret["name"])
        names += [("VaultSecret", target, field), ("Secret", target, field)]
    monitoring = spec.get("monitoring", {})
    for index, slo in enumerate(monitoring.get("slos", [])):
        field = f"spec.monitoring.slos[{index}].name"
        child = slo_name(service, slo["name"])
        names += [
            ("ServiceLevelObjective", child, field),
            ("PrometheusRule", rule_name(child), field),
            ("ConfigMap", slo_dashboard_name(child), field),
        ]
    if monitoring.get("alerts"):
        names.append(("PrometheusRule", custom_rules_name(service), "spec.monitoring.alerts"))
    return names
