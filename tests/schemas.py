"""Validation of generated objects against the schemas other projects publish."""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema
import yaml

from tests.conftest import THIRD_PARTY_CRDS, require_path

MONITORING_PLURALS = {
    "ServiceMonitor": "servicemonitors",
    "PrometheusRule": "prometheusrules",
    "PodMonitor": "podmonitors",
}
# Istio and Traefik kinds the operator writes: plural of each (the CRD's file name).
PLATFORM_PLURALS = {
    "PeerAuthentication": "peerauthentications",
    "AuthorizationPolicy": "authorizationpolicies",
    "RequestAuthentication": "requestauthentications",
    "DestinationRule": "destinationrules",
    "Middleware": "middlewares",
}
PLATFORM_GROUPS = ("security.istio.io", "networking.istio.io", "traefik.io")


@cache
def third_party_schema(
    plural: str, api_version: str = "monitoring.coreos.com/v1"
) -> dict[str, Any]:
    """openAPIV3Schema of a version of a third-party CRD (prometheus-operator's unless
    ``api_version`` says otherwise), read in place."""
    group, _, wanted = api_version.partition("/")
    path = require_path(THIRD_PARTY_CRDS / group / f"{plural}.yaml")
    crd = yaml.safe_load(path.read_text(encoding="utf-8"))
    (version,) = (v for v in crd["spec"]["versions"] if v["name"] == wanted)
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def is_platform_object(obj: dict[str, Any]) -> bool:
    """Whether ``obj`` is of an Istio or Traefik kind."""
    return str(obj["apiVersion"]).split("/")[0] in PLATFORM_GROUPS


def validate_platform_object(obj: dict[str, Any]) -> None:
    """Validate an Istio or Traefik object against the schema its project publishes (the CEL
    rules are checked where the e2e suite applies the objects to the emulated API server)."""
    schema = third_party_schema(PLATFORM_PLURALS[obj["kind"]], obj["apiVersion"])
    validator = jsonschema.validators.validator_for(schema)(schema)
    validator.validate(obj)


def validate_monitoring_object(obj: dict[str, Any]) -> None:
    """Validate a ServiceMonitor/PrometheusRule/PodMonitor against prometheus-operator's schema.

    The schemas hold Go regular expressions that Python cannot compile (``(?i)`` mid-pattern)
    on fields we never set, so the schema itself is not meta-validated; instances are.
    """
    schema = third_party_schema(MONITORING_PLURALS[obj["kind"]])
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    validator = jsonschema.validators.validator_for(schema)(schema)
    validator.validate(body)
