"""Fields of the Deployment that other managers write: insecure ones are reverted with an
Event (ADR 0080), and ``replicas`` is handed over to the autoscaler without a scale-down
(ADR 0081). The real ``mirage run`` against the (emulated) API server."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.e2e.conftest import Cluster, service, wait_ready
from tests.e2e.helpers import assert_steady, operator_writes
from tests.e2e.kube import Kube, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-workload")]

POD = "spec.template.spec"
APP = f"{POD}.containers[app]"


def _pod_patch(**fields: Any) -> dict[str, Any]:
    return {"spec": {"template": {"spec": fields}}}


def _app_patch(**container: Any) -> dict[str, Any]:
    return _pod_patch(containers=[{"name": "app", **container}])


# (how another manager writes it, the write, the paths the Event must name, reverted?)
INSECURE: dict[str, tuple[str, dict[str, Any], set[str]]] = {
    "hostNetwork-merge": ("merge", _pod_patch(hostNetwork=True), {f"{POD}.hostNetwork"}),
    "hostPID-apply": ("apply", _pod_patch(hostPID=True), {f"{POD}.hostPID"}),
    "hostIPC-merge": ("merge", _pod_patch(hostIPC=True), {f"{POD}.hostIPC"}),
    "sys-admin-apply": (
        "apply",
        _app_patch(securityContext={"capabilities": {"add": ["SYS_ADMIN"]}}),
        {f"{APP}.securityContext.capabilities.add"},
    ),
    # A real server refuses privileged with allowPrivilegeEscalation false: both are written.
    "privileged-apply": (
        "apply",
        _app_patch(securityContext={"privileged": True, "allowPrivilegeEscalation": True}),
        {f"{APP}.securityContext.privileged", f"{APP}.securityContext.allowPrivilegeEscalation"},
    ),
    "writable-root-apply": (
        "apply",
        _app_patch(securityContext={"readOnlyRootFilesystem": False}),
        {f"{APP}.securityContext.readOnlyRootFilesystem"},
    ),
    "host-path-apply": (
        "apply",
        _pod_patch(
            volumes=[{"name": "host", "hostPath": {"path": "/"}}],
            containers=[{"name": "app", "volumeMounts": [{"name": "host", "mountPath": "/host"}]}],
        ),
        {f"{POD}.volumes[host].hostPath"},
    ),
    "root-sidecar-apply": (
        "apply",
        _pod_patch(
            containers=[
                {"name": "debug", "image": "busybox:1.36", "securityContext": {"runAsUser": 0}}
            ]
        ),
        {
            f"{POD}.containers[debug].securityContext.runAsUser",
            f"{POD}.containers[debug].securityContext.allowPrivilegeEscalation",
        },
    ),
    "apparmor-annotation-merge": (
        "merge",
        {
            "spec": {
                "template": {
                    "metadata": {
                        "annotations": {
                            "container.apparmor.security.beta.kubernetes.io/app": "unconfined"
                        }
                    }
                }
            }
        },
        {"spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/app]"},
    ),
}


def _write_as_intruder(kube: Kube, ns: str, how: str, patch: dict[str, Any]) -> None:
    if how == "merge":
        kube.merge_patch("Deployment", ns, "api", patch)
        return
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": ns},
    }
    kube.apply({**body, **patch}, manager="intruder")


def _events(kube: Kube, ns: str, reason: str) -> list[str]:
    return [
        e.get("message", "")
        for e in kube.list("Event", ns)
        if e.get("reason") == reason and e["involvedObject"].get("name") == "api"
    ]


def _template(kube: Kube, ns: str) -> dict[str, Any]:
    deployment = kube.get("Deployment", ns, "api")
    assert deployment is not None
    return deployment["spec"]["template"]  # type: ignore[no-any-return]


def _insecure(template: dict[str, Any]) -> list[str]:
    """What is still live of the corpus' writes (independent of the operator's finder)."""
    spec = template["spec"]
    found = [k for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    for container in spec["containers"]:
        ctx = container.get("securityContext") or {}
        if ctx.get("privileged") or (ctx.get("capabilities") or {}).get("add"):
            found.append(f"{container['name']}: privileged or capabilities")
        if ctx.get("readOnlyRootFilesystem") is not True or ctx.get("runAsUser") == 0:
            found.append(f"{container['name']}: writable root or uid 0")
    found += [v["name"] for v in spec.get("volumes", []) if "hostPath" in v]
    found += [
        k for k, v in (template["metadata"].get("annotations") or {}).items() if v == "unconfined"
    ]
    return found


@pytest.mark.parametrize("case", sorted(INSECURE))
def test_insecure_fields_another_manager_writes_are_reverted(
    cluster: Cluster, ns: str, case: str
) -> None:
    kube = cluster.kube
    how, patch, paths = INSECURE[case]
    kube.apply(service("api", ns, env=[{"name": "TOKEN", "value": "not-for-events"}]))
    wait_ready(kube, ns, "api")

    _write_as_intruder(kube, ns, how, patch)

    wait_for(lambda: not _insecure(_template(kube, ns)), what="insecure fields reverted")
    messages = wait_for(
        lambda: (
            (m := _events(kube, ns, "InsecureFieldReverted"))
            and all(path in " ".join(m) for path in paths)
            and m
        ),
        what=f"InsecureFieldReverted events naming {sorted(paths)}",
    )
    assert "not-for-events" not in json.dumps(messages)
    wait_ready(kube, ns, "api")
    assert _template(kube, ns)["spec"]["containers"][0]["securityContext"]["capabilities"] == {
        "drop": ["ALL"]
    }
    assert_steady(cluster, ns)


def test_not_ready_while_an_insecure_field_cannot_be_reverted(cluster: Cluster, ns: str) -> None:
    api = cluster.require_emulator()
    kube = cluster.kube
    kube.apply(service("api", ns))
    wait_ready(kube, ns, "api")
    rule = api.fail("patch", "deployments", namespace=ns, code=500, times=2, retry_after=2)
    # A PUT (as `kubectl replace` sends), so that only the operator's revert meets the fault.
    live = kube.get("Deployment", ns, "api")
    assert live is not None
    live["spec"]["template"]["spec"]["hostNetwork"] = True
    kube.resource("Deployment").replace(body=live, namespace=ns)

    ready = wait_for(
        lambda: (
            (c := kube.condition("MirageService", ns, "api", "Ready"))
            and c["status"] == "False"
            and c
        ),
        what="Ready=False while hostNetwork is live",
    )
    assert f"{POD}.hostNetwork" in ready["message"] and "InsecureFields" in ready["message"]
    wait_for(lambda: not _insecure(_template(kube, ns)), what="hostNetwork reverted at last")
    wait_ready(kube, ns, "api")
    assert rule.hits == 2


def _replicas_history(kube: Kube, ns: str, since: str) -> list[int]:
    """``spec.replicas`` of every version of the Deployment written after ``since``."""
    events = kube.resource("Deployment").watch(
        namespace=ns, field_selector="metadata.name=api", resource_version=since, timeout=1
    )
    return [
        e["raw_object"]["spec"]["replicas"] for e in events if e["type"] in ("ADDED", "MODIFIED")
    ]


def _owners(deployment: dict[str, Any]) -> list[str]:
    """The managers owning ``spec.replicas``."""
    return sorted(
        e["manager"]
        for e in deployment["metadata"].get("managedFields") or []
        if "f:replicas" in (e.get("fieldsV1") or {}).get("f:spec", {})
    )


def _deployment(kube: Kube, ns: str) -> dict[str, Any]:
    deployment = kube.get("Deployment", ns, "api")
    assert deployment is not None
    return deployment


def _scale_as_autoscaler(kube: Kube, ns: str, replicas: int) -> None:
    kube.dynamic.patch(
        kube.resource("Deployment").subresources["scale"],
        body={"spec": {"replicas": replicas}},
        name="api",
        namespace=ns,
        content_type="application/merge-patch+json",
        field_manager="kube-controller-manager",
    )


@pytest.mark.parametrize(("replicas", "scaled"), [(3, 5), (2, 6)])
def test_autoscaling_takes_over_replicas_without_a_scale_down(
    cluster: Cluster, ns: str, replicas: int, scaled: int
) -> None:
    api = cluster.require_emulator()
    kube = cluster.kube
    kube.apply(service("api", ns, replicas=replicas))
    wait_ready(kube, ns, "api")
    before = _deployment(kube, ns)
    assert before["spec"]["replicas"] == replicas

    autoscaling = {"minReplicas": replicas, "maxReplicas": 6, "targetCPUUtilization": 70}
    kube.apply(service("api", ns, replicas=replicas, autoscaling=autoscaling))
    wait_for(lambda: kube.get("HorizontalPodAutoscaler", ns, "api"), what="HPA created")
    wait_ready(kube, ns, "api")
    assert_steady(cluster, ns)
    # Every version written since kept the count: it never dropped to the default of 1.
    history = _replicas_history(kube, ns, before["metadata"]["resourceVersion"])
    assert history and set(history) == {replicas}, history
    assert _owners(_deployment(kube, ns)) == ["mirage-operator-handover"]
    wait_for(
        lambda: (
            _events(kube, ns, "HandedOver")
            == ["kept at the live value: Deployment/api spec.replicas"]
        ),
        what="one HandedOver event",
    )

    # The autoscaler scales; the operator leaves its count alone, and owns nothing of it.
    _scale_as_autoscaler(kube, ns, scaled)
    assert_steady(cluster, ns)
    after_scale = _deployment(kube, ns)
    assert after_scale["spec"]["replicas"] == scaled
    assert _owners(after_scale) == ["kube-controller-manager"]

    # Autoscaling off: the spec's count comes back in one write of the Deployment.
    start = time.time()
    kube.merge_patch("MirageService", ns, "api", {"spec": {"autoscaling": None}})
    wait_for(lambda: kube.get("HorizontalPodAutoscaler", ns, "api") is None, what="HPA deleted")
    wait_ready(kube, ns, "api")
    history = _replicas_history(kube, ns, after_scale["metadata"]["resourceVersion"])
    assert set(history) == {replicas}, history
    assert _owners(_deployment(kube, ns)) == ["mirage-operator"]
    deployment_writes = [
        w for w in operator_writes(api, ns, start) if "/deployments/" in w and "/status" not in w
    ]
    assert len(deployment_writes) == 1, deployment_writes
    assert_steady(cluster, ns)


ALLOW_ALL: dict[str, Any] = {"spec": {"ingress": [{}]}}


@pytest.mark.parametrize("how", ["merge", "apply"])
@pytest.mark.parametrize("metrics", [False, True], ids=["deny-all", "with-rules"])
def test_an_allow_all_rule_added_to_the_network_policy_is_removed(
    cluster: Cluster, ns: str, how: str, metrics: bool
) -> None:
    kube = cluster.kube
    kube.apply(service("api", ns, monitoring={"metrics": {"enabled": metrics}}))
    wait_ready(kube, ns, "api")
    policy = kube.get("NetworkPolicy", ns, "api")
    assert policy is not None
    rules = policy["spec"].get("ingress") or []
    assert {} not in rules and len(rules) == int(metrics)

    if how == "merge":
        kube.merge_patch("NetworkPolicy", ns, "api", {"spec": {"ingress": [*rules, {}]}})
    else:
        body = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "api", "namespace": ns},
        }
        kube.apply({**body, **ALLOW_ALL}, manager="intruder")

    wait_for(
        lambda: (
            (p := kube.get("NetworkPolicy", ns, "api"))
            and (p["spec"].get("ingress") or []) == rules
        ),
        what="the NetworkPolicy's own rules back",
    )
    wait_for(lambda: _events(kube, ns, "DriftCorrected"), what="DriftCorrected event")
    assert_steady(cluster, ns)
