"""What the operator costs the API server, counted from the emulator's request log (issue 10):
children are read from watches (no LIST or GET in a reconcile), a cold start writes each child
once and each object's status once and posts no Event, kopf writes nothing on the objects, and
a resync at rest calls nothing. Emulator only: a real cluster keeps no request log."""

from __future__ import annotations

import collections
import time

import pytest

from mirage_operator.render.meta import MANAGED_BY, MANAGED_BY_LABEL
from tests.e2e.conftest import Cluster, service, wait_ready
from tests.e2e.helpers import CHILDREN, OPERATOR_AGENTS, assert_steady, wait_object_resyncs
from tests.e2e.kube import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

SERVICES = 3
SLO = {"name": "avail", "objective": 99.9, "sli": {"preset": {"type": "http-availability"}}}


def _calls(cluster: Cluster, ns: str, since: float) -> collections.Counter[tuple[str, str, str]]:
    """(verb, resource, subresource) → calls the operator (and kopf) made in ``ns``."""
    emulator = cluster.require_emulator()
    return collections.Counter(
        (str(r.verb), str(r.resource), r.subresource)
        for r in emulator.requests
        if r.time >= since and r.namespace == ns and r.user_agent.startswith(OPERATOR_AGENTS)
    )


def _services_ready(cluster: Cluster, ns: str) -> None:
    """``SERVICES`` MirageServices in ``ns``, each Ready."""
    for i in range(SERVICES):
        cluster.kube.apply(service(f"svc{i}", ns))
    for i in range(SERVICES):
        wait_ready(cluster.kube, ns, f"svc{i}")


def _services_at_rest(cluster: Cluster, ns: str) -> None:
    """Ready, and past the writes of getting there."""
    _services_ready(cluster, ns)
    assert_steady(cluster, ns)


@pytest.mark.parametrize("change", ["create", "update"])
def test_a_reconcile_reads_nothing_and_writes_the_minimum(
    cluster: Cluster, ns: str, change: str
) -> None:
    names = [f"svc{i}" for i in range(SERVICES)]
    slos = {"monitoring": {"slos": [SLO]}}
    if change == "update":
        for name in names:
            cluster.kube.apply(service(name, ns, **slos))
        for name in names:
            wait_ready(cluster.kube, ns, name)
        assert_steady(cluster, ns)
    start = time.time()
    for name in names:
        cluster.kube.apply(service(name, ns, image=f"registry.example/app:{change}", **slos))
    for name in names:
        wait_ready(cluster.kube, ns, name)
    assert_steady(cluster, ns)
    calls = _calls(cluster, ns, start)
    assert not [c for c in calls if c[0] in ("get", "list", "watch")], calls
    # kopf keeps no finalizer, progress or diff-base on a MirageService: no write of its own.
    assert calls[("patch", "mirageservices", "")] == 0, calls
    # The minimum: one apply per child that changes (on create all of them, the SLO's own
    # included; on update the Deployment) and one status write per object that changes (the
    # first status waits for the Deployment's rollout and the SLO's report).
    if change == "create":
        changed = (*CHILDREN, "ServiceLevelObjective", "PrometheusRule", "ConfigMap")
        reported = ("mirageservices", "servicelevelobjectives")
    else:
        changed, reported = ("Deployment",), ("mirageservices",)
    for kind in changed:
        plural = {"PodDisruptionBudget": "poddisruptionbudgets", "NetworkPolicy": "networkpolicies"}
        resource = plural.get(kind, kind.lower() + "s")
        assert calls[("patch", resource, "")] == SERVICES, (kind, calls)
    for resource in reported:
        assert calls[("patch", resource, "status")] == SERVICES, (resource, calls)
    # Events: a creation is told by status, not by an Event; a change by one `Applied` Event.
    events = calls[("create", "events", "")]
    assert events == (0 if change == "create" else SERVICES), calls
    writes = sum(n for (verb, _, _), n in calls.items() if verb != "get")
    assert writes == SERVICES * (len(changed) + len(reported)) + events, calls


def test_a_cold_start_with_secrets_gets_nothing_and_writes_the_minimum(
    cluster: Cluster, tenant: str
) -> None:
    """A new service with two Vault secrets: no GET that answers 404 (no Secret is read
    before it exists: the watch of the Secrets Mirage labels says none does, and the create
    would fail on a name taken; docs/adr/0126), and one write per object and per status."""
    emulator, vault = cluster.require_emulator(), cluster.require_vault()
    names = ("s0", "s1")
    for secret in names:
        vault.put(f"{tenant}/web/{secret}", {"password": "p"})
    start = time.time()
    secrets = [{"name": n, "vault": {"path": f"{tenant}/web/{n}"}} for n in names]
    cluster.kube.apply(service("web", tenant, secrets=secrets))
    wait_ready(cluster.kube, tenant, "web")
    for secret in names:
        wait_ready(cluster.kube, tenant, f"web-{secret}", kind="VaultSecret")
    assert_steady(cluster, tenant, resource="secrets", verb="get")
    not_found = [
        f"{r.method} {r.path}"
        for r in emulator.requests
        if r.time >= start
        and r.status == 404
        and r.namespace == tenant
        and r.user_agent.startswith(OPERATOR_AGENTS)
    ]
    assert not_found == []
    calls = _calls(cluster, tenant, start)
    # Reads: only the Secrets that exist, by the VaultSecrets' resyncs (their data is not
    # cached), never a LIST.
    assert {c for c in calls if c[0] in ("get", "list")} <= {("get", "secrets", "")}, calls
    for kind in CHILDREN:
        plural = {"PodDisruptionBudget": "poddisruptionbudgets", "NetworkPolicy": "networkpolicies"}
        assert calls[("patch", plural.get(kind, kind.lower() + "s"), "")] == 1, (kind, calls)
    assert calls[("patch", "vaultsecrets", "")] == len(names), calls
    assert calls[("create", "secrets", "")] == len(names), calls  # created, not read first
    assert calls[("patch", "secrets", "")] == 0, calls
    assert calls[("patch", "vaultsecrets", "status")] == len(names), calls
    # The service's first status may be written before Ready: after STATUS_DEFERRAL, while
    # its Deployment waits for the secrets (docs/adr/0020).
    assert 1 <= calls[("patch", "mirageservices", "status")] <= 2, calls
    assert calls[("patch", "mirageservices", "")] == 0, calls


def test_the_operator_watches_only_the_secrets_mirage_labels(cluster: Cluster) -> None:
    """The API server filters the operator's watch of Secrets (and the listing that starts
    it) by Mirage's label: no other Secret, nor its data, reaches the operator."""
    emulator = cluster.require_emulator()
    start = time.time()
    assert emulator.drop_watches()

    def secret_streams() -> list[dict[str, str]]:
        return [
            r.query
            for r in emulator.requests
            if r.time >= start
            and r.resource == "secrets"
            and r.verb in ("watch", "list")
            and r.user_agent.startswith(OPERATOR_AGENTS)
        ]

    wait_for(secret_streams, what="the watch of Secrets resumed")
    selector = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
    assert all(query.get("labelSelector") == selector for query in secret_streams())


def test_resyncs_at_rest_call_nothing(cluster: Cluster, ns: str) -> None:
    _services_at_rest(cluster, ns)
    start = time.time()
    wait_object_resyncs(cluster, count=3)
    assert _calls(cluster, ns, start) == {}


def test_a_restarted_watch_lists_each_child_kind_once(cluster: Cluster, ns: str) -> None:
    """A child deleted while the watches were being restarted gets no DELETED event; the
    operator lists each child kind once to find it, not once per reconcile."""
    emulator = cluster.require_emulator()
    _services_ready(cluster, ns)
    start = time.time()
    emulator.expire_resource_versions()
    cluster.kube.delete("Service", ns, "svc0")
    wait_for(lambda: cluster.kube.get("Service", ns, "svc0"), what="Service svc0 restored")
    assert_steady(cluster, ns)
    lists = collections.Counter(
        r.resource
        for r in emulator.requests
        if r.time >= start and r.verb == "list" and r.user_agent.startswith("mirage-operator")
    )
    assert lists and max(lists.values()) <= 2, lists  # one repair (two if watches lag)


def test_watches_ending_at_rest_resume_without_a_listing(cluster: Cluster, ns: str) -> None:
    """A watch stream ends every few minutes (its timeout, a load balancer, an API server
    restart): kopf resumes it from the last resourceVersion it saw (a bookmark at rest), so
    the operator at rest makes no LIST and no write anywhere — counted cluster-wide, where
    kopf's own listings go, not only in the test's namespace (docs/adr/0026)."""
    emulator = cluster.require_emulator()
    _services_at_rest(cluster, ns)
    start = time.time()
    dropped = emulator.drop_watches()
    assert dropped

    def operator_calls(verbs: tuple[str, ...]) -> list[str]:
        return [
            f"{r.verb} {r.resource} {r.namespace}"
            for r in emulator.requests
            if r.time >= start
            and r.verb in verbs
            and r.namespace in (None, ns)
            and r.user_agent.startswith(OPERATOR_AGENTS)
        ]

    wait_for(lambda: len(operator_calls(("watch",))) >= dropped, what="every watch resumed")
    wait_object_resyncs(cluster, count=2)
    assert operator_calls(("list", "get", "create", "update", "patch", "delete")) == []
