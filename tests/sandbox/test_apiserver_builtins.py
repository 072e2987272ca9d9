"""Built-in resources beyond the basics: both Event APIs, workload status, scale,
delete-collection, leases, RBAC, and the prometheus-operator, Istio and Traefik CRDs."""

from __future__ import annotations

from typing import Any

import yaml

from mirage_operator.config import Config
from mirage_operator.k8s import resources
from mirage_operator.render.documents import render_document
from mirage_operator.render.mirageservice import OPTIONAL_CHILD_KINDS
from mirage_sandbox.apiserver import APIServer
from mirage_sandbox.monitoring_crds import (
    load_monitoring_crds,
    monitoring_crds,
    platform_crds,
)
from tests.conftest import REPO, THIRD_PARTY_CRDS, require_path
from tests.sandbox.conftest import CM, DEPLOY, Kube, configmap, deployment

MERGE = "application/merge-patch+json"


async def test_core_and_events_k8s_io_events_are_one_storage(kube: Kube) -> None:
    core = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e1"},
        "involvedObject": {"kind": "ConfigMap", "name": "x", "namespace": "default"},
        "reason": "Tested",
        "message": "hello",
        "type": "Normal",
    }
    assert (await kube.post("/api/v1/namespaces/default/events", core)).status == 201
    seen = await kube.get("/apis/events.k8s.io/v1/namespaces/default/events/e1")
    assert seen.body["apiVersion"] == "events.k8s.io/v1"
    assert seen.body["regarding"]["name"] == "x" and seen.body["note"] == "hello"
    assert "involvedObject" not in seen.body
    modern = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "e2"},
        "regarding": {"kind": "ConfigMap", "name": "y", "namespace": "default"},
        "reason": "Tested",
        "note": "world",
        "type": "Normal",
        "action": "Test",
        "reportingController": "tests",
        "reportingInstance": "tests-1",
        "eventTime": "2026-01-01T00:00:00.000000Z",
    }
    assert (
        await kube.post("/apis/events.k8s.io/v1/namespaces/default/events", modern)
    ).status == 201
    legacy = await kube.get(
        "/api/v1/namespaces/default/events", fieldSelector="involvedObject.name=y"
    )
    assert [(e["message"], e["involvedObject"]["name"]) for e in legacy.body["items"]] == [
        ("world", "y")
    ]


async def test_statefulset_and_daemonset_status_converge(api: APIServer, kube: Kube) -> None:
    for kind, path in (("StatefulSet", "statefulsets"), ("DaemonSet", "daemonsets")):
        body: dict[str, Any] = deployment(f"w-{path}", replicas=2)
        body["kind"] = kind
        if kind == "DaemonSet":
            del body["spec"]["replicas"]
        answer = await kube.post(f"/apis/apps/v1/namespaces/default/{path}", body)
        assert answer.status == 201, answer.body

    def observed(resource: str) -> int | None:
        found = api.find(resource, f"w-{resource}", "default") or {}
        value: int | None = (found.get("status") or {}).get("observedGeneration")
        return value

    await api.wait_for(lambda: observed("statefulsets") == 1 and observed("daemonsets") == 1)
    sts = api.get("statefulsets", "w-statefulsets", "default")["status"]
    assert sts["readyReplicas"] == 2 and sts["currentRevision"] == sts["updateRevision"]
    assert api.get("daemonsets", "w-daemonsets", "default")["status"]["numberReady"] == 1


async def test_scale_subresource(kube: Kube) -> None:
    await kube.post(DEPLOY, deployment("sc", replicas=1))
    scale = await kube.get(f"{DEPLOY}/sc/scale")
    assert scale.body["kind"] == "Scale" and scale.body["spec"]["replicas"] == 1
    assert scale.body["status"]["selector"] == "app=sc"
    patched = await kube.patch(f"{DEPLOY}/sc/scale", {"spec": {"replicas": 5}}, MERGE)
    assert patched.body["spec"]["replicas"] == 5
    assert (await kube.get(f"{DEPLOY}/sc")).body["spec"]["replicas"] == 5


async def test_delete_collection_with_a_selector(kube: Kube) -> None:
    for name, tier in (("a", "x"), ("b", "x"), ("c", "y")):
        body = configmap(name)
        body["metadata"]["labels"] = {"tier": tier}
        await kube.post(CM, body)
    answer = await kube.delete(CM, labelSelector="tier=x")
    assert answer.status == 200
    left = {i["metadata"]["name"] for i in (await kube.get(CM, labelSelector="tier")).body["items"]}
    assert left == {"c"}


async def test_leases_and_cluster_scoped_rbac(kube: Kube) -> None:
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "leader"},
        "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15},
    }
    created = await kube.post("/apis/coordination.k8s.io/v1/namespaces/default/leases", lease)
    assert created.status == 201
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "system:reader"}, "rules": []}  # fmt: skip
    answer = await kube.post("/apis/rbac.authorization.k8s.io/v1/clusterroles", role)
    assert answer.status == 201 and "namespace" not in answer.body["metadata"]


async def test_minimal_monitoring_crds_serve_service_monitors(api: APIServer, kube: Kube) -> None:
    api.install_crds(monitoring_crds())
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "m"},
        "spec": {"endpoints": [{"port": "metrics"}], "anything": {"kept": True}},
    }
    created = await kube.post(
        "/apis/monitoring.coreos.com/v1/namespaces/default/servicemonitors", monitor
    )
    assert created.status == 201 and created.body["spec"]["anything"] == {"kept": True}


async def test_real_prometheus_operator_crds_validate(api: APIServer, kube: Kube) -> None:
    directory = require_path(THIRD_PARTY_CRDS / "monitoring.coreos.com")
    api.install_crds(load_monitoring_crds(directory))
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "r"},
        "spec": {"groups": [{"name": "g", "rules": [{"record": "x:y", "expr": "up"}]}]},
    }
    assert (
        await kube.post("/apis/monitoring.coreos.com/v1/namespaces/default/prometheusrules", rule)
    ).status == 201
    broken = {**rule, "metadata": {"name": "bad"}, "spec": {"groups": [{"rules": []}]}}
    answer = await kube.post(
        "/apis/monitoring.coreos.com/v1/namespaces/default/prometheusrules", broken
    )
    assert answer.status == 422 and "spec.groups[0].name: Required value" in answer.body["message"]


def _platform_objects() -> list[dict[str, Any]]:
    document = yaml.safe_load((REPO / "examples" / "mirageservice-full.yaml").read_text())
    objects = render_document(document, config=Config())
    return [o for o in objects if (o["apiVersion"], o["kind"]) in OPTIONAL_CHILD_KINDS]


def _collection(obj: dict[str, Any]) -> str:
    resource = resources.for_kind(obj["apiVersion"], obj["kind"])
    return resource.path(namespace=obj["metadata"]["namespace"])


async def test_minimal_platform_crds_serve_every_mesh_and_traefik_kind(
    api: APIServer, kube: Kube
) -> None:
    api.install_crds(platform_crds())
    objects = _platform_objects()
    assert {(o["apiVersion"], o["kind"]) for o in objects} == set(OPTIONAL_CHILD_KINDS)
    for obj in objects:
        assert (await kube.post(_collection(obj), obj)).status == 201


async def test_real_istio_and_traefik_crds_accept_the_rendered_objects(
    api: APIServer, kube: Kube
) -> None:
    api.install_crds(
        [
            crd
            for group in ("security.istio.io", "networking.istio.io", "traefik.io")
            for crd in load_monitoring_crds(require_path(THIRD_PARTY_CRDS / group))
        ]
    )
    for obj in _platform_objects():
        answer = await kube.post(_collection(obj), obj)
        assert answer.status == 201, answer.body
    broken = {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "bad", "namespace": "default"},
        "spec": {"portLevelMtls": {"8080": {"mode": "STRICT"}}},
    }
    answer = await kube.post(_collection(broken), broken)
    assert answer.status == 422, answer.body
