"""Which children a MirageService becomes, and the checksum that rolls its pods."""

from __future__ import annotations

from typing import Any

import pytest

from mirage_operator.config import Config
from mirage_operator.render.meta import CHECKSUM_ANNOTATION
from mirage_operator.render.mirageservice import CHILD_KINDS, build_children, pod_checksum
from tests.unit.factories import ServiceFactory, service_body


def _kinds(children: list[dict[str, Any]]) -> list[str]:
    return [c["kind"] for c in children]


def test_minimal_service_children(make_spec: ServiceFactory, config: Config) -> None:
    children = build_children(
        name="api",
        namespace="shop",
        spec=make_spec(),
        config=config,
        owner=service_body(),
        secret_macs={},
    )
    assert _kinds(children) == [
        "ServiceAccount",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ServiceMonitor",
    ]
    assert all(c["metadata"]["namespace"] == "shop" for c in children)
    assert all(c["metadata"]["ownerReferences"][0]["uid"] == "uid-1" for c in children)


@pytest.mark.parametrize(
    ("fields", "present", "absent"),
    [
        (
            {"autoscaling": {"maxReplicas": 3, "targetCPUUtilization": 50}},
            {"HorizontalPodAutoscaler"},
            set(),
        ),
        ({"ingress": {"host": "a.example.com"}}, {"Ingress"}, set()),
        ({"config": {"data": {"a": "b"}}}, {"ConfigMap"}, set()),
        ({"disruption": {"enabled": False}}, set(), {"PodDisruptionBudget"}),
        ({"networkPolicy": {"enabled": False}}, set(), {"NetworkPolicy"}),
        ({"monitoring": {"metrics": {"enabled": False}}}, set(), {"ServiceMonitor"}),
        ({"secrets": [{"name": "db", "vault": {"path": "shop/db"}}]}, {"VaultSecret"}, set()),
        (
            {
                "monitoring": {
                    "slos": [
                        {
                            "name": "avail",
                            "objective": 99.9,
                            "sli": {"preset": {"type": "http-availability"}},
                        }
                    ]
                }
            },
            {"ServiceLevelObjective"},
            set(),
        ),
        (
            {"monitoring": {"alerts": [{"alert": "Down", "expr": "up == 0"}]}},
            {"PrometheusRule"},
            set(),
        ),
    ],
)
def test_optional_children_follow_the_spec(
    make_spec: ServiceFactory,
    config: Config,
    fields: dict[str, Any],
    present: set[str],
    absent: set[str],
) -> None:
    kinds = set(
        _kinds(
            build_children(
                name="api",
                namespace="shop",
                spec=make_spec(**fields),
                config=config,
                owner=None,
                secret_macs=None,
            )
        )
    )
    assert present <= kinds
    assert not absent & kinds


def test_every_child_kind_is_declared_for_pruning(
    make_spec: ServiceFactory, config: Config
) -> None:
    spec = make_spec(
        autoscaling={"maxReplicas": 3, "targetCPUUtilization": 50},
        ingress={"host": "a.example.com", "auth": {"oidc": {}}},
        mesh={"enabled": True, "resilience": {"outlierDetection": {"interval": "5s"}}},
        auth={"jwt": {"issuer": "https://id.example.com"}},
        config={"data": {"a": "b"}},
        secrets=[{"name": "db", "vault": {"path": "shop/db"}}],
        ports=[{"name": "http", "port": 8080}, {"name": "admin", "port": 9090}],
        monitoring={
            "metrics": {"port": "admin"},  # a dedicated port: Prometheus carries no token
            "slos": [
                {
                    "name": "avail",
                    "objective": 99.9,
                    "sli": {"preset": {"type": "http-availability"}},
                }
            ],
            "alerts": [{"alert": "Down", "expr": "up == 0"}],
        },
    )
    children = build_children(
        name="api", namespace="shop", spec=spec, config=config, owner=None, secret_macs={}
    )
    assert {(c["apiVersion"], c["kind"]) for c in children} == set(CHILD_KINDS)


def test_child_vault_secret_and_slo_carry_the_entry_spec(
    make_spec: ServiceFactory, config: Config
) -> None:
    spec = make_spec(
        secrets=[
            {
                "name": "db",
                "vault": {"path": "shop/db"},
                "refreshInterval": "5m",
                "expose": {"envPrefix": "DB_"},
            }
        ],
        monitoring={
            "slos": [
                {
                    "name": "avail",
                    "objective": 99.5,
                    "sli": {"preset": {"type": "http-availability"}},
                }
            ]
        },
    )
    children = {
        c["kind"]: c
        for c in build_children(
            name="api", namespace="shop", spec=spec, config=config, owner=None, secret_macs=None
        )
    }
    secret = children["VaultSecret"]
    assert secret["metadata"]["name"] == "api-db"
    assert secret["spec"]["destination"] == {"name": "api-db"}
    assert secret["spec"]["vault"]["path"] == "shop/db"
    assert secret["spec"]["refreshInterval"] == "5m"
    assert "expose" not in secret["spec"]  # how the pod sees it is the Deployment's business
    slo = children["ServiceLevelObjective"]
    assert slo["metadata"]["name"] == "api-avail"
    assert slo["spec"]["service"] == "api"
    assert slo["spec"]["objective"] == 99.5
    assert "name" not in slo["spec"]


def test_pod_checksum_changes_with_config_and_secret_macs(make_spec: ServiceFactory) -> None:
    base = pod_checksum(spec=make_spec(config={"data": {"a": "1"}}), secret_macs={"db": "m1"})
    assert base == pod_checksum(
        spec=make_spec(config={"data": {"a": "1"}}), secret_macs={"db": "m1"}
    )
    assert base != pod_checksum(
        spec=make_spec(config={"data": {"a": "2"}}), secret_macs={"db": "m1"}
    )
    assert base != pod_checksum(
        spec=make_spec(config={"data": {"a": "1"}}), secret_macs={"db": "m2"}
    )


def test_checksum_reaches_the_pod_template_unless_rendering_offline(
    make_spec: ServiceFactory, config: Config
) -> None:
    spec = make_spec()
    online = build_children(
        name="api", namespace="shop", spec=spec, config=config, owner=None, secret_macs={}
    )
    offline = build_children(
        name="api", namespace="shop", spec=spec, config=config, owner=None, secret_macs=None
    )
    (deployment,) = [c for c in online if c["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["metadata"]["annotations"][
        CHECKSUM_ANNOTATION
    ] == pod_checksum(spec=spec, secret_macs={})
    (deployment,) = [c for c in offline if c["kind"] == "Deployment"]
    assert "annotations" not in deployment["spec"]["template"]["metadata"]
