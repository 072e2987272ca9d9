"""Field mapping of the Service, NetworkPolicy, Ingress, HPA and PDB builders."""

from __future__ import annotations

from typing import Any

import pytest

from mirage_operator.config import Config
from mirage_operator.render.networking import build_ingress, build_network_policy, build_service
from mirage_operator.render.scaling import build_hpa, build_pdb
from tests.unit.factories import ServiceFactory


def test_service_exposes_every_port_by_name(make_spec: ServiceFactory) -> None:
    spec = make_spec(
        ports=[
            {"name": "http", "port": 80, "appProtocol": "http"},
            {"name": "dns", "port": 53, "protocol": "UDP"},
        ]
    )
    service = build_service(name="api", namespace="shop", spec=spec, owner=None)
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {
            "name": "http",
            "port": 80,
            "targetPort": "http",
            "protocol": "TCP",
            "appProtocol": "http",
        },
        {"name": "dns", "port": 53, "targetPort": "dns", "protocol": "UDP"},
    ]
    assert service["spec"]["selector"] == {
        "app.kubernetes.io/name": "api",
        "app.kubernetes.io/instance": "api",
    }


def _rule_sources(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [peer for rule in policy["spec"].get("ingress", []) for peer in rule["from"]]


def test_network_policy_denies_all_but_prometheus_by_default(
    make_spec: ServiceFactory, config: Config
) -> None:
    policy = build_network_policy(
        name="api", namespace="shop", spec=make_spec(), config=config, owner=None
    )
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert _rule_sources(policy) == [
        {
            "namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": config.prometheus_namespace}
            }
        }
    ]


def test_network_policy_without_metrics_or_ingress_has_no_allow_rule(
    make_spec: ServiceFactory, config: Config
) -> None:
    spec = make_spec(monitoring={"metrics": {"enabled": False}})
    policy = build_network_policy(
        name="api", namespace="shop", spec=spec, config=config, owner=None
    )
    # policyTypes Ingress with no rule: deny all; the empty list is applied, so owned.
    assert policy["spec"]["ingress"] == []


def test_network_policy_allows_callers_and_the_ingress_controller(
    make_spec: ServiceFactory,
) -> None:
    config = Config(ingress_controller_namespace="edge", prometheus_namespace="obs")
    spec = make_spec(
        ingress={"host": "api.example.com"},
        networkPolicy={
            "allowFrom": [
                {"service": "web"},
                {"namespace": "batch", "podLabels": {"role": "worker"}},
                {"namespace": "ops"},
            ]
        },
    )
    policy = build_network_policy(
        name="api", namespace="shop", spec=spec, config=config, owner=None
    )
    sources = _rule_sources(policy)
    assert {
        "podSelector": {
            "matchLabels": {"app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "web"}
        }
    } in sources
    assert {
        "podSelector": {"matchLabels": {"role": "worker"}},
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "batch"}},
    } in sources
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}}} in sources
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "edge"}}
    } in sources
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "obs"}}} in sources


def test_ingress_uses_traefik_class_tls_and_middlewares(make_spec: ServiceFactory) -> None:
    config = Config(ingress_class="traefik-internal")
    spec = make_spec(
        ports=[{"name": "web", "port": 80}, {"name": "api", "port": 81}],
        ingress={
            "host": "a.example.com",
            "path": "/v1",
            "port": "api",
            "middlewares": ["ns-auth@kubernetescrd"],
        },
    )
    ingress = build_ingress(name="api", namespace="shop", spec=spec, config=config, owner=None)
    assert ingress["spec"]["ingressClassName"] == "traefik-internal"
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert (rule["host"], path["path"], path["pathType"]) == ("a.example.com", "/v1", "Prefix")
    assert path["backend"]["service"] == {"name": "api", "port": {"name": "api"}}
    assert ingress["spec"]["tls"] == [{"hosts": ["a.example.com"], "secretName": "api-tls"}]
    annotations = ingress["metadata"]["annotations"]
    assert (
        annotations["traefik.ingress.kubernetes.io/router.middlewares"] == "ns-auth@kubernetescrd"
    )
    assert annotations["traefik.ingress.kubernetes.io/router.tls"] == "true"


def test_ingress_without_tls(make_spec: ServiceFactory, config: Config) -> None:
    spec = make_spec(ingress={"host": "a.example.com", "tls": {"enabled": False}})
    ingress = build_ingress(name="api", namespace="shop", spec=spec, config=config, owner=None)
    assert "tls" not in ingress["spec"]
    assert "traefik.ingress.kubernetes.io/router.tls" not in ingress["metadata"].get(
        "annotations", {}
    )


@pytest.mark.parametrize(
    ("autoscaling", "resources"),
    [
        ({"maxReplicas": 5, "targetCPUUtilization": 60}, {"cpu": 60}),
        ({"minReplicas": 3, "maxReplicas": 9, "targetMemoryUtilization": 70}, {"memory": 70}),
        (
            {"maxReplicas": 4, "targetCPUUtilization": 50, "targetMemoryUtilization": 80},
            {"cpu": 50, "memory": 80},
        ),
    ],
)
def test_hpa_targets(
    make_spec: ServiceFactory, autoscaling: dict[str, Any], resources: dict[str, int]
) -> None:
    hpa = build_hpa(
        name="api", namespace="shop", spec=make_spec(autoscaling=autoscaling), owner=None
    )
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "api",
    }
    assert hpa["spec"]["minReplicas"] == autoscaling.get("minReplicas", 2)
    assert hpa["spec"]["maxReplicas"] == autoscaling["maxReplicas"]
    got = {
        m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
        for m in hpa["spec"]["metrics"]
    }
    assert got == resources


@pytest.mark.parametrize(
    ("disruption", "expected"),
    [
        ({}, {"maxUnavailable": 1}),
        ({"maxUnavailable": "25%"}, {"maxUnavailable": "25%"}),
        ({"minAvailable": 2}, {"minAvailable": 2}),
    ],
)
def test_pdb_budget(
    make_spec: ServiceFactory, disruption: dict[str, Any], expected: dict[str, Any]
) -> None:
    pdb = build_pdb(name="api", namespace="shop", spec=make_spec(disruption=disruption), owner=None)
    budget = {k: v for k, v in pdb["spec"].items() if k != "selector"}
    assert budget == expected
