"""Assertions the e2e tests share: steady state measured from the emulator's request log."""

from __future__ import annotations

import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from mirage_sandbox.apiserver.server import APIServer
from tests.e2e.conftest import Cluster
from tests.e2e.kube import wait_for

CHILDREN = (
    "ServiceAccount",
    "Deployment",
    "Service",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "ServiceMonitor",
)
OPERATOR_AGENTS = ("mirage-operator", "kopf")


def operator_writes(emulator: APIServer, namespace: str, since: float) -> list[str]:
    """Write calls the operator made in ``namespace`` since ``since`` (method, path, status)."""
    return [
        f"{r.method} {r.path} -> {r.status}"
        for r in emulator.write_calls(namespace=namespace, since=since)
        if r.user_agent.startswith(OPERATOR_AGENTS)
    ]


def wait_resyncs(
    emulator: APIServer,
    namespace: str,
    since: float,
    count: int = 2,
    *,
    resource: str = "deployments",
    verb: str = "list",
) -> None:
    """Wait until the operator has reconciled ``namespace`` ``count`` more times: each full
    reconcile of a MirageService lists its Deployments once (the default), each reconcile of
    a VaultSecret gets its Secret (``resource="secrets", verb="get"``)."""

    def reconciles() -> bool:
        calls = [
            r
            for r in emulator.requests
            if r.time >= since
            and r.verb == verb
            and r.resource == resource
            and r.namespace == namespace
        ]
        return len(calls) >= count

    wait_for(reconciles, timeout=30, what=f"{count} resyncs of {namespace}")


def passes(cluster: Cluster, kind: str) -> float:
    """How many times the operator has gone over a ``kind`` object (its /metrics): periodic
    resyncs plus successful reconciles. An object whose secrets refresh more often than the
    resync interval is reconciled on that clock and never resyncs."""
    url = f"http://127.0.0.1:{cluster.operator.metrics_port}/metrics"
    answers: list[requests.Response] = []

    def answered() -> bool:
        # A restarted operator serves /metrics once its startup ran: the objects may all be
        # Ready (converged by the process before it) sooner than that.
        try:
            answers.append(requests.get(url, timeout=5))
        except requests.ConnectionError:
            return False
        return True

    wait_for(answered, timeout=30, what="the operator's /metrics")
    text = answers[-1]
    return sum(
        sample.value
        for family in text_string_to_metric_families(text.text)
        for sample in family.samples
        if sample.labels.get("kind") == kind
        and (
            sample.name == "mirage_resyncs_total"
            or (sample.name == "mirage_reconciles_total" and sample.labels["result"] == "success")
        )
    )


def wait_object_resyncs(cluster: Cluster, count: int = 2, kind: str = "MirageService") -> None:
    """Wait until the operator has gone over every ``kind`` object ``count`` more times (on
    average: :func:`passes` grows by ``count`` times the objects of that kind). A resync of an
    unchanged MirageService makes no API call, so the request log cannot show it. Only Ready
    objects count: one another test left failing waits in backoff, not on the resync timer."""
    objects = sum(
        1
        for item in cluster.kube.list(kind)
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (item.get("status") or {}).get("conditions") or ()
        )
    )
    start = passes(cluster, kind)
    wait_for(
        lambda: passes(cluster, kind) >= start + count * max(objects, 1),
        timeout=30,
        what=f"{count} resyncs of every {kind}",
    )


def operator_reads(emulator: APIServer, namespace: str, since: float) -> list[str]:
    """Read calls (get, list) the operator made in ``namespace`` since ``since``."""
    return [
        f"{r.method} {r.path} -> {r.status}"
        for r in emulator.requests
        if r.time >= since
        and r.namespace == namespace
        and r.verb in ("get", "list")
        and r.user_agent.startswith(OPERATOR_AGENTS)
    ]


def assert_steady(
    cluster: Cluster,
    namespace: str,
    *,
    timeout: float = 60,
    resource: str | None = None,
    verb: str = "list",
) -> None:
    """The operator reaches a steady state that costs nothing: a window of two full resyncs of
    ``namespace`` with no write call at all — and, for MirageServices (no ``resource``), no
    read either (a resync is a dictionary lookup). Retries still pending (backoff after an
    error) may delay it; writes that never stop fail the test."""
    emulator = cluster.require_emulator()
    deadline = time.monotonic() + timeout
    while True:
        start = time.time()
        if resource is None:
            wait_object_resyncs(cluster, count=2)
        else:
            wait_resyncs(emulator, namespace, start, count=2, resource=resource, verb=verb)
        writes = operator_writes(emulator, namespace, start)
        if resource is None:
            writes += operator_reads(emulator, namespace, start)
        if not writes:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"operator still writing in steady state: {writes}")
