"""The operator's own /metrics and /healthz, scraped while it works."""

from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Cluster, service, wait_ready
from tests.e2e.kube import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def scrape(cluster: Cluster) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the operator's /metrics, by name and sorted labels."""
    text = requests.get(f"http://127.0.0.1:{cluster.operator.metrics_port}/metrics", timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_healthz_answers(cluster: Cluster) -> None:
    answer = wait_for(
        lambda: _get(f"http://127.0.0.1:{cluster.operator.metrics_port}/healthz"),
        what="metrics endpoint up",
    )
    assert answer.text == "ok"


def _get(url: str) -> requests.Response | None:
    try:
        response = requests.get(url, timeout=5)
    except requests.ConnectionError:
        return None
    return response if response.ok else None


def test_counters_move_as_the_operator_works(cluster: Cluster, ns: str) -> None:
    wait_for(
        lambda: _get(f"http://127.0.0.1:{cluster.operator.metrics_port}/metrics"),
        what="metrics endpoint up",
    )
    before = scrape(cluster)
    cluster.kube.apply(service("api", ns))
    wait_ready(cluster.kube, ns, "api")
    cluster.kube.delete("Deployment", ns, "api")
    wait_for(
        lambda: (
            value(scrape(cluster), "mirage_drift_corrections_total", kind="Deployment")
            > value(before, "mirage_drift_corrections_total", kind="Deployment")
        ),
        what="drift correction counted",
    )
    after = scrape(cluster)
    success = ("mirage_reconciles_total", {"kind": "MirageService", "result": "success"})
    assert value(after, success[0], **success[1]) > value(before, success[0], **success[1])
    for kind in ("ServiceAccount", "Deployment", "Service"):
        assert value(after, "mirage_children_applied_total", kind=kind) > value(
            before, "mirage_children_applied_total", kind=kind
        )
    assert value(after, "mirage_reconcile_duration_seconds_count", kind="MirageService") > value(
        before, "mirage_reconcile_duration_seconds_count", kind="MirageService"
    )
    assert value(after, "mirage_managed_objects", kind="MirageService") >= 1
    assert any(name == "mirage_build_info" for name, _ in after)
