"""Assertions the e2e tests share: steady state measured from the emulator's request log."""

from __future__ import annotations

import time

from mirage_operator.sandbox.apiserver.server import APIServer
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


def assert_steady(
    cluster: Cluster,
    namespace: str,
    *,
    timeout: float = 60,
    resource: str = "deployments",
    verb: str = "list",
) -> None:
    """The operator reaches a steady state that costs nothing: a window of two full resyncs of
    ``namespace`` with no write call at all. Retries still pending (kopf backs off for seconds
    after an error) may delay it; writes that never stop fail the test."""
    emulator = cluster.require_emulator()
    deadline = time.monotonic() + timeout
    while True:
        start = time.time()
        wait_resyncs(emulator, namespace, start, count=2, resource=resource, verb=verb)
        writes = operator_writes(emulator, namespace, start)
        if not writes:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"operator still writing in steady state: {writes}")
