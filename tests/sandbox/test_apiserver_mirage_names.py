"""The emulated API server refuses what a real one refuses in Mirage resources and children:
a MirageService whose name cannot name its Service, bad label keys, Service names that are
not DNS-1035 labels (issue 9 item 10)."""

from __future__ import annotations

from typing import Any

import pytest

from mirage_operator.crds import load_crds
from tests.sandbox.conftest import CM, Kube

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
SERVICES = "/apis/mirage.dev/v1alpha1/namespaces/default/mirageservices"


async def _install(kube: Kube) -> None:
    for crd in load_crds():
        assert (await kube.post(CRDS, crd)).status == 201


def _service(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mirage.dev/v1alpha1",
        "kind": "MirageService",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"image": "registry.example/app:1", **spec},
    }


@pytest.mark.parametrize(
    ("name", "spec", "words"),
    [
        ("a.b", {}, "metadata.name must be a DNS-1035 label"),
        ("1api", {}, "metadata.name must be a DNS-1035 label"),
        ("api", {"rollout": {"maxSurge": -5}}, "spec.rollout.maxSurge"),
        ("api", {"rollout": {"maxUnavailable": "150%"}}, "must not be greater than 100%"),
        ("api", {"config": {"data": {"a/b": "x"}}}, "spec.config.data"),
        (
            "api",
            {
                "monitoring": {
                    "slos": [
                        {
                            "name": "x",
                            "objective": 99,
                            "window": "30d\n",
                            "sli": {"preset": {"type": "http-availability"}},
                        }
                    ]
                }
            },
            "spec.monitoring.slos[0].window",
        ),
    ],
)
async def test_mirageservice_refused_before_anything_exists(
    kube: Kube, name: str, spec: dict[str, Any], words: str
) -> None:
    await _install(kube)
    answer = await kube.post(SERVICES, _service(name, **spec))
    assert answer.status == 422, answer.body
    assert words in answer.body["message"]


async def test_mirageservice_that_fits_is_created(kube: Kube) -> None:
    await _install(kube)
    answer = await kube.post(SERVICES, _service("a" * 63, rollout={"maxSurge": 0}))
    assert answer.status == 201, answer.body


@pytest.mark.parametrize(
    ("labels", "words"),
    [
        ({"bad key!": "x"}, "name part must consist of alphanumeric characters"),
        ({"-bad": "x"}, "name part must consist"),
        ({"a": "has space"}, "a valid label must be an empty string"),
        ({"a": "x" * 64}, "must be no more than 63 characters"),
    ],
)
async def test_labels_are_checked_as_a_real_api_server_does(
    kube: Kube, labels: dict[str, str], words: str
) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": labels}}
    answer = await kube.post(CM, body)
    assert answer.status == 422 and words in answer.body["message"]


async def test_service_names_are_dns1035_labels(kube: Kube) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "1abc"},
        "spec": {"ports": [{"port": 80}]},
    }
    answer = await kube.post("/api/v1/namespaces/default/services", body)
    assert answer.status == 422 and "DNS-1035" in answer.body["message"]
