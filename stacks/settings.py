"""The stack's configuration (keys under ``mirage:``), read once into frozen dataclasses.

Every key, its type, default and meaning is documented in ``Pulumi.yaml``; this module turns
the raw values into typed settings and rejects bad input before any resource is declared,
with a :class:`SettingsError` naming the key and the reason. Components receive settings as
arguments and never read configuration themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from mirage_operator import tenancy

ENVIRONMENTS = ("dev", "prod")
CLUSTER_MODES = ("eks", "existing")
VAULT_MODES = ("helm", "dev", "existing")
STORES = ("postgres", "mongodb", "redis", "rabbitmq", "opensearch")

REQUIRED_TAGS = ("owner", "cost-center")
"""Tags a stack must set (``mirage:tags``); the policy pack requires them on every taggable
resource, beside the ones the program adds (``mirage:stack``, ``mirage:environment``,
``managed-by``)."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_CIDR = re.compile(r"^(\d{1,3}\.){3}\d{1,3}/\d{1,2}$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class SettingsError(ValueError):
    """A ``mirage:`` config value is missing or malformed; the message names the key."""


@dataclass(frozen=True)
class NodeGroup:
    """One EKS managed node group."""

    name: str
    instance_types: tuple[str, ...]
    min_size: int
    desired_size: int
    max_size: int


@dataclass(frozen=True)
class Tenant:
    """One tenant namespace: its quota and default container limits."""

    name: str
    cpu: str = "8"
    """``requests.cpu`` and ``limits.cpu`` quota of the namespace."""
    memory: str = "16Gi"
    """``requests.memory`` and ``limits.memory`` quota of the namespace."""
    pods: int = 50
    default_cpu: str = "500m"
    """Default CPU limit of a container that sets none (the request default is a fifth)."""
    default_memory: str = "512Mi"
    """Default memory limit of a container that sets none (also its request default)."""
    database_roles: tuple[str, ...] = ()
    """Extra read-write database roles ``<name>.<role>`` (``<name>`` and ``<name>.readonly``
    always exist when PostgreSQL does)."""


@dataclass(frozen=True)
class Charts:
    """Pinned versions of the third-party Helm charts the platform installs."""

    vault: str = "0.30.1"
    kube_prometheus_stack: str = "77.6.2"
    fluent_bit: str = "0.52.0"
    opensearch_dashboards: str = "3.2.0"
    traefik: str = "37.1.1"
    istio: str = "1.27.1"
    """One version for Istio's ``base``, ``istiod`` and ``cni`` charts (released together)."""
    oauth2_proxy: str = "7.18.0"


@dataclass(frozen=True)
class Mesh:
    """Istio (base, istiod, the CNI plugin), as the operator's ``spec.mesh`` assumes it."""

    enabled: bool = False
    trust_domain: str = "cluster.local"
    """Istio's trust domain; also the operator's ``MIRAGE_MESH_TRUST_DOMAIN``."""
    join_by_default: bool = False
    """The operator's ``MIRAGE_MESH_DEFAULT``: services join the mesh unless they opt out."""


@dataclass(frozen=True)
class OAuth2Proxy:
    """OAuth2 Proxy at the edge, asked by the operator's ``spec.ingress.auth.oidc``."""

    issuer_url: str
    client_id: str
    host: str
    """Public host of the sign-in and callback pages (``/oauth2/*``), behind Traefik."""
    cookie_domain: str
    """Domain of the session cookie and of the pages it may send people back to."""
    client_secret: pulumi.Input[str] | None = field(repr=False)
    """The IdP client's secret (a secret); None: read from Vault at :attr:`client_secret_vault`."""
    email_domains: tuple[str, ...] = ("*",)
    client_secret_vault: VaultKey | None = None


@dataclass(frozen=True)
class VaultKey:
    """One key of a KV v2 secret in Vault, which Pulumi reads when it runs."""

    mount: str
    path: str
    key: str


@dataclass(frozen=True)
class Settings:
    """Everything ``pulumi up`` is told by the stack's configuration."""

    environment: str
    """``dev`` or ``prod``: prod turns on Multi-AZ, deletion protection, a private API
    endpoint and three availability zones."""
    cluster: str
    """``eks``: provision the network and an EKS cluster; ``existing``: install onto the
    cluster of ``kubeconfig`` and create no cloud resource at all."""
    tags: Mapping[str, str]
    """Tags on every taggable cloud resource (``owner`` and ``cost-center`` required)."""
    kubeconfig: pulumi.Input[str] | None = field(default=None, repr=False)
    """The existing cluster's kubeconfig (``cluster: existing``); a secret."""
    availability_zones: int = 1
    vpc_cidr: str = "10.0.0.0/16"
    kubernetes_version: str = "1.33"
    node_groups: tuple[NodeGroup, ...] = ()
    public_endpoint: bool = True
    """Whether the EKS API endpoint is reachable from ``public_access_cidrs`` (never in prod)."""
    public_access_cidrs: tuple[str, ...] = ()
    stores: frozenset[str] = frozenset()
    """Data stores to provision (``eks`` only): a subset of :data:`STORES`."""
    vault_mode: str = "helm"
    """``helm``: the hashicorp/vault chart, HA Raft, auto-unsealed by KMS through IRSA;
    ``dev``: the chart's dev server (local stacks only: in memory, unsealed, not for data
    that matters); ``existing``: a Vault the platform team already runs."""
    vault_address: str = ""
    """Address pods use to reach Vault; computed for ``helm``/``dev`` when empty."""
    vault_admin_address: str = "http://127.0.0.1:8200"
    """Address Pulumi itself uses to configure Vault (a port-forward, VPN or internal LB)."""
    vault_token: pulumi.Input[str] | None = field(default=None, repr=False)
    """Token Pulumi configures Vault with (a secret); ``dev`` generates one when unset."""
    vault_auth_mount: str = tenancy.AUTH_MOUNT
    tenants: tuple[Tenant, ...] = ()
    grafana_host: str = ""
    """Host name of Grafana's Ingress; empty: no Ingress (use a port-forward)."""
    opensearch_dashboards_host: str = ""
    operator_image: str = "ghcr.io/mirage-platform/mirage-operator"
    operator_version: str = ""
    """Operator image tag; empty uses the chart's appVersion."""
    charts: Charts = Charts()
    mesh: Mesh = Mesh()
    oauth2_proxy: OAuth2Proxy | None = None
    """None: no OAuth2 Proxy (``spec.ingress.auth.oidc`` then has nothing to ask)."""

    @property
    def prod(self) -> bool:
        return self.environment == "prod"

    @property
    def cloud(self) -> bool:
        """Whether the stack provisions AWS resources at all."""
        return self.cluster == "eks"


def _snake(key: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m[1].lower(), key)


def _choice(raw: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str) -> str:
    value = raw.get(key, default)
    if value not in choices:
        raise SettingsError(f"mirage:{key}: must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _bool(raw: Mapping[str, Any], key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise SettingsError(f"mirage:{key}: must be true or false, got {value!r}")
    return value


def _int(value: Any, key: str, minimum: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SettingsError(f"mirage:{key}: must be a whole number, got {value!r}") from None
    if number < minimum or str(number) != str(value).strip():
        raise SettingsError(f"mirage:{key}: must be a whole number >= {minimum}, got {value!r}")
    return number


def _node_groups(raw: Any) -> tuple[NodeGroup, ...]:
    groups = []
    for index, item in enumerate(raw or ()):
        key = f"nodeGroups[{index}]"
        if not isinstance(item, Mapping) or not _DNS_LABEL.match(str(item.get("name", ""))):
            raise SettingsError(f"mirage:{key}.name: must be a DNS label")
        sizes = [_int(item.get(k, 1), f"{key}.{k}", 0) for k in ("minSize", "desiredSize")]
        maximum = _int(item.get("maxSize", max(sizes)), f"{key}.maxSize", 1)
        if not sizes[0] <= sizes[1] <= maximum:
            raise SettingsError(f"mirage:{key}: needs minSize <= desiredSize <= maxSize")
        types = tuple(str(t) for t in item.get("instanceTypes", ("m6i.large",)))
        groups.append(NodeGroup(str(item["name"]), types, sizes[0], sizes[1], maximum))
    return tuple(groups)


def _tenants(raw: Any) -> tuple[Tenant, ...]:
    tenants: list[Tenant] = []
    for index, item in enumerate(raw or ()):
        key = f"tenants[{index}]"
        item = {"name": item} if isinstance(item, str) else item
        name = str(item.get("name", "")) if isinstance(item, Mapping) else ""
        if not _DNS_LABEL.match(name) or len(name) > 63:
            raise SettingsError(f"mirage:{key}.name: must be a namespace name, got {name!r}")
        if any(t.name == name for t in tenants):
            raise SettingsError(f"mirage:{key}.name: duplicate tenant {name!r}")
        extra = {k: item[k] for k in ("cpu", "memory", "defaultCpu", "defaultMemory") if k in item}
        roles = tuple(str(r) for r in item.get("databaseRoles") or ())
        for role in roles:
            if not _DNS_LABEL.match(role) or role == "readonly":
                raise SettingsError(f"mirage:{key}.databaseRoles: {role!r} is not a role name")
        tenants.append(
            Tenant(
                name=name,
                pods=_int(item.get("pods", 50), f"{key}.pods", 1),
                database_roles=roles,
                **{_snake(k): str(v) for k, v in extra.items()},
            )
        )
    return tuple(tenants)


def _mesh(raw: Any, *, cloud: bool) -> Mesh:
    raw = raw if raw is not None else {}
    if not isinstance(raw, Mapping) or set(raw) - {"enabled", "trustDomain", "joinByDefault"}:
        raise SettingsError("mirage:mesh: an object of enabled, trustDomain, joinByDefault")
    # The platform runs its services on the mesh; a laptop cluster need not carry it.
    enabled = _bool(raw, "enabled", cloud)
    domain = str(raw.get("trustDomain", Mesh.trust_domain))
    if not _DNS_SUBDOMAIN.match(domain) or len(domain) > 253:
        raise SettingsError(f"mirage:mesh.trustDomain: must be a DNS subdomain, got {domain!r}")
    join = _bool(raw, "joinByDefault", False)
    if join and not enabled:
        raise SettingsError("mirage:mesh.joinByDefault: needs mesh.enabled (no Istio to join)")
    return Mesh(enabled=enabled, trust_domain=domain, join_by_default=join)


def _oauth2_proxy(raw: Any, client_secret: pulumi.Input[str] | None) -> OAuth2Proxy | None:
    if raw is None:
        return None
    known = {"issuerUrl", "clientId", "host", "cookieDomain", "emailDomains", "clientSecretVault"}
    if not isinstance(raw, Mapping) or set(raw) - known:
        raise SettingsError(f"mirage:oauth2Proxy: an object of {', '.join(sorted(known))}")
    issuer = str(raw.get("issuerUrl", ""))
    if not re.match(r"^https://[^/\s]+", issuer):
        raise SettingsError(
            f"mirage:oauth2Proxy.issuerUrl: must be an https:// URL, got {issuer!r}"
        )
    client_id = str(raw.get("clientId", ""))
    if not client_id:
        raise SettingsError("mirage:oauth2Proxy.clientId: required")
    host = str(raw.get("host", ""))
    if not _DNS_SUBDOMAIN.match(host) or "." not in host:
        raise SettingsError(f"mirage:oauth2Proxy.host: must be a host name, got {host!r}")
    # Default: the host's parent domain, so the cookie covers every service beside it.
    cookie_domain = str(raw.get("cookieDomain", "." + host.split(".", 1)[1]))
    if not _DNS_SUBDOMAIN.match(cookie_domain.removeprefix(".")):
        raise SettingsError(f"mirage:oauth2Proxy.cookieDomain: not a domain: {cookie_domain!r}")
    if not host.endswith(cookie_domain) and host != cookie_domain.removeprefix("."):
        raise SettingsError("mirage:oauth2Proxy.cookieDomain: must contain oauth2Proxy.host")
    from_vault = _vault_key(raw.get("clientSecretVault"))
    if bool(client_secret) == bool(from_vault):
        raise SettingsError(
            "mirage:oauth2ProxyClientSecret: with oauth2Proxy, set this secret or "
            "oauth2Proxy.clientSecretVault (one of them)"
        )
    domains = tuple(str(d) for d in raw.get("emailDomains") or ("*",))
    return OAuth2Proxy(
        issuer_url=issuer,
        client_id=client_id,
        host=host,
        cookie_domain=cookie_domain,
        client_secret=client_secret or None,
        email_domains=domains,
        client_secret_vault=from_vault,
    )


def _vault_key(raw: Any) -> VaultKey | None:
    if raw is None:
        return None
    key = "mirage:oauth2Proxy.clientSecretVault"
    if not isinstance(raw, Mapping) or set(raw) != {"mount", "path", "key"}:
        raise SettingsError(f"{key}: an object of mount, path, key (a KV v2 secret's key)")
    if not all(isinstance(v, str) and v.strip("/") for v in raw.values()):
        raise SettingsError(f"{key}: mount, path and key must be non-empty strings")
    return VaultKey(raw["mount"].strip("/"), raw["path"].strip("/"), raw["key"])


def parse(raw: Mapping[str, Any], *, secrets: Mapping[str, pulumi.Input[str] | None]) -> Settings:
    """Settings from the ``mirage:`` config values (``raw``: key to parsed value) and the
    secret ones (:data:`SECRET_KEYS`). Raises :class:`SettingsError`."""
    environment = _choice(raw, "environment", ENVIRONMENTS, "dev")
    cluster = _choice(raw, "cluster", CLUSTER_MODES, "eks")
    prod = environment == "prod"
    tags = {str(k): str(v) for k, v in (raw.get("tags") or {}).items()}
    missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
    if missing:
        raise SettingsError(f"mirage:tags: missing required tag(s) {', '.join(missing)}")
    kubeconfig = secrets.get("kubeconfig")
    if cluster == "existing" and not kubeconfig:
        raise SettingsError("mirage:kubeconfig: required with cluster: existing (a secret)")
    public = _bool(raw, "publicEndpoint", not prod)
    if prod and public:
        raise SettingsError("mirage:publicEndpoint: the API endpoint is private in prod")
    cidrs = tuple(str(c) for c in raw.get("publicAccessCidrs") or ())
    for cidr in cidrs:
        if not _CIDR.match(cidr) or cidr == "0.0.0.0/0":
            raise SettingsError(f"mirage:publicAccessCidrs: {cidr!r} is not a narrow CIDR")
    if public and cluster == "eks" and not cidrs:
        raise SettingsError("mirage:publicAccessCidrs: required with a public endpoint")
    stores_raw = raw.get("dataStores") or {}
    unknown = set(stores_raw) - set(STORES)
    if unknown:
        raise SettingsError(f"mirage:dataStores: unknown store(s) {', '.join(sorted(unknown))}")
    stores = (
        frozenset(s for s in STORES if _bool(stores_raw, s, True))
        if cluster == "eks"
        else frozenset()
    )
    if cluster == "existing" and any(_bool(stores_raw, s, False) for s in stores_raw):
        raise SettingsError("mirage:dataStores: managed data stores need cluster: eks")
    vault_mode = _choice(raw, "vaultMode", VAULT_MODES, "helm" if cluster == "eks" else "dev")
    if vault_mode == "helm" and cluster != "eks":
        raise SettingsError("mirage:vaultMode: helm (KMS auto-unseal) needs cluster: eks")
    if vault_mode == "dev" and prod:
        raise SettingsError("mirage:vaultMode: the dev server keeps secrets in memory; not in prod")
    vault_address = str(raw.get("vaultAddress", ""))
    if vault_mode == "existing" and not vault_address:
        raise SettingsError("mirage:vaultAddress: required with vaultMode: existing")
    vault_token = secrets.get("vaultToken")
    if vault_mode != "dev" and not vault_token:
        raise SettingsError(f"mirage:vaultToken: required with vaultMode: {vault_mode} (a secret)")
    groups = _node_groups(raw.get("nodeGroups")) or (
        NodeGroup("system", ("m6i.large",), 3 if prod else 1, 3 if prod else 2, 6 if prod else 3),
    )
    default_zones = 3 if prod else 1
    zones = _int(raw.get("availabilityZones", default_zones), "availabilityZones", 1)
    if prod and zones < 2:
        raise SettingsError("mirage:availabilityZones: prod needs at least 2 (Multi-AZ)")
    if zones > 6:
        raise SettingsError("mirage:availabilityZones: at most 6")
    vpc_cidr = str(raw.get("vpcCidr", "10.0.0.0/16"))
    if not _CIDR.match(vpc_cidr) or not vpc_cidr.endswith("/16"):
        raise SettingsError(f"mirage:vpcCidr: must be a /16 CIDR, got {vpc_cidr!r}")
    charts_raw = raw.get("chartVersions") or {}
    known = {
        "vault", "kubePrometheusStack", "fluentBit", "opensearchDashboards", "traefik", "istio",
        "oauth2Proxy",
    }  # fmt: skip
    if set(charts_raw) - known:
        raise SettingsError(
            f"mirage:chartVersions: unknown chart(s) {sorted(set(charts_raw) - known)}"
        )
    charts = Charts(**{_snake(k): str(v) for k, v in charts_raw.items()})
    oauth2_proxy = _oauth2_proxy(raw.get("oauth2Proxy"), secrets.get("oauth2ProxyClientSecret"))
    return Settings(
        environment=environment,
        cluster=cluster,
        tags=tags,
        kubeconfig=kubeconfig,
        availability_zones=zones,
        vpc_cidr=vpc_cidr,
        kubernetes_version=str(raw.get("kubernetesVersion", "1.33")),
        node_groups=groups,
        public_endpoint=public,
        public_access_cidrs=cidrs,
        stores=stores,
        vault_mode=vault_mode,
        vault_address=vault_address,
        vault_admin_address=str(raw.get("vaultAdminAddress", "http://127.0.0.1:8200")),
        vault_token=vault_token,
        vault_auth_mount=str(raw.get("vaultAuthMount", tenancy.AUTH_MOUNT)),
        tenants=_tenants(raw.get("tenants")),
        grafana_host=str(raw.get("grafanaHost", "")),
        opensearch_dashboards_host=str(raw.get("opensearchDashboardsHost", "")),
        operator_image=str(raw.get("operatorImage", Settings.operator_image)),
        operator_version=str(raw.get("operatorVersion", "")),
        charts=charts,
        mesh=_mesh(raw.get("mesh"), cloud=cluster == "eks"),
        oauth2_proxy=oauth2_proxy,
    )


STRING_KEYS = (
    "environment", "cluster", "vpcCidr", "kubernetesVersion", "vaultMode", "vaultAddress",
    "vaultAdminAddress", "vaultAuthMount", "grafanaHost", "opensearchDashboardsHost",
    "operatorImage", "operatorVersion",
)  # fmt: skip
"""Plain string keys under ``mirage:``."""

OBJECT_KEYS = (
    "tags", "availabilityZones", "nodeGroups", "publicEndpoint", "publicAccessCidrs",
    "dataStores", "tenants", "chartVersions", "mesh", "oauth2Proxy",
)  # fmt: skip
"""Keys under ``mirage:`` holding YAML objects, lists, numbers or booleans."""

SECRET_KEYS = ("kubeconfig", "vaultToken", "oauth2ProxyClientSecret")
"""Secret keys under ``mirage:`` (``pulumi config set --secret``)."""


def load() -> Settings:
    """Read the stack's ``mirage:`` configuration (inside a Pulumi program)."""
    config = pulumi.Config("mirage")
    raw: dict[str, Any] = {}
    for key in STRING_KEYS:
        if (text := config.get(key)) is not None:
            raw[key] = text
    for key in OBJECT_KEYS:
        if (value := config.get_object(key)) is not None:
            raw[key] = value
    secrets = {key: config.get_secret(key) for key in SECRET_KEYS}
    return parse(raw, secrets=secrets)
