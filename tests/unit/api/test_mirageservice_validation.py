"""The shared validator on MirageServices: valid inputs pass, each invalid one names its field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mirage_operator.api.validation import admit, problems_of
from mirage_operator.errors import InvalidSpecError
from tests.unit.factories import service_body


def _problems(body: dict[str, Any]) -> list[str]:
    return [str(p) for p in problems_of(body)[1]]


def test_defaults_are_applied() -> None:
    spec = admit(service_body())["spec"]
    assert spec["replicas"] == 2
    assert spec["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert spec["probes"]["liveness"]["path"] == "/healthz"
    assert spec["monitoring"]["metrics"]["path"] == "/metrics"
    assert spec["securityContext"]["runAsUser"] == 10001


def _without_image() -> dict[str, Any]:
    body = service_body()
    del body["spec"]["image"]
    return body


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (_without_image(), "spec.image", "Required value"),
        (service_body(replicas="three"), "spec.replicas", "integer"),
        (service_body(replicas=-1), "spec.replicas", "greater than or equal to 0"),
        (service_body(image=""), "spec.image", ""),
        (service_body(imagePullPolicy="Sometimes"), "spec.imagePullPolicy", "Unsupported value"),
        (service_body(bogus=1), "spec.bogus", "Unknown field"),
        (service_body(ports=[{"name": "http", "port": 70000}]), "spec.ports[0].port", "65535"),
        (
            service_body(ports=[{"name": "http", "port": 80}, {"name": "http", "port": 81}]),
            "spec.ports[1]",
            "Duplicate value",
        ),
        (
            service_body(
                autoscaling={"minReplicas": 5, "maxReplicas": 2, "targetCPUUtilization": 50}
            ),
            "spec.autoscaling.minReplicas",
            "must be less than or equal to maxReplicas",
        ),
        (
            service_body(autoscaling={"maxReplicas": 2}),
            "spec.autoscaling",
            "targetCPUUtilization",
        ),
        (
            service_body(disruption={"minAvailable": 1, "maxUnavailable": 1}),
            "spec.disruption",
            "at most one",
        ),
        (service_body(ingress={"host": "Not A Host"}), "spec.ingress.host", ""),
        (
            service_body(ingress={"host": "a.example.com", "port": "nope"}),
            "spec.ingress.port",
            "no port",
        ),
        (
            service_body(monitoring={"metrics": {"interval": "10s", "scrapeTimeout": "30s"}}),
            "spec.monitoring.metrics.scrapeTimeout",
            "must not exceed",
        ),
        (
            service_body(
                secrets=[
                    {"name": "a", "vault": {"path": "x"}},
                    {"name": "a", "vault": {"path": "y"}},
                ]
            ),
            "spec.secrets[1]",
            "Duplicate value",
        ),
        (
            service_body(
                secrets=[{"name": "a", "vault": {"path": "x"}, "expose": {"mode": "files"}}]
            ),
            "spec.secrets[0].expose.mountPath",
            "mountPath is required",
        ),
        (
            service_body(
                env=[{"name": "TOKEN", "value": "x"}],
                secrets=[
                    {
                        "name": "a",
                        "vault": {"path": "x"},
                        "expose": {"env": [{"key": "t", "name": "TOKEN"}]},
                    }
                ],
            ),
            "spec.secrets[0].expose.env[0].name",
            "also set in spec.env",
        ),
        (
            service_body(secrets=[{"name": "a", "vault": {"path": "x", "engine": "vault-kv"}}]),
            "spec.secrets[0].vault.engine",
            "Unsupported value",
        ),
        (
            service_body(
                monitoring={
                    "slos": [
                        {
                            "name": "a",
                            "objective": 120,
                            "sli": {"preset": {"type": "http-availability"}},
                        }
                    ]
                }
            ),
            "spec.monitoring.slos[0].objective",
            "",
        ),
        (
            service_body(monitoring={"alerts": [{"alert": "A", "record": "b", "expr": "up"}]}),
            "spec.monitoring.alerts[0]",
            "exactly one of alert and record",
        ),
        (
            {**service_body(), "metadata": {"name": "x" * 64, "namespace": "a"}},
            "metadata.name",
            "no more than 63",
        ),
        ({**service_body(), "apiVersion": "mirage.dev/v9"}, "apiVersion", "Unsupported value"),
        ({**service_body(), "kind": "MirageThing"}, "kind", "Unsupported value"),
    ],
)
def test_invalid_input_is_rejected_naming_the_field(
    body: dict[str, Any], field: str, reason: str
) -> None:
    problems = _problems(body)
    matching = [p for p in problems if p.startswith(f"{field}:") and reason in p]
    assert matching, problems
    with pytest.raises(InvalidSpecError) as raised:
        admit(body)
    assert any(field == p.field for p in raised.value.problems)


def test_admit_leaves_its_input_alone() -> None:
    body = service_body(bogus=1)
    before = copy.deepcopy(body)
    problems_of(body)
    assert body == before
