"""The MirageService reconciler against an in-memory Kubernetes API: its secrets gate the
Deployment (held back, an existing one kept as it is, until every child VaultSecret has
synced once; WaitingForSecrets meanwhile), their HMACs roll the pods, and a child resource
that is not Ready keeps the service from being Ready."""

from __future__ import annotations

import asyncio
import copy
import itertools
import logging
from typing import Any, cast

import pytest

from mirage_operator.api.mirageservice import MirageServiceSpec
from mirage_operator.config import Config
from mirage_operator.handlers import mirageservice
from mirage_operator.handlers.context import OperatorContext
from mirage_operator.handlers.mirageservice import (
    ServiceReconciler,
    children_state,
    secret_state,
    unobserved,
)
from mirage_operator.render.mirageservice import pod_checksum
from mirage_operator.render.workload import CHECKSUM_ANNOTATION
from tests.unit.handlers.fakes import Connection, FakeKube

LOGGER = logging.getLogger("test")
NS = "shop"
DB = {"name": "db", "vault": {"engine": "database", "path": "shop.api"}}
STRIPE = {"name": "stripe", "vault": {"path": "shop/stripe"}}
_versions = itertools.count(100)


class Service:
    """One MirageService, its reconciler and the fake API server; the tests play the
    VaultSecret and SLO controllers by writing their children's status."""

    def __init__(self, **spec: Any) -> None:
        self.kube = FakeKube()
        self.context = OperatorContext(config=Config(), kube=cast(Any, Connection(self.kube)))
        self.reconciler = ServiceReconciler(self.context)
        self.kube.put(
            {
                "apiVersion": "mirage.dev/v1alpha1",
                "kind": "MirageService",
                "metadata": {"name": "api", "namespace": NS, "uid": "uid-api", "generation": 1},
                "spec": {"image": "registry.example/app:1", **spec},
            }
        )

    @property
    def body(self) -> dict[str, Any]:
        return self.kube.objects[("MirageService", NS, "api")]

    def edit(self, **spec: Any) -> None:
        self.body["spec"].update(spec)
        self.body["metadata"]["generation"] += 1

    async def run(self) -> float:
        outcome = await self.reconciler.run(copy.deepcopy(self.body), LOGGER)
        return outcome.delay

    def report(self, kind: str, name: str, ready: str, reason: str, **status: Any) -> None:
        """The child's own controller reports ``Ready`` for its current generation."""
        child = self.kube.objects[(kind, NS, name)]
        child["metadata"].update(generation=1, resourceVersion=str(next(_versions)))
        conditions = [{"type": "Ready", "status": ready, "reason": reason}]
        child["status"] = {"observedGeneration": 1, "conditions": conditions, **status}
        self.context.children.update(child)

    def synced(self, secret: str, mac: str) -> None:
        self.report("VaultSecret", f"api-{secret}", "True", "SecretSynced", secretMAC=mac)

    def deployment_reported(self, status: dict[str, Any] | None) -> None:
        """A new version of the Deployment (generation 1) reaches the index, with ``status``
        as its controller wrote it (``None``: the controller has not reported yet)."""
        deployment = self.kube.objects[("Deployment", NS, "api")]
        deployment["metadata"].update(generation=1, resourceVersion=str(next(_versions)))
        if status is not None:
            deployment["status"] = status
        self.context.children.update(deployment)

    def rolled_out(self) -> None:
        """The Deployment controller reports every replica of the current spec ready."""
        want = self.kube.objects[("Deployment", NS, "api")]["spec"].get("replicas", 1)
        self.deployment_reported(
            {"observedGeneration": 1, "updatedReplicas": want, "readyReplicas": want}
        )

    def condition(self, type_: str) -> dict[str, Any]:
        conditions = self.body["status"]["conditions"]
        return cast(dict[str, Any], next(c for c in conditions if c["type"] == type_))

    def deployment(self) -> dict[str, Any] | None:
        return self.kube.objects.get(("Deployment", NS, "api"))

    def checksum(self) -> str:
        deployment = self.deployment()
        assert deployment is not None
        return str(deployment["spec"]["template"]["metadata"]["annotations"][CHECKSUM_ANNOTATION])


@pytest.fixture(autouse=True)
def _events(events: list[tuple[str, str]]) -> None:
    """Events are recorded, not posted (the conftest fixture)."""


@pytest.fixture
def no_deferral(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new generation's first status is written at once, not after the children report
    (that deferral is a matter of time: its own test below)."""
    monkeypatch.setattr(mirageservice, "STATUS_DEFERRAL", 0.0)


def _vault_secret(name: str, **status: Any) -> dict[str, Any]:
    return {"kind": "VaultSecret", "metadata": {"name": name}, "status": status}


def test_secret_state_gives_each_synced_secrets_mac_and_names_the_others() -> None:
    spec = MirageServiceSpec.from_spec(
        {"image": "registry.example/app:1", "secrets": [DB, STRIPE, {**STRIPE, "name": "tls"}]}
    )
    observed = {
        ("VaultSecret", "api-db"): _vault_secret("api-db", secretMAC="m-db"),
        ("VaultSecret", "api-stripe"): _vault_secret("api-stripe", secretMAC=""),
        # "tls" has no child yet; another service's child does not count.
        ("VaultSecret", "web-tls"): _vault_secret("web-tls", secretMAC="m-web"),
    }
    assert secret_state(spec, "api", observed) == ({"db": "m-db"}, ["stripe", "tls"])


def test_children_state_names_failing_and_unreported_children_but_not_other_kinds() -> None:
    def child(kind: str, name: str, *, ready: str | None, observed: int = 1) -> dict[str, Any]:
        conditions = [{"type": "Ready", "status": ready, "reason": "Why"}] if ready else []
        status = {"observedGeneration": observed, "conditions": conditions}
        return {"kind": kind, "metadata": {"name": name, "generation": 1}, "status": status}

    observed = {
        ("VaultSecret", "a"): child("VaultSecret", "a", ready="True"),
        ("VaultSecret", "b"): child("VaultSecret", "b", ready="False"),
        ("ServiceLevelObjective", "c"): child("ServiceLevelObjective", "c", ready=None),
        ("ServiceLevelObjective", "d"): child(
            "ServiceLevelObjective", "d", ready="True", observed=0
        ),
        ("Deployment", "e"): child("Deployment", "e", ready="False"),
    }
    failing, settling = children_state(observed)
    assert failing == ["VaultSecret/b (Why)"]
    assert settling == [("ServiceLevelObjective", "c"), ("ServiceLevelObjective", "d")]


@pytest.mark.usefixtures("no_deferral")
async def test_deployment_waits_until_every_secret_has_synced_once() -> None:
    service = Service(secrets=[DB, STRIPE])
    await service.run()
    assert service.deployment() is None
    assert ("VaultSecret", NS, "api-db") in service.kube.objects
    assert ("VaultSecret", NS, "api-stripe") in service.kube.objects
    assert ("Service", NS, "api") in service.kube.objects  # the other children do not wait
    progressing = service.condition("Progressing")
    assert (progressing["status"], progressing["reason"]) == ("True", "WaitingForSecrets")
    assert progressing["message"] == "waiting for Vault secrets to sync: db, stripe"

    # One secret synced, the other failing to read Vault: still no Deployment.
    service.synced("db", "m-db")
    service.report("VaultSecret", "api-stripe", "False", "VaultUnavailable")
    await service.run()
    assert service.deployment() is None
    progressing = service.condition("Progressing")
    assert (progressing["status"], progressing["reason"]) == ("True", "WaitingForSecrets")
    assert progressing["message"] == "waiting for Vault secrets to sync: stripe"
    ready = service.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ChildNotReady")
    assert "VaultSecret/api-stripe (VaultUnavailable)" in ready["message"]

    service.synced("stripe", "m-stripe")
    await service.run()
    spec = MirageServiceSpec.from_spec(service.body["spec"])
    expected = pod_checksum(spec=spec, secret_macs={"db": "m-db", "stripe": "m-stripe"})
    assert service.checksum() == expected
    service.rolled_out()
    await service.run()
    ready = service.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Available")
    assert service.condition("Progressing")["reason"] == "Available"
    assert service.body["status"]["secretsChecksum"] == expected


@pytest.mark.usefixtures("no_deferral")
async def test_a_new_secret_keeps_the_running_deployment_as_it_is_until_it_syncs() -> None:
    service = Service(secrets=[DB])
    await service.run()
    service.synced("db", "m-db")
    await service.run()
    before = copy.deepcopy(service.deployment())
    assert before is not None

    service.edit(secrets=[DB, STRIPE])
    await service.run()
    assert service.deployment() == before  # neither deleted nor given the new template
    assert service.condition("Progressing")["reason"] == "WaitingForSecrets"
    assert service.condition("Ready")["status"] == "False"

    service.synced("stripe", "m-stripe")
    await service.run()
    spec = MirageServiceSpec.from_spec(service.body["spec"])
    expected = pod_checksum(spec=spec, secret_macs={"db": "m-db", "stripe": "m-stripe"})
    assert (
        service.checksum()
        == expected
        != before["spec"]["template"]["metadata"]["annotations"][CHECKSUM_ANNOTATION]
    )


async def test_a_rotated_secret_rolls_the_pods_through_the_checksum() -> None:
    service = Service(secrets=[DB])
    await service.run()
    service.synced("db", "m-1")
    await service.run()
    first = service.checksum()
    writes = len(service.kube.writes)
    await service.run()
    assert service.checksum() == first and len(service.kube.writes) == writes
    service.synced("db", "m-2")
    await service.run()
    assert service.checksum() != first


async def test_a_new_generations_status_waits_for_its_children_to_report() -> None:
    service = Service(secrets=[DB])
    delay = await service.run()
    assert "status" not in service.body  # the VaultSecret has not reported yet
    assert 0 < delay <= mirageservice.STATUS_DEFERRAL
    service.synced("db", "m-db")
    await service.run()
    service.rolled_out()
    await service.run()
    assert service.condition("Ready")["status"] == "True"


@pytest.mark.usefixtures("no_deferral")
async def test_a_failing_child_slo_keeps_the_service_from_being_ready() -> None:
    slo = {"name": "avail", "objective": 99.9, "sli": {"preset": {"type": "http-availability"}}}
    service = Service(monitoring={"slos": [slo]})
    await service.run()
    service.rolled_out()
    service.report("ServiceLevelObjective", "api-avail", "False", "PrometheusRuleUnavailable")
    await service.run()
    ready, degraded = service.condition("Ready"), service.condition("Degraded")
    expected = "ServiceLevelObjective/api-avail (PrometheusRuleUnavailable)"
    assert (ready["status"], ready["reason"]) == ("False", "ChildNotReady")
    assert expected in ready["message"]
    assert degraded["status"] == "True" and expected in degraded["message"]
    assert service.deployment() is not None  # a failing SLO does not hold the pods back

    service.report("ServiceLevelObjective", "api-avail", "True", "RulesApplied")
    await service.run()
    assert service.condition("Ready")["status"] == "True"
    assert service.condition("Degraded")["status"] == "False"


@pytest.mark.usefixtures("no_deferral")
async def test_a_resync_is_a_lookup_until_the_object_or_a_child_changes() -> None:
    """After a successful reconcile a resync finds nothing to do without an API call; a new
    version of a child, or an event asking for a reconcile, makes the next one reconcile."""
    service = Service()
    key = ("MirageService", NS, "api")
    service.body["metadata"]["resourceVersion"] = "1"
    service.context.objects[key] = service.body
    assert service.reconciler.resync(key) is None  # never reconciled here
    await service.reconciler.process(key)
    writes = len(service.kube.writes)
    assert service.reconciler.resync(key) == pytest.approx(
        service.context.config.resync_interval, rel=0.11
    )
    outcome = await service.reconciler.process(key)  # a resync through the queue's worker
    assert len(service.kube.writes) == writes
    assert outcome.delay >= service.context.config.resync_interval
    service.rolled_out()  # a child's new version
    assert service.reconciler.resync(key) is None
    await service.reconciler.process(key)
    assert service.reconciler.resync(key) is not None
    service.reconciler.touch(key)  # an event
    assert service.reconciler.resync(key) is None


@pytest.mark.usefixtures("no_deferral")
async def test_creating_the_children_posts_no_event_and_a_change_does(
    events: list[tuple[str, str]],
) -> None:
    """The creation is reported by status (Ready, children); a later apply by an Event."""
    service = Service()
    await service.run()
    service.rolled_out()
    await service.run()
    assert service.condition("Ready")["status"] == "True"
    assert [c["kind"] for c in service.body["status"]["children"]]
    assert events == []
    service.edit(image="registry.example/app:2")
    await service.run()
    ((reason, message),) = events
    assert reason == "Applied" and "Deployment/api" in message


SLO = {"name": "avail", "objective": 99.9, "sli": {"preset": {"type": "http-availability"}}}


@pytest.mark.parametrize(
    ("slo_reconcile", "rolled_out", "written"),
    [
        # Ready but for the SLO, whose reconcile waits in the operator's queue: its report
        # will come (a cold start of thousands queues it behind the other services).
        ("queued", True, False),
        # A rollout in progress: the deferral's bound holds, Progressing is written.
        ("queued", False, True),
        # Not queued yet: its watch event (the echo of the service's apply) is on its way.
        ("not delivered yet", True, False),
        # The SLO's reconcile failed and is held in its backoff: no report is on its way.
        ("held in a backoff", True, True),
    ],
)
async def test_an_expired_deferral_still_waits_for_a_child_reconcile_under_way_here(
    monkeypatch: pytest.MonkeyPatch, slo_reconcile: str, rolled_out: bool, written: bool
) -> None:
    service = Service(monitoring={"slos": [SLO]})
    queue = service.context.queue  # its workers are not started: what is queued stays there
    delay = await service.run()
    assert 0 < delay <= mirageservice.STATUS_DEFERRAL and "status" not in service.body
    if rolled_out:
        service.rolled_out()
    slo = ("ServiceLevelObjective", NS, "api-avail")
    if slo_reconcile == "queued":
        queue.add(slo)
    elif slo_reconcile == "held in a backoff":  # as a worker leaves a failed reconcile
        queue._held[slo] = asyncio.get_running_loop().time() + 30.0
        queue.add_after(slo, 30.0)
    monkeypatch.setattr(mirageservice, "STATUS_DEFERRAL", 0.0)  # its time has passed
    try:
        delay = await service.run()
        assert ("status" in service.body) is written
        if not written:
            # Re-checked at the regular resync at the latest; the SLO's report comes first.
            assert delay >= service.context.config.resync_interval
            service.report("ServiceLevelObjective", "api-avail", "True", "RulesApplied")
            await service.run()
            assert service.condition("Ready")["status"] == "True"
            assert service.kube.writes.count(("status", "MirageService", "api")) == 1
        else:
            ready = service.condition("Ready")
            assert (ready["status"], ready["reason"]) == ("False", "ChildNotReady")
    finally:
        await queue.stop()


@pytest.mark.parametrize(
    ("deployment", "expected"),
    [
        (None, False),  # held back for its secrets: nothing to report on
        ({"metadata": {}}, False),  # no generation to compare
        ({"metadata": {"generation": 1}}, True),  # just created, no status yet
        ({"metadata": {"generation": 2}, "status": {"observedGeneration": 1}}, True),
        ({"metadata": {"generation": 2}, "status": {"observedGeneration": 2}}, False),
    ],
)
def test_a_deployment_is_unobserved_until_its_controller_reports_its_generation(
    deployment: dict[str, Any] | None, expected: bool
) -> None:
    assert unobserved(deployment) is expected


@pytest.mark.parametrize(
    ("controller", "bound_passed", "written"),
    [
        # The controller has not reported on the new Deployment: the status waits for it.
        ("not reported", False, False),
        # ...but not beyond its own bound (a cluster whose controller-manager is down).
        ("not reported", True, True),
        # Reported, replicas not ready yet: a rollout in progress, written after the deferral.
        ("rolling out", False, True),
    ],
)
async def test_a_new_services_status_waits_for_the_deployment_controllers_report(
    monkeypatch: pytest.MonkeyPatch, controller: str, bound_passed: bool, written: bool
) -> None:
    service = Service()
    delay = await service.run()
    assert 0 < delay <= mirageservice.STATUS_DEFERRAL and "status" not in service.body
    rolling_out = {"observedGeneration": 1, "updatedReplicas": 0}
    service.deployment_reported(rolling_out if controller == "rolling out" else None)
    monkeypatch.setattr(mirageservice, "STATUS_DEFERRAL", 0.0)  # its time has passed
    if bound_passed:
        monkeypatch.setattr(mirageservice, "CONTROLLER_DEFERRAL", 0.0)

    delay = await service.run()

    assert ("status" in service.body) is written
    if written:
        assert service.condition("Ready")["status"] == "False"
        return
    assert 0 < delay <= mirageservice.CONTROLLER_DEFERRAL
    service.rolled_out()  # the controller's report reconciles the service
    await service.run()
    assert service.condition("Ready")["status"] == "True"
    assert service.kube.writes.count(("status", "MirageService", "api")) == 1
