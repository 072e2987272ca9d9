"""Every object ``mirage render`` produces passes the real schemas of its kind.

Built-in kinds: ``kubernetes-validate`` (the official OpenAPI schemas) for Kubernetes 1.33 and
the newest release it knows. prometheus-operator kinds: the CRD schemas that project publishes
(read in place from ../shared/third_party). Mirage kinds: our own validator.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from mirage_operator.api.validation import problems_of
from mirage_operator.config import Config
from mirage_operator.render.documents import render_document
from tests.conftest import REPO
from tests.schemas import is_platform_object, validate_monitoring_object, validate_platform_object
from tests.unit.factories import service_body

K8S_VERSIONS = ("1.33", kubernetes_validate.latest_version())
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))

VARIANTS: dict[str, dict[str, Any]] = {
    "minimal": service_body(),
    "udp-and-grpc": service_body(
        ports=[
            {"name": "grpc", "port": 9000, "appProtocol": "grpc"},
            {"name": "dns", "port": 53, "protocol": "UDP"},
        ],
        monitoring={"metrics": {"port": "grpc"}},
    ),
    "autoscaled-percentages": service_body(
        autoscaling={"minReplicas": 1, "maxReplicas": 4, "targetMemoryUtilization": 90},
        disruption={"maxUnavailable": "50%"},
        rollout={"maxSurge": "50%", "maxUnavailable": "25%"},
    ),
    "everything-off": service_body(
        replicas=0,
        probes={"liveness": {"enabled": False}, "readiness": {"enabled": False}},
        disruption={"enabled": False},
        networkPolicy={"enabled": False},
        monitoring={"metrics": {"enabled": False}},
    ),
    "ingress-plain-http": service_body(
        ingress={"host": "*.apps.example.com", "tls": {"enabled": False}}
    ),
    "mesh-permissive-udp-no-metrics": service_body(
        ports=[{"name": "http", "port": 8080}, {"name": "dns", "port": 53, "protocol": "UDP"}],
        mesh={"enabled": True, "mtls": {"mode": "PERMISSIVE"}},
        networkPolicy={"allowFrom": [{"namespace": "billing"}]},
        monitoring={"metrics": {"enabled": False}},
        logging={"format": "logfmt"},
    ),
    "mesh-jwt-no-probes-oidc": service_body(
        mesh={"enabled": True, "resilience": {"connectionPool": {"maxConnections": 1}}},
        probes={"liveness": {"enabled": False}, "readiness": {"enabled": False}},
        # A token-requiring service scrapes metrics on a port of their own.
        ports=[{"name": "http", "port": 8080}, {"name": "admin", "port": 9090}],
        monitoring={"metrics": {"port": "admin"}},
        auth={
            "jwt": {
                "issuer": "https://id.example.com",
                "requiredClaims": [{"claim": "realm.roles", "values": ["api"]}],
            }
        },
        ingress={"host": "api.example.com", "auth": {"oidc": {}}},
    ),
    "secrets-every-way": service_body(
        secrets=[
            {"name": "a", "vault": {"path": "shop/a"}},
            {
                "name": "b",
                "vault": {"path": "shop/b", "engine": "kv-v1"},
                "expose": {"envPrefix": "B_"},
            },
            {
                "name": "c",
                "vault": {"path": "role", "engine": "database"},
                "expose": {"mode": "files", "mountPath": "/c"},
            },
        ]
    ),
}


def _documents() -> list[tuple[str, dict[str, Any]]]:
    found = [
        (f"{path.name}#{i}", doc)
        for path in EXAMPLES
        for i, doc in enumerate(yaml.safe_load_all(path.read_text()))
        if doc
    ]
    return found + [(f"variant:{name}", body) for name, body in VARIANTS.items()]


DOCUMENTS = _documents()


def _check(obj: dict[str, Any]) -> None:
    api_version = obj["apiVersion"]
    if api_version.startswith("mirage.dev/"):
        assert problems_of(obj)[1] == []
    elif api_version.startswith("monitoring.coreos.com/"):
        validate_monitoring_object(obj)
    elif is_platform_object(obj):
        validate_platform_object(obj)
    else:
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_examples_exist() -> None:
    assert {p.name for p in EXAMPLES} >= {
        "mirageservice-minimal.yaml",
        "mirageservice-full.yaml",
        "vaultsecret.yaml",
        "servicelevelobjective.yaml",
    }


@pytest.mark.parametrize(("label", "document"), DOCUMENTS, ids=[d[0] for d in DOCUMENTS])
def test_rendered_objects_pass_their_schemas(label: str, document: dict[str, Any]) -> None:
    objects = render_document(document, config=Config())
    assert objects, f"{label} renders nothing"
    for obj in objects:
        _check(obj)


def test_full_example_renders_every_child_kind() -> None:
    (document,) = yaml.safe_load_all((REPO / "examples" / "mirageservice-full.yaml").read_text())
    kinds = {o["kind"] for o in render_document(document, config=Config())}
    assert kinds >= {
        "ServiceAccount", "ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
        "PodDisruptionBudget", "NetworkPolicy", "Ingress", "ServiceMonitor", "VaultSecret",
        "ServiceLevelObjective", "PrometheusRule", "PeerAuthentication", "AuthorizationPolicy",
        "RequestAuthentication", "DestinationRule", "Middleware",
    }  # fmt: skip
