"""MirageService end to end: the real operator process against the (emulated) API server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Cluster, service, wait_ready
from tests.e2e.helpers import CHILDREN, assert_steady
from tests.e2e.kube import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def child(cluster: Cluster, kind: str, namespace: str, name: str) -> dict[str, Any]:
    body = cluster.kube.get(kind, namespace, name)
    assert body is not None, f"{kind}/{name} missing"
    return body


def test_create_makes_every_child_and_ready(cluster: Cluster, ns: str) -> None:
    cluster.kube.apply(service("api", ns, replicas=3))
    body = wait_ready(cluster.kube, ns, "api")
    status = body["status"]
    assert status["readyReplicas"] == 3
    assert {c["kind"] for c in status["children"]} == set(CHILDREN)
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Progressing"]["status"] == "False"
    assert conditions["Degraded"]["status"] == "False"
    deployment = child(cluster, "Deployment", ns, "api")
    assert deployment["spec"]["replicas"] == 3
    assert (
        deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        == "registry.example/app:1.0.0"
    )
    (owner,) = deployment["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("MirageService", body["metadata"]["uid"])
    for kind in CHILDREN:
        child(cluster, kind, ns, "api")
    assert_steady(cluster, ns)


def test_update_follows_image_replicas_autoscaling_and_ingress(cluster: Cluster, ns: str) -> None:
    kube = cluster.kube
    kube.apply(service("web", ns, ingress={"host": "web.example.com"}))
    wait_ready(kube, ns, "web")
    assert kube.get("Ingress", ns, "web") is not None

    kube.apply(
        service(
            "web",
            ns,
            image="registry.example/app:2.0.0",
            replicas=4,
            ingress={"host": "web.example.com"},
        )
    )
    wait_ready(kube, ns, "web")
    deployment = child(cluster, "Deployment", ns, "web")
    assert (
        deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        == "registry.example/app:2.0.0"
    )
    assert deployment["spec"]["replicas"] == 4

    # Server-side apply, as GitOps tools do: fields this manager stops applying are removed.
    # (ingress and autoscaling carry no schema defaults, so nothing unowned stays behind.)
    autoscaling = {"maxReplicas": 6, "targetCPUUtilization": 70}
    kube.apply(service("web", ns, image="registry.example/app:2.0.0", autoscaling=autoscaling))
    wait_ready(kube, ns, "web")
    hpa = child(cluster, "HorizontalPodAutoscaler", ns, "web")
    assert hpa["spec"]["maxReplicas"] == 6
    wait_for(lambda: kube.get("Ingress", ns, "web") is None, what="Ingress deleted")

    # A merge patch, as client-side `kubectl apply` sends, turns autoscaling off again.
    kube.merge_patch("MirageService", ns, "web", {"spec": {"autoscaling": None, "replicas": 1}})
    wait_ready(kube, ns, "web")
    wait_for(lambda: kube.get("HorizontalPodAutoscaler", ns, "web") is None, what="HPA deleted")
    assert child(cluster, "Deployment", ns, "web")["spec"]["replicas"] == 1
    assert_steady(cluster, ns)


@pytest.mark.parametrize("kind", ["Deployment", "Service", "NetworkPolicy", "ServiceMonitor"])
def test_deleted_child_is_restored(cluster: Cluster, ns: str, kind: str) -> None:
    kube = cluster.kube
    kube.apply(service("api", ns))
    wait_ready(kube, ns, "api")
    old_uid = child(cluster, kind, ns, "api")["metadata"]["uid"]
    kube.delete(kind, ns, "api")
    restored = wait_for(
        lambda: (b := kube.get(kind, ns, "api")) and b["metadata"]["uid"] != old_uid and b,
        what=f"{kind} restored",
    )
    assert restored["metadata"]["ownerReferences"][0]["kind"] == "MirageService"
    wait_for(
        lambda: any(
            e.get("reason") == "DriftCorrected"
            for e in kube.list("Event", ns)
            if e["involvedObject"].get("name") == "api"
        ),
        what="DriftCorrected event",
    )


def test_edited_child_is_restored(cluster: Cluster, ns: str) -> None:
    kube = cluster.kube
    kube.apply(service("api", ns, replicas=2))
    wait_ready(kube, ns, "api")
    kube.merge_patch("Deployment", ns, "api", {"spec": {"replicas": 7}})
    kube.merge_patch(
        "Service", ns, "api", {"spec": {"selector": {"app.kubernetes.io/name": "other"}}}
    )
    kube.merge_patch(
        "NetworkPolicy", ns, "api", {"metadata": {"labels": {"app.kubernetes.io/part-of": None}}}
    )
    wait_for(
        lambda: child(cluster, "Deployment", ns, "api")["spec"]["replicas"] == 2,
        what="replicas restored",
    )
    wait_for(
        lambda: (
            child(cluster, "Service", ns, "api")["spec"]["selector"]["app.kubernetes.io/name"]
            == "api"
        ),
        what="service selector restored",
    )
    wait_for(
        lambda: child(cluster, "NetworkPolicy", ns, "api")["metadata"]["labels"].get(
            "app.kubernetes.io/part-of"
        ),
        what="label restored",
    )
    assert_steady(cluster, ns)


def test_deleting_the_service_garbage_collects_children(cluster: Cluster, ns: str) -> None:
    kube = cluster.kube
    kube.apply(service("api", ns))
    wait_ready(kube, ns, "api")
    kube.delete("MirageService", ns, "api")
    for kind in CHILDREN:
        wait_for(lambda kind=kind: kube.get(kind, ns, "api") is None, what=f"{kind} collected")


def test_invalid_spec_is_reported_once_without_retry_storm(cluster: Cluster, ns: str) -> None:
    kube = cluster.kube
    # Valid for the CRD schema, invalid for the operator's own rules: the ingress names a
    # port the service does not have.
    kube.apply(service("bad", ns, ingress={"host": "bad.example.com", "port": "nope"}))
    # A valid neighbour's resyncs are the clock that shows the invalid one is left alone.
    kube.apply(service("good", ns))
    wait_ready(kube, ns, "good")

    def invalid() -> dict[str, Any] | None:
        cond = kube.condition("MirageService", ns, "bad", "Ready")
        return cond if cond and cond["reason"] == "InvalidSpec" else None

    cond = wait_for(invalid, what="InvalidSpec")
    assert cond["status"] == "False"
    assert "spec.ingress.port" in cond["message"]
    assert kube.get("Deployment", ns, "bad") is None
    if cluster.emulator is not None:
        assert_steady(cluster, ns)

    # Fixing the spec recovers.
    kube.apply(service("bad", ns, ingress={"host": "bad.example.com"}))
    wait_ready(kube, ns, "bad")


def test_operator_restart_midway_converges_without_duplicates(cluster: Cluster, ns: str) -> None:
    kube, api = cluster.kube, cluster.require_emulator()
    # Held midway: svc1's and svc2's Services cannot be applied until the crash, so the kill
    # lands with those two part-made, whatever the operator's speed.
    held = [
        api.fail("patch", "services", namespace=ns, name=f"svc{i}", code=503, times=10_000)
        for i in (1, 2)
    ]
    for index in range(3):
        kube.apply(service(f"svc{index}", ns))
    wait_for(
        lambda: (
            all(rule.hits for rule in held)
            and all(kube.get("Deployment", ns, name) for name in ("svc1", "svc2"))
        ),
        what="svc1 and svc2 part-made",
    )
    assert [kube.get("Service", ns, name) for name in ("svc1", "svc2")] == [None, None]
    cluster.operator.stop(kill=True)
    api.faults.clear()
    cluster.operator.start()
    for index in range(3):
        wait_ready(kube, ns, f"svc{index}", timeout=45)
    for kind in CHILDREN:
        names = sorted(
            o["metadata"]["name"]
            for o in kube.list(kind, ns)
            if o["metadata"]["name"].startswith("svc")
        )
        assert names == ["svc0", "svc1", "svc2"], kind
    assert_steady(cluster, ns)


def test_changes_made_while_the_operator_is_down_are_caught_up(cluster: Cluster, ns: str) -> None:
    kube = cluster.kube
    kube.apply(service("api", ns, replicas=2))
    wait_ready(kube, ns, "api")
    cluster.operator.stop()
    try:
        kube.apply(service("api", ns, replicas=5))
        kube.delete("Service", ns, "api")
    finally:
        cluster.operator.start()
    wait_ready(kube, ns, "api", timeout=45)
    assert child(cluster, "Deployment", ns, "api")["spec"]["replicas"] == 5
    wait_for(lambda: kube.get("Service", ns, "api"), what="Service restored after restart")
