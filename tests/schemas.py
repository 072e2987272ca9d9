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


@cache
def third_party_schema(plural: str) -> dict[str, Any]:
    """openAPIV3Schema of the v1 version of a prometheus-operator CRD, read in place."""
    path = require_path(THIRD_PARTY_CRDS / "monitoring.coreos.com" / f"{plural}.yaml")
    crd = yaml.safe_load(path.read_text(encoding="utf-8"))
    (version,) = (v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def validate_monitoring_object(obj: dict[str, Any]) -> None:
    """Validate a ServiceMonitor/PrometheusRule/PodMonitor against prometheus-operator's schema.

    The schemas hold Go regular expressions that Python cannot compile (``(?i)`` mid-pattern)
    on fields we never set, so the schema itself is not meta-validated; instances are.
    """
    schema = third_party_schema(MONITORING_PLURALS[obj["kind"]])
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    validator = jsonschema.validators.validator_for(schema)(schema)
    validator.validate(body)
