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
        pairs.append((key.strip(), value.strip()))
    return tuple(pairs)


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


def _parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {raw!r}")
        return raw

    return parse


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


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


def _env(name: str, parse: Callable[[str], Any] = str) -> dict[str, Any]:
    return {"env": ENV_PREFIX + name, "parse": parse}


@dataclass(frozen=True)
class Config:
    """Everything the operator can be told from outside. Defaults suit a kube-prometheus-stack
    and Traefik install; the Helm chart sets each field from its values."""

    namespaces: tuple[str, ...] = field(default=(), metadata=_env("NAMESPACES", _parse_list))
    """Namespaces to watch, comma-separated; empty means every namespace (cluster-wide)."""

    operator_namespace: str = field(default="mirage-system", metadata=_env("OPERATOR_NAMESPACE"))
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

    ingress_class: str = field(default="traefik", metadata=_env("INGRESS_CLASS"))
    """IngressClass name set on every Ingress the operator creates."""

    ingress_controller_namespace: str = field(
        default="traefik", metadata=_env("INGRESS_CONTROLLER_NAMESPACE")
    )
    """Namespace of the ingress controller pods, allowed in by each service's NetworkPolicy."""

    prometheus_namespace: str = field(default="monitoring", metadata=_env("PROMETHEUS_NAMESPACE"))
    """Namespace of the Prometheus pods, allowed to scrape each service's metrics port."""

    monitoring_labels: tuple[tuple[str, str], ...] = field(
        default=(("release", "kube-prometheus-stack"),),
        metadata=_env("MONITORING_LABELS", _parse_labels),
    )
    """Labels (``k=v,k2=v2``) on every ServiceMonitor and PrometheusRule, so that the
    Prometheus of a kube-prometheus-stack release selects them."""

    dashboard_labels: tuple[tuple[str, str], ...] = field(
        default=(("grafana_dashboard", "1"),), metadata=_env("DASHBOARD_LABELS", _parse_labels)
    )
    """Labels on every Grafana dashboard ConfigMap (the Grafana sidecar's selector)."""

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
