"""Services spread over several namespaces, applied at once, each with an SLO: every parent
becomes Ready once its SLO is (the benchmark's spread run left 992 of 1,000 parents saying
their SLO was Pending while most SLOs were Ready)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Cluster, service, wait_ready

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

NAMESPACES = 6
PER_NAMESPACE = 3
SLO = {
    "name": "availability",
    "objective": 99.9,
    "window": "30d",
    "sli": {"preset": {"type": "http-availability", "selector": {"service": "app"}}},
}


def test_parents_in_many_namespaces_become_ready_with_their_slos(cluster: Cluster) -> None:
    namespaces = [cluster.namespace() for _ in range(NAMESPACES)]
    names = [(ns, f"svc{i}") for i in range(PER_NAMESPACE) for ns in namespaces]
    for ns, name in names:
        cluster.kube.apply(service(name, ns, monitoring={"slos": [SLO]}))
    for ns, name in names:
        wait_ready(
            cluster.kube, ns, f"{name}-availability", kind="ServiceLevelObjective", timeout=60
        )
    for ns, name in names:
        wait_ready(cluster.kube, ns, name, timeout=60)
