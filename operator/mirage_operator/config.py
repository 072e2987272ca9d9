"""Operator configuration: one frozen dataclass, loaded from ``MIRAGE_*`` environment variables.

Every field documents itself (the string under it) and names, in ``metadata``, its variable
and the chart value that sets it. This is the one source of each setting's description and
default: ``hack/gen_config_docs.py`` writes the README table, the chart's values.yaml entries
and its values.schema.json from it (docs/adr/0131). Builders receive a :class:`Config` as an
argument; nothing reads the environment elsewhere.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mirage_operator import tenancy
from mirage_operator.api import k8svalidation
from mirage_operator.durations import parse_interval
from mirage_operator.errors import ConfigError

ENV_PREFIX = "MIRAGE_"
_T = TypeVar("_T")


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _parse_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _parse_labels(raw: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in _parse_list(raw):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"expected key=value pairs separated by commas, got {item!r}")
        key, value = key.strip(), value.strip()
        reasons = k8svalidation.is_qualified_name(key) + k8svalidation.is_valid_label_value(value)
        if reasons:
            raise ValueError(f"invalid label {key}={value}: {'; '.join(reasons)}")
        pairs.append((key, value))
    return tuple(pairs)


def _parse_name(rule: str) -> Callable[[str], str]:
    # A name the operator writes into child objects, refused now rather than by the API server.
    def parse(raw: str) -> str:
        reasons = k8svalidation.NAME_RULES[rule](raw)
        if reasons:
            raise ValueError(f"invalid name {raw!r}: {'; '.join(reasons)}")
        return raw

    return parse


def _parse_namespaces(raw: str) -> tuple[str, ...]:
    check = _parse_name("dns1123-label")
    return tuple(check(item) for item in _parse_list(raw))


def _parse_template(*placeholders: str) -> Callable[[str], str]:
    # Reject a template that names an unknown placeholder now, not at the first login.
    def parse(raw: str) -> str:
        try:
            raw.format(**dict.fromkeys(placeholders, "x"))
        except (KeyError, IndexError, ValueError) as exc:
            allowed = ", ".join("{" + name + "}" for name in placeholders)
            raise ValueError(f"template may use only {allowed}, got {raw!r}") from exc
        return raw

    return parse


def _parse_templates(*placeholders: str) -> Callable[[str], tuple[str, ...]]:
    one = _parse_template(*placeholders)

    def parse(raw: str) -> tuple[str, ...]:
        items = tuple(one(item) for item in _parse_list(raw))
        if not items:
            raise ValueError("expected at least one template")
        return items

    return parse


def _parse_http_url(raw: str) -> str:
    # Written into every forwardAuth Middleware: refused at start, not by Traefik later.
    if not re.fullmatch(r"https?://[^/?#\s]+(/[^?#\s]*)?", raw):
        raise ValueError(f"expected an http:// or https:// URL without query, got {raw!r}")
    return raw.rstrip("/")


def parse_service_reference(raw: str) -> tuple[str, str, int]:
    """``<namespace>/<name>:<port>`` as ``(namespace, name, port)``: a Service that Traefik
    resolves itself, so a name and a number rather than a URL."""
    namespace, slash, rest = raw.strip().partition("/")
    name, colon, port = rest.rpartition(":")
    if not (slash and colon and port.isdigit() and 0 < int(port) <= 65535):
        raise ValueError(f"expected <namespace>/<name>:<port>, got {raw!r}")
    return _parse_name("dns1123-label")(namespace), _parse_name("dns1035-label")(name), int(port)


def _parse_service_reference(raw: str) -> str:
    parse_service_reference(raw)
    return raw.strip()


class _Choice:
    """Parse one of ``choices`` (which the chart's values schema lists as its enum)."""

    def __init__(self, *choices: str) -> None:
        self.choices = choices

    def __call__(self, raw: str) -> str:
        if raw not in self.choices:
            raise ValueError(f"must be one of {', '.join(self.choices)}, got {raw!r}")
        return raw


def _checked(
    convert: Callable[[str], _T], ok: Callable[[_T], bool], must: str
) -> Callable[[str], _T]:
    # One shape for every "convert, then bound" variable.
    def parse(raw: str) -> _T:
        value = convert(raw)
        if not ok(value):
            raise ValueError(f"{must}, got {raw!r}")
        return value

    return parse


_parse_positive_float = _checked(float, lambda v: v > 0, "must be greater than 0")
_parse_port = _checked(int, lambda v: 0 <= v <= 65535, "must be a port number 0-65535 (0 disables)")
_parse_non_negative_int = _checked(int, lambda v: v >= 0, "must be 0 or more")
_parse_positive_int = _checked(int, lambda v: v > 0, "must be greater than 0")
_parse_non_negative_float = _checked(
    float, lambda v: math.isfinite(v) and v >= 0, "must be a finite number, 0 or more"
)
_parse_seconds = _checked(parse_interval, lambda v: v > 0, "must be longer than 0")


def _env(
    name: str,
    parse: Callable[[str], Any] = str,
    *,
    value: str | None = None,
    set_by: str | None = None,
    chart_default: Any = None,
) -> dict[str, Any]:
    """A field's metadata: its variable ``MIRAGE_<name>`` and how the chart sets it, either from
    the values key ``value`` (whose default is the field's, unless ``chart_default`` says
    otherwise) or as ``set_by`` describes. ``hack/gen_config_docs.py`` writes the README table,
    the chart's values.yaml entries and values.schema.json from these and the docstrings."""
    if (value is None) == (set_by is None):
        raise TypeError(f"{name}: give exactly one of value and set_by")
    return {
        "env": ENV_PREFIX + name,
        "parse": parse,
        "chart_value": value,
        "chart_set_by": set_by,
        "chart_default": chart_default,
    }


# The parsers several settings share.
_label = _parse_name("dns1123-label")
_subdomain = _parse_name("dns1123-subdomain")
_namespace_template = _parse_template("namespace")
_namespace_templates = _parse_templates("namespace")


def _setting(default: Any, name: str, parse: Callable[[str], Any] = str, **chart: Any) -> Any:
    """A :class:`Config` field: its default and :func:`_env`'s metadata."""
    return field(default=default, metadata=_env(name, parse, **chart))


@dataclass(frozen=True)
class Config:
    """Everything the operator can be told from outside. Defaults suit a kube-prometheus-stack
    and Traefik install; the Helm chart sets each field from its values."""

    namespaces: tuple[str, ...] = _setting(
        (), "NAMESPACES", _parse_namespaces, value="watch.namespaces"
    )
    """Namespaces to watch; empty means every namespace (cluster-wide: the chart grants a
    ClusterRole; with a list, a Role in each namespace, and the ClusterRole grants only CRD and
    namespace discovery)."""

    operator_namespace: str = _setting(
        "mirage-system", "OPERATOR_NAMESPACE", _label, set_by="the release namespace"
    )
    """Namespace the operator runs in; holds its HMAC key Secret and (in operator mode) token."""

    field_manager: str = _setting("mirage-operator", "FIELD_MANAGER", value="operator.fieldManager")
    """Field manager name for every server-side apply the operator makes. Changing it on a
    running install leaves the old manager's fields behind."""

    resync_interval: float = _setting(
        300.0, "RESYNC_INTERVAL", _parse_positive_float, value="operator.resyncInterval"
    )
    """Seconds between level-based resyncs of each custom resource (drift correction backstop)."""

    kube_api_qps: float = _setting(
        1000.0, "KUBE_API_QPS", _parse_non_negative_float, value="operator.kubeAPIQPS"
    )
    """Requests a second the operator may send to the Kubernetes API (client-side token
    bucket); 0: no client-side rate limit. The API server's priority and fairness limits
    requests in flight, which the operator bounds at 32; this ceiling only stops a runaway
    loop. At 200 it was what set the time of a cold start of 1,000 services (docs/adr/0020)."""

    kube_api_burst: int = _setting(
        1000, "KUBE_API_BURST", _parse_positive_int, value="operator.kubeAPIBurst"
    )
    """Requests the operator may send at once after a pause, above ``kube_api_qps``."""

    metrics_port: int = _setting(
        8080, "METRICS_PORT", _parse_port, set_by="metrics.port, or 0 when metrics.enabled is false"
    )
    """Port of the Prometheus ``/metrics`` and ``/healthz`` endpoint; 0 disables it."""

    log_level: str = _setting(
        "INFO", "LOG_LEVEL", _Choice("DEBUG", "INFO", "WARNING", "ERROR"), value="operator.logLevel"
    )
    """Log level: DEBUG, INFO, WARNING or ERROR."""

    log_format: str = _setting(
        "json", "LOG_FORMAT", _Choice("json", "text"), value="operator.logFormat"
    )
    """Log format: ``json`` (one object per line) or ``text``."""

    ingress_class: str = _setting(
        tenancy.INGRESS_CLASS, "INGRESS_CLASS", _subdomain, value="platform.ingressClass"
    )
    """IngressClass name set on every Ingress the operator creates."""

    ingress_controller_namespace: str = _setting(
        "traefik",
        "INGRESS_CONTROLLER_NAMESPACE",
        _label,
        value="platform.ingressControllerNamespace",
    )
    """Namespace of the ingress controller pods, allowed in by each service's NetworkPolicy."""

    prometheus_namespace: str = _setting(
        "monitoring", "PROMETHEUS_NAMESPACE", _label, value="platform.prometheusNamespace"
    )
    """Namespace of the Prometheus pods, allowed to scrape each service's metrics port."""

    mesh_default: bool = _setting(False, "MESH_DEFAULT", _parse_bool, value="platform.meshDefault")
    """Whether a MirageService joins the Istio mesh when its ``spec.mesh.enabled`` is unset."""

    mesh_trust_domain: str = _setting(
        "cluster.local", "MESH_TRUST_DOMAIN", _subdomain, value="platform.meshTrustDomain"
    )
    """Istio trust domain, the first part of each caller's identity
    (``<domain>/ns/<namespace>/sa/<service account>``) in AuthorizationPolicies."""

    cluster_domain: str = _setting(
        "cluster.local", "CLUSTER_DOMAIN", _subdomain, value="platform.clusterDomain"
    )
    """DNS domain of the cluster, for the fully qualified host of each DestinationRule."""

    oauth2_proxy_url: str = _setting(
        "http://oauth2-proxy.oauth2-proxy.svc.cluster.local",
        "OAUTH2_PROXY_URL",
        _parse_http_url,
        value="platform.oauth2ProxyUrl",
    )
    """Base URL of the platform's OAuth2 Proxy, which the forwardAuth Middleware of
    ``spec.ingress.auth.oidc`` asks (at ``/oauth2/auth``) whether a person is signed in."""

    oauth2_proxy_service: str = _setting(
        "oauth2-proxy/oauth2-proxy:80",
        "OAUTH2_PROXY_SERVICE",
        _parse_service_reference,
        value="platform.oauth2ProxyService",
    )
    """The same OAuth2 Proxy as a Service, ``<namespace>/<name>:<port>``: the errors Middleware
    of ``spec.ingress.auth.oidc`` sends a person without a session to its ``/oauth2/sign_in``;
    Traefik must allow references across namespaces (``allowCrossNamespace``)."""

    monitoring_labels: tuple[tuple[str, str], ...] = _setting(
        tenancy.MONITORING_LABELS,
        "MONITORING_LABELS",
        _parse_labels,
        value="platform.monitoringLabels",
    )
    """Labels on every ServiceMonitor and PrometheusRule (the chart's own included), so that
    the Prometheus of a kube-prometheus-stack release selects them."""

    dashboard_labels: tuple[tuple[str, str], ...] = _setting(
        tenancy.DASHBOARD_LABELS,
        "DASHBOARD_LABELS",
        _parse_labels,
        value="platform.dashboardLabels",
    )
    """Labels on every Grafana dashboard ConfigMap (the chart's own included): the Grafana
    sidecar's selector."""

    vault_address: str = _setting(
        "http://127.0.0.1:8200",
        "VAULT_ADDR",
        value="vault.address",
        chart_default="https://vault.vault.svc:8200",
    )
    """Address of Vault, e.g. ``https://vault.vault.svc:8200``."""

    vault_ca_path: str = _setting("", "VAULT_CA_PATH", set_by="the file mounted from vault.caCert")
    """PEM bundle of the CAs that sign Vault's certificate; empty uses the system CAs."""

    vault_tls_server_name: str = _setting("", "VAULT_TLS_SERVER_NAME", value="vault.tlsServerName")
    """Name sent as SNI and checked against Vault's certificate, when it differs from the
    address's host; empty uses the host."""

    vault_namespace: str = _setting("", "VAULT_NAMESPACE", value="vault.namespace")
    """Vault Enterprise namespace sent with every request (``X-Vault-Namespace``); empty for
    none."""

    vault_auth_mode: str = _setting(
        "tenant", "VAULT_AUTH_MODE", _Choice("tenant", "operator"), value="vault.auth.mode"
    )
    """``tenant``: log in to Vault as a ServiceAccount of each custom resource's own namespace,
    so Vault policy keeps tenants apart; ``operator``: one login as the operator itself (small
    installs; only the operator's allowed-path check keeps tenants apart)."""

    vault_auth_mount: str = _setting(
        tenancy.AUTH_MOUNT, "VAULT_AUTH_MOUNT", value="vault.auth.mount"
    )
    """Mount path of Vault's kubernetes auth method."""

    vault_role_template: str = _setting(
        tenancy.VAULT_ROLE_TEMPLATE,
        "VAULT_ROLE_TEMPLATE",
        _namespace_template,
        value="vault.auth.roleTemplate",
    )
    """Vault role a tenant namespace logs in with; ``{namespace}`` is replaced."""

    vault_service_account: str = _setting(
        tenancy.SERVICE_ACCOUNT, "VAULT_SERVICE_ACCOUNT", value="vault.auth.serviceAccount"
    )
    """ServiceAccount, in each tenant namespace, whose short-lived token logs in to Vault; the
    chart's RBAC lets the operator request tokens of this name only."""

    vault_token_audience: str = _setting(
        tenancy.TOKEN_AUDIENCE, "VAULT_TOKEN_AUDIENCE", value="vault.auth.tokenAudience"
    )
    """Audience of the ServiceAccount tokens requested for Vault logins."""

    vault_token_expiration: int = _setting(
        600, "VAULT_TOKEN_EXPIRATION", _parse_non_negative_int, value="vault.auth.tokenExpiration"
    )
    """Lifetime in seconds asked for each ServiceAccount token (the API server's minimum is
    600); the token is used once, for the login."""

    vault_operator_role: str = _setting(
        "mirage-operator", "VAULT_OPERATOR_ROLE", value="vault.auth.operatorRole"
    )
    """Vault role of the operator's own login in ``operator`` auth mode."""

    vault_operator_service_account: str = _setting(
        "mirage-operator",
        "VAULT_OPERATOR_SERVICE_ACCOUNT",
        set_by="the release's ServiceAccount (serviceAccount.name)",
    )
    """The operator's ServiceAccount (in ``operator_namespace``), used in ``operator`` mode."""

    vault_allowed_paths: tuple[str, ...] = _setting(
        tenancy.KV_PATH_TEMPLATES,
        "VAULT_ALLOWED_PATHS",
        _namespace_templates,
        value="vault.allowedPaths",
    )
    """Globs of the KV paths (under any one-segment mount) a namespace may read, ``{namespace}``
    replaced; checked by the operator before any Vault call, in both auth modes. ``*`` matches
    anything, ``/`` included."""

    vault_allowed_database_roles: tuple[str, ...] = _setting(
        tenancy.DATABASE_ROLE_TEMPLATES,
        "VAULT_ALLOWED_DATABASE_ROLES",
        _namespace_templates,
        value="vault.allowedDatabaseRoles",
    )
    """Globs of the database roles a namespace may use, ``{namespace}`` replaced. The default
    uses a dot as separator: namespace names cannot hold one, so ``team`` never matches
    ``team-a``'s."""

    vault_timeout: float = _setting(
        10.0, "VAULT_TIMEOUT", _parse_positive_float, value="vault.timeout"
    )
    """Seconds before one Vault request is abandoned."""

    vault_retries: int = _setting(
        2, "VAULT_RETRIES", _parse_non_negative_int, value="vault.retries"
    )
    """Extra attempts, with jittered exponential backoff, when Vault is unreachable or
    answers 5xx."""

    vault_default_refresh_interval: float = _setting(
        3600.0,
        "VAULT_DEFAULT_REFRESH_INTERVAL",
        _parse_seconds,
        value="vault.defaultRefreshInterval",
    )
    """Refresh interval (a duration such as ``30m`` or ``1h``) of secrets whose spec does not
    set one (the CRDs have no default for it; ``status.refreshInterval`` shows the value in
    effect)."""

    hmac_key_secret: str = _setting(
        "mirage-hmac-key", "HMAC_KEY_SECRET", value="operator.hmacKeySecret"
    )
    """Secret in ``operator_namespace`` holding the per-install key of ``status.secretMAC``
    (created by the operator when missing)."""

    leader_election: bool = _setting(
        True, "LEADER_ELECTION", _parse_bool, value="leaderElection.enabled"
    )
    """Elect one leader among the replicas on a ``coordination.k8s.io/v1`` Lease; only the
    leader reconciles. Off: this process reconciles at once, alone (one replica only, no
    shards)."""

    leader_election_lease: str = _setting(
        "mirage-operator",
        "LEADER_ELECTION_LEASE",
        _subdomain,
        set_by="the release's full name (and the shard's name)",
    )
    """Name of the Lease, in ``operator_namespace``; each shard has its own."""

    leader_election_identity: str = _setting(
        "", "LEADER_ELECTION_IDENTITY", set_by="the pod's name"
    )
    """This replica's name in the Lease's ``holderIdentity``; empty: the host name (the pod's
    name) and a random suffix, as client-go does."""

    lease_duration: float = _setting(
        15.0, "LEASE_DURATION", _parse_positive_float, value="leaderElection.leaseDuration"
    )
    """Seconds a standby waits, after it last saw the Lease change, before taking it over: the
    failover time after a crash."""

    renew_deadline: float = _setting(
        10.0, "RENEW_DEADLINE", _parse_positive_float, value="leaderElection.renewDeadline"
    )
    """Seconds the leader keeps trying to renew before it stops writing and exits; shorter
    than ``lease_duration``, so that it stops before a standby may take over."""

    retry_period: float = _setting(
        2.0, "RETRY_PERIOD", _parse_positive_float, value="leaderElection.retryPeriod"
    )
    """Seconds between attempts to acquire or renew the Lease."""

    shard_namespaces: tuple[str, ...] = _setting(
        (),
        "SHARD_NAMESPACES",
        _parse_namespaces,
        set_by="every shard's namespaces (shards), on the first shard",
    )
    """Every namespace some shard owns (all shards' ``namespaces``). Set on one shard only:
    its leader reports namespaces holding Mirage resources that no shard owns."""

    vault_token_secret: str = _setting(
        "mirage-vault-tokens", "VAULT_TOKEN_SECRET", value="operator.vaultTokenSecret"
    )
    """Secret in ``operator_namespace`` holding each tenant's Vault token, encrypted, so that
    the next leader keeps renewing the leases this one issued; empty: tokens stay in memory."""

    vault_token_key_secret: str = _setting(
        "mirage-vault-token-key", "VAULT_TOKEN_KEY_SECRET", value="operator.vaultTokenKeySecret"
    )
    """Secret in ``operator_namespace`` holding the key that encrypts ``vault_token_secret``
    (created by the operator when missing)."""

    def __post_init__(self) -> None:
        if self.renew_deadline >= self.lease_duration:
            raise ConfigError(
                f"{ENV_PREFIX}RENEW_DEADLINE ({self.renew_deadline}) must be shorter than "
                f"{ENV_PREFIX}LEASE_DURATION ({self.lease_duration})"
            )
        if self.retry_period >= self.renew_deadline:
            raise ConfigError(
                f"{ENV_PREFIX}RETRY_PERIOD ({self.retry_period}) must be shorter than "
                f"{ENV_PREFIX}RENEW_DEADLINE ({self.renew_deadline})"
            )
        overlap = set(self.namespaces) - set(self.shard_namespaces)
        if self.shard_namespaces and overlap:
            raise ConfigError(
                f"{ENV_PREFIX}SHARD_NAMESPACES must include this shard's own namespaces; "
                f"missing {', '.join(sorted(overlap))}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Load from the environment; raise :class:`ConfigError` naming the bad variable."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            name = item.metadata["env"]
            if name not in env:
                continue
            try:
                values[item.name] = item.metadata["parse"](env[name])
            except ValueError as exc:
                raise ConfigError(f"{name}: {exc}") from None
        return cls(**values)

    @classmethod
    def variables(cls) -> dict[str, str]:
        """Map each environment variable to its field's name (for docs and the Helm chart test)."""
        return {item.metadata["env"]: item.name for item in dataclasses.fields(cls)}
