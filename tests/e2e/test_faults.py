"""Injected API faults: the operator converges afterwards, nothing lost or duplicated, and
then writes nothing. Emulator only (a real cluster cannot be told to fail on cue)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mirage_sandbox.apiserver.server import APIServer
from tests.e2e.conftest import Cluster, service, wait_ready
from tests.e2e.helpers import CHILDREN, assert_steady
from tests.e2e.kube import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-workload")]


def _image(cluster: Cluster, ns: str, name: str) -> str | None:
    deployment = cluster.kube.get("Deployment", ns, name)
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"] if deployment else None


def _assert_converged_once(cluster: Cluster, ns: str, name: str, image: str) -> None:
    wait_for(lambda: _image(cluster, ns, name) == image, what=f"image {image}")
    wait_ready(cluster.kube, ns, name, timeout=45)
    for kind in CHILDREN:
        # A child deleted while the watches were down is restored once the operator's own
        # listing after the restarted watch has found it missing.
        wait_for(
            lambda kind=kind: (
                [
                    o["metadata"]["name"]
                    for o in cluster.kube.list(
                        kind, ns, selector="app.kubernetes.io/managed-by=mirage-operator"
                    )
                ]
                == [name]
            ),
            what=f"exactly one {kind} {name}",
        )
    assert_steady(cluster, ns)


@pytest.mark.parametrize("code", [409, 429, 500, 503])
@pytest.mark.parametrize("verb, resource", [("patch", "deployments")])
def test_failing_child_calls_are_retried(
    cluster: Cluster, ns: str, code: int, verb: str, resource: str
) -> None:
    api = cluster.require_emulator()
    cluster.kube.apply(service("api", ns))
    wait_ready(cluster.kube, ns, "api")
    rule = api.fail(verb, resource, namespace=ns, code=code, times=3, retry_after=1)
    cluster.kube.apply(service("api", ns, image="registry.example/app:2.0.0"))
    _assert_converged_once(cluster, ns, "api", "registry.example/app:2.0.0")
    assert rule.hits == 3


@pytest.mark.parametrize("code", [409, 500, 503])
def test_failing_status_writes_are_retried(cluster: Cluster, ns: str, code: int) -> None:
    api = cluster.require_emulator()
    rule = api.fail(
        "patch", "mirageservices", namespace=ns, subresource="status", code=code, times=2
    )
    cluster.kube.apply(service("api", ns))
    _assert_converged_once(cluster, ns, "api", "registry.example/app:1.0.0")
    assert rule.hits == 2


FAULTS: dict[str, Callable[[APIServer], Any]] = {
    "drop-watches": lambda api: api.drop_watches(),
    "stall-watches": lambda api: api.stall_watches(4.0),
    "expire-resource-versions": lambda api: api.expire_resource_versions(),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_watch_faults_do_not_lose_changes(cluster: Cluster, ns: str, fault: str) -> None:
    api = cluster.require_emulator()
    cluster.kube.apply(service("api", ns))
    wait_ready(cluster.kube, ns, "api")
    FAULTS[fault](api)
    cluster.kube.apply(service("api", ns, image="registry.example/app:3.0.0"))
    cluster.kube.delete("Service", ns, "api")
    _assert_converged_once(cluster, ns, "api", "registry.example/app:3.0.0")
    assert cluster.kube.get("Service", ns, "api") is not None
