"""kopf's finalizer only where there is cleanup to do (issue 9 item 13): a MirageService or
an SLO carries none, so deleting one while the operator is stopped does not hang, and a
finalizer an earlier version left is taken off. (A VaultSecret of the database engine keeps
one to revoke its lease: tests/unit/handlers/test_vaultsecret_handler.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Cluster, service, wait_ready
from tests.e2e.kube import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-workload")]

KOPF_FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"


def _slo(name: str, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "mirage.dev/v1alpha1",
        "kind": "ServiceLevelObjective",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "service": "api",
            "objective": 99.9,
            "sli": {"preset": {"type": "http-availability"}},
        },
    }


OBJECTS = {"MirageService": service, "ServiceLevelObjective": _slo}


@pytest.mark.parametrize("kind", sorted(OBJECTS))
def test_deleting_while_the_operator_is_stopped_does_not_hang(
    cluster: Cluster, ns: str, kind: str
) -> None:
    kube = cluster.kube
    kube.apply(OBJECTS[kind]("api", ns))
    body = wait_ready(kube, ns, "api", kind=kind)
    assert not body["metadata"].get("finalizers")
    cluster.operator.stop()
    try:
        kube.delete(kind, ns, "api")
        wait_for(lambda: kube.get(kind, ns, "api") is None, what=f"{kind} gone")
    finally:
        cluster.operator.start()


@pytest.mark.parametrize("kind", sorted(OBJECTS))
def test_a_finalizer_left_by_an_earlier_version_is_taken_off(
    cluster: Cluster, ns: str, kind: str
) -> None:
    kube = cluster.kube
    body = OBJECTS[kind]("api", ns)
    body["metadata"]["finalizers"] = [KOPF_FINALIZER]
    kube.apply(body)
    wait_ready(kube, ns, "api", kind=kind)
    wait_for(
        lambda: not (kube.get(kind, ns, "api") or {}).get("metadata", {}).get("finalizers"),
        what="kopf's finalizer removed",
    )
    kube.delete(kind, ns, "api")
    wait_for(lambda: kube.get(kind, ns, "api") is None, what=f"{kind} gone")
