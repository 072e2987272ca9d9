"""Typed model of a MirageService spec, and the rules its CRD schema cannot express.

``MirageServiceSpec.from_spec`` expects a spec that the CRD schema has validated
(``api.validation.admit`` does); it applies the CRD's defaults itself (:mod:`.defaults`), so
every default it reads comes from ``crds/``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mirage_operator.api import defaults, k8svalidation, names, slo, vaultsecret
from mirage_operator.crds import SECRET_SOURCE_FIELDS
from mirage_operator.durations import parse_prometheus
from mirage_operator.errors import Problem

KIND = "MirageService"

IntOrString = int | str


@dataclass(frozen=True)
class Port:
    """A container port, exposed by the Service under the same name."""

    name: str
    port: int
    protocol: str
    app_protocol: str | None = None


@dataclass(frozen=True)
class Probe:
    """An HTTP probe; ``port`` is a port name (``None``: the first port)."""

    enabled: bool
    path: str
    port: str | None
    initial_delay_seconds: int
    period_seconds: int
    timeout_seconds: int
    failure_threshold: int


@dataclass(frozen=True)
class Autoscaling:
    """HorizontalPodAutoscaler bounds and targets."""

    min_replicas: int
    max_replicas: int
    target_cpu_utilization: int | None
    target_memory_utilization: int | None


@dataclass(frozen=True)
class Disruption:
    """PodDisruptionBudget settings."""

    enabled: bool
    min_available: IntOrString | None
    max_unavailable: IntOrString | None


@dataclass(frozen=True)
class AllowedCaller:
    """One entry of ``networkPolicy.allowFrom``."""

    service: str | None
    namespace: str | None
    pod_labels: Mapping[str, str]


@dataclass(frozen=True)
class Oidc:
    """``ingress.auth.oidc``: people sign in through the platform's OAuth2 Proxy."""

    allowed_groups: tuple[str, ...]


@dataclass(frozen=True)
class Ingress:
    """Traefik ingress settings."""

    host: str
    path: str
    port: str | None
    tls_enabled: bool
    tls_secret_name: str | None
    middlewares: tuple[str, ...]
    annotations: Mapping[str, str]
    oidc: Oidc | None


@dataclass(frozen=True)
class Mesh:
    """``spec.mesh``: Istio sidecar, mTLS and authorization."""

    enabled: bool | None
    """As written; ``None`` defers to the operator's default (``Config.mesh_default``)."""
    mtls_mode: str
    connection_pool: Mapping[str, Any] | None
    outlier_detection: Mapping[str, Any] | None


@dataclass(frozen=True)
class RequiredClaim:
    """A claim a JWT must carry, with one of ``values``."""

    claim: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Jwt:
    """``spec.auth.jwt``: API clients present a token of ``issuer``."""

    issuer: str
    jwks_uri: str | None
    audiences: tuple[str, ...]
    required_claims: tuple[RequiredClaim, ...]


@dataclass(frozen=True)
class EnvMapping:
    """A Secret key exposed under a chosen environment variable name."""

    key: str
    name: str


@dataclass(frozen=True)
class SecretRef:
    """One ``spec.secrets`` entry: a child VaultSecret and how the container sees it."""

    name: str
    vault_spec: Mapping[str, Any]
    """The child VaultSecret's spec (vault, keys, templates, refreshInterval) as written."""
    expose_as: str
    env_prefix: str | None
    env: tuple[EnvMapping, ...]
    mount_path: str | None


@dataclass(frozen=True)
class Metrics:
    """ServiceMonitor settings."""

    enabled: bool
    port: str | None
    path: str
    interval: str
    scrape_timeout: str
    relabelings: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class Monitoring:
    """Metrics scraping, SLOs (as child specs) and custom rules."""

    metrics: Metrics
    slos: tuple[Mapping[str, Any], ...]
    """Each entry's ServiceLevelObjective spec fields plus ``name``, as written."""
    alerts: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class MirageServiceSpec:
    """The whole desired state of one service."""

    image: str
    image_pull_policy: str
    image_pull_secrets: tuple[str, ...]
    command: tuple[str, ...]
    args: tuple[str, ...]
    replicas: int
    ports: tuple[Port, ...]
    env: tuple[tuple[str, str], ...]
    config_data: Mapping[str, str] | None
    config_mount_path: str | None
    resources: Mapping[str, Mapping[str, IntOrString]]
    liveness: Probe
    readiness: Probe
    startup: Probe | None
    run_as_user: int
    run_as_group: int
    fs_group: int
    max_surge: IntOrString
    max_unavailable: IntOrString
    termination_grace_period_seconds: int
    autoscaling: Autoscaling | None
    disruption: Disruption
    network_policy_enabled: bool
    allow_from: tuple[AllowedCaller, ...]
    ingress: Ingress | None
    secrets: tuple[SecretRef, ...]
    monitoring: Monitoring
    mesh: Mesh
    jwt: Jwt | None
    log_format: str

    @property
    def primary_port(self) -> Port:
        """The first port: the default for probes, ingress and metrics."""
        return self.ports[0]

    def port_named(self, name: str | None) -> Port:
        """The port called ``name``, or the first port when ``name`` is ``None``."""
        if name is None:
            return self.primary_port
        return next(p for p in self.ports if p.name == name)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> MirageServiceSpec:
        """Build from a schema-valid ``spec``, defaulted here by the CRD schema (a stored
        spec already is: then nothing changes)."""
        spec = defaults.defaulted(KIND, spec)
        probes, security, rollout = spec["probes"], spec["securityContext"], spec["rollout"]
        autoscaling = spec.get("autoscaling")
        network_policy = spec["networkPolicy"]
        ingress = spec.get("ingress")
        config = spec.get("config")
        return cls(
            image=spec["image"],
            image_pull_policy=spec["imagePullPolicy"],
            image_pull_secrets=tuple(spec.get("imagePullSecrets", ())),
            command=tuple(spec.get("command", ())),
            args=tuple(spec.get("args", ())),
            replicas=spec["replicas"],
            ports=tuple(
                Port(
                    name=p["name"],
                    port=p["port"],
                    protocol=p["protocol"],
                    app_protocol=p.get("appProtocol"),
                )
                for p in spec["ports"]
            ),
            env=tuple((e["name"], e["value"]) for e in spec.get("env", ())),
            config_data=dict(config["data"]) if config else None,
            config_mount_path=config.get("mountPath") if config else None,
            resources={k: dict(v) for k, v in spec.get("resources", {}).items()},
            liveness=_probe(probes["liveness"]),
            readiness=_probe(probes["readiness"]),
            startup=_probe(probes["startup"]) if "startup" in probes else None,
            run_as_user=security["runAsUser"],
            run_as_group=security["runAsGroup"],
            fs_group=security["fsGroup"],
            max_surge=rollout["maxSurge"],
            max_unavailable=_max_unavailable(rollout),
            termination_grace_period_seconds=rollout["terminationGracePeriodSeconds"],
            autoscaling=_autoscaling(autoscaling) if autoscaling else None,
            disruption=Disruption(
                enabled=spec["disruption"]["enabled"],
                min_available=spec["disruption"].get("minAvailable"),
                max_unavailable=spec["disruption"].get("maxUnavailable"),
            ),
            network_policy_enabled=network_policy["enabled"],
            allow_from=_allow_from(network_policy),
            ingress=_ingress(ingress) if ingress else None,
            secrets=tuple(_secret(s) for s in spec.get("secrets", ())),
            monitoring=_monitoring(spec["monitoring"]),
            mesh=_mesh(defaults.defaulted_at(KIND, spec, "mesh")),
            jwt=_jwt(spec["auth"]["jwt"]) if "jwt" in spec.get("auth", {}) else None,
            log_format=spec["logging"]["format"],
        )

    def mesh_enabled(self, default: bool) -> bool:
        """Whether the pods join the mesh: ``spec.mesh.enabled``, else the operator's default."""
        return default if self.mesh.enabled is None else self.mesh.enabled


def _max_unavailable(rollout: Mapping[str, Any]) -> IntOrString:
    """``maxUnavailable`` as written; unset, 0 (zero-downtime rollouts), or 1 when ``maxSurge``
    is 0, since the API server refuses a Deployment where both are 0 (ADR 0012)."""
    if "maxUnavailable" in rollout:
        value: IntOrString = rollout["maxUnavailable"]
        return value
    return 1 if k8svalidation.int_or_percent_value(rollout["maxSurge"]) == 0 else 0


def _port_protocol() -> str:
    protocol: str = defaults.schema_default(KIND, "ports", "[]", "protocol")
    return protocol


def _allow_from(network_policy: Mapping[str, Any]) -> tuple[AllowedCaller, ...]:
    return tuple(
        AllowedCaller(
            service=a.get("service"),
            namespace=a.get("namespace"),
            pod_labels=dict(a.get("podLabels", {})),
        )
        for a in network_policy.get("allowFrom", ())
    )


def _autoscaling(raw: Mapping[str, Any]) -> Autoscaling:
    # Unset minReplicas: the replica count a service without autoscaling gets, or maxReplicas
    # if smaller; not a schema default, which a smaller maxReplicas would contradict (ADR 0012).
    floor = min(defaults.schema_default(KIND, "replicas"), raw["maxReplicas"])
    return Autoscaling(
        min_replicas=raw.get("minReplicas", floor),
        max_replicas=raw["maxReplicas"],
        target_cpu_utilization=raw.get("targetCPUUtilization"),
        target_memory_utilization=raw.get("targetMemoryUtilization"),
    )


def _probe(raw: Mapping[str, Any]) -> Probe:
    return Probe(
        enabled=raw["enabled"],
        path=raw["path"],
        port=raw.get("port"),
        initial_delay_seconds=raw["initialDelaySeconds"],
        period_seconds=raw["periodSeconds"],
        timeout_seconds=raw["timeoutSeconds"],
        failure_threshold=raw["failureThreshold"],
    )


INGRESS_PATH = "/"
"""``spec.ingress.path`` when unset. Model defaults, not schema ones: a schema default below
the optional ``ingress`` would outlive its removal by server-side apply (ADR 0009)."""
INGRESS_TLS = True
"""``spec.ingress.tls.enabled`` when unset (ADR 0009, as :data:`INGRESS_PATH`)."""


def _ingress(raw: Mapping[str, Any]) -> Ingress:
    tls = raw.get("tls", {})
    oidc = raw.get("auth", {}).get("oidc")
    return Ingress(
        host=raw["host"],
        path=raw.get("path", INGRESS_PATH),
        port=raw.get("port"),
        tls_enabled=tls.get("enabled", INGRESS_TLS),
        tls_secret_name=tls.get("secretName"),
        middlewares=tuple(raw.get("middlewares", ())),
        annotations=dict(raw.get("annotations", {})),
        oidc=None if oidc is None else Oidc(allowed_groups=tuple(oidc.get("allowedGroups", ()))),
    )


def _mesh(raw: Mapping[str, Any]) -> Mesh:
    resilience = raw.get("resilience", {})
    return Mesh(
        enabled=raw.get("enabled"),
        mtls_mode=raw["mtls"]["mode"],
        connection_pool=resilience.get("connectionPool"),
        outlier_detection=resilience.get("outlierDetection"),
    )


def _jwt(raw: Mapping[str, Any]) -> Jwt:
    return Jwt(
        issuer=raw["issuer"],
        jwks_uri=raw.get("jwksUri"),
        audiences=tuple(raw.get("audiences", ())),
        required_claims=tuple(
            RequiredClaim(claim=c["claim"], values=tuple(c["values"]))
            for c in raw.get("requiredClaims", ())
        ),
    )


def _secret(raw: Mapping[str, Any]) -> SecretRef:
    expose = raw["expose"]
    return SecretRef(
        name=raw["name"],
        vault_spec={k: raw[k] for k in SECRET_SOURCE_FIELDS if k in raw},
        expose_as=expose["mode"],
        env_prefix=expose.get("envPrefix"),
        env=tuple(EnvMapping(key=e["key"], name=e["name"]) for e in expose.get("env", ())),
        mount_path=expose.get("mountPath"),
    )


DEFAULT_SCRAPE_INTERVAL = "30s"
"""``monitoring.metrics.interval`` when unset (ADR 0012: bounded by the timeout, so not a
schema default)."""
DEFAULT_SCRAPE_TIMEOUT = "10s"
"""``monitoring.metrics.scrapeTimeout`` when unset (ADR 0012)."""


def scrape_settings(metrics: Mapping[str, Any]) -> tuple[str, str]:
    """``(interval, scrapeTimeout)`` of ``spec.monitoring.metrics``: each as written, else its
    default bounded by the other (30s, or the timeout if longer; 10s, or the interval if
    shorter), so that an unset field never breaks ``scrapeTimeout <= interval``."""
    interval, timeout = metrics.get("interval"), metrics.get("scrapeTimeout")
    if interval is None:
        interval = DEFAULT_SCRAPE_INTERVAL
        if timeout is not None and parse_prometheus(timeout) > parse_prometheus(interval):
            interval = timeout
    if timeout is None:
        timeout = DEFAULT_SCRAPE_TIMEOUT
        if parse_prometheus(interval) < parse_prometheus(timeout):
            timeout = interval
    return interval, timeout


def _monitoring(raw: Mapping[str, Any]) -> Monitoring:
    metrics = raw["metrics"]
    interval, scrape_timeout = scrape_settings(metrics)
    return Monitoring(
        metrics=Metrics(
            enabled=metrics["enabled"],
            port=metrics.get("port"),
            path=metrics["path"],
            interval=interval,
            scrape_timeout=scrape_timeout,
            relabelings=tuple(metrics.get("relabelings", ())),
        ),
        slos=tuple(raw.get("slos", ())),
        alerts=tuple(raw.get("alerts", ())),
    )


def _unique(values: Sequence[str], *, field: str, what: str) -> list[Problem]:
    seen: set[str] = set()
    problems = []
    for index, value in enumerate(values):
        if value in seen:
            problems.append(
                Problem(f"{field}[{index}]", f"Duplicate value: duplicate {what} {value!r}")
            )
        seen.add(value)
    return problems


def rules(body: Mapping[str, Any]) -> list[Problem]:
    """Rules across fields that the CRD schema does not express; ``body`` is schema-valid."""
    spec = body.get("spec", {})
    ports = spec.get("ports", [])
    port_names = {p["name"] for p in ports}
    problems = _unique([p["name"] for p in ports], field="spec.ports", what="port name")
    problems += _unique(
        [str(p["port"]) + "/" + p.get("protocol", _port_protocol()) for p in ports],
        field="spec.ports",
        what="port number",
    )
    problems += _unique(
        [s["name"] for s in spec.get("secrets", [])], field="spec.secrets", what="secret name"
    )
    monitoring = spec.get("monitoring", {})
    problems += _unique(
        [s["name"] for s in monitoring.get("slos", [])],
        field="spec.monitoring.slos",
        what="SLO name",
    )

    named_ports = [
        ("spec.ingress.port", spec.get("ingress", {}).get("port")),
        ("spec.monitoring.metrics.port", monitoring.get("metrics", {}).get("port")),
    ]
    named_ports += [
        (f"spec.probes.{kind}.port", probe.get("port"))
        for kind, probe in spec.get("probes", {}).items()
    ]
    for field, name in named_ports:
        if name is not None and name not in port_names:
            problems.append(
                Problem(field, f"Invalid value: {name!r}: no port of that name in spec.ports")
            )

    env_names = [e["name"] for e in spec.get("env", [])]
    for index, secret in enumerate(spec.get("secrets", [])):
        expose = secret.get("expose", {})
        for env_index, mapping in enumerate(expose.get("env", [])):
            if mapping["name"] in env_names:
                problems.append(
                    Problem(
                        f"spec.secrets[{index}].expose.env[{env_index}].name",
                        f"Duplicate value: {mapping['name']!r} is also set in spec.env",
                    )
                )
    mounts = [("spec.config.mountPath", spec.get("config", {}).get("mountPath"))] + [
        (f"spec.secrets[{i}].expose.mountPath", s.get("expose", {}).get("mountPath"))
        for i, s in enumerate(spec.get("secrets", []))
    ]
    # The operator mounts a writable /tmp (the root filesystem is read-only).
    claimed: dict[str, str] = {"/tmp": "the operator's /tmp volume"}  # noqa: S108
    for field, path in mounts:
        if path and path in claimed:
            problems.append(
                Problem(field, f"Duplicate value: {path!r} is also mounted by {claimed[path]}")
            )
        elif path:
            claimed[path] = field

    # A caller listed twice is a copy-paste slip, not a wish: say so (the CRD's explicit-mesh
    # rule refuses podLabels callers; the operator's default is checked at render).
    problems += _unique(
        [json.dumps(c, sort_keys=True) for c in spec.get("networkPolicy", {}).get("allowFrom", [])],
        field="spec.networkPolicy.allowFrom",
        what="caller",
    )

    problems += child_value_problems(spec)
    problems += child_name_problems(str(body.get("metadata", {}).get("name", "")), spec)

    # The embedded VaultSecret and SLO specs obey their own kinds' rules.
    for index, secret in enumerate(spec.get("secrets", [])):
        problems += vaultsecret.source_rules(secret, prefix=f"spec.secrets[{index}]")
    for index, objective in enumerate(monitoring.get("slos", [])):
        problems += slo.spec_problems(objective, field=f"spec.monitoring.slos[{index}]")
    problems += slo.custom_rule_problems(
        monitoring.get("alerts", []), field="spec.monitoring.alerts"
    )
    return problems


def mesh_caller_problems(callers: Sequence[AllowedCaller]) -> list[Problem]:
    """Callers that the mesh cannot name: an AuthorizationPolicy knows ServiceAccounts and
    namespaces, not pod labels, so a ``podLabels`` caller would be admitted at L3 and refused
    (or, worse, admitted wider) at L7 (ADR 0090). Checked whenever the mesh is on."""
    return [
        Problem(
            f"spec.networkPolicy.allowFrom[{index}].podLabels",
            "Forbidden: pod labels are not a mesh identity; name the caller by service "
            "(its ServiceAccount) or namespace, or set spec.mesh.enabled false",
        )
        for index, caller in enumerate(callers)
        if caller.pod_labels
    ]


def child_value_problems(spec: Mapping[str, Any]) -> list[Problem]:
    """Every user value that lands in a child object, checked by the API server's own rules
    (:mod:`k8svalidation`). The CRD schema says the same where it can; this also covers what it
    cannot (the 256 KiB of annotations) and a cluster whose CRD is older than the operator."""
    kv = k8svalidation
    problems: list[Problem] = []
    for index, port in enumerate(spec.get("ports", [])):
        field = f"spec.ports[{index}]"
        problems += kv.name_problems(port["name"], field=f"{field}.name", rule="port-name")
        if "appProtocol" in port:
            problems += kv.name_problems(
                port["appProtocol"], field=f"{field}.appProtocol", rule="qualified-name"
            )
    for index, env in enumerate(spec.get("env", [])):
        problems += kv.name_problems(
            env["name"], field=f"spec.env[{index}].name", rule="env-var-name"
        )
    data = spec.get("config", {}).get("data", {})
    for key in data:
        problems += kv.name_problems(key, field="spec.config.data", rule="config-map-key")
    problems += kv.data_size_problems(data, field="spec.config.data")
    rollout = spec.get("rollout", {})
    problems += kv.rolling_update_problems(
        rollout.get("maxSurge"), rollout.get("maxUnavailable"), field="spec.rollout"
    )
    disruption = spec.get("disruption", {})
    for name in ("minAvailable", "maxUnavailable"):
        problems += kv.int_or_percent_problems(
            disruption.get(name), field=f"spec.disruption.{name}", at_most_100_percent=True
        )
    allow_from = spec.get("networkPolicy", {}).get("allowFrom", [])
    for index, caller in enumerate(allow_from):
        field = f"spec.networkPolicy.allowFrom[{index}]"
        if "service" in caller:
            problems += kv.name_problems(
                caller["service"], field=f"{field}.service", rule="dns1035-label"
            )
        if "namespace" in caller:
            problems += kv.name_problems(
                caller["namespace"], field=f"{field}.namespace", rule="dns1123-label"
            )
        problems += kv.label_problems(caller.get("podLabels", {}), field=f"{field}.podLabels")
    ingress = spec.get("ingress")
    if ingress:
        problems += kv.annotation_problems(
            ingress.get("annotations", {}), field="spec.ingress.annotations"
        )
        problems += kv.invalid("spec.ingress.host", ingress["host"], kv.is_not_ip(ingress["host"]))
        secret = ingress.get("tls", {}).get("secretName")
        if secret is not None:
            problems += kv.name_problems(
                secret, field="spec.ingress.tls.secretName", rule="dns1123-subdomain"
            )
    for index, secret in enumerate(spec.get("secrets", [])):
        for env_index, mapping in enumerate(secret.get("expose", {}).get("env", [])):
            field = f"spec.secrets[{index}].expose.env[{env_index}]"
            problems += kv.name_problems(
                mapping["name"], field=f"{field}.name", rule="env-var-name"
            )
            problems += kv.name_problems(
                mapping["key"], field=f"{field}.key", rule="config-map-key"
            )
    return problems


def child_name_problems(name: str, spec: Mapping[str, Any]) -> list[Problem]:
    """Two objects of one kind that this MirageService (or its child VaultSecrets and SLOs)
    would give the same name: refused, naming both fields, so that no object has two writers.

    Names come from :mod:`mirage_operator.api.names`, which the builders use too, so this check
    follows them when they change.
    """
    claimed: dict[tuple[str, str], str] = {}
    problems = []
    for kind, child, field in names.derived_names(name, spec):
        first = claimed.setdefault((kind, child), field)
        if first != field:
            problems.append(
                Problem(
                    field,
                    f"Duplicate value: {kind} {child!r} is also the name derived from {first}; "
                    "rename one of them",
                )
            )
    return problems
