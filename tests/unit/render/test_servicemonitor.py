"""The ServiceMonitor builder, checked against prometheus-operator's own schema."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml

from mirage_operator.config import Config
from mirage_operator.render.servicemonitor import build_service_monitor
from tests.conftest import THIRD_PARTY_CRDS, require_path

OWNER = {
    "apiVersion": "mirage.dev/v1alpha1",
    "kind": "MirageService",
    "metadata": {"name": "checkout", "uid": "42"},
}
RELABELINGS: list[dict[str, Any]] = [
    {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"},
    {"action": "labeldrop", "regex": "pod_template_hash"},
]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    path = require_path(THIRD_PARTY_CRDS / "monitoring.coreos.com" / "servicemonitors.yaml")
    crd = yaml.safe_load(path.read_text(encoding="utf-8"))
    (version,) = (v for v in crd["spec"]["versions"] if v["name"] == "v1")
    result: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return result


def _build(**kwargs: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "name": "checkout",
        "namespace": "shop",
        "selector_labels": {"app.kubernetes.io/name": "checkout"},
        "labels": {"app.kubernetes.io/name": "checkout", "release": "mine"},
        "port": "http",
        "path": "/metrics",
        "interval": "30s",
        "scrape_timeout": "10s",
        "relabelings": RELABELINGS,
        "config": Config(),
        **kwargs,
    }
    return build_service_monitor(**arguments)


@pytest.mark.parametrize("relabelings", [RELABELINGS, []])
@pytest.mark.parametrize("owner", [OWNER, None])
def test_validates_against_the_prometheus_operator_schema(
    schema: dict[str, Any], relabelings: list[dict[str, Any]], owner: dict[str, Any] | None
) -> None:
    monitor = _build(relabelings=relabelings, owner=owner)
    jsonschema.Draft4Validator(schema).validate(monitor)
    assert ("relabelings" in monitor["spec"]["endpoints"][0]) is bool(relabelings)


def test_schema_rejects_a_broken_monitor(schema: dict[str, Any]) -> None:
    # The schema check above is not vacuous: a bad interval is caught.
    monitor = _build(interval="thirty seconds")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(monitor)


def test_scrapes_the_named_port_in_its_own_namespace_only() -> None:
    monitor = _build(owner=OWNER)
    spec = monitor["spec"]
    assert spec["selector"] == {"matchLabels": {"app.kubernetes.io/name": "checkout"}}
    assert spec["namespaceSelector"] == {"matchNames": ["shop"]}
    (endpoint,) = spec["endpoints"]
    assert endpoint == {
        "port": "http",
        "path": "/metrics",
        "interval": "30s",
        "scrapeTimeout": "10s",
        "relabelings": RELABELINGS,
    }
    assert monitor["metadata"]["ownerReferences"][0]["uid"] == "42"


def test_monitoring_labels_are_added_and_win() -> None:
    config = Config(monitoring_labels=(("release", "prom"), ("prometheus", "main")))
    labels = _build(config=config)["metadata"]["labels"]
    assert labels["release"] == "prom"
    assert labels["prometheus"] == "main"
    assert labels["app.kubernetes.io/name"] == "checkout"


def test_relabelings_are_copied() -> None:
    relabelings = [dict(item) for item in RELABELINGS]
    monitor = _build(relabelings=relabelings)
    relabelings[0]["targetLabel"] = "changed"
    assert monitor["spec"]["endpoints"][0]["relabelings"][0]["targetLabel"] == "node"
