"""The benchmark's minimum of writes per service (benchmarks/workload.py): what a cold start
cannot do with less, from the objects ``mirage render`` makes."""

from __future__ import annotations

import collections

import pytest

from benchmarks import workload


@pytest.mark.parametrize("secrets", [0, 1, 2, 5])
def test_the_minimum_counts_each_object_once_and_each_status_once(secrets: int) -> None:
    body = workload.service(0, namespace="bench", secrets=secrets)
    kinds = collections.Counter(obj["kind"] for obj in workload.rendered(body))
    # Every VaultSecret has its Secret among the rendered objects (a preview of it).
    assert kinds["VaultSecret"] == kinds["Secret"] == secrets
    assert kinds["ServiceLevelObjective"] == 1
    applies = sum(kinds.values())
    statuses = 1 + kinds["ServiceLevelObjective"] + kinds["VaultSecret"]
    assert workload.minimum_writes(body) == applies + statuses
    # The services without secrets keep their minimum (11 children, 2 statuses); each
    # secret adds its VaultSecret, its Secret and the VaultSecret's status.
    assert workload.minimum_writes(body) == 13 + 3 * secrets
