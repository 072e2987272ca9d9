"""Every Kubernetes resource the operator touches, with the verbs it uses on each.

This table is the single source of the operator's RBAC: the client refuses a verb that is not
declared here, and the Helm chart's test derives the expected ClusterRole rules from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mirage_operator import GROUP, VERSION


@dataclass(frozen=True)
class Resource:
    """One API resource: where it lives and what the operator may do with it."""

    api_version: str
    kind: str
    plural: str
    verbs: frozenset[str]
    why: str
    """Why the operator needs these verbs (rendered as the comment on the RBAC rule)."""
    namespaced: bool = True
    subresource: str | None = None

    @property
    def group(self) -> str:
        """API group; empty for the core group."""
        return self.api_version.rpartition("/")[0]

    def path(self, *, namespace: str | None = None, name: str | None = None) -> str:
        """The REST path of the collection, or of one object when ``name`` is given."""
        prefix = f"/apis/{self.api_version}" if self.group else f"/api/{self.api_version}"
        parts = [prefix]
        if self.namespaced and namespace is not None:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name is not None:
            parts.append(name)
            if self.subresource:
                parts.append(self.subresource)
        return "/".join(parts)


def _verbs(*verbs: str) -> frozenset[str]:
    return frozenset(verbs)


# Verbs of a child object: read it to compare (get), apply it (patch, and create: the API
# server authorizes an apply that creates the object as a create), delete it when the spec
# stops asking for it, list/watch to notice drift.
_CHILD = _verbs("get", "list", "watch", "create", "patch", "delete")
_CUSTOM = f"{GROUP}/{VERSION}"

MIRAGE_SERVICE = Resource(
    _CUSTOM,
    "MirageService",
    "mirageservices",
    _verbs("get", "list", "watch", "patch"),
    "kopf watches MirageServices and records its handler progress on them",
)
MIRAGE_SERVICE_STATUS = Resource(
    _CUSTOM,
    "MirageService",
    "mirageservices",
    _verbs("get", "patch"),
    "the operator reports observedGeneration, conditions and children",
    subresource="status",
)
VAULT_SECRET = Resource(
    _CUSTOM,
    "VaultSecret",
    "vaultsecrets",
    _CHILD,
    "watched and reconciled; also applied as children of MirageServices",
)
VAULT_SECRET_STATUS = Resource(
    _CUSTOM,
    "VaultSecret",
    "vaultsecrets",
    _verbs("get", "patch"),
    "the operator reports sync state and the data's HMAC",
    subresource="status",
)
SLO = Resource(
    _CUSTOM,
    "ServiceLevelObjective",
    "servicelevelobjectives",
    _CHILD,
    "watched and reconciled; also applied as children of MirageServices",
)
SLO_STATUS = Resource(
    _CUSTOM,
    "ServiceLevelObjective",
    "servicelevelobjectives",
    _verbs("get", "patch"),
    "the operator reports the generated rule set",
    subresource="status",
)
SERVICE_ACCOUNT = Resource(
    "v1",
    "ServiceAccount",
    "serviceaccounts",
    _CHILD,
    "each service runs under its own ServiceAccount",
)
SERVICE_ACCOUNT_TOKEN = Resource(
    "v1",
    "TokenRequest",
    "serviceaccounts",
    _verbs("create"),
    "short-lived tokens of the tenant's Vault ServiceAccount for Vault kubernetes auth",
    subresource="token",
)
CONFIG_MAP = Resource(
    "v1", "ConfigMap", "configmaps", _CHILD, "service configuration and Grafana dashboards"
)
SECRET = Resource(
    "v1",
    "Secret",
    "secrets",
    _CHILD,
    "Secrets synced from Vault, and the operator's keys and kept Vault tokens",
)
SERVICE = Resource("v1", "Service", "services", _CHILD, "each service's Service")
EVENT = Resource(
    "v1",
    "Event",
    "events",
    _verbs("create", "patch"),
    "kopf and the operator report what they did as Events",
)
DEPLOYMENT = Resource(
    "apps/v1",
    "Deployment",
    "deployments",
    _CHILD,
    "each service's Deployment; rollout restarts after secret rotation",
)
STATEFUL_SET = Resource(
    "apps/v1",
    "StatefulSet",
    "statefulsets",
    _verbs("get", "patch"),
    "rollout restarts named by a VaultSecret's rolloutRestartTargets",
)
DAEMON_SET = Resource(
    "apps/v1",
    "DaemonSet",
    "daemonsets",
    _verbs("get", "patch"),
    "rollout restarts named by a VaultSecret's rolloutRestartTargets",
)
HPA = Resource(
    "autoscaling/v2",
    "HorizontalPodAutoscaler",
    "horizontalpodautoscalers",
    _CHILD,
    "autoscaling of a service's Deployment",
)
PDB = Resource(
    "policy/v1",
    "PodDisruptionBudget",
    "poddisruptionbudgets",
    _CHILD,
    "voluntary disruption limits of a service",
)
NETWORK_POLICY = Resource(
    "networking.k8s.io/v1",
    "NetworkPolicy",
    "networkpolicies",
    _CHILD,
    "default-deny ingress with the allowed callers of a service",
)
INGRESS = Resource(
    "networking.k8s.io/v1", "Ingress", "ingresses", _CHILD, "Traefik ingress of a service"
)
SERVICE_MONITOR = Resource(
    "monitoring.coreos.com/v1",
    "ServiceMonitor",
    "servicemonitors",
    _CHILD,
    "Prometheus scraping of a service's metrics",
)
PROMETHEUS_RULE = Resource(
    "monitoring.coreos.com/v1",
    "PrometheusRule",
    "prometheusrules",
    _CHILD,
    "SLO recording and alerting rules, custom rules",
)
PEER_AUTHENTICATION = Resource(
    "security.istio.io/v1",
    "PeerAuthentication",
    "peerauthentications",
    _CHILD,
    "mTLS mode of a service's pods in the Istio mesh",
)
AUTHORIZATION_POLICY = Resource(
    "security.istio.io/v1",
    "AuthorizationPolicy",
    "authorizationpolicies",
    _CHILD,
    "the mesh callers allowed in (the NetworkPolicy's twin) and the JWT requirement",
)
REQUEST_AUTHENTICATION = Resource(
    "security.istio.io/v1",
    "RequestAuthentication",
    "requestauthentications",
    _CHILD,
    "the JWT issuer and keys of a service's API",
)
DESTINATION_RULE = Resource(
    "networking.istio.io/v1",
    "DestinationRule",
    "destinationrules",
    _CHILD,
    "connection pool and outlier detection of a service in the mesh",
)
MIDDLEWARE = Resource(
    "traefik.io/v1alpha1",
    "Middleware",
    "middlewares",
    _CHILD,
    "Traefik forwardAuth to the platform's OAuth2 Proxy (OIDC sign-in)",
)
NAMESPACE = Resource(
    "v1",
    "Namespace",
    "namespaces",
    _verbs("get", "list", "watch"),
    "kopf follows namespaces when watching a namespace pattern",
    namespaced=False,
)
CRD = Resource(
    "apiextensions.k8s.io/v1",
    "CustomResourceDefinition",
    "customresourcedefinitions",
    _verbs("get", "list", "watch"),
    "kopf discovers the resources it serves",
    namespaced=False,
)

LEASE = Resource(
    "coordination.k8s.io/v1",
    "Lease",
    "leases",
    _verbs("get", "create", "update"),
    "leader election among the operator's replicas (its own Lease, by name)",
)

ALL: tuple[Resource, ...] = (
    MIRAGE_SERVICE,
    MIRAGE_SERVICE_STATUS,
    VAULT_SECRET,
    VAULT_SECRET_STATUS,
    SLO,
    SLO_STATUS,
    SERVICE_ACCOUNT,
    SERVICE_ACCOUNT_TOKEN,
    CONFIG_MAP,
    SECRET,
    SERVICE,
    EVENT,
    DEPLOYMENT,
    STATEFUL_SET,
    DAEMON_SET,
    HPA,
    PDB,
    NETWORK_POLICY,
    INGRESS,
    SERVICE_MONITOR,
    PROMETHEUS_RULE,
    PEER_AUTHENTICATION,
    AUTHORIZATION_POLICY,
    REQUEST_AUTHENTICATION,
    DESTINATION_RULE,
    MIDDLEWARE,
    NAMESPACE,
    CRD,
    LEASE,
)


def for_kind(api_version: str, kind: str) -> Resource:
    """The main (non-subresource) entry for ``kind``; KeyError if the operator never touches it."""
    for resource in ALL:
        if (
            resource.api_version == api_version
            and resource.kind == kind
            and not resource.subresource
        ):
            return resource
    raise KeyError(f"{api_version} {kind} is not a resource the operator manages")
