"""Field mapping of the ServiceAccount, ConfigMap and Deployment builders."""

from __future__ import annotations

from typing import Any

import pytest

from mirage_operator.render.meta import CHECKSUM_ANNOTATION
from mirage_operator.render.workload import (
    build_config_map,
    build_deployment,
    build_service_account,
)
from tests.unit.factories import ServiceFactory, service_body

OWNER = service_body()


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]  # type: ignore[no-any-return]


def test_deployment_has_secure_pod_defaults(make_spec: ServiceFactory) -> None:
    deployment = build_deployment(
        name="api", namespace="shop", spec=make_spec(), owner=OWNER, checksum="c"
    )
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    container = _container(deployment)["securityContext"]
    assert container == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    # A read-only root filesystem still needs somewhere to write temporary files.
    assert {"name": "tmp", "mountPath": "/tmp"} in _container(deployment)["volumeMounts"]


@pytest.mark.parametrize(
    ("field", "value", "path", "expected"),
    [
        ("image", "reg/x:9", ("image",), "reg/x:9"),
        ("imagePullPolicy", "Always", ("imagePullPolicy",), "Always"),
        ("command", ["/bin/x"], ("command",), ["/bin/x"]),
        ("args", ["--a"], ("args",), ["--a"]),
        ("env", [{"name": "A", "value": "1"}], ("env",), [{"name": "A", "value": "1"}]),
        (
            "resources",
            {"requests": {"cpu": "1", "memory": "1Gi"}},
            ("resources",),
            {"requests": {"cpu": "1", "memory": "1Gi"}},
        ),
        (
            "ports",
            [{"name": "grpc", "port": 9000, "protocol": "TCP"}],
            ("ports",),
            [{"name": "grpc", "containerPort": 9000, "protocol": "TCP"}],
        ),
    ],
)
def test_container_fields_come_from_the_spec(
    make_spec: ServiceFactory, field: str, value: Any, path: tuple[str, ...], expected: Any
) -> None:
    container = _container(
        build_deployment(
            name="api",
            namespace="shop",
            spec=make_spec(**{field: value}),
            owner=OWNER,
            checksum=None,
        )
    )
    for part in path:
        container = container[part]
    assert container == expected


def test_probes_default_to_healthz_and_readyz_on_the_first_port(make_spec: ServiceFactory) -> None:
    spec = make_spec(ports=[{"name": "web", "port": 80}, {"name": "admin", "port": 81}])
    container = _container(
        build_deployment(name="api", namespace="shop", spec=spec, owner=OWNER, checksum=None)
    )
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "web"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "web"}
    assert "startupProbe" not in container


def test_probe_settings_and_disabling(make_spec: ServiceFactory) -> None:
    spec = make_spec(
        ports=[{"name": "web", "port": 80}, {"name": "admin", "port": 81}],
        probes={
            "liveness": {"enabled": False},
            "readiness": {
                "path": "/ready",
                "port": "admin",
                "periodSeconds": 3,
                "failureThreshold": 7,
            },
            "startup": {"path": "/started"},
        },
    )
    container = _container(
        build_deployment(name="api", namespace="shop", spec=spec, owner=OWNER, checksum=None)
    )
    assert "livenessProbe" not in container
    readiness = container["readinessProbe"]
    assert readiness["httpGet"] == {"path": "/ready", "port": "admin"}
    assert (readiness["periodSeconds"], readiness["failureThreshold"]) == (3, 7)
    assert container["startupProbe"]["httpGet"]["path"] == "/started"


@pytest.mark.parametrize(
    "autoscaling", [None, {"minReplicas": 2, "maxReplicas": 5, "targetCPUUtilization": 50}]
)
def test_replicas_are_left_to_the_hpa_when_autoscaling(
    make_spec: ServiceFactory, autoscaling: Any
) -> None:
    fields: dict[str, Any] = {"replicas": 4}
    if autoscaling:
        fields["autoscaling"] = autoscaling
    deployment = build_deployment(
        name="api", namespace="shop", spec=make_spec(**fields), owner=OWNER, checksum=None
    )
    if autoscaling:
        assert "replicas" not in deployment["spec"]
    else:
        assert deployment["spec"]["replicas"] == 4


def test_checksum_annotation_only_when_given(make_spec: ServiceFactory) -> None:
    with_sum = build_deployment(
        name="api", namespace="shop", spec=make_spec(), owner=OWNER, checksum="abc"
    )
    without = build_deployment(
        name="api", namespace="shop", spec=make_spec(), owner=OWNER, checksum=None
    )
    assert with_sum["spec"]["template"]["metadata"]["annotations"] == {CHECKSUM_ANNOTATION: "abc"}
    assert "annotations" not in without["spec"]["template"]["metadata"]


def test_rollout_and_identity_settings(make_spec: ServiceFactory) -> None:
    spec = make_spec(
        rollout={"maxSurge": 2, "maxUnavailable": "10%", "terminationGracePeriodSeconds": 5},
        securityContext={"runAsUser": 2000, "runAsGroup": 3000, "fsGroup": 4000},
        imagePullSecrets=["pull"],
    )
    deployment = build_deployment(
        name="api", namespace="shop", spec=spec, owner=OWNER, checksum=None
    )
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {
        "maxSurge": 2,
        "maxUnavailable": "10%",
    }
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 5
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
        2000,
        3000,
    )
    assert pod["securityContext"]["fsGroup"] == 4000
    assert pod["imagePullSecrets"] == [{"name": "pull"}]


def test_config_as_env_or_files(make_spec: ServiceFactory) -> None:
    as_env = build_deployment(
        name="api",
        namespace="shop",
        spec=make_spec(config={"data": {"A": "1"}}),
        owner=OWNER,
        checksum=None,
    )
    assert _container(as_env)["envFrom"] == [{"configMapRef": {"name": "api-config"}}]
    as_files = build_deployment(
        name="api",
        namespace="shop",
        spec=make_spec(config={"data": {"a.yaml": "x: 1"}, "mountPath": "/etc/api"}),
        owner=OWNER,
        checksum=None,
    )
    assert {"name": "config", "mountPath": "/etc/api", "readOnly": True} in _container(as_files)[
        "volumeMounts"
    ]
    assert {"name": "config", "configMap": {"name": "api-config"}} in as_files["spec"]["template"][
        "spec"
    ]["volumes"]


def test_secrets_exposed_as_env_prefix_selected_keys_and_files(make_spec: ServiceFactory) -> None:
    vault = {"vault": {"path": "shop/x"}}
    spec = make_spec(
        secrets=[
            {"name": "all", **vault, "expose": {"envPrefix": "ALL_"}},
            {
                "name": "some",
                **vault,
                "expose": {"env": [{"key": "password", "name": "DB_PASSWORD"}]},
            },
            {"name": "certs", **vault, "expose": {"mode": "files", "mountPath": "/certs"}},
        ]
    )
    deployment = build_deployment(
        name="api", namespace="shop", spec=spec, owner=OWNER, checksum=None
    )
    container = _container(deployment)
    assert container["envFrom"] == [{"secretRef": {"name": "api-all"}, "prefix": "ALL_"}]
    assert container["env"] == [
        {
            "name": "DB_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "api-some", "key": "password"}},
        }
    ]
    assert {"name": "secret-certs", "mountPath": "/certs", "readOnly": True} in container[
        "volumeMounts"
    ]
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {
        "name": "secret-certs",
        "secret": {"secretName": "api-certs", "defaultMode": 0o440},
    } in volumes


def test_labels_selector_and_owner(make_spec: ServiceFactory) -> None:
    deployment = build_deployment(
        name="api", namespace="shop", spec=make_spec(), owner=OWNER, checksum=None
    )
    labels = deployment["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "api"
    assert labels["app.kubernetes.io/version"] == "1.2.3"
    assert labels["app.kubernetes.io/managed-by"] == "mirage-operator"
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert "app.kubernetes.io/version" not in selector  # a new tag must not change the selector
    (ref,) = deployment["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == (
        "MirageService",
        "api",
        "uid-1",
        True,
    )


def test_service_account_and_config_map() -> None:
    account = build_service_account(name="api", namespace="shop", owner=None)
    assert account["automountServiceAccountToken"] is False
    assert "ownerReferences" not in account["metadata"]
    config_map = build_config_map(name="api", namespace="shop", data={"k": "v"}, owner=OWNER)
    assert (config_map["metadata"]["name"], config_map["data"]) == ("api-config", {"k": "v"})
