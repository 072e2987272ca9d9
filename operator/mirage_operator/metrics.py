"""The operator's own Prometheus metrics, and the HTTP endpoint that serves them.

Every metric the operator exports is declared here, on one registry, so that the names are
found in one place (and the Grafana dashboard for the operator can be checked against them).
Labels never carry secret values: only kinds, results, engines, codes and namespaces.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

from mirage_operator import __version__
from mirage_operator.errors import StartupError

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILES = Counter(
    "mirage_reconciles",
    "Reconciliations by kind and result (success, invalid, retry, error).",
    ["kind", "result"],
    registry=REGISTRY,
)
RECONCILE_DURATION = Histogram(
    "mirage_reconcile_duration_seconds",
    "Time spent reconciling one custom resource.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
RESYNCS = Counter(
    "mirage_resyncs",
    "Periodic resyncs by kind and result: unchanged (nothing the object or its children say "
    "changed since the last successful reconcile: no work, no API call) or reconciled.",
    ["kind", "result"],
    registry=REGISTRY,
)
CHILDREN_APPLIED = Counter(
    "mirage_children_applied",
    "Child objects written with server-side apply, by child kind.",
    ["kind"],
    registry=REGISTRY,
)
CHILDREN_DELETED = Counter(
    "mirage_children_deleted",
    "Child objects deleted because the spec no longer asks for them, by child kind.",
    ["kind"],
    registry=REGISTRY,
)
DRIFT_CORRECTIONS = Counter(
    "mirage_drift_corrections",
    "Child objects restored after someone else edited or deleted them, by child kind.",
    ["kind"],
    registry=REGISTRY,
)
API_ERRORS = Counter(
    "mirage_kubernetes_api_errors",
    "Errors answered by the Kubernetes API, by HTTP status code (0 = no answer).",
    ["code"],
    registry=REGISTRY,
)
MANAGED_OBJECTS = Gauge(
    "mirage_managed_objects",
    "Custom resources currently managed, by kind.",
    ["kind"],
    registry=REGISTRY,
)
VAULT_LOGINS = Counter(
    "mirage_vault_logins",
    "Vault logins by tenant namespace (empty in operator auth mode) and result.",
    ["namespace", "result"],
    registry=REGISTRY,
)
VAULT_READS = Counter(
    "mirage_vault_reads",
    "Reads of secrets from Vault by engine and outcome (success, denied, not_found, "
    "unavailable, not_allowed, error).",
    ["engine", "outcome"],
    registry=REGISTRY,
)
VAULT_REQUEST_DURATION = Histogram(
    "mirage_vault_request_duration_seconds",
    "Latency of Vault requests by operation (login, renew_token, read, renew_lease, ...).",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
VAULT_TOKEN_RENEWALS = Counter(
    "mirage_vault_token_renewals",
    "Renewals of cached Vault tokens by result (renewed, failed).",
    ["result"],
    registry=REGISTRY,
)
VAULT_LEASE_RENEWALS = Counter(
    "mirage_vault_lease_renewals",
    "Dynamic-secret lease actions by result (renewed, rotated, failed, revoked).",
    ["result"],
    registry=REGISTRY,
)
VAULT_TOKENS_CACHED = Gauge(
    "mirage_vault_tokens_cached",
    "Vault tokens currently cached (one per tenant namespace, or one in operator mode).",
    registry=REGISTRY,
)
ROLLOUT_RESTARTS = Counter(
    "mirage_rollout_restarts",
    "Workloads restarted (pod-template annotation) because a synced Secret's data changed, "
    "by workload kind.",
    ["kind"],
    registry=REGISTRY,
)
LEADER = Gauge(
    "mirage_leader",
    "1 while this process holds the leader election Lease (and reconciles), else 0.",
    registry=REGISTRY,
)
LEADER_ELECTION_ERRORS = Counter(
    "mirage_leader_election_errors",
    "Failed Lease reads and writes, by HTTP status (409: another candidate wrote first).",
    ["code"],
    registry=REGISTRY,
)
UNOWNED_NAMESPACES = Gauge(
    "mirage_unowned_namespace",
    "1 for each namespace holding Mirage resources that no shard owns (nothing reconciles them).",
    ["namespace"],
    registry=REGISTRY,
)
BUILD_INFO = Info("mirage_build", "Version of the running operator.", registry=REGISTRY)
BUILD_INFO.info({"version": __version__})


_managed: dict[str, set[str]] = {}


def track_managed(kind: str, uid: str, *, present: bool) -> None:
    """Count a custom resource in (or out of) ``mirage_managed_objects``, once per uid."""
    uids = _managed.setdefault(kind, set())
    if present:
        uids.add(uid)
    else:
        uids.discard(uid)
    MANAGED_OBJECTS.labels(kind=kind).set(len(uids))


@contextmanager
def time_reconcile(kind: str) -> Iterator[None]:
    """Observe the duration of the enclosed reconciliation."""
    start = time.perf_counter()
    try:
        yield
    finally:
        RECONCILE_DURATION.labels(kind=kind).observe(time.perf_counter() - start)


async def _metrics(_: web.Request) -> web.Response:
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


async def start_metrics_server(port: int, host: str = "0.0.0.0") -> web.AppRunner:  # noqa: S104
    """Serve ``/metrics`` and ``/healthz`` on ``host:port`` (port 0: any free one, see
    ``runner.addresses``); the caller cleans the runner up.

    Raises :class:`StartupError` when it cannot listen there (the port is busy, ...).
    """
    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise StartupError.listening("metrics endpoint", host, port, exc) from None
    return runner
