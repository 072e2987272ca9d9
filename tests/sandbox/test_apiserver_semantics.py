"""The emulated API holds the built-in semantics the operator's correctness depends on, as a
real API server does: defaulting on every write, and ObjectMeta and built-in validation."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.sandbox.conftest import DEPLOY, Kube, deployment

APPLY = "application/apply-patch+yaml"
SERVICES = "/api/v1/namespaces/default/services"
SECRETS = "/api/v1/namespaces/default/secrets"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
POLICIES = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies"
HPAS = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers"


def service(name: str = "web", **spec: Any) -> dict[str, Any]:
    ports = spec.pop("ports", [{"port": 80}])
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": "web"}, "ports": ports, **spec},
    }


def secret(name: str = "creds", **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data}


# -- defaulting --------------------------------------------------------------------------------


async def test_deployment_defaults(kube: Kube) -> None:
    body = deployment("plain")
    del body["spec"]["replicas"]
    container = body["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"] = {"httpGet": {"port": 80}}
    created = await kube.post(DEPLOY, body)
    assert created.status == 201, created.body
    spec = created.body["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert (spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (10, 600)
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Always" and pod["dnsPolicy"] == "ClusterFirst"
    assert pod["terminationGracePeriodSeconds"] == 30 and pod["securityContext"] == {}
    assert pod["schedulerName"] == "default-scheduler"
    (app,) = pod["containers"]
    assert app["terminationMessagePath"] == "/dev/termination-log"
    assert app["terminationMessagePolicy"] == "File" and app["imagePullPolicy"] == "IfNotPresent"
    assert app["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert app["readinessProbe"] == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        ("registry:5000/team/app", "Always"),
        ("registry:5000/team/app:2.0", "IfNotPresent"),
        ("app@sha256:" + "a" * 64, "IfNotPresent"),
    ],
)
async def test_image_pull_policy_follows_the_tag(kube: Kube, image: str, policy: str) -> None:
    body = deployment("pull")
    body["spec"]["template"]["spec"]["containers"][0]["image"] = image
    created = await kube.post(DEPLOY, body)
    assert created.body["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == policy


async def test_replicas_dropped_from_an_apply_come_back_as_one(kube: Kube) -> None:
    """The HPA hand-over: the manager that applied ``replicas: 3`` stops applying it and
    nobody else owns it, so the field goes, and the server defaults it to 1."""
    body = deployment("handover", replicas=3)
    first = await kube.patch(f"{DEPLOY}/handover", yaml.safe_dump(body), APPLY, fieldManager="op")
    assert first.status == 201 and first.body["spec"]["replicas"] == 3
    without = copy.deepcopy(body)
    del without["spec"]["replicas"]
    again = await kube.patch(
        f"{DEPLOY}/handover", yaml.safe_dump(without), APPLY, fieldManager="op"
    )
    assert again.status == 200 and again.body["spec"]["replicas"] == 1


async def test_replicas_removed_by_an_update_come_back_as_one(kube: Kube) -> None:
    created = (await kube.post(DEPLOY, deployment("upd", replicas=4))).body
    del created["spec"]["replicas"]
    del created["metadata"]["resourceVersion"]  # unconditional (the controller writes status)
    replaced = await kube.put(f"{DEPLOY}/upd", created)
    assert replaced.status == 200 and replaced.body["spec"]["replicas"] == 1


async def test_service_and_secret_defaults(kube: Kube) -> None:
    created = (await kube.post(SERVICES, service(ports=[{"port": 80, "name": "http"}]))).body
    spec = created["spec"]
    assert spec["type"] == "ClusterIP" and spec["sessionAffinity"] == "None"
    assert spec["internalTrafficPolicy"] == "Cluster" and spec["clusterIP"]
    assert spec["ports"] == [{"port": 80, "name": "http", "protocol": "TCP", "targetPort": 80}]
    assert (await kube.post(SECRETS, secret(a="YQ=="))).body["type"] == "Opaque"


@pytest.mark.parametrize(
    ("rules", "types"),
    [
        ({"ingress": [{"ports": [{"port": 80}]}]}, ["Ingress"]),
        ({"egress": [{"ports": [{"port": 53}]}]}, ["Ingress", "Egress"]),
        ({}, ["Ingress"]),
        ({"policyTypes": ["Egress"]}, ["Egress"]),
    ],
)
async def test_network_policy_defaults(kube: Kube, rules: dict, types: list[str]) -> None:
    body = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "np"},
        "spec": {"podSelector": {}, **rules},
    }
    spec = (await kube.post(POLICIES, body)).body["spec"]
    assert spec["policyTypes"] == types
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or []:
            assert all(port["protocol"] == "TCP" for port in rule["ports"])


async def test_hpa_v2_defaults(kube: Kube) -> None:
    body = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 5,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
        },
    }
    spec = (await kube.post(HPAS, body)).body["spec"]
    assert spec["minReplicas"] == 1
    assert spec["metrics"][0]["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": 80,
    }
    assert spec["behavior"]["scaleDown"] == {
        "stabilizationWindowSeconds": 60,
        "selectPolicy": "Max",
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
    }
    assert spec["behavior"]["scaleUp"]["policies"] == [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ]


# -- validation --------------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def labels(**items: str) -> Mutation:
    return lambda body: body["metadata"].setdefault("labels", {}).update(items)


def annotations(**items: str) -> Mutation:
    return lambda body: body["metadata"].setdefault("annotations", {}).update(items)


def template(change: Callable[[dict[str, Any]], None]) -> Mutation:
    return lambda body: change(body["spec"]["template"])


def container(**fields: Any) -> Mutation:
    return lambda body: body["spec"]["template"]["spec"]["containers"][0].update(fields)


def renamed(name: str) -> Mutation:
    return lambda body: body["metadata"].update(name=name)


INVALID: dict[str, tuple[str, Callable[[], dict[str, Any]], Mutation, str, str]] = {
    # id: (collection, body, mutation, field, message fragment)
    "service-name-starts-with-digit": (
        SERVICES,
        service,
        renamed("1web"),
        "metadata.name",
        "DNS-1035 label",
    ),
    "service-name-uppercase": (SERVICES, service, renamed("Web"), "metadata.name", "DNS-1035"),
    "service-name-too-long": (
        SERVICES,
        service,
        renamed("s" * 64),
        "metadata.name",
        "no more than 63 characters",
    ),
    "secret-name-underscore": (
        SECRETS,
        secret,
        renamed("db_creds"),
        "metadata.name",
        "RFC 1123 subdomain",
    ),
    "deployment-name-uppercase": (
        DEPLOY,
        deployment,
        renamed("Web"),
        "metadata.name",
        "RFC 1123 subdomain",
    ),
    "label-key-space": (
        SECRETS,
        secret,
        labels(**{"bad key": "x"}),
        "metadata.labels",
        "name part must consist",
    ),
    "label-key-empty-name": (
        SECRETS,
        secret,
        labels(**{"example.com/": "x"}),
        "metadata.labels",
        "name part must be non-empty",
    ),
    "label-key-bad-prefix": (
        SECRETS,
        secret,
        labels(**{"Example_Com/app": "x"}),
        "metadata.labels",
        "prefix part",
    ),
    "label-key-two-slashes": (
        SECRETS,
        secret,
        labels(**{"a/b/c": "x"}),
        "metadata.labels",
        "a qualified name",
    ),
    "label-key-too-long": (
        SECRETS,
        secret,
        labels(**{"k" * 64: "x"}),
        "metadata.labels",
        "no more than 63",
    ),
    "label-value-too-long": (
        SECRETS,
        secret,
        labels(app="v" * 64),
        "metadata.labels",
        "no more than 63 characters",
    ),
    "label-value-leading-dash": (
        SECRETS,
        secret,
        labels(app="-v"),
        "metadata.labels",
        "a valid label must be",
    ),
    "annotation-key-space": (
        SECRETS,
        secret,
        annotations(**{"bad key": "x"}),
        "metadata.annotations",
        "name part",
    ),
    "annotation-key-bad-prefix": (
        SECRETS,
        secret,
        annotations(**{"a_b.com/x": "y"}),
        "metadata.annotations",
        "prefix part",
    ),
    "annotations-too-large": (
        SECRETS,
        secret,
        annotations(big="x" * (256 * 1024)),
        "metadata.annotations",
        "Too long",
    ),
    "secret-data-key-space": (
        SECRETS,
        lambda: secret(**{"bad key": "YQ=="}),
        lambda b: None,
        "data[bad key]",
        "config key",
    ),
    "secret-data-key-dotdot": (
        SECRETS,
        lambda: secret(**{"..x": "YQ=="}),
        lambda b: None,
        "data[..x]",
        "must not start with '..'",
    ),
    "configmap-data-key-slash": (
        CONFIGMAPS,
        lambda: {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"a/b": "1"},
        },
        lambda b: None,
        "data[a/b]",
        "config key",
    ),
    "service-ports-unnamed": (
        SERVICES,
        lambda: service(ports=[{"port": 80}, {"port": 81}]),
        lambda b: None,
        "spec.ports[0].name",
        "Required value",
    ),
    "service-port-name-uppercase": (
        SERVICES,
        lambda: service(ports=[{"port": 80, "name": "HTTP"}]),
        lambda b: None,
        "spec.ports[0].name",
        "RFC 1123 label",
    ),
    "service-port-name-duplicate": (
        SERVICES,
        lambda: service(ports=[{"port": 80, "name": "web"}, {"port": 81, "name": "web"}]),
        lambda b: None,
        "spec.ports[1].name",
        "Duplicate value",
    ),
    "service-selector-value": (
        SERVICES,
        lambda: service(selector={"app": "a b"}),
        lambda b: None,
        "spec.selector",
        "a valid label",
    ),
    "container-name-uppercase": (
        DEPLOY,
        deployment,
        container(name="App"),
        "spec.template.spec.containers[0].name",
        "RFC 1123",
    ),
    "container-port-name-too-long": (
        DEPLOY,
        deployment,
        container(ports=[{"containerPort": 80, "name": "http-metrics-port"}]),
        "spec.template.spec.containers[0].ports[0].name",
        "no more than 15 characters",
    ),
    "container-port-name-digits": (
        DEPLOY,
        deployment,
        container(ports=[{"containerPort": 80, "name": "8080"}]),
        "spec.template.spec.containers[0].ports[0].name",
        "at least one letter",
    ),
    "template-annotation-key": (
        DEPLOY,
        deployment,
        template(lambda t: t["metadata"].update(annotations={"bad key": "1"})),
        "spec.template.metadata.annotations",
        "name part",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
async def test_invalid_objects_are_refused_naming_the_field(kube: Kube, case: str) -> None:
    collection, make, mutate, field, fragment = INVALID[case]
    body = make()
    mutate(body)
    answer = await kube.post(collection, body)
    assert answer.status == 422, answer.body
    message = answer.body["message"]
    assert f"{field}: " in message and fragment in message, message
    assert any(c["field"] == field for c in answer.body["details"]["causes"])


VALID: dict[str, tuple[str, Callable[[], dict[str, Any]], Mutation]] = {
    "prefixed-label-empty-value": (
        SECRETS,
        secret,
        labels(**{"app.kubernetes.io/name": "", "Tier": "Web_1.x"}),
    ),
    "mixed-case-annotation-key": (SECRETS, secret, annotations(**{"Example.com/Foo": "x"})),
    "dotted-secret-keys": (
        SECRETS,
        lambda: secret(**{"tls.crt": "YQ==", ".hidden": "YQ=="}),
        lambda b: None,
    ),
    "service-name-label": (SERVICES, service, renamed("web-1")),
    "one-unnamed-service-port": (SERVICES, service, lambda b: None),
    "deployment-dotted-name": (DEPLOY, deployment, renamed("web.v2")),
}


@pytest.mark.parametrize("case", sorted(VALID))
async def test_valid_objects_are_accepted(kube: Kube, case: str) -> None:
    collection, make, mutate = VALID[case]
    body = make()
    mutate(body)
    answer = await kube.post(collection, body)
    assert answer.status == 201, answer.body
