"""Operator configuration: one frozen dataclass, loaded from ``MIRAGE_*`` environment variables.

Every field documents itself (the string under it) and names its variable in ``metadata``.
Builders receive a :class:`Config` as an argument; nothing reads the environment elsewhere.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mirage_operator import tenancy
from mirage_operator.api import k8svalidation
from mirage_operator.errors import ConfigError

ENV_PREFIX = "MIRAGE_"


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


def _parse_positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError(f"must be greater than 0, got {raw!r}")
    return value


def _parse_port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError(f"must be a port number 0-65535 (0 disables), got {raw!r}")
    return value


def _parse_non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(f"must be 0 or more, got {raw!r}")
    return value


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


def _parse_seconds(raw: str) -> float:
    value = parse_duration(raw)
    if value <= 0:
        raise ValueError(f"must be longer than 0, got {raw!r}")
    return value


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


def _parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {raw!r}")
        return raw

    return parse


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?\Z")


def parse_duration(raw: str) -> float:
    """Parse a Go-style duration (``1h``, ``30m``, ``1h30m``, ``45s``, ``0``) into seconds."""
    text = raw.strip()
    if text == "0":
        return 0.0
    match = _DURATION.match(text)
    if not text or not match or not any(match.groups()):
        raise ValueError(f"expected a duration such as 30s, 5m or 1h, got {raw!r}")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


def format_duration(seconds: float) -> str:
    """``seconds`` as :func:`parse_duration` reads it: ``1h30m``, ``45s``, ``0``."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "".join(parts) or "0"


def _env(name: str, parse: Callable[[str], Any] = str) -> dict[str, Any]:
    return {"env": ENV_PREFIX + name, "parse": parse}


@dataclass(frozen=True)
class Config:
    """Everything the operator can be told from outside. Defaults suit a kube-prometheus-stack
    and Traefik install; the Helm chart sets each field from its values."""

    namespaces: tuple[str, ...] = field(default=(), metadata=_env("NAMESPACES", _parse_namespaces))
    """Namespaces to watch, comma-separated; empty means every namespace (cluster-wide)."""

    operator_namespace: str = field(
        default="mirage-system", metadata=_env("OPERATOR_NAMESPACE", _parse_name("dns1123-label"))
    )
    """Namespace the operator runs in; holds its HMAC key Secret and (in operator mode) token."""

    field_manager: str = field(default="mirage-operator", metadata=_env("FIELD_MANAGER"))
    """Field manager name for every server-side apply the operator makes."""

    resync_interval: float = field(
        default=300.0, metadata=_env("RESYNC_INTERVAL", _parse_positive_float)
    )
    """Seconds between level-based resyncs of each custom resource (drift correction backstop)."""

    metrics_port: int = field(default=8080, metadata=_env("METRICS_PORT", _parse_port))
    """Port of the Prometheus ``/metrics`` and ``/healthz`` endpoint; 0 disables it."""

    log_level: str = field(
        default="INFO",
        metadata=_env("LOG_LEVEL", _parse_choice("DEBUG", "INFO", "WARNING", "ERROR")),
    )
    """Log level: DEBUG, INFO, WARNING or ERROR."""

    log_format: str = field(
        default="json", metadata=_env("LOG_FORMAT", _parse_choice("json", "text"))
    )
    """Log format: ``json`` (one object per line) or ``text``."""

    ingress_class: str = field(
        default=tenancy.INGRESS_CLASS,
        metadata=_env("INGRESS_CLASS", _parse_name("dns1123-subdomain")),
    )
    """IngressClass name set on every Ingress the operator creates."""

    ingress_controller_namespace: str = field(
        default="traefik",
        metadata=_env("INGRESS_CONTROLLER_NAMESPACE", _parse_name("dns1123-label")),
    )
    """Namespace of the ingress controller pods, allowed in by each service's NetworkPolicy."""

    prometheus_namespace: str = field(
        default="monitoring", metadata=_env("PROMETHEUS_NAMESPACE", _parse_name("dns1123-label"))
    )
    """Namespace of the Prometheus pods, allowed to scrape each service's metrics port."""

    mesh_default: bool = field(default=False, metadata=_env("MESH_DEFAULT", _parse_bool))
    """Whether a MirageService joins the Istio mesh when its ``spec.mesh.enabled`` is unset."""

    mesh_trust_domain: str = field(
        default="cluster.local",
        metadata=_env("MESH_TRUST_DOMAIN", _parse_name("dns1123-subdomain")),
    )
    """Istio trust domain, the first part of each caller's identity
    (``<domain>/ns/<namespace>/sa/<service account>``) in AuthorizationPolicies."""

    cluster_domain: str = field(
        default="cluster.local",
        metadata=_env("CLUSTER_DOMAIN", _parse_name("dns1123-subdomain")),
    )
    """DNS domain of the cluster, for the fully qualified host of each DestinationRule."""

    oauth2_proxy_url: str = field(
        default="http://oauth2-proxy.oauth2-proxy.svc.cluster.local",
        metadata=_env("OAUTH2_PROXY_URL", _parse_http_url),
    )
    """Base URL of the platform's OAuth2 Proxy, which the forwardAuth Middleware of
    ``spec.ingress.auth.oidc`` asks (at ``/oauth2/auth``) whether a person is signed in."""

    oauth2_proxy_service: str = field(
        default="oauth2-proxy/oauth2-proxy:80",
        metadata=_env("OAUTH2_PROXY_SERVICE", _parse_service_reference),
    )
    """The same OAuth2 Proxy as a Service, ``<namespace>/<name>:<port>``: the errors Middleware
    of ``spec.ingress.auth.oidc`` sends a person without a session to its ``/oauth2/sign_in``
    (Traefik needs ``providers.kubernetesCRD.allowCrossNamespace``)."""

    monitoring_labels: tuple[tuple[str, str], ...] = field(
        default=tenancy.MONITORING_LABELS,
        metadata=_env("MONITORING_LABELS", _parse_labels),
    )
    """Labels (``k=v,k2=v2``) on every ServiceMonitor and PrometheusRule, so that the
    Prometheus of a kube-prometheus-stack release selects them."""

    dashboard_labels: tuple[tuple[str, str], ...] = field(
        default=tenancy.DASHBOARD_LABELS, metadata=_env("DASHBOARD_LABELS", _parse_labels)
    )
    """Labels on every Grafana dashboard ConfigMap (the Grafana sidecar's selector)."""

    vault_address: str = field(default="http://127.0.0.1:8200", metadata=_env("VAULT_ADDR"))
    """Address of Vault, e.g. ``https://vault.vault.svc:8200``."""

    vault_ca_path: str = field(default="", metadata=_env("VAULT_CA_PATH"))
    """PEM bundle of the CAs that sign Vault's certificate; empty uses the system CAs."""

    vault_tls_server_name: str = field(default="", metadata=_env("VAULT_TLS_SERVER_NAME"))
    """Name sent as SNI and checked against Vault's certificate, when it differs from the
    address's host; empty uses the host."""

    vault_namespace: str = field(default="", metadata=_env("VAULT_NAMESPACE"))
    """Vault Enterprise namespace sent with every request (``X-Vault-Namespace``); empty for
    none."""

    vault_auth_mode: str = field(
        default="tenant", metadata=_env("VAULT_AUTH_MODE", _parse_choice("tenant", "operator"))
    )
    """``tenant``: log in to Vault as a ServiceAccount of each custom resource's own namespace,
    so Vault policy keeps tenants apart; ``operator``: one login as the operator itself (small
    installs; only the operator's allowed-path check keeps tenants apart)."""

    vault_auth_mount: str = field(default=tenancy.AUTH_MOUNT, metadata=_env("VAULT_AUTH_MOUNT"))
    """Mount path of Vault's kubernetes auth method."""

    vault_role_template: str = field(
        default=tenancy.VAULT_ROLE_TEMPLATE,
        metadata=_env("VAULT_ROLE_TEMPLATE", _parse_template("namespace")),
    )
    """Vault role a tenant namespace logs in with; ``{namespace}`` is replaced."""

    vault_service_account: str = field(
        default=tenancy.SERVICE_ACCOUNT, metadata=_env("VAULT_SERVICE_ACCOUNT")
    )
    """ServiceAccount, in each tenant namespace, whose short-lived token logs in to Vault."""

    vault_token_audience: str = field(
        default=tenancy.TOKEN_AUDIENCE, metadata=_env("VAULT_TOKEN_AUDIENCE")
    )
    """Audience of the ServiceAccount tokens requested for Vault logins."""

    vault_token_expiration: int = field(
        default=600, metadata=_env("VAULT_TOKEN_EXPIRATION", _parse_non_negative_int)
    )
    """Lifetime in seconds asked for each ServiceAccount token (the API server's minimum is
    600); the token is used once, for the login."""

    vault_operator_role: str = field(
        default="mirage-operator", metadata=_env("VAULT_OPERATOR_ROLE")
    )
    """Vault role of the operator's own login in ``operator`` auth mode."""

    vault_operator_service_account: str = field(
        default="mirage-operator", metadata=_env("VAULT_OPERATOR_SERVICE_ACCOUNT")
    )
    """The operator's ServiceAccount (in ``operator_namespace``), used in ``operator`` mode."""

    vault_allowed_paths: tuple[str, ...] = field(
        default=tenancy.KV_PATH_TEMPLATES,
        metadata=_env("VAULT_ALLOWED_PATHS", _parse_templates("namespace")),
    )
    """Comma-separated globs of the KV paths (under any one-segment mount) a namespace may
    read; checked by the operator before any Vault call, in both auth modes. ``*`` matches
    anything, ``/`` included."""

    vault_allowed_database_roles: tuple[str, ...] = field(
        default=tenancy.DATABASE_ROLE_TEMPLATES,
        metadata=_env("VAULT_ALLOWED_DATABASE_ROLES", _parse_templates("namespace")),
    )
    """Comma-separated globs of the database roles a namespace may use. The default uses a dot
    as separator: namespace names cannot hold one, so ``team`` never matches ``team-a``'s."""

    vault_timeout: float = field(
        default=10.0, metadata=_env("VAULT_TIMEOUT", _parse_positive_float)
    )
    """Seconds before one Vault request is abandoned."""

    vault_retries: int = field(default=2, metadata=_env("VAULT_RETRIES", _parse_non_negative_int))
    """Extra attempts, with jittered exponential backoff, when Vault is unreachable or
    answers 5xx."""

    vault_default_refresh_interval: float = field(
        default=3600.0, metadata=_env("VAULT_DEFAULT_REFRESH_INTERVAL", _parse_seconds)
    )
    """Refresh interval (a duration such as ``1h``) of secrets whose spec does not set one."""

    hmac_key_secret: str = field(default="mirage-hmac-key", metadata=_env("HMAC_KEY_SECRET"))
    """Secret in ``operator_namespace`` holding the per-install key of ``status.secretMAC``
    (created by the operator when missing)."""

    leader_election: bool = field(default=True, metadata=_env("LEADER_ELECTION", _parse_bool))
    """Elect one leader among the replicas on a ``coordination.k8s.io/v1`` Lease; only the
    leader reconciles. Off: this process reconciles at once, alone (one replica only)."""

    leader_election_lease: str = field(
        default="mirage-operator",
        metadata=_env("LEADER_ELECTION_LEASE", _parse_name("dns1123-subdomain")),
    )
    """Name of the Lease, in ``operator_namespace``; each shard has its own."""

    leader_election_identity: str = field(default="", metadata=_env("LEADER_ELECTION_IDENTITY"))
    """This replica's name in the Lease's ``holderIdentity``; empty: the host name (the pod's
    name) and a random suffix, as client-go does."""

    lease_duration: float = field(
        default=15.0, metadata=_env("LEASE_DURATION", _parse_positive_float)
    )
    """Seconds a standby waits, after it last saw the Lease change, before taking it over."""

    renew_deadline: float = field(
        default=10.0, metadata=_env("RENEW_DEADLINE", _parse_positive_float)
    )
    """Seconds the leader keeps trying to renew before it stops writing and exits; shorter
    than ``lease_duration``, so that it stops before a standby may take over."""

    retry_period: float = field(default=2.0, metadata=_env("RETRY_PERIOD", _parse_positive_float))
    """Seconds between attempts to acquire or renew the Lease."""

    shard_namespaces: tuple[str, ...] = field(
        default=(), metadata=_env("SHARD_NAMESPACES", _parse_namespaces)
    )
    """Every namespace some shard owns (all shards' ``namespaces``). Set on one shard only:
    its leader reports namespaces holding Mirage resources that no shard owns."""

    vault_token_secret: str = field(
        default="mirage-vault-tokens", metadata=_env("VAULT_TOKEN_SECRET")
    )
    """Secret in ``operator_namespace`` holding each tenant's Vault token, encrypted, so that
    the next leader keeps renewing the leases this one issued; empty: tokens stay in memory."""

    vault_token_key_secret: str = field(
        default="mirage-vault-token-key", metadata=_env("VAULT_TOKEN_KEY_SECRET")
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
